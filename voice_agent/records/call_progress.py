"""What Twilio reports about each call — how the owner's leg ended, and the call's final status
and duration — kept for every call, including those that never reached the assistant (the
caller hung up while it rang, the owner took it), and each call's outcome read from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, RowMapping, Select, select
from sqlalchemy.exc import IntegrityError

from consent_ledger import stored_instant
from voice_agent.records.tables import call_progress, calls

FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
"""Twilio's CallStatus values for a call that is over."""


class OwnerLeg(StrEnum):
    """How ringing the owner first ended."""

    TOOK_IT = "took-it"  # answered and pressed 1: the legs were bridged
    NOT_TAKEN = "not-taken"  # answered (the owner, or a voicemail) without pressing 1
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELED = "canceled"  # the caller hung up while the owner's phone rang


@dataclass(frozen=True)
class ProgressReport:
    """One report from Twilio about a call: each field it knows (None: not said here)."""

    call_sid: str
    reported_at: datetime
    business_id: str | None = None
    caller_number: str | None = None
    owner_leg: OwnerLeg | None = None
    status: str | None = None
    duration_seconds: int | None = None


@dataclass(frozen=True)
class CallProgress:
    """Everything reported about a call so far, and whether the assistant answered it."""

    call_sid: str
    business_id: str | None
    caller_number: str | None
    owner_leg: OwnerLeg | None
    status: str | None
    duration_seconds: int | None
    first_reported_at: datetime
    ended_at: datetime | None
    reached_assistant: bool

    @property
    def outcome(self) -> str:
        if self.owner_leg is OwnerLeg.TOOK_IT:
            return "the owner took the call"
        if self.reached_assistant:
            return "the assistant answered"
        if self.status is None or self.status not in FINAL_STATUSES:
            return "in progress"
        if self.status in ("busy", "failed", "no-answer"):
            return f"not connected ({self.status})"
        return "the caller hung up before anyone answered"


def record_progress(conn: Connection, report: ProgressReport) -> None:
    """Merge ``report`` into the call's row: a field it says replaces the stored one."""
    said: dict[str, object] = {
        "business_id": report.business_id,
        "caller_number": report.caller_number,
        "owner_leg": None if report.owner_leg is None else report.owner_leg.value,
        "status": report.status,
        "duration_seconds": report.duration_seconds,
    }
    said = {name: value for name, value in said.items() if value is not None}
    if report.status in FINAL_STATUSES:
        said["ended_at"] = report.reported_at
    try:
        with conn.begin_nested():  # the first report of the call, unless another came first
            conn.execute(
                call_progress.insert().values(
                    call_sid=report.call_sid, first_reported_at=report.reported_at, **said
                )
            )
    except IntegrityError:
        if said:
            conn.execute(
                call_progress.update()
                .where(call_progress.c.call_sid == report.call_sid)
                .values(said)
            )


def list_progress(
    conn: Connection, business_id: str | None = None, limit: int = 50
) -> list[CallProgress]:
    """Every call Twilio reported, newest first, with whether the assistant answered it."""
    query = _progress_query().order_by(call_progress.c.first_reported_at.desc()).limit(limit)
    if business_id is not None:
        query = query.where(call_progress.c.business_id == business_id)
    return [_progress(row) for row in conn.execute(query).mappings()]


def unanswered_progress(conn: Connection, business_id: str, limit: int) -> list[CallProgress]:
    """The business's latest calls the assistant never answered, newest first."""
    query = (
        _progress_query()
        .where(call_progress.c.business_id == business_id, calls.c.call_sid.is_(None))
        .order_by(call_progress.c.first_reported_at.desc())
        .limit(limit)
    )
    return [_progress(row) for row in conn.execute(query).mappings()]


def get_progress(conn: Connection, call_sid: str) -> CallProgress | None:
    """What Twilio reported about the call, if anything."""
    query = _progress_query().where(call_progress.c.call_sid == call_sid)
    row = conn.execute(query).mappings().first()
    return None if row is None else _progress(row)


def _progress_query() -> Select[Any]:
    return select(
        call_progress, calls.c.call_sid.is_not(None).label("reached_assistant")
    ).select_from(call_progress.outerjoin(calls, calls.c.call_sid == call_progress.c.call_sid))


def _progress(row: RowMapping) -> CallProgress:
    values = dict(row)
    values["owner_leg"] = None if row["owner_leg"] is None else OwnerLeg(row["owner_leg"])
    values["first_reported_at"] = stored_instant(row["first_reported_at"])
    if row["ended_at"] is not None:
        values["ended_at"] = stored_instant(row["ended_at"])
    values["reached_assistant"] = bool(row["reached_assistant"])
    return CallProgress(**values)
