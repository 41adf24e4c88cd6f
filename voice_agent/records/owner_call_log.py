"""The owner dashboard's view of the receptionist's records: :class:`dashboard.CallLog` over the
business and call tables, read-only and always scoped to one business."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from consent_ledger import stored_instant
from dashboard import BusinessProfile, CallDetails, CallListing, TranscriptLine, UnansweredCall
from voice_agent.records.call_progress import unanswered_progress
from voice_agent.records.calls import CallRecord, get_call
from voice_agent.records.tables import businesses, calls


class ReceptionistCallLog:
    """Businesses and calls as the owner pages read them."""

    def business(self, conn: Connection, business_id: str) -> BusinessProfile | None:
        row = conn.execute(
            select(businesses.c.id, businesses.c.name, businesses.c.time_zone).where(
                businesses.c.id == business_id
            )
        ).one_or_none()
        return None if row is None else BusinessProfile(row.id, row.name, row.time_zone)

    def count_calls(self, conn: Connection, business_id: str) -> int:
        query = select(func.count()).select_from(calls).where(calls.c.business_id == business_id)
        return int(conn.execute(query).scalar_one())

    def calls(
        self, conn: Connection, business_id: str, offset: int, limit: int
    ) -> list[CallListing]:
        query = (
            select(
                calls.c.call_sid,
                calls.c.started_at,
                calls.c.caller_number,
                calls.c.caller_name,
                calls.c.need,
                calls.c.urgency,
                calls.c.consent_outcome,
            )
            .where(calls.c.business_id == business_id)
            .order_by(calls.c.started_at.desc(), calls.c.call_sid.desc())
            .offset(offset)
            .limit(limit)
        )
        return [
            CallListing(**{**row._asdict(), "started_at": stored_instant(row.started_at)})
            for row in conn.execute(query)
        ]

    def unanswered_calls(
        self, conn: Connection, business_id: str, limit: int
    ) -> list[UnansweredCall]:
        return [
            UnansweredCall(
                p.call_sid, p.first_reported_at, p.caller_number, p.outcome, p.duration_seconds
            )
            for p in unanswered_progress(conn, business_id, limit)
        ]

    def call(self, conn: Connection, business_id: str, call_sid: str) -> CallDetails | None:
        record = get_call(conn, call_sid)
        if record is None or record.business_id != business_id:
            return None
        return _details(record)


def _details(record: CallRecord) -> CallDetails:
    return CallDetails(
        call_sid=record.call_sid,
        caller_number=record.caller_number,
        started_at=record.started_at,
        ended_at=record.ended_at,
        end_reason=record.end_reason,
        caller_name=record.caller_name,
        need=record.need,
        callback_number=record.callback_number,
        urgency=record.urgency,
        address=record.address,
        preferred_time=record.preferred_time,
        notes=record.notes,
        consent_outcome=record.consent_outcome,
        consent_event_hash=record.consent_event_hash,
        transcript_purged_at=record.transcript_purged_at,
        transcript=tuple(
            TranscriptLine(
                speaker=turn.speaker,
                kind=turn.kind,
                text=turn.text,
                start=turn.start,
                end=turn.end,
                confidence=turn.confidence,
                interrupted=turn.interrupted,
            )
            for turn in record.turns
        ),
    )
