"""The send gate: may this business text this number now? Derived from the ledger alone.

The events of one (business, number) pair are read in chain order and folded into the consent's
standing by ``projection.advance`` (the rules are written there), the same fold that keeps the
current-state projection. The gate reads the events themselves, not the projection: the events
are the truth, and each is checked against its hash on the way.

Anything unreadable in the history means no (fail closed). :func:`revoke` and :func:`resubscribe`
record a revocation (STOP, a plain-language text, "don't text me" on a call, the owner) and the
keyword START against the same standing. :func:`owner_notifications_allowed` answers the separate
question whether the owner's own phone may get notification texts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection

from consent_ledger.chain import CorruptEventError, RecordedEvent, append_event
from consent_ledger.evidence import (
    OWNER_NOTIFICATION_KINDS,
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    EventKind,
    MessageEvidence,
)
from consent_ledger.instants import require_utc
from consent_ledger.projection import ConsentStateRow, ConsentStatus, fold
from consent_ledger.queries import events_for_number, latest_event_of_kinds

logger = logging.getLogger(__name__)


class GateReason(StrEnum):
    """Why the gate decided as it did."""

    ALLOWED = "allowed"
    NO_CONSENT = "no_consent"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"
    CAP_REACHED = "cap_reached"
    INVALID_RECORD = "invalid_record"


_REFUSALS = {ConsentStatus.DECLINED: GateReason.DECLINED, ConsentStatus.REVOKED: GateReason.REVOKED}


@dataclass(frozen=True)
class GateDecision:
    """The gate's answer.

    ``event`` is the grant that allows the text (or whose window or cap refuses it), or the event
    the refusal rests on (the decline, the revocation, an inconclusive answer; None when nothing is
    on record); ``remaining`` is how many texts the consent still allows, this one included;
    ``window_end`` is when the consent's window closes.
    """

    allowed: bool
    reason: GateReason
    event: RecordedEvent | None
    remaining: int
    window_end: datetime | None


@dataclass(frozen=True)
class _Standing:
    """A number's folded standing, with the events its hashes name."""

    state: ConsentStateRow | None
    events: dict[str, RecordedEvent]

    @property
    def status(self) -> ConsentStatus:
        return ConsentStatus.NONE if self.state is None else self.state.status

    def event_named(self, event_hash: str | None) -> RecordedEvent | None:
        return None if event_hash is None else self.events[event_hash]


def may_send(
    conn: Connection,
    business_id: str,
    phone_number: str,
    at: datetime,
    count_sent: Callable[[datetime], int],
) -> GateDecision:
    """Whether ``business_id`` may text ``phone_number`` at ``at``.

    ``count_sent(since)`` is how many texts were already sent to this number for this business since
    ``since`` (the grant's recorded time). Call this in the transaction that claims the text.
    """
    require_utc("at", at)
    try:
        standing = _standing_of(conn, business_id, phone_number)
    except ValueError as error:
        logger.error(
            "consent history unreadable, refusing to send",
            extra={"business_id": business_id, "error": str(error)},
        )
        return GateDecision(False, GateReason.INVALID_RECORD, None, 0, None)
    state = standing.state
    if state is None or state.status is not ConsentStatus.GRANTED:
        event = standing.event_named(None if state is None else state.event_hash)
        reason = _REFUSALS.get(standing.status, GateReason.NO_CONSENT)
        return GateDecision(False, reason, event, 0, None)
    grant = standing.event_named(state.consent_hash)
    if grant is None or state.window_start is None or state.window_end is None:
        return GateDecision(False, GateReason.INVALID_RECORD, None, 0, None)
    if not state.window_start <= at < state.window_end:
        return GateDecision(False, GateReason.EXPIRED, grant, 0, state.window_end)
    sent = count_sent(state.window_start)
    if not isinstance(sent, int) or isinstance(sent, bool) or sent < 0:
        raise ValueError(f"count_sent must return a count of texts, got {sent!r}")
    remaining = max((state.max_texts or 0) - sent, 0)
    if remaining == 0:
        return GateDecision(False, GateReason.CAP_REACHED, grant, 0, state.window_end)
    return GateDecision(True, GateReason.ALLOWED, grant, remaining, state.window_end)


