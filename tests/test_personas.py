"""Callers that listen: the persona suite's format, the caller's ear and rules, the judging of a
stored call, and a handful of personas through the real server and websocket.

The real-websocket personas run with the embedded engines on both sides (the server's Whisper
hears the caller's espeak voice; the caller's own Whisper hears the assistant), faster than real
time. Each asserts what its persona's ``expect`` says the record must show; personas the
receptionist is known to fail today are marked ``xfail`` with the fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import yaml

from bench.callers import PersonaRun, Served, judged, place_persona_call, served_receptionist
from call_simulator import (
    CallerLine,
    ListeningCall,
    PersonaError,
    SimulatedCall,
    StoredCall,
    StoredTurn,
    judge,
    load_persona,
    load_personas,
)
from call_simulator.listening_caller import AssistantEar, Breath, choose_rule
from call_simulator.personas import FAMILIES, HUMAN_PAUSE, Rule, Say
from call_simulator.verdict import stored_time_scale
from media_stream import SAMPLE_RATE, Utterance, Word, ulaw_encode
from tests.conftest import ROOT

SUITE = ROOT / "fixtures" / "personas"
SPEED = 3.0


# --- the suite and its format ------------------------------------------------------------------


def test_the_suite_has_forty_personas_covering_every_family() -> None:
    personas = load_personas(SUITE)
    assert len(personas) >= 40
    assert {persona.family for persona in personas} == set(FAMILIES)
    callers = [persona.caller for persona in personas]
    assert len(set(callers)) == len(callers), "each persona calls from its own number"
    businesses = yaml.safe_load((ROOT / "fixtures" / "businesses.yaml").read_text())
    owners = {business["owner_phone"] for business in businesses["businesses"]}
    assert not owners & set(callers), "a persona calling from an owner's phone gets its summary"
    for persona in personas:
        low, high = persona.pause
        assert HUMAN_PAUSE[0] <= low <= high <= HUMAN_PAUSE[1], persona.name


_GOOD = """\
family: plain
description: A caller.
business_number: "+15125550100"
caller: "+15125550142"
rules:
  - when: [name]
    say: "It's Jordan Lee."
expect:
  consent: not_asked
  texts: 0
