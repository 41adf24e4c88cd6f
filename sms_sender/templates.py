"""Every text we write: the confirmation after an opted-in call, HELP, opt-out and opt-in replies
(to callers and to the owner's phone), follow-ups, owner notices.

Each wording lives in ``prompts/sms/<name>.txt`` and is checked when it is loaded: it uses exactly
its fields, carries the phrases CTIA expects of its kind, is written in GSM-7, and fits in two
segments with its fields at their shortest (a free-text field at a dozen characters) — else it is
refused at load. When rendered, every field is cleaned to one visible line (braces in a value are
kept as text), and the one free-text field is folded into GSM-7 and shortened at a word boundary
with "..." until the text fits in two segments; a blank one is replaced by its spec's fallback.

The confirmation's free field is ``{need}``: what the call was about in a few words of ours that
follow "about" ("your leaking kitchen sink", or "your service request"), never the caller's
transcript. It also says what CTIA asks of a first message: how many texts at most
(``{text_count}``) and until when (``{until}``, on the business's clock), "Msg & data rates may
apply", HELP and STOP (:class:`ConfirmationTerms`). The texts about the caller's request (the
confirmation and the follow-ups) carry the business's booking link where it has one
(``{booking_link}``, an optional field: left out, with the space before it, when blank); replies
to STOP and HELP never do. The owner's summary quotes the caller's words, shortened inside the
quotation marks so the quote always closes: ``said "my kitchen sink is leaking under the..."``.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from zoneinfo import ZoneInfo

from sms_sender.segments import is_gsm7, segment_count, to_gsm7

PROMPTS_SMS_DIR = files("prompts") / "sms"
MAX_SEGMENTS = 2
MIN_FREE_CHARS = 12
ELLIPSIS = "..."
FALLBACK_NEED = "your service request"
NOTHING_SAID = "nothing about the job"
_CTIA_RATES = "Msg & data rates may apply."
CTIA_OPT_IN_NOTICE = f"{_CTIA_RATES} Reply HELP for help, STOP to opt out."
BOOKING_LINK = "Book online: {url}"
"""How a text shows the business's booking link (``{booking_link}``)."""
_RAW_FIELD_LIMIT = 2000  # bounds the work a hostile, huge value can cause
_WHITESPACE = re.compile(r"\s+")
_TRAILING = " .,;:!?-"
_QUOTE = '"'
_PUNCTUATION = frozenset(".,;:!?")


class TemplateName(StrEnum):
    """The shipped templates, one file each in ``prompts/sms/``."""

    CONFIRMATION = "confirmation"
    HELP = "help"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    NO_REPLY_FOLLOW_UP = "no_reply_follow_up"
    CALLBACK_CHECK = "callback_check"
    OWNER_SUMMARY = "owner_summary"
    OWNER_FORWARD = "owner_forward"
    OWNER_OPT_OUT = "owner_opt_out"
    OWNER_OPT_IN = "owner_opt_in"
    SIGN_IN_CODE = "sign_in_code"


@dataclass(frozen=True)
class TemplateSpec:
    """What a template must contain and how its values are filled in.

    ``free_field`` is the one field shortened to fit (with ``fallback`` in its place when it holds
    nothing but punctuation; ``quoted`` puts it in quotation marks and shortens it inside them);
    ``not_blank`` are the fields a text cannot be sent without; ``optional`` ones are left out,
    with the space before them, when blank.
    """

    fields: frozenset[str]
    required_phrases: tuple[str, ...]
    free_field: str | None = None
    fallback: str | None = None
    quoted: bool = False
    not_blank: frozenset[str] = frozenset({"business_name"})
    optional: frozenset[str] = frozenset()


_BOOKING = frozenset({"booking_link"})


SPECS: dict[TemplateName, TemplateSpec] = {
    TemplateName.CONFIRMATION: TemplateSpec(
        frozenset({"business_name", "need", "callback_time", "text_count", "until"}) | _BOOKING,
        ("Up to ", CTIA_OPT_IN_NOTICE),
        free_field="need",
        fallback=FALLBACK_NEED,
        not_blank=frozenset({"business_name", "callback_time", "text_count", "until"}),
        optional=_BOOKING,
    ),
    TemplateName.HELP: TemplateSpec(
        frozenset({"business_name", "help_contact"}), (_CTIA_RATES, "Reply STOP to opt out.")
    ),
    TemplateName.OPT_OUT: TemplateSpec(
        frozenset({"business_name", "help_contact"}), ("No more messages will be sent.",)
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
        frozenset({"business_name", "help_contact"}) | _BOOKING,
        ("Reply STOP to opt out.",),
        optional=_BOOKING,
    ),
    TemplateName.CALLBACK_CHECK: TemplateSpec(
        frozenset({"business_name"}) | _BOOKING, ("Reply STOP to opt out.",), optional=_BOOKING
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
                "alert",
                "link",
            }
        ),
        (),
        free_field="need",
        fallback=NOTHING_SAID,
        quoted=True,
    ),
    TemplateName.OWNER_FORWARD: TemplateSpec(
        frozenset({"business_name", "caller_number", "body"}), (), free_field="body"
    ),
    TemplateName.SIGN_IN_CODE: TemplateSpec(
        frozenset({"business_name", "code"}),
        ("sign-in code",),
        not_blank=frozenset({"business_name", "code"}),
    ),
}


