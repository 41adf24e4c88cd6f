"""The embedded text-to-speech engine: espeak-ng, μ-law 8 kHz, no network and no keys.

espeak-ng is loaded through ctypes from the shared library bundled in the ``espeakng-loader``
wheel (never a system install) and run in synchronous mode: ``espeak_Synth`` returns when
the text is spoken, having handed its PCM to our callback. The library keeps global state
(one voice, one callback, one buffer), so every use goes through one module-level lock and
the voice and rate are set again for each call under that lock.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import re
import threading
from collections.abc import AsyncGenerator

import espeakng_loader
import numpy as np
import numpy.typing as npt

from media_stream.codec import SAMPLE_RATE, resample, ulaw_encode
from media_stream.sentences import split_sentences

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 2000
MIN_WORDS_PER_MINUTE = 80  # espeakRATE_MINIMUM
MAX_WORDS_PER_MINUTE = 450  # espeakRATE_MAXIMUM

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000  # a sentence pause after the text, so sentences do not run together
_PARAMETER_RATE = 1
_EE_OK = 0
_CONTINUE_SYNTHESIS = 0

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # all but the newline

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class SpeechSynthesisError(RuntimeError):
    """espeak-ng failed to initialise or to speak."""


class _EspeakLibrary:
    """The process's one libespeak-ng; every method must be called holding ``_library_lock``."""

    def __init__(self) -> None:
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._declare_signatures()
        data_path = espeakng_loader.get_data_path().encode()
        self.sample_rate: int = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0
        )
        if self.sample_rate <= 0:
            raise SpeechSynthesisError("espeak-ng failed to initialise")
        self._pieces: list[npt.NDArray[np.int16]] = []
        self._callback = _SynthCallback(self._collect)  # kept alive as long as the library
        self._lib.espeak_SetSynthCallback(self._callback)
        logger.info("espeak-ng initialised at %d Hz", self.sample_rate)

    def _declare_signatures(self) -> None:
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        if wav and count > 0:
            self._pieces.append(np.ctypeslib.as_array(wav, shape=(count,)).astype(np.int16))
        return _CONTINUE_SYNTHESIS

    def select_voice(self, voice: str, words_per_minute: int) -> None:
        if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        if self._lib.espeak_SetParameter(_PARAMETER_RATE, words_per_minute, 0) != _EE_OK:
            raise SpeechSynthesisError(f"espeak-ng refused the rate {words_per_minute}")

    def speak(self, text: str) -> npt.NDArray[np.int16]:
        """PCM at ``sample_rate`` for ``text`` in the selected voice."""
        encoded = text.encode()
        self._pieces = []
        status = self._lib.espeak_Synth(
            encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None
        )
        pieces, self._pieces = self._pieces, []
        if status != _EE_OK:
            raise SpeechSynthesisError(f"espeak-ng could not speak (error {status})")
        if not pieces:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(pieces)


_library_lock = threading.Lock()
_library: _EspeakLibrary | None = None


def _loaded_library() -> _EspeakLibrary:
    """The shared library, initialised on first use; call holding ``_library_lock``."""
    global _library
    if _library is None:
        _library = _EspeakLibrary()
    return _library


def _clean(text: str) -> str:
    """Validated text with control characters (NUL included) but newlines turned into spaces."""
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"text too long to speak: {len(text)} characters (max {MAX_TEXT_CHARS})")
    return _CONTROL_CHARACTERS.sub(" ", text.replace("\r", "\n"))


class EspeakSynthesizer:
    """The offline `Synthesizer`: espeak-ng speech as μ-law 8 kHz chunks, one per sentence."""

    name = "espeak-ng"

    def __init__(self, voice: str = "en-us", words_per_minute: int = 165) -> None:
        if not MIN_WORDS_PER_MINUTE <= words_per_minute <= MAX_WORDS_PER_MINUTE:
            raise ValueError(
                f"words_per_minute must be {MIN_WORDS_PER_MINUTE}–{MAX_WORDS_PER_MINUTE}, "
                f"got {words_per_minute}"
            )
        if not voice.strip() or not voice.isprintable():
            raise ValueError(f"invalid espeak-ng voice name {voice!r}")
        self.voice = voice
        self.words_per_minute = words_per_minute
        with _library_lock:
            _loaded_library().select_voice(voice, words_per_minute)

    def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        """μ-law audio for ``text``, one chunk per sentence; stop iterating to cancel.

        Raises ValueError at once for text over ``MAX_TEXT_CHARS``; blank text yields nothing.
        """
        return self._voice_sentences(split_sentences(_clean(text)))

    async def _voice_sentences(self, sentences: list[str]) -> AsyncGenerator[bytes, None]:
        for sentence in sentences:
            audio = await asyncio.to_thread(self._render, sentence)
            if audio:
                yield audio

    def render_ulaw(self, text: str) -> bytes:
        """μ-law audio for the whole of ``text`` at once (blocking); b"" for blank text."""
        whole = " ".join(split_sentences(_clean(text)))
        return self._render(whole) if whole else b""

    def _render(self, text: str) -> bytes:
        with _library_lock:
            library = _loaded_library()
            library.select_voice(self.voice, self.words_per_minute)
            pcm = library.speak(text)
            sample_rate = library.sample_rate
        return ulaw_encode(resample(pcm, sample_rate, SAMPLE_RATE))
