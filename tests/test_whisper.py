"""Offline Whisper: silence and line noise say nothing, phone speech is heard, times are honest."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from media_stream.answer_prompts import NUMBER_PROMPT
from media_stream.codec import SAMPLE_RATE, SILENCE_BYTE, frames, ulaw_decode, ulaw_encode
from media_stream.endpointing import Endpointer, SpeechEnded
from media_stream.espeak import EspeakSynthesizer
from media_stream.piper import PiperSynthesizer
from media_stream.ports import AnswerKind, SpeechEvent, SpeechStarted, Transcriber, Utterance
from media_stream.spoken_digits import digit_runs, garbled_number
from media_stream.whisper import (
    FULL_WINDOW_FRAMES,
    MODEL_FILE,
    MODEL_SHA256,
    MODELS,
    ModelIntegrityError,
    WhisperSession,
    WhisperTranscriber,
    _Heard,
    _is_trustworthy,
    _trusted,
    bundled_model_dir,
    encoder_frames,
    file_sha256,
    model_dir_for,
)
from voice_agent.settings import Settings, WhisperModelChoice

pytestmark = pytest.mark.slow

STREAM_OFFSET = 100.0  # a call already under way: times must not be clip-relative


@pytest.fixture(scope="module")
def transcriber() -> Iterator[WhisperTranscriber]:
    engine = WhisperTranscriber()
    engine.load()
    yield engine


def phone_silence(seconds: float) -> bytes:
    return bytes([SILENCE_BYTE]) * round(seconds * SAMPLE_RATE)


def phone_noise(seconds: float, rms: float) -> bytes:
    noise = np.random.default_rng(11).normal(0, rms, round(seconds * SAMPLE_RATE))
    return ulaw_encode(np.clip(noise, -32768, 32767).astype(np.int16))


def phone_hum(seconds: float) -> bytes:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return ulaw_encode((4000 * np.sin(2 * np.pi * 60 * t)).astype(np.int16))


def caller_says(text: str, voice: str = "en-us") -> bytes:
    """What the caller's words sound like after the phone network: 8 kHz μ-law."""
    return EspeakSynthesizer(voice).render_ulaw(text)


def endpointed(ulaw: bytes, at: float = STREAM_OFFSET) -> list[SpeechEnded]:
    endpointer = Endpointer()
    events = endpointer.push(ulaw_decode(ulaw), at) + endpointer.flush()
    return [e for e in events if isinstance(e, SpeechEnded)]


def hear(transcriber: WhisperTranscriber, ulaw: bytes) -> Utterance:
    """Transcribe one spoken stretch as the session would: framed by the endpointer."""
    (speech,) = endpointed(phone_silence(1) + ulaw + phone_silence(1.5))
    return transcriber.transcribe(speech.audio, speech.audio_start, speech.start, speech.end)


def whole_clip(transcriber: WhisperTranscriber, ulaw: bytes) -> Utterance:
    pcm = ulaw_decode(ulaw)
    return transcriber.transcribe(pcm, STREAM_OFFSET, STREAM_OFFSET)


async def run_session(session: WhisperSession, ulaw: bytes) -> list[SpeechEvent]:
    at = STREAM_OFFSET
    for frame in frames(ulaw):
        session.send_audio(frame, at)
        at += 0.02
    await session.close()
    return [event async for event in session.events()]


def test_is_a_transcriber(transcriber: WhisperTranscriber) -> None:
    engine: Transcriber = transcriber
    assert engine.name == "faster-whisper tiny.en"
    assert isinstance(engine.open_session(), WhisperSession)
    assert isinstance(engine.open_session(keyterms=["Acme Plumbing"]), WhisperSession)


@pytest.mark.parametrize(
    "clip",
    [phone_silence(3), phone_noise(3, 60), phone_noise(3, 1500), phone_hum(3)],
    ids=["silence", "quiet-line-noise", "loud-line-noise", "60-hz-hum"],
)
def test_silence_and_line_noise_give_no_words(transcriber: WhisperTranscriber, clip: bytes) -> None:
    utterance = whole_clip(transcriber, clip)
    assert utterance.text == ""
    assert utterance.words == ()
    assert utterance.confidence == 0.0


