"""Everything the owner pages read, for one business at a time, and nothing they write.

Each page is read in one snapshot on a read-only transaction: the owner's session, the
business, its calls (through the :class:`~dashboard.call_log.CallLog` port), its texts and the
call's consent record. Every lookup names the signed-in owner's business, so a call or a text
of another business is simply not found.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from consent_ledger import (
    ConsentEvidence,
    ConsentStatus,
    consent_state,
    event_by_hash,
)
from dashboard.call_handling import CallNote, Handling, handling, notes_on
from dashboard.call_log import (
    BusinessProfile,
    CallDetails,
    CallFilter,
    CallListing,
    CallLog,
    UnansweredCall,
)
from sms_sender import (
    FOLLOW_UP_KINDS,
    Conversation,
    Direction,
    HeldReply,
    OutboxStatus,
    TextRecord,
    conversations,
    count_conversations,
    count_texts_with_number,
    held_replies,
    reply_refusal,
    texts_sent_for_calls,
    texts_with_number,
)

logger = logging.getLogger(__name__)

HELD_REPLIES_SHOWN = 100
"""The most held replies the texts page lists (oldest first): each waits for a decision."""
CALL_PAGE_TEXTS = 200
"""The most texts a call's page lists: the latest, since a caller of many years has many."""
NO_TEXTING = "no_texting_number"
"""Why a reply cannot go when the business has no number to text from."""
_PENDING = (OutboxStatus.SCHEDULED.value, OutboxStatus.CLAIMED.value)


@contextlib.contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection that sees one consistent state of the database, for reading only.

    On PostgreSQL that is a READ ONLY, REPEATABLE READ transaction: the database refuses any
    write. On SQLite a read-only engine (``make_engine(url, read_only=True)``) begins deferred
    transactions, which see one snapshot under WAL without holding the write lock calls need.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with conn.begin():
            yield conn


@dataclass(frozen=True)
class PageWindow:
    """Page ``number`` (from 1) of ``total`` items shown ``size`` at a time."""

    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages there are; an empty list still has its one (empty) page."""
        return max(1, math.ceil(self.total / self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def exists(self) -> bool:
        return self.number <= self.pages


class PageNotFound(LookupError):
    """A page number past the last page; the message says which pages there are."""


@dataclass(frozen=True)
class CallRow:
    """A line of the calls page: the call, and how many texts were sent about it."""

    call: CallListing
    texts_sent: int


@dataclass(frozen=True)
class CallsPage:
    business: BusinessProfile
    rows: list[CallRow]
    window: PageWindow
    unanswered: list[UnansweredCall]  # on the first page of all calls only


@dataclass(frozen=True)
class Standing:
    """Where a number's consent to texts stands now: a ``ConsentStatus`` value, and the event it
    rests on (what kind, how and when it happened); ``window_end`` ends a consent in force."""

    status: str
    kind: str | None
    method: str | None
    since: datetime | None
    window_end: datetime | None


@dataclass(frozen=True)
class Conversing:
    """What the owner may do in a conversation with a number: its standing now, and why a reply
    may not go (None: it may)."""

    standing: Standing
    refusal: str | None


@dataclass(frozen=True)
class ConsentRecord:
    """The consent decision a call points to: its evidence, or why it cannot be shown."""

    evidence: ConsentEvidence | None
    seq: int | None
    problem: str | None


@dataclass(frozen=True)
class CallPage:
    business: BusinessProfile
    call: CallDetails
    consent: ConsentRecord | None
    texts: list[TextRecord]
    texts_total: int
    """How many texts there are with the number; ``texts`` holds the latest of them."""
    conversing: Conversing
    handling: Handling | None
    notes: list[CallNote]

    @property
    def pending_follow_ups(self) -> list[TextRecord]:
        """The follow-ups to the caller not sent yet, which the owner may cancel one by one."""
        follow_ups = {kind.value for kind in FOLLOW_UP_KINDS}
        return [
            text
            for text in self.texts
            if text.direction is Direction.OUTBOUND
            and text.kind in follow_ups
            and text.state in _PENDING
        ]


@dataclass(frozen=True)
class ThreadLine:
    """A conversation on the texts page, with its latest text."""

    conversation: Conversation
    latest: TextRecord


@dataclass(frozen=True)
class TextsPage:
    business: BusinessProfile
    threads: list[ThreadLine]
    window: PageWindow
    held: list[HeldReply]
    """Replies that may be opt-outs, waiting for the owner's decision, oldest first."""


UNANSWERED_SHOWN = 20
"""How many of the latest calls the assistant never answered the first calls page lists."""


@dataclass(frozen=True)
class ThreadPage:
    business: BusinessProfile
    number: str
    texts: list[TextRecord]
    texts_total: int
    conversing: Conversing