class TemplateError(ValueError):
    """A template file that is malformed or cannot fit in two segments."""


@dataclass(frozen=True)
class ConfirmationRequest:
    """Everything needed to confirm one opted-in call by text.

    ``need`` says what the call was about in our words, ready to follow "about" ("your leaking
    kitchen sink"); the caller's own words go to the owner, not back to the caller.
    """

    business_id: str
    business_name: str
    from_number: str
    to_number: str
    call_sid: str
    need: str
    callback_time: str
    consent_event_hash: str


@dataclass(frozen=True)
class ConfirmationTerms:
    """What the confirmation promises about the texts to come: at most ``max_texts`` (the
    confirmation included) until ``until`` (when the consent's window closes), told on the
    business's clock (``time_zone``), and the business's ``booking_url`` where it has one."""

    max_texts: int
    until: datetime
    time_zone: str
    booking_url: str | None = None

    def values(self) -> dict[str, str]:
        """The confirmation's fields these terms fill in."""
        return {
            "text_count": text_count(self.max_texts),
            "until": until_phrase(self.until, ZoneInfo(self.time_zone)),
            "booking_link": booking_link(self.booking_url),
        }


def text_count(count: int) -> str:
    """``1 text``, ``2 texts``."""
    return f"{count} text" if count == 1 else f"{count} texts"


def until_phrase(at: datetime, zone: ZoneInfo) -> str:
    """``Jun 5, 4:15 PM CDT``: ``at`` on the ``zone``'s clock, short enough for a text."""
    local = at.astimezone(zone)
    hour = local.hour % 12 or 12
    return f"{local:%b} {local.day}, {hour}:{local:%M %p %Z}"


def booking_link(url: str | None) -> str:
    """The booking link as a text shows it; blank (left out) without one."""
    return BOOKING_LINK.format(url=url) if url else ""


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
        blank = sorted(name for name in self.spec.not_blank if not cleaned[name])
        if blank:
            raise ValueError(f"{self.name} needs a value for {' and '.join(blank)}")
        free = self.spec.free_field
        words = "" if free is None else self._words(cleaned[free])
        whole = self._filled(cleaned, words, len(words))
        if free is None or segment_count(whole) <= MAX_SEGMENTS:
            return self._checked(whole)
        return self._checked(self._shortened(cleaned, self._words(clean_field(to_gsm7(words)))))

    def _words(self, value: str) -> str:
        """``value`` as the free field shows it: without the trailing punctuation the template
        itself follows it with, and with no quotation mark of its own inside quotation marks."""
        if self._after_free()[:1] in _PUNCTUATION:
            value = value.rstrip(_TRAILING)
        return value.replace(_QUOTE, "'") if self.spec.quoted else value

    def _shortened(self, values: dict[str, str], folded: str) -> str:
        """The text with the longest word-boundary cut of ``folded`` that fits, the other fields
        folded into GSM-7 too when that is what it takes."""
        fixed = values
        if not is_gsm7(self._filled(values, "", 0)):
            fixed = {name: to_gsm7(value) for name, value in values.items()}
        low, high = min(MIN_FREE_CHARS, len(folded)), len(folded)
        if segment_count(self._filled(fixed, folded, low)) > MAX_SEGMENTS:
            raise ValueError(
                f"the other fields of the {self.name} text leave no room for "
                f"{self.spec.free_field} within {MAX_SEGMENTS} segments"
            )
        while low < high:
            middle = (low + high + 1) // 2
            if segment_count(self._filled(fixed, folded, middle)) <= MAX_SEGMENTS:
                low = middle
            else:
                high = middle - 1
        return self._filled(fixed, folded, low)

    def _filled(self, values: dict[str, str], words: str, length: int) -> str:
        """The text with ``words`` cut to ``length`` characters as its free field (the fallback
        when they hold nothing but punctuation)."""
        text = self.text
        for name in self.spec.optional:
            if not values.get(name):
                text = text.replace(f" {{{name}}}", "").replace(f"{{{name}}}", "")
                values = {key: value for key, value in values.items() if key != name}
        free = self.spec.free_field
        if free is None:
            return text.format(**values)
        if self.spec.fallback is not None and not _says_anything(words):
            shown = self.spec.fallback
        else:
            shown = _cut(words, length, self._ellipsis())
            if self.spec.quoted:
                shown = f"{_QUOTE}{shown}{_QUOTE}"
        return text.format(**{**values, free: shown})

    def _ellipsis(self) -> str:
        """Three dots, less the full stop the template itself puts right after the free field."""
        if not self.spec.quoted and self._after_free().startswith("."):
            return ELLIPSIS[:-1]
        return ELLIPSIS

    def _after_free(self) -> str:
        return self.text.split(f"{{{self.spec.free_field}}}", 1)[-1]

    def _checked(self, text: str) -> str:
        if segment_count(text) > MAX_SEGMENTS:
            raise ValueError(f"the {self.name} text does not fit in {MAX_SEGMENTS} segments")
        return text


