"""Emergencies in the caller's words, and what to tell the caller first.

One detector for every brain: the scripted interviewer and the language model's guardrails both
ask :func:`detect_emergency` about everything the caller says, at any point in the call. A gas
smell, carbon monoxide, smoke or fire, sparks or a burning smell, flooding or a burst pipe, no
heat in freezing weather, or the caller simply calling it an emergency: the message is marked an
emergency and the caller hears the fixed safety line of its kind (call 911, or the gas company,
first) before the call goes on.

It errs on the side of an emergency: only a plain negation right before the words excuses them
("no smoke", "I don't smell gas"); "I don't think it's a gas leak" still counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from voice_agent.chat.caller_text import Phrases, Utterance, negated, read
from voice_agent.chat.numbers_in_words import digit_runs


class EmergencyKind(StrEnum):
    """What kind of danger the caller described, most dangerous first."""

    GAS = "gas"
    CARBON_MONOXIDE = "carbon_monoxide"
    FIRE = "fire"
    ELECTRICAL = "electrical"
    FLOODING = "flooding"
    NO_HEAT_IN_FREEZE = "no_heat_in_freeze"
    DECLARED = "declared"  # "it's an emergency", no danger named


@dataclass(frozen=True)
class Emergency:
    """A danger the caller described: its kind, what to tell them at once, a note for the owner."""

    kind: EmergencyKind
    advice: str
    note: str


ADVICE = {
    EmergencyKind.GAS: (
        "If you smell gas, please leave the building now and call the gas company or 911 "
        "from outside. Don't switch anything on or off."
    ),
    EmergencyKind.CARBON_MONOXIDE: (
        "Please get everyone outside into fresh air right away and call 911 first."
    ),
    EmergencyKind.FIRE: "If there's smoke or fire, please get everyone out and call 911 first.",
    EmergencyKind.ELECTRICAL: (
        "Please keep clear of it, and call 911 first if there's smoke or fire or anyone is hurt."
    ),
    EmergencyKind.FLOODING: (
        "Please keep away from water near outlets or wiring, and call 911 first if anyone is in "
        "danger."
    ),
    EmergencyKind.NO_HEAT_IN_FREEZE: "If anyone is at risk from the cold, please call 911 first.",
    EmergencyKind.DECLARED: "If anyone is in danger, please call 911 first.",
}
NOTES = {
    EmergencyKind.GAS: "a gas smell or leak; told to leave and call the gas company or 911",
    EmergencyKind.CARBON_MONOXIDE: "carbon monoxide; told to get outside and call 911",
    EmergencyKind.FIRE: "smoke or fire; told to get out and call 911",
    EmergencyKind.ELECTRICAL: "sparks, burning or a shock; told to keep clear and call 911",
    EmergencyKind.FLOODING: "flooding or a burst pipe; told to keep clear, 911 if in danger",
    EmergencyKind.NO_HEAT_IN_FREEZE: "no heat in freezing weather; told to call 911 if at risk",
    EmergencyKind.DECLARED: "an emergency; told to call 911 if anyone is in danger",
}

_GAS = Phrases(
    """gas smell | gas smells | gas odor | gas odour | smell of gas | smells of gas
    | smell gas | smells gas | smelled gas | smelling gas | smell natural gas | smell propane
    | smell like gas | smells like gas | smelled like gas | smelling like gas | smells like propane
    | gas leak | gas leaks | gas leaking | leaking gas | gas is leaking | gas line leaking
    | gas line broke | gas line is broken | broke the gas line | hit the gas line
    | gas coming out | hissing gas | propane leak | propane smell | rotten egg smell
    | rotten eggs smell | smells like rotten eggs | smell rotten eggs | gas in the house
    | gas in the kitchen | gas in the basement | gas in the air"""
)
_CARBON_MONOXIDE = Phrases(
    """carbon monoxide | monoxide | co alarm | co alarms | co detector | co detectors
    | c o alarm | c o detector | co2 alarm | co2 detector | co is going off"""
)
_FIRE = Phrases(
    """fire | fires | on fire | caught fire | flames | flame | smoke | smoking | smoky
    | smoke alarm going off | smoke alarm is going off | smoke alarms going off
    | fire alarm going off | fire alarm is going off | electrical fire"""
)
_NOT_FIRE = Phrases(
    """smoke detector | smoke detectors | smoke alarm | smoke alarms | fire alarm | fire alarms
    | fire pit | fire place | fire sprinkler | fire sprinklers | smoke test | no smoking
    | quit smoking"""
)
_ELECTRICAL = Phrases(
    """spark | sparks | sparking | sparked | sparky | arcing | arced | burning smell
    | smell of burning | smells like burning | smell burning | smells burning | something burning
    | burning plastic | smell something burning | burnt smell | smells burnt | melting outlet
    | outlet melted | outlet is melting | melted outlet | melted plug | got shocked
    | getting shocked | got a shock | electrocuted | live wire | live wires | power line down
    | power lines down | downed power line | wires are hanging | exposed wires"""
)
_FLOODING = Phrases(
    """flood | floods | flooding | flooded | water everywhere | burst | bursted | bursting
    | pipe burst | pipes burst | burst pipe | burst pipes | busted pipe | pipe busted
    | water pouring | water is pouring | pouring water | water gushing | water is gushing
    | gushing water | gushing | water spraying | water is spraying | spraying water
    | water pouring in | water pouring out"""
)
_DECLARED = Phrases("emergency | an emergency | emergencies | nine one one | 911")
_NOT_DECLARED = Phrases(
    """emergency service | emergency services | emergency call | emergency calls
    | emergency line | emergency number | emergency rate | emergency rates | emergency fee
    | emergency fees | emergency plumber | emergency electrician | emergency locksmith
    | emergency visit | emergency visits | emergency hours"""
)
_HEAT_OBJECTS = Phrases("heat | heater | heating | furnace | boiler | heat pump")
_HEAT_OUT = Phrases(
    """out | off | broke | broken | died | dead | stopped | quit | went out | gone out
    | not working | isn't working | isnt working | won't turn on | wont turn on
    | won't come on | won't start | doesn't work | don't work | stopped working | gave out
    | is out | went off | conked out"""
)
_NO_HEAT = Phrases("no heat | no heating | without heat | lost heat | lost our heat | lost my heat")
_COLD = Phrases(
    """freezing | freeze | frozen | froze | below zero | below freezing | sub zero | subzero
    | snow | snowing | snowstorm | blizzard | ice storm | icy | so cold | really cold
    | very cold | bitter cold | bitterly cold | ice cold | cold in here | winter storm
    | negative | minus | zero degrees | single digits"""
)
_DEGREES = frozenset({"degrees", "degree"})
_COLD_DEGREES = 40
_NEAR = 6


def detect_emergency(text: str | Utterance | None) -> Emergency | None:
    """The most dangerous emergency the caller described in ``text``, or None."""
    kinds = emergency_kinds(text)
    return emergency(kinds[0]) if kinds else None


def emergency(kind: EmergencyKind) -> Emergency:
    """The advice and the owner's note for ``kind``."""
    return Emergency(kind, ADVICE[kind], f"Possible emergency: the caller described {NOTES[kind]}.")


