"""The current-state projection: where each number's consent stands, for fast reads.

One ``consent_state`` row per business and number says what the number's events add up to. The
row is written by ``append_event`` in the transaction of the append, and can be rebuilt from the
events at any time (``queries.rebuild_projection``); the events stay the truth.

The same fold, :func:`advance`, serves the projection and the send gate, so the two never disagree:

- ``consent_granted`` or ``web_form_consent`` puts a consent in force: its window runs from when
  the event was recorded until ``scope.expires_at``, for at most ``scope.max_texts`` texts.
- ``consent_declined`` withdraws any consent; ``revoked`` withdraws it but remembers it, so that a
  ``resubscribed`` event pointing at that revocation can restore it — never beyond the original
  window or cap (the stricter of both scopes applies). A resubscription of anything else is ignored.
- ``consent_unclear`` and ``consent_not_asked`` never grant and never withdraw; they are the status
  only while nothing decisive is on record.
- Owner-notification events are about the owner's own number and change no caller's consent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from consent_ledger.evidence import CONSENT_GIVING_KINDS, ConsentEvidence, EventKind
from consent_ledger.instants import stored_instant
from consent_ledger.tables import consent_states

logger = logging.getLogger(__name__)


class ConsentStatus(StrEnum):
    """Where a number's consent stands."""

    GRANTED = "granted"
    DECLINED = "declined"
    REVOKED = "revoked"
    UNCLEAR = "unclear"
    NOT_ASKED = "not_asked"
    NONE = "none"


_UNDECIDED = frozenset({ConsentStatus.NONE, ConsentStatus.UNCLEAR, ConsentStatus.NOT_ASKED})
_INCONCLUSIVE_KINDS = {
    EventKind.CONSENT_UNCLEAR: ConsentStatus.UNCLEAR,
    EventKind.CONSENT_NOT_ASKED: ConsentStatus.NOT_ASKED,
}


@dataclass(frozen=True)
class ChainedEvidence:
    """An event's evidence with its place in the chain: all the fold needs to know of it."""

    seq: int
    hash: str
    recorded_at: datetime
    evidence: ConsentEvidence


@dataclass(frozen=True)
class ConsentStateRow:
    """One number's standing with one business.

    ``event_hash``/``event_seq`` name the event the status rests on: the grant for ``granted`` (also
    after a resubscription restored it), the withdrawing event for ``declined`` and ``revoked``, the
    inconclusive event for ``unclear`` and ``not_asked``, none for ``none``. ``consent_hash`` and
    ``consent_seq`` name the grant whose window (``window_start`` to ``window_end``) and cap
    (``max_texts``) apply: the consent in force, or the revoked consent a resubscription would
    restore; otherwise all five are None. ``last_seq`` and ``updated_at`` are the sequence number
    and recorded time of the newest event about the number.
    """

    business_id: str
    phone_number: str
    status: ConsentStatus
    event_hash: str | None
    event_seq: int | None
    consent_hash: str | None
    consent_seq: int | None
    window_start: datetime | None
    window_end: datetime | None
    max_texts: int | None
    last_seq: int
    updated_at: datetime


def advance(state: ConsentStateRow | None, event: ChainedEvidence) -> ConsentStateRow:
    """The standing after ``event``, given the standing before it (None: nothing on record)."""
    evidence = event.evidence
    before = state or ConsentStateRow(
        business_id=evidence.business_id,
        phone_number=evidence.phone_number,
        status=ConsentStatus.NONE,
        event_hash=None,
        event_seq=None,
        consent_hash=None,
        consent_seq=None,
        window_start=None,
        window_end=None,
        max_texts=None,
        last_seq=event.seq,
        updated_at=event.recorded_at,
    )
    if (before.business_id, before.phone_number) != (evidence.business_id, evidence.phone_number):
        raise ValueError("an event can only advance the standing of its own business and number")
    return replace(_apply(before, event), last_seq=event.seq, updated_at=event.recorded_at)


def fold(events: Iterable[ChainedEvidence]) -> ConsentStateRow | None:
    """The standing after ``events`` (one business and number, in chain order)."""
    state: ConsentStateRow | None = None
    for event in events:
        state = advance(state, event)
    return state


_SELECT_STATE = (
    select(consent_states)
    .where(consent_states.c.business_id == bindparam("business_id"))
    .where(consent_states.c.phone_number == bindparam("phone_number"))
)
_SELECT_STATE_FOR_UPDATE = _SELECT_STATE.with_for_update()
_INSERT_STATE = insert(consent_states)
_UPDATE_STATE = (
    update(consent_states)
    .where(consent_states.c.business_id == bindparam("key_business_id"))
    .where(consent_states.c.phone_number == bindparam("key_phone_number"))
)


