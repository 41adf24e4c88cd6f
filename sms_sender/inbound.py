"""Texts people send to a business's number: STOP, HELP, START, and everything else.

Each inbound text is stored once per Twilio MessageSid (a repeated webhook does nothing twice) in
the caller's thread, classified by ``keywords.classify_reply``, and acted on in the same
transaction:

- opt-out: every pending text to the number is cancelled and, when a consent is in force, a
  ``revoked`` event pointing at it is appended to the ledger, together. From the business's owner
  phone, while the owner gets notification texts, it also appends ``owner_notifications_opt_out``
  (``owner_choice``): an opt-out stops every text to a number, and a number that is both the
  owner's and a consenting caller's loses both. One confirmation is queued (the owner's says how
  to turn the texts back on), unless Twilio's Advanced Opt-Out already answered (``OptOutType``)
  or the number's previous opt-out or opt-in text was an opt-out too (a repeated STOP) and this
  one recorded nothing. A number with no consent in force gets no ledger event — there is nothing
  to point at, and the gate already refuses it every consented text — but its text is kept here
  and its confirmation in the outbox. A damaged ledger changes none of this but the events
  (``text_choices``): the texts are cancelled and confirmed all the same;
- HELP: the HELP reply (not counted against any cap), unless Twilio already answered;
- START / UNSTOP, or a bare YES from a number that opted out: a ``resubscribed`` event, from the
  owner's phone after an opt-out an ``owner_notifications_opt_in`` event, and a confirmation;
  nothing (and no confirmation) when the number's ledger history is damaged;
- a possible opt-out ("Stop. Who is this?", "wrong number", "stpo"): handled like a message and
  held for the owner (``sms_reply_holds``); while the hold is undecided the dispatcher pauses every
  automated text to the number (``open_hold``). The owner decides on the texts page
  (``decide_held_reply``): an opt-out is revoked like STOP (texts cancelled, ``revoked`` appended,
  no confirmation — it would come late), otherwise the paused texts go on. A later STOP or START
  from the number decides its open holds too;
- anything else: kept in the thread, forwarded to the owner (the dispatcher sends it only while
  the owner's opt-in stands), and it cancels the pending no-reply follow-up.

Replies go through the outbox like every other text, so each is recorded and sent by the
dispatcher. Texts from one number to one business are acted on one at a time under the number's
lock (``advisory_lock.lock_number``), taken before any of its outbox rows, so two STOPs sent
together are confirmed once, and a STOP never deadlocks with a send to the number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from consent_ledger import ConsentMethod, MessageEvidence, RecordedEvent, revoke
from sms_sender.advisory_lock import lock_number
from sms_sender.keywords import ReplyIntent, classify_reply, is_bare_yes, is_opt_out_keyword
from sms_sender.outbox import (
    OutboxKind,
    OutboxMessage,
    PlannedText,
    cancel_pending,
    is_e164,
    queue_text,
)
from sms_sender.policy import SmsPolicy
from sms_sender.tables import insert_once, sms_inbound, sms_reply_holds
from sms_sender.templates import TemplateName, shipped_template
from sms_sender.text_choices import LEDGER_DAMAGE, TextedChoice, record_opt_in, record_opt_out

logger = logging.getLogger(__name__)

MAX_MESSAGE_SID_LENGTH = 64
MAX_STORED_BODY = 1600  # ten segments of GSM-7; Twilio concatenates no more than that
ADVANCED_OPT_OUT_TYPES = frozenset({"STOP", "START", "HELP"})
_CANCELLED_BY_OPT_OUT = frozenset(OutboxKind) - {OutboxKind.OPT_OUT_CONFIRMATION}
"""An opt-out cancels every pending text but the confirmation of an earlier opt-out."""
_OPT_OUTS_AND_OPT_INS = (ReplyIntent.OPT_OUT.value, ReplyIntent.OPT_IN.value)
HOLD_OPT_OUT = "opt_out"
HOLD_NOT_OPT_OUT = "not_opt_out"
HOLD_SUPERSEDED = "superseded"
HOLD_DECISIONS = frozenset({HOLD_OPT_OUT, HOLD_NOT_OPT_OUT})


class InboundError(ValueError):
    """An inbound text that cannot be taken: no MessageSid, or numbers that are not E.164."""


@dataclass(frozen=True)
class InboundSms:
    """One inbound text, as Twilio's webhook describes it."""

    message_sid: str
    from_number: str
    to_number: str
    body: str
    num_media: int = 0
    opt_out_type: str | None = None

    def __post_init__(self) -> None:
        sid = self.message_sid
        if not sid or len(sid) > MAX_MESSAGE_SID_LENGTH or not sid.isalnum():
            raise InboundError(f"not a MessageSid: {sid[:80]!r}")
        for name in ("from_number", "to_number"):
            if not is_e164(getattr(self, name)):
                raise InboundError(f"{name} is not an E.164 number")
        if self.opt_out_type is not None and self.opt_out_type not in ADVANCED_OPT_OUT_TYPES:
            raise InboundError(f"unknown OptOutType {self.opt_out_type[:20]!r}")


