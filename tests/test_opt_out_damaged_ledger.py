"""An opt-out from a number whose ledger history is damaged is honoured all the same: every pending
text cancelled, one confirmation queued and sent, the inbound text kept, and the revocation
appended where the chain still takes appends; the damage is logged and verification names it. HELP
is still answered; START records nothing (it fails closed). Through the handler and through the
signed webhook, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError

from consent_ledger import (
    ConsentMethod,
    CorruptEventError,
    EventKind,
    events_for_number,
    latest_events,
    owner_notifications_allowed,
    verify_ledger,
)
from consent_ledger.tables import consent_events
from sms_sender.delivery import DeliveryReport, DeliveryUpdate, record_delivery
from sms_sender.dispatch import dispatch_due
from sms_sender.inbound import InboundOutcome, handle_inbound
from sms_sender.keywords import ReplyIntent
from sms_sender.local_transport import LocalSmsTransport
from sms_sender.outbox import OutboxKind, OutboxStatus, PlannedText, queue_text
from sms_sender.tables import outbox, sms_inbound
from sms_sender.text_choices import RECORDED_DESPITE_DAMAGE
from tests.conftest import BACKENDS, ROOT, fresh_database
from tests.ledger_support import drop_append_only_triggers
from tests.sms_support import (
    BUSINESS,
    BUSINESS_NUMBER,
    CALLER,
    CONSENTED_AT,
    HELP_TEXT,
    NOW,
    OPT_OUT_TEXT,
    OWNER,
    OWNER_OPT_OUT_TEXT,
    OWNER_RULES,
    POLICY,
    WebhookServices,
    grant,
    inbound_params,
    kinds_and_statuses,
    owner_opts_in,
    post_signed,
    queue,
    sms_engine,
    summary,
    text,
)
from voice_agent.records.businesses import import_businesses
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade
from voice_agent.web.sms_webhooks import router

LOGGER = "sms_sender"


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with sms_engine(request.param, tmp_path, "damaged_ledger") as database:
        yield database


def damage_history(engine: Engine, number: str = CALLER) -> None:
    """Raise the cap in ``number``'s stored events as a raw connection could, with the append-only
    triggers dropped: the rows no longer match their hashes."""
    with engine.begin() as conn:
        drop_append_only_triggers(conn)
        conn.execute(
            sql(
                "UPDATE consent_events SET body = replace(body, :cap, :raised) "
                "WHERE phone_number = :number"
            ),
            {"cap": '"max_texts":2', "raised": '"max_texts":4', "number": number},
        )
    with engine.begin() as conn, pytest.raises(CorruptEventError):
        events_for_number(conn, BUSINESS, number)


def receive(engine: Engine, body: str, number: str = CALLER, at_seconds: int = 0) -> InboundOutcome:
    with engine.begin() as conn:
        return handle_inbound(conn, text(body, number), POLICY, NOW + timedelta(seconds=at_seconds))


def stored_intents(engine: Engine, number: str = CALLER) -> list[str]:
    with engine.begin() as conn:
        return list(
            conn.execute(
                select(sms_inbound.c.intent)
                .where(sms_inbound.c.from_number == number)
                .order_by(sms_inbound.c.id)
            ).scalars()
        )


def sent_bodies(engine: Engine, minutes: float) -> list[tuple[str, str]]:
    """What a dispatch ``minutes`` after NOW hands to the transport."""
    transport = LocalSmsTransport()
    dispatch_due(engine, transport, NOW + timedelta(minutes=minutes), rules=OWNER_RULES)
    return [(sms.to_number, sms.body) for sms in transport.delivered]


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


# --- opt-outs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "method"),
    [("STOP", ConsentMethod.SMS_KEYWORD), ("please stop texting me", ConsentMethod.SMS_TEXT)],
)
def test_an_opt_out_from_a_damaged_history_cancels_confirms_and_is_still_recorded(
    engine: Engine, caplog: pytest.LogCaptureFixture, body: str, method: ConsentMethod
) -> None:
    consent = grant(engine)
    queue(engine, "CA0001", consent=consent, due_at=NOW + timedelta(hours=2))
    queue(engine, "CA0002", consent=consent, due_at=NOW + timedelta(hours=3))
    damage_history(engine)

    with caplog.at_level("INFO", logger=LOGGER):
        outcome = receive(engine, body)

    assert (outcome.intent, outcome.cancelled, outcome.ledger_damaged) == (
        ReplyIntent.OPT_OUT,
        2,
        True,
    )
    revocation = outcome.ledger_event
    assert revocation is not None and revocation.kind is EventKind.REVOKED
    evidence = revocation.evidence()
    assert (evidence.revokes, evidence.method) == (consent, method)
    assert RECORDED_DESPITE_DAMAGE in evidence.note
    with engine.begin() as conn:
        assert latest_events(conn, 1, BUSINESS) == [revocation]
        broken = verify_ledger(conn, BUSINESS).first_broken
    assert broken is not None and (broken.business_id, broken.seq) == (BUSINESS, 1)
    assert kinds_and_statuses(engine) == [
        (OutboxKind.CONFIRMATION, OutboxStatus.CANCELLED),
        (OutboxKind.CONFIRMATION, OutboxStatus.CANCELLED),
        (OutboxKind.OPT_OUT_CONFIRMATION, OutboxStatus.SCHEDULED),
    ]
    assert stored_intents(engine) == ["opt_out"]
    [damage] = error_lines(caplog)
    assert BUSINESS in damage and "#1" in damage
    assert all(CALLER not in line and "texting" not in line for line in caplog.messages)
    assert sent_bodies(engine, 1) == [(CALLER, OPT_OUT_TEXT)]
    assert sent_bodies(engine, 5 * 60) == []


def test_a_repeated_opt_out_from_a_damaged_history_is_confirmed_once(engine: Engine) -> None:
    grant(engine)
    damage_history(engine)

    first = receive(engine, "STOP")
    again = receive(engine, "stop please", at_seconds=5)

    assert first.ledger_event is not None and first.reply is not None
    assert (again.ledger_event, again.reply, again.ledger_damaged) == (None, None, True)
    assert kinds_and_statuses(engine) == [(OutboxKind.OPT_OUT_CONFIRMATION, OutboxStatus.SCHEDULED)]
    assert stored_intents(engine) == ["opt_out", "opt_out"]


def test_an_opt_out_is_honoured_when_the_chain_takes_no_appends(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A chain head moved back makes every append collide with a stored event: on PostgreSQL the
    failed INSERT would abort the whole transaction but for the savepoint. The history itself
    reads fine and still grants, so only the cancellation keeps the pending text from going."""
    consent = grant(engine)
    queue(engine, "CA0001", consent=consent, due_at=NOW + timedelta(hours=2))
    with engine.begin() as conn:
        conn.execute(sql("UPDATE consent_chain_heads SET seq = 0"))

    with caplog.at_level("ERROR", logger=LOGGER):
        outcome = receive(engine, "STOP")

    assert (outcome.ledger_event, outcome.cancelled, outcome.ledger_damaged) == (None, 1, True)
    assert outcome.reply is not None
    with engine.begin() as conn:
        assert [e.kind for e in events_for_number(conn, BUSINESS, CALLER)] == [
            EventKind.CONSENT_GRANTED
        ]
    assert kinds_and_statuses(engine) == [
        (OutboxKind.CONFIRMATION, OutboxStatus.CANCELLED),
        (OutboxKind.OPT_OUT_CONFIRMATION, OutboxStatus.SCHEDULED),
    ]
    assert stored_intents(engine) == ["opt_out"]
    assert len(error_lines(caplog)) == 2  # the first try, then the revocation's own
    assert sent_bodies(engine, 1) == [(CALLER, OPT_OUT_TEXT)]
    assert sent_bodies(engine, 5 * 60) == []


