"""A business's texts as its owner reads them: both ways, with where each stands.

:func:`texts_under_consents` gives the audit packet the texts sent under each consent.

Outbound texts come from the outbox (queued, sent, delivered, failed, cancelled, blocked, with
the reason), inbound ones from the texts received (with how each was understood, so an opt-out
stands out). The pages ask for the conversations (one per number, the latest first) a page at a
time, and for one number's texts in order; the database merges and orders both kinds, so a page
costs the same however long the history is. Everything here only reads. Sign-in codes texted to
the business's people are not texts of the business and are never listed; the sign-in link in a
call summary is shown hidden, so that nobody who reads the page can sign in as the owner's phone
with it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Select,
    String,
    Subquery,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
)

from consent_ledger import SentText, stored_instant
from sms_sender.keywords import ReplyIntent
from sms_sender.outbox import HANDED_TO_CARRIER, OWNER_KINDS, OutboxKind
from sms_sender.owner import hide_sign_in_links
from sms_sender.tables import UtcDateTime, outbox, sms_inbound
from sms_sender.thread import Direction


@dataclass(frozen=True)
class TextRecord:
    """One text between a business and ``number``.

    ``state`` is the outbound text's status (``OutboxStatus``) or the inbound text's intent
    (``ReplyIntent``); ``at`` is when it was received, sent, or (not sent yet) due. Outbound
    texts also carry their ``kind``, ``reason``, ``queued_at``, ``due_at`` and ``sent_at``. At
    the same instant a text we sent counts as after one received (it is the answer to it).
    """

    direction: Direction
    id: int
    number: str
    body: str
    state: str
    at: datetime
    kind: str | None = None
    reason: str | None = None
    queued_at: datetime | None = None
    due_at: datetime | None = None
    sent_at: datetime | None = None

    @property
    def is_opt_out(self) -> bool:
        """Whether this is a text in which the person asked for no more texts."""
        return self.direction is Direction.INBOUND and self.state == ReplyIntent.OPT_OUT.value


def texts_with_number(
    conn: Connection, business_id: str, number: str, latest: int
) -> list[TextRecord]:
    """The ``latest`` most recent texts between the business and ``number``, oldest first."""
    history = _history(business_id, number)
    newest = (
        select(history)
        .order_by(history.c.at.desc(), history.c.direction.desc(), history.c.id.desc())
        .limit(latest)
    )
    records = [_record(row) for row in conn.execute(newest)]
    records.reverse()
    return records


def count_texts_with_number(conn: Connection, business_id: str, number: str) -> int:
    """How many texts the business and ``number`` sent each other (planned ones included)."""
    return _count(conn, _history(business_id, number))


def texts_sent_for_calls(
    conn: Connection, business_id: str, call_sids: Collection[str]
) -> dict[str, int]:
    """For each of ``call_sids`` that has any, how many texts about it were handed to the
    carrier for the caller (the owner's own notices are not counted)."""
    if not call_sids:
        return {}
    query = (
        select(outbox.c.call_sid, func.count())
        .where(
            outbox.c.business_id == business_id,
            outbox.c.call_sid.in_(list(call_sids)),
            outbox.c.status.in_([status.value for status in HANDED_TO_CARRIER]),
            outbox.c.kind.not_in([kind.value for kind in OWNER_KINDS]),
        )
        .group_by(outbox.c.call_sid)
    )
    return {call_sid: int(count) for call_sid, count in conn.execute(query)}


@dataclass(frozen=True)
class Conversation:
    """The texts between a business and one number: how many, and when the latest was."""

    number: str
    texts: int
    last_at: datetime


def count_conversations(conn: Connection, business_id: str) -> int:
    """With how many numbers the business has texts."""
    history = _history(business_id, None)
    numbers = select(history.c.number).distinct().subquery()
    return int(conn.execute(select(func.count()).select_from(numbers)).scalar_one())


def conversations(
    conn: Connection, business_id: str, offset: int, limit: int
) -> list[Conversation]:
    """The business's conversations, the one with the latest text first: ``limit`` of them after
    skipping ``offset``."""
    history = _history(business_id, None)
    last_at = func.max(history.c.at)
    query = (
        select(history.c.number, func.count(), last_at)
        .group_by(history.c.number)
        .order_by(last_at.desc(), history.c.number)
        .offset(offset)
        .limit(limit)
    )
    return [
        Conversation(number, int(count), stored_instant(at))
        for number, count, at in conn.execute(query)
    ]


def texts_under_consents(
    conn: Connection, business_id: str, number: str | None, consent_hashes: Collection[str]
) -> list[SentText]:
    """The business's texts (to ``number`` only, when given) planned or sent under any of the
    consent events ``consent_hashes``, oldest first: the audit packet's log of what each consent
    was used for (``consent_ledger.TextLog``). Read through the (business, number) index."""
    wanted = set(consent_hashes)
    query = select(outbox).where(
        outbox.c.business_id == business_id, outbox.c.consent_event_hash != ""
    )
    if number is not None:
        query = query.where(outbox.c.to_number == number)
    rows = conn.execute(query.order_by(outbox.c.created_at, outbox.c.id))
    return [
        SentText(
            consent_event_hash=row.consent_event_hash,
            business_id=row.business_id,
            to_number=row.to_number,
            kind=row.kind,
            body=row.body,
            status=row.status,
            queued_at=row.created_at,
            sent_at=row.sent_at,
            message_sid=row.provider_message_id,
            reason=row.reason,
        )
        for row in rows
        if row.consent_event_hash in wanted
    ]


def _count(conn: Connection, history: Subquery) -> int:
    return int(conn.execute(select(func.count()).select_from(history)).scalar_one())


def _history(business_id: str, number: str | None) -> Subquery:
    """Outbound and inbound texts of the business (with ``number`` only, when given) as one
    relation with the columns of :class:`TextRecord`."""
    no_time = cast(null(), UtcDateTime())
    no_text = cast(null(), String())
    outbound: Select[tuple[object, ...]] = select(
        literal(Direction.OUTBOUND.value, String()).label("direction"),
        outbox.c.id,
        outbox.c.to_number.label("number"),
        outbox.c.body,
        outbox.c.status.label("state"),
        func.coalesce(outbox.c.sent_at, outbox.c.due_at, type_=UtcDateTime()).label("at"),
        outbox.c.kind,
        outbox.c.reason,
        outbox.c.created_at.label("queued_at"),
        outbox.c.due_at,
        outbox.c.sent_at,
    ).where(outbox.c.business_id == business_id, outbox.c.kind != OutboxKind.SIGN_IN_CODE.value)
    inbound: Select[tuple[object, ...]] = select(
        literal(Direction.INBOUND.value, String()),
        sms_inbound.c.id,
        sms_inbound.c.from_number,
        sms_inbound.c.body,
        sms_inbound.c.intent,
        sms_inbound.c.received_at,
        no_text,
        no_text,
        no_time,
        no_time,
        no_time,
    ).where(sms_inbound.c.business_id == business_id)
    if number is not None:
        outbound = outbound.where(outbox.c.to_number == number)
        inbound = inbound.where(sms_inbound.c.from_number == number)
    return union_all(outbound, inbound).subquery("text_history")


def _record(row: Row[Any]) -> TextRecord:
    fields = row._asdict()
    body = hide_sign_in_links(fields["body"])
    return TextRecord(**{**fields, "body": body, "direction": Direction(fields["direction"])})
