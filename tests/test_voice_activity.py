"""Silero VAD in the endpointer: speech is speech, loud changing noise is not, and a detector
that cannot load leaves the energy endpointer working alone."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
import pytest

from media_stream import voice_activity
from media_stream.codec import FRAME_BYTES, SAMPLE_RATE, ulaw_decode
from media_stream.endpointing import Endpointer, SpeechBegan, SpeechEnded
from media_stream.espeak import EspeakSynthesizer
from media_stream.voice_activity import SileroVoiceActivity, load_voice_activity
from voice_agent.settings import Settings, VoiceActivityChoice


def silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16)


def babble(seconds: float, rms: float = 1500.0) -> npt.NDArray[np.int16]:
    """Noise whose loudness swings at syllable rate: the energy test takes it for voice."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) * np.sin(2 * np.pi * 0.7 * t)
    noise = np.random.default_rng(5).normal(0, rms, len(t)) * envelope
    return np.clip(noise, -32768, 32767).astype(np.int16)


def speech(text: str) -> npt.NDArray[np.int16]:
    return ulaw_decode(EspeakSynthesizer().render_ulaw(text))


def feed(pcm: npt.NDArray[np.int16], endpointer: Endpointer) -> list[SpeechBegan | SpeechEnded]:
    events: list[SpeechBegan | SpeechEnded] = []
    for offset in range(0, len(pcm), FRAME_BYTES):
        events += endpointer.push(pcm[offset : offset + FRAME_BYTES], offset / SAMPLE_RATE)
    return events + endpointer.flush()


def ended(events: list[SpeechBegan | SpeechEnded]) -> list[SpeechEnded]:
    return [e for e in events if isinstance(e, SpeechEnded)]


def test_silero_hears_phone_speech_and_not_silence() -> None:
    detector = SileroVoiceActivity()
    quiet = [detector.speech_probability(silence(0.02)) for _ in range(25)]
    words = speech("My kitchen sink is leaking.")
    heard = [
        detector.speech_probability(words[i : i + FRAME_BYTES])
        for i in range(0, len(words), FRAME_BYTES)
    ]
    assert max(quiet) < 0.1
    assert max(heard) > 0.9


def test_with_silero_the_endpointer_finds_the_same_speech() -> None:
    pcm = np.concatenate([silence(0.5), speech("Yes, that sounds good."), silence(1.0)])
    by_energy = ended(feed(pcm, Endpointer()))
    by_voice = ended(feed(pcm, Endpointer(voice_activity=SileroVoiceActivity())))
    assert len(by_energy) == len(by_voice) == 1
    assert by_voice[0].start <= by_energy[0].start + 1e-9  # an answer's onset is never late
    assert by_voice[0].start == pytest.approx(by_energy[0].start, abs=0.1)
    assert by_voice[0].end == pytest.approx(by_energy[0].end, abs=0.15)


def test_babble_is_voice_to_energy_but_not_to_silero() -> None:
    pcm = np.concatenate([silence(0.5), babble(3.0), silence(1.0)])
    assert ended(feed(pcm, Endpointer()))  # what Silero is there for
    assert ended(feed(pcm, Endpointer(voice_activity=SileroVoiceActivity()))) == []


def test_a_detector_that_cannot_load_leaves_energy_alone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise OSError("no native library")

    monkeypatch.setattr(voice_activity, "SileroVoiceActivity", broken)
    with caplog.at_level(logging.ERROR):
        assert load_voice_activity() is None
    assert "energy alone" in caplog.text


def test_the_operator_chooses_what_hears_voice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).voice_activity is VoiceActivityChoice.ENERGY  # type: ignore[call-arg]
    monkeypatch.setenv("VOICE_ACTIVITY", "silero")
    assert Settings(_env_file=None).voice_activity is VoiceActivityChoice.SILERO  # type: ignore[call-arg]