"""


_SAY = _GOOD.splitlines()[6]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("family: plain", "family: grumpy"), "family"),
        (("caller: ", "colour: blue\ncaller: "), "colour"),
        (("rules:", "pause: [0.1, 9]\nrules:"), "pause"),
        ((_SAY, "    over: true"), "rules[0]"),
        ((_SAY, '    press: "1"\n    hang_up: true'), "rules[0].hang_up"),
        ((_SAY, '    press: "12a"'), "rules[0].press"),
        (("  consent: not_asked", "  consent: maybe"), "expect.consent"),
        (("  texts: 0", "  texts: 0\n  urgency: soonish"), "expect.urgency"),
        (("  texts: 0", "  texts: 0\n  callback_number: '5551234'"), "expect.callback_number"),
        (("  texts: 0\n", ""), "expect.texts"),
    ],
)
def test_a_malformed_persona_names_the_file_and_the_field(
    tmp_path: Path, change: tuple[str, str], field: str
) -> None:
    path = tmp_path / "caller.yaml"
    path.write_text(_GOOD.replace(*change))
    with pytest.raises(PersonaError) as raised:
        load_persona(path)
    assert raised.value.field == field
    assert str(path) in str(raised.value)


def test_a_persona_reads_with_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "caller.yaml"
    path.write_text(_GOOD)
    persona = load_persona(path)
    assert persona.name == "caller"
    assert persona.rules[0].action == Say(("It's Jordan Lee.",))
    assert persona.expect.name is None, "an expectation left out is not checked"
    path.write_text(_GOOD + "  name: null\n")
    assert load_persona(path).expect.name is not None, "null: no name may be recorded"


# --- hearing and deciding ----------------------------------------------------------------------


def _rule(*cues: str, over: bool = False, times: int | None = None) -> Rule:
    return Rule(cues=cues, action=Say(("line",)), over=over, times=times)


def test_the_rule_whose_cue_was_heard_last_wins() -> None:
    rules = [_rule("thanks"), _rule("help you with"), _rule("anything")]
    heard = "Thanks, Maria. What can Acme Plumbing help you with today?"
    assert choose_rule(rules, heard, over=False, fired=[0, 0, 0]) == 1
    assert choose_rule(rules, "Thanks.", over=False, fired=[0, 0, 0]) == 0
    assert choose_rule(rules, "Something else.", over=False, fired=[0, 0, 0]) == 2
    assert choose_rule(rules, "", over=False, fired=[0, 0, 0]) is None


def test_a_rule_fires_only_as_often_as_allowed_and_only_in_its_own_kind() -> None:
    rules = [_rule("name", times=1), _rule("name"), _rule("calling", over=True)]
    assert choose_rule(rules, "Your name?", over=False, fired=[0, 0, 0]) == 0
    assert choose_rule(rules, "Your name?", over=False, fired=[1, 0, 0]) == 1
    assert choose_rule(rules, "Thanks for calling", over=False, fired=[0, 0, 0]) is None
    assert choose_rule(rules, "Thanks for calling", over=True, fired=[0, 0, 0]) == 2


def test_cues_match_whole_words_whatever_the_punctuation() -> None:
    rule = _rule("press 1", "sound good")
    assert rule.last_cue_at("sounds good") is None
    assert rule.last_cue_at("press 12") is None
    assert rule.last_cue_at("you can also press 1 for yes") is not None


class _ScriptedHearing:
    """Hears any audio as fixed words at fixed offsets (seconds into the audio it is given)."""

    name = "scripted"

    def __init__(self, words: list[tuple[str, float]]) -> None:
        self.words = words
        self.heard_seconds: list[float] = []

    def load(self) -> None:
        pass

    def transcribe(
        self,
        pcm8k: npt.NDArray[np.int16],
        audio_start: float,
        speech_start: float,
        speech_end: float | None = None,
        prompt: str | None = None,
    ) -> Utterance:
        self.heard_seconds.append(len(pcm8k) / SAMPLE_RATE)
        words = tuple(Word(text, end - 0.2, end, 0.9) for text, end in self.words)
        text = " ".join(text for text, _ in self.words)
        return Utterance(text, 0.0, len(pcm8k) / SAMPLE_RATE, 0.9, self.name, words)


def _tone(seconds: float) -> bytes:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return ulaw_encode((8000 * np.sin(2 * math.pi * 440 * t)).astype(np.int16))


async def test_the_ear_hears_a_word_when_it_has_played_and_never_after_a_clear() -> None:
    hearing = _ScriptedHearing([("Thanks", 0.5), ("for", 0.9), ("calling", 1.6), ("us", 1.9)])
    ear = AssistantEar(hearing)
    task = asyncio.create_task(ear.run())
    try:
        ear.assistant_audio(_tone(1.0), plays_from=2.0)
        ear.assistant_mark("say-1", due=3.0)
        ear.assistant_audio(_tone(1.0), plays_from=3.5)  # after a gap: a new onset
        ear.assistant_mark("say-2", due=4.5)
        for _ in range(500):  # the ear transcribes after 0.15 s without new audio
            if not ear.pending:
                break
            await asyncio.sleep(0.01)
        assert not ear.pending
        assert hearing.heard_seconds == [2.0], "both sentences heard in one stretch"
        assert ear.onsets == [2.0, 3.5]
        assert [w.text for w in ear.take_heard(2.6)] == ["Thanks"]
        assert [w.text for w in ear.take_heard(2.95)] == ["for"]
        ear.assistant_cleared(at=4.0)  # "calling" ends at 4.1 on the playout, "us" at 4.4
        assert ear.take_heard(10.0) == []
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- judging a stored call ---------------------------------------------------------------------


def _simulated() -> SimulatedCall:
    return SimulatedCall("CA1", "MZ1", "p", (), (), 0.0, 0, 0, (), "server")


def _line(text: str, start: float, end: float, *, window: bool = True) -> CallerLine:
    breath = Breath(text, start, end, over_assistant=not window)
    return CallerLine(0, "say", text, "heard", start, start, (breath,), window)


def _stored(*turns: StoredTurn, consent: str = "affirmative", texts: int = 1) -> StoredCall:
    return StoredCall(
        consent, True, False, "Jordan Lee", "+15125550142", None, None, texts, 0, turns
    )


def test_a_line_said_in_an_answer_window_and_missing_from_the_record_is_lost() -> None:
    persona = load_persona(SUITE / "plain-yes.yaml")
    lines = (
        _line("Hi, my name is Maria Lopez.", 5.0, 6.5),
        _line("My kitchen sink is leaking.", 14.0, 16.0),
        _line("Mm-hmm.", 20.0, 20.4, window=False),  # over the assistant: not an answer
        _line("Yes, this number is fine.", 25.0, 26.5),
    )
    call = ListeningCall("plain-yes", _simulated(), (), lines, (6.9, 17.2), (), 60.0, ())
    stored = _stored(
        StoredTurn("assistant", "speech", "To start, can I get your name?", 0.0, None),
        StoredTurn("caller", "speech", "Hi, my name is Maria Lopez.", 5.1, 6.4),
        StoredTurn("caller", "speech", "", 25.1, 26.4),  # speech, but no words made out
    )
    verdict = judge(persona, call, stored)
    assert [line.text for line in verdict.lost] == ["My kitchen sink is leaking."]
    assert [line.text for line in verdict.unheard] == ["Yes, this number is fine."]
    assert verdict.answer_lines == 3
    assert not verdict.passed
    assert verdict.reply_gaps == pytest.approx((0.4, 1.2))
    assert any("name: expected 'Maria Lopez'" in problem for problem in verdict.problems)


def test_the_assistant_speaking_between_two_breaths_of_a_line_is_a_cut_off() -> None:
    def two_breaths(first: tuple[float, float], second: tuple[float, float]) -> CallerLine:
        breaths = (
            Breath("My cell is five one two, five five five.", *first, over_assistant=False),
            Breath("Zero one six six.", *second, over_assistant=False),
        )
        return CallerLine(0, "say", "…", "heard", first[0], first[0], breaths, True)

    cut = two_breaths((10.0, 12.0), (13.5, 14.5))  # the assistant began at 12.9, in the pause
    whole = two_breaths((20.0, 22.0), (23.0, 24.0))  # it waited until 24.8
    single = _line("Yes, please.", 30.0, 30.8)  # one breath: only a later onset follows it
    call = ListeningCall(
        "p", _simulated(), (), (cut, whole, single), (5.0, 12.9, 24.8, 31.5), (), 60.0, ()
    )
    assert call.cut_offs() == (cut,)


def test_a_breath_missing_from_the_record_loses_its_line_unless_said_over_the_assistant() -> None:
    persona = load_persona(SUITE / "plain-yes.yaml")
    two_breaths = CallerLine(
        0,
        "say",
        "Sure. Actually, no thanks.",
        "heard",
        3.0,
        3.0,
        (Breath("Sure.", 3.0, 3.4, False), Breath("Actually, no thanks.", 4.6, 5.8, False)),
        True,
    )
    call = ListeningCall("plain-yes", _simulated(), (), (two_breaths,), (), (), 10.0, ())
    stored = _stored(StoredTurn("caller", "speech", "Sure.", 3.1, 3.3))
    assert judge(persona, call, stored).lost == (two_breaths,)
    over = CallerLine(
        0,
        "say",
        "Sure. Actually, no thanks.",
        "heard",
        3.0,
        3.0,
        (Breath("Sure.", 3.0, 3.4, False), Breath("Actually, no thanks.", 4.6, 5.8, True)),
        True,
    )
    call = ListeningCall("plain-yes", _simulated(), (), (over,), (), (), 10.0, ())
    assert judge(persona, call, stored).lost == ()


def test_a_record_kept_on_a_shrunk_clock_is_matched_to_the_callers_stream_times() -> None:
    """At 3x the receptionist stores times scaled into the call's wall-clock length."""
    persona = load_persona(SUITE / "plain-yes.yaml")
    lines = (_line("Hi, my name is Maria Lopez.", 6.0, 7.5), _line("Yes.", 30.0, 30.6))
    call = ListeningCall("plain-yes", _simulated(), (), lines, (), (), 60.0, (), speed=3.0)
    stored = _stored(
        StoredTurn("caller", "speech", "Hi, my name is Maria Lopez.", 2.02, 2.49),
        StoredTurn("caller", "speech", "Yes.", 10.01, 10.2),
    )
    assert judge(persona, call, stored).lost == ()
    assert stored_time_scale(call, stored) == pytest.approx(1 / 3, abs=0.01)
    at_real_time = ListeningCall("plain-yes", _simulated(), (), lines, (), (), 60.0, ())
    assert len(judge(persona, at_real_time, stored).lost) == 2, "at 1x times are taken as they are"


