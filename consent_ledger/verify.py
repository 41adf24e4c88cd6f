"""Ledger verification: prove that no consent event was changed, removed or reordered.

The verifier reads the events in the order they were appended (row id), in batches of plain
column tuples straight from the driver (``driver_sql.driver_batches``), keeping only the last
sequence number, hash and row id of each chain, so a ledger of millions of events is checked in
bounded memory. Each event must carry the next sequence number of its chain, link to the previous
event's hash, hash correctly, and have columns that agree with its hashed body. Finally each
chain's head row must point at the chain's last event, which exposes events removed from the end.
One business's chain is read along its ``(business_id, seq)`` index instead (see
:func:`verify_ledger`).

Speed: the body is never parsed on the common path. Because a body that hashes correctly is the
exact canonical JSON that was written, a column agrees with it when the body's key for that column
is followed by the column's value as a JSON string; ``seq`` and ``recorded_at`` are the fixed tail
of every body (see :func:`_agrees_with_body`). A row that fails this quick test is read again in
full and judged by ``chain.row_defect``, which decides what is wrong (or that nothing is).

With an :class:`~consent_ledger.audio_store.AudioStore`, each event's answer audio is checked too: a
file that is present and hashes to the event's ``audio_sha256`` is fine, a file that retention
purged is counted as purged, and a missing or corrupt file breaks the event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from sqlalchemy import Connection, Row, Select, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from consent_ledger.audio_store import AudioStatus, AudioStore
from consent_ledger.chain import BODY_SCHEMA, GENESIS_HASH, row_defect
from consent_ledger.driver_sql import driver_batches
from consent_ledger.evidence import EventKind
from consent_ledger.tables import consent_chain_heads, consent_events

BATCH_SIZE = 1000
"""Events fetched per round trip; progress is reported once per batch."""

ProgressCallback = Callable[[int], None]
"""Called with the number of events checked so far, once per batch."""

_BODY_HEAD = '{"evidence":{'
_FIRST_KEY_AT = len(_BODY_HEAD)
_KINDS = frozenset(kind.value for kind in EventKind)
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


_ChainEnd = tuple[int, str, int]
"""A chain's last event so far: its sequence number, hash and row id."""

