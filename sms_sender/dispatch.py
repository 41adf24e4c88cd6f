"""The dispatcher: claims due outbox rows and sends each one only if the consent gate allows it.

Each row gets one transaction that claims it (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL;
on SQLite ``BEGIN IMMEDIATE`` already serialises writers), asks the consent gate, hands the text
to the transport and records the outcome. The send happens inside that transaction on purpose:
a revocation cancels pending rows with an UPDATE that waits for the row lock, so once it commits
no cancelled text can still reach the transport. On PostgreSQL a transaction-scoped advisory lock
per business and number also serialises two workers texting the same number, so the gate's count
of texts already sent is never stale.

Failures close: a row whose dispatch raises anything unexpected is rolled back and then marked
failed (or sent, if the provider had already accepted it), never retried blindly.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from consent_ledger import may_send
from sms_sender.outbox import OutboxMessage, OutboxStatus, count_sent, message_from_row
from sms_sender.tables import outbox
from sms_sender.transport import OutgoingSms, SendFailed, SendReceipt, SmsTransport

logger = logging.getLogger(__name__)

MAX_SEND_ATTEMPTS = 5
FIRST_RETRY_DELAY = timedelta(seconds=30)


@dataclass(frozen=True)
class DispatchReport:
    """What one ``dispatch_due`` pass did; ``retried`` rows were rescheduled after a transient
    failure."""

    sent: int
    blocked: int
    failed: int
    retried: int = 0


class _Outcome(Enum):
    SENT = "sent"
    BLOCKED = "blocked"
    FAILED = "failed"
    RETRIED = "retried"


@dataclass
class _RowInFlight:
    """What is known of the row being dispatched, kept for when its transaction rolls back."""

    message_id: int | None = None
    receipt: SendReceipt | None = None


def dispatch_due(
    engine: Engine, transport: SmsTransport, now: datetime, limit: int = 50
) -> DispatchReport:
    """Dispatch up to ``limit`` rows that are scheduled and due at ``now``."""
    now = _as_utc(now)
    outcomes: Counter[_Outcome] = Counter()
    troubled: set[int] = set()
    for _ in range(limit):
        in_flight = _RowInFlight()
        try:
            outcome = _dispatch_next(engine, transport, now, troubled, in_flight)
        except Exception:
            message_id = in_flight.message_id
            if message_id is None:
                raise
            logger.exception("dispatching outbox row %d failed; rolled back", message_id)
            troubled.add(message_id)
            outcome = _record_after_error(engine, message_id, in_flight.receipt, now)
        if outcome is None:
            break
        outcomes[outcome] += 1
    return DispatchReport(
        sent=outcomes[_Outcome.SENT],
        blocked=outcomes[_Outcome.BLOCKED],
        failed=outcomes[_Outcome.FAILED],
        retried=outcomes[_Outcome.RETRIED],
    )


def _dispatch_next(
    engine: Engine,
    transport: SmsTransport,
    now: datetime,
    troubled: Collection[int],
    in_flight: _RowInFlight,
) -> _Outcome | None:
    """Claim, gate and send the next due row in one transaction; None when nothing is due."""
    with engine.begin() as conn:
        message = _claim_next_due(conn, now, troubled)
        if message is None:
            return None
        in_flight.message_id = message.id
        _serialise_per_recipient(conn, message)
        decision = may_send(
            conn,
            message.business_id,
            message.to_number,
            now,
            lambda since: count_sent(conn, message.business_id, message.to_number, since),
        )
        if not decision.allowed:
            _record(conn, message.id, status=OutboxStatus.BLOCKED, reason=decision.reason.value)
            logger.info(
                "outbox row %d blocked: %s",
                message.id,
                decision.reason.value,
                extra=_log_fields(message),
            )
            return _Outcome.BLOCKED
        return _send(conn, transport, message, now, in_flight)


def _claim_next_due(
    conn: Connection, now: datetime, troubled: Collection[int]
) -> OutboxMessage | None:
    query = (
        select(outbox)
        .where(outbox.c.status == OutboxStatus.SCHEDULED.value, outbox.c.due_at <= now)
        .order_by(outbox.c.due_at, outbox.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if troubled:
        query = query.where(outbox.c.id.not_in(troubled))
    row = conn.execute(query).first()
    if row is None:
        return None
    _record(conn, row.id, status=OutboxStatus.CLAIMED, claimed_at=now)
    return message_from_row(row)


def _serialise_per_recipient(conn: Connection, message: OutboxMessage) -> None:
    """On PostgreSQL, wait for any other worker sending to this number for this business."""
    if conn.dialect.name != "postgresql":
        return
    recipient = f"sms_sender.outbox:{message.business_id}:{message.to_number}".encode()
    key = int.from_bytes(hashlib.sha256(recipient).digest()[:8], "big", signed=True)
    conn.execute(select(func.pg_advisory_xact_lock(key)))


def _send(
    conn: Connection,
    transport: SmsTransport,
    message: OutboxMessage,
    now: datetime,
    in_flight: _RowInFlight,
) -> _Outcome:
    attempts = message.attempts + 1
    sms = OutgoingSms(
        to_number=message.to_number, from_number=message.from_number, body=message.body
    )
    try:
        receipt = transport.send(sms)
    except SendFailed as failure:
        return _after_send_failed(conn, message, failure, attempts, now)
    in_flight.receipt = receipt
    _record(
        conn,
        message.id,
        status=OutboxStatus.SENT,
        reason=None,
        sent_at=now,
        provider_message_id=receipt.provider_message_id,
        attempts=attempts,
    )
    logger.info(
        "outbox row %d sent through %s", message.id, transport.name, extra=_log_fields(message)
    )
    return _Outcome.SENT


def _after_send_failed(
    conn: Connection, message: OutboxMessage, failure: SendFailed, attempts: int, now: datetime
) -> _Outcome:
    if failure.permanent or attempts >= MAX_SEND_ATTEMPTS:
        reason = failure.reason
        if not failure.permanent:
            reason = f"gave up after {attempts} attempts: {failure.reason}"
        _record(conn, message.id, status=OutboxStatus.FAILED, reason=reason, attempts=attempts)
        logger.warning("outbox row %d failed: %s", message.id, reason, extra=_log_fields(message))
        return _Outcome.FAILED
    retry_at = now + retry_delay(attempts)
    _record(
        conn,
        message.id,
        status=OutboxStatus.SCHEDULED,
        reason=failure.reason,
        due_at=retry_at,
        attempts=attempts,
    )
    logger.warning(
        "outbox row %d will be retried at %s: %s",
        message.id,
        retry_at,
        failure.reason,
        extra=_log_fields(message),
    )
    return _Outcome.RETRIED


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th transient failure: 30 s, 60 s, 120 s, …"""
    return FIRST_RETRY_DELAY * 2 ** (attempts - 1)


