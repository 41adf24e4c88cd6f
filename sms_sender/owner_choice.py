"""The owner's choice about notification texts (call summaries, forwarded replies), kept in the
ledger as events of its own: ``owner_notifications_opt_in`` and ``owner_notifications_opt_out``.

The owner makes it on the command line (``receptionist business owner-texts``) or from the owner's
phone: an opt-out texted to the business number (STOP, its kin, or plain language) or error 21610
(the phone unsubscribed at the carrier) turns the texts off, because an opt-out stops every text
to a number; START turns them back on, but only after they were turned off, just as START from a
caller restores only what STOP ended. The dispatcher sends an owner text only while the newest
choice is an opt-in (``consent_ledger.owner_notifications_allowed``, asked at send time). When the
phone's history cannot be read, an opt-out still turns the texts off (``text_choices``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from consent_ledger import (
    ConsentEvidence,
    ConsentMethod,
    EventKind,
    RecordedEvent,
    append_event,
    events_for_number,
)
from sms_sender.policy import SmsPolicy

_CHOICES = (EventKind.OWNER_NOTIFICATIONS_OPT_IN, EventKind.OWNER_NOTIFICATIONS_OPT_OUT)


def record_owner_choice(
    conn: Connection,
    policy: SmsPolicy,
    wanted: bool,
    method: ConsentMethod,
    at: datetime,
    note: str = "",
) -> RecordedEvent:
    """Record that the owner's phone is to get notification texts (``wanted``) or not.

    ``method`` is how the owner said so: ``owner`` on the command line, ``sms_keyword`` or
    ``sms_text`` from the phone; ``note`` names what carried it (the inbound text's MessageSid).
    """
    if policy.owner_number is None:
        raise ValueError(f"business {policy.business_id} has no owner phone")
    evidence = ConsentEvidence(
        business_id=policy.business_id,
        business_name=policy.business_name,
        phone_number=policy.owner_number,
        call_sid=None,
        stream_sid=None,
        kind=_CHOICES[0] if wanted else _CHOICES[1],
        method=method,
        script=None,
        answers=(),
        classifier=None,
        classifier_version=None,
        reasked=False,
        scope=None,
        occurred_at=at,
        note=note,
    )
    return append_event(conn, evidence, at)


def owner_phone_changes_choice(
    conn: Connection,
    policy: SmsPolicy,
    number: str,
    wanted: bool,
    method: ConsentMethod,
    at: datetime,
    note: str,
) -> RecordedEvent | None:
    """Record the choice ``number`` made by text when it is the owner's phone and the choice
    changes something: off while the texts are on, on only after they were turned off. None
    otherwise. Raises CorruptEventError when the number's history cannot be read."""
    if number != policy.owner_number:
        return None
    undone = _CHOICES[1] if wanted else _CHOICES[0]
    if _latest_choice(conn, policy.business_id, number) is not undone:
        return None
    return record_owner_choice(conn, policy, wanted, method, at, note)


def _latest_choice(conn: Connection, business_id: str, number: str) -> EventKind | None:
    choices = [e.kind for e in events_for_number(conn, business_id, number) if e.kind in _CHOICES]
    return choices[-1] if choices else None
