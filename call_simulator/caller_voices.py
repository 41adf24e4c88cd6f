"""The voices simulated callers speak in, named in scenario and persona files.

``piper`` is the bundled natural Piper voice, and ``piper@1.2`` the same voice at a length scale
(above 1 slower, below 1 faster); any other name is an espeak-ng voice (``en-us+f3``). Callers
whose lines must be heard as written (the scripted scenarios, which check what was stored) speak
in Piper: the embedded Whisper hears espeak's robotic voice too badly for a test to rest on it.
"""

from __future__ import annotations

import re
from typing import Protocol

PIPER = "piper"
VOICE_NAME = re.compile(r"piper(@[0-9]+(\.[0-9]+)?)?|[a-z]{2,3}(-[a-z0-9]+)*(\+[a-z0-9]+)?")
LENGTH_SCALES = (0.5, 2.0)  # the Piper pace a caller may be given, slowest last


class CallerVoice(Protocol):
    """Renders the caller's lines as μ-law 8 kHz audio."""

    def render_ulaw(self, text: str) -> bytes: ...


def voice_problem(name: str) -> str | None:
    """Why ``name`` is not a caller voice, or None when it is one."""
    if not VOICE_NAME.fullmatch(name):
        return (
            f"must be piper, piper@<length scale> or an espeak-ng voice like en-us+f3, got {name!r}"
        )
    scale = _length_scale(name)
    slowest, fastest = max(LENGTH_SCALES), min(LENGTH_SCALES)
    if scale is not None and not fastest <= scale <= slowest:
        return f"a Piper length scale must be {fastest:g}–{slowest:g}, got {scale:g}"
    return None


def caller_voice(name: str, words_per_minute: int | None = None) -> CallerVoice:
    """The voice called ``name`` (see the module's docstring); ``words_per_minute`` sets an
    espeak-ng voice's pace (Piper's is its length scale)."""
    problem = voice_problem(name)
    if problem is not None:
        raise ValueError(problem)
    if name.startswith(PIPER):
        from media_stream import PiperSynthesizer

        return PiperSynthesizer(length_scale=_length_scale(name))
    from media_stream import EspeakSynthesizer

    if words_per_minute is None:
        return EspeakSynthesizer(voice=name)
    return EspeakSynthesizer(voice=name, words_per_minute=words_per_minute)


def _length_scale(name: str) -> float | None:
    _, _, scale = name.partition("@")
    return float(scale) if scale else None
