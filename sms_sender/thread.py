"""A conversation thread: every text between a business and one number, both ways, in order.

It is what the owner reads: the caller's texts (with how each was understood) and ours (with
where each stands).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, select

from sms_sender.tables import outbox, sms_inbound


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True)
class ThreadEntry:
    """One text in a thread; ``state`` is the inbound intent or the outbound status."""

    direction: Direction
    at: datetime
    body: str
    state: str
    reference: str


def conversation_thread(conn: Connection, business_id: str, number: str) -> list[ThreadEntry]:
    """The texts between ``business_id`` and ``number``, oldest first."""
    inbound = conn.execute(
        select(sms_inbound).where(
            sms_inbound.c.business_id == business_id, sms_inbound.c.from_number == number
        )
    )
    outbound = conn.execute(
        select(outbox).where(outbox.c.business_id == business_id, outbox.c.to_number == number)
    )
    entries = [
        ThreadEntry(Direction.INBOUND, row.received_at, row.body, row.intent, row.message_sid)
        for row in inbound
    ]
    entries.extend(
        ThreadEntry(Direction.OUTBOUND, row.sent_at or row.due_at, row.body, row.status, row.kind)
        for row in outbound
    )
    return sorted(entries, key=lambda entry: entry.at)