def revoke(
    conn: Connection,
    business_id: str,
    business_name: str,
    phone_number: str,
    method: ConsentMethod,
    occurred_at: datetime,
    recorded_at: datetime,
    *,
    call_sid: str | None = None,
    note: str = "",
    message: MessageEvidence | None = None,
) -> RecordedEvent | None:
    """Record that the caller (or the owner) revoked consent; None when none is in force.

    The ``revoked`` event points at the grant in force. A revocation said or keyed on a call
    (``spoken``, ``keypad``) names the call; one made by text keeps the ``message`` (its words
    and MessageSid). Raises CorruptEventError or ValueError when the
    history cannot be read (the gate refuses every text for that number meanwhile).
    """
    state = _standing_of(conn, business_id, phone_number).state
    if state is None or state.status is not ConsentStatus.GRANTED or state.consent_hash is None:
        return None
    return revoke_consent(
        conn,
        business_id,
        business_name,
        phone_number,
        state.consent_hash,
        method,
        occurred_at,
        recorded_at,
        call_sid=call_sid,
        note=note,
        message=message,
    )


def revoke_consent(
    conn: Connection,
    business_id: str,
    business_name: str,
    phone_number: str,
    consent_hash: str,
    method: ConsentMethod,
    occurred_at: datetime,
    recorded_at: datetime,
    *,
    call_sid: str | None = None,
    note: str = "",
    message: MessageEvidence | None = None,
) -> RecordedEvent:
    """Append the ``revoked`` event for the grant ``consent_hash``, which the caller found in
    force (:func:`revoke` finds it in the number's history)."""
    revocation = _change_evidence(
        business_id,
        business_name,
        phone_number,
        method,
        occurred_at,
        EventKind.REVOKED,
        revokes=consent_hash,
        scope=None,
        call_sid=call_sid,
        note=note,
        message=message,
    )
    return append_event(conn, revocation, recorded_at)


def resubscribe(
    conn: Connection,
    business_id: str,
    business_name: str,
    phone_number: str,
    method: ConsentMethod,
    occurred_at: datetime,
    recorded_at: datetime,
    *,
    message: MessageEvidence | None = None,
) -> RecordedEvent | None:
    """Record that the caller undid a revocation (by the text ``message``, when made by text);
    None when the consent is not revoked.

    The ``resubscribed`` event points at the revocation and carries the revoked consent's scope, so
    it restores at most what was granted, inside the original window.
    """
    standing = _standing_of(conn, business_id, phone_number)
    state = standing.state
    grant = None if state is None else standing.event_named(state.consent_hash)
    granted_scope = None if grant is None else grant.evidence().scope
    if (
        state is None
        or state.status is not ConsentStatus.REVOKED
        or state.event_hash is None
        or state.window_end is None
        or state.max_texts is None
        or granted_scope is None
    ):
        return None
    resubscription = _change_evidence(
        business_id,
        business_name,
        phone_number,
        method,
        occurred_at,
        EventKind.RESUBSCRIBED,
        revokes=state.event_hash,
        scope=ConsentScope(granted_scope.purpose, state.max_texts, state.window_end),
        message=message,
    )
    return append_event(conn, resubscription, recorded_at)


def owner_notifications_allowed(conn: Connection, business_id: str, owner_number: str) -> bool:
    """Whether the owner's phone ``owner_number`` may get notification texts from ``business_id``.

    The newest opt-in or opt-out wins; none on record, or a damaged one, means no.
    """
    try:
        latest = latest_event_of_kinds(conn, business_id, owner_number, OWNER_NOTIFICATION_KINDS)
    except CorruptEventError as error:
        logger.error(
            "owner notification choice unreadable, refusing to notify",
            extra={"business_id": business_id, "error": str(error)},
        )
        return False
    return latest is not None and latest.kind is EventKind.OWNER_NOTIFICATIONS_OPT_IN


def _standing_of(conn: Connection, business_id: str, phone_number: str) -> _Standing:
    events = events_for_number(conn, business_id, phone_number)
    state = fold(event.chained() for event in events)
    return _Standing(state, {event.hash: event for event in events})


def _change_evidence(
    business_id: str,
    business_name: str,
    phone_number: str,
    method: ConsentMethod,
    occurred_at: datetime,
    kind: EventKind,
    *,
    revokes: str,
    scope: ConsentScope | None,
    call_sid: str | None = None,
    note: str = "",
    message: MessageEvidence | None = None,
) -> ConsentEvidence:
    """Evidence of a change made outside a consent question: no script, no classified answer."""
    return ConsentEvidence(
        business_id=business_id,
        business_name=business_name,
        phone_number=phone_number,
        call_sid=call_sid,
        stream_sid=None,
        kind=kind,
        method=method,
        script=None,
        answers=(),
        classifier=None,
        classifier_version=None,
        reasked=False,
        scope=scope,
        occurred_at=occurred_at,
        revokes=revokes,
        note=note,
        message=message,
    )