def emergency_kinds(text: str | Utterance | None) -> list[EmergencyKind]:
    """Every kind of emergency the caller described in ``text``, most dangerous first."""
    if not text:
        return []
    utterance = read(text) if isinstance(text, str) else text
    tokens = utterance.tokens
    if not tokens:
        return []
    found: list[EmergencyKind] = []
    if _GAS.occurs(tokens, plain=True):
        found.append(EmergencyKind.GAS)
    if _CARBON_MONOXIDE.occurs(tokens, plain=True):
        found.append(EmergencyKind.CARBON_MONOXIDE)
    if _mentions_fire(tokens):
        found.append(EmergencyKind.FIRE)
    if _ELECTRICAL.occurs(tokens, plain=True):
        found.append(EmergencyKind.ELECTRICAL)
    if _FLOODING.occurs(tokens, plain=True):
        found.append(EmergencyKind.FLOODING)
    if _no_heat(tokens) and _cold(utterance):
        found.append(EmergencyKind.NO_HEAT_IN_FREEZE)
    if not found and _declared(tokens):
        found.append(EmergencyKind.DECLARED)
    return found


def _mentions_fire(tokens: tuple[str, ...]) -> bool:
    harmless = _covered(_NOT_FIRE, tokens)
    for start, end in _FIRE.find(tokens):
        if tokens[start:end][-2:] == ("going", "off"):
            return True  # "the smoke alarm is going off"
        if start not in harmless and not negated(tokens, start):
            return True
    return False


def _declared(tokens: tuple[str, ...]) -> bool:
    harmless = _covered(_NOT_DECLARED, tokens)
    return any(
        start not in harmless and not negated(tokens, start) for start, _ in _DECLARED.find(tokens)
    )


def _covered(phrases: Phrases, tokens: tuple[str, ...]) -> set[int]:
    return {index for start, end in phrases.find(tokens) for index in range(start, end)}


def no_heat(text: str | Utterance) -> bool:
    """Whether the caller says their heat is out ("no heat", "the furnace quit")."""
    utterance = read(text) if isinstance(text, str) else text
    return _no_heat(utterance.tokens)


def _no_heat(tokens: tuple[str, ...]) -> bool:
    if _NO_HEAT.occurs(tokens, plain=True):
        return True
    objects = [
        (start, end)
        for start, end in _HEAT_OBJECTS.find(tokens)
        if tokens[start - 1 : start] not in (("water",), ("hot",), ("space",))
    ]
    problems = [(start, end) for start, end in _HEAT_OUT.find(tokens) if not negated(tokens, start)]
    return any(
        0 <= problem_start - object_end < _NEAR or 0 <= object_start - problem_end < 2
        for object_start, object_end in objects
        for problem_start, problem_end in problems
    )


def _cold(utterance: Utterance) -> bool:
    tokens = utterance.tokens
    if _COLD.occurs(tokens, plain=True):
        return True
    for run in digit_runs(utterance):
        after = tokens[run.last + 1 : run.last + 2]
        if after and after[0] in _DEGREES and int(run.digits[:4]) <= _COLD_DEGREES:
            return True
    return False
