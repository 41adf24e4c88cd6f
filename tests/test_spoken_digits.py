"""Digits in what the ears heard: a phone number heard whole, or garbled in the hearing."""

from __future__ import annotations

import pytest

from media_stream.spoken_digits import digit_runs, garbled_number, holds_whole_number


@pytest.mark.parametrize(
    ("heard", "runs"),
    [
        ("My number is 512-555-0199.", ["5125550199"]),
        ("five one two, five five five, zero one nine nine", ["5125550199"]),
        ("It's 4155 double 5 triple 0 9.", ["4155550009"]),
        ("2 1 0, time time time, 8 1 3 time", ["2105558135"]),
        ("It's free zero three, fix", ["3036"]),
        ("3 or 3, 5, 5, 0, 1, 9, 9", ["303550199"]),
        ("I'm at 43 Maple Street, apartment 2.", ["43", "2"]),
        ("Oh, the sink is leaking.", ["0"]),
        ("", []),
        ("No numbers here at all.", []),
    ],
)
def test_digit_runs(heard: str, runs: list[str]) -> None:
    assert digit_runs(heard) == runs


@pytest.mark.parametrize(
    ("heard", "whole", "garbled"),
    [
        ("My number is 512-555-0199.", True, False),
        ("one five one two five five five zero one nine nine", True, False),  # with the 1
        ("My number is 512-550093.", False, True),  # "five five five" heard as "55"
        ("You can reach me at 41555", False, True),
        ("It's 303-55053654.", False, True),  # eleven digits, but no leading 1
        ("Call me back on 555-0199.", False, True),  # seven digits: no area code
        ("I'm at 3904 Lake Shore Drive.", False, False),  # a house number
        ("Yes, that's fine.", False, False),
        ("It started two days ago, and for a week before that it dripped.", False, False),
    ],
)
def test_a_whole_number_and_a_garbled_one(heard: str, whole: bool, garbled: bool) -> None:
    assert holds_whole_number(heard) is whole
    assert garbled_number(heard) is garbled
