"""The one emergency detector both brains use: dangers in plain speech, and what to say first."""

from __future__ import annotations

import re

import pytest

from voice_agent.chat.emergencies import (
    ADVICE,
    EmergencyKind,
    detect_emergency,
    emergency,
    emergency_kinds,
    no_heat,
)


@pytest.mark.parametrize(
    ("said", "kind"),
    [
        ("i smell gas in the kitchen", EmergencyKind.GAS),
        ("um there's a gas smell in the basement", EmergencyKind.GAS),
        ("it smells like gas in here", EmergencyKind.GAS),
        ("i think we have a gas leak", EmergencyKind.GAS),
        ("i don't think it's a gas leak but can someone check", EmergencyKind.GAS),
        ("i don't know i smell gas", EmergencyKind.GAS),
        ("it smells like rotten eggs by the stove", EmergencyKind.GAS),
        ("the carbon monoxide alarm keeps going off", EmergencyKind.CARBON_MONOXIDE),
        ("my co detector is beeping", EmergencyKind.CARBON_MONOXIDE),
        ("there's smoke coming out of the panel", EmergencyKind.FIRE),
        ("the water heater caught fire", EmergencyKind.FIRE),
        ("the smoke alarm is going off", EmergencyKind.FIRE),
        ("sparks are coming out of the outlet", EmergencyKind.ELECTRICAL),
        ("the outlet is sparking", EmergencyKind.ELECTRICAL),
        ("there's a burning smell from the breaker box", EmergencyKind.ELECTRICAL),
        ("i think i smell something burning", EmergencyKind.ELECTRICAL),
        ("my son got shocked by the light switch", EmergencyKind.ELECTRICAL),
        ("the basement is flooding", EmergencyKind.FLOODING),
        ("water everywhere in the laundry room", EmergencyKind.FLOODING),
        ("a pipe burst under the sink", EmergencyKind.FLOODING),
        ("uh water is gushing out of the wall", EmergencyKind.FLOODING),
        ("the heat is out and it's freezing", EmergencyKind.NO_HEAT_IN_FREEZE),
        ("our furnace quit and it's ten degrees outside", EmergencyKind.NO_HEAT_IN_FREEZE),
        ("no heat and it's below zero", EmergencyKind.NO_HEAT_IN_FREEZE),
        ("the heater died during the snowstorm", EmergencyKind.NO_HEAT_IN_FREEZE),
        ("it's an emergency", EmergencyKind.DECLARED),
        ("this is an emergency please hurry", EmergencyKind.DECLARED),
    ],
)
def test_dangers_in_plain_speech(said: str, kind: EmergencyKind) -> None:
    found = detect_emergency(said)
    assert found is not None
    assert found.kind is kind


@pytest.mark.parametrize(
    "said",
    [
        "there's no gas smell or anything",
        "i don't smell gas",
        "no flooding just a slow drip",
        "there's no smoke",
        "it's not an emergency",
        "it's not really an emergency",
        "do you do emergency service",
        "what's your emergency rate",
        "i need smoke detectors installed",
        "the smoke detector keeps chirping",
        "my gas stove won't light",
        "the furnace is making a weird noise",
        "the heat is out",  # no heat, but no freeze: urgent, not an emergency
        "my hot water heater is broken and it's freezing outside",  # water, not heating
        "my kitchen faucet drips",
        "the fireplace needs cleaning",
        "",
        "   ",
        "🙂" * 500,
    ],
)
def test_ordinary_trouble_is_not_an_emergency(said: str) -> None:
    assert detect_emergency(said) is None


def test_none_and_empty_are_not_emergencies() -> None:
    assert detect_emergency(None) is None
    assert emergency_kinds("") == []


def test_the_most_dangerous_kind_comes_first() -> None:
    said = "the basement is flooding and now i smell gas"
    assert emergency_kinds(said) == [EmergencyKind.GAS, EmergencyKind.FLOODING]
    found = detect_emergency(said)
    assert found is not None and found.kind is EmergencyKind.GAS


def test_a_named_danger_is_not_also_a_declared_one() -> None:
    assert emergency_kinds("it's an emergency, the basement is flooding") == [
        EmergencyKind.FLOODING
    ]


@pytest.mark.parametrize("kind", list(EmergencyKind))
def test_every_kind_tells_the_caller_to_call_911_or_the_gas_company_first(
    kind: EmergencyKind,
) -> None:
    advice = ADVICE[kind]
    assert "911" in advice
    for sentence in re.split(r"(?<=[.?!])\s+", advice):
        assert len(sentence) <= 120, sentence
    found = emergency(kind)
    assert found.advice == advice
    assert found.note.startswith("Possible emergency: the caller described ")
    assert "911" in found.note


def test_gas_sends_the_caller_outside_to_the_gas_company() -> None:
    found = detect_emergency("smells like gas in the kitchen")
    assert found is not None
    assert "gas company" in found.advice
    assert "leave the building" in found.advice


@pytest.mark.parametrize(
    ("said", "out"),
    [
        ("the heat is out", True),
        ("we have no heat", True),
        ("the furnace stopped working", True),
        ("our boiler won't turn on", True),
        ("the heat works fine", False),
        ("the water heater stopped working", False),
        ("the furnace is noisy", False),
    ],
)
def test_no_heat(said: str, out: bool) -> None:
    assert no_heat(said) is out


def test_huge_input_is_read_only_so_far() -> None:
    assert detect_emergency("la " * 100_000 + "gas leak") is None
    assert detect_emergency("gas leak " + "la " * 100_000) is not None
