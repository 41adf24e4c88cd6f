"""Judging a persona's call: did the stored record show what it must, and was any answer lost?

The simulator never reads the receptionist's database; whoever does (the bench, the tests)
hands over a ``StoredCall`` — what the server stored, in plain values — and ``judge`` compares it
with the persona's ``expect`` and with what the caller actually said and when.

The caller's times are stream times. A receptionist may store a call streamed faster than real
time on a shrunk clock (its times scaled into the call's wall-clock length); for such a call the
caller's times are mapped by the one factor that lines its breaths up with the stored caller
turns best (``stored_time_scale``), and at real time they are compared as they are.

An **answer is lost** when the caller began a line in an answer window (the assistant had
spoken and was silent) and a breath of it that began while the assistant was silent is missing
from the stored caller turns: no stored caller speech with words overlaps it in stream time
(with ``ANSWER_TOLERANCE`` either side, for the endpointer's edges).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from call_simulator.listening_caller import Breath, CallerLine, ListeningCall
from call_simulator.personas import Persona, normalise

ANSWER_TOLERANCE = 0.3  # seconds


@dataclass(frozen=True)
class StoredTurn:
    """One stored transcript turn, on the stream clock."""

    speaker: str  # "assistant" | "caller"
    kind: str  # "speech" | "keypad"
    text: str
    start: float
    end: float | None


@dataclass(frozen=True)
class StoredCall:
    """What the server stored about a call, as plain values."""

    consent: str  # affirmative | declined | unclear | not_asked
    consent_asked: bool  # the script's playback was confirmed
    reasked: bool  # the consent question was asked a second time
    caller_name: str | None
    callback_number: str | None
    urgency: str | None
    need: str | None
    texts_sent: int  # texts to the caller handed to the transport
    re_asks: int  # times the assistant asked a question again (any question)
    turns: tuple[StoredTurn, ...]


@dataclass(frozen=True)
class Verdict:
    """One persona's result."""

    persona: str
    family: str
    problems: tuple[str, ...]  # unmet expectations, and anything that went wrong on the call
    lost: tuple[CallerLine, ...]  # lines said in an answer window that the record lacks
    answer_lines: int  # lines said in an answer window
    re_asks: int
    duration: float  # stream seconds
    caller_turns: int  # lines said (in any number of breaths) and keys pressed
    reply_gaps: tuple[float, ...]  # seconds, as the caller heard them
    misheard: tuple[tuple[str, str], ...] = ()  # (what the caller said, what was stored)
    unheard: tuple[CallerLine, ...] = ()  # stored as speech without words (not lost, misheard)

    @property
    def passed(self) -> bool:
        return not self.problems and not self.lost


def judge(persona: Persona, call: ListeningCall, stored: StoredCall | None) -> Verdict:
    """Compare the stored call with what the persona expects and with what it said."""
    problems = list(call.problems)
    if stored is None:
        problems.append("the server stored no record of the call")
    else:
        problems.extend(unmet_expectations(persona, call, stored))
    lost = tuple(lost_answers(call, stored))
    for line in lost:
        problems.append(
            f"answer lost: {line.text!r} said at {line.started_at:.1f} s is not in the record"
        )
    return Verdict(
        persona=persona.name,
        family=persona.family,
        problems=tuple(problems),
        lost=lost,
        answer_lines=sum(1 for line in call.lines if _spoken_answer(line)),
        re_asks=stored.re_asks if stored is not None else 0,
        duration=call.duration,
        caller_turns=sum(1 for line in call.lines if line.kind in ("say", "press")),
        reply_gaps=call.reply_gaps(),
        misheard=tuple(misheard_lines(call, stored)),
        unheard=tuple(unheard_answers(call, stored)),
    )


def lost_answers(call: ListeningCall, stored: StoredCall | None) -> list[CallerLine]:
    """Lines begun in an answer window with a breath the stored transcript lacks: the first
    breath, and any later one that also began while the assistant was silent. Speech stored
    without words (the recogniser made nothing of it) is not lost: see ``unheard_answers``."""
    return _answers_missing(call, stored, _caller_speech)


def unheard_answers(call: ListeningCall, stored: StoredCall | None) -> list[CallerLine]:
    """Lines begun in an answer window with a breath stored only as speech without words."""
    lost = {id(line) for line in lost_answers(call, stored)}
    return [line for line in _answers_missing(call, stored, _caller_words) if id(line) not in lost]


def _answers_missing(
    call: ListeningCall, stored: StoredCall | None, kept: Callable[[StoredTurn], bool]
) -> list[CallerLine]:
    turns = [] if stored is None else [turn for turn in stored.turns if kept(turn)]
    scale = stored_time_scale(call, stored)
    missing = []
    for line in call.lines:
        if not _spoken_answer(line):
            continue
        owed = [breath for breath in line.breaths if not breath.over_assistant]
        if not all(any(_overlaps(t, b, scale) for t in turns) for b in owed):
            missing.append(line)
    return missing


