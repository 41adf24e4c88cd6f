"""classify_reply: STOP, HELP and START keywords and plain-language opt-outs, and what is not."""

from __future__ import annotations

import pytest

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
