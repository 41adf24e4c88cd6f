"""espeak-ng synthesis: μ-law 8 kHz speech, per-sentence chunks, safe under concurrency."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from media_stream.codec import SAMPLE_RATE, ulaw_decode
from media_stream.espeak import MAX_TEXT_CHARS, EspeakSynthesizer
from media_stream.ports import Synthesizer


async def collect(synthesizer: EspeakSynthesizer, text: str) -> list[bytes]:
    return [chunk async for chunk in synthesizer.synthesize(text)]


def speech_seconds(ulaw: bytes) -> float:
    return len(ulaw) / SAMPLE_RATE


def rms(ulaw: bytes) -> float:
    return float(np.sqrt(np.mean(np.square(ulaw_decode(ulaw), dtype=np.float64))))


def test_is_a_synthesizer() -> None:
    synthesizer: Synthesizer = EspeakSynthesizer()
    assert synthesizer.name == "espeak-ng"


async def test_one_chunk_per_sentence_of_audible_speech() -> None:
    chunks = await collect(
        EspeakSynthesizer(), "Hello there. This is Acme Plumbing! How can I help?"
    )
    assert len(chunks) == 3
    for chunk in chunks:
        assert 0.4 < speech_seconds(chunk) < 4.0
        assert rms(chunk) > 500


def test_render_ulaw_speaks_the_whole_text_at_a_plausible_length() -> None:
    audio = EspeakSynthesizer().render_ulaw("Yes please, that sounds good.")
    assert 1.2 < speech_seconds(audio) < 4.0
    assert rms(audio) > 500


def test_rate_changes_the_length() -> None:
    text = "Please leave your name and the best number to call you back."
    slow = EspeakSynthesizer(words_per_minute=100).render_ulaw(text)
    fast = EspeakSynthesizer(words_per_minute=300).render_ulaw(text)
    assert speech_seconds(slow) > 1.8 * speech_seconds(fast)


def test_a_caller_voice_differs_from_the_assistant_voice() -> None:
    text = "My name is Maria Lopez."
    assistant = ulaw_decode(EspeakSynthesizer().render_ulaw(text))
    caller = ulaw_decode(EspeakSynthesizer("en-us+f3").render_ulaw(text))
    assert len(caller) > SAMPLE_RATE // 2
    shortest = min(len(assistant), len(caller))
    assert not np.array_equal(assistant[:shortest], caller[:shortest])


async def test_voices_stay_separate_when_interleaved() -> None:
    """The library holds one voice; each call must select its own under the lock."""
    assistant, caller = EspeakSynthesizer(), EspeakSynthesizer("en-us+f3")
    text = "Thank you for calling."
    alone = ulaw_decode(assistant.render_ulaw(text))
    caller.render_ulaw(text)
    again = ulaw_decode(assistant.render_ulaw(text))
    assert abs(len(alone) - len(again)) < 0.01 * len(alone)
    assert abs(rms(alone.tobytes()) - rms(again.tobytes())) < 0.1 * rms(alone.tobytes())


@pytest.mark.parametrize("text", ["", "   ", "\n\t  \n"])
async def test_blank_text_yields_no_audio(text: str) -> None:
    synthesizer = EspeakSynthesizer()
    assert await collect(synthesizer, text) == []
    assert synthesizer.render_ulaw(text) == b""


async def test_over_long_text_is_refused_at_once() -> None:
    synthesizer = EspeakSynthesizer()
    with pytest.raises(ValueError, match="too long"):
        synthesizer.synthesize("a" * (MAX_TEXT_CHARS + 1))
    with pytest.raises(ValueError, match="too long"):
        synthesizer.render_ulaw("a" * (MAX_TEXT_CHARS + 1))


def test_text_at_the_limit_is_spoken() -> None:
    text = ("Call us back. " * 200)[:MAX_TEXT_CHARS]
    assert speech_seconds(EspeakSynthesizer(words_per_minute=450).render_ulaw(text)) > 30


@pytest.mark.parametrize(
    "text",
    ["nul\x00inside", "<speak>tags</speak> & [[phonemes]]", "emoji 🔧 ünïcödé", "\x07\x1b[31m"],
)
def test_hostile_text_is_spoken_or_silent_but_never_crashes(text: str) -> None:
    audio = EspeakSynthesizer().render_ulaw(text)
    assert speech_seconds(audio) < 10


def test_nul_does_not_truncate_the_text() -> None:
    synthesizer = EspeakSynthesizer()
    whole = synthesizer.render_ulaw("first part\x00and a much longer second part of the text")
    first = synthesizer.render_ulaw("first part")
    assert speech_seconds(whole) > 2 * speech_seconds(first)


@pytest.mark.parametrize("voice", ["", "   ", "no-such-voice", "en\x00us"])
def test_bad_voices_are_refused(voice: str) -> None:
    with pytest.raises(ValueError):
        EspeakSynthesizer(voice)


@pytest.mark.parametrize("rate", [0, 79, 451, -5])
def test_bad_rates_are_refused(rate: int) -> None:
    with pytest.raises(ValueError):
        EspeakSynthesizer(words_per_minute=rate)


async def test_stopping_early_cancels_the_rest() -> None:
    synthesizer = EspeakSynthesizer()
    stream = synthesizer.synthesize("One. Two. Three. Four. Five.")
    first = await anext(stream)
    await stream.aclose()
    assert first
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_the_event_loop_keeps_running_while_speaking() -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await collect(EspeakSynthesizer(), " ".join(["This sentence takes a while to say."] * 20))
    stop.set()
    await task
    assert ticks > 20


def test_concurrent_threads_get_their_own_voices_and_rates() -> None:
    text = "Is that a yes? You can also press one for yes or two for no."
    settings = [("en-us", 165), ("en-us+f3", 110)]
    expected = {
        setting: speech_seconds(EspeakSynthesizer(*setting).render_ulaw(text))
        for setting in settings
    }
    assert expected[settings[1]] > 1.3 * expected[settings[0]]
    results: list[tuple[tuple[str, int], float]] = []

    def speak(setting: tuple[str, int]) -> None:
        synthesizer = EspeakSynthesizer(*setting)
        for _ in range(5):
            results.append((setting, speech_seconds(synthesizer.render_ulaw(text))))

    threads = [threading.Thread(target=speak, args=(s,)) for s in settings for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 20
    for setting, seconds in results:
        assert seconds == pytest.approx(expected[setting], rel=0.02)
