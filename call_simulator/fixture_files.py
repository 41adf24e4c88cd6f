"""Reading the simulator's YAML files strictly: the parts scenario and persona files share.

Every problem is an error naming the file and the field (``steps[2].say``, ``expect.texts``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, cast, get_args

import phonenumbers
import yaml

from call_simulator.caller_voices import voice_problem

ConsentExpectation = Literal["affirmative", "declined", "unclear", "not_asked"]
MAX_TEXTS = 4  # the most follow-up texts a consent allows
_KEYPAD = re.compile(r"[0-9*#]+")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class FixtureError(ValueError):
    """A scenario or persona file is malformed; the message names the file and the field."""

    def __init__(self, path: Path, field: str, problem: str) -> None:
        super().__init__(f"{path}: {field}: {problem}")
        self.path = path
        self.field = field
        self.problem = problem


def read_yaml(path: Path, error: type[FixtureError]) -> object:
    """The parsed document at ``path``; ``error`` when it cannot be read or is not YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as problem:
        raise error(path, "file", f"cannot be read ({problem.strerror})") from problem
    except (yaml.YAMLError, UnicodeDecodeError) as problem:
        raise error(path, "file", f"is not valid YAML ({problem})") from problem


class FieldReader:
    """Validates the fields of one parsed document, for the file at ``path``; a subclass names
    its error type."""

    error_type: type[FixtureError] = FixtureError

    def __init__(self, path: Path) -> None:
        self._path = path

    def _error(self, field: str, problem: str) -> FixtureError:
        return self.error_type(self._path, field, problem)

    def _mapping(self, value: object, field: str, allowed: frozenset[str]) -> dict[str, object]:
        if not isinstance(value, Mapping):
            raise self._error(field, f"must be a mapping, got {type(value).__name__}")
        keys = [str(key) for key in value]
        unknown = sorted(set(keys) - allowed)
        if unknown:
            where = "" if field == "file" else f"{field}."
            raise self._error(f"{where}{unknown[0]}", f"unknown key (allowed: {sorted(allowed)})")
        return {str(key): item for key, item in value.items()}

    def _required(self, fields: dict[str, object], keys: tuple[str, ...], where: str = "") -> None:
        for key in keys:
            if key not in fields:
                raise self._error(f"{where}{key}", "is required")

    def _text(self, value: object, field: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self._error(field, "must be a non-empty string")
        return value.strip()

    def _name(self, value: object) -> str:
        stem = self._path.stem
        if value is None:
            return stem
        name = self._text(value, "name")
        if name != stem:
            raise self._error("name", f"must match the file name {stem!r}, got {name!r}")
        return name

    def _phone_number(self, value: object, field: str) -> str:
        if not isinstance(value, str) or not _E164.fullmatch(value):
            raise self._error(field, f"must be an E.164 number like +15125550100, got {value!r}")
        if not phonenumbers.is_valid_number(phonenumbers.parse(value, None)):
            raise self._error(field, f"{value!r} is not a valid phone number")
        return value

    def _voice(self, value: object, field: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._error(field, f"must be a voice name, got {value!r}")
        problem = voice_problem(value)
        if problem is not None:
            raise self._error(field, problem)
        return value

    def _flag(self, value: object, field: str) -> bool:
        if not isinstance(value, bool):
            raise self._error(field, f"must be true or false, got {value!r}")
        return value

    def _digits(self, value: object, field: str) -> str:
        if not isinstance(value, str):
            raise self._error(field, f"must be a quoted string of keypad digits, got {value!r}")
        if not _KEYPAD.fullmatch(value):
            raise self._error(field, f"digits must be 0-9, * or #, got {value!r}")
        return value

    def _consent_and_texts(self, fields: dict[str, object]) -> tuple[ConsentExpectation, int]:
        """``expect.consent`` and ``expect.texts``, both required."""
        self._required(fields, ("consent", "texts"), "expect.")
        consent = fields["consent"]
        allowed = get_args(ConsentExpectation)
        if consent not in allowed:
            raise self._error("expect.consent", f"must be one of {list(allowed)}, got {consent!r}")
        texts = fields["texts"]
        if isinstance(texts, bool) or not isinstance(texts, int) or not 0 <= texts <= MAX_TEXTS:
            raise self._error(
                "expect.texts", f"must be a whole number 0–{MAX_TEXTS}, got {texts!r}"
            )
        return cast(ConsentExpectation, consent), texts
