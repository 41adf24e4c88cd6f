"""Numbers as callers say them: digits in words and groups, repeats, hundreds, corrections."""

from __future__ import annotations

import pytest

from voice_agent.chat.caller_text import read
from voice_agent.chat.numbers_in_words import (
    digit_runs,
    e164_or_none,
    find_phone_number,
    spoken_phone_number,
)


@pytest.mark.parametrize(
    ("said", "number"),
    [
        ("three oh three five five five one two one two", "+13035551212"),
        ("five one two, five five five, oh one nine nine", "+15125550199"),
        ("five one two five five five zero one nine nine", "+15125550199"),
        ("um five one two uh five five five oh one nine nine", "+15125550199"),
        ("five twelve, five fifty five, oh one ninety nine", "+15125550199"),
        ("five one two, five five five, zero one double nine", "+15125550199"),
        ("triple five", None),
        ("eight hundred five five five one two one two", "+18005551212"),
        ("five hundred twelve five five five oh one nine nine", "+15125550199"),
        ("call me at 512-555-0199", "+15125550199"),
        ("(512) 555 0199", "+15125550199"),
        ("512.555.0199", "+15125550199"),
        ("1 512 555 0199", "+15125550199"),
        ("one five one two five five five oh one nine nine", "+15125550199"),
        ("my cell: +44 20 7946 0958", "+442079460958"),
        ("it's five one two and then five five five oh one nine nine", "+15125550199"),
        ("twelve twelve", None),
        ("five five five oh one", None),
        ("", None),
        ("one " * 5000, None),
        ("9" * 5000, None),
    ],
)
def test_phone_numbers_said_every_way(said: str, number: str | None) -> None:
    assert find_phone_number(said) == number


@pytest.mark.parametrize(
    ("heard", "number"),
    [  # what the embedded ears wrote for numbers said down the phone line
        ("My number is time one to, time time time, zero one nine nine.", "+15125550199"),
        ("It's free 0 3 time time time 1 4 2 1", "+13035551421"),
        ("for one time, time time time, two two three four", "+14155552234"),
        ("3-1-2, time time time, 4-3-2-6", "+13125554326"),
        ("two zero fix, five five five, one two one two", "+12065551212"),
        ("call my cell, 3 or 3, 5 5 5, 0, 1, 9, 9.", "+13035550199"),
    ],
)
def test_digits_heard_as_words_that_sound_alike(heard: str, number: str) -> None:
    assert find_phone_number(heard) == number


@pytest.mark.parametrize(
    "heard",
    [
        "I need someone to come for the leak, any time this week.",
        "Call me back on for 155-505-2453, please.",  # a digit lost: no number abroad made of it
        "It's time to fix the two taps, for the third time.",
    ],
)
def test_sound_alikes_make_no_number_of_other_words(heard: str) -> None:
    assert find_phone_number(heard) is None


def test_the_words_as_heard_come_before_their_sound_alikes() -> None:
    assert find_phone_number("Call 512 555 0199 any time, for free.") == "+15125550199"


def test_the_address_number_and_the_phone_number_stay_apart() -> None:
    said = "i'm at 1420 elm street and my number is five one two five five five oh one nine nine"
    assert find_phone_number(said) == "+15125550199"


@pytest.mark.parametrize(
    ("said", "digits"),
    [
        ("oh one nine eight", [("198", True)]),
        ("no it's one two one three", [("1213", False)]),
        ("twenty one", [("21", False)]),
        ("four twenty", [("420", False)]),
        ("nineteen ninety nine", [("1999", False)]),
        ("two thousand", [("2000", False)]),
        ("five hundred and twelve", [("512", False)]),
        ("double oh seven", [("007", False)]),
        ("one two three, four five six - seven eight", [("12345678", False)]),
        ("one two three apples four five", [("123", False), ("45", False)]),
        ("oh well", []),
        ("hello", []),
    ],
)
def test_digit_runs(said: str, digits: list[tuple[str, bool]]) -> None:
    runs = digit_runs(read(said))
    assert [(run.digits, run.lead_zero) for run in runs] == digits


def test_a_leading_oh_may_be_a_zero() -> None:
    (run,) = digit_runs(read("oh one nine eight"))
    assert run.readings() == ("198", "0198")


def test_read_back_in_groups() -> None:
    five_one_two = "five one two, five five five, zero one nine nine"
    three_oh_three = "three zero three, five five five, one two one two"
    assert spoken_phone_number("+15125550199") == five_one_two
    assert spoken_phone_number("+13035551212") == three_oh_three
    assert spoken_phone_number("+266696687") is None
    assert spoken_phone_number("anonymous") is None


def test_e164() -> None:
    assert e164_or_none("5125550199") == "+15125550199"
    assert e164_or_none("555") is None
    assert e164_or_none("") is None
