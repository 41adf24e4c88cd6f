"""The owner's choice about notification texts (call summaries, forwarded replies), kept in the
ledger as events of its own: ``owner_notifications_opt_in`` and ``owner_notifications_opt_out``.

The owner answers when the business is set up (its file's ``owner_summary_texts``, recorded at
import when the phone has no choice on record yet, so a re-import never undoes a later choice),
and changes it on the owner pages, on the command line (``receptionist business owner-texts``) or
from the owner's phone: an opt-out texted to the business number (STOP, its kin, or plain
language) or error 21610 (the phone unsubscribed at the carrier) turns the texts off, because an
opt-out stops every text to a number; START turns them on whenever they are not on (also when
the owner never chose: the owner asked for them). The dispatcher sends an owner text only while
the newest choice is an opt-in (``consent_ledger.owner_notifications_allowed``, asked at send
time). When the phone's history cannot be read, an opt-out still turns the texts off
(``text_choices``).
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

    ``method`` is how the owner said so: ``owner`` on the command line or at set-up,
    ``web_form`` on the owner pages, ``sms_keyword`` or ``sms_text`` from the phone; ``note``
    names what carried it (the inbound text's MessageSid, the set-up, who signed in).
    """
    if policy.owner_number is None:
        raise ValueError(f"business {policy.business_id} has no owner phone")
    return record_notification_choice(
        conn,
        policy.business_id,
        policy.business_name,
        policy.owner_number,
        wanted,
        method,
        at,
        note,
    )


def record_notification_choice(
    conn: Connection,
    business_id: str,
    business_name: str,
    owner_number: str,
    wanted: bool,
    method: ConsentMethod,
    at: datetime,
    note: str = "",
) -> RecordedEvent:
    """:func:`record_owner_choice` for the owner phone ``owner_number`` of ``business_id``."""
    evidence = ConsentEvidence(
        business_id=business_id,
        business_name=business_name,
        phone_number=owner_number,
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
    changes something: off while the texts are on, on while they are not (turned off, or never
    chosen). None otherwise. Raises CorruptEventError when the number's history cannot be
    read."""
    if number != policy.owner_number:
        return None
    latest = _latest_choice(conn, policy.business_id, number)
    changes = latest is not _CHOICES[0] if wanted else latest is _CHOICES[0]
    if not changes:
        return None
    return record_owner_choice(conn, policy, wanted, method, at, note)


def record_setup_choice(
    conn: Connection,
    business_id: str,
    business_name: str,
    owner_number: str,
    wanted: bool,
    at: datetime,
) -> RecordedEvent | None:
    """Record the owner's answer given when the business was set up, unless the owner's phone
    already has a choice on record (None then: a later choice stands)."""
    if _latest_choice(conn, business_id, owner_number) is not None:
        return None
    note = "the owner's answer when the business was set up"
    return record_notification_choice(
        conn, business_id, business_name, owner_number, wanted, ConsentMethod.OWNER, at, note
    )


def _latest_choice(conn: Connection, business_id: str, number: str) -> EventKind | None:
    choices = [e.kind for e in events_for_number(conn, business_id, number) if e.kind in _CHOICES]
    return choices[-1] if choices else None
