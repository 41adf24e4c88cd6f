"""The benchmark fakes honour the speech and chat ports (bench/fake_providers.py)."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from contextlib import aclosing
from pathlib import Path

import numpy as np
import pytest

from bench import fake_providers
from bench.fake_providers import (
    DelayedChatModel,
    FakeLatencies,
    FakeSynthesizer,
    FakeTranscriber,
    SpeechCache,
    spread_words,
    with_fake_engines,
)
from media_stream import (
    SAMPLE_RATE,
    SpeechEvent,
    SpeechStarted,
    Synthesizer,
    Transcriber,
    Utterance,
    frames,
    ulaw_encode,
)
from voice_agent.chat.interviewer import ScriptedInterviewer
from voice_agent.chat.port import CallContext, CallerMessage, ChatModel
from voice_agent.services import build_services
from voice_agent.settings import Settings

SCRIPT = ("Hi, my name is Maria Lopez.", "My sink is leaking.")
CONTEXT = CallContext("Acme Plumbing", "leaks", "within the hour", "+15125550142")


def _silence(seconds: float) -> bytes:
    return ulaw_encode(np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16))


def _speech(seconds: float, seed: int = 7) -> bytes:
    noise = np.random.default_rng(seed).normal(0, 5000, round(seconds * SAMPLE_RATE))
    return ulaw_encode(np.clip(noise, -32768, 32767).astype(np.int16))


def _feed(session: fake_providers.FakeTranscriptionSession, audio: bytes, at: float) -> float:
    """Feed ``audio`` in 20 ms frames from stream time ``at``; the time after it."""
    for frame in frames(audio):
        session.send_audio(frame, at)
        at += len(frame) / SAMPLE_RATE
    return at


async def _events_until_closed(
    session: fake_providers.FakeTranscriptionSession,
) -> list[SpeechEvent]:
    await session.close()
    return [event async for event in session.events()]


def _transcriber(delay: float = 0.0) -> FakeTranscriber:
    return FakeTranscriber(SCRIPT, delay=delay, endpointing_silence=0.3)


@pytest.fixture
def scheduled(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The moments the fakes wait for, recorded instead of slept through."""
    moments: list[float] = []

    async def record(moment: float) -> None:
        moments.append(moment)

    monkeypatch.setattr(fake_providers, "sleep_until", record)
    return moments


async def test_each_utterance_hears_the_next_line_of_the_script() -> None:
    transcriber: Transcriber = _transcriber()
    session = transcriber.open_session()
    assert isinstance(session, fake_providers.FakeTranscriptionSession)
    at = _feed(session, _silence(0.4), 0.0)
    for seed in (1, 2, 3):
        at = _feed(session, _speech(0.5, seed) + _silence(0.6), at)
    events = await _events_until_closed(session)
    onsets = [e for e in events if isinstance(e, SpeechStarted)]
    heard = [e for e in events if isinstance(e, Utterance)]
    assert len(onsets) == len(heard) == 3
    assert [u.text for u in heard] == [*SCRIPT, ""]  # past the script nothing is heard
    assert all(onset.at == u.start for onset, u in zip(onsets, heard, strict=True))
    assert heard[0].start == pytest.approx(0.4, abs=0.021)
    assert heard[0].end == pytest.approx(0.9, abs=0.021)
    assert all(u.endpointed_at is not None for u in heard)
    assert [len(u.words) for u in heard] == [6, 4, 0]
    assert heard[2].confidence == 0.0 and heard[0].confidence > 0.9


async def test_the_transcript_comes_a_fixed_delay_after_the_end_of_speech(
    scheduled: list[float],
) -> None:
    session = _transcriber(delay=0.15).open_session()
    at = _feed(session, _silence(0.2), 0.0)
    _feed(session, _speech(0.5) + _silence(0.5), at)
    heard = [e for e in await _events_until_closed(session) if isinstance(e, Utterance)]
    assert len(heard) == 1 and heard[0].endpointed_at is not None
    assert scheduled == [pytest.approx(heard[0].endpointed_at + 0.15)]


async def test_closing_flushes_open_speech_and_ignores_later_audio() -> None:
    session = _transcriber().open_session()
    at = _feed(session, _silence(0.2) + _speech(0.5), 0.0)  # still talking
    events = await _events_until_closed(session)
    assert [type(e) for e in events] == [SpeechStarted, Utterance]
    _feed(session, _speech(0.5) + _silence(1.0), at)  # after close: nothing happens
    await session.close()  # closing twice is harmless


async def test_finalize_ends_the_utterance_in_progress_at_once() -> None:
    session = _transcriber().open_session(keyterms=["Acme Plumbing"])  # keyterms change nothing
    at = _feed(session, _silence(0.2) + _speech(0.5, seed=1), 0.0)
    await session.finalize()
    # 0.2 s of silence would not end an utterance (0.3 s does): without finalize the two
    # stretches of speech would be heard as one.
    _feed(session, _silence(0.2) + _speech(0.5, seed=2) + _silence(0.6), at)
    heard = [e for e in await _events_until_closed(session) if isinstance(e, Utterance)]
    assert [u.text for u in heard] == list(SCRIPT)
    assert heard[0].end == pytest.approx(0.7, abs=0.021)
    await session.finalize()  # after close: nothing to do


async def test_sessions_are_independent() -> None:
    transcriber = _transcriber()
    first, second = transcriber.open_session(), transcriber.open_session()
    for session in (first, second):
        _feed(session, _silence(0.2) + _speech(0.5) + _silence(0.5), 0.0)
    for session in (first, second):
        heard = [e for e in await _events_until_closed(session) if isinstance(e, Utterance)]
        assert [u.text for u in heard] == [SCRIPT[0]]


