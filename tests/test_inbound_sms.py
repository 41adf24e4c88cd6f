"""Inbound texts: STOP, HELP, START, YES and messages, through the handler and the signed
webhook (which journals each text and answers; the journal's applier then hands it to the
handler)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from consent_ledger import (
    ConsentEvidence,
    ConsentMethod,
    EventKind,
    MessageEvidence,
    events_for_number,
    revoke,
)
from sms_sender.dispatch import DispatchReport, dispatch_due
from sms_sender.inbound import InboundError, InboundSms, handle_inbound
from sms_sender.keywords import ReplyIntent
from sms_sender.local_transport import LocalSmsTransport
from sms_sender.outbox import OutboxKind, OutboxStatus, list_outbox
from sms_sender.owner import CallSummary, queue_owner_summary
from sms_sender.owner_choice import record_owner_choice
from sms_sender.send_rules import SendRules
from sms_sender.tables import metadata as sms_metadata
from sms_sender.tables import sms_inbound
from sms_sender.thread import Direction, conversation_thread
from tests.conftest import BACKENDS
from tests.sms_support import (
    BUSINESS,
    BUSINESS_NUMBER,
    CALLER,
    CONSENTED_AT,
    HELP_TEXT,
    NOW,
    OPT_OUT_TEXT,
    OWNER,
    POLICY,
    RULES,
    WebhookServices,
    grant,
    inbound_params,
    kinds_and_statuses,
    post_signed,
    queue,
    sms_engine,
    text,
)
from voice_agent.web.sms_webhooks import router

NEWCOMER = "+15125550177"
"""A number with no consent history at all."""


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with sms_engine(request.param, tmp_path, "sms_inbound") as database:
        yield database


def receive(engine: Engine, sms: InboundSms, at: datetime = NOW) -> ReplyIntent:
    with engine.begin() as conn:
        return handle_inbound(conn, sms, POLICY, at).intent


def ledger_kinds(engine: Engine, number: str = CALLER) -> list[EventKind]:
    with engine.begin() as conn:
        return [event.kind for event in events_for_number(conn, BUSINESS, number)]


# --- opt-out ----------------------------------------------------------------------------------


def test_stop_revokes_cancels_pending_and_confirms_once(engine: Engine) -> None:
    consent = grant(engine)
    queue(engine, "CA0001", consent=consent, due_at=NOW + timedelta(hours=2))
    queue(engine, "CA0002", consent=consent, due_at=NOW + timedelta(hours=3))

    assert receive(engine, text("STOP")) is ReplyIntent.OPT_OUT
    assert receive(engine, text("stop!!"), at=NOW + timedelta(seconds=5)) is ReplyIntent.OPT_OUT

    assert ledger_kinds(engine) == [EventKind.CONSENT_GRANTED, EventKind.REVOKED]
    assert kinds_and_statuses(engine) == [
        (OutboxKind.CONFIRMATION, OutboxStatus.CANCELLED),
        (OutboxKind.CONFIRMATION, OutboxStatus.CANCELLED),
        (OutboxKind.OPT_OUT_CONFIRMATION, OutboxStatus.SCHEDULED),
    ]
    transport = LocalSmsTransport()
    assert dispatch_due(engine, transport, NOW + timedelta(minutes=1), rules=RULES).sent == 1
    assert [sms.body for sms in transport.delivered] == [OPT_OUT_TEXT]
    assert dispatch_due(engine, transport, NOW + timedelta(hours=5), rules=RULES).sent == 0


def test_plain_language_revocation_is_a_revocation(engine: Engine) -> None:
    grant(engine)
    receive(engine, text("please stop texting me"))
    assert ledger_kinds(engine)[-1] is EventKind.REVOKED


def the_last_event(engine: Engine, number: str = CALLER) -> ConsentEvidence:
    with engine.begin() as conn:
        return events_for_number(conn, BUSINESS, number)[-1].evidence()


@pytest.mark.parametrize("words", ["STOP", "Please stop texting me, I found someone else 🙏"])
def test_a_revocation_by_text_keeps_the_person_s_words_and_the_message_sid(
    engine: Engine, words: str
) -> None:
    grant(engine)
    sms = text(words)
    receive(engine, sms)

    revocation = the_last_event(engine)
    assert revocation.kind is EventKind.REVOKED
    assert revocation.message == MessageEvidence(sms.message_sid, words)
    with engine.begin() as conn:
        body = events_for_number(conn, BUSINESS, CALLER)[-1].body
    assert body["evidence"]["message"] == {"sid": sms.message_sid, "body": words}


def test_start_keeps_its_words_and_message_sid_in_the_resubscription(engine: Engine) -> None:
    grant(engine)
    receive(engine, text("STOP"))
    start = text("Start")
    receive(engine, start)
    resubscription = the_last_event(engine)
    assert resubscription.kind is EventKind.RESUBSCRIBED
    assert resubscription.message == MessageEvidence(start.message_sid, "Start")


def test_older_records_without_a_message_still_load_and_keep_their_hash(engine: Engine) -> None:
    """A revocation made on a call carries no text: its stored form has no ``message`` key, as
    every record written before the key existed, so their hashes are unchanged."""
    grant(engine)
    with engine.begin() as conn:
        event = revoke(
            conn, BUSINESS, "Acme", CALLER, ConsentMethod.SPOKEN, NOW, NOW, call_sid="CA9"
        )
    assert event is not None
    assert "message" not in event.body["evidence"]
    assert the_last_event(engine).message is None


def test_no_confirmation_when_twilio_advanced_opt_out_already_answered(engine: Engine) -> None:
    grant(engine)
    queue(engine, due_at=NOW + timedelta(hours=1))

    receive(engine, text("STOP", opt_out_type="STOP"))

    assert ledger_kinds(engine)[-1] is EventKind.REVOKED
    assert kinds_and_statuses(engine) == [(OutboxKind.CONFIRMATION, OutboxStatus.CANCELLED)]


def test_an_opt_out_confirmation_older_than_five_minutes_is_not_sent(engine: Engine) -> None:
    grant(engine)
    receive(engine, text("STOP"))

    report = dispatch_due(engine, LocalSmsTransport(), NOW + timedelta(minutes=6), rules=RULES)

    assert report == DispatchReport(sent=0, blocked=1, failed=0)


@pytest.mark.parametrize("first", ["STOP", "please stop texting me"])
def test_an_opt_out_from_a_number_that_never_consented_is_confirmed_once(
    engine: Engine, first: str
) -> None:
    assert receive(engine, text(first, NEWCOMER)) is ReplyIntent.OPT_OUT
    assert receive(engine, text("Stop", NEWCOMER), at=NOW + timedelta(seconds=5)) is (
        ReplyIntent.OPT_OUT
    )
    receive(engine, text("UNSUBSCRIBE", NEWCOMER), at=NOW + timedelta(seconds=9))

    assert ledger_kinds(engine, NEWCOMER) == []
    with engine.begin() as conn:
        [reply] = list_outbox(conn)
    assert (reply.kind, reply.to_number, reply.consent_event_hash) == (
        OutboxKind.OPT_OUT_CONFIRMATION,
        NEWCOMER,
        "",
    )
    transport = LocalSmsTransport()
    assert dispatch_due(engine, transport, NOW + timedelta(minutes=1), rules=RULES).sent == 1
    assert [(sms.to_number, sms.body) for sms in transport.delivered] == [(NEWCOMER, OPT_OUT_TEXT)]
    with engine.begin() as conn:
        thread = conversation_thread(conn, BUSINESS, NEWCOMER)
    assert [(entry.direction, entry.state) for entry in thread] == [
        (Direction.INBOUND, "opt_out"),
        (Direction.INBOUND, "opt_out"),
        (Direction.INBOUND, "opt_out"),
        (Direction.OUTBOUND, "sent"),
    ]


def test_a_stop_after_a_start_is_confirmed_again(engine: Engine) -> None:
    receive(engine, text("STOP", NEWCOMER))
    assert receive(engine, text("START", NEWCOMER)) is ReplyIntent.OPT_IN
    receive(engine, text("STOP", NEWCOMER))

    assert ledger_kinds(engine, NEWCOMER) == []
    assert kinds_and_statuses(engine) == [
        (OutboxKind.OPT_OUT_CONFIRMATION, OutboxStatus.SCHEDULED),
        (OutboxKind.OPT_OUT_CONFIRMATION, OutboxStatus.SCHEDULED),
    ]


def test_a_stop_after_a_spoken_revocation_gets_its_confirmation(engine: Engine) -> None:
    grant(engine)
    with engine.begin() as conn:
        spoken = ConsentMethod.SPOKEN
        revoke(conn, BUSINESS, "Acme Plumbing", CALLER, spoken, NOW, NOW, call_sid="CA0002")

    receive(engine, text("STOP"))

    assert ledger_kinds(engine) == [EventKind.CONSENT_GRANTED, EventKind.REVOKED]
    assert kinds_and_statuses(engine) == [(OutboxKind.OPT_OUT_CONFIRMATION, OutboxStatus.SCHEDULED)]


def test_no_confirmation_from_us_when_advanced_opt_out_answered_a_newcomer(
    engine: Engine,
) -> None:
    receive(engine, text("STOP", NEWCOMER, opt_out_type="STOP"))
    assert kinds_and_statuses(engine) == []


def test_the_ledger_tells_a_keyword_from_a_plain_language_revocation(engine: Engine) -> None:
    grant(engine)
    receive(engine, text("please stop texting me"))
    grant(engine, at=NOW + timedelta(minutes=1))
    receive(engine, text("STOP"), at=NOW + timedelta(minutes=2))

    with engine.begin() as conn:
        events = events_for_number(conn, BUSINESS, CALLER)
    revocations = [e.evidence().method for e in events if e.kind is EventKind.REVOKED]
    assert revocations == [ConsentMethod.SMS_TEXT, ConsentMethod.SMS_KEYWORD]


def test_messages_that_mention_stop_do_not_revoke(engine: Engine) -> None:
    grant(engine)
    for body in (
        "Can you stop by tomorrow?",
        "the leak won't stop",
        "cancel my appointment and rebook",
    ):
        assert receive(engine, text(body)) is ReplyIntent.MESSAGE
    assert ledger_kinds(engine) == [EventKind.CONSENT_GRANTED]


# --- help, start, yes -------------------------------------------------------------------------


def test_help_is_answered_even_after_revocation_and_is_not_counted(engine: Engine) -> None:
    grant(engine, max_texts=1)
    receive(engine, text("STOP"))
    receive(engine, text("HELP"))
    receive(engine, text("Help me, the basement is flooding"))
    transport = LocalSmsTransport()

    dispatch_due(engine, transport, NOW + timedelta(minutes=1), rules=RULES)

    assert [sms.body for sms in transport.delivered] == [OPT_OUT_TEXT, HELP_TEXT]


def test_help_from_a_number_we_never_heard_from_gets_the_help_text(engine: Engine) -> None:
    assert receive(engine, text("HELP", NEWCOMER)) is ReplyIntent.HELP
    transport = LocalSmsTransport()

    assert dispatch_due(engine, transport, NOW, rules=RULES).sent == 1

    assert [(sms.to_number, sms.body) for sms in transport.delivered] == [(NEWCOMER, HELP_TEXT)]
    assert ledger_kinds(engine, NEWCOMER) == []


def test_start_resubscribes_and_confirms(engine: Engine) -> None:
    grant(engine)
    receive(engine, text("STOP"))
    assert receive(engine, text("START")) is ReplyIntent.OPT_IN

    assert ledger_kinds(engine) == [
        EventKind.CONSENT_GRANTED,
        EventKind.REVOKED,
        EventKind.RESUBSCRIBED,
    ]
    assert kinds_and_statuses(engine)[-1] == (
        OutboxKind.OPT_IN_CONFIRMATION,
        OutboxStatus.SCHEDULED,
    )


def test_yes_resubscribes_only_a_number_that_opted_out(engine: Engine) -> None:
    grant(engine)
    assert receive(engine, text("yes")) is ReplyIntent.MESSAGE
    receive(engine, text("STOP"))
    assert receive(engine, text("YES")) is ReplyIntent.OPT_IN
    assert ledger_kinds(engine)[-1] is EventKind.RESUBSCRIBED
    with engine.begin() as conn:
        intents = conn.execute(select(sms_inbound.c.intent).order_by(sms_inbound.c.id)).scalars()
        assert list(intents) == ["message", "opt_out", "opt_in"]


def test_start_without_a_revoked_consent_records_nothing(engine: Engine) -> None:
    receive(engine, text("START"))
    assert ledger_kinds(engine) == []
    assert kinds_and_statuses(engine) == []


# --- messages ---------------------------------------------------------------------------------


def test_a_message_is_kept_forwarded_and_stops_the_no_reply_follow_up(engine: Engine) -> None:
    grant(engine)
    with engine.begin() as conn:
        from sms_sender.outbox import PlannedText, queue_text

        queue_text(
            conn,
            PlannedText(
                BUSINESS,
                "CA0001",
                CALLER,
                BUSINESS_NUMBER,
                OutboxKind.NO_REPLY_FOLLOW_UP,
                "Acme Plumbing: following up.",
                "c" * 64,
                NOW + timedelta(hours=2),
            ),
        )
    receive(engine, text("Yes please come at 3pm"))

    assert kinds_and_statuses(engine) == [
        (OutboxKind.NO_REPLY_FOLLOW_UP, OutboxStatus.CANCELLED),
        (OutboxKind.OWNER_FORWARD, OutboxStatus.SCHEDULED),
    ]
    with engine.begin() as conn:
        thread = conversation_thread(conn, BUSINESS, CALLER)
    assert [(entry.direction, entry.state) for entry in thread] == [
        (Direction.INBOUND, "message"),
        (Direction.OUTBOUND, "cancelled"),
    ]


def test_owner_forwards_go_only_with_the_owners_opt_in(engine: Engine) -> None:
    receive(engine, text("Is anyone there?"))
    transport = LocalSmsTransport()

    assert dispatch_due(engine, transport, NOW, rules=RULES).blocked == 1
    receive(engine, text("Hello again?"))
    opted_in = SendRules(
        policies=RULES.policies, owner_opted_in=lambda _c, _b, number: number == OWNER
    )
    assert dispatch_due(engine, transport, NOW, rules=opted_in).sent == 1
    assert [sms.to_number for sms in transport.delivered] == [OWNER]
    assert transport.delivered[0].body == f"Acme Plumbing text from {CALLER}: Hello again?"


def test_the_same_message_sid_is_handled_once(engine: Engine) -> None:
    grant(engine)
    sms = text("STOP")
    with engine.begin() as conn:
        first = handle_inbound(conn, sms, POLICY, NOW)
    with engine.begin() as conn:
        again = handle_inbound(conn, sms, POLICY, NOW)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert len(kinds_and_statuses(engine)) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"message_sid": ""},
        {"message_sid": "SM' OR 1=1"},
        {"message_sid": "SM" + "1" * 80},
        {"from_number": "5125550123"},
        {"to_number": "not a number"},
        {"opt_out_type": "DELETE"},
    ],
)
def test_malformed_inbound_texts_are_refused(fields: dict[str, str]) -> None:
    values = {
        "message_sid": "SM" + "1" * 32,
        "from_number": CALLER,
        "to_number": BUSINESS_NUMBER,
        "body": "hi",
        **fields,
    }
    with pytest.raises(InboundError):
        InboundSms(**values)  # type: ignore[arg-type]


# --- the webhooks -----------------------------------------------------------------------------


@pytest.fixture
def webhook(
    migrated_engine: Engine, tmp_path: Path
) -> Iterator[tuple[TestClient, WebhookServices]]:
    with migrated_engine.begin() as conn:
        sms_metadata.create_all(conn)
    app = FastAPI()
    app.include_router(router)
    services = WebhookServices(migrated_engine, tmp_path, apply_at_once=False)
    app.state.services = services
    with TestClient(app) as client:
        yield client, services


def test_the_webhook_refuses_unsigned_and_forged_requests(
    webhook: tuple[TestClient, WebhookServices],
) -> None:
    client, _services = webhook
    assert client.post("/twilio/sms", data=inbound_params("STOP")).status_code == 403
    forged = client.post(
        "/twilio/sms", data=inbound_params("STOP"), headers={"X-Twilio-Signature": "bm90IGl0"}
    )
    assert forged.status_code == 403
    assert client.post("/twilio/sms/status", data={"MessageSid": "SM1"}).status_code == 403


def test_the_webhook_handles_stop_once_and_wakes_the_dispatcher(
    webhook: tuple[TestClient, WebhookServices],
) -> None:
    client, services = webhook
    grant(services.engine, at=CONSENTED_AT)

    assert post_signed(client, "/twilio/sms", inbound_params("Stop.")) == 200
    assert post_signed(client, "/twilio/sms", inbound_params("Stop.")) == 200
    assert services.journal.pending_opt_outs() == {CALLER}  # honoured before it is stored
    services.settle()

    assert services.journal.pending_opt_outs() == set()
    assert services.dispatcher.wakes == 1
    assert ledger_kinds(services.engine)[-1] is EventKind.REVOKED
    assert the_last_event(services.engine).message == MessageEvidence("SM" + "a" * 32, "Stop.")
    assert kinds_and_statuses(services.engine) == [
        (OutboxKind.OPT_OUT_CONFIRMATION, OutboxStatus.SCHEDULED)
    ]


def test_a_repeated_stop_waiting_in_the_journal_does_not_hold_back_the_confirmation(
    webhook: tuple[TestClient, WebhookServices],
) -> None:
    client, services = webhook
    assert post_signed(client, "/twilio/sms", inbound_params("STOP")) == 200
    services.settle()
    assert post_signed(client, "/twilio/sms", inbound_params("STOP")) == 200  # Twilio's retry
    assert services.journal.pending_opt_outs() == {CALLER}
    transport = LocalSmsTransport()

    report = dispatch_due(
        services.engine,
        transport,
        NOW + timedelta(minutes=1),
        rules=RULES,
        pending_opt_outs=services.journal.pending_opt_outs,
    )

    assert (report.sent, report.deferred) == (1, 0)
    assert [sms.to_number for sms in transport.delivered] == [CALLER]


def test_the_webhook_confirms_stop_from_a_number_that_never_consented(
    webhook: tuple[TestClient, WebhookServices],
) -> None:
    client, services = webhook

    assert post_signed(client, "/twilio/sms", {**inbound_params("STOP"), "From": NEWCOMER}) == 200
    services.settle()

    assert services.dispatcher.wakes == 1
    assert ledger_kinds(services.engine, NEWCOMER) == []
    assert kinds_and_statuses(services.engine) == [
        (OutboxKind.OPT_OUT_CONFIRMATION, OutboxStatus.SCHEDULED)
    ]


def test_the_webhook_takes_stop_from_the_owner_phone_for_the_owner_texts(
    webhook: tuple[TestClient, WebhookServices],
) -> None:
    client, services = webhook
    with services.engine.begin() as conn:
        record_owner_choice(conn, POLICY, True, ConsentMethod.OWNER, CONSENTED_AT)
        call = CallSummary("CA0001", BUSINESS_NUMBER, CALLER, None, None, None, None, "declined")
        queue_owner_summary(conn, call, POLICY, NOW)

    assert post_signed(client, "/twilio/sms", {**inbound_params("Stop"), "From": OWNER}) == 200
    services.settle()

    assert services.dispatcher.wakes == 1
    assert ledger_kinds(services.engine, OWNER)[-1] is EventKind.OWNER_NOTIFICATIONS_OPT_OUT
    assert kinds_and_statuses(services.engine) == [
        (OutboxKind.OWNER_SUMMARY, OutboxStatus.CANCELLED),
        (OutboxKind.OPT_OUT_CONFIRMATION, OutboxStatus.SCHEDULED),
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"MessageSid": "", "From": CALLER, "To": BUSINESS_NUMBER, "Body": "hi"},
        {"MessageSid": "SM" + "b" * 32, "From": "anonymous", "To": BUSINESS_NUMBER, "Body": "x"},
        {"MessageSid": "SM" + "b" * 32, "From": CALLER, "To": BUSINESS_NUMBER, "NumMedia": "x"},
    ],
)
def test_malformed_webhooks_get_400(
    webhook: tuple[TestClient, WebhookServices], params: dict[str, str]
) -> None:
    client, services = webhook
    assert post_signed(client, "/twilio/sms", params) == 400
    assert services.journal.pending() == []


def test_a_text_to_an_unknown_number_is_logged_and_answered_empty(
    webhook: tuple[TestClient, WebhookServices],
) -> None:
    client, services = webhook
    params = {**inbound_params("hello"), "To": "+15125550111"}
    assert post_signed(client, "/twilio/sms", params) == 200
    services.settle()
    assert kinds_and_statuses(services.engine) == []


def test_a_message_is_not_an_opt_out_in_the_journal(
    webhook: tuple[TestClient, WebhookServices],
) -> None:
    client, services = webhook
    assert post_signed(client, "/twilio/sms", inbound_params("Can you stop by at 5?")) == 200
    assert (
        post_signed(client, "/twilio/sms", inbound_params("please stop texting me", "SM2")) == 200
    )

    assert services.journal.pending_opt_outs() == {CALLER}
    assert [name.endswith(f"-optout{CALLER}.json") for name in services.journal.pending()] == [
        False,
        True,
    ]
    services.settle()
    assert ledger_kinds(services.engine) == []  # no consent was in force: nothing to revoke
    assert kinds_and_statuses(services.engine)[-1] == (
        OutboxKind.OPT_OUT_CONFIRMATION,
        OutboxStatus.SCHEDULED,
    )


@pytest.mark.parametrize(
    "body", ["ALTO", "stpo", "no me manden más mensajes", "please stop texting me"]
)
def test_spanish_misspelled_and_plain_language_opt_outs_revoke_and_cancel(
    engine: Engine, body: str
) -> None:
    consent = grant(engine)
    queue(engine, "CA0001", consent=consent, due_at=NOW + timedelta(hours=2))

    assert receive(engine, text(body)) is ReplyIntent.OPT_OUT

    assert EventKind.REVOKED in ledger_kinds(engine)
    assert (OutboxKind.CONFIRMATION, OutboxStatus.CANCELLED) in kinds_and_statuses(engine)


def test_a_possible_opt_out_is_stored_as_held_and_cancels_nothing_but_the_nudge(
    engine: Engine,
) -> None:
    consent = grant(engine)
    queue(engine, "CA0001", consent=consent, due_at=NOW + timedelta(hours=2))

    assert receive(engine, text("Stop. Who is this?")) is ReplyIntent.POSSIBLE_OPT_OUT

    assert EventKind.REVOKED not in ledger_kinds(engine)
    assert (OutboxKind.CONFIRMATION, OutboxStatus.SCHEDULED) in kinds_and_statuses(engine)
