"""Ledger verification: prove that no consent event was changed, removed or reordered.

The verifier reads the events in the order they were appended (row id), in large batches of plain
column tuples, keeping only the last sequence number and hash of each chain, so a ledger of
millions of events is checked in bounded memory. Each event must carry the next sequence number of
its chain, link to the previous event's hash, hash correctly, and have columns that agree with its
hashed body. Finally each chain's head row must point at the chain's last event, which exposes
events removed from the end.

Speed: the body is never parsed on the common path. Because a body that hashes correctly is the
exact canonical JSON that was written, a column agrees with it when the body holds that column's
key exactly once, followed by the column's value as a JSON string; ``seq`` and ``recorded_at`` are
the fixed tail of every body. A row that fails this quick test is read again in full and judged by
``chain.row_defect``, which decides what is wrong (or that nothing is).

With an :class:`~consent_ledger.audio_store.AudioStore`, each event's answer audio is checked too: a
file that is present and hashes to the event's ``audio_sha256`` is fine, a file that retention
purged is counted as purged, and a missing or corrupt file breaks the event.
"""

from __future__ import annotations

import json
import re
from hashlib import sha256
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from consent_ledger.audio_store import AudioStatus, AudioStore
from consent_ledger.chain import BODY_SCHEMA, GENESIS_HASH, row_defect
from consent_ledger.tables import consent_chain_heads, consent_events

BATCH_SIZE = 5000
"""Events fetched per round trip; progress is reported once per batch."""

ProgressCallback = Callable[[int], None]
"""Called with the number of events checked so far, once per batch."""

_BODY_HEAD = '{"evidence":{'
_AUDIO_KEY = '"audio_sha256":'
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


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


@dataclass(frozen=True)
class _ChainEnd:
    seq: int
    hash: str


_EMPTY_CHAIN = _ChainEnd(seq=0, hash=GENESIS_HASH)


@dataclass
class _Tally:
    events: int = 0
    audio_checked: int = 0
    audio_purged: int = 0


def verify_ledger(
    conn: Connection,
    business_id: str | None = None,
    *,
    progress: ProgressCallback | None = None,
    audio_store: AudioStore | None = None,
) -> VerificationReport:
    """Verify every chain, or only ``business_id``'s; stops at the first break.

    ``progress`` hears how many events were checked after each batch; ``audio_store``, when
    given, is where each event's answer audio is looked up and re-hashed.
    """
    ends: dict[str, _ChainEnd] = {}
    tally = _Tally()
    statement = select(*_event_columns(conn.dialect.name)).order_by(consent_events.c.id)
    if business_id is not None:
        statement = statement.where(consent_events.c.business_id == business_id)
    with conn.execute(statement.execution_options(yield_per=BATCH_SIZE)) as result:
        for batch in result.partitions():
            broken = _check_batch(conn, batch, ends, tally, audio_store)
            if broken is not None:
                chains = len(set(ends) | {broken.business_id})
                return _report(tally, chains, broken)
            if progress is not None:
                progress(tally.events)
    empty_chains, broken_head = _check_heads(conn, ends, business_id)
    return _report(tally, len(ends) + empty_chains, broken_head)


def _report(tally: _Tally, chains: int, broken: BrokenEvent | None) -> VerificationReport:
    return VerificationReport(
        tally.events, chains, broken, tally.audio_checked, tally.audio_purged
    )


def _event_columns(dialect_name: str) -> list[ColumnElement[Any]]:
    """The columns the verifier reads, with ``recorded_at`` as its canonical instant text."""
    c = consent_events.c
    if dialect_name == "postgresql":
        instant = "to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    else:
        instant = "replace(recorded_at, ' ', 'T') || 'Z'"
    recorded_at = literal_column(instant).label("recorded_at")
    return [
        c.id,
        c.business_id,
        c.seq,
        c.phone_number,
        c.kind,
        recorded_at,
        c.body,
        c.prev_hash,
        c.hash,
    ]