@pytest.mark.parametrize(
    "prompt", [NUMBER_PROMPT, "Acme Plumbing, water heaters."], ids=["number", "keyterms"]
)
@pytest.mark.parametrize(
    "clip",
    [phone_silence(3), phone_noise(3, 60), phone_noise(3, 1500), phone_hum(3)],
    ids=["silence", "quiet-line-noise", "loud-line-noise", "60-hz-hum"],
)
def test_no_answer_prompt_writes_words_into_silence_or_noise(
    transcriber: WhisperTranscriber, clip: bytes, prompt: str
) -> None:
    pcm = ulaw_decode(clip)
    assert transcriber.transcribe(pcm, STREAM_OFFSET, STREAM_OFFSET, prompt=prompt).text == ""


def test_a_spoken_yes_is_heard(transcriber: WhisperTranscriber) -> None:
    utterance = hear(transcriber, caller_says("Yes please, that sounds good."))
    assert "yes" in utterance.text.lower()
    assert utterance.engine == transcriber.name
    assert 0.0 < utterance.confidence <= 1.0
    assert utterance.confidence == pytest.approx(
        sum(w.confidence for w in utterance.words) / len(utterance.words)
    )


def test_a_callers_name_is_heard(transcriber: WhisperTranscriber) -> None:
    utterance = hear(transcriber, caller_says("My name is Maria Lopez.", voice="en-us+f3"))
    assert "maria lopez" in utterance.text.lower()


def test_a_number_heard_with_digits_missing_is_heard_again_whole(
    transcriber: WhisperTranscriber,
) -> None:
    said = PiperSynthesizer(seed=1).render_ulaw(
        "My number is five one two, five five five, zero zero nine three."
    )
    once = hear(WhisperTranscriber(reread_numbers=False), said)
    assert garbled_number(once.text)  # "512-550093": one five of three lost
    again = hear(transcriber, said)
    assert digit_runs(again.text) == ["5125550093"]
    assert [w.start for w in again.words] == sorted(w.start for w in again.words)


