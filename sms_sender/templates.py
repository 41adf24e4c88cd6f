"""The confirmation text sent right after a call in which the caller opted in to texts.

The wording lives in ``prompts/sms/confirmation.txt`` with three fields: ``{business_name}``,
``{need}`` (what the call was about, in a few words of ours that follow "about": "your leaking
kitchen sink", or "your service request" when no topic was recognised — never the caller's
transcript, which would read in the first person) and ``{callback_time}``. A rendered
confirmation never exceeds two segments: the field is cleaned, folded into GSM-7 when that is
what it takes to fit, and shortened at a word boundary with "...". A template that could not fit
even a short need is refused when it is loaded.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable

from sms_sender.segments import is_gsm7, segment_count, to_gsm7

CONFIRMATION_TEMPLATE_PATH = files("prompts") / "sms" / "confirmation.txt"
MAX_SEGMENTS = 2
MIN_NEED_CHARS = 12
FALLBACK_NEED = "your request"
ELLIPSIS = "..."
REQUIRED_ENDING = "Msg & data rates may apply. Reply HELP for help, STOP to opt out."
TEMPLATE_FIELDS = frozenset({"business_name", "need", "callback_time"})

_RAW_NEED_LIMIT = 2000  # bounds the work a hostile, huge need can cause
_LONGEST_USEFUL_NEED = 320  # more than two GSM-7 segments hold; longer needs are cut first
_WHITESPACE = re.compile(r"\s+")
_SENTENCE_STARTERS = frozenset(
    {"My", "Our", "The", "A", "An", "There", "There's", "It", "It's", "We", "This", "That", "Some"}
)
_NEED_TRAILING = " .,;:!?-"


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
class ConfirmationTemplate:
    """A loaded, checked confirmation template."""

    text: str

    def render(self, business_name: str, need: str, callback_time: str) -> str:
        """The confirmation for these fields, at most two segments long."""
        name = clean_field(business_name)
        callback = clean_field(callback_time)
        if not name or not callback:
            raise ValueError("a confirmation needs a business name and a callback time")
        as_said = _clean_need(need[:_RAW_NEED_LIMIT]) or FALLBACK_NEED
        if self._fits(name, as_said, callback):
            return self._fill(name, as_said, callback)
        folded = _clean_need(to_gsm7(as_said)[:_LONGEST_USEFUL_NEED]) or FALLBACK_NEED
        return self._fill(name, self._shorten(name, folded, callback), callback)

    def _fill(self, business_name: str, need: str, callback_time: str) -> str:
        return self.text.format(business_name=business_name, need=need, callback_time=callback_time)

    def _fits(self, business_name: str, need: str, callback_time: str) -> bool:
        return segment_count(self._fill(business_name, need, callback_time)) <= MAX_SEGMENTS

    def _shorten(self, business_name: str, need: str, callback_time: str) -> str:
        """The longest word-boundary cut of ``need`` that lets the text fit."""
        if self._fits(business_name, need, callback_time):
            return need
        ellipsis = self._ellipsis()
        low, high = MIN_NEED_CHARS, len(need) - 1
        if high < low or not self._fits(business_name, _cut(need, low, ellipsis), callback_time):
            raise ValueError(
                "the business name and callback time leave no room for the caller's need "
                f"within {MAX_SEGMENTS} segments"
            )
        while low < high:
            middle = (low + high + 1) // 2
            if self._fits(business_name, _cut(need, middle, ellipsis), callback_time):
                low = middle
            else:
                high = middle - 1
        return _cut(need, low, ellipsis)

    def _ellipsis(self) -> str:
        """Three dots, less the full stop the template itself puts after the need."""
        after_need = self.text.split("{need}", 1)[1]
        return ELLIPSIS[:-1] if after_need.startswith(".") else ELLIPSIS


def load_confirmation_template(
    path: Traversable = CONFIRMATION_TEMPLATE_PATH,
) -> ConfirmationTemplate:
    """Read and check the template at ``path``; ValueError when it is malformed or cannot fit."""
    text = path.read_text(encoding="utf-8").rstrip("\r\n")
    _check_fields(text)
    if not text.endswith(REQUIRED_ENDING):
        raise ValueError(f"the confirmation template must end with {REQUIRED_ENDING!r}")
    fixed = text.format(business_name="", need="", callback_time="")
    if not is_gsm7(fixed):
        raise ValueError("the confirmation template must use only GSM-7 characters")
    shortest = text.format(business_name="", need="x" * MIN_NEED_CHARS, callback_time="")
    if segment_count(shortest) > MAX_SEGMENTS:
        raise ValueError(f"the confirmation template cannot fit in {MAX_SEGMENTS} segments")
    return ConfirmationTemplate(text=text)


@lru_cache(maxsize=1)
def default_confirmation_template() -> ConfirmationTemplate:
    """The template shipped in ``prompts/sms/confirmation.txt``, loaded once."""
    return load_confirmation_template()


def render_confirmation(
    request: ConfirmationRequest, template: ConfirmationTemplate | None = None
) -> str:
    """The confirmation text for ``request`` (the shipped template unless one is given)."""
    chosen = template or default_confirmation_template()
    return chosen.render(request.business_name, request.need, request.callback_time)


def _check_fields(text: str) -> None:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as error:
        raise ValueError(f"the confirmation template is malformed: {error}") from error
    used: list[str] = []
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS or spec or conversion:
            raise ValueError(f"the confirmation template has an unknown field {{{field}}}")
        used.append(field)
    if sorted(used) != sorted(TEMPLATE_FIELDS):
        raise ValueError(
            "the confirmation template must use each of "
            f"{sorted(TEMPLATE_FIELDS)} exactly once, found {used}"
        )


def clean_field(text: str) -> str:
    """``text`` on one line, without control, format or unassigned characters."""
    spaced = _WHITESPACE.sub(" ", text)
    visible = "".join(char for char in spaced if not unicodedata.category(char).startswith("C"))
    return _WHITESPACE.sub(" ", visible).strip()


def _clean_need(need: str) -> str:
    return _lower_sentence_start(clean_field(need).rstrip(_NEED_TRAILING))


def _lower_sentence_start(need: str) -> str:
    """ "My sink leaks" reads "…about my sink leaks"; names, "I" and acronyms stay as said."""
    first_word, _, rest = need.partition(" ")
    if first_word in _SENTENCE_STARTERS:
        return f"{first_word.lower()} {rest}".rstrip()
    return need


def _cut(need: str, length: int, ellipsis: str) -> str:
    """``need`` cut to at most ``length`` characters, at a word boundary when one is near."""
    head = need[:length]
    if need[length : length + 1] not in ("", " "):
        last_space = head.rfind(" ")
        if last_space >= length // 2:
            head = head[:last_space]
    return _clean_need(head) + ellipsis
