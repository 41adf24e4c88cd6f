"""What the call was about, in a few words of our own: the message's topic.

The caller's words stay the caller's (the owner sees them quoted); the texts we send the caller
say what the call was about in our own words instead — "about your leaking kitchen sink" — never
a transcript in the first person. :func:`find_topic` matches the caller's words against a
vocabulary of trade problems (plumbing, electrical, locks, heating and cooling): a topic needs
the thing and what is wrong with it near each other ("the sink" + "leaking"), or a phrase that
says both ("locked out", "burst pipe", "no power"). When nothing matches with confidence it
answers None, and the text names no topic: "about your service request".

Each topic reads after "your": "your clogged shower drain", "your tripping breaker".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache

from voice_agent.chat.caller_text import Phrases, Utterance, clauses, negated, read
from voice_agent.chat.emergencies import EmergencyKind, emergency_kinds, no_heat

NO_TOPIC = "service request"
MAX_GAP = 5  # words between the thing and what is wrong with it
_PLACE_BEFORE = 3
_PLACE_AFTER = 4

_LEAK = "leak | leaks | leaking | leaked | leaky | drip | drips | dripping | dribbling"
_CLOG = """clog | clogged | clogs | clogging | blocked | backed up | backing up | backs up
    | stopped up | plugged | plugged up | slow | won't drain | wont drain | not draining
    | isn't draining | doesn't drain | draining slowly | overflowing | overflowed | overflow"""
_BROKEN = """broken | broke | not working | isn't working | isnt working | stopped working
    | doesn't work | doesnt work | don't work | dont work | quit | quit working | died | dead
    | went out | is out | won't turn on | wont turn on | won't work | stopped | gave out
    | busted | cracked | snapped | jammed | stuck | loose | falling off | came off | fell off"""
_NOISE = """noise | noises | noisy | banging | bangs | rumbling | popping | knocking | clanking
    | humming | buzzing | making a sound | making sounds | loud"""
_INSTALL = """install | installed | installing | installation | put in | new | add | added
    | replace | replaced | replacing | replacement | upgrade | upgraded | upgrading | hook up
    | hooked up | mount | mounted"""

_REPAIR = """fix | fixed | fixing | repair | repaired | repairing | look at | looked at
    | checked | check out | checked out | work again"""

_ROOMS = {
    "kitchen": "kitchen",
    "bathroom": "bathroom",
    "bath": "bathroom",
    "laundry": "laundry",
    "utility": "utility",
    "basement": "basement",
    "garage": "garage",
}
_DRAIN_PLACES = {
    **_ROOMS,
    "shower": "shower",
    "tub": "tub",
    "bathtub": "tub",
    "floor": "floor",
}
_LIGHT_PLACES = {
    "porch": "porch",
    "kitchen": "kitchen",
    "bathroom": "bathroom",
    "garage": "garage",
    "outdoor": "outdoor",
    "outside": "outdoor",
    "ceiling": "ceiling",
    "yard": "yard",
    "hallway": "hallway",
}
_LEAK_PLACES = {
    **_ROOMS,
    "ceiling": "ceiling",
    "roof": "roof",
    "wall": "wall",
}
_FLOOD_PLACES = {
    "basement": "basement",
    "kitchen": "kitchen",
    "bathroom": "bathroom",
    "garage": "garage",
    "laundry": "laundry room",
    "crawl": "crawl space",
}
_CAR = {"car": "car", "truck": "car", "vehicle": "car", "van": "car"}


@dataclass(frozen=True)
class Rule:
    """One topic: ``topic`` once ``problems`` are said near ``objects`` (or alone, without
    objects); ``{place}`` in the topic takes a word said near the object ("kitchen" sink)."""

    topic: str
    problems: Phrases | None
    objects: Phrases | None = None
    places: Mapping[str, str] = field(default_factory=dict)
    alone: bool = False  # the object alone names the topic ("a water heater")


def _rule(
    topic: str,
    problems: str | None,
    objects: str | None = None,
    places: Mapping[str, str] | None = None,
    *,
    alone: bool = False,
) -> Rule:
    return Rule(
        topic,
        _shared(problems) if problems else None,
        _shared(objects) if objects else None,
        places or {},
        alone,
    )


@cache
def _shared(listing: str) -> Phrases:
    """One Phrases per listing, so rules that share one search the words once."""
    return Phrases(listing)


_SINK = "sink | sinks"
_FAUCET = "faucet | faucets | tap | taps | spigot | spout"
_TOILET = "toilet | toilets | commode"
_DRAIN = "drain | drains | drain line | drain pipe"
_PIPE = "pipe | pipes | water line | water pipe | water pipes | supply line"
_WATER_HEATER = """water heater | water heaters | hot water heater | hot water tank | water tank
    | tankless | tankless heater | boiler"""
_OUTLET = "outlet | outlets | plug | plugs | socket | sockets | receptacle | receptacles | gfci"
_LIGHT = """light | lights | lighting | light fixture | light fixtures | fixture | fixtures
    | lamp | lamps | bulb | bulbs"""
_BREAKER = "breaker | breakers | circuit breaker | circuit breakers | circuit | circuits"
_LOCK = "lock | locks | deadbolt | deadbolts | door lock | lockset | key | keys | door handle"
_AC = """ac | a c | a/c | air conditioner | air conditioners | air conditioning | air con
    | central air | cooling | heat pump | mini split"""

_PROJECTS = (
    _rule(
        "EV charger",
        None,
        """ev charger | car charger | electric car charger | tesla charger | charging station
        | ev charging | level two charger | level 2 charger | electric vehicle charger""",
        alone=True,
    ),
)
_SPECIFIC = (
    _rule("clogged {place}drain", _CLOG, _DRAIN, _DRAIN_PLACES),
    _rule("leaking {place}sink", _LEAK, _SINK, _ROOMS),
    _rule("clogged {place}sink", _CLOG, _SINK, _ROOMS),
    _rule("leaking {place}faucet", _LEAK, _FAUCET, _ROOMS),
    _rule("broken {place}faucet", _BROKEN, _FAUCET, _ROOMS),
    _rule("{place}faucet repair", _REPAIR, _FAUCET, _ROOMS),
    _rule(
        "running toilet",
        "running | runs | keeps running | won't stop running | constantly running | keeps filling",
        _TOILET,
    ),
    _rule("overflowing toilet", "overflowing | overflowed | overflows | overflow", _TOILET),
    _rule("clogged toilet", _CLOG + " | won't flush | wont flush | not flushing", _TOILET),
    _rule("leaking toilet", _LEAK, _TOILET),
    _rule("toilet repair", _REPAIR, _TOILET),
    _rule("broken toilet", _BROKEN, _TOILET),
    _rule("leaking shower", _LEAK, "shower | showers | tub | bathtub | shower head"),
    _rule("frozen pipes", "frozen | froze | freezing", _PIPE),
    _rule("leaking pipe", _LEAK, _PIPE),
    _rule("leaking water heater", _LEAK, _WATER_HEATER),
    _rule("noisy water heater", _NOISE, _WATER_HEATER),
    _rule("water heater", None, _WATER_HEATER, alone=True),
    _rule(
        "hot water",
        """no hot water | hot water is out | hot water's out | hot water isn't working
        | hot water not working | hot water stopped | hot water went out | out of hot water
        | lost hot water | lost our hot water | lost my hot water | hot water is gone
        | water won't get hot | water isn't getting hot | water never gets hot | only cold water
        | hot water stopped working | hot water doesn't work""",
    ),
    _rule(
        "sewer backup",
        "backup | back up | backing up | backed up | overflowing | overflow | smell | smells",
        "sewer | sewage | septic | sewer line | main line",
    ),
    _rule("sump pump", None, "sump pump | sump pumps | sump", alone=True),
    _rule("garbage disposal", None, "garbage disposal | disposal | garbage disposer", alone=True),
    _rule(
        "low water pressure",
        "low | weak | no | bad | dropped | barely",
        "water pressure | pressure",
    ),
    _rule(
        "tripping breaker",
        """trip | trips | tripping | tripped | keeps tripping | keeps going off | keeps flipping
        | keeps popping | popped | popping | flipped | flipping | blew | blown | blowing
        | went off | goes off | shut off | shuts off | cutting off""",
        _BREAKER,
    ),
    _rule("blown fuse", "blew | blown | blowing | keeps blowing | burned out", "fuse | fuses"),
    _rule(
        "power outage",
        """no power | power is out | power's out | power out | power went out | power goes out
        | lost power | power outage | power keeps going out | no electricity
        | electricity is out | electricity went out | power is off | power went off
        | lights went out | without power | blackout | power cut""",
    ),
    _rule("new outlet", _INSTALL, _OUTLET),
    _rule("outlet repair", _REPAIR, _OUTLET),
    _rule("dead outlets", _BROKEN + " | no power | went dead", _OUTLET),
    _rule("flickering lights", "flicker | flickers | flickering | flickered | dimming", _LIGHT),
    _rule("new light fixture", _INSTALL, _LIGHT),
    _rule(
        "{place}light",
        _BROKEN + " | burned out | burnt out | won't come on",
        _LIGHT,
        _LIGHT_PLACES,
    ),
    _rule(
        "electrical panel",
        None,
        """electrical panel | electric panel | breaker panel | breaker box | fuse box
        | panel upgrade | service panel | main panel | electrical service | panel""",
        alone=True,
    ),
    _rule("ceiling fan", None, "ceiling fan | ceiling fans", alone=True),
    _rule("smoke detectors", None, "smoke detector | smoke detectors | smoke alarms", alone=True),
    _rule("light switch", _BROKEN + " | " + _INSTALL, "switch | switches | light switch | dimmer"),
    _rule(
        "{place}lockout",
        """locked out | lock myself out | locked myself out | locked my keys | locked the keys
        | locked our keys | keys locked | keys are locked | keys inside | key inside
        | can't get in | cant get in | can't get into | cant get into | lockout | locked outside""",
        None,
        _CAR,
    ),
    _rule(
        "lost {place}keys",
        """lost my keys | lost the keys | lost our keys | lost my key | lost keys
        | can't find my keys""",
        None,
        _CAR,
    ),
    _rule(
        "lock change",
        """rekey | re key | rekeyed | rekeying | change the locks | change my locks
        | change our locks | change locks | locks changed | new locks | replace the locks
        | replace my locks | locks replaced | lock change""",
    ),
    _rule("broken lock", _BROKEN + " | won't turn | won't open | won't lock | won't unlock", _LOCK),
    _rule(
        "key copies",
        None,
        "spare key | spare keys | key copy | key copies | copy of a key | copies of my key",
        alone=True,
    ),
    _rule(
        "AC not cooling",
        """not cooling | isn't cooling | won't cool | not cold | blowing warm | blowing hot
        | warm air | hot air | not working | isn't working | stopped working | broken | broke
        | died | quit | went out | is out | won't turn on | doesn't work""",
        _AC,
    ),
    _rule("leaking AC", _LEAK, _AC),
    _rule("thermostat", None, "thermostat | thermostats", alone=True),
    _rule("furnace", None, "furnace | furnaces", alone=True),
)
_GENERIC = (
    _rule(
        "{place}leak",
        _LEAK + " | water coming through | water coming in | water coming from | water is coming",
        None,
        _LEAK_PLACES,
    ),
    _rule("AC", None, _AC, alone=True),
)
_EVERY_THING = Phrases(
    "|".join([_SINK, _FAUCET, _TOILET, _DRAIN, _PIPE, _WATER_HEATER, _OUTLET, _LIGHT, _BREAKER])
    + "|".join(["", _LOCK, _AC, "shower | tub | bathtub | fuse | switch | furnace"])
)
_NOT_WATER = Phrases("gas | propane | oil | air | coolant | refrigerant | freon")
_UNPLACED = {"{place}leak": "water leak", "{place}light": "lights", "flooded {place}": "flooding"}
_SPARKING_OUTLET = _rule("sparking outlet", "spark | sparks | sparking | sparked", _OUTLET)
_BURST = Phrases("burst | bursted | busted | pipe burst | pipes burst | burst pipe")
_FLOODED = _rule("flooded {place}", "flood | flooding | flooded", None, _FLOOD_PLACES)