def calls_page(
    conn: Connection,
    call_log: CallLog,
    business: BusinessProfile,
    wanted: CallFilter,
    number: int,
    size: int,
) -> CallsPage:
    """Page ``number`` of the business's calls that ``wanted`` picks, newest first, and on the
    first page of all calls the latest calls the assistant never answered; PageNotFound past
    the last."""
    window = _window(number, size, call_log.count_calls(conn, business.id, wanted))
    listings = call_log.calls(conn, business.id, wanted, window.offset, window.size)
    sent = texts_sent_for_calls(conn, business.id, [listing.call_sid for listing in listings])
    rows = [CallRow(listing, sent.get(listing.call_sid, 0)) for listing in listings]
    unfiltered_first = number == 1 and wanted == CallFilter()  # the search does not reach them
    unanswered = (
        call_log.unanswered_calls(conn, business.id, UNANSWERED_SHOWN) if unfiltered_first else []
    )
    return CallsPage(business, rows, window, unanswered)


def call_page(
    conn: Connection, call_log: CallLog, business: BusinessProfile, call_sid: str, now: datetime
) -> CallPage | None:
    """The call ``call_sid`` of the business with its consent record and the latest texts to and
    from the caller's number; None when the business has no such call."""
    call = call_log.call(conn, business.id, call_sid)
    if call is None:
        return None
    consent = _consent_record(conn, business.id, call)
    number = call.caller_number
    texts, total = _latest_texts(conn, business.id, number)
    return CallPage(
        business,
        call,
        consent,
        texts,
        total,
        conversing(conn, call_log, business.id, number, now),
        handling(conn, business.id, call_sid),
        notes_on(conn, business.id, call_sid),
    )


def texts_page(conn: Connection, business: BusinessProfile, number: int, size: int) -> TextsPage:
    """Page ``number`` of the business's conversations, the latest first, with the replies held
    for the owner's decision; PageNotFound past the last."""
    window = _window(number, size, count_conversations(conn, business.id))
    threads = [
        ThreadLine(found, texts_with_number(conn, business.id, found.number, 1)[0])
        for found in conversations(conn, business.id, window.offset, size)
    ]
    held = held_replies(conn, business.id, HELD_REPLIES_SHOWN)
    return TextsPage(business, threads, window, held)


def thread_page(
    conn: Connection, call_log: CallLog, business: BusinessProfile, number: str, now: datetime
) -> ThreadPage | None:
    """The texts between the business and ``number``, oldest first; None when there are none."""
    texts, total = _latest_texts(conn, business.id, number)
    if not texts:
        return None
    return ThreadPage(
        business, number, texts, total, conversing(conn, call_log, business.id, number, now)
    )


def conversing(
    conn: Connection, call_log: CallLog, business_id: str, number: str, now: datetime
) -> Conversing:
    """The number's standing now, and whether the owner may text it a reply."""
    texting = call_log.texting(conn, business_id)
    refusal = NO_TEXTING if texting is None else reply_refusal(conn, texting.policy, number, now)
    return Conversing(standing(conn, business_id, number), refusal)


def standing(conn: Connection, business_id: str, number: str) -> Standing:
    """Where ``number``'s consent to the business's texts stands now (from the projection) and
    the event that put it there."""
    state = consent_state(conn, business_id, number)
    if state is None:
        return Standing(ConsentStatus.NONE.value, None, None, None, None)
    event = None if state.event_hash is None else event_by_hash(conn, state.event_hash)
    evidence = None if event is None else event.evidence()
    window_end = state.window_end if state.status is ConsentStatus.GRANTED else None
    if evidence is None:
        return Standing(state.status.value, None, None, state.updated_at, window_end)
    return Standing(
        state.status.value,
        evidence.kind.value,
        evidence.method.value,
        evidence.occurred_at,
        window_end,
    )


def _latest_texts(conn: Connection, business_id: str, number: str) -> tuple[list[TextRecord], int]:
    texts = texts_with_number(conn, business_id, number, CALL_PAGE_TEXTS)
    total = len(texts)
    if total == CALL_PAGE_TEXTS:
        total = count_texts_with_number(conn, business_id, number)
    return texts, total


def _window(number: int, size: int, total: int) -> PageWindow:
    window = PageWindow(number, size, total)
    if not window.exists:
        last = window.pages
        raise PageNotFound(f"There is no page {number}: the last page is {last}.")
    return window


def _consent_record(conn: Connection, business_id: str, call: CallDetails) -> ConsentRecord | None:
    if call.consent_event_hash is None:
        return None
    try:
        event = event_by_hash(conn, call.consent_event_hash)
        evidence = None if event is None else event.evidence()
    except ValueError:
        event, evidence = None, None
    if event is None or evidence is None or event.business_id != business_id:
        logger.error(
            "a call's consent record cannot be shown",
            extra={"business_id": business_id, "call_sid": call.call_sid},
        )
        return ConsentRecord(
            None,
            None,
            "The consent record of this call cannot be read; your operator can check the "
            "records with `receptionist ledger verify`.",
        )
    return ConsentRecord(evidence, event.seq, None)
