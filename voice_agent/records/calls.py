"""Stored calls: the message taken, the transcript of both sides, and the consent outcome."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from media_stream import Word
from voice_agent.records.tables import call_turns, calls


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


def save_call(conn: Connection, record: CallRecord) -> None:
    """Store (or replace) a call and its transcript."""
    conn.execute(delete(call_turns).where(call_turns.c.call_sid == record.call_sid))
    conn.execute(delete(calls).where(calls.c.call_sid == record.call_sid))
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
    for name in ("started_at", "ended_at", "transcript_purged_at"):
        if values[name] is not None and values[name].tzinfo is None:
            values[name] = values[name].replace(tzinfo=UTC)  # SQLite drops the zone
    return CallRecord(**values, turns=turns)
