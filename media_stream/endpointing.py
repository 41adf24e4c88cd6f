"""Energy-based endpointing: where a caller's speech begins and ends on the stream clock.

Audio is 8 kHz int16 PCM fed in pieces of any size, each stamped with the stream time of its
first sample. It is judged in 20 ms frames against an adaptive noise floor: the floor drops
at once to any quieter frame, follows quiet frames quickly, follows loud frames quickly only
while their level stays steady (line noise that got louder), and otherwise creeps up slowly,
so steady line noise or mains hum becomes the floor, while the syllable-rate ups and downs
and the pauses of real speech keep the floor down. A frame is voiced when it is well above
the floor and above an absolute minimum level. (A pure steady tone is therefore treated as
noise after about half a second.)

An utterance begins at its first voiced frame once ``min_speech`` seconds of voice have been
heard (shorter blips are dropped), and ends ``silence_to_end`` seconds after its last voiced
frame, or is cut at ``max_utterance``. A gap in the timestamps counts as silence.

With a ``voice_activity`` detector (``media_stream.voice_activity``), a frame loud enough to be
voiced is voiced only if the detector also hears speech in it, so changing noise that is not
speech neither starts an utterance nor keeps one open.

With ``pause_points`` (seconds of silence shorter than ``silence_to_end``), an open utterance
also reports `SpeechPaused` with its audio so far each time its silence reaches one of them, so
that a turn-end decision (``media_stream.turn_end``) can end it sooner with `end_now`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from media_stream.codec import FRAME_BYTES, FRAME_SECONDS, SAMPLE_RATE
from media_stream.voice_activity import SPEECH_ONSET, SPEECH_SUSTAIN, VoiceActivity

SILENCE_TO_END = 0.7
"""Seconds of silence that end an utterance: longer than the pauses between a caller's words and
phrases, yet it is most of the wait between the caller's last word and our reply, so no longer.
A caller who pauses longer and goes on is not cut off: speech that starts again before the
first words are back is part of the same turn, and no prompt starts while it is heard."""

MIN_SPEECH = 0.12
"""Voiced seconds before a sound counts as speech: shorter blips are clicks, pops and breaths."""

MAX_UTTERANCE = 15.0
"""An utterance is cut here (the next one starts at once): half of Whisper's 30 s window, so each
piece, with its pre-roll, is transcribed whole, and a caller's words hold the floor at most this
long before some of them come back."""

FRAME_SAMPLES = FRAME_BYTES  # μ-law: one byte a sample
PRE_ROLL_SECONDS = 0.2
_PRE_ROLL_FRAMES = round(PRE_ROLL_SECONDS / FRAME_SECONDS)
_GAP_TOLERANCE = FRAME_SECONDS / 2  # timestamps further ahead than this are a gap

_ONSET_MARGIN_DB = 12.0  # a new utterance needs this much above the floor …
_SUSTAIN_MARGIN_DB = 8.0  # … an open one keeps going on this much
_MIN_SPEECH_DB = 40.0  # absolute minimum: RMS 100 of 32767, about −50 dBFS
_FLOOR_FOLLOW = 0.1  # share of the distance the floor moves towards a quiet frame
_FLOOR_CREEP_DB = 2.0 * FRAME_SECONDS  # rise under loud, changing frames: 2 dB per second
_STEADY_FRAMES = 20  # loud frames whose levels over 0.4 s …
_STEADY_SPREAD_DB = 2.5  # … stay within this spread are noise, not speech


@dataclass(frozen=True)
class SpeechBegan:
    """Speech was confirmed; it began at ``at`` (stream seconds)."""

    at: float


@dataclass(frozen=True)
class SpeechPaused:
    """An open utterance has been silent ``silence`` seconds since ``end``; ``audio`` (from
    ``audio_start``) is all of it so far. `Endpointer.end_now` can end it here."""

    start: float
    end: float
    silence: float
    audio: npt.NDArray[np.int16]
    audio_start: float


@dataclass(frozen=True)
class SpeechEnded:
    """One stretch of speech, ``start`` to ``end`` (stream seconds).

    ``audio`` starts at ``audio_start``: up to ``PRE_ROLL_SECONDS`` before ``start`` (less
    at the start of the stream or after a gap) and runs to the moment the end was decided.
    """

    start: float
    end: float
    audio: npt.NDArray[np.int16]
    audio_start: float


def frame_level_db(frame: npt.NDArray[np.int16]) -> float:
    """RMS level of a frame in dB relative to one quantisation step (0 for digital silence)."""
    if len(frame) == 0:
        return 0.0
    samples = frame.astype(np.float64)
    mean_square = samples.dot(samples) / len(samples)  # a dot product: 3x faster than mean
    return 10.0 * math.log10(max(mean_square, 1.0))


@dataclass
class _OpenUtterance:
    """Speech being gathered: confirmed once ``voiced_seconds`` reaches ``min_speech``."""

    start: float
    audio_start: float
    last_voiced_end: float
    voiced_seconds: float
    audio: list[npt.NDArray[np.int16]]
    confirmed: bool = False


class Endpointer:
    """Turns a stream of PCM into `SpeechBegan` / `SpeechEnded` events."""

    def __init__(
        self,
        *,
        silence_to_end: float = SILENCE_TO_END,
        min_speech: float = MIN_SPEECH,
        max_utterance: float = MAX_UTTERANCE,
        pause_points: tuple[float, ...] = (),
        voice_activity: VoiceActivity | None = None,
    ) -> None:
        if not 0 < silence_to_end <= 10 or not 0 < min_speech <= 5:
            raise ValueError("silence_to_end must be in (0, 10] s and min_speech in (0, 5] s")
        if any(not 0 < p < silence_to_end for p in pause_points):
            raise ValueError("pause_points must lie between 0 and silence_to_end")
        self._pause_points = tuple(sorted(pause_points))
        self._voice_activity = voice_activity
        if not min_speech < max_utterance <= 60:
            raise ValueError("max_utterance must exceed min_speech and be at most 60 s")
        self._silence_to_end = silence_to_end
        self._min_speech = min_speech
        self._max_utterance = max_utterance
        self._reset()

    def _reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.int16)  # samples not yet making a whole frame
        self._anchor: float | None = None  # stream time of the first sample since the last gap
        self._judged = 0  # samples judged since the anchor
        self._floor_db: float | None = None
        self._levels: deque[float] = deque(maxlen=_STEADY_FRAMES)
        self._recent: deque[npt.NDArray[np.int16]] = deque(maxlen=_PRE_ROLL_FRAMES)
        self._open: _OpenUtterance | None = None
        self._loud_since: float | None = None  # start of the current run of loud frames

    def push(self, pcm: npt.NDArray[np.int16], at: float) -> list[SpeechBegan | SpeechEnded]:
        """Feed ``pcm`` whose first sample sits at ``at``; returns the events it completes."""
        return [e for e in self.push_all(pcm, at) if not isinstance(e, SpeechPaused)]

    def push_all(
        self, pcm: npt.NDArray[np.int16], at: float
    ) -> list[SpeechBegan | SpeechPaused | SpeechEnded]:
        """`push`, with a `SpeechPaused` at each of the ``pause_points``, all in order."""
        samples = np.asarray(pcm)
        if samples.ndim != 1 or samples.dtype != np.int16:
            raise ValueError(f"expected 1-D int16 PCM, got {samples.ndim}-D {samples.dtype}")
        if not math.isfinite(at) or at < 0:
            raise ValueError(f"stream time must be finite and non-negative, got {at}")
        events: list[SpeechBegan | SpeechPaused | SpeechEnded] = []
        expected = self._next_sample_time()
        if expected is None or at > expected + _GAP_TOLERANCE:
            events.extend(self._skip_to(at, expected))
        # A piece that overlaps or slightly precedes the expected time is taken as contiguous.
        # Copied, so frames kept for an utterance never change with the caller's array.
        if not len(self._pending) and len(samples) == FRAME_SAMPLES:  # Twilio's 20 ms, alone
            self._judge(samples.copy(), events)
            return events
        pending = np.concatenate((self._pending, samples))
        whole = len(pending) - len(pending) % FRAME_SAMPLES
        for offset in range(0, whole, FRAME_SAMPLES):
            self._judge(pending[offset : offset + FRAME_SAMPLES], events)
        self._pending = pending[whole:]
        return events

    def flush(self) -> list[SpeechEnded]:
        """End of stream: close a confirmed utterance, drop an unconfirmed one, start afresh."""
        events = [self._close()] if self._open is not None and self._open.confirmed else []
        self._reset()
        return events

    def end_now(self, start: float, end: float) -> SpeechEnded | None:
        """End the open utterance at ``end`` if it is still the one that began at ``start``
        and nothing was voiced since ``end``; otherwise (voice came back, or it ended) None."""
        return self._close() if self.still_paused(start, end) else None

    def still_paused(self, start: float, end: float) -> bool:
        """Whether the open utterance is the one that began at ``start``, silent since ``end``."""
        utterance = self._open
        return (
            utterance is not None
            and utterance.confirmed
            and utterance.start == start
            and utterance.last_voiced_end == end
        )

    def _next_sample_time(self) -> float | None:
        if self._anchor is None:
            return None
        return self._anchor + (self._judged + len(self._pending)) / SAMPLE_RATE

    def _frame_start_time(self) -> float:
        assert self._anchor is not None
        return self._anchor + self._judged / SAMPLE_RATE

    def _skip_to(self, at: float, expected: float | None) -> list[SpeechEnded]:
        """Jump the clock over missing audio, which counts as silence (but not as line noise)."""
        missing_from = self._frame_start_time() if expected is not None else at
        self._pending = np.zeros(0, dtype=np.int16)
        self._recent.clear()
        self._anchor = at
        self._judged = 0
        utterance = self._open
        if utterance is None:
            return []
        if at - utterance.last_voiced_end < self._silence_to_end:
            # Fill with silence, so the audio's samples stay on the stream clock.
            gap_samples = round((at - missing_from) * SAMPLE_RATE)
            utterance.audio.append(np.zeros(gap_samples, dtype=np.int16))
            return []
        if not utterance.confirmed:
            self._open = None
            return []
        return [self._close()]

    def _judge(
        self,
        frame: npt.NDArray[np.int16],
        events: list[SpeechBegan | SpeechPaused | SpeechEnded],
    ) -> None:
        """Judge one whole frame, adding the events it completes to ``events``."""
        frame_start = self._frame_start_time()
        self._judged += FRAME_SAMPLES
        level = frame_level_db(frame)
        voiced = self._is_voiced(level)
        if not voiced:
            self._loud_since = None
        elif self._loud_since is None:
            self._loud_since = frame_start
        if voiced and self._voice_activity is not None:
            needed = SPEECH_SUSTAIN if self._open is not None else SPEECH_ONSET
            voiced = self._voice_activity.speech_probability(frame) >= needed
        self._update_floor(level)
        self._advance(frame, frame_start, voiced, events)
        self._recent.append(frame)

    def _is_voiced(self, level: float) -> bool:
        if self._floor_db is None:
            self._floor_db = level
        margin = _SUSTAIN_MARGIN_DB if self._open is not None else _ONSET_MARGIN_DB
        return level >= _MIN_SPEECH_DB and level >= self._floor_db + margin

    def _update_floor(self, level: float) -> None:
        assert self._floor_db is not None
        self._levels.append(level)
        if level <= self._floor_db:
            self._floor_db = level
        elif level < self._floor_db + _SUSTAIN_MARGIN_DB or self._is_steady():
            self._floor_db += _FLOOR_FOLLOW * (level - self._floor_db)
        else:
            self._floor_db += _FLOOR_CREEP_DB

    def _is_steady(self) -> bool:
        full = len(self._levels) == _STEADY_FRAMES
        return full and max(self._levels) - min(self._levels) <= _STEADY_SPREAD_DB

    def _advance(
        self,
        frame: npt.NDArray[np.int16],
        frame_start: float,
        voiced: bool,
        events: list[SpeechBegan | SpeechPaused | SpeechEnded],
    ) -> None:
        frame_end = frame_start + FRAME_SECONDS
        utterance = self._open
        if utterance is None:
            if voiced:
                self._begin(frame, frame_start)
            return
        if voiced and frame_end - utterance.start > self._max_utterance and utterance.confirmed:
            events.append(self._close())
            events.append(SpeechBegan(frame_start))
            self._begin(frame, frame_start, confirmed=True)
            return
        utterance.audio.append(frame)
        if voiced:
            utterance.last_voiced_end = frame_end
            utterance.voiced_seconds += FRAME_SECONDS
            if not utterance.confirmed and utterance.voiced_seconds >= self._min_speech - 1e-9:
                utterance.confirmed = True
                events.append(SpeechBegan(utterance.start))
        elif not utterance.confirmed:
            if frame_end - utterance.last_voiced_end >= self._min_speech - 1e-9:
                self._open = None
        elif frame_end - utterance.last_voiced_end >= self._silence_to_end - 1e-9:
            events.append(self._close())
        else:
            silent = frame_end - utterance.last_voiced_end
            for point in self._pause_points:
                if point - 1e-9 <= silent < point + FRAME_SECONDS - 1e-9:
                    audio = np.concatenate(utterance.audio)
                    events.append(
                        SpeechPaused(
                            utterance.start,
                            utterance.last_voiced_end,
                            point,
                            audio,
                            utterance.audio_start,
                        )
                    )

    def _begin(
        self, frame: npt.NDArray[np.int16], frame_start: float, *, confirmed: bool = False
    ) -> None:
        pre_roll = list(self._recent)
        audio_start = frame_start - len(pre_roll) * FRAME_SECONDS
        # The detector hears speech a frame or three after it grows loud: the onset is where
        # the loudness began (within the pre-roll), so an answer's start is never late.
        start = frame_start
        if self._voice_activity is not None and self._loud_since is not None and not confirmed:
            start = max(min(self._loud_since, frame_start), audio_start)
        self._open = _OpenUtterance(
            start=start,
            audio_start=audio_start,
            last_voiced_end=frame_start + FRAME_SECONDS,
            voiced_seconds=FRAME_SECONDS,
            audio=[*pre_roll, frame],
            confirmed=confirmed,
        )

    def _close(self) -> SpeechEnded:
        utterance = self._open
        assert utterance is not None
        self._open = None
        audio = np.concatenate(utterance.audio) if utterance.audio else np.zeros(0, np.int16)
        return SpeechEnded(
            start=utterance.start,
            end=utterance.last_voiced_end,
            audio=audio,
            audio_start=utterance.audio_start,
        )
