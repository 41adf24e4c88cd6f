"""The plan of texts after a call in which the caller opted in: the confirmation at once, then the
business's optional follow-ups, never more than its maximum, never after the consent expires. The
confirmation says so: at most that many texts, until the consent expires.

Repeat calls from one number share one budget: texts sent or still planned to the number in the
last 24 hours count against the business's maximum (and the three-a-day state cap), so a second
call never pushes the number past it. Follow-ups are placed in the recipient's daytime send
window; one that could only go after the consent expires is not planned at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, or_, select

from sms_sender.local_time import STATE_CAP_PERIOD, next_send_time, recipient_zones, state_cap
from sms_sender.outbox import (
    CONSENTED_KINDS,
    HANDED_TO_CARRIER,
    PENDING,
    OutboxKind,
    OutboxMessage,
    PlannedText,
    queue_confirmation,
    queue_text,
)
from sms_sender.policy import SmsPolicy
from sms_sender.tables import outbox
from sms_sender.templates import (
    ConfirmationRequest,
    ConfirmationTerms,
    TemplateName,
    booking_link,
    shipped_template,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextPlan:
    """The rows queued for one call, and why any planned text was left out."""

    queued: tuple[OutboxMessage, ...]
    left_out: tuple[str, ...]


def plan_texts(
    conn: Connection,
    request: ConfirmationRequest,
    policy: SmsPolicy,
    ended_at: datetime,
    consent_expires_at: datetime,
) -> TextPlan:
    """Queue the confirmation and the follow-ups ``policy`` asks for, inside the caller's
    transaction (the one that records the consent). Idempotent per call."""
    if policy.business_id != request.business_id:
        raise ValueError("the policy is not the request's business's")
    if policy.excludes(request.to_number):
        logger.info("caller is on the exclusion list; no texts", extra=_log(request))
        return TextPlan((), ("excluded",))
    cap = _cap(request, policy)
    budget = _budget(conn, request, cap, ended_at)
    terms = ConfirmationTerms(cap, consent_expires_at, policy.time_zone, policy.booking_url)
    queued: list[OutboxMessage] = []
    left_out: list[str] = []
    for kind, due_at in _wanted(request, policy, ended_at):
        if due_at >= consent_expires_at:
            left_out.append(f"{kind.value}: after the consent expires")
        elif len(queued) >= budget:
            left_out.append(f"{kind.value}: over the cap")
        else:
            queued.append(_queue(conn, request, policy, kind, due_at, terms))
    return TextPlan(tuple(queued), tuple(left_out))


def _wanted(
    request: ConfirmationRequest, policy: SmsPolicy, ended_at: datetime
) -> list[tuple[OutboxKind, datetime]]:
    zones = recipient_zones(request.to_number, policy.time_zone)
    wanted = [(OutboxKind.CONFIRMATION, ended_at)]
    for kind, delay in (
        (OutboxKind.NO_REPLY_FOLLOW_UP, policy.no_reply_follow_up_after),
        (OutboxKind.CALLBACK_CHECK, policy.callback_check_after),
    ):
        if delay is not None:
            due = next_send_time(
                ended_at + delay, zones, policy.send_window_start, policy.send_window_end
            )
            wanted.append((kind, due))
    return wanted


def _cap(request: ConfirmationRequest, policy: SmsPolicy) -> int:
    """The most consented texts the number may get in 24 hours: the business's maximum, or the
    number's state's cap when that is lower (what the confirmation promises at most)."""
    law_cap = state_cap(request.to_number) if policy.state_caps else None
    return policy.max_texts if law_cap is None else min(policy.max_texts, law_cap)


def _budget(conn: Connection, request: ConfirmationRequest, cap: int, now: datetime) -> int:
    """How many more consented texts this number may get in the 24 hours from ``now``."""
    since = now - STATE_CAP_PERIOD
    already = conn.execute(
        select(func.count())
        .select_from(outbox)
        .where(
            outbox.c.business_id == request.business_id,
            outbox.c.to_number == request.to_number,
            outbox.c.call_sid != request.call_sid,
            outbox.c.kind.in_([kind.value for kind in CONSENTED_KINDS]),
            or_(
                outbox.c.status.in_([status.value for status in PENDING]),
                (outbox.c.status.in_([status.value for status in HANDED_TO_CARRIER]))
                & (outbox.c.sent_at >= since),
            ),
        )
    ).scalar_one()
    return max(cap - int(already), 0)


def _queue(
    conn: Connection,
    request: ConfirmationRequest,
    policy: SmsPolicy,
    kind: OutboxKind,
    due_at: datetime,
    terms: ConfirmationTerms,
) -> OutboxMessage:
    if kind is OutboxKind.CONFIRMATION:
        return queue_confirmation(conn, request, due_at, terms)
    link = booking_link(policy.booking_url)
    if kind is OutboxKind.NO_REPLY_FOLLOW_UP:
        body = shipped_template(TemplateName.NO_REPLY_FOLLOW_UP).render(
            business_name=policy.business_name, help_contact=policy.help_contact, booking_link=link
        )
    else:
        body = shipped_template(TemplateName.CALLBACK_CHECK).render(
            business_name=policy.business_name, booking_link=link
        )
    return queue_text(
        conn,
        PlannedText(
            business_id=request.business_id,
            reference=request.call_sid,
            to_number=request.to_number,
            from_number=request.from_number,
            kind=kind,
            body=body,
            consent_event_hash=request.consent_event_hash,
            due_at=due_at,
        ),
    )


def _log(request: ConfirmationRequest) -> dict[str, str]:
    return {"business_id": request.business_id, "call_sid": request.call_sid}
