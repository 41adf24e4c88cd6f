"""The send gate: may this business text this number now? Derived from the ledger alone.

The events of one (business, number) pair are read in chain order and folded into the consent's
standing:

- ``consent_granted`` puts a consent in force; its scope sets the window (from when the grant was
  recorded until ``scope.expires_at``) and the cap (``scope.max_texts``).
- A later ``consent_declined`` or ``revoked`` withdraws it.
- ``resubscribed`` restores a consent withdrawn by the revocation it points at, never beyond the
  original window or cap (the stricter of both scopes applies).
- ``consent_unclear`` and ``consent_not_asked`` never grant and never withdraw.

Anything unreadable in the history means no (fail closed). :func:`revoke` and :func:`resubscribe`
record the SMS keywords STOP and START against the same standing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection

from consent_ledger.chain import RecordedEvent, append_event
from consent_ledger.evidence import ConsentEvidence, ConsentMethod, ConsentScope, EventKind
from consent_ledger.instants import require_utc
from consent_ledger.queries import events_for_number

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


@dataclass(frozen=True)
class GateDecision:
    """The gate's answer.

    ``event`` is the grant that allows the text (or whose window or cap refuses it), or the event
    that withdrew consent; ``remaining`` is how many texts the consent still allows, this one
    included; ``window_end`` is when the consent's window closes.
    """

    allowed: bool
    reason: GateReason
    event: RecordedEvent | None
    remaining: int
    window_end: datetime | None


@dataclass(frozen=True)
class _Standing:
    """Where a number's consent stands after its history.

    ``status`` is ALLOWED while a consent is in force, else NO_CONSENT, DECLINED or REVOKED.
    ``latest`` is the event that last changed the status.
    """

    status: GateReason
    grant: RecordedEvent | None
    scope: ConsentScope | None
    latest: RecordedEvent | None


_NOTHING_ON_RECORD = _Standing(GateReason.NO_CONSENT, grant=None, scope=None, latest=None)


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
        standing = _standing_of(events_for_number(conn, business_id, phone_number))
    except ValueError as error:
        logger.error(
            "consent history unreadable, refusing to send",
            extra={"business_id": business_id, "error": str(error)},
        )
        return GateDecision(False, GateReason.INVALID_RECORD, None, 0, None)
    if standing.status is not GateReason.ALLOWED:
        return GateDecision(False, standing.status, standing.latest, 0, None)
    grant, scope = standing.grant, standing.scope
    if grant is None or scope is None:
        return GateDecision(False, GateReason.INVALID_RECORD, None, 0, None)
    if not grant.recorded_at <= at < scope.expires_at:
        return GateDecision(False, GateReason.EXPIRED, grant, 0, scope.expires_at)
    sent = count_sent(grant.recorded_at)
    if not isinstance(sent, int) or isinstance(sent, bool) or sent < 0:
        raise ValueError(f"count_sent must return a count of texts, got {sent!r}")
    remaining = max(scope.max_texts - sent, 0)
    if remaining == 0:
        return GateDecision(False, GateReason.CAP_REACHED, grant, 0, scope.expires_at)
    return GateDecision(True, GateReason.ALLOWED, grant, remaining, scope.expires_at)


def revoke(
    conn: Connection,
    business_id: str,
    business_name: str,
    phone_number: str,
    method: ConsentMethod,
    occurred_at: datetime,
    recorded_at: datetime,
) -> RecordedEvent | None:
    """Record that the caller revoked consent; None when no consent is in force to revoke.

    The ``revoked`` event points at the latest grant. Raises CorruptEventError or ValueError when
    the history cannot be read (the gate refuses every text for that number meanwhile).
    """
    standing = _standing_of(events_for_number(conn, business_id, phone_number))
    if standing.status is not GateReason.ALLOWED or standing.grant is None:
        return None
    revocation = _keyword_evidence(
        business_id,
        business_name,
        phone_number,
        method,
        occurred_at,
        EventKind.REVOKED,
        revokes=standing.grant.hash,
        scope=None,
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
) -> RecordedEvent | None:
    """Record that the caller undid a revocation; None when the consent is not revoked.

    The ``resubscribed`` event points at the revocation and carries the revoked consent's scope, so
    it restores at most what was granted, inside the original window.
    """
    standing = _standing_of(events_for_number(conn, business_id, phone_number))
    if (
        standing.status is not GateReason.REVOKED
        or standing.latest is None
        or standing.grant is None
        or standing.scope is None
    ):
        return None
    resubscription = _keyword_evidence(
        business_id,
        business_name,
        phone_number,
        method,
        occurred_at,
        EventKind.RESUBSCRIBED,
        revokes=standing.latest.hash,
        scope=standing.scope,
    )
    return append_event(conn, resubscription, recorded_at)


def _standing_of(events: Sequence[RecordedEvent]) -> _Standing:
    standing = _NOTHING_ON_RECORD
    for event in events:
        standing = _apply(standing, event, event.evidence())
    return standing


def _apply(standing: _Standing, event: RecordedEvent, evidence: ConsentEvidence) -> _Standing:
    kind = evidence.kind
    if kind is EventKind.CONSENT_GRANTED:
        return _Standing(GateReason.ALLOWED, grant=event, scope=evidence.scope, latest=event)
    if kind is EventKind.CONSENT_DECLINED:
        return replace(standing, status=GateReason.DECLINED, latest=event)
    if kind is EventKind.REVOKED:
        return replace(standing, status=GateReason.REVOKED, latest=event)
    if kind is EventKind.RESUBSCRIBED:
        return _apply_resubscription(standing, event, evidence)
    return standing


def _apply_resubscription(
    standing: _Standing, event: RecordedEvent, evidence: ConsentEvidence
) -> _Standing:
    revocation = standing.latest
    if (
        standing.status is not GateReason.REVOKED
        or revocation is None
        or evidence.revokes != revocation.hash
        or standing.scope is None
        or evidence.scope is None
    ):
        logger.warning(
            "resubscription does not undo the revocation in force; ignored",
            extra={"business_id": event.business_id, "seq": event.seq},
        )
        return standing
    scope = ConsentScope(
        purpose=standing.scope.purpose,
        max_texts=min(standing.scope.max_texts, evidence.scope.max_texts),
        expires_at=min(standing.scope.expires_at, evidence.scope.expires_at),
    )
    return replace(standing, status=GateReason.ALLOWED, scope=scope, latest=event)


def _keyword_evidence(
    business_id: str,
    business_name: str,
    phone_number: str,
    method: ConsentMethod,
    occurred_at: datetime,
    kind: EventKind,
    *,
    revokes: str,
    scope: ConsentScope | None,
) -> ConsentEvidence:
    """Evidence of a change made outside a consent question: no script, no spoken answer."""
    return ConsentEvidence(
        business_id=business_id,
        business_name=business_name,
        phone_number=phone_number,
        call_sid=None,
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
    )
