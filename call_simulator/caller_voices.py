"""The voices simulated callers speak in, named in scenario and persona files.

``piper`` is the bundled natural Piper voice, and ``piper@1.2`` the same voice at a length scale
(above 1 slower, below 1 faster); any other name is an espeak-ng voice (``en-us+f3``). Callers
whose lines must be heard as written (the scripted scenarios, which check what was stored) speak
in Piper: the embedded Whisper hears espeak's robotic voice too badly for a test to rest on it.

Each Piper caller voice starts its noise from `CALLER_SEED`, so a caller's lines sound the same in
every run: a scripted call that passes once passes every time (unseeded, about one rendering of
"Hello, it's Priya Patel." in twenty was heard as "pre a petal" and the name asked again).
"""

from __future__ import annotations

import re
from typing import Protocol

PIPER = "piper"
CALLER_SEED = 1
VOICE_NAME = re.compile(r"piper(@[0-9]+(\.[0-9]+)?)?|[a-z]{2,3}(-[a-z0-9]+)*(\+[a-z0-9]+)?")


class CallerVoice(Protocol):
    """Renders the caller's lines as μ-law 8 kHz audio."""

    def render_ulaw(self, text: str) -> bytes: ...


def voice_problem(name: str) -> str | None:
    """Why ``name`` is not a caller voice, or None when it is one (nothing is loaded: a Piper
    name is checked by Piper itself, an espeak-ng name by its shape)."""
    if not VOICE_NAME.fullmatch(name):
        return _not_a_voice(name)
    if name.startswith(PIPER):
        try:
            caller_voice(name)
        except ValueError as error:
            return str(error)
    return None


def caller_voice(name: str, words_per_minute: int | None = None) -> CallerVoice:
    """The voice called ``name`` (see the module's docstring); ``words_per_minute`` sets an
    espeak-ng voice's pace (Piper's is its length scale). ValueError for a name that is no
    voice, or a length scale Piper refuses."""
    if not VOICE_NAME.fullmatch(name):
        raise ValueError(_not_a_voice(name))
    if name.startswith(PIPER):
        from media_stream import PiperSynthesizer

        return PiperSynthesizer(length_scale=_length_scale(name), seed=CALLER_SEED)
    from media_stream import EspeakSynthesizer

    if words_per_minute is None:
        return EspeakSynthesizer(voice=name)
    return EspeakSynthesizer(voice=name, words_per_minute=words_per_minute)


def _not_a_voice(name: str) -> str:
    return f"must be piper, piper@<length scale> or an espeak-ng voice like en-us+f3, got {name!r}"


def _length_scale(name: str) -> float | None:
    _, _, scale = name.partition("@")
    return float(scale) if scale else None
