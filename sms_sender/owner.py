"""The owner's notice after every call: who called, what they said they need (their own words, in
quotation marks), how urgent, whether they agreed to texts, and a link to the call's page that
signs the owner's phone in. An emergency says so first ("EMERGENCY: Acme Plumbing missed call
from ..."). It is queued like any text; the dispatcher sends it only while the owner's opt-in to
notification texts stands in the ledger.

The caller's words are shortened inside the quotation marks when the notice would run over two
segments, so a quote always closes: ``said "my kitchen sink is leaking under the..."``
(``templates``: the owner summary's spec quotes its free field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from sms_sender.outbox import OutboxKind, OutboxMessage, PlannedText, queue_text
from sms_sender.policy import SmsPolicy
from sms_sender.templates import SmsTemplate, TemplateName, shipped_template

UNKNOWN = "not given"
NO_NAME = "Unnamed caller"
EMERGENCY_FIRST = "EMERGENCY:"
SIGN_IN_LINK_PATH = "/owner/l/"
"""Where a summary's sign-in link points on the owner pages; the secret follows it."""
HIDDEN_LINK = "(link hidden)"
_SIGN_IN_LINK = re.compile(rf"{re.escape(SIGN_IN_LINK_PATH)}[A-Za-z0-9_-]+")


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
    sign_in_link: str = ""
    """The call's page, opening signed in on the owner's phone (empty: no link)."""


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
    return chosen.render(
        alert=EMERGENCY_FIRST if summary.urgency == "emergency" else "",
        link=summary.sign_in_link,
        business_name=business_name,
        caller_number=summary.caller_number,
        caller_name=summary.caller_name or NO_NAME,
        need=summary.need or "",
        urgency=summary.urgency or UNKNOWN,
        callback_number=summary.callback_number or summary.caller_number,
        consent=_consent_words(summary.consent_outcome),
    ).strip()  # no alert: no space before the name; no link: none after the full stop


def hide_sign_in_links(body: str) -> str:
    """``body`` with the secret of any sign-in link in it hidden (for pages that show texts)."""
    return _SIGN_IN_LINK.sub(SIGN_IN_LINK_PATH + HIDDEN_LINK, body)


def _consent_words(outcome: str) -> str:
    return {
        "affirmative": "agreed",
        "declined": "declined",
        "unclear": "unclear, none sent",
        "not_asked": "not asked",
    }.get(outcome, outcome or UNKNOWN)
