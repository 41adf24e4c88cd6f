"""What the owner pages read about businesses and calls, and the port they read it through.

Calls and their transcripts belong to the receptionist (``voice_agent``), which sits above the
dashboard; the dashboard may not import it. So the dashboard states here what it needs, as a
small read-only :class:`CallLog` protocol over plain dataclasses, and the receptionist supplies
the implementation when it builds the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection


@dataclass(frozen=True)
class BusinessProfile:
    """The business an owner signs in to: its name, and the zone its times are shown in."""

    id: str
    name: str
    time_zone: str


@dataclass(frozen=True)
class CallListing:
    """One line of the calls page."""

    call_sid: str
    started_at: datetime
    caller_number: str
    caller_name: str | None
    need: str | None
    urgency: str | None
    consent_outcome: str | None


@dataclass(frozen=True)
class UnansweredCall:
    """A call the assistant never answered (the owner took it, or the caller hung up while it
    rang), as Twilio reported it: its outcome in words, and its length."""

    call_sid: str
    reported_at: datetime
    caller_number: str | None
    outcome: str
    duration_seconds: int | None


@dataclass(frozen=True)
class TranscriptLine:
    """One thing said (or keyed) on the call; ``start`` and ``end`` count seconds from the
    start of the call's audio."""

    speaker: str
    kind: str
    text: str
    start: float
    end: float | None
    confidence: float | None
    interrupted: bool


@dataclass(frozen=True)
class CallDetails:
    """One call as its page shows it: the message taken, the transcript, what happened."""

    call_sid: str
    caller_number: str
    started_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    caller_name: str | None
    need: str | None
    callback_number: str | None
    urgency: str | None
    address: str | None
    preferred_time: str | None  # in the caller's words; nobody promised it
    notes: tuple[str, ...]
    consent_outcome: str | None
    consent_event_hash: str | None
    transcript_purged_at: datetime | None
    transcript: tuple[TranscriptLine, ...]


class CallLog(Protocol):
    """Read-only access to one business's calls; every method runs on the caller's ``conn``."""

    def business(self, conn: Connection, business_id: str) -> BusinessProfile | None:
        """The business ``business_id``, or None when there is none."""
        ...

    def count_calls(self, conn: Connection, business_id: str) -> int:
        """How many calls the business has."""
        ...

    def calls(
        self, conn: Connection, business_id: str, offset: int, limit: int
    ) -> list[CallListing]:
        """The business's calls, newest first: ``limit`` of them after skipping ``offset``."""
        ...

    def call(self, conn: Connection, business_id: str, call_sid: str) -> CallDetails | None:
        """The call ``call_sid`` with its transcript when it is the business's; None otherwise."""
        ...

    def unanswered_calls(
        self, conn: Connection, business_id: str, limit: int
    ) -> list[UnansweredCall]:
        """The business's latest ``limit`` calls the assistant never answered, newest first."""
        ...
