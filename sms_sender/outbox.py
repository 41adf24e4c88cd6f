"""The outbox: texts we plan to send, queued in the caller's transaction, one row per text.

A row is the database record of a text from the moment it is planned: the dispatcher later
claims it, asks the consent gate, and records whether it was sent, blocked or failed. Queuing is
idempotent per call and kind, so a retried hang-up handler never plans the same text twice.
Every function here runs on a ``Connection`` inside a transaction the caller began.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, func, select, update

from sms_sender.advisory_lock import lock_number
from sms_sender.segments import segment_count
from sms_sender.tables import insert_once, outbox
from sms_sender.templates import ConfirmationRequest, ConfirmationTerms, render_confirmation

logger = logging.getLogger(__name__)

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class OutboxStatus(StrEnum):
    """Where a text is in its life."""

    SCHEDULED = "scheduled"
    CLAIMED = "claimed"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"


class OutboxKind(StrEnum):
    """What a text is for; one text of each kind per call (or per inbound text it answers)."""

    CONFIRMATION = "confirmation"
    NO_REPLY_FOLLOW_UP = "no_reply_follow_up"
    CALLBACK_CHECK = "callback_check"
    HELP_REPLY = "help_reply"
    OPT_OUT_CONFIRMATION = "opt_out_confirmation"
    OPT_IN_CONFIRMATION = "opt_in_confirmation"
    OWNER_SUMMARY = "owner_summary"
    OWNER_FORWARD = "owner_forward"
    OWNER_REPLY = "owner_reply"
    """A conversational reply the owner wrote to the caller from the call's page."""
    SIGN_IN_CODE = "sign_in_code"


CONSENTED_KINDS = frozenset(
    {OutboxKind.CONFIRMATION, OutboxKind.NO_REPLY_FOLLOW_UP, OutboxKind.CALLBACK_CHECK}
)
"""Texts that rest on the caller's consent: gated, capped and counted."""
FOLLOW_UP_KINDS = frozenset({OutboxKind.NO_REPLY_FOLLOW_UP, OutboxKind.CALLBACK_CHECK})
"""Consented texts after the confirmation: they wait for the recipient's daytime."""
REPLY_KINDS = frozenset(
    {OutboxKind.HELP_REPLY, OutboxKind.OPT_OUT_CONFIRMATION, OutboxKind.OPT_IN_CONFIRMATION}
)
"""Answers to a keyword the recipient sent: allowed without consent, never counted."""
OWNER_KINDS = frozenset({OutboxKind.OWNER_SUMMARY, OutboxKind.OWNER_FORWARD})
"""Notices to the business owner: allowed only when the owner opted in."""

HANDED_TO_CARRIER = (OutboxStatus.SENT, OutboxStatus.DELIVERED, OutboxStatus.UNDELIVERED)
PENDING = (OutboxStatus.SCHEDULED, OutboxStatus.CLAIMED)


@dataclass(frozen=True)
class OutboxMessage:
    """One outbox row."""

    id: int
    business_id: str
    call_sid: str
    to_number: str
    from_number: str
    kind: OutboxKind
    body: str
    segments: int
    status: OutboxStatus
    reason: str | None
    consent_event_hash: str
    due_at: datetime
    created_at: datetime
    claimed_at: datetime | None
    sent_at: datetime | None
    provider_message_id: str | None
    attempts: int


@dataclass(frozen=True)
class PlannedText:
    """A text to queue. ``reference`` is the call SID (or, for a reply, the inbound MessageSid)
    that makes queuing idempotent per kind; ``consent_event_hash`` is the ledger event the text
    rests on, empty for texts that rest on none (HELP replies, owner notices)."""

    business_id: str
    reference: str
    to_number: str
    from_number: str
    kind: OutboxKind
    body: str
    consent_event_hash: str
    due_at: datetime


def queue_text(conn: Connection, text: PlannedText) -> OutboxMessage:
    """Queue ``text``; the row already planned for its reference and kind if there is one."""
    if not text.business_id.strip() or not text.reference.strip():
        raise ValueError("a text needs a business_id and a reference")
    for name in ("to_number", "from_number"):
        if not is_e164(getattr(text, name)):
            raise ValueError(f"{name} must be an E.164 number, got {getattr(text, name)!r}")
    if text.due_at.tzinfo is None or text.due_at.utcoffset() is None:
        raise ValueError("due_at must be an aware datetime")
    values = {
        "business_id": text.business_id,
        "call_sid": text.reference,
        "to_number": text.to_number,
        "from_number": text.from_number,
        "kind": text.kind.value,
        "body": text.body,
        "segments": segment_count(text.body),
        "status": OutboxStatus.SCHEDULED.value,
        "consent_event_hash": text.consent_event_hash,
        "due_at": text.due_at,
        "created_at": datetime.now(UTC),
        "attempts": 0,
    }
    inserted = conn.execute(insert_once(conn.dialect.name, outbox, values, ["call_sid", "kind"]))
    if inserted.rowcount == 0:
        logger.info(
            "%s already queued",
            text.kind.value,
            extra={"call_sid": text.reference, "business_id": text.business_id},
        )
    return _planned(conn, text.reference, text.kind)


