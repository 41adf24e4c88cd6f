"""The verifier's hot loop: checking stored events, in order, against their chains.

Rows are read in batches of plain column tuples straight from the driver
(``driver_sql.driver_batches``). For each chain only its last sequence number, hash and row id are
kept, so millions of events are checked in bounded memory. Each event must carry the next sequence
number of its chain, link to the previous event's hash, come after it in row-id order, hash
correctly, and have columns that agree with its hashed body.

A ledger can be checked in ranges (of row ids, or of one chain's sequence numbers), each on its
own: a chain's first event in a range is then taken as it stands and kept as the range's *entry*
into that chain, to be linked to the end of the chain in earlier ranges when the ranges are joined
(see :func:`join_range`).

Speed: the body is never parsed on the common path. Because a body that hashes correctly is the
exact canonical JSON that was written, a column agrees with it when the body's key for that column
is followed by the column's value as a JSON string; ``seq`` and ``recorded_at`` are the fixed tail
of every body (see :func:`_agrees_with_body`). A row that fails this quick test is read again in
full and judged by ``chain.row_defect``, which decides what is wrong (or that nothing is).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from sqlalchemy import Connection, Select, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from consent_ledger.audio_store import AudioStatus, AudioStore
from consent_ledger.chain import BODY_SCHEMA, GENESIS_HASH, row_defect
from consent_ledger.driver_sql import driver_batches
from consent_ledger.evidence import EventKind
from consent_ledger.tables import consent_events

BATCH_SIZE = 1000
"""Events fetched per round trip; progress is reported once per batch."""

ChainEnd = tuple[int, str, int]
"""A chain's last event so far: its sequence number, hash and row id. As a range's entry into a
chain: the first event's sequence number, ``prev_hash`` and row id."""

EMPTY_CHAIN: ChainEnd = (0, GENESIS_HASH, 0)
"""Where a chain ends before its first event (row ids count from 1 in both databases)."""

_UNSEEN_CHAIN: ChainEnd = (-1, "", 0)
"""A chain whose earlier events lie in other ranges: no event links to it, so the first one met
takes the slow path, where it is kept as the range's entry."""

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


@dataclass
class Tally:
    """What was checked: events, and answer recordings found intact or purged."""

    events: int = 0
    audio_checked: int = 0
    audio_purged: int = 0

    def add(self, other: Tally) -> None:
        self.events += other.events
        self.audio_checked += other.audio_checked
        self.audio_purged += other.audio_purged


@dataclass
class RangeCheck:
    """One range checked on its own: each chain's entry into it and end in it, what was checked,
    and the first break inside it (then the rest of the range was not read)."""

    entries: dict[str, ChainEnd] = field(default_factory=dict)
    ends: dict[str, ChainEnd] = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)
    broken: BrokenEvent | None = None


@dataclass(frozen=True)
class ReadOrder:
    """Which events to read and in what order: the whole ledger by row id, or one business's chain
    by sequence number (along its ``(business_id, seq)`` index, which needs no sort)."""

    business_id: str | None = None
    along_chain: bool = False

    def statement(
        self, conn: Connection, first: int | None = None, last: int | None = None
    ) -> Select[Any]:
        """The events in this order, from key ``first`` to key ``last`` (inclusive) if given."""
        c = consent_events.c
        key = c.seq if self.along_chain else c.id
        statement = select(*_event_columns(conn.dialect.name)).order_by(key)
        if self.business_id is not None:
            statement = statement.where(c.business_id == self.business_id)
        if first is not None:
            statement = statement.where(key >= first)
        if last is not None:
            statement = statement.where(key <= last)
        return statement

    def key_bounds(self, conn: Connection) -> tuple[int, int] | None:
        """The smallest and largest key among the events, or None when there are none."""
        c = consent_events.c
        key = c.seq if self.along_chain else c.id
        bounds = select(func.min(key), func.max(key))
        if self.business_id is not None:
            bounds = bounds.where(c.business_id == self.business_id)
        low, high = conn.execute(bounds).one()
        return None if low is None else (int(low), int(high))


def check_range(
    conn: Connection,
    order: ReadOrder,
    first: int,
    last: int,
    audio_store: AudioStore | None,
) -> RangeCheck:
    """Check the events with keys ``first`` to ``last`` on their own; stops at the first break."""
    check = RangeCheck()
    with closing(driver_batches(conn, order.statement(conn, first, last), BATCH_SIZE)) as batches:
        for batch in batches:
            check.broken = check_batch(
                conn, batch, check.ends, check.tally, audio_store, entries=check.entries
            )
            if check.broken is not None:
                break
    return check


def join_range(ends: dict[str, ChainEnd], tally: Tally, check: RangeCheck) -> bool:
    """Add a range checked on its own to the chains as they end before it; False when it does not
    join them cleanly (a break inside it, or an entry that does not link), and then nothing changes.
    """
    if check.broken is not None:
        return False
    for business, (seq, prev_hash, event_id) in check.entries.items():
        last_seq, last_hash, last_id = ends.get(business, EMPTY_CHAIN)
        if seq != last_seq + 1 or prev_hash != last_hash or event_id <= last_id:
            return False
    ends.update(check.ends)
    tally.add(check.tally)
    return True


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


def check_batch(
    conn: Connection,
    batch: Sequence[Any],
    ends: dict[str, ChainEnd],
    tally: Tally,
    audio_store: AudioStore | None,
    *,
    entries: dict[str, ChainEnd] | None = None,
) -> BrokenEvent | None:
    """Check one batch of rows in order; the first broken event, if any. This is the hot loop.

    With ``entries`` the rows are a range checked on its own: a chain not yet in ``ends`` enters
    the range at its first event, which is kept in ``entries``; without, every chain starts empty.
    """
    unseen = EMPTY_CHAIN if entries is None else _UNSEEN_CHAIN
    for index, row in enumerate(batch):
        event_id, business, seq, _number, _kind, _at, body, prev_hash, digest = row
        last_seq, last_hash, last_id = ends.get(business, unseen)
        reason = None
        if seq != last_seq + 1 or prev_hash != last_hash or event_id <= last_id:
            if last_seq < 0 and entries is not None:
                entries[business] = (seq, prev_hash, event_id)
            else:
                reason = _link_defect(seq, prev_hash, last_seq, last_hash)
        if reason is None and not _agrees_with_body(row):
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


def _audio_defect(body: str, audio_store: AudioStore, tally: Tally) -> str | None:
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