@dataclass(frozen=True)
class InboundOutcome:
    """What handling an inbound text did: ``ledger_event`` is the caller's revocation or
    resubscription, ``owner_event`` the owner phone's choice about notification texts;
    ``ledger_damaged`` says the number's ledger events could not be read or appended to."""

    intent: ReplyIntent
    duplicate: bool = False
    ledger_event: RecordedEvent | None = None
    owner_event: RecordedEvent | None = None
    cancelled: int = 0
    reply: OutboxMessage | None = None
    forwarded: OutboxMessage | None = None
    ledger_damaged: bool = False


def handle_inbound(
    conn: Connection, sms: InboundSms, policy: SmsPolicy, received_at: datetime
) -> InboundOutcome:
    """Store ``sms`` in its thread and act on it, inside the caller's transaction."""
    intent = classify_reply(sms.body)
    if not _store(conn, sms, policy, intent, received_at):
        logger.info("inbound %s already handled", sms.message_sid, extra=_log(policy))
        return InboundOutcome(intent=intent, duplicate=True)
    lock_number(conn, policy.business_id, sms.from_number)
    if intent is ReplyIntent.OPT_OUT:
        return _opt_out(conn, sms, policy, received_at)
    if intent is ReplyIntent.HELP:
        return _help(conn, sms, policy, received_at)
    if intent is ReplyIntent.OPT_IN:
        return _opt_in(conn, sms, policy, received_at)
    if intent is ReplyIntent.POSSIBLE_OPT_OUT:
        return _hold(conn, sms, policy, received_at)
    if is_bare_yes(sms.body):
        outcome = _opt_in(conn, sms, policy, received_at)
        if outcome.ledger_event is not None or outcome.owner_event is not None:
            _restate_intent(conn, sms, ReplyIntent.OPT_IN)
            return outcome
    return _message(conn, sms, policy, received_at)


def _opt_out(
    conn: Connection, sms: InboundSms, policy: SmsPolicy, received_at: datetime
) -> InboundOutcome:
    cancelled = cancel_pending(
        conn, policy.business_id, sms.from_number, "revoked by text", kinds=_CANCELLED_BY_OPT_OUT
    )
    _close_holds(conn, policy.business_id, sms.from_number, received_at)
    method = ConsentMethod.SMS_KEYWORD if is_opt_out_keyword(sms.body) else ConsentMethod.SMS_TEXT
    recorded = record_opt_out(
        conn, policy, sms.from_number, method, received_at, _carried_by(sms), _words(sms)
    )
    event, owner_event = recorded.caller_event, recorded.owner_event
    reply = None
    if event is not None or owner_event is not None or not _opted_out_already(conn, sms, policy):
        reply = _confirm(
            conn,
            sms,
            policy,
            TemplateName.OPT_OUT if owner_event is None else TemplateName.OWNER_OPT_OUT,
            OutboxKind.OPT_OUT_CONFIRMATION,
            owner_event or event,
            received_at,
        )
    logger.info(
        "opt-out: %d pending texts cancelled, revocation %s, owner texts %s, %s",
        cancelled,
        _revocation_outcome(recorded),
        "turned off" if owner_event else "not concerned",
        "confirmed" if reply else "not confirmed again",
        extra=_log(policy),
    )
    return InboundOutcome(
        ReplyIntent.OPT_OUT,
        ledger_event=event,
        owner_event=owner_event,
        cancelled=cancelled,
        reply=reply,
        ledger_damaged=recorded.ledger_damaged,
    )