@pytest.mark.parametrize(
    "said",
    [
        "Yes please, that sounds good.",
        "No, I'm at 43 Maple Street.",
        "My name is Maria Lopez.",
        "It started two days ago.",
    ],
)
def test_other_answers_are_heard_once_with_no_prompt(
    transcriber: WhisperTranscriber, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = record_prompts(monkeypatch)
    assert hear(transcriber, caller_says(said)).text
    assert prompts == [None]


def record_prompts(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Every prompt Whisper is run with from now on, in order."""
    prompts: list[str | None] = []
    recognise = WhisperTranscriber._recognise

    def recording(self: WhisperTranscriber, samples: Any, prompt: str | None = None) -> Any:
        prompts.append(prompt)
        return recognise(self, samples, prompt)

    monkeypatch.setattr(WhisperTranscriber, "_recognise", recording)
    return prompts


async def test_a_session_prompts_for_the_answer_its_question_wants(
    transcriber: WhisperTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = record_prompts(monkeypatch)
    session = transcriber.open_session(keyterms=["Acme Plumbing", "water heaters"])
    caller = PiperSynthesizer(seed=1)
    events = session.events()
    heard = []
    at = STREAM_OFFSET
    for kind, said in [
        (AnswerKind.PROBLEM, "The water heater stopped working."),
        (AnswerKind.NAME, "My name is Maria Lopez."),  # names are heard with no prompt
        (AnswerKind.PHONE_NUMBER, "Five one two, five five five, zero zero nine three."),
        (AnswerKind.ANY, "Yes please, that sounds good."),  # the consent question
    ]:
        session.expect(kind)
        for frame in frames(phone_silence(0.5) + caller.render_ulaw(said) + phone_silence(2)):
            session.send_audio(frame, at)
            at += 0.02
        while not isinstance(event := await asyncio.wait_for(anext(events), 30), Utterance):
            pass  # the answer's words come before the next question is asked
        heard.append(event.text.lower())
    await session.close()
    assert prompts == ["Acme Plumbing, water heaters.", None, NUMBER_PROMPT, None]
    assert "water heater" in heard[0] and "maria lopez" in heard[1] and "yes" in heard[3]
    assert digit_runs(heard[2]) == ["5125550093"]


def test_speech_a_prompted_reading_leaves_empty_is_heard_again_with_no_prompt(
    transcriber: WhisperTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str | None] = []
    recognise = WhisperTranscriber._recognise

    def deaf_when_prompted(
        self: WhisperTranscriber, samples: Any, prompt: str | None = None
    ) -> Any:
        prompts.append(prompt)
        return [] if prompt else recognise(self, samples, prompt)

    monkeypatch.setattr(WhisperTranscriber, "_recognise", deaf_when_prompted)
    (speech,) = endpointed(phone_silence(1) + caller_says("My kitchen lights keep flickering."))
    utterance = transcriber.transcribe(
        speech.audio, speech.audio_start, speech.start, speech.end, prompt="Acme Electric."
    )
    assert "kitchen" in utterance.text.lower()
    assert prompts == ["Acme Electric.", None]


def test_an_expected_number_is_heard_once_with_its_own_prompt(
    transcriber: WhisperTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = PiperSynthesizer(seed=1).render_ulaw(
        "My number is five one two, five five five, zero zero nine three."
    )
    prompts = record_prompts(monkeypatch)
    (speech,) = endpointed(phone_silence(1) + said + phone_silence(1.5))
    utterance = transcriber.transcribe(
        speech.audio, speech.audio_start, speech.start, speech.end, prompt=NUMBER_PROMPT
    )
    assert digit_runs(utterance.text) == ["5125550093"]
    assert prompts == [NUMBER_PROMPT]


def test_word_times_are_ordered_and_on_the_stream_clock(
    transcriber: WhisperTranscriber,
) -> None:
    speech = caller_says("Hi, this is John Smith calling about a leaking pipe.")
    (stretch,) = endpointed(phone_silence(1) + speech + phone_silence(1.5))
    utterance = transcriber.transcribe(
        stretch.audio, stretch.audio_start, stretch.start, stretch.end
    )
    assert (utterance.start, utterance.end) == (stretch.start, stretch.end)
    assert utterance.start == pytest.approx(STREAM_OFFSET + 1.0, abs=0.06)
    assert len(utterance.words) >= 6
    audio_end = stretch.audio_start + len(stretch.audio) / SAMPLE_RATE
    previous_end = utterance.start
    for word in utterance.words:
        assert previous_end <= word.start <= word.end <= audio_end
        previous_end = word.end
    spoken_end = STREAM_OFFSET + 1.0 + len(speech) / SAMPLE_RATE
    assert utterance.words[-1].end == pytest.approx(stretch.end, abs=0.3)
    assert utterance.words[-1].end <= spoken_end


def test_a_blip_too_short_to_transcribe_is_empty(transcriber: WhisperTranscriber) -> None:
    utterance = transcriber.transcribe(np.full(400, 3000, np.int16), 5.0, 5.0, 5.05)
    assert (utterance.text, utterance.start, utterance.end) == ("", 5.0, 5.05)


@pytest.mark.parametrize(
    ("pcm", "audio_start", "speech_start", "speech_end"),
    [
        (np.zeros((2, 8000), np.int16), 0.0, 0.0, None),
        (np.zeros(8000, np.float32), 0.0, 0.0, None),
        (np.zeros(31 * SAMPLE_RATE, np.int16), 0.0, 0.0, None),
        (np.zeros(8000, np.int16), float("nan"), 0.0, None),
        (np.zeros(8000, np.int16), 1.0, 0.5, None),
        (np.zeros(8000, np.int16), 0.0, 1.0, 0.5),
    ],
)
def test_malformed_input_is_refused(
    transcriber: WhisperTranscriber,
    pcm: npt.NDArray[np.int16],
    audio_start: float,
    speech_start: float,
    speech_end: float | None,
) -> None:
    with pytest.raises(ValueError):
        transcriber.transcribe(pcm, audio_start, speech_start, speech_end)


def heard(
    text: str,
    *,
    start: float = 0.2,
    no_speech: float = 0.1,
    logprob: float = -0.3,
    compression: float = 1.0,
) -> _Heard:
    return _Heard(text, start, logprob, no_speech, compression, ((text, start, start + 0.4, 0.8),))


@pytest.mark.parametrize(
    ("segment", "trusted"),
    [
        (heard("Thank you."), True),
        (heard("Thank you.", no_speech=0.5), False),
        (heard("Thank you.", logprob=-0.9), False),
        (heard("Thank you.", start=2.5), False),  # after the speech ended at 2.0
        (heard("Thanks for watching!", no_speech=0.45), False),
        (heard("Yes, please.", no_speech=0.5), True),
        (heard("Yes, please.", logprob=-2.0), False),
        (heard(""), False),
    ],
)
def test_invented_stock_phrases_are_dropped(segment: _Heard, trusted: bool) -> None:
    assert _is_trustworthy(segment, speech_end_offset=2.0) is trusted


def test_a_looping_transcript_counts_as_nothing_heard() -> None:
    looping = heard("going to be " * 30, compression=7.1)
    assert _trusted([heard("Yes, please."), looping], speech_end_offset=2.0) == []
    assert _trusted([heard("Yes, please.", compression=2.4)], speech_end_offset=2.0) != []


async def test_session_reports_onset_then_the_utterance(transcriber: WhisperTranscriber) -> None:
    speech = caller_says("Yes please, that sounds good.")
    events = await run_session(
        transcriber.open_session(), phone_silence(1) + speech + phone_silence(1.5)
    )
    assert [type(e) for e in events] == [SpeechStarted, Utterance]
    started, utterance = events
    assert isinstance(started, SpeechStarted) and isinstance(utterance, Utterance)
    assert started.at == pytest.approx(STREAM_OFFSET + 1.0, abs=0.06)
    assert utterance.start == started.at
    assert "yes" in utterance.text.lower()


async def test_session_keeps_utterances_in_order(transcriber: WhisperTranscriber) -> None:
    audio = (
        phone_silence(1)
        + caller_says("My name is Maria Lopez.", voice="en-us+f3")
        + phone_silence(1.5)
        + caller_says("Yes please, that sounds good.")
        + phone_silence(0.3)  # the call ends mid-pause: close() must flush it
    )
    events = await run_session(transcriber.open_session(), audio)
    utterances = [e for e in events if isinstance(e, Utterance)]
    assert len([e for e in events if isinstance(e, SpeechStarted)]) == 2
    assert ["maria" in utterances[0].text.lower(), "yes" in utterances[1].text.lower()] == [
        True,
        True,
    ]
    assert utterances[0].end < utterances[1].start


async def test_session_on_line_noise_emits_no_text(transcriber: WhisperTranscriber) -> None:
    audio = phone_noise(3, 60) + phone_noise(3, 1500) + phone_hum(3)
    events = await run_session(transcriber.open_session(), audio)
    assert all(e.text == "" for e in events if isinstance(e, Utterance))


async def test_finalize_ends_the_utterance_without_waiting_for_its_silence(
    transcriber: WhisperTranscriber,
) -> None:
    session = transcriber.open_session(keyterms=["Acme Plumbing"])
    audio = phone_silence(1) + caller_says("Yes please, that sounds good.") + phone_silence(0.2)
    at = STREAM_OFFSET
    for frame in frames(audio):
        session.send_audio(frame, at)
        at += 0.02
    await session.finalize()  # 0.2 s of silence: the endpointer alone would still wait
    events = session.events()
    started, utterance = [await asyncio.wait_for(anext(events), 30) for _ in range(2)]
    assert isinstance(started, SpeechStarted) and isinstance(utterance, Utterance)
    assert "yes" in utterance.text.lower()
    assert utterance.end <= at
    await session.close()
    assert [event async for event in session.events()] == []


class _BrokenTranscriber(WhisperTranscriber):
    def transcribe(
        self,
        pcm8k: npt.NDArray[np.int16],
        audio_start: float,
        speech_start: float,
        speech_end: float | None = None,
        prompt: str | None = None,
    ) -> Utterance:
        raise RuntimeError("engine fell over")


async def test_session_reports_unheard_speech_when_the_engine_fails() -> None:
    session = WhisperSession(_BrokenTranscriber())
    speech = caller_says("Yes please.")
    events = await run_session(session, phone_silence(1) + speech + phone_silence(1.5))
    utterances = [e for e in events if isinstance(e, Utterance)]
    assert len(utterances) == 1
    assert utterances[0].text == ""
    assert utterances[0].start == pytest.approx(STREAM_OFFSET + 1.0, abs=0.06)


async def test_session_ignores_audio_after_close_and_closes_once() -> None:
    session = WhisperSession(_BrokenTranscriber())
    await session.close()
    session.send_audio(caller_says("Yes please."), 0.0)
    await session.close()
    assert [event async for event in session.events()] == []


def test_bundled_model_matches_the_pinned_hash() -> None:
    assert len(MODEL_SHA256) == 64
    assert (bundled_model_dir() / MODEL_FILE).is_file()


def test_a_tampered_model_is_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "model"
    shutil.copytree(bundled_model_dir(), tampered)
    with (tampered / MODEL_FILE).open("r+b") as model_file:
        model_file.seek(1_000_000)
        byte = model_file.read(1)
        model_file.seek(1_000_000)
        model_file.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(ModelIntegrityError, match=str(tampered / MODEL_FILE)):
        WhisperTranscriber(model_dir=tampered).load()


def test_a_missing_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="missing"):
        WhisperTranscriber(model_dir=tmp_path).load()


def test_a_different_pin_is_refused() -> None:
    with pytest.raises(ModelIntegrityError, match="expected 0000"):
        WhisperTranscriber(expected_sha256="0" * 64).load()


@pytest.mark.parametrize("threads", [0, -1, 65])
def test_nonsense_thread_counts_are_refused(threads: int) -> None:
    with pytest.raises(ValueError):
        WhisperTranscriber(cpu_threads=threads)


def test_unknown_models_and_beam_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown Whisper model"):
        WhisperTranscriber(model="small")
    for beam_size in (0, 6):
        with pytest.raises(ValueError, match="beam_size"):
            WhisperTranscriber(beam_size=beam_size)


def test_the_engine_name_says_which_model_hears() -> None:
    assert WhisperTranscriber(model="base").name == "faster-whisper base"


def test_base_is_joined_from_its_packages_once_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    joined = model_dir_for(MODELS["base"])
    assert joined.is_relative_to(tmp_path)
    assert file_sha256(joined / MODEL_FILE) == MODELS["base"].sha256
    assert model_dir_for(MODELS["base"]) == joined  # reused, not joined again
    engine = WhisperTranscriber(model="base", beam_size=2)
    heard = engine.transcribe(ulaw_decode(caller_says("My kitchen sink is leaking.")), 0.0, 0.0)
    assert "kitchen" in heard.text.lower()
    assert heard.engine == "faster-whisper base"


def test_a_wrongly_joined_model_is_never_left_for_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    wrong = replace(MODELS["base"], sha256="0" * 64)
    with pytest.raises(ModelIntegrityError, match="joined from its packages"):
        model_dir_for(wrong)
    assert not list(tmp_path.rglob(MODEL_FILE + "*"))


def test_the_operator_chooses_the_model_and_beam_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_MODEL", "base")
    monkeypatch.setenv("WHISPER_BEAM_SIZE", "3")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.whisper_model is WhisperModelChoice.BASE
    assert settings.whisper_beam_size == 3
    monkeypatch.setenv("WHISPER_MODEL", "small")
    with pytest.raises(ValueError):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("content", "encoded"), [(0, 1500), (273, 1500), (1301, 1600), (1450, 1700), (2900, 3000)]
)
def test_the_encoder_gets_the_clip_and_two_seconds_of_its_padding(
    content: int, encoded: int
) -> None:
    features = np.zeros((80, FULL_WINDOW_FRAMES), np.float32)
    features[:, :content] = -0.5  # log-mel frames of the clip; faster-whisper pads with zeros
    assert encoder_frames(features) == encoded
    assert encoder_frames(features[None]) == encoded  # with a batch axis too
