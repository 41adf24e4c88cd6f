"""Transfers of emergency callers to a business's on-call phones: asked for by the call while
its media stream is still open, read by the webhook Twilio calls when the stream has closed
(whichever process answers it), and how the attempt ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from consent_ledger import stored_instant
from voice_agent.records.call_progress import OwnerLeg
from voice_agent.records.tables import call_transfers


@dataclass(frozen=True)
class CallTransfer:
    """One call's transfer: asked for at ``requested_at``; ``outcome`` how ringing the on-call
    phones ended (None while it has not)."""

    call_sid: str
    business_id: str
    requested_at: datetime
    outcome: OwnerLeg | None
    ended_at: datetime | None


def request_transfer(conn: Connection, call_sid: str, business_id: str, at: datetime) -> None:
    """Ask for the call's transfer (once: asking again changes nothing)."""
    try:
        with conn.begin_nested():
            conn.execute(
                call_transfers.insert().values(
                    call_sid=call_sid, business_id=business_id, requested_at=at
                )
            )
    except IntegrityError:
        return


def end_transfer(conn: Connection, call_sid: str, outcome: OwnerLeg, at: datetime) -> None:
    """Record how the transfer ended (the first report stands)."""
    conn.execute(
        call_transfers.update()
        .where(call_transfers.c.call_sid == call_sid, call_transfers.c.outcome.is_(None))
        .values(outcome=outcome.value, ended_at=at)
    )


def transfer_of(conn: Connection, call_sid: str) -> CallTransfer | None:
    row = (
        conn.execute(select(call_transfers).where(call_transfers.c.call_sid == call_sid))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return CallTransfer(
        call_sid=row["call_sid"],
        business_id=row["business_id"],
        requested_at=stored_instant(row["requested_at"]),
        outcome=None if row["outcome"] is None else OwnerLeg(row["outcome"]),
        ended_at=None if row["ended_at"] is None else stored_instant(row["ended_at"]),
    )