def _vocabulary() -> frozenset[str]:
    listings = [_LEAK, _CLOG, _SINK, _FAUCET, _TOILET, _DRAIN, _PIPE, _WATER_HEATER, _OUTLET]
    listings += [_LIGHT, _BREAKER, _LOCK, _AC, "furnace heat heater heating thermostat fuse"]
    listings += ["shower tub bathtub sewer sewage septic disposal sump charger panel"]
    words = {word for listing in listings for word in listing.replace("|", " ").split()}
    return frozenset(word for word in words if len(word) > 2 and "'" not in word)


TRADE_WORDS = _vocabulary()
"""Words of the trades vocabulary ("sink", "leaking", "breaker"): never a caller's name."""


@dataclass(frozen=True)
class _Match:
    tier: int
    position: int
    topic: str


def find_topic(text: str | Utterance | None) -> str | None:
    """A short noun phrase for what the caller's words are about, or None when unsure."""
    if not text:
        return None
    return _topic(read(text) if isinstance(text, str) else text)


@lru_cache(maxsize=256)
def _topic(utterance: Utterance) -> str | None:
    tokens = utterance.tokens
    if not tokens:
        return None
    danger = _danger_topic(tokens, emergency_kinds(utterance))
    if danger is not None:
        return danger
    if no_heat(utterance):
        return "furnace" if "furnace" in tokens else "heating"
    for tier in (_PROJECTS, _SPECIFIC, _GENERIC):
        matches = [match for rule in tier if (match := _match(rule, tokens)) is not None]
        if matches:
            return min(matches, key=lambda match: match.position).topic
    return None


