"""Reading consent events back: one number's history, the newest events, one event by its hash.

Every row read is checked against its own hash on the way out (see ``chain.event_from_row``), so a
damaged row raises CorruptEventError instead of being returned as evidence.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from consent_ledger.chain import RecordedEvent, event_from_row
from consent_ledger.tables import consent_events


def events_for_number(conn: Connection, business_id: str, phone_number: str) -> list[RecordedEvent]:
    """Every event of ``business_id`` about ``phone_number``, oldest first (chain order)."""
    statement = (
        select(consent_events)
        .where(consent_events.c.business_id == business_id)
        .where(consent_events.c.phone_number == phone_number)
        .order_by(consent_events.c.seq)
    )
    return [event_from_row(row) for row in conn.execute(statement)]


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