_EMPTY_CHAIN: _ChainEnd = (0, GENESIS_HASH, 0)
"""Where a chain ends before its first event (row ids count from 1 in both databases)."""


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

    One chain is read along its ``(business_id, seq)`` index, which needs no sort. In a sound
    chain that is also the order of the row ids (appends to a chain queue up on its head), and the
    verifier checks that it is; a chain that fails is read again in row-id order, so that its
    report names the same first broken event as a verification of the whole ledger would.
    """
    if business_id is None:
        return _verify(conn, None, _read_order(conn, None), progress, audio_store)
    along_chain = _read_order(conn, business_id, along_chain=True)
    report = _verify(conn, business_id, along_chain, progress, audio_store)
    if report.ok:
        return report
    return _verify(conn, business_id, _read_order(conn, business_id), None, audio_store)


def ledger_event_total(conn: Connection, business_id: str | None = None) -> int:
    """How many events the chain heads account for: a cheap total to show progress against."""
    statement = select(func.coalesce(func.sum(consent_chain_heads.c.seq), 0))
    if business_id is not None:
        statement = statement.where(consent_chain_heads.c.business_id == business_id)
    return int(conn.execute(statement).scalar_one())


def _verify(
    conn: Connection,
    business_id: str | None,
    statement: Select[Any],
    progress: ProgressCallback | None,
    audio_store: AudioStore | None,
) -> VerificationReport:
    ends: dict[str, _ChainEnd] = {}
    tally = _Tally()
    with closing(driver_batches(conn, statement, BATCH_SIZE)) as batches:
        for batch in batches:
            broken = _check_batch(conn, batch, ends, tally, audio_store)
            if broken is not None:
                chains = len(set(ends) | {broken.business_id})
                return _report(tally, chains, broken)
            if progress is not None:
                progress(tally.events)
    empty_chains, broken_head = _check_heads(conn, ends, business_id)
    return _report(tally, len(ends) + empty_chains, broken_head)


def _report(tally: _Tally, chains: int, broken: BrokenEvent | None) -> VerificationReport:
    return VerificationReport(tally.events, chains, broken, tally.audio_checked, tally.audio_purged)


def _read_order(
    conn: Connection, business_id: str | None, *, along_chain: bool = False
) -> Select[Any]:
    """The events to verify, in row-id order or (one chain only) in sequence order."""
    c = consent_events.c
    statement = select(*_event_columns(conn.dialect.name))
    if business_id is not None:
        statement = statement.where(c.business_id == business_id)
    return statement.order_by(c.seq if along_chain else c.id)


def _event_columns(dialect_name: str) -> list[ColumnElement[Any]]:
    """The columns the verifier reads, ``recorded_at`` as UTC text as SQLite stores it.

    That text is ``YYYY-MM-DD HH:MM:SS.ffffff``: the canonical instant with a space for the ``T``
    and without the ``Z``.
    """
    c = consent_events.c
    recorded_at: ColumnElement[Any] = c.recorded_at
    if dialect_name == "postgresql":
        utc_text = "to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        recorded_at = literal_column(utc_text).label("recorded_at")
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
    batch: Sequence[Any],
    ends: dict[str, _ChainEnd],
    tally: _Tally,
    audio_store: AudioStore | None,
) -> BrokenEvent | None:
    """Check one batch of rows in order; the first broken event, if any. This is the hot loop."""
    for index, row in enumerate(batch):
        event_id, business, seq, _number, _kind, _at, body, prev_hash, digest = row
        last_seq, last_hash, last_id = ends.get(business, _EMPTY_CHAIN)
        reason = None
        if seq != last_seq + 1 or prev_hash != last_hash or event_id <= last_id:
            reason = _link_defect(seq, prev_hash, last_seq, last_hash)
        elif not _agrees_with_body(row):
            reason = _full_row_defect(conn, event_id)
        if reason is None and audio_store is not None:
            reason = _audio_defect(body, audio_store, tally)
        if reason is not None:
            tally.events += index + 1
            return BrokenEvent(business, seq, reason, event_id)
        ends[business] = (seq, digest, event_id)
    tally.events += len(batch)
    return None


def _link_defect(seq: int, prev_hash: str, last_seq: int, last_hash: str) -> str:
    expected = last_seq + 1
    if seq > expected:
        return f"sequence gap: expected {expected}, found {seq}"
    if seq < expected:
        return f"sequence out of order: expected {expected}, found {seq}"
    if prev_hash != last_hash:
        return "prev_hash does not match the previous event"
    return "stored before the previous event"


def _agrees_with_body(row: tuple[Any, ...]) -> bool:
    """A quick test that the row hashes correctly and its columns say what its body says.

    True is always right; False only means the row needs the full check. A body that hashes
    correctly is the canonical JSON the ledger wrote: its evidence keys are sorted, and no value
    nested after ``business_id`` (only the scope and the script are) has a key named
    ``business_id``, ``kind`` or ``phone_number``, so the last of each (searched from the end,
    the shorter way) is the evidence's own. Inside a JSON string every quote is escaped, so a
    caller's words can never look like a key; and a column holding no quote or backslash is
    written by JSON as it is, so comparing its text with the body's compares the values.
    """
    _id, business, seq, number, kind, recorded_at, body, prev_hash, digest = row
    if not (
        kind in _KINDS
        and type(seq) is int
        and type(body) is str
        and type(prev_hash) is str
        and type(recorded_at) is str
        and _is_plain(business)
        and _is_plain(number)
        and body.startswith(_BODY_HEAD)
        and sha256((prev_hash + body).encode()).hexdigest() == digest
    ):
        return False
    instant = recorded_at.replace(" ", "T")
    if not body.endswith(f'}},"recorded_at":"{instant}Z","schema":"{BODY_SCHEMA}","seq":{seq}}}'):
        return False
    at = body.rfind('"phone_number":"')
    if at < 0 or not body.startswith(f'{number}"', at + 16):
        return False
    at = body.rfind('"kind":"', _FIRST_KEY_AT, at)
    if at < 0 or not body.startswith(f'{kind}"', at + 8):
        return False
    at = body.rfind('"business_id":"', _FIRST_KEY_AT, at)
    return at >= 0 and body.startswith(f'{business}"', at + 15)


def _is_plain(value: object) -> bool:
    """Whether ``value`` is a string that JSON writes as it is: no quote, no backslash.

    JSON escapes only those and control characters, and a control character in a column can
    never match the body's text, where it is always escaped.
    """
    return type(value) is str and '"' not in value and "\\" not in value


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
        missing, (last_seq, _hash, _id) = next(iter(headless.items()))
        return empty_chains, BrokenEvent(missing, last_seq, "chain head is missing", None)
    return empty_chains, None


def _head_mismatch(head: Row[Any], end: _ChainEnd) -> str | None:
    last_seq, last_hash, _id = end
    if head.seq > last_seq:
        return "chain head points past the last event"
    if head.seq < last_seq:
        return "chain head is behind the last event"
    if head.hash != last_hash:
        return "chain head hash does not match the last event"
    return None