def _check_batch(
    conn: Connection,
    batch: Sequence[Row[Any]],
    ends: dict[str, _ChainEnd],
    tally: _Tally,
    audio_store: AudioStore | None,
) -> BrokenEvent | None:
    for row in batch:
        event_id, business, seq, _number, _kind, _at, body, prev_hash, digest = row
        tally.events += 1
        end = ends.get(business, _EMPTY_CHAIN)
        reason = _link_defect(seq, prev_hash, end)
        if reason is None and not _agrees_with_body(row):
            reason = _full_row_defect(conn, event_id)
        if reason is None and audio_store is not None:
            reason = _audio_defect(body, audio_store, tally)
        if reason is not None:
            return BrokenEvent(business, seq, reason, event_id)
        ends[business] = _ChainEnd(seq=seq, hash=digest)
    return None


def _link_defect(seq: int, prev_hash: str, end: _ChainEnd) -> str | None:
    expected = end.seq + 1
    if seq > expected:
        return f"sequence gap: expected {expected}, found {seq}"
    if seq < expected:
        return f"sequence out of order: expected {expected}, found {seq}"
    if prev_hash != end.hash:
        return "prev_hash does not match the previous event"
    return None


def _agrees_with_body(row: Row[Any]) -> bool:
    """A quick test that the row hashes correctly and its columns say what its body says.

    True is always right; False only means the row needs the full check. The body's evidence
    keys are sorted and the only values nested before ``phone_number`` are the answers, whose
    fields have other names, so the first ``"business_id":``, ``"kind":`` and ``"phone_number":``
    in a body that hashes correctly are the evidence's own. Inside a JSON string every quote is
    escaped, so a caller's words can never look like a key.
    """
    _id, business, seq, number, kind, recorded_at, body, prev_hash, digest = row
    if not (_is_plain(business) and _is_plain(kind) and _is_plain(number)):
        return False
    if not isinstance(body, str) or not isinstance(prev_hash, str) or type(seq) is not int:
        return False
    if sha256((prev_hash + body).encode()).hexdigest() != digest:
        return False
    if not body.endswith(
        f'}},"recorded_at":"{recorded_at}","schema":"{BODY_SCHEMA}","seq":{seq}}}'
    ):
        return False
    at = body.find('"business_id":"', 13)
    if at < 0 or not body.startswith(f'{business}"', at + 15):
        return False
    at = body.find('"kind":"', at)
    if at < 0 or not body.startswith(f'{kind}"', at + 8):
        return False
    at = body.find('"phone_number":"', at)
    return at >= 0 and body.startswith(f'{number}"', at + 16)


def _is_plain(value: object) -> bool:
    """Whether ``value`` is a string that JSON writes as it is (nothing escaped)."""
    return isinstance(value, str) and value.isprintable() and '"' not in value and "\\" not in value


def _full_row_defect(conn: Connection, event_id: int) -> str | None:
    row = conn.execute(select(consent_events).where(consent_events.c.id == event_id)).one()
    return row_defect(row)


def _audio_defect(body: str, audio_store: AudioStore, tally: _Tally) -> str | None:
    audio_sha256 = _audio_sha256(body)
    if audio_sha256 is None:
        return None
    if not _SHA256_HEX.fullmatch(audio_sha256):
        return "audio_sha256 is not a sha256"
    status = audio_store.status(audio_sha256)
    if status is AudioStatus.PRESENT:
        tally.audio_checked += 1
        return None
    if status is AudioStatus.PURGED:
        tally.audio_purged += 1
        return None
    return f"answer audio {audio_sha256} is {status.value}"


def _audio_sha256(body: str) -> str | None:
    """The ``audio_sha256`` recorded in a sound event body (None when the event has no audio)."""
    at = body.find(_AUDIO_KEY)
    start = at + len(_AUDIO_KEY)
    if at >= 0 and body.find(_AUDIO_KEY, start) < 0:
        if body.startswith("null", start):
            return None
        value = body[start : start + 66]
        if len(value) == 66 and value[0] == '"' == value[-1]:
            return value[1:-1]
    evidence = json.loads(body).get("evidence", {})
    found = evidence.get("audio_sha256") if isinstance(evidence, dict) else None
    return found if isinstance(found, str) else None


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
    with conn.execute(statement.execution_options(yield_per=BATCH_SIZE)) as heads:
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