def subject_of_texts(topic: str | None) -> str:
    """What a text to the caller says the call was about: "your leaking kitchen sink", or
    "your service request" when there is no topic."""
    return f"your {topic or NO_TOPIC}"


def _danger_topic(tokens: tuple[str, ...], kinds: list[EmergencyKind]) -> str | None:
    if EmergencyKind.GAS in kinds:
        return "gas smell"
    if EmergencyKind.CARBON_MONOXIDE in kinds:
        return "carbon monoxide alarm"
    if EmergencyKind.ELECTRICAL in kinds:
        sparks = any(token.startswith("spark") or token.startswith("arc") for token in tokens)
        burning = any(token.startswith("burn") for token in tokens)
        if sparks:
            outlet = _match(_SPARKING_OUTLET, tokens)
            return outlet.topic if outlet else "electrical sparks"
        return "burning smell" if burning else "electrical problem"
    if EmergencyKind.FLOODING in kinds:
        if _BURST.occurs(tokens, plain=True):
            return "burst pipe"
        flooded = _match(_FLOODED, tokens)
        return flooded.topic if flooded is not None else "flooding"
    return None


def _match(rule: Rule, tokens: tuple[str, ...]) -> _Match | None:
    problems = (
        [(start, end) for start, end in rule.problems.find(tokens) if not negated(tokens, start)]
        if rule.problems
        else []
    )
    objects = rule.objects.find(tokens) if rule.objects else []
    if rule.objects is None:
        for start, end in problems:
            if rule.topic.endswith("leak") and _about_something_else(tokens, start):
                continue
            return _Match(0, start, _placed(rule, tokens, start, end))
        return None
    for object_start, object_end in objects:
        for start, end in problems:
            if (
                _same_clause(tokens, object_start, start)
                and _near((object_start, object_end), (start, end))
                and not _other_thing_between(rule, tokens, (object_start, object_end), (start, end))
            ):
                return _Match(
                    0,
                    min(object_start, start),
                    _placed(rule, tokens, object_start, object_end),
                )
    if rule.alone and objects:
        object_start, object_end = objects[0]
        return _Match(0, object_start, _placed(rule, tokens, object_start, object_end))
    return None


