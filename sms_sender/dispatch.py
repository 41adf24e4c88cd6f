"""The dispatcher: leases due outbox rows, then sends each one only if its rules allow it.

A pass has three steps, each its own transaction:

1. Recover: rows claimed longer ago than the lease by a worker that died go back to scheduled.
2. Lease: due rows are claimed (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's
   ``BEGIN IMMEDIATE`` serialises writers) and marked ``claimed`` with one more attempt counted.
   The claim is committed, so a worker that dies later leaves a trace.
3. Send, per row: lock the recipient's number (``advisory_lock.lock_number``), then the row,
   check it is still claimed (a revocation may have cancelled it), ask the rules of its kind
   (consent gate, caps, exclusions, send window — see ``send_rules``), re-check with the provider
   when an earlier attempt may have reached it, hand the text to the transport and record the
   outcome. The send happens while both are locked, so a revocation that cancels it waits, and
   once the revocation commits nothing it cancelled can reach the transport. A status callback
   waits on the same locks; one that came while no MessageSid could be recorded is applied with
   it (``delivery.apply_early_report``). Two workers texting the same number take turns, so counts
   of texts sent are never stale, and every path takes the number's lock before any row's, so
   the 21610 path below never deadlocks with a STOP or another worker. A row whose recipient has
   an opt-out that is still on its way to the database (``pending_opt_outs``: the receptionist's
   journal) is deferred for ``OPT_OUT_PENDING_DELAY`` instead; once the opt-out is stored it
   cancels the row like any other (an opt-out confirmation goes: what is pending is a repeat of
   the STOP it confirms, or a STOP it answers as well). So is an automated text to a number whose
   reply is held for the owner as a possible opt-out (``inbound.open_hold``), every
   ``HELD_REPLY_DELAY`` until the owner decides; replies to HELP, STOP and START are not paused.

No duplicates: a row whose earlier attempt may have been accepted (a worker died mid-send, a
timeout) is looked up with the provider before it is sent again. Failures close: a row whose
dispatch raises anything unexpected is rolled back and marked failed (or sent, if the provider had
already accepted it), never retried blindly. Error 21610 (unsubscribed at the carrier) records a
revocation and cancels the number's pending texts in the send's transaction.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from consent_ledger import require_utc
from sms_sender.carrier_opt_out import UNSUBSCRIBED_AT_CARRIER, revoke_after_carrier_opt_out
from sms_sender.delivery import apply_early_report
from sms_sender.inbound import open_hold
from sms_sender.outbox import (
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    lock_message,
    message_from_row,
)
from sms_sender.send_rules import SendRules, Verdict, judge
from sms_sender.tables import outbox
from sms_sender.transport import OutgoingSms, SendFailed, SendReceipt, SmsTransport

logger = logging.getLogger(__name__)

MAX_SEND_ATTEMPTS = 5
FIRST_RETRY_DELAY = timedelta(seconds=30)
LEASE = timedelta(minutes=5)
LEASE_BATCH = 10
OPT_OUT_PENDING_DELAY = timedelta(seconds=10)
OPT_OUT_PENDING = "an opt-out from this number is not stored yet"
HELD_REPLY_DELAY = timedelta(minutes=15)
HELD_REPLY = "a reply from this number may be an opt-out; paused until the owner decides"
_NOT_PAUSED_BY_HOLDS = frozenset(
    {OutboxKind.HELP_REPLY, OutboxKind.OPT_OUT_CONFIRMATION, OutboxKind.OPT_IN_CONFIRMATION}
)

PendingOptOuts = Callable[[], Collection[str]]
"""The numbers (E.164) with an opt-out received but not yet stored, asked just before a send."""


@dataclass(frozen=True)
class DispatchReport:
    """What one ``dispatch_due`` pass did; ``retried`` rows were rescheduled after a transient
    failure, ``deferred`` rows wait for the recipient's send window."""

    sent: int
    blocked: int
    failed: int
    retried: int = 0
    deferred: int = 0


class _Outcome(Enum):
    SENT = "sent"
    BLOCKED = "blocked"
    FAILED = "failed"
    RETRIED = "retried"
    DEFERRED = "deferred"
    SKIPPED = "skipped"


@dataclass
class _RowInFlight:
    """What is known of the row being sent, kept for when its transaction rolls back."""

    receipt: SendReceipt | None = None


