"""OpenAI text-to-speech, through the real ``openai`` client against the fake server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import aclosing

import numpy as np
import pytest

from media_stream.codec import resample, ulaw_encode
from media_stream.openai_tts import (
    CHUNK_BYTES,
    MAX_INPUT_CHARS,
    OpenAITtsSynthesizer,
    StreamingDownsampler,
)
from media_stream.ports import Synthesizer, SynthesizerFailure
from tests.fake_openai import FakeOpenAI, ScriptedSpeech, tone

SPEECH = "/v1/audio/speech"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def synthesizer(fake: FakeOpenAI) -> AsyncIterator[OpenAITtsSynthesizer]:
    engine = OpenAITtsSynthesizer("sk-test", base_url=fake.base_url, timeout=0.5)
    yield engine
    await engine.aclose()


def expected_ulaw(pcm: bytes) -> bytes:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
    return ulaw_encode(resample(samples, 24000, 8000))


async def collect(engine: OpenAITtsSynthesizer, text: str) -> list[bytes]:
    async with aclosing(engine.synthesize(text)) as chunks:
        return [chunk async for chunk in chunks]


async def test_it_is_a_synthesizer(synthesizer: OpenAITtsSynthesizer) -> None:
    engine: Synthesizer = synthesizer
    assert engine.name == "openai:gpt-4o-mini-tts:alloy"


async def test_speech_is_the_whole_sentence_resampled_with_no_seams(
    fake: FakeOpenAI, synthesizer: OpenAITtsSynthesizer
) -> None:
    pcm = tone(0.73, frequency=523.0)
    fake.speech.append(ScriptedSpeech(pcm=pcm, chunk_bytes=1001))  # odd: samples split
    chunks = await collect(synthesizer, "  Thanks for   calling. ")
    assert b"".join(chunks) == expected_ulaw(pcm)
    assert all(len(chunk) >= CHUNK_BYTES for chunk in chunks[:-1])
    request = fake.bodies(SPEECH)[0]
    assert request["input"] == "Thanks for calling."
    assert request["response_format"] == "pcm"
    assert (request["model"], request["voice"]) == ("gpt-4o-mini-tts", "alloy")
    assert request["instructions"]


async def test_audio_is_yielded_before_the_sentence_is_fully_synthesized(
    fake: FakeOpenAI, synthesizer: OpenAITtsSynthesizer
) -> None:
    held = ScriptedSpeech(seconds=1.0, chunk_bytes=4800, hold_after=2)  # 200 ms, then wait
    fake.speech.append(held)
    async with aclosing(synthesizer.synthesize("Hello there.")) as chunks:
        first = await anext(chunks)
        assert len(first) >= CHUNK_BYTES
        assert fake.finished_bodies == 0
        held.release.set()
        rest = [chunk async for chunk in chunks]
    assert first + b"".join(rest) == expected_ulaw(tone(1.0))


async def test_closing_the_generator_cancels_the_request(
    fake: FakeOpenAI, synthesizer: OpenAITtsSynthesizer
) -> None:
    fake.speech.append(ScriptedSpeech(seconds=1.0, hold_after=2))
    async with aclosing(synthesizer.synthesize("Hello there.")) as chunks:
        await anext(chunks)
    for _ in range(100):
        if fake.client_disconnects:
            break
        await asyncio.sleep(0.01)
    assert fake.client_disconnects == 1
    assert fake.finished_bodies == 0


async def test_cancelling_the_task_cancels_synthesis(
    fake: FakeOpenAI, synthesizer: OpenAITtsSynthesizer
) -> None:
    fake.speech.append(ScriptedSpeech(seconds=1.0, hold_after=2))
    first_chunk = asyncio.Event()

    async def speak() -> None:
        async with aclosing(synthesizer.synthesize("Hello there.")) as chunks:
            async for _ in chunks:
                first_chunk.set()

    task = asyncio.create_task(speak())
    await first_chunk.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    "script",
    [
        ScriptedSpeech(status=500),
        ScriptedSpeech(status=429),
        ScriptedSpeech(seconds=1.0, stall_after=1),
        ScriptedSpeech(seconds=1.0, drop_after=2),
        ScriptedSpeech(pcm=b""),
    ],
    ids=["500", "429", "stall", "dropped", "empty"],
)
async def test_provider_trouble_raises_synthesizer_failure(
    fake: FakeOpenAI, synthesizer: OpenAITtsSynthesizer, script: ScriptedSpeech
) -> None:
    fake.speech.append(script)
    with pytest.raises(SynthesizerFailure, match="openai:gpt-4o-mini-tts"):
        await collect(synthesizer, "Hello there.")


async def test_a_refused_connection_is_a_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = OpenAITtsSynthesizer("sk-test", base_url=f"http://127.0.0.1:{port}/v1", timeout=0.5)
    with pytest.raises(SynthesizerFailure, match="connection failed"):
        await collect(engine, "Hello.")
    await engine.aclose()


async def test_blank_text_makes_no_request(
    fake: FakeOpenAI, synthesizer: OpenAITtsSynthesizer
) -> None:
    assert await collect(synthesizer, " \n ") == []
    assert fake.requests == []


def test_text_over_the_api_limit_is_refused_at_once(synthesizer: OpenAITtsSynthesizer) -> None:
    with pytest.raises(ValueError, match="too long"):
        synthesizer.synthesize("a" * (MAX_INPUT_CHARS + 1))


@pytest.mark.parametrize("length", [0, 1, 2, 3, 17, 100, 4801])
def test_streaming_downsampler_matches_whole_signal_resampling(length: int) -> None:
    rng = np.random.default_rng(length)
    samples = (rng.standard_normal(length) * 6000).astype(np.int16)
    raw = samples.astype("<i2").tobytes()
    cuts = sorted(int(cut) for cut in rng.integers(0, len(raw) + 1, size=6))
    downsampler = StreamingDownsampler(24000, 8000)
    bounds = zip([0, *cuts], [*cuts, len(raw)], strict=True)
    pieces = [downsampler.feed(raw[start:end]) for start, end in bounds]
    pieces.append(downsampler.flush())
    whole = resample(samples, 24000, 8000) if length else np.zeros(0, dtype=np.int16)
    assert np.array_equal(np.concatenate(pieces), whole)


def test_downsampler_refuses_a_fractional_ratio() -> None:
    with pytest.raises(ValueError, match="whole multiple"):
        StreamingDownsampler(22050, 8000)
