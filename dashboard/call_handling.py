"""What the owner does with a call: marks it handled (which cancels the follow-ups still pending
to the caller) and writes notes on it. Both record who (the label of the owner token the session
rests on) and when; neither is ever changed afterwards.

Every function takes the business id and runs inside the caller's transaction; the routes have
already checked that the call is the business's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Exists, ScalarSelect, exists, insert, select
from sqlalchemy.exc import IntegrityError

from consent_ledger import stored_instant
from dashboard.tables import call_notes, handled_calls
from sms_sender import FOLLOW_UP_KINDS, cancel_pending

logger = logging.getLogger(__name__)

MAX_NOTE_LENGTH = 2000


@dataclass(frozen=True)
class Handling:
    """When and by whom a call was marked handled."""

    at: datetime
    by: str


@dataclass(frozen=True)
class CallNote:
    body: str
    at: datetime
    by: str


@dataclass(frozen=True)
class MarkedHandled:
    """The call's mark (the first one stands) and how many pending follow-ups it cancelled."""

    handling: Handling
    cancelled: int


def mark_handled(
    conn: Connection, business_id: str, call_sid: str, caller: str, by: str, now: datetime
) -> MarkedHandled:
    """Mark the call handled and cancel the follow-ups still pending to ``caller``."""
    cancelled = cancel_pending(
        conn, business_id, caller, "the owner marked the call handled", kinds=FOLLOW_UP_KINDS
    )
    existing = handling(conn, business_id, call_sid)
    if existing is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(handled_calls).values(
                        call_sid=call_sid, business_id=business_id, handled_at=now, handled_by=by
                    )
                )
            existing = Handling(now, by)
        except IntegrityError:  # marked at the same moment elsewhere: that mark stands
            existing = handling(conn, business_id, call_sid)
    if existing is None:
        raise RuntimeError("a handled mark vanished")
    logger.info(
        "call marked handled; %d follow-ups cancelled",
        cancelled,
        extra={"business_id": business_id, "call_sid": call_sid},
    )
    return MarkedHandled(existing, cancelled)


def handling(conn: Connection, business_id: str, call_sid: str) -> Handling | None:
    """The call's handled mark, or None."""
    row = conn.execute(
        select(handled_calls.c.handled_at, handled_calls.c.handled_by).where(
            handled_calls.c.business_id == business_id, handled_calls.c.call_sid == call_sid
        )
    ).one_or_none()
    return None if row is None else Handling(stored_instant(row.handled_at), row.handled_by)


def add_note(
    conn: Connection, business_id: str, call_sid: str, body: str, by: str, now: datetime
) -> CallNote:
    """Keep the owner's note on the call; ValueError when it is empty or too long."""
    text = body.strip()
    if not text or len(text) > MAX_NOTE_LENGTH:
        raise ValueError(f"A note is 1 to {MAX_NOTE_LENGTH:,} characters.")
    conn.execute(
        insert(call_notes).values(
            business_id=business_id, call_sid=call_sid, body=text, written_at=now, written_by=by
        )
    )
    return CallNote(text, now, by)


def notes_on(conn: Connection, business_id: str, call_sid: str) -> list[CallNote]:
    """The notes on the call, oldest first."""
    rows = conn.execute(
        select(call_notes.c.body, call_notes.c.written_at, call_notes.c.written_by)
        .where(call_notes.c.business_id == business_id, call_notes.c.call_sid == call_sid)
        .order_by(call_notes.c.id)
    )
    return [CallNote(row.body, stored_instant(row.written_at), row.written_by) for row in rows]


def handled_at_of(call_sid: ColumnElement[str]) -> ScalarSelect[datetime]:
    """When the call in ``call_sid`` was marked handled (NULL: not), as a correlated subquery."""
    return (
        select(handled_calls.c.handled_at)
        .where(handled_calls.c.call_sid == call_sid)
        .scalar_subquery()
    )


def is_handled(call_sid: ColumnElement[str]) -> Exists:
    """Whether the call in ``call_sid`` was marked handled, as a correlated EXISTS."""
    return exists().where(handled_calls.c.call_sid == call_sid)