def load_template(name: TemplateName, path: Traversable | None = None) -> SmsTemplate:
    """Read and check the template ``name``; TemplateError when it is malformed or cannot fit."""
    spec = SPECS[name]
    source = path or PROMPTS_SMS_DIR / f"{name.value}.txt"
    try:
        text = source.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        raise TemplateError(f"{source}: cannot read: {error}") from None
    _check_fields(source, text, spec)
    empty = dict.fromkeys(spec.fields, "")
    fixed = text.format(**empty)
    if not is_gsm7(fixed):
        raise TemplateError(f"{source}: must use only GSM-7 characters")
    for phrase in spec.required_phrases:
        if phrase not in fixed:
            raise TemplateError(f"{source}: must say {phrase!r}")
    template = SmsTemplate(name=name, text=text, spec=spec)
    shortest = "x" * MIN_FREE_CHARS
    if segment_count(template._filled(empty, shortest, len(shortest))) > MAX_SEGMENTS:
        raise TemplateError(f"{source}: cannot fit in {MAX_SEGMENTS} segments")
    return template


@cache
def shipped_template(name: TemplateName) -> SmsTemplate:
    """The template shipped in ``prompts/sms/``, loaded and checked once."""
    return load_template(name)


def render_confirmation(request: ConfirmationRequest, terms: ConfirmationTerms) -> str:
    """The confirmation text for ``request``'s call under ``terms``, at most two segments long."""
    return shipped_template(TemplateName.CONFIRMATION).render(
        business_name=request.business_name,
        need=request.need,
        callback_time=request.callback_time,
        **terms.values(),
    )


def sample(name: TemplateName, placeholders: Mapping[str, str]) -> str:
    """The text ``name`` as a sample for readers (a 10DLC campaign's message samples): the
    template read from ``prompts/sms/`` afresh, so an edit shows at once, and rendered by this
    engine with ``placeholders`` — real values where they are fixed (the business's name), a
    bracketed description where they change from text to text ("[caller's first name]")."""
    return load_template(name).render(**placeholders)


def clean_field(text: str) -> str:
    """``text`` on one line, without control, format or unassigned characters."""
    spaced = _WHITESPACE.sub(" ", text)
    visible = "".join(char for char in spaced if not unicodedata.category(char).startswith("C"))
    return _WHITESPACE.sub(" ", visible).strip()


def _check_fields(source: Traversable, text: str, spec: TemplateSpec) -> None:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as error:
        raise TemplateError(f"{source}: malformed: {error}") from None
    expected = f"must use each of {sorted(spec.fields)} exactly once"
    used: list[str] = []
    for _literal, field, format_spec, conversion in parsed:
        if field is None:
            continue
        if field not in spec.fields or format_spec or conversion:
            raise TemplateError(f"{source}: unknown field {{{field}}}; it {expected}")
        used.append(field)
    if sorted(used) != sorted(spec.fields):
        raise TemplateError(f"{source}: {expected}, found {used}")


def _says_anything(words: str) -> bool:
    """Whether ``words`` hold more than punctuation and spaces."""
    return any(unicodedata.category(char)[0] not in "PZ" for char in words)


def _cut(words: str, length: int, ellipsis: str) -> str:
    """``words`` cut to at most ``length`` characters, at a word boundary when one is near, with
    ``ellipsis`` after the cut; ``words`` themselves when they are that short."""
    if length >= len(words):
        return words
    head = words[:length]
    if words[length] != " ":
        last_space = head.rfind(" ")
        if last_space >= length // 2:
            head = head[:last_space]
    return head.rstrip(_TRAILING) + ellipsis
