"""What an opt-out or opt-in text records in the consent ledger: the caller's revocation or
resubscription and, from the owner's phone, the owner's choice about notification texts.

An opt-out is honoured whatever state the ledger is in: the inbound handler cancels the number's
pending texts, stores the text and queues its confirmation in the same transaction, and nothing
here may undo that. So each ledger change runs in a savepoint (``Connection.begin_nested``): when it
fails, only its own writes are rolled back. (On PostgreSQL a failed statement would otherwise abort
the whole transaction, and the STOP with it.)

Normally the number's events are read and folded (``consent_ledger.revoke``). When a row of that
history was changed after it was written, reading it fails; the opt-out is then recorded without
the history, because evidence of it is worth keeping and an append reads only the chain head:

- the revocation points at the consent that the current-state projection names as in force; the
  projection was folded from each event's evidence when the event was appended, so it needs none
  of the damaged rows;
- the owner's phone appends its opt-out while the owner's newest choice, a row read on its own,
  still lets notification texts through (``consent_ledger.owner_notifications_allowed``).

When even the append fails (a damaged chain head), nothing is appended and the stored inbound text
is the only record of the opt-out. Either way the damage is logged as an error naming the business
and, where the ledger says, the damaged event; ``receptionist ledger verify`` reports it too. An
opt-in is never recorded from a damaged history: what it would restore cannot be known.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from consent_ledger import (
    ConsentMethod,
    ConsentStatus,
    MessageEvidence,
    RecordedEvent,
    consent_state,
    owner_notifications_allowed,
    resubscribe,
    revoke,
    revoke_consent,
)
from sms_sender.owner_choice import owner_phone_changes_choice, record_owner_choice
from sms_sender.policy import SmsPolicy

logger = logging.getLogger(__name__)

LEDGER_DAMAGE = (ValueError, IntegrityError)
"""What a damaged ledger raises: CorruptEventError or EvidenceError (ValueErrors) for a changed
event, IntegrityError for an append that collides with a stored event (a changed chain head)."""

RECORDED_DESPITE_DAMAGE = "recorded after the consent ledger was found damaged"
"""Added to the note of an event appended on the second try, without the number's history."""


@dataclass(frozen=True)
class TextedChoice:
    """The ledger events that one opt-out or opt-in text appended.

    ``caller_event`` is the revocation or resubscription, ``owner_event`` the owner phone's choice
    about notification texts; each is None when nothing needed recording or it could not be
    appended. ``ledger_damaged`` says the number's events could not be read or appended to.
    """

    caller_event: RecordedEvent | None
    owner_event: RecordedEvent | None
    ledger_damaged: bool = False


def record_opt_out(
    conn: Connection,
    policy: SmsPolicy,
    number: str,
    method: ConsentMethod,
    at: datetime,
    note: str,
    message: MessageEvidence | None = None,
) -> TextedChoice:
    """Record that ``number`` opted out (``note`` names what carried it; the revocation keeps the
    text ``message`` that did, its words and MessageSid), even from a damaged history; never
    raises for the ledger's damage."""
    try:
        with conn.begin_nested():
            return TextedChoice(
                revoke(conn, *_business(policy), number, method, at, at, message=message),
                owner_phone_changes_choice(conn, policy, number, False, method, at, note),
            )
    except LEDGER_DAMAGE as error:
        logger.error(
            "business %s: consent ledger damaged (%s); the opt-out is honoured all the same",
            policy.business_id,
            _described(error),
        )
    note = f"{note}; {RECORDED_DESPITE_DAMAGE}"
    revocation = _append_despite_damage(
        conn,
        policy,
        "the revocation",
        lambda: _revoke_projected_consent(conn, policy, number, method, at, note, message),
    )
    owner_event = _append_despite_damage(
        conn,
        policy,
        "the owner's opt-out",
        lambda: _end_owner_texts(conn, policy, number, method, at, note),
    )
    return TextedChoice(revocation, owner_event, ledger_damaged=True)


def record_opt_in(
    conn: Connection,
    policy: SmsPolicy,
    number: str,
    at: datetime,
    note: str,
    message: MessageEvidence,
) -> TextedChoice:
    """Record that ``number`` opted back in by keyword (the text ``message``, kept in the
    resubscription), where that undoes an opt-out; nothing when its history is damaged (fails
    closed, never raises for the ledger's damage)."""
    method = ConsentMethod.SMS_KEYWORD
    try:
        with conn.begin_nested():
            return TextedChoice(
                resubscribe(conn, *_business(policy), number, method, at, at, message=message),
                owner_phone_changes_choice(conn, policy, number, True, method, at, note),
            )
    except LEDGER_DAMAGE as error:
        logger.error(
            "business %s: consent ledger damaged (%s); the opt-in is not recorded",
            policy.business_id,
            _described(error),
        )
    return TextedChoice(None, None, ledger_damaged=True)


def _business(policy: SmsPolicy) -> tuple[str, str]:
    """The id and name of the business whose texts the choice is about."""
    return policy.business_id, policy.business_name


def _append_despite_damage(
    conn: Connection, policy: SmsPolicy, what: str, append: Callable[[], RecordedEvent | None]
) -> RecordedEvent | None:
    """``append()`` (``what`` it appends) in a savepoint of its own; None, logged, when the
    ledger refuses it again."""
    try:
        with conn.begin_nested():
            event = append()
    except LEDGER_DAMAGE as error:
        logger.error(
            "business %s: the damaged consent ledger refused %s again (%s); only the stored "
            "inbound text records it",
            policy.business_id,
            what,
            _described(error),
        )
        return None
    if event is not None:
        logger.warning(
            "business %s: %s appended as #%d despite the damaged ledger",
            policy.business_id,
            event.kind.value,
            event.seq,
        )
    return event


def _revoke_projected_consent(
    conn: Connection,
    policy: SmsPolicy,
    number: str,
    method: ConsentMethod,
    at: datetime,
    note: str,
    message: MessageEvidence | None,
) -> RecordedEvent | None:
    """Revoke the consent the current-state projection names as in force; None when it names
    none."""
    state = consent_state(conn, policy.business_id, number)
    if state is None or state.status is not ConsentStatus.GRANTED or state.consent_hash is None:
        return None
    return revoke_consent(
        conn,
        policy.business_id,
        policy.business_name,
        number,
        state.consent_hash,
        method,
        at,
        at,
        note=note,
        message=message,
    )


def _end_owner_texts(
    conn: Connection,
    policy: SmsPolicy,
    number: str,
    method: ConsentMethod,
    at: datetime,
    note: str,
) -> RecordedEvent | None:
    """The owner phone's opt-out, when ``number`` is the owner's phone and its newest choice lets
    notification texts through; None otherwise."""
    owner = policy.owner_number
    if owner is None or number != owner:
        return None
    if not owner_notifications_allowed(conn, policy.business_id, owner):
        return None
    return record_owner_choice(conn, policy, False, method, at, note)


def _described(error: Exception) -> str:
    """The error on one line; for a database error only the driver's message, which names the
    constraint and key but not the statement's parameters (the evidence, with the number)."""
    described = str(error.orig) if isinstance(error, DBAPIError) else str(error)
    return " ".join(described.split())
