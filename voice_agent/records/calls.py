"""Stored calls: the message taken, the transcript of both sides, and the consent outcome."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from consent_ledger import stored_instant
from media_stream import Word
from voice_agent.records.tables import call_turns, calls

logger = logging.getLogger(__name__)

MAX_CALL_SECONDS = 4 * 3600.0  # Twilio ends a call after four hours at most


@dataclass(frozen=True)
class TurnMetrics:
    """One caller turn's latency, in milliseconds (None where a stage could not be timed)."""

    endpointing_ms: float | None
    transcription_ms: float | None
    agent_ms: float
    synthesis_ms: float | None
    total_ms: float | None


@dataclass(frozen=True)
class Turn:
    """One thing said (or keyed) on the call, on the stream clock."""

    speaker: str  # "assistant" | "caller"
    kind: str  # "speech" | "keypad"
    text: str
    start: float
    end: float | None = None
    confidence: float | None = None
    words: tuple[Word, ...] = ()
    interrupted: bool = False


@dataclass(frozen=True)
class CallRecord:
    """One call as stored: who called whom, what they need, what was said, what they agreed to."""

    call_sid: str
    stream_sid: str | None
    business_id: str
    caller_number: str
    started_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    caller_name: str | None
    need: str | None
    callback_number: str | None
    urgency: str | None
    notes: tuple[str, ...]
    consent_outcome: str | None
    consent_event_hash: str | None
    address: str | None = None
    preferred_time: str | None = None  # in the caller's words
    turn_metrics: tuple[TurnMetrics, ...] = ()
    transcript_purged_at: datetime | None = None
    turns: tuple[Turn, ...] = ()
    notice_confirmed_at: datetime | None = None  # Twilio played the greeting's AI notice


class CallSidClash(Exception):
    """A call with this SID is stored already: the new one is refused, the stored one kept."""

    def __init__(self, call_sid: str, business_id: str, stored_business_id: str) -> None:
        super().__init__(
            f"call {call_sid} of {business_id} is refused: that call SID is stored already "
            f"(for {stored_business_id})"
        )
        self.call_sid = call_sid
        self.business_id = business_id
        self.stored_business_id = stored_business_id


def save_call(conn: Connection, record: CallRecord) -> None:
    """Store a new call and its transcript, with its times kept within the call.

    A call is stored once, under its business and call SID. A SID that is stored already (for
    this business or another) is refused with :class:`CallSidClash` and logged; the stored call
    is never overwritten. Turn and word times (stream seconds, which the stream itself reports)
    are kept within the call's wall-clock span, so a stored call's times stay sane.
    """
    stored = conn.execute(
        select(calls.c.business_id).where(calls.c.call_sid == record.call_sid)
    ).scalar_one_or_none()
    if stored is not None:
        clash = CallSidClash(record.call_sid, record.business_id, stored)
        logger.warning("%s", clash, extra={"business_id": record.business_id})
        raise clash
    record = _within_call(record)
    row = {
        name: getattr(record, name)
        for name in calls.c.keys()  # noqa: SIM118 - Column collection, not a dict
        if name not in ("notes", "turn_metrics")
    }
    conn.execute(
        insert(calls).values(
            **row,
            notes=list(record.notes),
            turn_metrics=[asdict(metrics) for metrics in record.turn_metrics],
        )
    )
    if record.turns:
        conn.execute(
            insert(call_turns),
            [
                _turn_row(record.call_sid, position, turn)
                for position, turn in enumerate(record.turns)
            ],
        )


def _within_call(record: CallRecord) -> CallRecord:
    """``record`` with every turn and word time inside ``[0, the call's length]``.

    The times are on the stream's clock, which only the stream vouches for. When it ran past
    the call's wall-clock length (a stream that lies, or a simulator running faster than real
    time) the times are scaled into it, keeping their order and proportions; anything still
    outside (negative, not a number) is clamped.
    """
    span = MAX_CALL_SECONDS
    if record.ended_at is not None:
        span = min(span, max(0.0, (record.ended_at - record.started_at).total_seconds()))
    moments = [
        moment
        for turn in record.turns
        for moment in (turn.start, turn.end, *(t for w in turn.words for t in (w.start, w.end)))
        if moment is not None and math.isfinite(moment)
    ]
    latest = max(moments, default=0.0)
    scale = span / latest if latest > span else 1.0

    def fit(seconds: float) -> float:
        if math.isnan(seconds):
            return 0.0
        if math.isinf(seconds):
            return span if seconds > 0 else 0.0
        return min(max(seconds * scale, 0.0), span)

    def optional(seconds: float | None) -> float | None:
        return None if seconds is None else fit(seconds)

    turns = tuple(
        replace(
            turn,
            start=fit(turn.start),
            end=optional(turn.end),
            words=tuple(
                replace(word, start=fit(word.start), end=fit(word.end)) for word in turn.words
            ),
        )
        for turn in record.turns
    )
    return record if turns == record.turns else replace(record, turns=turns)


def _turn_row(call_sid: str, position: int, turn: Turn) -> dict[str, Any]:
    return {
        "call_sid": call_sid,
        "position": position,
        "speaker": turn.speaker,
        "kind": turn.kind,
        "text": turn.text,
        "start": turn.start,
        "end": turn.end,
        "confidence": turn.confidence,
        "words": [[w.text, w.start, w.end, w.confidence] for w in turn.words],
        "interrupted": turn.interrupted,
    }


def get_call(conn: Connection, call_sid: str) -> CallRecord | None:
    row = conn.execute(select(calls).where(calls.c.call_sid == call_sid)).mappings().first()
    if row is None:
        return None
    turn_rows = conn.execute(
        select(call_turns).where(call_turns.c.call_sid == call_sid).order_by(call_turns.c.position)
    ).mappings()
    turns = tuple(
        Turn(
            speaker=t["speaker"],
            kind=t["kind"],
            text=t["text"],
            start=t["start"],
            end=t["end"],
            confidence=t["confidence"],
            words=tuple(Word(*w) for w in t["words"]),
            interrupted=t["interrupted"],
        )
        for t in turn_rows
    )
    return _record(row, turns)


def list_calls(
    conn: Connection, business_id: str | None = None, limit: int = 50
) -> list[CallRecord]:
    """The most recent calls first, without their transcripts."""
    query = select(calls).order_by(calls.c.started_at.desc()).limit(limit)
    if business_id is not None:
        query = query.where(calls.c.business_id == business_id)
    return [_record(row, ()) for row in conn.execute(query).mappings()]


def _record(row: Any, turns: tuple[Turn, ...]) -> CallRecord:
    values = dict(row)
    values["notes"] = tuple(values["notes"] or ())
    values["turn_metrics"] = tuple(TurnMetrics(**m) for m in values["turn_metrics"] or ())
    for name in ("started_at", "ended_at", "transcript_purged_at", "notice_confirmed_at"):
        if values[name] is not None:
            values[name] = stored_instant(values[name])  # SQLite drops the zone
    return CallRecord(**values, turns=turns)


def forget_caller(conn: Connection, business_id: str, number: str) -> int:
    """Delete what ``business_id`` stored of ``number``'s calls and callback requests (the
    message and the transcript), as a caller's deletion request asks; how many were deleted.
    Consent events, opt-outs and texts stay: they are the evidence of what the caller agreed to
    and what was sent under it."""
    theirs = (calls.c.business_id == business_id) & (calls.c.caller_number == number)
    conn.execute(
        delete(call_turns).where(call_turns.c.call_sid.in_(select(calls.c.call_sid).where(theirs)))
    )
    return int(conn.execute(delete(calls).where(theirs)).rowcount)
