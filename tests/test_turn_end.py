"""Turn ends by words: a finished answer is taken after a short silence, words that lead on wait."""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt
import pytest

from media_stream.codec import FRAME_BYTES, SAMPLE_RATE, ulaw_encode
from media_stream.endpointing import Endpointer, SpeechEnded, SpeechPaused
from media_stream.ports import SpeechEvent, Utterance
from media_stream.turn_end import (
    HOLD_SILENCE,
    QUICK_SILENCE,
    USUAL_SILENCE,
    Verdict,
    judge,
    silence_needed,
)
from media_stream.whisper import WhisperSession, WhisperTranscriber


def silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16)


def voiced(seconds: float, level: float = 3000.0) -> npt.NDArray[np.int16]:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    buzz = sum(np.sin(2 * np.pi * 120 * h * t) / h for h in range(1, 12))
    swell = 0.7 + 0.3 * np.sin(2 * np.pi * 4 * t)
    return (level * buzz * swell / 2).astype(np.int16)


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Yes.", Verdict.COMPLETE),
        ("No, thank you.", Verdict.COMPLETE),
        ("yeah", Verdict.COMPLETE),
        ("My kitchen sink is leaking.", Verdict.UNSURE),
        ("It's not urgent.", Verdict.UNSURE),
        ("512-555-0142.", Verdict.COMPLETE),
        ("five one two, five five five, zero one four two", Verdict.COMPLETE),
        ("It's five double five, one two three.", Verdict.INCOMPLETE),
        ("It's five double five, one two three four.", Verdict.COMPLETE),
        ("My sink is...", Verdict.INCOMPLETE),
        ("My sink is.", Verdict.INCOMPLETE),
        ("It started leaking and", Verdict.INCOMPLETE),
        ("Um.", Verdict.INCOMPLETE),
        ("My name is", Verdict.INCOMPLETE),
        ("The number is 512.", Verdict.INCOMPLETE),
        ("five one two, five five five", Verdict.INCOMPLETE),
        ("Call me back on,", Verdict.INCOMPLETE),
        ("", Verdict.UNSURE),
        ("maria lopez", Verdict.UNSURE),
    ],
)
def test_words_say_whether_the_answer_is_finished(text: str, verdict: Verdict) -> None:
    assert judge(text) is verdict


def test_each_verdict_waits_its_own_silence() -> None:
    assert silence_needed(Verdict.COMPLETE) == QUICK_SILENCE < USUAL_SILENCE
    assert silence_needed(Verdict.UNSURE) == USUAL_SILENCE < HOLD_SILENCE
    assert silence_needed(Verdict.INCOMPLETE) == HOLD_SILENCE


def pausing_endpointer() -> Endpointer:
    return Endpointer(silence_to_end=HOLD_SILENCE, pause_points=(QUICK_SILENCE, USUAL_SILENCE))


def test_the_endpointer_reports_each_pause_point_once_then_ends_at_the_hold() -> None:
    endpointer = pausing_endpointer()
    pcm = np.concatenate([silence(0.5), voiced(1.0), silence(2.0)])
    events = []
    for offset in range(0, len(pcm), FRAME_BYTES):
        events += endpointer.push_all(pcm[offset : offset + FRAME_BYTES], offset / SAMPLE_RATE)
    pauses = [e for e in events if isinstance(e, SpeechPaused)]
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert [p.silence for p in pauses] == [QUICK_SILENCE, USUAL_SILENCE]
    assert len(ended) == 1 and ended[0].end == pytest.approx(1.5, abs=0.06)
    assert all(p.end == ended[0].end and p.start == ended[0].start for p in pauses)
    assert len(pauses[0].audio) < len(pauses[1].audio) < len(ended[0].audio)


def test_push_alone_reports_no_pauses() -> None:
    endpointer = pausing_endpointer()
    pcm = np.concatenate([silence(0.5), voiced(1.0), silence(2.0)])
    events = endpointer.push(pcm, 0.0)
    assert not any(isinstance(e, SpeechPaused) for e in events)
    assert sum(isinstance(e, SpeechEnded) for e in events) == 1


def test_end_now_ends_a_pause_but_not_speech_that_came_back() -> None:
    endpointer = pausing_endpointer()
    events = endpointer.push_all(np.concatenate([silence(0.5), voiced(1.0), silence(0.3)]), 0.0)
    pause = next(e for e in events if isinstance(e, SpeechPaused))
    assert endpointer.end_now(pause.start, pause.end + 0.02) is None  # not this pause
    ended = endpointer.end_now(pause.start, pause.end)
    assert ended is not None and ended.end == pause.end
    assert endpointer.end_now(pause.start, pause.end) is None  # already ended

    events = endpointer.push_all(np.concatenate([voiced(1.0), silence(0.3)]), 1.8)
    pause = next(e for e in events if isinstance(e, SpeechPaused))
    endpointer.push_all(voiced(0.2), 2.1)  # the caller goes on
    assert endpointer.end_now(pause.start, pause.end) is None