def _revocation_outcome(recorded: TextedChoice) -> str:
    if recorded.caller_event is not None:
        return "recorded"
    if recorded.ledger_damaged:
        return "not recorded (the ledger is damaged)"
    return "not needed (no consent in force)"


def _opted_out_already(conn: Connection, sms: InboundSms, policy: SmsPolicy) -> bool:
    """Whether the number's latest other opt-out or opt-in text to this business was an opt-out:
    then this one repeats an opt-out that had its confirmation, and gets none."""
    return opted_out_by_text(conn, policy.business_id, sms.from_number, besides=sms.message_sid)


def opted_out_by_text(
    conn: Connection, business_id: str, number: str, *, besides: str | None = None
) -> bool:
    """Whether ``number``'s latest opt-out or opt-in text to ``business_id`` (but the text
    ``besides``) was an opt-out: it stands even where no consent was in force to revoke."""
    latest = conn.execute(
        select(sms_inbound.c.intent)
        .where(
            sms_inbound.c.business_id == business_id,
            sms_inbound.c.from_number == number,
            sms_inbound.c.message_sid != (besides or ""),
            sms_inbound.c.intent.in_(_OPT_OUTS_AND_OPT_INS),
        )
        .order_by(sms_inbound.c.id.desc())
        .limit(1)
    ).scalar()
    return latest == ReplyIntent.OPT_OUT.value


def _help(
    conn: Connection, sms: InboundSms, policy: SmsPolicy, received_at: datetime
) -> InboundOutcome:
    if sms.opt_out_type is not None:
        return InboundOutcome(ReplyIntent.HELP)
    body = shipped_template(TemplateName.HELP).render(
        business_name=policy.business_name, help_contact=policy.help_contact
    )
    reply = _reply(conn, sms, policy, OutboxKind.HELP_REPLY, body, "", received_at)
    return InboundOutcome(ReplyIntent.HELP, reply=reply)


def _opt_in(
    conn: Connection, sms: InboundSms, policy: SmsPolicy, received_at: datetime
) -> InboundOutcome:
    recorded = record_opt_in(
        conn, policy, sms.from_number, received_at, _carried_by(sms), _words(sms)
    )
    event, owner_event = recorded.caller_event, recorded.owner_event
    reply = None
    if event is not None or owner_event is not None or not is_bare_yes(sms.body):
        _close_holds(conn, policy.business_id, sms.from_number, received_at)
    if event is not None or owner_event is not None:
        reply = _confirm(
            conn,
            sms,
            policy,
            TemplateName.OPT_IN if owner_event is None else TemplateName.OWNER_OPT_IN,
            OutboxKind.OPT_IN_CONFIRMATION,
            owner_event or event,
            received_at,
        )
    return InboundOutcome(
        ReplyIntent.OPT_IN,
        ledger_event=event,
        owner_event=owner_event,
        reply=reply,
        ledger_damaged=recorded.ledger_damaged,
    )


def _message(
    conn: Connection, sms: InboundSms, policy: SmsPolicy, received_at: datetime
) -> InboundOutcome:
    cancelled = cancel_pending(
        conn,
        policy.business_id,
        sms.from_number,
        "the caller replied",
        kinds=(OutboxKind.NO_REPLY_FOLLOW_UP,),
    )
    forwarded = None
    if policy.owner_number is not None and policy.owner_number != sms.from_number:
        body = shipped_template(TemplateName.OWNER_FORWARD).render(
            business_name=policy.business_name,
            caller_number=sms.from_number,
            body=sms.body or "(a picture or file)",
        )
        forwarded = queue_text(
            conn,
            PlannedText(
                business_id=policy.business_id,
                reference=sms.message_sid,
                to_number=policy.owner_number,
                from_number=sms.to_number,
                kind=OutboxKind.OWNER_FORWARD,
                body=body,
                consent_event_hash="",
                due_at=received_at,
            ),
        )
    return InboundOutcome(ReplyIntent.MESSAGE, cancelled=cancelled, forwarded=forwarded)


