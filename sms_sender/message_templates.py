"""The texts besides the confirmation: HELP, opt-out and opt-in replies (to callers and to the
owner's phone), follow-ups, owner notices.

Each wording lives in ``prompts/sms/<name>.txt`` and is checked when it is loaded: it uses exactly
its fields, names the business, carries the phrases CTIA expects of its kind, is written in GSM-7,
and fits in two segments with its fields at their shortest — a template over two segments is
refused at load. When rendered, every field is cleaned to one visible line, and the one free-text
field (the caller's need, a forwarded reply) is folded into GSM-7 and shortened with "..." until
the text fits in two segments.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable

from sms_sender.segments import is_gsm7, segment_count, to_gsm7
from sms_sender.templates import MAX_SEGMENTS, clean_field

PROMPTS_SMS_DIR = files("prompts") / "sms"
ELLIPSIS = "..."
_RAW_FIELD_LIMIT = 2000
_CTIA_RATES = "Msg & data rates may apply."


class TemplateName(StrEnum):
    """The shipped templates, one file each in ``prompts/sms/``."""

    HELP = "help"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    NO_REPLY_FOLLOW_UP = "no_reply_follow_up"
    CALLBACK_CHECK = "callback_check"
    OWNER_SUMMARY = "owner_summary"
    OWNER_FORWARD = "owner_forward"
    OWNER_OPT_OUT = "owner_opt_out"
    OWNER_OPT_IN = "owner_opt_in"


@dataclass(frozen=True)
class TemplateSpec:
    """What a template must contain: its fields, its required phrases, its free-text field."""

    fields: frozenset[str]
    required_phrases: tuple[str, ...]
    free_field: str | None = None


SPECS: dict[TemplateName, TemplateSpec] = {
    TemplateName.HELP: TemplateSpec(
        frozenset({"business_name", "help_contact"}), (_CTIA_RATES, "Reply STOP to opt out.")
    ),
    TemplateName.OPT_OUT: TemplateSpec(
        frozenset({"business_name"}), ("No more messages will be sent.",)
    ),
    TemplateName.OPT_IN: TemplateSpec(
        frozenset({"business_name"}), (_CTIA_RATES, "Reply HELP for help, STOP to opt out.")
    ),
    TemplateName.OWNER_OPT_OUT: TemplateSpec(
        frozenset({"business_name"}), ("No more messages will be sent.", "Reply START")
    ),
    TemplateName.OWNER_OPT_IN: TemplateSpec(
        frozenset({"business_name"}), (_CTIA_RATES, "Reply HELP for help, STOP to opt out.")
    ),
    TemplateName.NO_REPLY_FOLLOW_UP: TemplateSpec(
        frozenset({"business_name", "help_contact"}), ("Reply STOP to opt out.",)
    ),
    TemplateName.CALLBACK_CHECK: TemplateSpec(
        frozenset({"business_name"}), ("Reply STOP to opt out.",)
    ),
    TemplateName.OWNER_SUMMARY: TemplateSpec(
        frozenset(
            {
                "business_name",
                "caller_number",
                "caller_name",
                "need",
                "urgency",
                "callback_number",
                "consent",
            }
        ),
        (),
        free_field="need",
    ),
    TemplateName.OWNER_FORWARD: TemplateSpec(
        frozenset({"business_name", "caller_number", "body"}), (), free_field="body"
    ),
}


class TemplateError(ValueError):
    """A template file that is malformed or cannot fit in two segments."""


@dataclass(frozen=True)
class SmsTemplate:
    """A loaded, checked template."""

    name: TemplateName
    text: str
    spec: TemplateSpec

    def render(self, **values: str) -> str:
        """The text with ``values`` filled in, at most two segments long."""
        if set(values) != self.spec.fields:
            raise ValueError(f"{self.name} needs exactly the fields {sorted(self.spec.fields)}")
        cleaned = {name: clean_field(value[:_RAW_FIELD_LIMIT]) for name, value in values.items()}
        blank = [name for name, value in cleaned.items() if not value and name != "urgency"]
        if "business_name" in blank:
            raise ValueError(f"{self.name} needs a business name")
        free = self.spec.free_field
        if free is None or segment_count(self.text.format(**cleaned)) <= MAX_SEGMENTS:
            return self._checked(self.text.format(**cleaned))
        return self._checked(self._shortened(cleaned, free))

    def _shortened(self, values: dict[str, str], free: str) -> str:
        folded = to_gsm7(values[free])
        fixed = {**values, free: ""}
        if not is_gsm7(self.text.format(**fixed)):
            fixed = {name: to_gsm7(value) for name, value in fixed.items()}
        low, high = 0, len(folded)
        while low < high:
            middle = (low + high + 1) // 2
            if segment_count(self.text.format(**{**fixed, free: _cut(folded, middle)})) <= 2:
                low = middle
            else:
                high = middle - 1
        return self.text.format(**{**fixed, free: _cut(folded, low)})

    def _checked(self, text: str) -> str:
        if segment_count(text) > MAX_SEGMENTS:
            raise ValueError(f"the {self.name} text does not fit in {MAX_SEGMENTS} segments")
        return text


def load_template(name: TemplateName, path: Traversable | None = None) -> SmsTemplate:
    """Read and check the template ``name``; TemplateError when it is malformed or too long."""
    spec = SPECS[name]
    source = path or PROMPTS_SMS_DIR / f"{name.value}.txt"
    try:
        text = source.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        raise TemplateError(f"{source}: cannot read: {error}") from None
    _check_fields(source, text, spec)
    fixed = text.format(**dict.fromkeys(spec.fields, ""))
    if not is_gsm7(fixed):
        raise TemplateError(f"{source}: must use only GSM-7 characters")
    for phrase in spec.required_phrases:
        if phrase not in fixed:
            raise TemplateError(f"{source}: must say {phrase!r}")
    if segment_count(fixed) > MAX_SEGMENTS:
        raise TemplateError(f"{source}: longer than {MAX_SEGMENTS} segments")
    return SmsTemplate(name=name, text=text, spec=spec)


@cache
def shipped_template(name: TemplateName) -> SmsTemplate:
    """The template shipped in ``prompts/sms/``, loaded and checked once."""
    return load_template(name)


def _check_fields(source: Traversable, text: str, spec: TemplateSpec) -> None:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as error:
        raise TemplateError(f"{source}: malformed: {error}") from None
    used = [field for _literal, field, _spec, _conv in parsed if field is not None]
    specs_or_conversions = [(s, c) for _l, f, s, c in parsed if f is not None and (s or c)]
    if specs_or_conversions or sorted(used) != sorted(spec.fields):
        raise TemplateError(
            f"{source}: must use each of {sorted(spec.fields)} exactly once, found {used}"
        )


def _cut(text: str, length: int) -> str:
    if length >= len(text):
        return text
    head = text[: max(length - len(ELLIPSIS), 0)]
    last_space = head.rfind(" ")
    if last_space >= len(head) // 2:
        head = head[:last_space]
    return head.rstrip(" .,;:!?-") + ELLIPSIS