def _near(thing: tuple[int, int], problem: tuple[int, int]) -> bool:
    if problem[0] >= thing[1]:
        return problem[0] - thing[1] <= MAX_GAP
    return thing[0] - problem[1] <= MAX_GAP and problem[1] <= thing[0]


def _other_thing_between(
    rule: Rule, tokens: tuple[str, ...], thing: tuple[int, int], problem: tuple[int, int]
) -> bool:
    """ "the sink is fine, the drain is clogged": the drain is clogged, not the sink."""
    low, high = (thing[1], problem[0]) if problem[0] >= thing[1] else (problem[1], thing[0])
    return any(
        low <= start < high and tokens[start] not in rule.places
        for start, _ in _EVERY_THING.find(tokens)
    )


def _same_clause(tokens: tuple[str, ...], first: int, second: int) -> bool:
    low, high = sorted((first, second))
    return not any(start > low and start <= high for start, _ in clauses(tokens))


def _placed(rule: Rule, tokens: tuple[str, ...], start: int, end: int) -> str:
    if "{place}" not in rule.topic:
        return rule.topic
    nearby = [*tokens[max(0, start - _PLACE_BEFORE) : start], *tokens[end : end + _PLACE_AFTER]]
    for token in nearby:
        if token in rule.places:
            return rule.topic.format(place=rule.places[token] + " ").strip()
    return _UNPLACED.get(rule.topic) or rule.topic.format(place="").strip()


def _about_something_else(tokens: tuple[str, ...], start: int) -> bool:
    """A leak of gas, oil or air is not a water leak."""
    window = tokens[max(0, start - 4) : start + 4]
    return _NOT_WATER.occurs(window)