def _record_after_error(
    engine: Engine, message_id: int, receipt: SendReceipt | None, now: datetime
) -> _Outcome:
    """After a rollback: the row is sent if the provider accepted it, otherwise failed."""
    outcome = _Outcome.FAILED if receipt is None else _Outcome.SENT
    try:
        with engine.begin() as conn:
            if receipt is None:
                recorded = _record_if_scheduled(
                    conn, message_id, status=OutboxStatus.FAILED, reason="internal error"
                )
            else:
                recorded = _record_if_scheduled(
                    conn,
                    message_id,
                    status=OutboxStatus.SENT,
                    reason="recorded after an internal error",
                    sent_at=now,
                    provider_message_id=receipt.provider_message_id,
                )
    except Exception:
        logger.exception("could not record the outcome of outbox row %d", message_id)
        return outcome
    if not recorded:
        logger.error("outbox row %d changed meanwhile; %s not recorded", message_id, outcome.value)
    return outcome


def _record(conn: Connection, message_id: int, status: OutboxStatus, **values: Any) -> None:
    conn.execute(
        update(outbox).where(outbox.c.id == message_id).values(status=status.value, **values)
    )


def _record_if_scheduled(
    conn: Connection, message_id: int, status: OutboxStatus, **values: Any
) -> bool:
    updated = conn.execute(
        update(outbox)
        .where(outbox.c.id == message_id, outbox.c.status == OutboxStatus.SCHEDULED.value)
        .values(status=status.value, **values)
    )
    return updated.rowcount == 1


def _log_fields(message: OutboxMessage) -> dict[str, str]:
    return {"business_id": message.business_id, "call_sid": message.call_sid}


def _as_utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("dispatch_due needs an aware datetime for now")
    return now.astimezone(UTC)