def project(conn: Connection, event: ChainedEvidence) -> ConsentStateRow:
    """Fold a just-appended event into its number's stored standing, in the caller's transaction.

    The row is read ``FOR UPDATE`` on PostgreSQL, so a concurrent rebuild (which locks the table)
    finishes before the row is read.
    """
    evidence = event.evidence
    before = consent_state(conn, evidence.business_id, evidence.phone_number, for_update=True)
    after = advance(before, event)
    columns = _columns(after)
    if before is None:
        conn.execute(_INSERT_STATE, columns)
    else:
        key = {"key_business_id": after.business_id, "key_phone_number": after.phone_number}
        conn.execute(_UPDATE_STATE, {**columns, **key})
    return after


def store_states(conn: Connection, states: list[ConsentStateRow]) -> None:
    """Insert freshly computed rows (a rebuild, after the old rows were deleted)."""
    if states:
        conn.execute(insert(consent_states), [_columns(state) for state in states])


def consent_state(
    conn: Connection, business_id: str, phone_number: str, *, for_update: bool = False
) -> ConsentStateRow | None:
    """The stored standing of ``phone_number`` with ``business_id``; None: nothing on record."""
    statement = _SELECT_STATE_FOR_UPDATE if for_update else _SELECT_STATE
    key = {"business_id": business_id, "phone_number": phone_number}
    row = conn.execute(statement, key).one_or_none()
    return None if row is None else _state_from_row(row)


def _apply(state: ConsentStateRow, event: ChainedEvidence) -> ConsentStateRow:
    kind = event.evidence.kind
    if kind in CONSENT_GIVING_KINDS:
        return _granted(state, event)
    if kind is EventKind.CONSENT_DECLINED:
        return _forgetting_consent(_resting_on(state, ConsentStatus.DECLINED, event))
    if kind is EventKind.REVOKED:
        return _resting_on(state, ConsentStatus.REVOKED, event)
    if kind is EventKind.RESUBSCRIBED:
        return _resubscribed(state, event)
    inconclusive = _INCONCLUSIVE_KINDS.get(kind)
    if inconclusive is not None and state.status in _UNDECIDED:
        return _resting_on(state, inconclusive, event)
    return state


def _granted(state: ConsentStateRow, event: ChainedEvidence) -> ConsentStateRow:
    scope = event.evidence.scope
    if scope is None:  # validation makes every granting event carry a scope
        raise ValueError(f"grant #{event.seq} has no scope")
    return replace(
        _resting_on(state, ConsentStatus.GRANTED, event),
        consent_hash=event.hash,
        consent_seq=event.seq,
        window_start=event.recorded_at,
        window_end=scope.expires_at,
        max_texts=scope.max_texts,
    )


def _resubscribed(state: ConsentStateRow, event: ChainedEvidence) -> ConsentStateRow:
    scope = event.evidence.scope
    if (
        state.status is not ConsentStatus.REVOKED
        or event.evidence.revokes != state.event_hash
        or state.consent_hash is None
        or state.consent_seq is None
        or state.window_end is None
        or state.max_texts is None
        or scope is None
    ):
        logger.warning(
            "resubscription does not undo the revocation in force; ignored",
            extra={"business_id": state.business_id, "seq": event.seq},
        )
        return state
    return replace(
        state,
        status=ConsentStatus.GRANTED,
        event_hash=state.consent_hash,
        event_seq=state.consent_seq,
        window_end=min(state.window_end, scope.expires_at),
        max_texts=min(state.max_texts, scope.max_texts),
    )


def _resting_on(
    state: ConsentStateRow, status: ConsentStatus, event: ChainedEvidence
) -> ConsentStateRow:
    return replace(state, status=status, event_hash=event.hash, event_seq=event.seq)


def _forgetting_consent(state: ConsentStateRow) -> ConsentStateRow:
    return replace(
        state,
        consent_hash=None,
        consent_seq=None,
        window_start=None,
        window_end=None,
        max_texts=None,
    )


def _columns(state: ConsentStateRow) -> dict[str, Any]:
    return {
        "business_id": state.business_id,
        "phone_number": state.phone_number,
        "status": state.status.value,
        "event_hash": state.event_hash,
        "event_seq": state.event_seq,
        "consent_hash": state.consent_hash,
        "consent_seq": state.consent_seq,
        "window_start": state.window_start,
        "window_end": state.window_end,
        "max_texts": state.max_texts,
        "last_seq": state.last_seq,
        "updated_at": state.updated_at,
    }


def _state_from_row(row: Row[Any]) -> ConsentStateRow:
    return ConsentStateRow(
        business_id=row.business_id,
        phone_number=row.phone_number,
        status=ConsentStatus(row.status),
        event_hash=row.event_hash,
        event_seq=row.event_seq,
        consent_hash=row.consent_hash,
        consent_seq=row.consent_seq,
        window_start=_optional_instant(row.window_start),
        window_end=_optional_instant(row.window_end),
        max_texts=row.max_texts,
        last_seq=row.last_seq,
        updated_at=stored_instant(row.updated_at),
    )


def _optional_instant(value: datetime | None) -> datetime | None:
    return None if value is None else stored_instant(value)