def _hold(
    conn: Connection, sms: InboundSms, policy: SmsPolicy, received_at: datetime
) -> InboundOutcome:
    """A possible opt-out: a message to the owner, held for the owner's decision."""
    outcome = _message(conn, sms, policy, received_at)
    conn.execute(
        insert(sms_reply_holds).values(
            message_sid=sms.message_sid,
            business_id=policy.business_id,
            from_number=sms.from_number,
            held_at=received_at,
        )
    )
    logger.warning(
        "a reply that may be an opt-out is held for the owner; texts to the number are paused",
        extra=_log(policy),
    )
    return InboundOutcome(
        ReplyIntent.POSSIBLE_OPT_OUT, cancelled=outcome.cancelled, forwarded=outcome.forwarded
    )


def _close_holds(conn: Connection, business_id: str, number: str, at: datetime) -> None:
    """A STOP or START from ``number`` decides its open holds: it said what it wants."""
    conn.execute(
        update(sms_reply_holds)
        .where(
            sms_reply_holds.c.business_id == business_id,
            sms_reply_holds.c.from_number == number,
            sms_reply_holds.c.decision.is_(None),
        )
        .values(decision=HOLD_SUPERSEDED, decided_at=at)
    )


def open_hold(conn: Connection, business_id: str, number: str) -> bool:
    """Whether a reply from ``number`` to the business waits for the owner's decision."""
    found = conn.execute(
        select(sms_reply_holds.c.id)
        .where(
            sms_reply_holds.c.business_id == business_id,
            sms_reply_holds.c.from_number == number,
            sms_reply_holds.c.decision.is_(None),
        )
        .limit(1)
    ).first()
    return found is not None


@dataclass(frozen=True)
class HeldReply:
    """A reply held for the owner's decision."""

    id: int
    message_sid: str
    from_number: str
    body: str
    held_at: datetime


def held_replies(conn: Connection, business_id: str, limit: int = 100) -> list[HeldReply]:
    """The business's replies that wait for the owner's decision, oldest first."""
    rows = conn.execute(
        select(
            sms_reply_holds.c.id,
            sms_reply_holds.c.message_sid,
            sms_reply_holds.c.from_number,
            sms_reply_holds.c.held_at,
            sms_inbound.c.body,
        )
        .join(sms_inbound, sms_inbound.c.message_sid == sms_reply_holds.c.message_sid)
        .where(
            sms_reply_holds.c.business_id == business_id,
            sms_reply_holds.c.decision.is_(None),
        )
        .order_by(sms_reply_holds.c.held_at, sms_reply_holds.c.id)
        .limit(limit)
    )
    return [
        HeldReply(row.id, row.message_sid, row.from_number, row.body, row.held_at) for row in rows
    ]


@dataclass(frozen=True)
class HeldDecision:
    """What the owner's decision on a held reply did; ``decision`` is the one on record (an
    earlier one when the hold was decided already)."""

    from_number: str
    decision: str
    newly_decided: bool
    cancelled: int = 0
    ledger_event: RecordedEvent | None = None


