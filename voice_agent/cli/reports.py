"""What the CLI shows people: calls with both sides of the transcript, consent records, texts.

It works on the records it is handed and imports none of their modules (``calls list`` loads no
ledger or SMS code). Times are shown on the business's clock, with the zone's abbreviation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from consent_ledger import RecordedEvent
    from sms_sender import OutboxMessage
    from voice_agent.records.call_progress import CallProgress
    from voice_agent.records.call_transfers import CallTransfer
    from voice_agent.records.calls import CallRecord


def call_as_dict(
    call: CallRecord, event: RecordedEvent | None, texts: list[OutboxMessage]
) -> dict[str, Any]:
    """A call, its consent event and its texts, as JSON-ready data."""
    data = asdict(call)
    data["consent_event"] = None if event is None else event_as_dict(event)
    data["texts"] = [outbox_as_dict(message) for message in texts]
    return _json_object(data)


def event_as_dict(event: RecordedEvent) -> dict[str, Any]:
    return _json_object(asdict(event))


def outbox_as_dict(message: OutboxMessage) -> dict[str, Any]:
    return _json_object(asdict(message))


def _json_object(data: dict[str, Any]) -> dict[str, Any]:
    return {key: _jsonable(item) for key, item in data.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value") and isinstance(value.value, str):  # str Enums
        return value.value
    return value


def local_time(instant: datetime, zone: str) -> str:
    """``instant`` on the clock of ``zone``, with the zone's abbreviation."""
    return instant.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def render_call(
    call: CallRecord, event: RecordedEvent | None, texts: list[OutboxMessage], zone: str
) -> str:
    """A call as a person reads it: the message, the transcript, the consent record, the texts;
    times on the clock of ``zone`` (the business's)."""
    lines = [
        f"Call {call.call_sid} · {call.business_id} · from {call.caller_number}",
        f"  {local_time(call.started_at, zone)} · ended: {call.end_reason or 'in progress'}",
        "  Message: "
        + "; ".join(
            f"{label} {value or '—'}"
            for label, value in (
                ("name", call.caller_name),
                ("needs", call.need),
                ("call back", call.callback_number),
                ("urgency", call.urgency),
                ("address", call.address),
                ("preferred time", call.preferred_time),
            )
        ),
    ]
    lines.extend(f"  Note: {note}" for note in call.notes)
    if call.turns:
        lines.append("  Transcript:")
        for turn in call.turns:
            who = "assistant" if turn.speaker == "assistant" else "caller   "
            text = f"[key {turn.text}]" if turn.kind == "keypad" else turn.text
            text += " [interrupted by the caller]" if turn.interrupted else ""
            confidence = f"  (confidence {turn.confidence:.2f})" if turn.confidence else ""
            lines.append(f"    {turn.start:6.1f}s  {who}  {text}{confidence}")
    lines.extend(render_consent(call, event))
    lines.extend(render_texts(texts))
    return "\n".join(lines)


def render_consent(call: CallRecord, event: RecordedEvent | None) -> list[str]:
    if event is None:
        return [f"  Consent: {call.consent_outcome or 'none recorded'}"]
    body = event.body
    evidence = body.get("evidence", body)
    script = evidence.get("script") or {}
    lines = [
        f"  Consent: {event.kind.value} · method {evidence.get('method')} · "
        f"ledger #{event.seq} hash {event.hash[:16]}…",
        f"    script {script.get('version')} sha256 {str(script.get('sha256'))[:16]}… "
        f"played by {script.get('playback_confirmed_at') or '—'}",
    ]
    for answer in evidence.get("answers", []):
        said = (
            f"pressed {answer['keypad_digit']}"
            if answer.get("keypad_digit")
            else f"said {answer.get('transcript')!r}"
        )
        lines.append(
            f"    answer: {said} at {answer.get('started_at')} "
            f"({answer.get('engine')}, confidence {answer.get('confidence', 0):.2f})"
        )
    if evidence.get("note"):
        lines.append(f"    note: {evidence['note']}")
    return lines


def render_texts(texts: list[OutboxMessage]) -> list[str]:
    if not texts:
        return ["  Texts: none"]
    return ["  Texts:"] + [
        f"    [{message.status.value}] to {message.to_number}: {message.body}"
        + (f" ({message.reason})" if message.reason else "")
        for message in texts
    ]


def render_outbox(messages: list[OutboxMessage], zones: Mapping[str, str]) -> str:
    """One line per text, its due time on its business's clock (``zones``: business id → zone)."""
    if not messages:
        return "The outbox is empty."
    return "\n".join(
        f"#{m.id} [{m.status.value}] {m.business_id} → {m.to_number}"
        f" due {local_time(m.due_at, zones.get(m.business_id, 'UTC'))}"
        f" ({m.segments} segment{'s' if m.segments != 1 else ''}): {m.body}"
        + (f" ({m.reason})" if m.reason else "")
        for m in messages
    )


def render_call_list(records: list[CallRecord], zones: Mapping[str, str]) -> str:
    """One line per call, its time on its business's clock (``zones``: business id → zone)."""
    if not records:
        return "No calls yet."
    return "\n".join(
        f"{local_time(r.started_at, zones.get(r.business_id, 'UTC'))}"
        f"  {r.call_sid}  {r.business_id:<22} {r.caller_number}"
        f"  {r.caller_name or '—':<18} consent: {r.consent_outcome or '—'}"
        for r in records
    )


def progress_as_dict(call: CallProgress) -> dict[str, Any]:
    """A call's progress as Twilio reported it, and its outcome, as JSON-ready data."""
    return _json_object({**asdict(call), "outcome": call.outcome})


def render_progress(progress: list[CallProgress]) -> str:
    if not progress:
        return "No calls reported by Twilio yet."
    return "\n".join(
        f"{p.first_reported_at:%Y-%m-%d %H:%M:%S}  {p.call_sid}  {p.business_id or '—':<22} "
        f"{p.caller_number or 'withheld':<12}  {p.outcome}{_reported(p)}"
        for p in progress
    )


def render_progress_of(call: CallProgress, *, standalone: bool) -> str:
    """What Twilio reported of one call: a line under the call's record, or on its own (a call
    the assistant never answered)."""
    if not standalone:
        return f"  Outcome: {call.outcome}{_reported(call)}"
    return (
        f"Call {call.call_sid} · {call.business_id or '—'} · from "
        f"{call.caller_number or 'a withheld number'}\n"
        f"  {call.first_reported_at:%Y-%m-%d %H:%M:%S} UTC · {call.outcome}{_reported(call)}"
    )


def _reported(call: CallProgress) -> str:
    return (
        (f" · owner's phone: {call.owner_leg.value}" if call.owner_leg else "")
        + (f" · Twilio: {call.status}" if call.status else "")
        + (f", {call.duration_seconds} s" if call.duration_seconds is not None else "")
    )


def transfer_as_dict(transfer: CallTransfer) -> dict[str, Any]:
    return _json_object(asdict(transfer))


def render_transfer(transfer: CallTransfer) -> str:
    """An emergency caller's transfer to the on-call phones: when it was asked for, how it
    ended."""
    ended = (
        f"{transfer.outcome.value} at {transfer.ended_at:%H:%M:%S} UTC"
        if transfer.outcome is not None and transfer.ended_at is not None
        else "not ended"
    )
    return (
        f"  Transfer to the on-call phones: asked at {transfer.requested_at:%Y-%m-%d %H:%M:%S} "
        f"UTC · {ended}"
    )
