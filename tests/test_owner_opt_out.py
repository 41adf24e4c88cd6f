"""The owner's phone texting STOP or START to the business number: the owner's notification texts
stop (a ledger event, pending summaries cancelled, one confirmation saying how to turn them back
on) and START turns them on (also when the owner never chose); the carrier's error 21610 for the
owner's phone counts too. The webhook's part is in test_inbound_sms, the race with a worker in
test_sms_races."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from consent_ledger import (
    ConsentMethod,
    EventKind,
    RecordedEvent,
    events_for_number,
    owner_notifications_allowed,
    verify_ledger,
)
from sms_sender.dispatch import DispatchReport, dispatch_due
from sms_sender.inbound import InboundOutcome, handle_inbound
from sms_sender.local_transport import LocalSmsTransport
from sms_sender.outbox import OutboxKind, OutboxStatus, list_outbox
from sms_sender.transport import SendFailed
from tests.conftest import BACKENDS
from tests.sms_support import (
    BUSINESS,
    CALLER,
    NOW,
    OPT_OUT_TEXT,
    OWNER,
    OWNER_OPT_OUT_TEXT,
    OWNER_RULES,
    POLICY,
    FailingTransport,
    grant,
    owner_opts_in,
    queue,
    sms_engine,
    summary,
    text,
)

OWNER_OPT_IN_TEXT = (
    "Acme Plumbing: call summary texts to this phone are on. Msg & data rates may apply. "
    "Reply HELP for help, STOP to opt out."
)
OPT_OUTS = (
    "STOP",
    "stopall",
    "Unsubscribe",
    "CANCEL",
    "end",
    "QUIT",
    "revoke",
    "OPTOUT",
    "opt out",
)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with sms_engine(request.param, tmp_path, "owner_opt_out") as database:
        yield database


def from_owner(engine: Engine, body: str, at: datetime = NOW, **fields: str) -> InboundOutcome:
    with engine.begin() as conn:
        return handle_inbound(conn, text(body, OWNER, **fields), POLICY, at)


def owner_events(engine: Engine) -> list[RecordedEvent]:
    with engine.begin() as conn:
        return events_for_number(conn, BUSINESS, OWNER)


def texts_to_owner(engine: Engine) -> list[tuple[OutboxKind, OutboxStatus]]:
    with engine.begin() as conn:
        return [(m.kind, m.status) for m in list_outbox(conn) if m.to_number == OWNER]


def owner_may_be_texted(engine: Engine) -> bool:
    with engine.begin() as conn:
        return owner_notifications_allowed(conn, BUSINESS, OWNER)


# --- opting out -------------------------------------------------------------------------------


def test_stop_from_the_owner_phone_ends_summaries_and_is_confirmed_once(engine: Engine) -> None:
    owner_opts_in(engine)
    summary(engine, "CA0001")
    summary(engine, "CA0002", at=NOW + timedelta(hours=1))
    sms = text("STOP", OWNER)

    with engine.begin() as conn:
        outcome = handle_inbound(conn, sms, POLICY, NOW)
    from_owner(engine, "STOP", at=NOW + timedelta(seconds=5))

    assert (outcome.cancelled, outcome.ledger_event) == (2, None)
    [opt_in, opt_out] = owner_events(engine)
    assert opt_out == outcome.owner_event
    assert (opt_in.kind, opt_out.kind) == (
        EventKind.OWNER_NOTIFICATIONS_OPT_IN,
        EventKind.OWNER_NOTIFICATIONS_OPT_OUT,
    )
    evidence = opt_out.evidence()
    assert (evidence.business_id, evidence.business_name, evidence.phone_number) == (
        BUSINESS,
        "Acme Plumbing",
        OWNER,
    )
    assert (evidence.method, evidence.occurred_at, opt_out.recorded_at) == (
        ConsentMethod.SMS_KEYWORD,
        NOW,
        NOW,
    )
    assert evidence.note == f"texted {sms.message_sid}"
    assert texts_to_owner(engine) == [
        (OutboxKind.OWNER_SUMMARY, OutboxStatus.CANCELLED),
        (OutboxKind.OWNER_SUMMARY, OutboxStatus.CANCELLED),
        (OutboxKind.OPT_OUT_CONFIRMATION, OutboxStatus.SCHEDULED),
    ]
    assert outcome.reply is not None
    assert outcome.reply.consent_event_hash == opt_out.hash
    transport = LocalSmsTransport()
    assert dispatch_due(engine, transport, NOW + timedelta(minutes=1), rules=OWNER_RULES).sent == 1
    assert [(sms.to_number, sms.body) for sms in transport.delivered] == [
        (OWNER, OWNER_OPT_OUT_TEXT)
    ]
    with engine.begin() as conn:
        assert verify_ledger(conn).ok


def test_a_summary_queued_after_the_stop_is_refused_at_send_time(engine: Engine) -> None:
    owner_opts_in(engine)
    from_owner(engine, "STOP", opt_out_type="STOP")
    summary(engine, "CA0003")

    report = dispatch_due(
        engine, LocalSmsTransport(), NOW + timedelta(minutes=1), rules=OWNER_RULES
    )

    assert report == DispatchReport(sent=0, blocked=1, failed=0)
    with engine.begin() as conn:
        [blocked] = list_outbox(conn)
    assert (blocked.kind, blocked.reason) == (OutboxKind.OWNER_SUMMARY, "owner_not_opted_in")


@pytest.mark.parametrize("body", OPT_OUTS)
def test_every_opt_out_keyword_from_the_owner_phone_ends_summaries(
    engine: Engine, body: str
) -> None:
    owner_opts_in(engine)

    from_owner(engine, body)

    assert owner_events(engine)[-1].evidence().method is ConsentMethod.SMS_KEYWORD
    assert not owner_may_be_texted(engine)


@pytest.mark.parametrize(
    "body", ["please stop texting me", "No more texts", "remove my number", "Leave me alone"]
)
def test_a_plain_language_opt_out_from_the_owner_phone_ends_summaries(
    engine: Engine, body: str
) -> None:
    owner_opts_in(engine)

    from_owner(engine, body)

    [_opt_in, opt_out] = owner_events(engine)
    assert (opt_out.kind, opt_out.evidence().method) == (
        EventKind.OWNER_NOTIFICATIONS_OPT_OUT,
        ConsentMethod.SMS_TEXT,
    )


def test_a_message_from_the_owner_phone_changes_nothing(engine: Engine) -> None:
    owner_opts_in(engine)
    summary(engine, "CA0001")

    from_owner(engine, "Can you stop by the Miller job tomorrow?")

    assert [event.kind for event in owner_events(engine)] == [EventKind.OWNER_NOTIFICATIONS_OPT_IN]
    assert texts_to_owner(engine) == [(OutboxKind.OWNER_SUMMARY, OutboxStatus.SCHEDULED)]


def test_twilio_advanced_opt_out_still_records_the_owner_opt_out_but_we_do_not_confirm(
    engine: Engine,
) -> None:
    owner_opts_in(engine)

    outcome = from_owner(engine, "STOP", opt_out_type="STOP")

    assert outcome.owner_event is not None
    assert outcome.reply is None
    assert texts_to_owner(engine) == []


def test_stop_from_an_owner_phone_that_never_opted_in_gets_the_plain_confirmation(
    engine: Engine,
) -> None:
    outcome = from_owner(engine, "STOP")

    assert owner_events(engine) == []
    assert outcome.reply is not None
    assert outcome.reply.body == OPT_OUT_TEXT


def test_stop_from_another_number_leaves_the_owner_texts_on(engine: Engine) -> None:
    owner_opts_in(engine)
    summary(engine, "CA0001")

    with engine.begin() as conn:
        outcome = handle_inbound(conn, text("STOP", CALLER), POLICY, NOW)

    assert outcome.owner_event is None
    assert owner_may_be_texted(engine)
    assert texts_to_owner(engine) == [(OutboxKind.OWNER_SUMMARY, OutboxStatus.SCHEDULED)]


# --- a number that is both the owner's and a consenting caller's ------------------------------


def test_stop_from_an_owner_phone_that_is_also_a_consenting_caller_ends_both(
    engine: Engine,
) -> None:
    owner_opts_in(engine)
    consent = grant(engine, number=OWNER)
    queue(engine, "CA0001", number=OWNER, consent=consent, due_at=NOW + timedelta(hours=1))
    summary(engine, "CA0001")

    outcome = from_owner(engine, "STOP")

    assert [event.kind for event in owner_events(engine)] == [
        EventKind.OWNER_NOTIFICATIONS_OPT_IN,
        EventKind.CONSENT_GRANTED,
        EventKind.REVOKED,
        EventKind.OWNER_NOTIFICATIONS_OPT_OUT,
    ]
    assert outcome.cancelled == 2
    assert texts_to_owner(engine) == [
        (OutboxKind.CONFIRMATION, OutboxStatus.CANCELLED),
        (OutboxKind.OWNER_SUMMARY, OutboxStatus.CANCELLED),
        (OutboxKind.OPT_OUT_CONFIRMATION, OutboxStatus.SCHEDULED),
    ]
    queue(engine, "CA0002", number=OWNER, consent=consent, due_at=NOW)
    summary(engine, "CA0002")
    transport = LocalSmsTransport()
    report = dispatch_due(engine, transport, NOW + timedelta(minutes=1), rules=OWNER_RULES)
    assert report == DispatchReport(sent=1, blocked=2, failed=0)
    assert [sms.body for sms in transport.delivered] == [OWNER_OPT_OUT_TEXT]


# --- opting back in ---------------------------------------------------------------------------


def test_start_from_the_owner_phone_turns_summaries_back_on(engine: Engine) -> None:
    owner_opts_in(engine)
    from_owner(engine, "STOP")

    outcome = from_owner(engine, "START", at=NOW + timedelta(minutes=1))

    assert outcome.owner_event is not None
    assert outcome.owner_event.kind is EventKind.OWNER_NOTIFICATIONS_OPT_IN
    assert outcome.owner_event.evidence().method is ConsentMethod.SMS_KEYWORD
    assert owner_may_be_texted(engine)
    summary(engine, "CA0004", at=NOW + timedelta(minutes=1))
    transport = LocalSmsTransport()
    assert dispatch_due(engine, transport, NOW + timedelta(minutes=2), rules=OWNER_RULES).sent == 3
    assert [sms.body for sms in transport.delivered][:2] == [OWNER_OPT_OUT_TEXT, OWNER_OPT_IN_TEXT]
    assert transport.delivered[2].body.startswith("Acme Plumbing missed call from")


def test_a_stop_after_the_owners_start_is_confirmed_again(engine: Engine) -> None:
    owner_opts_in(engine)
    from_owner(engine, "STOP")
    from_owner(engine, "START")

    outcome = from_owner(engine, "STOP")

    assert outcome.reply is not None
    assert outcome.reply.body == OWNER_OPT_OUT_TEXT
    assert not owner_may_be_texted(engine)


def test_start_turns_summaries_on_for_an_owner_who_never_chose(engine: Engine) -> None:
    outcome = from_owner(engine, "START")

    assert outcome.owner_event is not None
    assert outcome.owner_event.kind is EventKind.OWNER_NOTIFICATIONS_OPT_IN
    assert outcome.owner_event.evidence().method is ConsentMethod.SMS_KEYWORD
    assert outcome.reply is not None and outcome.reply.body == OWNER_OPT_IN_TEXT
    assert owner_may_be_texted(engine)


def test_start_changes_nothing_for_an_owner_who_already_gets_texts(engine: Engine) -> None:
    owner_opts_in(engine)
    outcome = from_owner(engine, "START")
    assert (outcome.owner_event, outcome.reply) == (None, None)
    assert len(owner_events(engine)) == 1


def test_the_command_line_can_turn_texts_back_on_after_a_stop(engine: Engine) -> None:
    owner_opts_in(engine)
    from_owner(engine, "STOP")

    owner_opts_in(engine, at=NOW + timedelta(minutes=1))

    assert owner_may_be_texted(engine)


# --- the carrier says the owner's phone unsubscribed --------------------------------------------


def test_error_21610_on_a_summary_ends_the_owner_texts(engine: Engine) -> None:
    owner_opts_in(engine)
    summary(engine, "CA0001")
    summary(engine, "CA0002", at=NOW + timedelta(hours=1))
    transport = FailingTransport(SendFailed("21610: unsubscribed", permanent=True, code=21610))

    assert dispatch_due(engine, transport, NOW, rules=OWNER_RULES).failed == 1

    [_opt_in, opt_out] = owner_events(engine)
    assert opt_out.kind is EventKind.OWNER_NOTIFICATIONS_OPT_OUT
    assert opt_out.evidence().note == "unsubscribed at the carrier (error 21610)"
    assert texts_to_owner(engine) == [
        (OutboxKind.OWNER_SUMMARY, OutboxStatus.FAILED),
        (OutboxKind.OWNER_SUMMARY, OutboxStatus.CANCELLED),
    ]
