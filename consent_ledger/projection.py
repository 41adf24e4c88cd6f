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

from sqlalchemy import ColumnElement, Connection, ScalarSelect, insert, select

from consent_ledger.driver_sql import DriverStatement, instant_from_store, instant_to_store, run
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
    changes = _changes(before, event)
    return replace(before, **changes, last_seq=event.seq, updated_at=event.recorded_at)


def fold(events: Iterable[ChainedEvidence]) -> ConsentStateRow | None:
    """The standing after ``events`` (one business and number, in chain order)."""
    state: ConsentStateRow | None = None
    for event in events:
        state = advance(state, event)
    return state


_STATE_COLUMNS = tuple(column.name for column in consent_states.columns)
_KEY_COLUMNS = ("business_id", "phone_number")
_VALUE_COLUMNS = tuple(name for name in _STATE_COLUMNS if name not in _KEY_COLUMNS)
_INSTANT_COLUMNS = frozenset({"window_start", "window_end", "updated_at"})
_STATE_KEY = "business_id = ? AND phone_number = ?"
_SELECT_STATE = f"SELECT {', '.join(_STATE_COLUMNS)} FROM consent_state WHERE {_STATE_KEY}"
_READ_STATE = DriverStatement.portable(_SELECT_STATE)
_LOCK_STATE = DriverStatement.portable(_SELECT_STATE, lock_rows=True)
_WRITE_STATE = DriverStatement.portable(
    f"INSERT INTO consent_state ({', '.join(_STATE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _STATE_COLUMNS)}) "
    f"ON CONFLICT ({', '.join(_KEY_COLUMNS)}) DO UPDATE SET "
    f"{', '.join(f'{name} = excluded.{name}' for name in _VALUE_COLUMNS)}"
)
"""Stores a number's standing, whether or not it has a row yet."""

STANDING_REPLACING_KINDS = CONSENT_GIVING_KINDS | {EventKind.CONSENT_DECLINED}
"""Kinds whose event sets every value of the standing (see :func:`_changes`): the standing after
one is the same whatever stood before, so :func:`project` does not read the stored row first."""


def project(conn: Connection, event: ChainedEvidence) -> ConsentStateRow:
    """Fold a just-appended event into its number's stored standing, in the caller's transaction.

    The row is read ``FOR UPDATE`` on PostgreSQL, so a concurrent rebuild (which locks the table)
    finishes before the row is read; an event of :data:`STANDING_REPLACING_KINDS` needs no read,
    and its write waits for the rebuild in the same way. Runs on the driver's cursor, as the rest
    of an append does.
    """
    evidence = event.evidence
    before = (
        None
        if evidence.kind in STANDING_REPLACING_KINDS
        else consent_state(conn, evidence.business_id, evidence.phone_number, for_update=True)
    )
    after = advance(before, event)
    run(conn, _WRITE_STATE, _stored_values(conn, after))
    return after


def store_states(conn: Connection, states: list[ConsentStateRow]) -> None:
    """Insert freshly computed rows (a rebuild, after the old rows were deleted)."""
    if states:
        conn.execute(insert(consent_states), [_column_values(state) for state in states])


def consent_state(
    conn: Connection, business_id: str, phone_number: str, *, for_update: bool = False
) -> ConsentStateRow | None:
    """The stored standing of ``phone_number`` with ``business_id``; None: nothing on record."""
    rows = run(conn, _LOCK_STATE if for_update else _READ_STATE, (business_id, phone_number))
    return _state_from_stored(conn, rows[0]) if rows else None


def status_of(
    business_id: ColumnElement[str], phone_number: ColumnElement[str]
) -> ScalarSelect[str]:
    """The standing's status (a :class:`ConsentStatus` value; NULL when nothing is on record) of
    the number in ``phone_number`` with the business in ``business_id``, as a correlated subquery
    that a query over other tables can select or filter on."""
    return (
        select(consent_states.c.status)
        .where(
            consent_states.c.business_id == business_id,
            consent_states.c.phone_number == phone_number,
        )
        .scalar_subquery()
    )


def _changes(state: ConsentStateRow, event: ChainedEvidence) -> dict[str, Any]:
    """The fields of ``state`` that ``event`` changes, with their new values."""
    kind = event.evidence.kind
    if kind in CONSENT_GIVING_KINDS:
        return _granted(event)
    if kind is EventKind.CONSENT_DECLINED:
        return {**_resting_on(ConsentStatus.DECLINED, event), **_NO_CONSENT}
    if kind is EventKind.REVOKED:
        return _resting_on(ConsentStatus.REVOKED, event)
    if kind is EventKind.RESUBSCRIBED:
        return _resubscribed(state, event)
    inconclusive = _INCONCLUSIVE_KINDS.get(kind)
    if inconclusive is not None and state.status in _UNDECIDED:
        return _resting_on(inconclusive, event)
    return {}


def _granted(event: ChainedEvidence) -> dict[str, Any]:
    scope = event.evidence.scope
    if scope is None:  # validation makes every granting event carry a scope
        raise ValueError(f"grant #{event.seq} has no scope")
    return {
        **_resting_on(ConsentStatus.GRANTED, event),
        "consent_hash": event.hash,
        "consent_seq": event.seq,
        "window_start": event.recorded_at,
        "window_end": scope.expires_at,
        "max_texts": scope.max_texts,
    }


def _resubscribed(state: ConsentStateRow, event: ChainedEvidence) -> dict[str, Any]:
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
        return {}
    return {
        "status": ConsentStatus.GRANTED,
        "event_hash": state.consent_hash,
        "event_seq": state.consent_seq,
        "window_end": min(state.window_end, scope.expires_at),
        "max_texts": min(state.max_texts, scope.max_texts),
    }


def _resting_on(status: ConsentStatus, event: ChainedEvidence) -> dict[str, Any]:
    """The standing rests on ``event`` with ``status``."""
    return {"status": status, "event_hash": event.hash, "event_seq": event.seq}


_NO_CONSENT: dict[str, Any] = {
    "consent_hash": None,
    "consent_seq": None,
    "window_start": None,
    "window_end": None,
    "max_texts": None,
}
"""A withdrawn consent leaves no window or cap to restore."""


def _column_values(state: ConsentStateRow) -> dict[str, Any]:
    """The row's values by column name, as SQLAlchemy takes them."""
    values = {name: getattr(state, name) for name in _STATE_COLUMNS}
    values["status"] = state.status.value
    return values


def _stored_values(conn: Connection, state: ConsentStateRow) -> list[Any]:
    """The row's values in column order, times in the form the database stores them.

    Each distinct instant is converted once: SQLAlchemy's conversion costs more than the rest of
    this, and after a grant the window's start and the update are both the event's recorded time.
    Equal instants have equal stored forms here, since a standing's times all come from events or
    rows checked to be at UTC offset zero.
    """
    to_store = instant_to_store(conn.dialect)
    values = _column_values(state)
    instants = {values[name] for name in _INSTANT_COLUMNS}
    stored = {instant: to_store(instant) for instant in instants}
    for name in _INSTANT_COLUMNS:
        values[name] = stored[values[name]]
    return list(values.values())


def _state_from_stored(conn: Connection, values: tuple[Any, ...]) -> ConsentStateRow:
    """The standing a stored row (in the table's column order) holds."""
    from_store = instant_from_store(conn.dialect)
    row = dict(zip(_STATE_COLUMNS, values, strict=True))
    for name in _INSTANT_COLUMNS:
        stored = row[name]
        row[name] = None if stored is None else stored_instant(from_store(stored))
    row["status"] = ConsentStatus(row["status"])
    return ConsentStateRow(**row)
