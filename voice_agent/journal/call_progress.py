"""Journal entries for what Twilio reports about a call (the owner's leg, the call's status and
duration): the webhook journals the report and answers; the applier merges it into the call's
progress row later, retrying while the database is down."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from voice_agent.journal.applier import PermanentFailure
from voice_agent.journal.store import JournalEntry
from voice_agent.records.call_progress import OwnerLeg, ProgressReport, record_progress

CALL_PROGRESS = "call_progress"


def progress_entry(report: ProgressReport) -> dict[str, Any]:
    """The journal payload of a report."""
    return {
        "call_sid": report.call_sid,
        "reported_at": report.reported_at.astimezone(UTC).isoformat(),
        "business_id": report.business_id,
        "caller_number": report.caller_number,
        "owner_leg": None if report.owner_leg is None else report.owner_leg.value,
        "status": report.status,
        "duration_seconds": report.duration_seconds,
    }


def apply_progress(engine: Engine, entry: JournalEntry) -> bool:
    """Merge a journaled report into its call's progress (it queues no text: False)."""
    payload = entry.payload
    try:
        leg = payload["owner_leg"]
        report = ProgressReport(
            call_sid=str(payload["call_sid"]),
            reported_at=datetime.fromisoformat(payload["reported_at"]).astimezone(UTC),
            business_id=payload["business_id"],
            caller_number=payload["caller_number"],
            owner_leg=None if leg is None else OwnerLeg(leg),
            status=payload["status"],
            duration_seconds=payload["duration_seconds"],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise PermanentFailure(f"not a call progress report: {error}") from None
    with engine.begin() as conn:
        record_progress(conn, report)
    return False