class _Scripted(WhisperTranscriber):
    """Hears the given texts in order, one per transcription."""

    def __init__(self, *texts: str) -> None:
        super().__init__()
        self.texts = list(texts)
        self.calls = 0

    def transcribe(
        self,
        pcm8k: npt.NDArray[np.int16],
        audio_start: float,
        speech_start: float,
        speech_end: float | None = None,
        prompt: str | None = None,
    ) -> Utterance:
        self.calls += 1
        end = speech_end if speech_end is not None else audio_start
        return Utterance(self.texts.pop(0), speech_start, end, 0.9, self.name)


def feed(session: WhisperSession, pcm: npt.NDArray[np.int16], start: float) -> float:
    ulaw = ulaw_encode(pcm)
    for offset in range(0, len(ulaw), FRAME_BYTES):
        session.send_audio(ulaw[offset : offset + FRAME_BYTES], start + offset / SAMPLE_RATE)
    return start + len(pcm) / SAMPLE_RATE


async def settled(session: WhisperSession, engine: _Scripted, calls: int) -> None:
    """Wait (bounded) until the engine was asked ``calls`` times and all it said is judged."""
    for _ in range(1000):
        if engine.calls >= calls and session._speech.empty():
            break
        await asyncio.sleep(0.005)
    for _ in range(10):
        await asyncio.sleep(0)


async def next_event(events: asyncio.Queue[SpeechEvent]) -> SpeechEvent:
    return await asyncio.wait_for(events.get(), timeout=10)


async def collect(session: WhisperSession, into: asyncio.Queue[SpeechEvent]) -> None:
    async for event in session.events():
        await into.put(event)


async def test_a_finished_answer_is_taken_after_the_quick_silence() -> None:
    engine = _Scripted("Yes.")
    session = WhisperSession(
        engine, turn_end=True, voice_activity=False
    )  # Silero: a buzz is no voice
    events: asyncio.Queue[SpeechEvent] = asyncio.Queue()
    listener = asyncio.create_task(collect(session, events))
    feed(session, np.concatenate([silence(0.5), voiced(0.8), silence(0.3)]), 0.0)
    await next_event(events)  # SpeechStarted
    heard = await next_event(events)  # no more silence was fed: the words ended the turn
    assert isinstance(heard, Utterance) and heard.text == "Yes."
    await session.close()
    await listener
    assert engine.calls == 1 and events.empty()


async def test_words_that_lead_on_wait_for_the_caller_to_go_on() -> None:
    engine = _Scripted("My sink is", "My sink is leaking.")
    session = WhisperSession(
        engine, turn_end=True, voice_activity=False
    )  # Silero: a buzz is no voice
    events: asyncio.Queue[SpeechEvent] = asyncio.Queue()
    listener = asyncio.create_task(collect(session, events))
    at = feed(session, np.concatenate([silence(0.5), voiced(0.8), silence(1.0)]), 0.0)
    await settled(session, engine, calls=1)
    at = feed(session, np.concatenate([voiced(0.6), silence(0.3)]), at)
    await settled(session, engine, calls=2)
    await session.close()
    await listener
    said = [e for e in iter_queue(events) if isinstance(e, Utterance)]
    assert [u.text for u in said] == ["My sink is leaking."]
    assert engine.calls == 2  # the checks at 0.25 s and 0.7 s of one pause share a transcript


async def test_unsure_words_end_the_turn_after_the_usual_silence() -> None:
    engine = _Scripted("maria lopez")
    session = WhisperSession(
        engine, turn_end=True, voice_activity=False
    )  # Silero: a buzz is no voice
    events: asyncio.Queue[SpeechEvent] = asyncio.Queue()
    listener = asyncio.create_task(collect(session, events))
    at = feed(session, np.concatenate([silence(0.5), voiced(0.8), silence(0.4)]), 0.0)
    await settled(session, engine, calls=1)
    assert [e for e in iter_queue(events) if isinstance(e, Utterance)] == []
    feed(session, silence(0.4), at)  # 0.8 s of silence in all
    heard = await next_event(events)
    assert isinstance(heard, Utterance) and heard.text == "maria lopez"
    await session.close()
    await listener
    assert engine.calls == 1


async def test_with_turn_end_off_only_the_fixed_silence_ends_a_turn() -> None:
    engine = _Scripted("Yes.")
    session = WhisperSession(engine, turn_end=False, voice_activity=False)
    events: asyncio.Queue[SpeechEvent] = asyncio.Queue()
    listener = asyncio.create_task(collect(session, events))
    feed(session, np.concatenate([silence(0.5), voiced(0.8), silence(0.5)]), 0.0)
    await settled(session, engine, calls=0)
    assert engine.calls == 0  # no early look at the words
    await session.close()
    await listener
    assert [e.text for e in iter_queue(events) if isinstance(e, Utterance)] == ["Yes."]


def iter_queue(queue: asyncio.Queue[SpeechEvent]) -> list[SpeechEvent]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
