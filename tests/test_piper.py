"""The Piper voice: phonemes through our own espeak-ng, μ-law 8 kHz speech per sentence, heard by
the embedded Whisper; a voice that cannot load is refused, and the receptionist speaks with
espeak-ng instead and says so in its log."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from media_stream import SynthesizerFailure
from media_stream.codec import SAMPLE_RATE, ulaw_decode
from media_stream.espeak import EspeakSynthesizer
from media_stream.piper import (
    BUNDLED_MODEL_SHA256,
    MAX_TEXT_CHARS,
    PiperSynthesizer,
    PiperVoiceError,
    bundled_voice,
    clauses,
    phonemize,
)
from media_stream.ports import Synthesizer
from media_stream.prompt_audio import CachedSynthesizer
from media_stream.whisper import WhisperTranscriber
from tests.conftest import receptionist_settings
from voice_agent.services import Services, build_services
from voice_agent.settings import Settings, SynthesizerChoice


async def collect(synthesizer: PiperSynthesizer, text: str) -> list[bytes]:
    return [chunk async for chunk in synthesizer.synthesize(text)]


def seconds(ulaw: bytes) -> float:
    return len(ulaw) / SAMPLE_RATE


def rms(ulaw: bytes) -> float:
    return float(np.sqrt(np.mean(np.square(ulaw_decode(ulaw), dtype=np.float64))))


@pytest.fixture
def broken_voices(tmp_path: Path) -> dict[str, Path]:
    """Model paths that cannot load: missing, not a model, a config that is not JSON."""
    model, config = bundled_voice()
    missing = tmp_path / "missing" / "voice.onnx"
    garbage = tmp_path / "garbage" / "voice.onnx"
    garbage.parent.mkdir()
    garbage.write_bytes(b"not an onnx model" * 100)
    shutil.copy(config, garbage.with_name("voice.onnx.json"))
    bad_config = tmp_path / "bad-config" / "voice.onnx"
    bad_config.parent.mkdir()
    bad_config.symlink_to(model)
    bad_config.with_name("voice.onnx.json").write_text("{not json")
    return {"missing": missing, "not a model": garbage, "bad config": bad_config}


# --- phonemes ----------------------------------------------------------------------------------


def test_phonemes_keep_stress_and_each_clauses_punctuation() -> None:
    phonemes = phonemize("Hello, how are you? Fine; thanks!")
    assert "ˈ" in phonemes  # stress marks, as the voice was trained
    assert re.fullmatch(r"\S+, \S+ \S+ \S+\? \S+; \S+!", phonemes), phonemes
    assert phonemize("Call me at three p.m., please") == phonemize("Call me at three p.m., please")


def test_phonemizing_leaves_espeak_speaking_as_before() -> None:
    espeak = EspeakSynthesizer("en-us+f3", words_per_minute=120)
    before = espeak.render_ulaw("Yes please, that sounds good.")
    phonemize("Before we finish, would it be okay?", "en-us")
    after = espeak.render_ulaw("Yes please, that sounds good.")  # same voice, same pace
    assert seconds(after) == pytest.approx(seconds(before), rel=0.01)  # espeak-ng varies a hair
    assert rms(after) == pytest.approx(rms(before), rel=0.05)


# --- speech ------------------------------------------------------------------------------------


def test_is_a_synthesizer() -> None:
    synthesizer: Synthesizer = PiperSynthesizer()
    assert synthesizer.name == "piper"


async def test_one_chunk_of_audible_speech_per_sentence() -> None:
    chunks = await collect(
        PiperSynthesizer(), "Hello there. This is Acme Plumbing! How can I help?"
    )
    assert len(chunks) == 3
    for chunk in chunks:
        assert 0.4 < seconds(chunk) < 4.0
        assert rms(chunk) > 500


async def test_blank_text_says_nothing_and_long_text_is_refused() -> None:
    piper = PiperSynthesizer()
    assert await collect(piper, "  \n ") == [] and piper.render_ulaw("...") == b""
    with pytest.raises(ValueError, match="too long"):
        piper.synthesize("a" * (MAX_TEXT_CHARS + 1))


async def test_a_slower_pace_takes_longer() -> None:
    text = "Someone from Acme Plumbing will call you back within thirty minutes."
    usual = seconds(PiperSynthesizer().render_ulaw(text))
    slower = seconds(PiperSynthesizer(length_scale=1.3).render_ulaw(text))
    assert slower > usual * 1.05  # Piper varies its durations a little from run to run


def test_a_seeded_voice_says_the_same_lines_the_same_way_every_time() -> None:
    lines = ["Hello, it's Priya Patel.", "Yes, that's fine."]
    first, second = PiperSynthesizer(seed=7), PiperSynthesizer(seed=7)
    assert [first.render_ulaw(line) for line in lines] == [
        second.render_ulaw(line) for line in lines
    ]
    unseeded = PiperSynthesizer()
    assert unseeded.render_ulaw(lines[0]) != unseeded.render_ulaw(lines[0])
    assert PiperSynthesizer(seed=8).render_ulaw(lines[0]) != PiperSynthesizer(seed=7).render_ulaw(
        lines[0]
    )


async def test_calls_speak_at_once_without_mixing_up_their_sentences() -> None:
    piper = PiperSynthesizer()
    short, long = "Yes.", "Message and data rates may apply, and we may text you at any time."
    results = await asyncio.gather(*[collect(piper, text) for text in (short, long) * 3])
    for text, chunks in zip((short, long) * 3, results, strict=True):
        assert len(chunks) == (1 if text == short else 2)  # a long sentence clause by clause
        assert (seconds(b"".join(chunks)) > 3.0) is (text == long)


@pytest.mark.parametrize(
    ("sentence", "pieces"),
    [
        ("Sound good?", ["Sound good?"]),
        (
            "Before we finish — and just to be clear, I'm an automated assistant — would it be "
            "okay if Acme Plumbing texts you?",
            [
                "Before we finish — and just to be clear,",
                "I'm an automated assistant —",
                "would it be okay if Acme Plumbing texts you?",
            ],
        ),
        (
            "You can reply STOP to opt out, or HELP for help, anytime at all.",
            ["You can reply STOP to opt out,", "or HELP for help, anytime at all."],
        ),
        (
            "It costs 1,000 dollars, and 2,500 more for the permit and parts.",
            ["It costs 1,000 dollars,", "and 2,500 more for the permit and parts."],
        ),
    ],
)
def test_a_long_sentence_is_spoken_clause_by_clause(sentence: str, pieces: list[str]) -> None:
    assert clauses(sentence) == pieces
    assert " ".join(clauses(sentence)) == sentence


@pytest.fixture(scope="module")
def whisper() -> Iterator[WhisperTranscriber]:
    engine = WhisperTranscriber()
    engine.load()
    yield engine


@pytest.mark.slow
def test_whisper_hears_the_piper_voice_through_the_phone(whisper: WhisperTranscriber) -> None:
    """Piper draws fresh noise for every rendering, so the words heard vary a little from run
    to run ("Sound good?" is sometimes "some good"): one of the eight may be missed. espeak-ng
    through the same path was heard as "reply top, top, top"."""
    said = "You can reply STOP to opt out, or HELP for help, anytime. Sound good?"
    heard = whisper.transcribe(ulaw_decode(PiperSynthesizer().render_ulaw(said)), 0.0, 0.0)
    words = set(re.findall(r"[a-z]+", heard.text.lower()))
    missed = {"reply", "stop", "opt", "out", "help", "anytime", "sound", "good"} - words
    assert len(missed) <= 1, heard


# --- a voice that cannot load ------------------------------------------------------------------


@pytest.mark.parametrize("case", ["missing", "not a model", "bad config"])
async def test_a_voice_that_cannot_load_is_refused(
    broken_voices: dict[str, Path], case: str
) -> None:
    piper = PiperSynthesizer(broken_voices[case])  # nothing loads yet
    with pytest.raises(PiperVoiceError):
        piper.load()
    with pytest.raises(SynthesizerFailure):
        await collect(piper, "Hello.")


def test_a_model_that_is_not_the_pinned_file_is_refused() -> None:
    model, _ = bundled_voice()
    assert PiperSynthesizer(model, expected_sha256=BUNDLED_MODEL_SHA256).render_ulaw("Hi.")
    with pytest.raises(PiperVoiceError, match="pinned"):
        PiperSynthesizer(model, expected_sha256="0" * 64).load()


def _services(tmp_path: Path, **settings: object) -> Services:
    base = receptionist_settings(f"sqlite:///{tmp_path / 'voice.db'}")
    return build_services(
        base.model_copy(update={"synthesizer": SynthesizerChoice.EMBEDDED, **settings})
    )


def _voice(services: Services) -> Synthesizer:
    assert isinstance(services.synthesizer, CachedSynthesizer)
    return services.synthesizer.inner


def test_piper_speaks_by_default_with_espeak_behind_it(tmp_path: Path) -> None:
    assert Settings(_env_file=None).synthesizer is SynthesizerChoice.EMBEDDED  # type: ignore[call-arg]
    services = _services(tmp_path)
    assert isinstance(_voice(services), PiperSynthesizer)
    assert isinstance(services.embedded_synthesizer, EspeakSynthesizer)
    services.engine.dispose()


@pytest.mark.parametrize("case", ["missing", "not a model", "bad config"])
def test_espeak_speaks_when_the_piper_voice_cannot_load(
    tmp_path: Path,
    broken_voices: dict[str, Path],
    case: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="voice_agent.services"):
        services = _services(tmp_path, piper_model=broken_voices[case])
    assert isinstance(_voice(services), EspeakSynthesizer)
    assert services.embedded_synthesizer is _voice(services)
    assert "the Piper voice cannot load, espeak-ng speaks instead" in caplog.text
    assert str(broken_voices[case].name) in caplog.text
    services.engine.dispose()


def test_piper_can_be_named(tmp_path: Path) -> None:
    services = _services(tmp_path, synthesizer=SynthesizerChoice.PIPER)
    assert isinstance(_voice(services), PiperSynthesizer)
    services.engine.dispose()


def test_espeak_alone_when_chosen(tmp_path: Path) -> None:
    services = _services(tmp_path, synthesizer=SynthesizerChoice.ESPEAK)
    assert isinstance(_voice(services), EspeakSynthesizer)
    assert services.embedded_synthesizer is _voice(services)
    services.engine.dispose()
