"""classify_reply: STOP, HELP and START keywords and plain-language opt-outs, and what is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sms_sender.keywords import ReplyIntent, classify_reply, is_bare_yes, is_opt_out_keyword

KEYWORD_OPT_OUTS = [
    "STOP",
    "stop",
    "Stop.",
    "STOP!!! 🛑",
    "  stop  ",
    "Stop please",
    "please STOP",
    "stop stop",
    "ＳＴＯＰ",
    "STOPALL",
    "stop all",
    "UNSUBSCRIBE",
    "Cancel",
    "cancel.",
    "END",
    "quit",
    "REVOKE",
    "OPTOUT",
    "opt out",
    "Opt-Out",
]
PLAIN_LANGUAGE_OPT_OUTS = [
    "please stop texting me",
    "Stop sending me these messages",
    "don't text me",
    "Dont text me again",
    "Do not contact me",
    "remove me from your list",
    "take me off your list",
    "no more texts",
    "I want to unsubscribe",
    "I'd like to opt out please",
]


@pytest.mark.parametrize("text", KEYWORD_OPT_OUTS + PLAIN_LANGUAGE_OPT_OUTS)
def test_opt_outs(text: str) -> None:
    assert classify_reply(text) is ReplyIntent.OPT_OUT


def test_keyword_opt_outs_are_told_from_plain_language_ones() -> None:
    assert all(is_opt_out_keyword(text) for text in KEYWORD_OPT_OUTS)
    assert not any(is_opt_out_keyword(text) for text in PLAIN_LANGUAGE_OPT_OUTS)
    assert not is_opt_out_keyword("Can you stop by tomorrow?")


@pytest.mark.parametrize(
    "text",
    [
        "Can you stop by tomorrow?",
        "the leak won't stop",
        "cancel my appointment and rebook",
        "Help me, the basement is flooding",
        "I need help",
        "the end of the pipe is cracked",
        "stop the water first?",
        "yes",
        "YES please",
        "Thanks!",
        "",
        "s t o p p e d",
        "Please don't cancel, we still need you",
        "No more water in the basement, thanks",
    ],
)
def test_messages(text: str) -> None:
    assert classify_reply(text) is ReplyIntent.MESSAGE


@pytest.mark.parametrize("text", ["HELP", "help", "Help?", "INFO", "info please", "help!!"])
def test_help(text: str) -> None:
    assert classify_reply(text) is ReplyIntent.HELP


@pytest.mark.parametrize("text", ["START", "start", "Unstop", "START 👍"])
def test_opt_ins(text: str) -> None:
    assert classify_reply(text) is ReplyIntent.OPT_IN


def test_bare_yes_is_recognised_for_the_opted_out_case() -> None:
    assert is_bare_yes("YES!") and is_bare_yes("yes please")
    assert not is_bare_yes("yes, call me back") and not is_bare_yes("yesterday")


def test_intents_are_string_values() -> None:
    assert [intent.value for intent in ReplyIntent] == [
        "opt_out",
        "help",
        "opt_in",
        "message",
        "possible_opt_out",
    ]


@pytest.mark.parametrize(
    "text", ["stop" * 10_000, "\x00\x01STOP\u200b", "S\u0301TOP", "a" * 100_000 + " stop texting"]
)
def test_hostile_inputs_do_not_crash(text: str) -> None:
    assert classify_reply(text) in set(ReplyIntent)


def test_a_non_string_is_refused() -> None:
    with pytest.raises(TypeError):
        classify_reply(None)  # type: ignore[arg-type]


# --- the labelled set (tests/data/inbound_replies.yaml, scored by bench/inbound_replies.py) ----

LABELLED = Path(__file__).resolve().parent / "data" / "inbound_replies.yaml"


def _labelled() -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = yaml.safe_load(LABELLED.read_text(encoding="utf-8"))
    return replies


def test_the_labelled_set_is_large_and_covers_every_family() -> None:
    replies = _labelled()
    assert len(replies) >= 500
    families = {reply["family"] for reply in replies}
    for family in (
        "stop_keyword",
        "spanish_keyword",
        "misspelling",
        "plain_english",
        "plain_spanish",
        "angry",
        "polite",
        "message_with_stop_words",
        "message_spanish",
        "question",
        "ordinary",
        "help",
        "opt_in",
    ):
        assert family in families
    labels = {reply["label"] for reply in replies}
    assert labels == {"opt_out", "help", "opt_in", "message"}


def test_no_opt_out_of_the_labelled_set_is_missed() -> None:
    missed = [
        reply["text"]
        for reply in _labelled()
        if reply["label"] == "opt_out"
        and classify_reply(reply["text"]) not in (ReplyIntent.OPT_OUT, ReplyIntent.POSSIBLE_OPT_OUT)
    ]
    assert missed == []


def test_only_opt_outs_marked_may_hold_are_held() -> None:
    held = [
        reply["text"]
        for reply in _labelled()
        if reply["label"] == "opt_out"
        and not reply.get("may_hold", False)
        and classify_reply(reply["text"]) is not ReplyIntent.OPT_OUT
    ]
    assert held == []


def test_no_ordinary_message_of_the_labelled_set_is_taken_for_an_opt_out() -> None:
    taken = [
        reply["text"]
        for reply in _labelled()
        if reply["label"] != "opt_out" and classify_reply(reply["text"]) is ReplyIntent.OPT_OUT
    ]
    assert taken == []


def test_help_and_opt_ins_of_the_labelled_set_are_read_as_such() -> None:
    wrong = [
        reply["text"]
        for reply in _labelled()
        if reply["label"] in ("help", "opt_in")
        and classify_reply(reply["text"]).value != reply["label"]
    ]
    assert wrong == []


@pytest.mark.parametrize(
    "text",
    [
        "ALTO",
        "alto por favor",
        "PARAR",
        "Detener",
        "CANCELAR",
        "baja",
        "No más",
        "STPO",
        "SOTP",
        "STOPP",
        "unsuscribe",
        "S T O P",
        "no me manden más mensajes",
        "dejen de escribirme",
    ],
)
def test_spanish_and_misspelled_opt_outs(text: str) -> None:
    assert classify_reply(text) is ReplyIntent.OPT_OUT


@pytest.mark.parametrize(
    "text", ["Stop. Who is this?", "wrong number", "not interested", "stip", "🛑", "I SAID STOP"]
)
def test_replies_that_may_be_opt_outs_are_held(text: str) -> None:
    assert classify_reply(text) is ReplyIntent.POSSIBLE_OPT_OUT


@pytest.mark.parametrize(
    "text",
    [
        "Can you stop by tomorrow?",
        "the leak won't stop",
        "cancel my appointment",
        "end of the day works",
        "I quit smoking lol",
        "para mañana a las 3",
        "la fuga no para",
        "Necesito cancelar mi cita",
    ],
)
def test_stop_words_in_ordinary_messages_are_neither_acted_on_nor_held(text: str) -> None:
    assert classify_reply(text) is ReplyIntent.MESSAGE


def test_spanish_help_and_opt_in_and_si() -> None:
    assert classify_reply("AYUDA") is ReplyIntent.HELP
    assert classify_reply("comenzar") is ReplyIntent.OPT_IN
    assert is_bare_yes("Sí") and is_bare_yes("si por favor")