def test_a_record_that_shows_what_the_persona_expects_passes() -> None:
    persona = load_persona(SUITE / "plain-yes.yaml")
    call = ListeningCall(
        "plain-yes", _simulated(), (), (_line("Yes.", 3.0, 3.5),), (), (), 10.0, ()
    )
    stored = StoredCall(
        "affirmative",
        True,
        False,
        "maria lopez",
        "+15125550142",
        "urgent",
        "My kitchen sink is leaking under the cabinet.",
        1,
        0,
        (StoredTurn("caller", "speech", "Yes.", 3.1, 3.4),),
    )
    assert judge(persona, call, stored).problems == ()
    assert "the server stored no record of the call" in judge(persona, call, None).problems


# --- through the real server and websocket -----------------------------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with served_receptionist() as receptionist:
        yield receptionist


def _call(served: Served, name: str) -> PersonaRun:
    persona = load_persona(SUITE / f"{name}.yaml")
    call = asyncio.run(place_persona_call(persona, served.url, speed=SPEED))
    return judged(persona, call, served.engine)


def _explain(run: PersonaRun) -> str:
    lines = [*run.verdict.problems]
    if run.call is not None:
        lines += [f"heard {turn.text!r} → {turn.response}" for turn in run.call.heard]
    if run.stored is not None:
        lines += [f"stored {t.speaker}: {t.text!r}" for t in run.stored.turns]
    return "\n".join(lines)


