"""A finished call as a journal entry: everything ``record_call`` needs, as JSON, and back.

When a call ends, the session journals it (durably, before anything else) and the applier stores
it with ``record_call`` once the database takes it, possibly after a restart. The entry keeps the
business's settings as the call used them, the call's identity (the monotonic reading is kept
with the start instant it pairs with, so the evidence's instants come out the same in any
process), the call's outcome, how and when it ended. The answer audio travels as base64.

A call whose caller said "don't text me" is journaled as an opt-out of the caller's number.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine

from consent_ledger import AudioStore
from voice_agent.call.conversation import CallOutcome
from voice_agent.call.owner_notices import OwnerNotices
from voice_agent.call.wrap_up import CallIdentity, CallWrapUp, record_call
from voice_agent.journal.applier import PermanentFailure
from voice_agent.journal.store import JournalEntry
from voice_agent.records.businesses import Business
from voice_agent.records.calls import CallSidClash

CALL_ENDED = "call"
FORMAT = 1


@dataclass(frozen=True)
class FinishedCall:
    """What ``record_call`` takes for one call (but the database and the audio store)."""

    business: Business
    identity: CallIdentity
    outcome: CallOutcome
    end_reason: str
    ended_at: datetime

    @property
    def opt_out(self) -> str | None:
        """The caller's number when they asked on the call not to be texted."""
        return self.identity.caller_number if self.outcome.consent.refused_during_call else None


@cache
def _outcomes() -> TypeAdapter[CallOutcome]:
    return TypeAdapter(CallOutcome)


@cache
def _identities() -> TypeAdapter[CallIdentity]:
    return TypeAdapter(CallIdentity)


def call_entry(call: FinishedCall) -> dict[str, Any]:
    """The journal payload of ``call`` (JSON-ready)."""
    consent = call.outcome.consent
    without_audio = dataclasses.replace(
        call.outcome, consent=dataclasses.replace(consent, answer_audio=b"")
    )
    return {
        "format": FORMAT,
        "business": call.business.model_dump(mode="json"),
        "identity": _identities().dump_python(call.identity, mode="json"),
        "outcome": _outcomes().dump_python(without_audio, mode="json"),
        "answer_audio": base64.b64encode(consent.answer_audio).decode("ascii"),
        "end_reason": call.end_reason,
        "ended_at": call.ended_at.astimezone(UTC).isoformat(),
    }


def call_from_entry(payload: dict[str, Any]) -> FinishedCall:
    """The call a journal payload holds (a ValueError when it holds none)."""
    if payload.get("format") != FORMAT:
        raise ValueError(f"unknown call entry format {payload.get('format')!r}")
    try:
        outcome = _outcomes().validate_python(payload["outcome"])
        identity = _identities().validate_python(payload["identity"])
        audio = base64.b64decode(payload["answer_audio"], validate=True)
        business = Business.model_validate(payload["business"])
        ended_at = datetime.fromisoformat(payload["ended_at"])
        end_reason = str(payload["end_reason"])
    except (ValidationError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not a call entry: {error}") from None
    if ended_at.tzinfo is None:
        raise ValueError("not a call entry: ended_at has no zone")
    identity = dataclasses.replace(identity, started_at=identity.started_at.astimezone(UTC))
    outcome = dataclasses.replace(
        outcome, consent=dataclasses.replace(outcome.consent, answer_audio=audio)
    )
    return FinishedCall(business, identity, outcome, end_reason, ended_at.astimezone(UTC))


def store_call(
    engine: Engine,
    audio_store: AudioStore,
    call: FinishedCall,
    notices: OwnerNotices | None = None,
) -> CallWrapUp:
    """Store ``call`` with ``record_call`` (a call stored before is left as it is)."""
    return record_call(
        engine,
        audio_store,
        call.business,
        call.identity,
        call.outcome,
        call.end_reason,
        call.ended_at,
        notices,
    )


def apply_call_entry(
    engine: Engine,
    audio_store: AudioStore,
    entry: JournalEntry,
    notices: OwnerNotices | None = None,
) -> bool:
    """The applier's handler for a journaled call; True when texts were queued."""
    try:
        call = call_from_entry(entry.payload)
    except ValueError as error:
        raise PermanentFailure(str(error)) from None
    try:
        return store_call(engine, audio_store, call, notices).texts_queued > 0
    except CallSidClash as clash:
        raise PermanentFailure(str(clash)) from None