def dispatch_due(
    engine: Engine,
    transport: SmsTransport,
    now: datetime,
    limit: int = 50,
    rules: SendRules | None = None,
    pending_opt_outs: PendingOptOuts | None = None,
) -> DispatchReport:
    """Dispatch up to ``limit`` rows that are scheduled and due at ``now``; none to a number in
    ``pending_opt_outs()`` (those wait)."""
    now = require_utc("now", now)
    chosen_rules = rules or SendRules()
    recover_stale_claims(engine, now)
    outcomes: Counter[_Outcome] = Counter()
    remaining = limit
    while remaining > 0:
        leased = _lease(engine, now, min(LEASE_BATCH, remaining))
        if not leased:
            break
        remaining -= len(leased)
        for message_id in leased:
            outcome = _dispatch_leased(
                engine, transport, message_id, now, chosen_rules, pending_opt_outs
            )
            outcomes[outcome] += 1
    return DispatchReport(
        sent=outcomes[_Outcome.SENT],
        blocked=outcomes[_Outcome.BLOCKED],
        failed=outcomes[_Outcome.FAILED],
        retried=outcomes[_Outcome.RETRIED],
        deferred=outcomes[_Outcome.DEFERRED],
    )


def recover_stale_claims(engine: Engine, now: datetime) -> int:
    """Put rows claimed before ``now - LEASE`` back to scheduled; how many there were.

    Their attempt is already counted, so the next worker re-checks with the provider first.
    """
    with engine.begin() as conn:
        stale = conn.execute(
            select(outbox.c.id)
            .where(
                outbox.c.status == OutboxStatus.CLAIMED.value,
                outbox.c.claimed_at <= now - LEASE,
            )
            .with_for_update(skip_locked=True)
        ).scalars()
        ids = list(stale)
        if ids:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(ids))
                .values(status=OutboxStatus.SCHEDULED.value, reason="claim expired")
            )
            logger.warning("%d outbox rows claimed by a stopped worker are rescheduled", len(ids))
    return len(ids)


def _lease(engine: Engine, now: datetime, count: int) -> list[int]:
    with engine.begin() as conn:
        due = conn.execute(
            select(outbox.c.id)
            .where(outbox.c.status == OutboxStatus.SCHEDULED.value, outbox.c.due_at <= now)
            .order_by(outbox.c.due_at, outbox.c.id)
            .limit(count)
            .with_for_update(skip_locked=True)
        ).scalars()
        ids = list(due)
        if ids:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(ids))
                .values(
                    status=OutboxStatus.CLAIMED.value,
                    claimed_at=now,
                    attempts=outbox.c.attempts + 1,
                )
            )
    return ids


def _dispatch_leased(
    engine: Engine,
    transport: SmsTransport,
    message_id: int,
    now: datetime,
    rules: SendRules,
    pending_opt_outs: PendingOptOuts | None = None,
) -> _Outcome:
    in_flight = _RowInFlight()
    try:
        with engine.begin() as conn:
            return _send_claimed(
                conn, transport, message_id, now, rules, in_flight, pending_opt_outs
            )
    except Exception:
        logger.exception("dispatching outbox row %d failed; rolled back", message_id)
        return _record_after_error(engine, message_id, in_flight.receipt, now, rules)


def _send_claimed(
    conn: Connection,
    transport: SmsTransport,
    message_id: int,
    now: datetime,
    rules: SendRules,
    in_flight: _RowInFlight,
    pending_opt_outs: PendingOptOuts | None = None,
) -> _Outcome:
    row = lock_message(conn, message_id)
    if row is None or row.status != OutboxStatus.CLAIMED.value:
        return _Outcome.SKIPPED  # cancelled or recovered since it was leased
    message = message_from_row(row)
    if (
        message.kind is not OutboxKind.OPT_OUT_CONFIRMATION  # what that opt-out asks for
        and pending_opt_outs is not None
        and message.to_number in pending_opt_outs()
    ):
        waiting = Verdict(False, OPT_OUT_PENDING, defer_until=now + OPT_OUT_PENDING_DELAY)
        return _hold_back(conn, message, waiting)
    if message.kind not in _NOT_PAUSED_BY_HOLDS and open_hold(
        conn, message.business_id, message.to_number
    ):
        paused = Verdict(False, HELD_REPLY, defer_until=now + HELD_REPLY_DELAY)
        return _hold_back(conn, message, paused)
    verdict = judge(conn, message, now, rules)
    if not verdict.allowed:
        return _hold_back(conn, message, verdict)
    sms = OutgoingSms(
        to_number=message.to_number,
        from_number=message.from_number,
        body=message.body,
        outbox_id=message.id,
    )
    try:
        receipt = _accepted_before(transport, message, sms) or transport.send(sms)
    except SendFailed as failure:
        return _after_send_failed(conn, message, failure, now, rules)
    in_flight.receipt = receipt
    _record(
        conn,
        message.id,
        status=OutboxStatus.SENT,
        reason=None,
        sent_at=now,
        provider_message_id=receipt.provider_message_id,
    )
    logger.info(
        "outbox row %d sent through %s", message.id, transport.name, extra=_log_fields(message)
    )
    if message.attempts > 1:  # a first attempt's callbacks wait for this transaction instead
        apply_early_report(conn, message.id, receipt.provider_message_id, now, rules)
    return _Outcome.SENT


