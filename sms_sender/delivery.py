"""Twilio's status callbacks: what became of a text after the carrier took it.

Each text's StatusCallback URL names its outbox row (``?outbox=ID``), so a callback finds its row
by id even when the transaction that records the send's MessageSid has not committed yet: the
callback locks the row (after its number's lock, the order every writer keeps) and so waits for
that transaction. (Callbacks without an id, for texts sent before ids were added, are matched by
MessageSid.) A callback must agree with its row — the MessageSid recorded for it, its numbers — or
it changes nothing.

When the row has no MessageSid after that wait (the send's transaction rolled back after Twilio
accepted the text, or the worker died), a final status is kept as an early report, and the
dispatcher applies it when it records that MessageSid. Twilio does not retry a callback that we
refuse, so answering with an error would lose it.

Delivery only moves forward — ``sent`` to ``delivered``, ``undelivered`` or ``failed`` — so a
repeated or late callback changes nothing. A failure records the provider's error code as the
reason; error 21610 (the recipient unsubscribed at the carrier) also cancels every pending text to
the number and records a revocation in the ledger, in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, select, update

from sms_sender.carrier_opt_out import UNSUBSCRIBED_AT_CARRIER, revoke_after_carrier_opt_out
from sms_sender.outbox import OutboxMessage, OutboxStatus, lock_message, message_from_row
from sms_sender.send_rules import SendRules
from sms_sender.tables import early_delivery_reports, insert_once, outbox

logger = logging.getLogger(__name__)

FINAL_STATUSES = {
    "delivered": OutboxStatus.DELIVERED,
    "undelivered": OutboxStatus.UNDELIVERED,
    "failed": OutboxStatus.FAILED,
}
IN_FLIGHT_STATUSES = frozenset({"accepted", "scheduled", "queued", "sending", "sent", "read"})


class DeliveryUpdate(StrEnum):
    """What a status callback did."""

    RECORDED = "recorded"
    HELD = "held"
    UNCHANGED = "unchanged"
    UNKNOWN_MESSAGE = "unknown_message"
    MISMATCH = "mismatch"
    UNKNOWN_STATUS = "unknown_status"


@dataclass(frozen=True)
class DeliveryReport:
    """One status callback: ``MessageSid``, ``MessageStatus``, ``ErrorCode`` when failed, the
    outbox id from its URL (None for texts sent without one) and its ``From``/``To`` when given."""

    message_sid: str
    status: str
    error_code: int | None = None
    outbox_id: int | None = None
    from_number: str | None = None
    to_number: str | None = None


def record_delivery(
    conn: Connection, report: DeliveryReport, now: datetime, rules: SendRules
) -> DeliveryUpdate:
    """Apply ``report`` to the text it is about, inside the caller's transaction."""
    reported = conn.execute(_reported_row(report)).first()
    row = None if reported is None else lock_message(conn, reported.id)
    if row is None:
        logger.warning("status callback for unknown text %s", _named(report))
        return DeliveryUpdate.UNKNOWN_MESSAGE
    if not _agrees(row, report):
        logger.warning("status callback does not match text %s; ignored", _named(report))
        return DeliveryUpdate.MISMATCH
    if report.status in IN_FLIGHT_STATUSES:
        return DeliveryUpdate.UNCHANGED
    final = FINAL_STATUSES.get(report.status)
    if final is None:
        logger.warning("status callback with unknown status %r", report.status[:32])
        return DeliveryUpdate.UNKNOWN_STATUS
    if row.provider_message_id is None:
        return _hold(conn, row, report, now)
    return _apply(conn, message_from_row(row), final, report.error_code, now, rules)


def apply_early_report(
    conn: Connection, message_id: int, message_sid: str, now: datetime, rules: SendRules
) -> DeliveryUpdate | None:
    """Apply the early report for ``message_id`` if it names ``message_sid``, the MessageSid
    just recorded for the text; None when there is none. Call it in that transaction."""
    held = conn.execute(
        select(early_delivery_reports).where(
            early_delivery_reports.c.outbox_id == message_id,
            early_delivery_reports.c.message_sid == message_sid,
        )
    ).first()
    if held is None:
        return None
    conn.execute(
        delete(early_delivery_reports).where(early_delivery_reports.c.outbox_id == message_id)
    )
    row = conn.execute(select(outbox).where(outbox.c.id == message_id)).one()
    final = FINAL_STATUSES[held.status]
    return _apply(conn, message_from_row(row), final, held.error_code, now, rules)


def _reported_row(report: DeliveryReport) -> Select[Any]:
    """The id of the row ``report`` names (locked afterwards, its number's lock first)."""
    if report.outbox_id is None:
        return select(outbox.c.id).where(outbox.c.provider_message_id == report.message_sid)
    return select(outbox.c.id).where(outbox.c.id == report.outbox_id)


def _agrees(row: Row[Any], report: DeliveryReport) -> bool:
    """Whether the callback names this row's MessageSid (once recorded) and its numbers."""
    return (
        row.provider_message_id in (None, report.message_sid)
        and report.from_number in (None, row.from_number)
        and report.to_number in (None, row.to_number)
    )


def _hold(conn: Connection, row: Row[Any], report: DeliveryReport, now: datetime) -> DeliveryUpdate:
    values = {
        "outbox_id": row.id,
        "message_sid": report.message_sid,
        "status": report.status,
        "error_code": report.error_code,
        "received_at": now,
    }
    key = ["outbox_id", "message_sid"]
    conn.execute(insert_once(conn.dialect.name, early_delivery_reports, values, key))
    logger.warning(
        "text %d (%s) reported %s before its send was recorded; held",
        row.id,
        row.status,
        report.status,
        extra={"business_id": row.business_id},
    )
    return DeliveryUpdate.HELD


def _apply(
    conn: Connection,
    message: OutboxMessage,
    final: OutboxStatus,
    error_code: int | None,
    now: datetime,
    rules: SendRules,
) -> DeliveryUpdate:
    reason = None if error_code is None else f"{final.value}: error {error_code}"
    moved = conn.execute(
        update(outbox)
        .where(outbox.c.id == message.id, outbox.c.status == OutboxStatus.SENT.value)
        .values(status=final.value, reason=reason)
    )
    if moved.rowcount != 1:
        return DeliveryUpdate.UNCHANGED
    if error_code == UNSUBSCRIBED_AT_CARRIER:
        revoke_after_carrier_opt_out(conn, message, now, rules)
    logger.info(
        "text %s is %s",
        message.provider_message_id,
        final.value,
        extra={"business_id": message.business_id},
    )
    return DeliveryUpdate.RECORDED


def _named(report: DeliveryReport) -> str:
    return f"#{report.outbox_id}" if report.outbox_id is not None else report.message_sid[:64]
