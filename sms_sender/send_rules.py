"""Which check a text must pass at send time, by what it is for — and the verdict.

- Consented texts (the confirmation and the follow-ups) pass the consent gate, the business's
  exclusion list, a rolling 24-hour cap (the business's maximum, and three in Florida, Oklahoma and
  Maryland) so that repeat calls never push a number past it, and — for follow-ups — the
  recipient's daytime send window; outside it they are deferred, or blocked when the window would
  open only after the consent expires.
- Replies to a keyword (HELP, the single opt-out confirmation, the opt-in confirmation) go to a
  number that may have revoked or never consented: the person asked for them. The opt-out
  confirmation must leave within five minutes of the STOP, or not at all.
- The owner's own replies to a caller follow ``owner_reply.reply_refusal``: a recent text from
  the person or a consent in force, never after an opt-out.
- Owner notices go only to the business's owner number, and only while the owner's opt-in stands.
- A sign-in code goes to the person who asked for it on the owner pages, while it still works
  (:data:`SIGN_IN_CODE_LIFETIME` after it was asked for), or not at all.

Anything unknown (a kind, a business with no policy) blocks: the rules fail closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from consent_ledger import may_send
from sms_sender.local_time import (
    STATE_CAP_PERIOD,
    next_send_time,
    recipient_zones,
    state_cap,
)
from sms_sender.outbox import (
    CONSENTED_KINDS,
    FOLLOW_UP_KINDS,
    OWNER_KINDS,
    OutboxKind,
    OutboxMessage,
    count_sent,
)
from sms_sender.owner_reply import reply_refusal
from sms_sender.policy import MAX_TEXTS_PER_CONSENT, SmsPolicy

OPT_OUT_CONFIRMATION_WINDOW = timedelta(minutes=5)
SIGN_IN_CODE_LIFETIME = timedelta(minutes=10)
"""How long a texted sign-in code works; one that could only arrive later is not sent."""

PolicySource = Callable[[Connection, str], SmsPolicy | None]
"""The texting policy of a business id (None for an unknown business)."""
OwnerOptIn = Callable[[Connection, str, str], bool]
"""Whether the owner of a business opted in to notices at a number."""


def owner_never_opted_in(_conn: Connection, _business_id: str, _owner_number: str) -> bool:
    """The owner check until one is wired: no owner notice is ever sent."""
    return False


@dataclass(frozen=True)
class SendRules:
    """Where the dispatcher finds each business's policy and the owners' opt-ins."""

    policies: PolicySource | None = None
    owner_opted_in: OwnerOptIn = owner_never_opted_in


@dataclass(frozen=True)
class Verdict:
    """Send now, defer until ``defer_until``, or block for ``reason``."""

    allowed: bool
    reason: str
    defer_until: datetime | None = None
    consent_window_end: datetime | None = None


ALLOW = Verdict(True, "allowed")


def _block(reason: str) -> Verdict:
    return Verdict(False, reason)


def judge(conn: Connection, message: OutboxMessage, now: datetime, rules: SendRules) -> Verdict:
    """The verdict on sending ``message`` at ``now``; call it holding the row's lock."""
    policy = rules.policies(conn, message.business_id) if rules.policies else None
    if message.kind in CONSENTED_KINDS:
        return _judge_consented(conn, message, now, policy)
    if message.kind is OutboxKind.OPT_OUT_CONFIRMATION:
        late = now > message.due_at + OPT_OUT_CONFIRMATION_WINDOW
        return _block("opt_out_confirmation_too_late") if late else ALLOW
    if message.kind in (OutboxKind.HELP_REPLY, OutboxKind.OPT_IN_CONFIRMATION):
        return ALLOW
    if message.kind in OWNER_KINDS:
        return _judge_owner(conn, message, policy, rules)
    if message.kind is OutboxKind.OWNER_REPLY:
        return _judge_owner_reply(conn, message, now, policy)
    if message.kind is OutboxKind.SIGN_IN_CODE:
        late = now >= message.due_at + SIGN_IN_CODE_LIFETIME
        return _block("sign_in_code_expired") if late else ALLOW
    return _block("unknown_kind")


def _judge_consented(
    conn: Connection, message: OutboxMessage, now: datetime, policy: SmsPolicy | None
) -> Verdict:
    if policy is None and message.kind is not OutboxKind.CONFIRMATION:
        return _block("no_policy")
    if policy is not None and policy.excludes(message.to_number):
        return _block("excluded")
    decision = may_send(
        conn,
        message.business_id,
        message.to_number,
        now,
        lambda since: count_sent(conn, message.business_id, message.to_number, since),
    )
    if not decision.allowed:
        return _block(decision.reason.value)
    capped = _rolling_cap_reached(conn, message, now, policy)
    if capped is not None:
        return _block(capped)
    if message.kind in FOLLOW_UP_KINDS and policy is not None:
        return _in_send_window(message, now, policy, decision.window_end)
    return ALLOW


def _rolling_cap_reached(
    conn: Connection, message: OutboxMessage, now: datetime, policy: SmsPolicy | None
) -> str | None:
    """Why the last 24 hours already hold as many texts as allowed, or None."""
    sent = count_sent(conn, message.business_id, message.to_number, now - STATE_CAP_PERIOD)
    business_cap = policy.max_texts if policy is not None else MAX_TEXTS_PER_CONSENT
    if sent >= business_cap:
        return "rolling_cap_reached"
    law_cap = state_cap(message.to_number) if policy is None or policy.state_caps else None
    if law_cap is not None and sent >= law_cap:
        return "state_cap_reached"
    return None


def _in_send_window(
    message: OutboxMessage, now: datetime, policy: SmsPolicy, window_end: datetime | None
) -> Verdict:
    zones = recipient_zones(message.to_number, policy.time_zone)
    opens = next_send_time(now, zones, policy.send_window_start, policy.send_window_end)
    if opens == now:
        return ALLOW
    if window_end is not None and opens >= window_end:
        return _block("expired_before_send_window")
    return Verdict(False, "quiet_hours", defer_until=opens, consent_window_end=window_end)


def _judge_owner_reply(
    conn: Connection, message: OutboxMessage, now: datetime, policy: SmsPolicy | None
) -> Verdict:
    if policy is None:
        return _block("no_policy")
    refusal = reply_refusal(conn, policy, message.to_number, now)
    return ALLOW if refusal is None else _block(refusal.value)


def _judge_owner(
    conn: Connection, message: OutboxMessage, policy: SmsPolicy | None, rules: SendRules
) -> Verdict:
    if policy is None or policy.owner_number != message.to_number:
        return _block("not_the_owner")
    if not rules.owner_opted_in(conn, message.business_id, message.to_number):
        return _block("owner_not_opted_in")
    return ALLOW