def _accepted_before(
    transport: SmsTransport, message: OutboxMessage, sms: OutgoingSms
) -> SendReceipt | None:
    """On a second or later attempt, the provider's receipt if an earlier attempt got through."""
    if message.attempts <= 1:
        return None
    receipt = transport.find_accepted(sms, since=message.created_at - timedelta(minutes=1))
    if receipt is not None:
        logger.warning(
            "outbox row %d was already accepted as %s; not sent again",
            message.id,
            receipt.provider_message_id,
            extra=_log_fields(message),
        )
    return receipt


def _hold_back(conn: Connection, message: OutboxMessage, verdict: Verdict) -> _Outcome:
    if verdict.defer_until is not None:
        _record(
            conn,
            message.id,
            status=OutboxStatus.SCHEDULED,
            reason=verdict.reason,
            due_at=verdict.defer_until,
            claimed_at=None,
            attempts=message.attempts - 1,
        )
        logger.info(
            "outbox row %d deferred to %s (%s)",
            message.id,
            verdict.defer_until,
            verdict.reason,
            extra=_log_fields(message),
        )
        return _Outcome.DEFERRED
    _record(conn, message.id, status=OutboxStatus.BLOCKED, reason=verdict.reason)
    logger.info("outbox row %d blocked: %s", message.id, verdict.reason, extra=_log_fields(message))
    return _Outcome.BLOCKED


def _after_send_failed(
    conn: Connection, message: OutboxMessage, failure: SendFailed, now: datetime, rules: SendRules
) -> _Outcome:
    attempts = message.attempts
    if failure.permanent or attempts >= MAX_SEND_ATTEMPTS:
        reason = failure.reason
        if not failure.permanent:
            reason = f"gave up after {attempts} attempts: {failure.reason}"
        _record(conn, message.id, status=OutboxStatus.FAILED, reason=reason)
        logger.warning("outbox row %d failed: %s", message.id, reason, extra=_log_fields(message))
        if failure.code == UNSUBSCRIBED_AT_CARRIER:
            revoke_after_carrier_opt_out(conn, message, now, rules)
        return _Outcome.FAILED
    retry_at = now + retry_delay(attempts)
    _record(conn, message.id, status=OutboxStatus.SCHEDULED, reason=failure.reason, due_at=retry_at)
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
    return FIRST_RETRY_DELAY * int(2 ** (attempts - 1))


def _record_after_error(
    engine: Engine, message_id: int, receipt: SendReceipt | None, now: datetime, rules: SendRules
) -> _Outcome:
    """After a rollback: the row is sent if the provider accepted it (with any delivery report
    that came meanwhile), otherwise failed."""
    outcome = _Outcome.FAILED if receipt is None else _Outcome.SENT
    values: dict[str, Any] = (
        {"status": OutboxStatus.FAILED, "reason": "internal error"}
        if receipt is None
        else {
            "status": OutboxStatus.SENT,
            "reason": "recorded after an internal error",
            "sent_at": now,
            "provider_message_id": receipt.provider_message_id,
        }
    )
    try:
        with engine.begin() as conn:
            row = lock_message(conn, message_id)
            recorded = row is not None and row.status == OutboxStatus.CLAIMED.value
            if recorded:
                _record(conn, message_id, **values)
            if recorded and receipt is not None:
                apply_early_report(conn, message_id, receipt.provider_message_id, now, rules)
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


def _log_fields(message: OutboxMessage) -> dict[str, str]:
    return {"business_id": message.business_id, "call_sid": message.call_sid}
