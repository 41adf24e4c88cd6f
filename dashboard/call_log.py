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

from sms_sender import SmsPolicy


@dataclass(frozen=True)
class BusinessProfile:
    """The business an owner signs in to: its name, and the zone its times are shown in; the
    owner phone its call summaries go to, the number its texts come from, and the owner's
    e-mail for summaries, when it has them."""

    id: str
    name: str
    time_zone: str
    owner_phone: str | None = None
    texting_number: str | None = None
    owner_email: str | None = None


@dataclass(frozen=True)
class CallListing:
    """One line of the calls page; ``consent_status`` is the caller's number's standing now (a
    ``consent_ledger.ConsentStatus`` value, None when nothing is on record), ``handled_at`` when
    the owner marked the call handled."""

    call_sid: str
    started_at: datetime
    caller_number: str
    caller_name: str | None
    need: str | None
    urgency: str | None
    consent_outcome: str | None
    consent_status: str | None = None
    handled_at: datetime | None = None


@dataclass(frozen=True)
class CallFilter:
    """Which calls the owner asked to see; every condition given must hold.

    ``words`` is found in the caller's name, number, need, address or anything said on the call;
    ``since``/``until`` bound when the call started (``until`` excluded); ``urgency`` is an
    urgency value; ``consent`` the standing of the caller's number now (a ``ConsentStatus``
    value, ``none`` for nothing on record); ``handled`` whether the owner marked it handled.
    """

    words: str = ""
    since: datetime | None = None
    until: datetime | None = None
    urgency: str | None = None
    consent: str | None = None
    handled: bool | None = None


@dataclass(frozen=True)
class LiveCall:
    """A call the assistant is on now: its stream was admitted and the call is not stored yet."""

    call_sid: str
    started_at: datetime


@dataclass(frozen=True)
class Texting:
    """How the business texts: its texting policy and the number its texts come from."""

    policy: SmsPolicy
    from_number: str


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
    notice_confirmed_at: datetime | None = None  # the caller heard "automated assistant" then


class CallLog(Protocol):
    """Read-only access to one business's calls; every method runs on the caller's ``conn``."""

    def business(self, conn: Connection, business_id: str) -> BusinessProfile | None:
        """The business ``business_id``, or None when there is none."""
        ...

    def count_calls(self, conn: Connection, business_id: str, wanted: CallFilter) -> int:
        """How many of the business's calls ``wanted`` picks."""
        ...

    def calls(
        self, conn: Connection, business_id: str, wanted: CallFilter, offset: int, limit: int | None
    ) -> list[CallListing]:
        """The business's calls that ``wanted`` picks, newest first: ``limit`` of them (all when
        None) after skipping ``offset``."""
        ...

    def live_calls(self, conn: Connection, business_id: str, since: datetime) -> list[LiveCall]:
        """The business's calls in progress that started at ``since`` or later, oldest first."""
        ...

    def texting(self, conn: Connection, business_id: str) -> Texting | None:
        """How the business texts; None when it has no number to text from."""
        ...

    def call(self, conn: Connection, business_id: str, call_sid: str) -> CallDetails | None:
        """The call ``call_sid`` with its transcript when it is the business's; None otherwise."""
        ...

    def unanswered_calls(
        self, conn: Connection, business_id: str, limit: int
    ) -> list[UnansweredCall]:
        """The business's latest ``limit`` calls the assistant never answered, newest first."""
        ...
