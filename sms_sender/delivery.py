"""Twilio's status callbacks: what became of a text after the carrier took it.

A callback names the MessageSid the transport got back when it sent the text. Delivery only moves
forward — ``sent`` to ``delivered``, ``undelivered`` or ``failed`` — so a repeated or late
callback changes nothing (idempotent by MessageSid). A failure records the provider's error code
as the reason; error 21610 (the recipient unsubscribed at the carrier) also cancels every pending
text to the number and records a revocation in the ledger, in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, select, update

from sms_sender.dispatch import UNSUBSCRIBED_AT_CARRIER, revoke_after_carrier_opt_out
from sms_sender.outbox import OutboxStatus, message_from_row
from sms_sender.send_rules import SendRules
from sms_sender.tables import outbox

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
    UNCHANGED = "unchanged"
    UNKNOWN_MESSAGE = "unknown_message"
    UNKNOWN_STATUS = "unknown_status"


@dataclass(frozen=True)
class DeliveryReport:
    """One status callback: ``MessageSid``, ``MessageStatus`` and ``ErrorCode`` when failed."""

    message_sid: str
    status: str
    error_code: int | None = None


def record_delivery(
    conn: Connection, report: DeliveryReport, now: datetime, rules: SendRules
) -> DeliveryUpdate:
    """Apply ``report`` to the text it is about, inside the caller's transaction."""
    row = conn.execute(
        select(outbox).where(outbox.c.provider_message_id == report.message_sid).with_for_update()
    ).first()
    if row is None:
        logger.warning("status callback for unknown message %s", report.message_sid[:64])
        return DeliveryUpdate.UNKNOWN_MESSAGE
    if report.status in IN_FLIGHT_STATUSES:
        return DeliveryUpdate.UNCHANGED
    final = FINAL_STATUSES.get(report.status)
    if final is None:
        logger.warning("status callback with unknown status %r", report.status[:32])
        return DeliveryUpdate.UNKNOWN_STATUS
    reason = None if report.error_code is None else f"{report.status}: error {report.error_code}"
    moved = conn.execute(
        update(outbox)
        .where(outbox.c.id == row.id, outbox.c.status == OutboxStatus.SENT.value)
        .values(status=final.value, reason=reason)
    )
    if moved.rowcount != 1:
        return DeliveryUpdate.UNCHANGED
    if report.error_code == UNSUBSCRIBED_AT_CARRIER:
        revoke_after_carrier_opt_out(conn, message_from_row(row), now, rules)
    logger.info(
        "text %s is %s", report.message_sid, final.value, extra={"business_id": row.business_id}
    )
    return DeliveryUpdate.RECORDED
