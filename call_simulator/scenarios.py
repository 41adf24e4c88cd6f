"""Scripted test calls: what a simulated caller says, presses and plays, read from YAML.

A scenario file (``fixtures/calls/<name>.yaml``) names the business number called, the caller's
number and voice (``caller_voice``: ``piper``, the default, ``piper@1.1`` for a slower pace, or
an espeak-ng voice; see ``call_simulator.caller_voices``), what happens on the owner's phone
when the business rings its owner first (``owner``: one of ``OwnerLeg``; ``owner_answers: true``
is short for ``takes-it``) and on the on-call phones when the assistant transfers an emergency
(``on_call``), the caller's steps in order, and what the end-to-end tests expect to find
afterwards. Loading is strict: an unknown key, a malformed phone number, an empty step list, a
keypad digit outside 0-9 * #, a missing or unreadable WAV file or a negative ``interrupt_after``
raises ``ScenarioError`` naming the file and the field.
"""

from __future__ import annotations

import math
import wave
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, get_args

from call_simulator.fixture_files import (
    ConsentExpectation,
    FieldReader,
    FixtureError,
    read_yaml,
)

OwnerLeg = Literal["no-answer", "takes-it", "presses-nothing", "voicemail", "busy", "failed"]
"""What happens on the owner's phone when it rings: nobody answers; the owner answers and
presses 1 to take the call; the owner answers and presses nothing; the owner's voicemail
answers (after ``VOICEMAIL_ANSWERS_AFTER`` seconds) and plays its greeting; busy; failed."""

_SCENARIO_KEYS = frozenset(
    {"name", "description", "business_number", "caller", "caller_voice", "owner_answers"}
    | {"owner", "on_call", "steps", "expect"}
)
_REQUIRED_KEYS = ("description", "business_number", "caller", "steps")
_ACTION_KEYS = ("say", "press", "wav", "hang_up")
_STEP_KEYS = frozenset({*_ACTION_KEYS, "interrupt_after"})
_EXPECT_KEYS = frozenset({"consent", "texts"})


