"""The simulated callers' voices: Piper at a pace, or espeak-ng, by name."""

from __future__ import annotations

import pytest

from call_simulator.caller_voices import caller_voice, voice_problem
from media_stream import EspeakSynthesizer, PiperSynthesizer, duration_seconds


@pytest.mark.parametrize("name", ["piper", "piper@1.2", "piper@0.5", "en-us", "en-us+f3"])
def test_voice_names_that_are_voices(name: str) -> None:
    assert voice_problem(name) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("piper@2.5", "length_scale must be 0.5–2.0, got 2.5"),
        ("piper@0.1", "length_scale must be 0.5–2.0, got 0.1"),
        ("piper@", "must be piper"),
        ("piper@fast", "must be piper"),
        ("Piper", "must be piper"),
        ("en-us; rm -rf /", "must be piper"),
    ],
)
def test_voice_names_that_are_not(name: str, problem: str) -> None:
    found = voice_problem(name)
    assert found is not None and problem in found
    with pytest.raises(ValueError, match=problem):
        caller_voice(name)


def test_a_piper_voice_speaks_at_its_length_scale() -> None:
    line = "Hi, this is Alex Kim, calling about my water heater."
    usual = caller_voice("piper")
    slower = caller_voice("piper@1.3")
    assert isinstance(usual, PiperSynthesizer) and isinstance(slower, PiperSynthesizer)
    assert duration_seconds(slower.render_ulaw(line)) > 1.15 * duration_seconds(
        usual.render_ulaw(line)
    )


def test_any_other_name_is_an_espeak_voice_at_its_pace() -> None:
    line = "Hi, this is Alex Kim, calling about my water heater."
    slow = caller_voice("en-us+f3", words_per_minute=120)
    fast = caller_voice("en-us+f3", words_per_minute=220)
    assert isinstance(slow, EspeakSynthesizer) and isinstance(fast, EspeakSynthesizer)
    assert duration_seconds(slow.render_ulaw(line)) > 1.4 * duration_seconds(fast.render_ulaw(line))
