"""Numbers as callers say them, and a phone number read back the way people say one.

A caller gives a number in digits ("512-555-0199"), digit by digit ("three oh three, five five
five, one two one two"), in groups ("five one two, five fifty five, oh one ninety nine"), with
repeats ("double nine") or hundreds ("eight hundred"). :func:`digit_runs` turns each stretch of
such words into its digits; :func:`find_phone_number` finds the first valid phone number among
them (US numbers need no country code); :func:`spoken_phone_number` reads one back in groups:
"five one two, five five five, zero one nine nine".

Down a phone line the embedded ears write some digits as words that sound alike ("time time
time" for five five five, "free" for three): when no phone number is found in the words as
heard, those words are read as their digits and a number found so is taken.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers

from media_stream.spoken_digits import SOUND_ALIKES
from voice_agent.chat.caller_text import BOUNDARIES, Utterance, read

DEFAULT_REGION = "US"
MAX_DIALLED_DIGITS = 18  # E.164 allows 15 digits; "011" or "1" dialling prefixes add a few

SPOKEN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_UNITS = {word: digit for digit, word in enumerate(SPOKEN_DIGITS)}
_ZERO_LETTERS = frozenset({"oh", "o"})
_TEEN_WORDS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
_TEN_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety"
_TEENS = {word: 10 + offset for offset, word in enumerate(_TEEN_WORDS.split())}
_TENS = {word: 2 + offset for offset, word in enumerate(_TEN_WORDS.split())}
_REPEATS = {"double": 2, "triple": 3}
_TRANSPARENT = frozenset({"dash", "hyphen"})


@dataclass(frozen=True)
class DigitRun:
    """Digits said in one stretch; ``first``/``last`` index the utterance's words.

    ``lead_zero`` is set when the stretch began with "oh", which may be a zero ("oh one nine
    eight") or just "oh" ("oh, five one two…"); ``digits`` leaves it out.
    """

    digits: str
    first: int
    last: int
    lead_zero: bool = False

    def readings(self) -> tuple[str, ...]:
        """The digits, and with a leading "oh" the digits after a zero as well."""
        return (self.digits, "0" + self.digits) if self.lead_zero else (self.digits,)


def digit_runs(utterance: Utterance, *, sound_alikes: bool = False) -> list[DigitRun]:
    """Every stretch of spoken or written digits; any other word ends a stretch. With
    ``sound_alikes`` the words heard for digits ("time" for five) count as those digits."""
    tokens = utterance.tokens
    if sound_alikes:
        tokens = tuple(_sound_alike_digit(token) for token in tokens)
    runs: list[DigitRun] = []
    digits, first, last, lead_zero, repeat = "", -1, -1, False, 1
    index = 0

    def close() -> None:
        nonlocal digits, first, last, lead_zero, repeat
        if digits:
            runs.append(DigitRun(digits, first, last, lead_zero))
        digits, first, last, lead_zero, repeat = "", -1, -1, False, 1

    while index < len(tokens):
        token = tokens[index]
        taken, used = _digits_at(tokens, index, bool(digits) or lead_zero or repeat > 1)
        if taken is not None:
            if not digits and not lead_zero:
                first = index
            if taken == "" and not digits:
                lead_zero = True  # a leading "oh": kept aside, see DigitRun
            else:
                digits += taken[0] * repeat + taken[1:] if taken else ""
            repeat = 1
            last = index + used - 1
            index += used
            continue
        if token in _REPEATS and index + 1 < len(tokens) and _is_single_digit(tokens[index + 1]):
            if not digits and not lead_zero:
                first = index
            repeat = _REPEATS[token]
        elif token in BOUNDARIES or (token in _TRANSPARENT and digits):
            pass  # "five one two, five five five": commas and dashes do not end a number
        else:
            close()
        index += 1
    close()
    return runs


def _sound_alike_digit(token: str) -> str:
    """The digit word a sound-alike the ears write stands for ("time" → "five"), else the token."""
    digit = SOUND_ALIKES.get(token)
    return token if digit is None else SPOKEN_DIGITS[int(digit)]


def _is_single_digit(token: str) -> bool:
    return token in _UNITS or token in _ZERO_LETTERS or (token.isdigit() and len(token) == 1)


def _digits_at(tokens: Sequence[str], index: int, in_run: bool) -> tuple[str | None, int]:
    """The digits the words at ``index`` say, and how many words that took (None: not digits).

    A leading "oh" (not yet ``in_run``) followed by a digit word gives "" (see DigitRun).
    """
    token = tokens[index]
    following = tokens[index + 1] if index + 1 < len(tokens) else ""
    if token.isdigit():
        return token, 1
    if token in _UNITS:
        if following in ("hundred", "thousand"):
            return _hundreds(tokens, index)
        return str(_UNITS[token]), 1
    if token in _ZERO_LETTERS:
        if in_run:
            return "0", 1
        if following in _UNITS or following in _ZERO_LETTERS or following.isdigit():
            return "", 1
        return None, 1
    if token in _TEENS:
        return str(_TEENS[token]), 1
    if token in _TENS:
        if following in _UNITS and _UNITS[following] > 0:
            return f"{_TENS[token]}{_UNITS[following]}", 2
        return f"{_TENS[token]}0", 1
    return None, 1


def _hundreds(tokens: Sequence[str], index: int) -> tuple[str, int]:
    """ "eight hundred" → 800, "five hundred twelve" → 512, "two thousand" → 2000."""
    unit = _UNITS[tokens[index]]
    if tokens[index + 1] == "thousand":
        return f"{unit}000", 2
    rest = list(tokens[index + 2 : index + 5])
    skipped = 1 if rest[:1] == ["and"] else 0
    rest = rest[skipped:]
    if rest and rest[0] in _TEENS:
        return f"{unit}{_TEENS[rest[0]]}", 3 + skipped
    if rest and rest[0] in _TENS:
        if len(rest) > 1 and rest[1] in _UNITS and _UNITS[rest[1]] > 0:
            return f"{unit}{_TENS[rest[0]]}{_UNITS[rest[1]]}", 4 + skipped
        return f"{unit}{_TENS[rest[0]]}0", 3 + skipped
    if skipped and rest and rest[0] in _UNITS:
        return f"{unit}0{_UNITS[rest[0]]}", 4
    return f"{unit}00", 2


def find_phone_number(text: str | Utterance) -> str | None:
    """The first valid phone number said in ``text``, as E.164; None when there is none."""
    utterance = read(text) if isinstance(text, str) else text
    found = phone_number_run(utterance)
    return found[0] if found else None


def phone_number_run(utterance: Utterance) -> tuple[str, int, int] | None:
    """The first valid phone number said, as E.164, with the words it took (first, last);
    read with the digits' sound-alikes only when the words as heard hold none, and then only a
    home number (read so, "for one five five …" would make a number abroad of a misheard one)."""
    return _phone_number_in(digit_runs(utterance), abroad=True) or _phone_number_in(
        digit_runs(utterance, sound_alikes=True), abroad=False
    )


def _phone_number_in(runs: list[DigitRun], *, abroad: bool) -> tuple[str, int, int] | None:
    """The first number ``runs`` say (``abroad``: a run may be one with its country code)."""
    for run in runs:
        for digits in run.readings():
            number = e164_or_none(digits) or (e164_or_none("+" + digits) if abroad else None)
            if number is not None:
                return number, run.first, run.last
    if 1 < len(runs) <= 4:  # "five one two and then five five five zero one nine nine"
        number = e164_or_none("".join(run.digits for run in runs))
        if number is not None:
            return number, runs[0].first, runs[-1].last
    return None


def e164_or_none(candidate: str) -> str | None:
    """``candidate`` as an E.164 number if it is a valid phone number, else None."""
    number = parsed_number(candidate)
    if number is None:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parsed_number(candidate: str) -> phonenumbers.PhoneNumber | None:
    """``candidate`` parsed (as a US number unless it has a country code), if valid."""
    if not candidate or len(candidate) > MAX_DIALLED_DIGITS + 1:
        return None
    try:
        number = phonenumbers.parse(candidate, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def spoken_phone_number(e164: str) -> str | None:
    """The number as a receptionist reads it back: "five one two, five five five, zero one…".

    None when ``e164`` is not a valid phone number (a withheld or malformed caller ID).
    """
    number = parsed_number(e164)
    if number is None:
        return None
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    groups = re.findall(r"\d+", national)
    return ", ".join(" ".join(SPOKEN_DIGITS[int(digit)] for digit in group) for group in groups)