def test_an_opt_out_from_the_owner_phone_with_a_damaged_history_ends_both(
    engine: Engine,
) -> None:
    owner_opts_in(engine)
    consent = grant(engine, number=OWNER)
    queue(engine, "CA0001", number=OWNER, consent=consent, due_at=NOW + timedelta(hours=1))
    summary(engine, "CA0001")
    damage_history(engine, OWNER)

    outcome = receive(engine, "STOP", OWNER)

    assert outcome.ledger_damaged
    assert outcome.ledger_event is not None and outcome.owner_event is not None
    assert outcome.owner_event.kind is EventKind.OWNER_NOTIFICATIONS_OPT_OUT
    assert RECORDED_DESPITE_DAMAGE in outcome.owner_event.evidence().note
    assert outcome.cancelled == 2
    assert outcome.reply is not None and outcome.reply.body == OWNER_OPT_OUT_TEXT
    with engine.begin() as conn:
        assert not owner_notifications_allowed(conn, BUSINESS, OWNER)
    summary(engine, "CA0002")
    assert sent_bodies(engine, 1) == [(OWNER, OWNER_OPT_OUT_TEXT)]


def test_an_owner_opt_out_that_cannot_be_appended_leaves_one_revocation(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A stray row sits where the owner's opt-out would go, so that append fails after the
    revocation's succeeded: the savepoint undoes the revocation too, and the second try appends it
    once, on its own."""
    owner_opts_in(engine)
    grant(engine, number=OWNER)
    with engine.begin() as conn:
        stray_row(conn, seq=4)

    with caplog.at_level("ERROR", logger=LOGGER):
        outcome = receive(engine, "STOP", OWNER)

    assert outcome.ledger_damaged and outcome.owner_event is None
    assert outcome.ledger_event is not None and outcome.ledger_event.seq == 3
    with engine.begin() as conn:
        assert [e.kind for e in events_for_number(conn, BUSINESS, OWNER)] == [
            EventKind.OWNER_NOTIFICATIONS_OPT_IN,
            EventKind.CONSENT_GRANTED,
            EventKind.REVOKED,
        ]
    assert len(error_lines(caplog)) == 2
    assert kinds_and_statuses(engine) == [(OutboxKind.OPT_OUT_CONFIRMATION, OutboxStatus.SCHEDULED)]


def stray_row(conn: Connection, seq: int) -> None:
    """An event row inserted past the chain head through a raw connection (inserts pass the
    append-only triggers), about another number."""
    conn.execute(
        insert(consent_events).values(
            business_id=BUSINESS,
            seq=seq,
            phone_number="+15125550111",
            kind=EventKind.REVOKED.value,
            recorded_at=CONSENTED_AT,
            body="{}",
            prev_hash="e" * 64,
            hash=f"{seq:064x}",
        )
    )


# --- help and opt-ins -------------------------------------------------------------------------


def test_help_from_a_number_with_a_damaged_history_is_answered(engine: Engine) -> None:
    grant(engine)
    damage_history(engine)

    outcome = receive(engine, "HELP")

    assert outcome.reply is not None
    assert sent_bodies(engine, 1) == [(CALLER, HELP_TEXT)]


def test_start_from_a_damaged_history_records_nothing_and_fails_closed(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    consent = grant(engine)
    receive(engine, "STOP")
    damage_history(engine)

    with caplog.at_level("ERROR", logger=LOGGER):
        start = receive(engine, "START", at_seconds=5)
        yes = receive(engine, "YES", at_seconds=9)

    assert (start.intent, start.ledger_event, start.reply, start.ledger_damaged) == (
        ReplyIntent.OPT_IN,
        None,
        None,
        True,
    )
    assert yes.intent is ReplyIntent.MESSAGE
    assert len(error_lines(caplog)) == 2
    assert stored_intents(engine) == ["opt_out", "opt_in", "message"]
    with engine.begin() as conn:
        queue_text(
            conn,
            PlannedText(
                BUSINESS,
                "CA0002",
                CALLER,
                BUSINESS_NUMBER,
                OutboxKind.NO_REPLY_FOLLOW_UP,
                "Acme Plumbing: following up.",
                consent,
                NOW,
            ),
        )
    assert sent_bodies(engine, 1) == [(CALLER, OPT_OUT_TEXT)]


# --- the savepoint ----------------------------------------------------------------------------


def test_a_savepoint_rolls_back_only_its_own_writes(engine: Engine) -> None:
    """What the opt-out relies on: SAVEPOINT works on SQLite as ``make_engine`` sets it up, and a
    failed statement inside one leaves PostgreSQL's transaction usable."""
    with engine.begin() as conn:
        stray_row(conn, seq=1)
        with pytest.raises(IntegrityError), conn.begin_nested():
            stray_row(conn, seq=2)
            stray_row(conn, seq=1)
        stray_row(conn, seq=3)
    with engine.begin() as conn:
        seqs = conn.execute(select(consent_events.c.seq).order_by(consent_events.c.seq))
        assert list(seqs.scalars()) == [1, 3]


# --- the webhook ------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def webhook(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[TestClient, WebhookServices]]:
    with fresh_database(request.param, tmp_path, "damaged_webhook") as url:
        upgrade(url)
        database = make_engine(url)
        with database.begin() as conn:
            import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
        app = FastAPI()
        app.include_router(router)
        services = WebhookServices(database)
        app.state.services = services
        try:
            with TestClient(app) as client:
                yield client, services
        finally:
            database.dispose()


def test_the_webhook_honours_stop_from_a_damaged_history(
    webhook: tuple[TestClient, WebhookServices],
) -> None:
    client, services = webhook
    consent = grant(services.engine)
    queue(services.engine, "CA0001", consent=consent, due_at=NOW + timedelta(hours=2))
    damage_history(services.engine)

    assert post_signed(client, "/twilio/sms", inbound_params("STOP")) == 200

    assert services.dispatcher.wakes == 1
    assert kinds_and_statuses(services.engine) == [
        (OutboxKind.CONFIRMATION, OutboxStatus.CANCELLED),
        (OutboxKind.OPT_OUT_CONFIRMATION, OutboxStatus.SCHEDULED),
    ]
    assert stored_intents(services.engine) == ["opt_out"]
    with services.engine.begin() as conn:
        [latest] = latest_events(conn, 1, BUSINESS)
    assert (latest.kind, latest.evidence().revokes) == (EventKind.REVOKED, consent)
    assert sent_bodies(services.engine, 1) == [(CALLER, OPT_OUT_TEXT)]
    assert sent_bodies(services.engine, 5 * 60) == []


# --- the carrier says the number unsubscribed (error 21610) ------------------------------------


def test_a_carrier_opt_out_on_a_damaged_history_cancels_and_is_still_recorded(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    consent = grant(engine)
    first = queue(engine, "CA0001", consent=consent, due_at=NOW)
    queue(engine, "CA0002", consent=consent, due_at=NOW + timedelta(hours=2))
    assert sent_bodies(engine, 0) != []
    with engine.begin() as conn:
        message_sid = conn.execute(
            select(outbox.c.provider_message_id).where(outbox.c.id == first.id)
        ).scalar_one()
    damage_history(engine)
    report = DeliveryReport(message_sid, "undelivered", 21610, first.id, BUSINESS_NUMBER, CALLER)

    with caplog.at_level("ERROR", logger=LOGGER), engine.begin() as conn:
        update = record_delivery(conn, report, NOW + timedelta(minutes=5), OWNER_RULES)

    assert update is DeliveryUpdate.RECORDED
    with engine.begin() as conn:
        [revocation] = latest_events(conn, 1, BUSINESS)
    evidence = revocation.evidence()
    assert (revocation.kind, evidence.revokes) == (EventKind.REVOKED, consent)
    assert RECORDED_DESPITE_DAMAGE in evidence.note
    assert kinds_and_statuses(engine) == [
        (OutboxKind.CONFIRMATION, OutboxStatus.UNDELIVERED),
        (OutboxKind.CONFIRMATION, OutboxStatus.CANCELLED),
    ]
    assert [line for line in error_lines(caplog) if "damaged" in line] != []
    assert sent_bodies(engine, 5 * 60) == []
