"""Ledger verification: prove that no consent event was changed, removed or reordered.

The verifier reads the events in the order they were appended (row id) and checks each against its
chain (``event_checks``). Finally each chain's head row must point at the chain's last event,
which exposes events removed from the end. One business's chain is read along its
``(business_id, seq)`` index instead (see :func:`verify_ledger`). A large ledger can be checked by
several processes at once (``verify_workers``); the report is the same.

The events and the chain heads are read in one transaction, as of one moment: the caller's, which on
PostgreSQL must then be REPEATABLE READ, or else one begun here.

With an :class:`~consent_ledger.audio_store.AudioStore`, each event's answer audio is checked too: a
file that is present and hashes to the event's ``audio_sha256`` is fine, a file that retention
purged is counted as purged, and a missing or corrupt file breaks the event.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, func, select

from consent_ledger.audio_store import AudioStore
from consent_ledger.driver_sql import driver_batches
from consent_ledger.event_checks import (
    BATCH_SIZE,
    EMPTY_CHAIN,
    BrokenEvent,
    ChainEnd,
    ReadOrder,
    Tally,
    check_batch,
)
from consent_ledger.tables import consent_chain_heads
from consent_ledger.verify_workers import check_in_parallel

__all__ = [
    "BATCH_SIZE",
    "BrokenEvent",
    "ProgressCallback",
    "VerificationReport",
    "ledger_event_total",
    "verify_ledger",
]

ProgressCallback = Callable[[int], None]
"""Called with the number of events checked so far, once per batch (or range, in parallel)."""


@dataclass(frozen=True)
class VerificationReport:
    """What verification checked and the first break it found, if any.

    ``audio_checked`` counts answer recordings found present and intact, ``audio_purged`` those
    that retention removed (their hash stays in the event); both stay 0 without an audio store.
    """

    events_checked: int
    chains_checked: int
    first_broken: BrokenEvent | None
    audio_checked: int = 0
    audio_purged: int = 0

    @property
    def ok(self) -> bool:
        return self.first_broken is None


def verify_ledger(
    conn: Connection,
    business_id: str | None = None,
    *,
    progress: ProgressCallback | None = None,
    audio_store: AudioStore | None = None,
    workers: int = 1,
) -> VerificationReport:
    """Verify every chain, or only ``business_id``'s; stops at the first break.

    ``progress`` hears how many events were checked after each batch; ``audio_store``, when
    given, is where each event's answer audio is looked up and re-hashed. With ``workers`` above
    one, a large ledger is checked by that many processes (this one included).

    One chain is read along its ``(business_id, seq)`` index, which needs no sort. In a sound
    chain that is also the order of the row ids (appends to a chain queue up on its head), and the
    verifier checks that it is; a chain that fails is read again in row-id order, so that its
    report names the same first broken event as a verification of the whole ledger would.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if not conn.in_transaction():
        _begin_snapshot(conn)
    if business_id is None:
        return _verify(conn, ReadOrder(), progress, audio_store, workers)
    along_chain = ReadOrder(business_id, along_chain=True)
    report = _verify(conn, along_chain, progress, audio_store, workers)
    if report.ok:
        return report
    return _verify(conn, ReadOrder(business_id), None, audio_store, 1)


def _begin_snapshot(conn: Connection) -> None:
    """Begin the transaction in which the events and the chain heads are read as of one moment
    (REPEATABLE READ on PostgreSQL, for the rest of the connection's checkout); the caller ends it.
    """
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ")
    conn.begin()


def ledger_event_total(conn: Connection, business_id: str | None = None) -> int:
    """How many events the chain heads account for: a cheap total to show progress against."""
    statement = select(func.coalesce(func.sum(consent_chain_heads.c.seq), 0))
    if business_id is not None:
        statement = statement.where(consent_chain_heads.c.business_id == business_id)
    return int(conn.execute(statement).scalar_one())


def _verify(
    conn: Connection,
    order: ReadOrder,
    progress: ProgressCallback | None,
    audio_store: AudioStore | None,
    workers: int,
) -> VerificationReport:
    ends: dict[str, ChainEnd] = {}
    tally = Tally()
    resume_from: int | None = None
    joined = check_in_parallel(conn, order, workers, audio_store, progress)
    if joined is not None:
        ends, tally, resume_from = joined.ends, joined.tally, joined.resume_from
        if resume_from is None:
            return _heads_report(conn, order, ends, tally)
    statement = order.statement(conn, first=resume_from)
    with closing(driver_batches(conn, statement, BATCH_SIZE)) as batches:
        for batch in batches:
            broken = check_batch(conn, batch, ends, tally, audio_store)
            if broken is not None:
                chains = len(set(ends) | {broken.business_id})
                return _report(tally, chains, broken)
            if progress is not None:
                progress(tally.events)
    return _heads_report(conn, order, ends, tally)


def _heads_report(
    conn: Connection, order: ReadOrder, ends: dict[str, ChainEnd], tally: Tally
) -> VerificationReport:
    empty_chains, broken_head = _check_heads(conn, ends, order.business_id)
    return _report(tally, len(ends) + empty_chains, broken_head)


def _report(tally: Tally, chains: int, broken: BrokenEvent | None) -> VerificationReport:
    return VerificationReport(tally.events, chains, broken, tally.audio_checked, tally.audio_purged)


def _check_heads(
    conn: Connection, ends: dict[str, ChainEnd], business_id: str | None
) -> tuple[int, BrokenEvent | None]:
    """Compare each chain head with its chain's last event.

    Returns how many heads have no events, and the first head that does not match.
    """
    statement = select(consent_chain_heads).order_by(consent_chain_heads.c.business_id)
    if business_id is not None:
        statement = statement.where(consent_chain_heads.c.business_id == business_id)
    headless = dict(ends)
    empty_chains = 0
    with conn.execute(statement.execution_options(yield_per=BATCH_SIZE)) as heads:
        for head in heads:
            empty_chains += head.business_id not in headless
            end = headless.pop(head.business_id, EMPTY_CHAIN)
            reason = _head_mismatch(head, end)
            if reason is not None:
                return empty_chains, BrokenEvent(head.business_id, head.seq, reason, None)
    if headless:
        missing, (last_seq, _hash, _id) = next(iter(headless.items()))
        return empty_chains, BrokenEvent(missing, last_seq, "chain head is missing", None)
    return empty_chains, None


def _head_mismatch(head: Row[Any], end: ChainEnd) -> str | None:
    last_seq, last_hash, _id = end
    if head.seq > last_seq:
        return "chain head points past the last event"
    if head.seq < last_seq:
        return "chain head is behind the last event"
    if head.hash != last_hash:
        return "chain head hash does not match the last event"
    return None
