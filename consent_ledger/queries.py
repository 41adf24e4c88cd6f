"""Reading consent events back: one number's history, the newest events, one event by its hash,
the audio the events point at, and replaying every event into the current-state projection.

Every row read is checked against its own hash on the way out (see ``chain.event_from_row``), so a
damaged row raises CorruptEventError instead of being returned as evidence.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, select

from consent_ledger.chain import RecordedEvent, event_from_row
from consent_ledger.evidence import EventKind
from consent_ledger.projection import ConsentStateRow, advance, store_states
from consent_ledger.tables import consent_events, consent_states

_BATCH_SIZE = 1000
_AUDIO_MARK = '"audio_sha256":"'
"""How a body that names an audio file starts that field (``null`` when there is none)."""


@dataclass(frozen=True)
class AudioReference:
    """A consent event that points at answer audio, by the audio's sha256."""

    business_id: str
    seq: int
    event_hash: str
    audio_sha256: str
    recorded_at: datetime


def events_for_number(conn: Connection, business_id: str, phone_number: str) -> list[RecordedEvent]:
    """Every event of ``business_id`` about ``phone_number``, oldest first (chain order)."""
    statement = (
        select(consent_events)
        .where(consent_events.c.business_id == business_id)
        .where(consent_events.c.phone_number == phone_number)
        .order_by(consent_events.c.seq)
    )
    return [event_from_row(row) for row in conn.execute(statement)]


def latest_event_of_kinds(
    conn: Connection, business_id: str, phone_number: str, kinds: Collection[EventKind]
) -> RecordedEvent | None:
    """The newest event of ``business_id`` about ``phone_number`` whose kind is one of ``kinds``."""
    row = conn.execute(
        select(consent_events)
        .where(consent_events.c.business_id == business_id)
        .where(consent_events.c.phone_number == phone_number)
        .where(consent_events.c.kind.in_([kind.value for kind in kinds]))
        .order_by(consent_events.c.seq.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else event_from_row(row)


def latest_events(
    conn: Connection, limit: int, business_id: str | None = None
) -> list[RecordedEvent]:
    """The ``limit`` most recently appended events, newest first, of one business or of all."""
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    statement = select(consent_events).order_by(consent_events.c.id.desc()).limit(limit)
    if business_id is not None:
        statement = statement.where(consent_events.c.business_id == business_id)
    return [event_from_row(row) for row in conn.execute(statement)]


def event_by_hash(conn: Connection, event_hash: str) -> RecordedEvent | None:
    """The event whose hash is ``event_hash``, or None when there is none."""
    row = conn.execute(
        select(consent_events).where(consent_events.c.hash == event_hash)
    ).one_or_none()
    return None if row is None else event_from_row(row)


def audio_references(conn: Connection) -> Iterator[AudioReference]:
    """Every event that points at answer audio, in append order.

    Raises CorruptEventError at a damaged event, so that no decision about the audio (keeping or
    purging it) is ever taken on evidence that cannot be trusted.
    """
    statement = (
        select(consent_events)
        .where(consent_events.c.body.contains(_AUDIO_MARK, autoescape=True))
        .order_by(consent_events.c.id)
        .execution_options(yield_per=_BATCH_SIZE)
    )
    with conn.execute(statement) as rows:
        for row in rows:
            event = event_from_row(row)
            audio = event.body["evidence"]["audio_sha256"]
            if isinstance(audio, str):
                yield AudioReference(
                    event.business_id, event.seq, event.hash, audio, event.recorded_at
                )


def rebuild_projection(conn: Connection, business_id: str | None = None) -> int:
    """Recompute the ``consent_state`` rows of one business (or all) from the events.

    Returns how many rows were written. Runs in the caller's transaction; on PostgreSQL the table is
    locked first so that appends wait until the rebuild commits (on SQLite the transaction already
    holds the write lock). Raises CorruptEventError (and writes nothing once the caller rolls back)
    when an event is damaged: the projection is only ever derived from evidence that checks out.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE consent_state IN EXCLUSIVE MODE")
    clear = delete(consent_states)
    events = select(consent_events).order_by(
        consent_events.c.business_id, consent_events.c.phone_number, consent_events.c.seq
    )
    if business_id is not None:
        clear = clear.where(consent_states.c.business_id == business_id)
        events = events.where(consent_events.c.business_id == business_id)
    conn.execute(clear)
    written = 0
    pending: list[ConsentStateRow] = []
    state: ConsentStateRow | None = None
    for row in conn.execute(events).yield_per(_BATCH_SIZE):
        if state is not None and (state.business_id, state.phone_number) != (
            row.business_id,
            row.phone_number,
        ):
            pending.append(state)
            state = None
        state = advance(state, event_from_row(row).chained())
        if len(pending) >= _BATCH_SIZE:
            written += _flush(conn, pending)
    if state is not None:
        pending.append(state)
    return written + _flush(conn, pending)


def _flush(conn: Connection, pending: list[ConsentStateRow]) -> int:
    count = len(pending)
    store_states(conn, pending)
    pending.clear()
    return count
