"""The owner dashboard's view of the receptionist's records: :class:`dashboard.CallLog` over the
business and call tables, read-only and always scoped to one business."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, exists, func, or_, select

from consent_ledger import ConsentStatus, status_of, stored_instant
from dashboard import (
    BusinessProfile,
    CallDetails,
    CallFilter,
    CallListing,
    LiveCall,
    Texting,
    TranscriptLine,
    UnansweredCall,
    handled_at_of,
    is_handled,
)
from voice_agent.records.businesses import get_business
from voice_agent.records.call_progress import unanswered_progress
from voice_agent.records.calls import CallRecord, get_call
from voice_agent.records.sms_policies import sms_policy
from voice_agent.records.tables import (
    business_numbers,
    businesses,
    call_turns,
    calls,
    stream_credential_uses,
)


class ReceptionistCallLog:
    """Businesses and calls as the owner pages read them."""

    def business(self, conn: Connection, business_id: str) -> BusinessProfile | None:
        row = conn.execute(
            select(
                businesses.c.id,
                businesses.c.name,
                businesses.c.time_zone,
                businesses.c.owner_phone,
                businesses.c.owner_email,
                select(func.min(business_numbers.c.number))
                .where(business_numbers.c.business_id == businesses.c.id)
                .scalar_subquery()
                .label("texting_number"),
            ).where(businesses.c.id == business_id)
        ).one_or_none()
        if row is None:
            return None
        return BusinessProfile(
            row.id, row.name, row.time_zone, row.owner_phone, row.texting_number, row.owner_email
        )

    def count_calls(self, conn: Connection, business_id: str, wanted: CallFilter) -> int:
        query = _picked(select(func.count()).select_from(calls), business_id, wanted)
        return int(conn.execute(query).scalar_one())

    def calls(
        self, conn: Connection, business_id: str, wanted: CallFilter, offset: int, limit: int | None
    ) -> list[CallListing]:
        # The page's calls first, on narrow rows (the sort needs no more), then what they show:
        # the consent standing and the handled mark are read for the page's calls only.
        page = (
            _picked(select(calls.c.call_sid, calls.c.started_at), business_id, wanted)
            .order_by(calls.c.started_at.desc(), calls.c.call_sid.desc())
            .offset(offset)
            .limit(limit)
            .subquery("page")
        )
        query = (
            select(
                calls.c.call_sid,
                calls.c.started_at,
                calls.c.caller_number,
                calls.c.caller_name,
                calls.c.need,
                calls.c.urgency,
                calls.c.consent_outcome,
                status_of(calls.c.business_id, calls.c.caller_number).label("consent_status"),
                handled_at_of(calls.c.call_sid).label("handled_at"),
            )
            .join(page, page.c.call_sid == calls.c.call_sid)
            .order_by(page.c.started_at.desc(), page.c.call_sid.desc())
        )
        return [_listing(row._asdict()) for row in conn.execute(query)]

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

    def live_calls(self, conn: Connection, business_id: str, since: datetime) -> list[LiveCall]:
        uses = stream_credential_uses
        stored = exists().where(calls.c.call_sid == uses.c.call_sid)
        query = (
            select(uses.c.call_sid, uses.c.used_at)
            .where(uses.c.business_id == business_id, uses.c.used_at >= since, ~stored)
            .order_by(uses.c.used_at, uses.c.call_sid)
        )
        return [LiveCall(sid, stored_instant(at)) for sid, at in conn.execute(query)]

    def texting(self, conn: Connection, business_id: str) -> Texting | None:
        business = get_business(conn, business_id)
        if business is None or not business.twilio_numbers:
            return None
        return Texting(sms_policy(business), business.twilio_numbers[0])


def _picked(query: Select[Any], business_id: str, wanted: CallFilter) -> Select[Any]:
    """``query`` over ``calls`` narrowed to the business's calls that ``wanted`` picks."""
    conditions: list[ColumnElement[bool]] = [calls.c.business_id == business_id]
    if wanted.words:
        conditions.append(_mentions(wanted.words))
    if wanted.since is not None:
        conditions.append(calls.c.started_at >= wanted.since)
    if wanted.until is not None:
        conditions.append(calls.c.started_at < wanted.until)
    if wanted.urgency is not None:
        conditions.append(calls.c.urgency == wanted.urgency)
    if wanted.consent is not None:
        status = status_of(calls.c.business_id, calls.c.caller_number)
        none = wanted.consent == ConsentStatus.NONE.value
        conditions.append(status.is_(None) if none else status == wanted.consent)
    if wanted.handled is not None:
        handled = is_handled(calls.c.call_sid)
        conditions.append(handled if wanted.handled else ~handled)
    return query.where(*conditions)


def _mentions(words: str) -> ColumnElement[bool]:
    """The call's caller, number, need, address or transcript holds ``words``."""
    digits = "".join(character for character in words if character.isdigit())
    said = exists().where(
        call_turns.c.call_sid == calls.c.call_sid,
        call_turns.c.text.icontains(words, autoescape=True),
    )
    found = [
        calls.c.caller_name.icontains(words, autoescape=True),
        calls.c.need.icontains(words, autoescape=True),
        calls.c.address.icontains(words, autoescape=True),
        said,
    ]
    if len(digits) >= 3 and len(digits) * 2 >= len(words.replace(" ", "")):
        found += [calls.c.caller_number.contains(digits), calls.c.callback_number.contains(digits)]
    return or_(*found)


def _listing(fields: dict[str, Any]) -> CallListing:
    handled_at = fields["handled_at"]
    return CallListing(
        **{
            **fields,
            "started_at": stored_instant(fields["started_at"]),
            "handled_at": None if handled_at is None else stored_instant(handled_at),
        }
    )


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
        notice_confirmed_at=record.notice_confirmed_at,
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
