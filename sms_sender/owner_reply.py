"""A reply the owner writes to a caller: when it may go, and queuing it in the outbox.

A conversational reply is not a follow-up the caller agreed to in advance, so it has its own rule,
checked when the owner sends it and again by the dispatcher at send time: it may go while the
person texted the business in the last 24 hours (other than to opt out) or holds a consent that is
in force and unrevoked; never after an opt-out, never to an excluded number, never while a reply
that may be an opt-out waits for the owner's decision, and never when the number's consent history
cannot be read. Anything else is refused with the reason, a :class:`ReplyRefusal`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, select

from consent_ledger import GateReason, may_send
from sms_sender.inbound import open_hold
from sms_sender.keywords import ReplyIntent
from sms_sender.outbox import OutboxKind, OutboxMessage, PlannedText, count_sent, queue_text
from sms_sender.policy import SmsPolicy
from sms_sender.tables import sms_inbound

CONVERSATION_WINDOW = timedelta(hours=24)
"""How long after a person's text the business may answer it without their consent."""
MAX_REPLY_LENGTH = 640
"""The longest reply the owner may write (four segments of plain text)."""
_REPLY_KEY = re.compile(r"[0-9a-f]{32}")


class ReplyRefusal(StrEnum):
    """Why a reply to a number may not be sent."""

    OPTED_OUT = "opted_out"
    EXCLUDED = "excluded"
    HELD = "held_for_review"
    NO_PERMISSION = "no_permission"
    UNREADABLE = "consent_unreadable"


def reply_refusal(
    conn: Connection, policy: SmsPolicy, number: str, now: datetime
) -> ReplyRefusal | None:
    """Why the business of ``policy`` may not text ``number`` a reply at ``now``; None: it may."""
    if policy.excludes(number):
        return ReplyRefusal.EXCLUDED
    if open_hold(conn, policy.business_id, number):
        return ReplyRefusal.HELD
    decision = may_send(
        conn,
        policy.business_id,
        number,
        now,
        lambda since: count_sent(conn, policy.business_id, number, since),
    )
    if decision.reason is GateReason.REVOKED:
        return ReplyRefusal.OPTED_OUT
    if decision.reason is GateReason.INVALID_RECORD:
        return ReplyRefusal.UNREADABLE
    if decision.reason in (GateReason.ALLOWED, GateReason.CAP_REACHED):
        return None  # a consent in force; its cap is for automated texts
    if _texted_recently(conn, policy.business_id, number, now):
        return None
    return ReplyRefusal.NO_PERMISSION


def queue_owner_reply(
    conn: Connection,
    policy: SmsPolicy,
    from_number: str,
    to_number: str,
    body: str,
    reply_key: str,
    now: datetime,
) -> OutboxMessage:
    """Queue the owner's reply, due at once; ``reply_key`` (32 hex digits, from the form) makes a
    resent form queue it only once. Check :func:`reply_refusal` first, in the same transaction."""
    text = body.strip()
    if not text or len(text) > MAX_REPLY_LENGTH:
        raise ValueError(f"a reply is 1 to {MAX_REPLY_LENGTH} characters")
    if not _REPLY_KEY.fullmatch(reply_key):
        raise ValueError("a reply key is 32 hexadecimal digits")
    return queue_text(
        conn,
        PlannedText(
            business_id=policy.business_id,
            reference=f"reply-{reply_key}",
            to_number=to_number,
            from_number=from_number,
            kind=OutboxKind.OWNER_REPLY,
            body=text,
            consent_event_hash="",
            due_at=now,
        ),
    )


def _texted_recently(conn: Connection, business_id: str, number: str, now: datetime) -> bool:
    found = conn.execute(
        select(sms_inbound.c.id)
        .where(
            sms_inbound.c.business_id == business_id,
            sms_inbound.c.from_number == number,
            sms_inbound.c.intent != ReplyIntent.OPT_OUT.value,
            sms_inbound.c.received_at > now - CONVERSATION_WINDOW,
            sms_inbound.c.received_at <= now,
        )
        .limit(1)
    ).first()
    return found is not None