def stored_time_scale(call: ListeningCall, stored: StoredCall | None) -> float:
    """Stored seconds per stream second: 1 at real time; for a faster call, the factor under
    which most of the caller's breaths overlap a stored caller turn (the nearest to
    ``1 / speed`` among equals), tried from every pairing of a breath with a turn."""
    if call.speed == 1.0 or stored is None:
        return 1.0
    turns = [turn for turn in stored.turns if _caller_speech(turn)]
    breaths = [breath for line in call.lines if line.kind == "say" for breath in line.breaths]
    candidates = {1.0, 1.0 / call.speed}
    candidates.update(
        turn.start / breath.started_at
        for turn in turns
        for breath in breaths
        if breath.started_at > ANSWER_TOLERANCE
    )

    def fit(scale: float) -> tuple[int, float]:
        matched = sum(1 for b in breaths if any(_overlaps(t, b, scale) for t in turns))
        return matched, -abs(scale - 1.0 / call.speed)

    return max(sorted(candidates), key=fit)


def misheard_lines(call: ListeningCall, stored: StoredCall | None) -> list[tuple[str, str]]:
    """(said, stored) for each caller line the record holds in other words than were said."""
    if stored is None:
        return []
    heard = [turn for turn in stored.turns if _caller_words(turn)]
    scale = stored_time_scale(call, stored)
    pairs = []
    for line in call.lines:
        if line.kind != "say":
            continue
        texts = [
            turn.text for turn in heard if any(_overlaps(turn, b, scale) for b in line.breaths)
        ]
        if texts and normalise(" ".join(texts)) != normalise(line.text):
            pairs.append((line.text, " ".join(texts)))
    return pairs


def unmet_expectations(persona: Persona, call: ListeningCall, stored: StoredCall) -> list[str]:
    """Each way the stored call differs from ``persona.expect``, in words."""
    expect = persona.expect
    problems = []
    if stored.consent != expect.consent:
        problems.append(f"consent: expected {expect.consent}, recorded {stored.consent}")
    if stored.texts_sent != expect.texts:
        problems.append(f"texts to the caller: expected {expect.texts}, sent {stored.texts_sent}")
    if expect.consent_asked is not None and stored.consent_asked != expect.consent_asked:
        problems.append(
            f"consent script played in full: expected {_yes_no(expect.consent_asked)}, "
            f"was {_yes_no(stored.consent_asked)}"
        )
    if expect.reasked is not None and stored.reasked != expect.reasked:
        problems.append(
            f"consent re-asked: expected {_yes_no(expect.reasked)}, was {_yes_no(stored.reasked)}"
        )
    if expect.name is not None and not _same_name(expect.name.value, stored.caller_name):
        problems.append(f"name: expected {expect.name.value!r}, recorded {stored.caller_name!r}")
    if (
        expect.callback_number is not None
        and stored.callback_number != expect.callback_number.value
    ):
        problems.append(
            f"callback number: expected {expect.callback_number.value!r}, "
            f"recorded {stored.callback_number!r}"
        )
    if expect.urgency is not None and stored.urgency != expect.urgency.value:
        problems.append(f"urgency: expected {expect.urgency.value!r}, recorded {stored.urgency!r}")
    need = f" {normalise(stored.need or '')} "
    for words in expect.need_includes:
        if not any(f" {word} " in need for word in words):
            problems.append(
                f"need: expected it to mention {'|'.join(words)!r}, recorded {stored.need!r}"
            )
    if expect.ended_by is not None and call.closed_by != expect.ended_by:
        problems.append(f"ended by: expected the {expect.ended_by}, was the {call.closed_by}")
    return problems


def _spoken_answer(line: CallerLine) -> bool:
    return line.kind == "say" and line.in_answer_window and bool(line.breaths)


def _caller_speech(turn: StoredTurn) -> bool:
    return turn.speaker == "caller" and turn.kind == "speech"


def _caller_words(turn: StoredTurn) -> bool:
    return _caller_speech(turn) and bool(turn.text.strip())


def _overlaps(turn: StoredTurn, breath: Breath, scale: float = 1.0) -> bool:
    """Whether ``turn`` overlaps ``breath`` (its stream times times ``scale``), give or take
    ``ANSWER_TOLERANCE``."""
    turn_end = turn.start if turn.end is None else turn.end
    start, end = breath.started_at * scale, breath.ended_at * scale
    return turn.start <= end + ANSWER_TOLERANCE and turn_end >= start - ANSWER_TOLERANCE


def _same_name(expected: str | None, recorded: str | None) -> bool:
    if expected is None or recorded is None:
        return expected is recorded
    return normalise(expected) == normalise(recorded)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"