def decide_held_reply(
    conn: Connection,
    business_id: str,
    business_name: str,
    hold_id: int,
    decision: str,
    at: datetime,
) -> HeldDecision | None:
    """Record the owner's ``decision`` (``opt_out`` or ``not_opt_out``) on the business's held
    reply ``hold_id``; None when the business has no such hold. An opt-out cancels the number's
    pending texts and revokes its consent, as STOP does; the other releases its paused texts."""
    if decision not in HOLD_DECISIONS:
        raise ValueError(f"not a decision on a held reply: {decision!r}")
    where = (sms_reply_holds.c.id == hold_id, sms_reply_holds.c.business_id == business_id)
    found = conn.execute(
        select(sms_reply_holds.c.from_number, sms_reply_holds.c.held_at).where(*where)
    ).first()
    if found is None:
        return None
    number, held_at = found.from_number, found.held_at
    lock_number(conn, business_id, number)
    row = conn.execute(
        select(sms_reply_holds.c.decision, sms_reply_holds.c.message_sid)
        .where(*where)
        .with_for_update()
    ).one()
    words = conn.execute(
        select(sms_inbound.c.body).where(sms_inbound.c.message_sid == row.message_sid)
    ).scalar_one()
    if row.decision is not None:
        return HeldDecision(number, row.decision, newly_decided=False)
    conn.execute(update(sms_reply_holds).where(*where).values(decision=decision, decided_at=at))
    log = {"business_id": business_id}
    if decision == HOLD_NOT_OPT_OUT:
        logger.info("the owner released a held reply; texts to the number go on", extra=log)
        return HeldDecision(number, decision, newly_decided=True)
    cancelled = cancel_pending(
        conn, business_id, number, "revoked by text (owner's review)", kinds=_CANCELLED_BY_OPT_OUT
    )
    conn.execute(
        update(sms_inbound)
        .where(sms_inbound.c.message_sid == row.message_sid)
        .values(intent=ReplyIntent.OPT_OUT.value)
    )
    event = None
    try:
        with conn.begin_nested():
            event = revoke(
                conn,
                business_id,
                business_name,
                number,
                ConsentMethod.SMS_TEXT,
                min(held_at, at),
                at,
                note=f"texted {row.message_sid}; judged an opt-out by the owner",
                message=MessageEvidence(row.message_sid, words),
            )
    except LEDGER_DAMAGE:
        logger.exception("the owner's opt-out could not be recorded in the ledger", extra=log)
    logger.info(
        "the owner judged a held reply an opt-out: %d pending texts cancelled", cancelled, extra=log
    )
    return HeldDecision(number, decision, True, cancelled, event)


def _confirm(
    conn: Connection,
    sms: InboundSms,
    policy: SmsPolicy,
    template: TemplateName,
    kind: OutboxKind,
    event: RecordedEvent | None,
    received_at: datetime,
) -> OutboxMessage | None:
    """Confirm an opt-out or opt-in (resting on the ledger ``event``, if any), unless Twilio's
    Advanced Opt-Out already did."""
    if sms.opt_out_type is not None:
        return None
    chosen = shipped_template(template)
    values = {"business_name": policy.business_name, "help_contact": policy.help_contact}
    body = chosen.render(**{name: values[name] for name in chosen.spec.fields})
    event_hash = "" if event is None else event.hash
    return _reply(conn, sms, policy, kind, body, event_hash, received_at)


def _reply(
    conn: Connection,
    sms: InboundSms,
    policy: SmsPolicy,
    kind: OutboxKind,
    body: str,
    event_hash: str,
    received_at: datetime,
) -> OutboxMessage:
    return queue_text(
        conn,
        PlannedText(
            business_id=policy.business_id,
            reference=sms.message_sid,
            to_number=sms.from_number,
            from_number=sms.to_number,
            kind=kind,
            body=body,
            consent_event_hash=event_hash,
            due_at=received_at,
        ),
    )


def _store(
    conn: Connection,
    sms: InboundSms,
    policy: SmsPolicy,
    intent: ReplyIntent,
    received_at: datetime,
) -> bool:
    """Insert the inbound row; False when this MessageSid was stored before."""
    values = {
        "message_sid": sms.message_sid,
        "business_id": policy.business_id,
        "from_number": sms.from_number,
        "to_number": sms.to_number,
        "body": sms.body[:MAX_STORED_BODY],
        "intent": intent.value,
        "opt_out_type": sms.opt_out_type,
        "num_media": max(sms.num_media, 0),
        "received_at": received_at,
    }
    statement = insert_once(conn.dialect.name, sms_inbound, values, ["message_sid"])
    inserted = conn.execute(statement.returning(sms_inbound.c.id))
    return inserted.first() is not None


def _restate_intent(conn: Connection, sms: InboundSms, intent: ReplyIntent) -> None:
    conn.execute(
        update(sms_inbound)
        .where(sms_inbound.c.message_sid == sms.message_sid)
        .values(intent=intent.value)
    )


def _carried_by(sms: InboundSms) -> str:
    """The note on an owner's choice made by text: which inbound text made it."""
    return f"texted {sms.message_sid}"


def _words(sms: InboundSms) -> MessageEvidence:
    """The inbound text as the ledger keeps it: its MessageSid and the words as stored here."""
    return MessageEvidence(sms.message_sid, sms.body[:MAX_STORED_BODY])


def _log(policy: SmsPolicy) -> dict[str, str]:
    return {"business_id": policy.business_id}
