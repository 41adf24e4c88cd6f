"""The owner's notice after every call: who called, what they said they need (their own words, in
quotation marks), how urgent, and whether they agreed to texts. It is queued like any text; the
dispatcher sends it only while the owner's opt-in to notification texts stands in the ledger.

The caller's words are shortened inside the quotation marks when the notice would run over two
segments, so a quote always closes: ``said "my kitchen sink is leaking under the..."``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from sms_sender.message_templates import SmsTemplate, TemplateName, shipped_template
from sms_sender.outbox import OutboxKind, OutboxMessage, PlannedText, queue_text
from sms_sender.policy import SmsPolicy
from sms_sender.segments import segment_count, to_gsm7
from sms_sender.templates import MAX_SEGMENTS, clean_field

UNKNOWN = "not given"
NO_NAME = "Unnamed caller"
NOTHING_SAID = "nothing about the job"
ELLIPSIS = "..."
_QUOTE = '"'
_RAW_WORDS_LIMIT = 2000
_TRAILING = " .,;:!?-"


@dataclass(frozen=True)
class CallSummary:
    """What the owner needs to know about one call; ``business_number`` is the number called."""

    call_sid: str
    business_number: str
    caller_number: str
    caller_name: str | None
    need: str | None
    callback_number: str | None
    urgency: str | None
    consent_outcome: str


def queue_owner_summary(
    conn: Connection, summary: CallSummary, policy: SmsPolicy, ended_at: datetime
) -> OutboxMessage | None:
    """Queue the summary of ``summary``'s call to the owner; None when the business has no owner
    number. Idempotent per call."""
    if policy.owner_number is None:
        return None
    body = owner_summary_text(summary, policy.business_name)
    return queue_text(
        conn,
        PlannedText(
            business_id=policy.business_id,
            reference=summary.call_sid,
            to_number=policy.owner_number,
            from_number=summary.business_number,
            kind=OutboxKind.OWNER_SUMMARY,
            body=body,
            consent_event_hash="",
            due_at=ended_at,
        ),
    )


def owner_summary_text(
    summary: CallSummary, business_name: str, template: SmsTemplate | None = None
) -> str:
    """The owner's notice for ``summary``: the caller's words quoted, at most two segments."""
    chosen = template or shipped_template(TemplateName.OWNER_SUMMARY)
    values = {
        "business_name": business_name,
        "caller_number": summary.caller_number,
        "caller_name": summary.caller_name or NO_NAME,
        "urgency": summary.urgency or UNKNOWN,
        "callback_number": summary.callback_number or summary.caller_number,
        "consent": _consent_words(summary.consent_outcome),
    }

    def fits(need: str) -> bool:
        cleaned = {name: clean_field(value) for name, value in values.items()}
        text = chosen.text.format(**cleaned, need=need)
        return segment_count(text) <= MAX_SEGMENTS

    return chosen.render(**values, need=quoted_words(summary.need, fits))


def quoted_words(words: str | None, fits: Callable[[str], bool]) -> str:
    """The caller's ``words`` in quotation marks, shortened inside them (GSM-7, "...") until
    ``fits`` accepts them; ``NOTHING_SAID`` when there are none."""
    said = clean_field((words or "")[:_RAW_WORDS_LIMIT]).rstrip(_TRAILING).replace(_QUOTE, "'")
    if not any(char.isalnum() for char in said):
        return NOTHING_SAID
    whole = f"{_QUOTE}{said}{_QUOTE}"
    if fits(whole):
        return whole
    folded = clean_field(to_gsm7(said))
    low, high = 0, len(folded)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(_cut_quote(folded, middle)):
            low = middle
        else:
            high = middle - 1
    return _cut_quote(folded, low)


def _cut_quote(words: str, length: int) -> str:
    head = words[:length]
    if words[length : length + 1] not in ("", " "):
        last_space = head.rfind(" ")
        if last_space >= length // 2:
            head = head[:last_space]
    return f"{_QUOTE}{head.rstrip(_TRAILING)}{ELLIPSIS}{_QUOTE}"


def _consent_words(outcome: str) -> str:
    return {
        "affirmative": "agreed",
        "declined": "declined",
        "unclear": "unclear, none sent",
        "not_asked": "not asked",
    }.get(outcome, outcome or UNKNOWN)
