"""Callers who listen: who they are, how they answer what they hear, and what the record must show.

A persona file (``fixtures/personas/<name>.yaml``) describes one caller for the listening caller
(``call_simulator.listening_caller``): the number called and the caller's own, an espeak-ng
voice (or ``piper``: ``call_simulator.caller_voices``), the range of the human pause before an
answer, and a list of rules. Each rule names cue phrases (``when``) and what the caller does
once it has heard one of them: says a line (one string, or a list of strings said in several
breaths), presses keys, stays quiet or hangs up (after its line, when both are given).
``over: true`` makes the caller act as soon as a cue is heard, over the assistant, instead of
waiting for it to finish; ``times`` caps how often a rule fires. The cue ``anything`` matches
whatever was heard. When several rules match, the one whose cue was heard last wins (ties go to
the earlier rule), so "Thanks, Maria. What do you need?" is answered as a question about the
need, not as thanks.

``expect`` says what the stored call must show afterwards: the consent outcome and the number of
texts to the caller (both required), and optionally whether the consent script was played in
full and re-asked, the caller's name, the callback number and urgency (``null`` for "none
recorded"), words the stored need must include (``a|b`` for either), and who ended the call.

Loading is strict: an unknown key, a malformed number, a pause outside human range or a rule
without an action raises ``PersonaError`` naming the file and the field.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Literal, TypeVar, cast, get_args

from call_simulator.fixture_files import (
    ConsentExpectation,
    FieldReader,
    FixtureError,
    read_yaml,
)

T = TypeVar("T")

Urgency = Literal["emergency", "urgent", "routine"]
EndedBy = Literal["server", "caller"]

FAMILIES = (
    "plain",
    "colloquial",
    "backchannel",
    "hedged",
    "conditional",
    "reversed",
    "questions",
    "negation-worded",
    "misrecognised",
    "several-slots",
    "corrections",
    "numbers-in-words",
    "urgency-plain",
    "emergency",
    "questions-back",
    "silence",
    "hang-up",
    "talk-over",
    "wrong-number",
    "dont-text-me",
)
ANYTHING = "anything"
HUMAN_PAUSE = (0.3, 5.0)  # seconds: the range a persona's answering pause must lie in
MAX_RULE_PAUSE = 5.0
MAX_BREATH_PAUSE = 5.0
DEFAULT_PAUSE = (0.4, 1.5)
DEFAULT_BREATH = (0.9, 1.6)  # between two breaths of one line: longer than endpointing's 0.7 s
MIN_WORDS_PER_MINUTE, MAX_WORDS_PER_MINUTE = 80, 450

_PERSONA_KEYS = frozenset(
    {"name", "family", "description", "business_number", "caller", "voice"}
    | {"words_per_minute", "pause", "breath", "seed", "rules", "expect"}
)
_REQUIRED_KEYS = ("family", "description", "business_number", "caller", "rules", "expect")
_RULE_KEYS = frozenset({"when", "say", "press", "silent", "hang_up", "over", "times", "pause"})
_EXPECT_KEYS = frozenset(
    {"consent", "texts", "consent_asked", "reasked", "name", "callback_number", "urgency"}
    | {"need_includes", "ended_by"}
)
_NOT_WORD = re.compile(r"[^a-z0-9']+")


class PersonaError(FixtureError):
    """A persona file is malformed; the message names the file and the field."""


def normalise(text: str) -> str:
    """Lower case, apostrophes kept, everything else that is not a letter or digit a space."""
    plain = text.lower().replace("’", "'").replace("-", " ")
    return " ".join(_NOT_WORD.sub(" ", plain).split())


@dataclass(frozen=True)
class Say:
    """Say a line, in one breath or several (a pause between breaths)."""

    breaths: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.breaths)


@dataclass(frozen=True)
class Press:
    """Press keypad digits."""

    digits: str


@dataclass(frozen=True)
class KeepQuiet:
    """Say nothing and keep listening."""


@dataclass(frozen=True)
class HangUp:
    """Hang up without a word."""


Action = Say | Press | KeepQuiet | HangUp


@dataclass(frozen=True)
class Rule:
    """What the caller does after hearing one of ``cues`` (normalised phrases)."""

    cues: tuple[str, ...]
    action: Action
    hang_up_after: bool = False  # hang up once the line is said
    over: bool = False  # act as soon as a cue is heard, over the assistant
    times: int | None = None  # how often the rule may fire (None: without limit)
    pause: tuple[float, float] | None = None  # this rule's pause instead of the persona's

    def last_cue_at(self, heard: str) -> int | None:
        """Where in ``heard`` (normalised) the last of this rule's cues ends, or None.

        ``anything`` matches any non-empty text, at position -1: below every real cue.
        """
        padded = f" {heard} "
        best: int | None = None
        for cue in self.cues:
            if cue == ANYTHING:
                found = -1 if heard else None
            else:
                index = padded.rfind(f" {cue} ")
                found = None if index < 0 else index + len(cue)
            if found is not None and (best is None or found > best):
                best = found
        return best

    def describe(self) -> str:
        action = self.action
        if isinstance(action, Say):
            described = f"say {action.text!r}"
        elif isinstance(action, Press):
            described = f"press {action.digits!r}"
        elif isinstance(action, KeepQuiet):
            described = "stay quiet"
        else:
            described = "hang up"
        return described + (" and hang up" if self.hang_up_after else "")


@dataclass(frozen=True)
class Exactly(Generic[T]):
    """An expected value that may itself be None ("nothing recorded")."""

    value: T


@dataclass(frozen=True)
class PersonaExpectation:
    """What the stored call must show; None means "not checked"."""

    consent: ConsentExpectation
    texts: int
    consent_asked: bool | None = None
    reasked: bool | None = None
    name: Exactly[str | None] | None = None
    callback_number: Exactly[str | None] | None = None
    urgency: Exactly[Urgency | None] | None = None
    need_includes: tuple[tuple[str, ...], ...] = ()  # each entry: words any one of which
    ended_by: EndedBy | None = None


@dataclass(frozen=True)
class Persona:
    """One caller who listens and answers by what it hears."""

    name: str
    family: str
    description: str
    business_number: str
    caller: str
    rules: tuple[Rule, ...]
    expect: PersonaExpectation
    voice: str | None = None
    words_per_minute: int | None = None
    pause: tuple[float, float] = DEFAULT_PAUSE
    breath: tuple[float, float] = DEFAULT_BREATH
    seed: int = 0

    @property
    def lines(self) -> tuple[str, ...]:
        """Every breath the persona may say, once each (to render before the call)."""
        seen: dict[str, None] = {}
        for rule in self.rules:
            if isinstance(rule.action, Say):
                seen.update(dict.fromkeys(rule.action.breaths))
        return tuple(seen)


def load_persona(path: Path | str) -> Persona:
    """Read and validate one persona file; raises ``PersonaError`` on any problem."""
    source = Path(path)
    return _PersonaReader(source).read(read_yaml(source, PersonaError))


def load_personas(directory: Path | str) -> tuple[Persona, ...]:
    """Every ``*.yaml`` persona in ``directory``, sorted by name."""
    return tuple(load_persona(path) for path in sorted(Path(directory).glob("*.yaml")))


class _PersonaReader(FieldReader):
    """Validates one parsed persona, field by field."""

    error_type = PersonaError

    def read(self, document: object) -> Persona:
        fields = self._mapping(document, "file", _PERSONA_KEYS)
        self._required(fields, _REQUIRED_KEYS)
        name = self._name(fields.get("name"))
        family = self._text(fields["family"], "family")
        if family not in FAMILIES:
            raise self._error("family", f"must be one of {list(FAMILIES)}, got {family!r}")
        return Persona(
            name=name,
            family=family,
            description=self._text(fields["description"], "description"),
            business_number=self._phone_number(fields["business_number"], "business_number"),
            caller=self._phone_number(fields["caller"], "caller"),
            rules=self._rules(fields["rules"]),
            expect=self._expectation(fields["expect"]),
            voice=self._voice(fields.get("voice"), "voice"),
            words_per_minute=self._words_per_minute(fields.get("words_per_minute")),
            pause=self._range(fields.get("pause"), "pause", DEFAULT_PAUSE, *HUMAN_PAUSE),
            breath=self._range(fields.get("breath"), "breath", DEFAULT_BREATH, 0.0, 5.0),
            seed=self._seed(fields.get("seed"), name),
        )

    # --- plain values ---------------------------------------------------------------------

    def _words_per_minute(self, value: object) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._error("words_per_minute", f"must be a whole number, got {value!r}")
        if not MIN_WORDS_PER_MINUTE <= value <= MAX_WORDS_PER_MINUTE:
            raise self._error(
                "words_per_minute",
                f"must be {MIN_WORDS_PER_MINUTE}–{MAX_WORDS_PER_MINUTE}, got {value}",
            )
        return value

    def _seconds(self, value: object, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._error(field, f"must be a number of seconds, got {value!r}")
        if not math.isfinite(value):
            raise self._error(field, f"must be finite, got {value!r}")
        return float(value)

    def _range(
        self,
        value: object,
        field: str,
        default: tuple[float, float],
        lowest: float,
        highest: float,
    ) -> tuple[float, float]:
        if value is None:
            return default
        if not isinstance(value, list) or len(value) != 2:
            raise self._error(field, f"must be [shortest, longest] seconds, got {value!r}")
        low, high = (self._seconds(item, field) for item in value)
        if not lowest <= low <= high <= highest:
            raise self._error(
                field, f"must lie within {lowest:g}–{highest:g} s, shortest first, got {value!r}"
            )
        return low, high

    def _seed(self, value: object, name: str) -> int:
        if value is None:
            return zlib.crc32(name.encode("utf-8"))
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._error("seed", f"must be a whole number, got {value!r}")
        return value

    # --- rules ----------------------------------------------------------------------------

    def _rules(self, value: object) -> tuple[Rule, ...]:
        if not isinstance(value, list) or not value:
            raise self._error("rules", "must be a non-empty list")
        return tuple(self._rule(item, f"rules[{index}]") for index, item in enumerate(value))

    def _rule(self, value: object, field: str) -> Rule:
        fields = self._mapping(value, field, _RULE_KEYS)
        if "when" not in fields:
            raise self._error(f"{field}.when", "is required")
        cues = self._cues(fields["when"], f"{field}.when")
        hang_up = self._flag(fields.get("hang_up", False), f"{field}.hang_up")
        actions = [key for key in ("say", "press", "silent") if key in fields]
        if len(actions) > 1 or (not actions and not hang_up):
            raise self._error(
                field, f"must have one of say, press, silent or hang_up, got {actions}"
            )
        if hang_up and actions and actions[0] != "say":
            raise self._error(f"{field}.hang_up", "goes only with say (hang up after the line)")
        action: Action = HangUp()
        if actions:
            action = self._action(actions[0], fields[actions[0]], f"{field}.{actions[0]}")
        times = fields.get("times")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int)):
            raise self._error(f"{field}.times", f"must be a whole number, got {times!r}")
        if times is not None and times < 1:
            raise self._error(f"{field}.times", f"must be 1 or more, got {times}")
        pause = fields.get("pause")
        return Rule(
            cues=cues,
            action=action,
            hang_up_after=hang_up and isinstance(action, Say),
            over=self._flag(fields.get("over", False), f"{field}.over"),
            times=times,
            pause=None
            if pause is None
            else self._range(pause, f"{field}.pause", DEFAULT_PAUSE, 0.0, MAX_RULE_PAUSE),
        )

    def _cues(self, value: object, field: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise self._error(field, "must be a non-empty list of phrases")
        cues = tuple(normalise(self._text(item, field)) for item in value)
        if not all(cues):
            raise self._error(field, "a phrase must have letters or digits")
        return cues

    def _action(self, kind: str, value: object, field: str) -> Action:
        if kind == "say":
            breaths = value if isinstance(value, list) else [value]
            if not breaths:
                raise self._error(field, "must be a line or a non-empty list of breaths")
            return Say(tuple(self._text(breath, field) for breath in breaths))
        if kind == "press":
            return Press(self._digits(value, field))
        if value is not True:
            raise self._error(field, f"must be true, got {value!r}")
        return KeepQuiet()

    # --- expectations ---------------------------------------------------------------------

    def _expectation(self, value: object) -> PersonaExpectation:
        fields = self._mapping(value, "expect", _EXPECT_KEYS)
        consent, texts = self._consent_and_texts(fields)
        ended_by = fields.get("ended_by")
        if ended_by is not None and ended_by not in get_args(EndedBy):
            raise self._error("expect.ended_by", f"must be server or caller, got {ended_by!r}")
        return PersonaExpectation(
            consent=consent,
            texts=texts,
            consent_asked=self._optional_flag(fields, "consent_asked"),
            reasked=self._optional_flag(fields, "reasked"),
            name=self._optional_text(fields, "name"),
            callback_number=self._optional_number(fields),
            urgency=self._optional_urgency(fields),
            need_includes=self._need_includes(fields.get("need_includes")),
            ended_by=cast(EndedBy | None, ended_by),
        )

    def _optional_flag(self, fields: dict[str, object], key: str) -> bool | None:
        return None if key not in fields else self._flag(fields[key], f"expect.{key}")

    def _optional_text(self, fields: dict[str, object], key: str) -> Exactly[str | None] | None:
        if key not in fields:
            return None
        value = fields[key]
        return Exactly(None if value is None else self._text(value, f"expect.{key}"))

    def _optional_number(self, fields: dict[str, object]) -> Exactly[str | None] | None:
        if "callback_number" not in fields:
            return None
        value = fields["callback_number"]
        if value is None:
            return Exactly(None)
        return Exactly(self._phone_number(value, "expect.callback_number"))

    def _optional_urgency(self, fields: dict[str, object]) -> Exactly[Urgency | None] | None:
        if "urgency" not in fields:
            return None
        value = fields["urgency"]
        if value is not None and value not in get_args(Urgency):
            raise self._error(
                "expect.urgency", f"must be one of {list(get_args(Urgency))} or null, got {value!r}"
            )
        return Exactly(cast(Urgency | None, value))

    def _need_includes(self, value: object) -> tuple[tuple[str, ...], ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not value:
            raise self._error("expect.need_includes", "must be a non-empty list of words")
        groups = []
        for item in value:
            text = self._text(item, "expect.need_includes")
            groups.append(tuple(normalise(word) for word in text.split("|") if normalise(word)))
        return tuple(groups)
