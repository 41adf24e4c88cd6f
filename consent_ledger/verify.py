"""Ledger verification: prove that no consent event was changed, removed or reordered.

The verifier reads the events in the order they were appended (row id), a batch at a time, keeping
only the last sequence number and hash of each chain, so a ledger of millions of events is checked
in bounded memory. Each event must carry the next sequence number of its chain, link to the previous
event's hash, hash correctly, and have columns that agree with its hashed body. Finally each chain's
head row must point at the chain's last event, which exposes events removed from the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, select

from consent_ledger.chain import GENESIS_HASH, row_defect
from consent_ledger.tables import consent_chain_heads, consent_events

_BATCH_SIZE = 1000


@dataclass(frozen=True)
class BrokenEvent:
    """The first place where the ledger fails verification.

    ``event_id`` is the row id of the offending event, or None when the break is in the chain head
    (then ``seq`` is the head's sequence number).
    """

    business_id: str
    seq: int
    reason: str
    event_id: int | None


@dataclass(frozen=True)
class VerificationReport:
    """What verification checked and the first break it found, if any."""

    events_checked: int
    chains_checked: int
    first_broken: BrokenEvent | None

    @property
    def ok(self) -> bool:
        return self.first_broken is None


@dataclass(frozen=True)
class _ChainEnd:
    seq: int
    hash: str


_EMPTY_CHAIN = _ChainEnd(seq=0, hash=GENESIS_HASH)


def verify_ledger(conn: Connection, business_id: str | None = None) -> VerificationReport:
    """Verify every chain, or only ``business_id``'s; stops at the first break."""
    ends: dict[str, _ChainEnd] = {}
    checked = 0
    statement = select(consent_events).order_by(consent_events.c.id)
    if business_id is not None:
        statement = statement.where(consent_events.c.business_id == business_id)
    with conn.execute(statement.execution_options(yield_per=_BATCH_SIZE)) as rows:
        for row in rows:
            checked += 1
            end = ends.get(row.business_id, _EMPTY_CHAIN)
            reason = _link_defect(row, end) or row_defect(row)
            if reason is not None:
                chains = len(set(ends) | {row.business_id})
                return VerificationReport(
                    checked, chains, BrokenEvent(row.business_id, row.seq, reason, row.id)
                )
            ends[row.business_id] = _ChainEnd(seq=row.seq, hash=row.hash)
    empty_chains, broken_head = _check_heads(conn, ends, business_id)
    return VerificationReport(checked, len(ends) + empty_chains, broken_head)


def _link_defect(row: Row[Any], end: _ChainEnd) -> str | None:
    expected = end.seq + 1
    if row.seq > expected:
        return f"sequence gap: expected {expected}, found {row.seq}"
    if row.seq < expected:
        return f"sequence out of order: expected {expected}, found {row.seq}"
    if row.prev_hash != end.hash:
        return "prev_hash does not match the previous event"
    return None


def _check_heads(
    conn: Connection, ends: dict[str, _ChainEnd], business_id: str | None
) -> tuple[int, BrokenEvent | None]:
    """Compare each chain head with its chain's last event.

    Returns how many heads have no events, and the first head that does not match.
    """
    statement = select(consent_chain_heads).order_by(consent_chain_heads.c.business_id)
    if business_id is not None:
        statement = statement.where(consent_chain_heads.c.business_id == business_id)
    headless = dict(ends)
    empty_chains = 0
    with conn.execute(statement.execution_options(yield_per=_BATCH_SIZE)) as heads:
        for head in heads:
            empty_chains += head.business_id not in headless
            end = headless.pop(head.business_id, _EMPTY_CHAIN)
            reason = _head_mismatch(head, end)
            if reason is not None:
                return empty_chains, BrokenEvent(head.business_id, head.seq, reason, None)
    if headless:
        missing, end = next(iter(headless.items()))
        return empty_chains, BrokenEvent(missing, end.seq, "chain head is missing", None)
    return empty_chains, None


def _head_mismatch(head: Row[Any], end: _ChainEnd) -> str | None:
    if head.seq > end.seq:
        return "chain head points past the last event"
    if head.seq < end.seq:
        return "chain head is behind the last event"
    if head.hash != end.hash:
        return "chain head hash does not match the last event"
    return None
