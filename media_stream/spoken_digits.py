"""Digits in what the ears heard: numerals, digit words, repeats, and the words heard for digits.

Down a phone line Whisper writes a said phone number in many ways: "512-555-0199", "five one
two, five five five…", "4155 double 5", and with the digits' sound-alikes ("time time time" for
five five five, "free" for three, "or" for oh). `digit_runs` reads each stretch of them as its
digits, so the ears can tell a phone number heard whole from one garbled in the hearing. (The
receptionist's own reading of numbers, with hundreds, corrections and validity, is
``voice_agent.chat``'s.)
"""

from __future__ import annotations

import re

DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
SOUND_ALIKES = {
    "time": "5",
    "times": "5",
    "free": "3",
    "fix": "6",
    "for": "4",
    "to": "2",
    "too": "2",
    "or": "0",
}
"""Words Whisper writes for digits said down the phone line (measured on our number lines)."""

NATIONAL_DIGITS = 10
"""A whole phone number's digits with its area code (and one more, the leading 1, before them)."""

_REPEATS = {"double": 2, "triple": 3}
_TOKEN = re.compile(r"[a-z']+|\d+|[^\s]")
_INSIDE_A_NUMBER = frozenset(",-.")  # "512-555-0199", "five one two, five five five"


def digit_runs(text: str) -> list[str]:
    """Each stretch of digits said in ``text``, in order; any other word ends a stretch."""
    runs: list[str] = []
    digits, repeat = "", 1
    for token in _TOKEN.findall(text.lower()):
        said = token if token.isdigit() else DIGIT_WORDS.get(token) or SOUND_ALIKES.get(token)
        if said is not None:
            digits += said[0] * repeat + said[1:]
            repeat = 1
        elif token in _REPEATS:
            repeat = _REPEATS[token]
        elif token not in _INSIDE_A_NUMBER:
            if digits:
                runs.append(digits)
            digits, repeat = "", 1
    if digits:
        runs.append(digits)
    return runs


def holds_whole_number(text: str) -> bool:
    """Whether ``text`` says a phone number whole: a run of `NATIONAL_DIGITS` digits, or one
    more with a leading 1."""
    return any(
        len(run) == NATIONAL_DIGITS or (len(run) == NATIONAL_DIGITS + 1 and run[0] == "1")
        for run in digit_runs(text)
    )


def garbled_number(text: str, least_digits: int = 5) -> bool:
    """Whether ``text`` says at least ``least_digits`` digits but no whole phone number: a number
    given and heard with digits lost, merged or misread."""
    return sum(map(len, digit_runs(text))) >= least_digits and not holds_whole_number(text)
