"""Replies that may be opt-outs: held for the owner, texts to the number paused (deferred, not
cancelled) until the owner decides; the owner's "opt-out" revokes like STOP, "not an opt-out"
releases the texts; a later STOP or START decides the hold too. And an opt-out suppresses texts
for good (at least ten years) until the person opts back in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from consent_ledger import ConsentMethod, EventKind, events_for_number, may_send, revoke
from consent_ledger.gate import GateReason
from sms_sender.dispatch import HELD_REPLY, HELD_REPLY_DELAY, dispatch_due
from sms_sender.inbound import (
    HOLD_NOT_OPT_OUT,
    HOLD_OPT_OUT,
    HOLD_SUPERSEDED,
    HeldDecision,
    decide_held_reply,
    handle_inbound,
    held_replies,
    open_hold,
)
from sms_sender.keywords import ReplyIntent
from sms_sender.local_transport import LocalSmsTransport
from sms_sender.outbox import OutboxKind, OutboxStatus, list_outbox
from sms_sender.tables import sms_inbound, sms_reply_holds
from tests.conftest import BACKENDS
from tests.sms_support import (
    BUSINESS,
    CALLER,
    CONSENTED_AT,
    NOW,
    POLICY,
    RULES,
    grant,
    queue,
    sms_engine,
    text,
)

OTHER_CALLER = "+15125550177"


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with sms_engine(request.param, tmp_path, "held_replies") as database:
        yield database


def receive(engine: Engine, body: str, number: str = CALLER, at: datetime = NOW) -> ReplyIntent:
    with engine.begin() as conn:
        return handle_inbound(conn, text(body, number), POLICY, at).intent


def the_hold(engine: Engine) -> int:
    with engine.begin() as conn:
        (held,) = held_replies(conn, BUSINESS)
    return held.id


def confirmation_status(engine: Engine, number: str = CALLER) -> tuple[OutboxStatus, str | None]:
    with engine.begin() as conn:
        (row,) = [
            m
            for m in list_outbox(conn)
            if m.kind is OutboxKind.CONFIRMATION and m.to_number == number
        ]
    return row.status, row.reason


def decide(
    engine: Engine, hold_id: int, decision: str, business: str = BUSINESS
) -> HeldDecision | None:
    with engine.begin() as conn:
        return decide_held_reply(
            conn, business, "Acme Plumbing", hold_id, decision, NOW + timedelta(minutes=30)
        )


def test_a_possible_opt_out_is_held_and_pauses_texts_without_cancelling_them(
    engine: Engine,
) -> None:
    consent = grant(engine)
    queue(engine, consent=consent, due_at=NOW)
    queue(engine, "CA0002", number=OTHER_CALLER, due_at=NOW)

    assert receive(engine, "Stop. Who is this?") is ReplyIntent.POSSIBLE_OPT_OUT
    with engine.begin() as conn:
        assert open_hold(conn, BUSINESS, CALLER)
        assert not open_hold(conn, BUSINESS, OTHER_CALLER)
        (held,) = held_replies(conn, BUSINESS)
        stored = conn.execute(select(sms_inbound.c.intent)).scalar_one()
    assert held.body == "Stop. Who is this?" and held.from_number == CALLER
    assert stored == "possible_opt_out"

    report = dispatch_due(engine, LocalSmsTransport(), NOW + timedelta(minutes=1), rules=RULES)
    assert report.deferred == 1
    assert confirmation_status(engine) == (OutboxStatus.SCHEDULED, HELD_REPLY)
    # later passes keep deferring it while the hold is undecided
    later = NOW + timedelta(minutes=1) + HELD_REPLY_DELAY
    assert dispatch_due(engine, LocalSmsTransport(), later, rules=RULES).sent == 0
    assert confirmation_status(engine)[0] is OutboxStatus.SCHEDULED


def test_the_owner_judging_it_an_opt_out_revokes_and_cancels(engine: Engine) -> None:
    consent = grant(engine)
    queue(engine, consent=consent, due_at=NOW + timedelta(hours=1))
    receive(engine, "wrong number")
    hold_id = the_hold(engine)

    outcome = decide(engine, hold_id, HOLD_OPT_OUT)

    assert outcome is not None
    with engine.begin() as conn:
        kinds = [event.kind for event in events_for_number(conn, BUSINESS, CALLER)]
        assert not open_hold(conn, BUSINESS, CALLER)
        assert held_replies(conn, BUSINESS) == []
        stored = conn.execute(select(sms_inbound.c.intent)).scalar_one()
        decision = conn.execute(select(sms_reply_holds.c.decision)).scalar_one()
    assert kinds[-1] is EventKind.REVOKED
    assert stored == "opt_out" and decision == HOLD_OPT_OUT
    with engine.begin() as conn:
        revocation = events_for_number(conn, BUSINESS, CALLER)[-1].evidence()
        sid = conn.execute(select(sms_inbound.c.message_sid)).scalar_one()
    assert revocation.message is not None
    assert (revocation.message.sid, revocation.message.body) == (sid, "wrong number")
    assert confirmation_status(engine)[0] is OutboxStatus.CANCELLED
    # a second click changes nothing
    again = decide(engine, hold_id, HOLD_NOT_OPT_OUT)
    assert again is not None and again.decision == HOLD_OPT_OUT and not again.newly_decided


def test_the_owner_releasing_it_lets_the_paused_texts_go(engine: Engine) -> None:
    consent = grant(engine)
    queue(engine, consent=consent, due_at=NOW)
    receive(engine, "not interested")
    transport = LocalSmsTransport()
    assert dispatch_due(engine, transport, NOW + timedelta(minutes=1), rules=RULES).deferred == 1

    decide(engine, the_hold(engine), HOLD_NOT_OPT_OUT)

    due = NOW + timedelta(minutes=1) + HELD_REPLY_DELAY
    assert dispatch_due(engine, transport, due, rules=RULES).sent == 1
    with engine.begin() as conn:
        kinds = [event.kind for event in events_for_number(conn, BUSINESS, CALLER)]
    assert EventKind.REVOKED not in kinds


def test_another_business_cannot_decide_a_hold(engine: Engine) -> None:
    grant(engine)
    receive(engine, "wrong number")
    assert decide(engine, the_hold(engine), HOLD_OPT_OUT, business="other-business") is None
    with engine.begin() as conn:
        assert open_hold(conn, BUSINESS, CALLER)
        assert held_replies(conn, "other-business") == []


def test_a_later_stop_or_start_decides_the_hold(engine: Engine) -> None:
    grant(engine)
    receive(engine, "stip")
    assert receive(engine, "STOP", at=NOW + timedelta(seconds=5)) is ReplyIntent.OPT_OUT
    with engine.begin() as conn:
        assert not open_hold(conn, BUSINESS, CALLER)
        assert conn.execute(select(sms_reply_holds.c.decision)).scalar_one() == HOLD_SUPERSEDED
    receive(engine, "no thanks", number=OTHER_CALLER)
    assert receive(engine, "START", number=OTHER_CALLER) is ReplyIntent.OPT_IN
    with engine.begin() as conn:
        assert not open_hold(conn, BUSINESS, OTHER_CALLER)


def test_help_replies_are_not_paused_by_a_hold(engine: Engine) -> None:
    receive(engine, "wrong number")
    receive(engine, "HELP", at=NOW + timedelta(seconds=5))
    report = dispatch_due(engine, LocalSmsTransport(), NOW + timedelta(minutes=1), rules=RULES)
    assert report.sent == 1 and report.deferred == 0


def test_an_unknown_decision_is_refused(engine: Engine) -> None:
    receive(engine, "wrong number")
    with pytest.raises(ValueError):
        decide(engine, the_hold(engine), "maybe")


# --- suppression lasts until an explicit opt-in -------------------------------------------------


def _gate(engine: Engine, at: datetime) -> GateReason:
    with engine.begin() as conn:
        return may_send(conn, BUSINESS, CALLER, at, lambda _since: 0).reason


def test_an_opt_out_still_suppresses_texts_more_than_ten_years_later(engine: Engine) -> None:
    grant(engine)
    with engine.begin() as conn:
        revoke(conn, BUSINESS, "Acme Plumbing", CALLER, ConsentMethod.SMS_KEYWORD, NOW, NOW)
    for years in (1, 5, 10, 11, 30):
        assert _gate(engine, NOW + timedelta(days=366 * years)) is GateReason.REVOKED
    # only an explicit opt-in lifts it: a new consent given on a later call
    later = CONSENTED_AT + timedelta(days=366 * 11)
    grant(engine, at=later)
    assert _gate(engine, later + timedelta(minutes=1)) is GateReason.ALLOWED