class ScenarioError(FixtureError):
    """A scenario file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class SayStep:
    """The caller speaks ``text`` (synthesized in the caller's voice)."""

    text: str
    interrupt_after: float | None = None


@dataclass(frozen=True)
class PressStep:
    """The caller presses keypad ``digits`` (each one of 0-9, * or #)."""

    digits: str
    interrupt_after: float | None = None


@dataclass(frozen=True)
class WavStep:
    """The caller's audio comes from a 16-bit PCM WAV file (any rate, mono or stereo)."""

    path: Path
    interrupt_after: float | None = None


@dataclass(frozen=True)
class HangUpStep:
    """The caller hangs up: the stream gets ``stop`` and closes at once."""

    interrupt_after: float | None = None


Step = SayStep | PressStep | WavStep | HangUpStep


@dataclass(frozen=True)
class Expectation:
    """What the end-to-end tests assert once the call is over."""

    consent: ConsentExpectation
    texts: int


@dataclass(frozen=True)
class Scenario:
    """One scripted call from a caller to a business number."""

    name: str
    description: str
    business_number: str
    caller: str
    steps: tuple[Step, ...]
    caller_voice: str | None = None
    owner: OwnerLeg = "no-answer"
    on_call: OwnerLeg = "no-answer"
    expect: Expectation | None = None


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate one scenario file; raises ``ScenarioError`` on any problem."""
    source = Path(path)
    return _ScenarioReader(source).read(read_yaml(source, ScenarioError))


def load_scenarios(directory: Path | str) -> tuple[Scenario, ...]:
    """Every ``*.yaml`` scenario in ``directory``, sorted by name."""
    return tuple(load_scenario(path) for path in sorted(Path(directory).glob("*.yaml")))


class _ScenarioReader(FieldReader):
    """Validates one parsed scenario, field by field."""

    error_type = ScenarioError

    def read(self, document: object) -> Scenario:
        fields = self._mapping(document, "file", _SCENARIO_KEYS)
        self._required(fields, _REQUIRED_KEYS)
        return Scenario(
            name=self._name(fields.get("name")),
            description=self._text(fields["description"], "description"),
            business_number=self._phone_number(fields["business_number"], "business_number"),
            caller=self._phone_number(fields["caller"], "caller"),
            steps=self._steps(fields["steps"]),
            caller_voice=self._voice(fields.get("caller_voice"), "caller_voice"),
            owner=self._owner(fields),
            on_call=self._leg(fields.get("on_call", "no-answer"), "on_call"),
            expect=self._expectation(fields["expect"]) if "expect" in fields else None,
        )

    def _owner(self, fields: Mapping[str, object]) -> OwnerLeg:
        if "owner" in fields and "owner_answers" in fields:
            raise self._error("owner", "give owner or owner_answers, not both")
        if "owner" not in fields:
            answers = self._flag(fields.get("owner_answers", False), "owner_answers")
            return "takes-it" if answers else "no-answer"
        return self._leg(fields["owner"], "owner")

    def _leg(self, value: object, field: str) -> OwnerLeg:
        legs = get_args(OwnerLeg)
        if value not in legs:
            raise self._error(field, f"must be one of {', '.join(legs)}, got {value!r}")
        return cast(OwnerLeg, value)

    def _steps(self, value: object) -> tuple[Step, ...]:
        if not isinstance(value, list) or not value:
            raise self._error("steps", "must be a non-empty list")
        steps = tuple(self._step(item, f"steps[{index}]") for index, item in enumerate(value))
        for index, step in enumerate(steps[:-1]):
            if isinstance(step, HangUpStep):
                raise self._error(f"steps[{index}].hang_up", "must be the last step")
        return steps

    def _step(self, value: object, field: str) -> Step:
        fields = self._mapping(value, field, _STEP_KEYS)
        actions = [key for key in _ACTION_KEYS if key in fields]
        if len(actions) != 1:
            raise self._error(
                field, f"must have exactly one of {list(_ACTION_KEYS)}, got {actions}"
            )
        action = actions[0]
        where = f"{field}.{action}"
        interrupt_after = self._interrupt_after(fields.get("interrupt_after"), field)
        argument = fields[action]
        if action == "say":
            return SayStep(self._text(argument, where), interrupt_after)
        if action == "press":
            return PressStep(self._digits(argument, where), interrupt_after)
        if action == "wav":
            return WavStep(self._wav(argument, where), interrupt_after)
        if argument is not True:
            raise self._error(where, f"must be true, got {argument!r}")
        return HangUpStep(interrupt_after)

    def _interrupt_after(self, value: object, field: str) -> float | None:
        if value is None:
            return None
        where = f"{field}.interrupt_after"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._error(where, f"must be a number of seconds, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise self._error(where, f"must be zero or more seconds, got {value!r}")
        return float(value)

    def _wav(self, value: object, field: str) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise self._error(field, "must be the path of a WAV file")
        path = self._resolve(Path(value))
        if path is None:
            raise self._error(field, f"no such file {value!r}")
        try:
            with wave.open(str(path), "rb") as audio:
                width, channels = audio.getsampwidth(), audio.getnchannels()
        except (OSError, EOFError, wave.Error) as error:
            raise self._error(field, f"{value!r} is not a readable WAV file ({error})") from error
        if width != 2 or channels not in (1, 2):
            raise self._error(
                field, f"{value!r} must be 16-bit mono or stereo, got {8 * width}-bit × {channels}"
            )
        return path

    def _resolve(self, relative: Path) -> Path | None:
        """An absolute path as is; a relative one from the scenario's folder or its nearest
        ancestor where it exists (so ``fixtures/audio/x.wav`` works from the project root)."""
        if relative.is_absolute():
            return relative if relative.is_file() else None
        folder = self._path.resolve().parent
        for base in (folder, *folder.parents):
            candidate = base / relative
            if candidate.is_file():
                return candidate
        return None

    def _expectation(self, value: object) -> Expectation:
        fields = self._mapping(value, "expect", _EXPECT_KEYS)
        consent, texts = self._consent_and_texts(fields)
        return Expectation(consent=consent, texts=texts)