REAL_WEBSOCKET_PERSONAS = [
    "plain-no",  # a whole message, then a plain no
    "backchannel-over-script",  # "okay" during the script is not the answer; the yes after it is
    "question-what-kind-of-texts",  # a question at the consent point, answered, then a yes
    "hedged-suppose-keypad",  # a hedge, then 1 on the keypad at the re-ask
    "dont-text-me-in-need",  # "don't text me" mid-call: never asked, never texted
    "reversed-sure-then-no-thanks",  # a yes stands a breath before it is taken
    "conditional-no-ads",  # a condition worded with "don't" is re-asked, then a yes
]
# "hangup-during-script" stays in the bench only: whether the listening caller hangs up before
# the script's last mark depends on how soon its ear transcribes the script, so it varies.


@pytest.mark.slow
@pytest.mark.parametrize("name", REAL_WEBSOCKET_PERSONAS)
def test_a_listening_caller_through_the_real_websocket(served: Served, name: str) -> None:
    """No answer lost, and the consent the record must show (outcome, script played, re-ask,
    texts). Streamed faster than real time, a call's stored times are scaled into its
    wall-clock length (``voice_agent.records.calls``); the judge maps the caller's stream times
    onto them (``stored_time_scale``). Names, numbers and needs depend on how the embedded ears
    hear a synthetic voice, which varies from run to run: the bench reports them."""
    run = _call(served, name)
    heard_differently = ("name:", "callback number:", "urgency:", "need:")
    problems = [p for p in run.verdict.problems if not p.startswith(heard_differently)]
    assert problems == [], _explain(run)