def queue_confirmation(
    conn: Connection, request: ConfirmationRequest, due_at: datetime, terms: ConfirmationTerms
) -> OutboxMessage:
    """Plan the confirmation text for ``request``'s call, promising ``terms``; the existing row
    if already planned."""
    _check_request(request)
    return queue_text(
        conn,
        PlannedText(
            business_id=request.business_id,
            reference=request.call_sid,
            to_number=request.to_number,
            from_number=request.from_number,
            kind=OutboxKind.CONFIRMATION,
            body=render_confirmation(request, terms),
            consent_event_hash=request.consent_event_hash,
            due_at=due_at,
        ),
    )


def list_outbox(
    conn: Connection, business_id: str | None = None, call_sid: str | None = None
) -> list[OutboxMessage]:
    """Outbox rows, oldest first, optionally only one business's or one call's."""
    query = select(outbox).order_by(outbox.c.created_at, outbox.c.id)
    if business_id is not None:
        query = query.where(outbox.c.business_id == business_id)
    if call_sid is not None:
        query = query.where(outbox.c.call_sid == call_sid)
    return [message_from_row(row) for row in conn.execute(query)]


def count_sent(conn: Connection, business_id: str, to_number: str, since: datetime) -> int:
    """How many consented texts this business handed to the carrier for this number since
    ``since``; HELP and opt-out/opt-in replies do not count against a cap."""
    query = (
        select(func.count())
        .select_from(outbox)
        .where(
            outbox.c.business_id == business_id,
            outbox.c.to_number == to_number,
            outbox.c.kind.in_([kind.value for kind in CONSENTED_KINDS]),
            outbox.c.status.in_(_values(HANDED_TO_CARRIER)),
            outbox.c.sent_at >= since,
        )
    )
    return int(conn.execute(query).scalar_one())


def cancel_pending(
    conn: Connection,
    business_id: str,
    to_number: str,
    reason: str,
    kinds: Collection[OutboxKind] | None = None,
) -> int:
    """Cancel every text not yet sent to this number for this business (only ``kinds`` when
    given); how many were cancelled.

    On PostgreSQL this waits for the number's lock, which a dispatcher sending to the number
    holds, so once the caller's transaction commits no cancelled text can still reach the
    transport.
    """
    lock_number(conn, business_id, to_number)
    statement = update(outbox).where(
        outbox.c.business_id == business_id,
        outbox.c.to_number == to_number,
        outbox.c.status.in_(_values(PENDING)),
    )
    if kinds is not None:
        statement = statement.where(outbox.c.kind.in_([kind.value for kind in kinds]))
    cancelled = conn.execute(statement.values(status=OutboxStatus.CANCELLED.value, reason=reason))
    logger.info(
        "cancelled %d pending texts", cancelled.rowcount, extra={"business_id": business_id}
    )
    return cancelled.rowcount


def lock_message(conn: Connection, message_id: int) -> Row[Any] | None:
    """The outbox row ``message_id``, locked until the transaction ends; None when there is none.

    The lock of its number (``advisory_lock.lock_number``) is taken before the row's own, the
    order every transaction that changes a number's rows keeps. A row's business and number never
    change, so reading them unlocked first is safe.
    """
    key = conn.execute(
        select(outbox.c.business_id, outbox.c.to_number).where(outbox.c.id == message_id)
    ).first()
    if key is None:
        return None
    lock_number(conn, key.business_id, key.to_number)
    return conn.execute(select(outbox).where(outbox.c.id == message_id).with_for_update()).first()


def message_from_row(row: Row[Any]) -> OutboxMessage:
    """The ``OutboxMessage`` for a selected outbox row."""
    fields = row._asdict()
    fields["kind"] = OutboxKind(fields["kind"])
    fields["status"] = OutboxStatus(fields["status"])
    return OutboxMessage(**fields)


def is_e164(number: str) -> bool:
    """Whether ``number`` is written in E.164 (``+`` then 7 to 15 digits)."""
    return _E164.fullmatch(number) is not None


def _check_request(request: ConfirmationRequest) -> None:
    for name in ("business_id", "call_sid", "consent_event_hash"):
        if not getattr(request, name).strip():
            raise ValueError(f"a confirmation request needs a {name}")
    for name in ("to_number", "from_number"):
        if not is_e164(getattr(request, name)):
            raise ValueError(f"{name} must be an E.164 number, got {getattr(request, name)!r}")


def _planned(conn: Connection, call_sid: str, kind: OutboxKind) -> OutboxMessage:
    query = select(outbox).where(outbox.c.call_sid == call_sid, outbox.c.kind == kind.value)
    return message_from_row(conn.execute(query).one())


def _values(statuses: Sequence[OutboxStatus]) -> list[str]:
    return [status.value for status in statuses]


def get_message(conn: Connection, message_id: int) -> OutboxMessage | None:
    """The outbox row ``message_id``, or None."""
    row = conn.execute(select(outbox).where(outbox.c.id == message_id)).first()
    return None if row is None else message_from_row(row)


def cancel_message(conn: Connection, message_id: int, reason: str) -> bool:
    """Cancel one text if it is not yet sent; whether it was cancelled (waits for a dispatcher
    sending it, like ``cancel_pending``)."""
    cancelled = conn.execute(
        update(outbox)
        .where(outbox.c.id == message_id, outbox.c.status.in_(_values(PENDING)))
        .values(status=OutboxStatus.CANCELLED.value, reason=reason)
    )
    return cancelled.rowcount == 1