async def test_hostile_audio_is_refused_or_survived() -> None:
    session = _transcriber().open_session()
    with pytest.raises(ValueError):
        session.send_audio(_silence(0.02), math.nan)
    with pytest.raises(ValueError):
        session.send_audio(_silence(0.02), -1.0)
    session.send_audio(b"", 0.0)
    session.send_audio(b"\x00", 0.0)  # one byte: an incomplete frame is kept, not judged
    session.send_audio(bytes(range(256)) * 3, 5.0)  # a jump ahead counts as silence
    assert await _events_until_closed(session) == []


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        FakeTranscriber(SCRIPT, delay=0.1, endpointing_silence=0.0)
    for bad in ({"transcription": -1.0}, {"agent": math.inf}, {"stream_speed": 0.0}):
        with pytest.raises(ValueError):
            FakeLatencies(**bad)
    with pytest.raises(ValueError):
        FakeLatencies(chunk_seconds=0.001)


def test_words_are_spread_over_the_utterance() -> None:
    words = spread_words("one two three four", 1.0, 3.0)
    assert [(w.text, w.start, w.end) for w in words] == [
        ("one", 1.0, 1.5),
        ("two", 1.5, 2.0),
        ("three", 2.0, 2.5),
        ("four", 2.5, 3.0),
    ]
    assert spread_words("  ", 1.0, 2.0) == ()
    assert all(w.start == w.end == 2.0 for w in spread_words("a b", 2.0, 1.0))


class _CountingRender:
    """A render function that counts its calls; audio length follows the text."""

    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[str] = []
        self._fail_first = fail_first
        self._lock = threading.Lock()

    def __call__(self, text: str) -> bytes:
        with self._lock:
            self.calls.append(text)
            if self._fail_first and len(self.calls) == 1:
                raise RuntimeError("the voice broke")
        time.sleep(0.01)  # long enough for concurrent requests to overlap
        return bytes([0x7F]) * (len(text) * 80)


async def test_each_distinct_text_is_rendered_once() -> None:
    render = _CountingRender()
    cache = SpeechCache(render)
    results = await asyncio.gather(*(cache.audio(t) for t in ["hello", "bye"] * 10))
    assert sorted(render.calls) == ["bye", "hello"]
    assert results[0] == bytes([0x7F]) * 400 and cache.texts_rendered == 2


async def test_a_failed_render_is_reported_and_tried_again() -> None:
    render = _CountingRender(fail_first=True)
    cache = SpeechCache(render)
    with pytest.raises(RuntimeError, match="the voice broke"):
        await cache.audio("hello")
    assert await cache.audio("hello") == bytes([0x7F]) * 400
    assert render.calls == ["hello", "hello"]


async def test_the_voice_streams_the_cached_audio_on_schedule(scheduled: list[float]) -> None:
    latencies = FakeLatencies(first_byte=0.08, stream_speed=2.0, chunk_seconds=0.1)
    synthesizer: Synthesizer = FakeSynthesizer(SpeechCache(_CountingRender()), latencies)
    before = time.monotonic()
    chunks = [chunk async for chunk in synthesizer.synthesize("x" * 25)]  # 2000 bytes
    after = time.monotonic()
    assert b"".join(chunks) == bytes([0x7F]) * 2000
    assert [len(c) for c in chunks] == [800, 800, 400]
    assert before + 0.08 <= scheduled[0] <= after + 0.08
    assert np.diff(scheduled) == pytest.approx([0.05, 0.05])  # 100 ms of audio per 50 ms


async def test_the_voice_can_be_cancelled_and_says_nothing_for_blank_text(
    scheduled: list[float],
) -> None:
    render = _CountingRender()
    synthesizer = FakeSynthesizer(SpeechCache(render), FakeLatencies())
    async with aclosing(synthesizer.synthesize("x" * 100)) as chunks:
        async for _chunk in chunks:
            break
    assert len(scheduled) == 1
    assert [c async for c in synthesizer.synthesize("")] == []


async def test_the_delayed_agent_answers_as_the_scripted_interviewer() -> None:
    model: ChatModel = DelayedChatModel(ScriptedInterviewer(), delay=0.0)
    reference = ScriptedInterviewer()
    delayed_message, reference_message = CallerMessage(), CallerMessage()
    for said in (None, "It's Maria Lopez.", "My sink is leaking."):
        got = await model.reply(CONTEXT, delayed_message, said)
        assert got == await reference.reply(CONTEXT, reference_message, said)
    assert delayed_message == reference_message
    assert delayed_message.caller_name == "Maria Lopez"
    assert model.name == reference.name


async def test_the_delayed_agent_speaks_its_reply_in_one_piece() -> None:
    model: ChatModel = DelayedChatModel(ScriptedInterviewer(), delay=0.0)
    expected = await ScriptedInterviewer().reply(CONTEXT, CallerMessage(), None)
    reply = model.reply_stream(CONTEXT, CallerMessage(), None)
    assert [piece async for piece in reply] == [expected.text]
    assert await reply.result() == expected
    await reply.aclose()


def test_the_fakes_replace_only_the_configured_engines(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'fakes.db'}", _env_file=None)  # type: ignore[call-arg]
    services = build_services(settings)
    faked = with_fake_engines(services, FakeLatencies(), SCRIPT)
    assert isinstance(faked.transcriber, FakeTranscriber)
    assert isinstance(faked.synthesizer, FakeSynthesizer)
    assert isinstance(faked.chat_model, DelayedChatModel)
    assert faked.embedded_synthesizer is services.embedded_synthesizer
    assert faked.embedded_chat_model is services.embedded_chat_model
    assert faked.engine is services.engine and services.transcriber is not faked.transcriber
    services.engine.dispose()
