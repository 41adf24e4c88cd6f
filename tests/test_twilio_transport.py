"""The Twilio transport: the real ``twilio`` client against a fake Twilio REST server, alone and
under the dispatcher (21610 revokes, 21211 fails with the reason, 500 and timeouts retry without
duplicates, a worker killed mid-send never sends twice), and status callbacks recorded by outbox
id, including those that come before the send is recorded (the webhook itself:
``test_status_callbacks``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from consent_ledger import EventKind, events_for_number
from sms_sender import dispatch
from sms_sender.delivery import (
    DeliveryReport,
    DeliveryUpdate,
    apply_early_report,
    record_delivery,
)
from sms_sender.dispatch import LEASE, DispatchReport, dispatch_due, retry_delay
from sms_sender.outbox import OutboxStatus
from sms_sender.tables import early_delivery_reports
from sms_sender.transport import OutgoingSms, SendFailed, SendReceipt
from sms_sender.twilio_transport import TwilioSmsTransport
from tests.conftest import BACKENDS
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, Hold, TwilioError, fake_twilio
from tests.sms_support import BUSINESS, CALLER, NOW, RULES, grant, outbox_rows, queue, sms_engine

CALLBACK_URL = "https://receptionist.example.com/twilio/sms/status"
SMS = OutgoingSms(to_number=CALLER, from_number="+15125550100", body="Acme Plumbing: hello")
UNSUBSCRIBED = TwilioError(400, 21610, "Attempt to send to unsubscribed recipient")
INVALID = TwilioError(400, 21211, "The 'To' number +15125550123 is not a valid phone number.")
OUTAGE = TwilioError(500, 20500, "Internal Server Error")


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with fake_twilio() as running:
        yield running


@pytest.fixture
def transport(fake: FakeTwilio) -> TwilioSmsTransport:
    return TwilioSmsTransport(
        ACCOUNT_SID, AUTH_TOKEN, CALLBACK_URL, timeout_seconds=0.3, api_base_url=fake.base_url
    )


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with sms_engine(request.param, tmp_path, "sms_twilio") as database:
        yield database


# --- the transport alone ----------------------------------------------------------------------


def test_a_text_is_created_with_its_status_callback_naming_its_outbox_row(
    fake: FakeTwilio, transport: TwilioSmsTransport
) -> None:
    receipt = transport.send(dataclasses.replace(SMS, outbox_id=42))
    transport.send(SMS)

    first, second = fake.state.messages
    assert receipt.provider_message_id == first.sid and first.sid.startswith("SM")
    assert (first.to, first.from_, first.body) == (SMS.to_number, SMS.from_number, SMS.body)
    assert first.status_callback == f"{CALLBACK_URL}?outbox=42"
    assert second.status_callback == CALLBACK_URL


def test_a_callback_url_with_a_query_gets_the_outbox_id_appended(fake: FakeTwilio) -> None:
    with_query = TwilioSmsTransport(
        ACCOUNT_SID, AUTH_TOKEN, f"{CALLBACK_URL}?region=us", api_base_url=fake.base_url
    )
    without_callback = TwilioSmsTransport(ACCOUNT_SID, AUTH_TOKEN, None, api_base_url=fake.base_url)

    with_query.send(dataclasses.replace(SMS, outbox_id=7))
    without_callback.send(dataclasses.replace(SMS, outbox_id=8))

    assert [m.status_callback for m in fake.state.messages] == [
        f"{CALLBACK_URL}?region=us&outbox=7",
        None,
    ]


@pytest.mark.parametrize(
    ("error", "permanent", "reason"),
    [
        (UNSUBSCRIBED, True, "21610: Attempt to send to unsubscribed recipient"),
        (INVALID, True, "21211: The 'To' number +15125550123 is not a valid phone number."),
        (OUTAGE, False, "20500: Internal Server Error"),
        (TwilioError(429, 20429, "Too Many Requests"), False, "20429: Too Many Requests"),
    ],
)
def test_provider_errors_map_to_send_failures(
    fake: FakeTwilio,
    transport: TwilioSmsTransport,
    error: TwilioError,
    permanent: bool,
    reason: str,
) -> None:
    fake.state.script.append(error)
    with pytest.raises(SendFailed) as failure:
        transport.send(SMS)
    assert (failure.value.permanent, failure.value.reason, failure.value.code) == (
        permanent,
        reason,
        error.code,
    )


def test_a_timeout_is_a_transient_failure(fake: FakeTwilio, transport: TwilioSmsTransport) -> None:
    fake.state.script.append(Hold())
    with pytest.raises(SendFailed) as failure:
        transport.send(SMS)
    assert not failure.value.permanent and "Timeout" in failure.value.reason


def test_wrong_credentials_are_a_permanent_failure(fake: FakeTwilio) -> None:
    wrong = TwilioSmsTransport(ACCOUNT_SID, "wrong", None, api_base_url=fake.base_url)
    with pytest.raises(SendFailed) as failure:
        wrong.send(SMS)
    assert failure.value.permanent and failure.value.code == 20003


def test_find_accepted_finds_only_an_identical_recent_text(
    transport: TwilioSmsTransport,
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    receipt = transport.send(SMS)

    assert transport.find_accepted(SMS, since) == receipt
    other = OutgoingSms(SMS.to_number, SMS.from_number, "something else")
    assert transport.find_accepted(other, since) is None
    assert transport.find_accepted(SMS, datetime.now(UTC) + timedelta(minutes=5)) is None


def test_an_unreachable_provider_is_transient() -> None:
    nowhere = TwilioSmsTransport(
        ACCOUNT_SID, AUTH_TOKEN, None, timeout_seconds=0.3, api_base_url="http://127.0.0.1:9"
    )
    with pytest.raises(SendFailed) as failure:
        nowhere.send(SMS)
    assert not failure.value.permanent


# --- under the dispatcher ---------------------------------------------------------------------


def ledger_kinds(engine: Engine) -> list[EventKind]:
    with engine.begin() as conn:
        return [event.kind for event in events_for_number(conn, BUSINESS, CALLER)]


def test_21610_at_send_fails_the_text_revokes_and_cancels_the_rest(
    engine: Engine, fake: FakeTwilio, transport: TwilioSmsTransport
) -> None:
    consent = grant(engine)
    queue(engine, "CA0001", consent=consent)
    queue(engine, "CA0002", consent=consent, due_at=NOW + timedelta(hours=2))
    fake.state.script.append(UNSUBSCRIBED)

    assert dispatch_due(engine, transport, NOW, rules=RULES).failed == 1

    rows = outbox_rows(engine)
    assert (rows["CA0001"].status, rows["CA0001"].reason) == (
        OutboxStatus.FAILED,
        "21610: Attempt to send to unsubscribed recipient",
    )
    assert rows["CA0002"].status is OutboxStatus.CANCELLED
    assert ledger_kinds(engine)[-1] is EventKind.REVOKED


def test_an_invalid_number_fails_with_the_providers_reason(
    engine: Engine, fake: FakeTwilio, transport: TwilioSmsTransport
) -> None:
    grant(engine)
    queue(engine)
    fake.state.script.append(INVALID)

    assert dispatch_due(engine, transport, NOW, rules=RULES) == DispatchReport(0, 0, 1)
    assert outbox_rows(engine)["CA0001"].reason == INVALID.code.__str__() + ": " + INVALID.message
    assert fake.state.messages == []


@pytest.mark.parametrize("trouble", [OUTAGE, Hold()])
def test_outages_and_timeouts_are_retried_and_sent_once(
    engine: Engine, fake: FakeTwilio, transport: TwilioSmsTransport, trouble: object
) -> None:
    grant(engine)
    queue(engine)
    fake.state.script.append(trouble)  # type: ignore[arg-type]

    assert dispatch_due(engine, transport, NOW, rules=RULES).retried == 1
    fake.state.release.set()
    assert dispatch_due(engine, transport, NOW + retry_delay(1), rules=RULES).sent == 1

    assert len(fake.state.messages) == 1
    assert outbox_rows(engine)["CA0001"].provider_message_id == fake.state.messages[0].sid


class WorkerKilled(BaseException):
    """Stands for the process dying: nothing after it runs, nothing is committed."""


class DiesAfterSending:
    name = "dies-after-sending"

    def __init__(self, inner: TwilioSmsTransport) -> None:
        self.inner = inner

    def send(self, sms: OutgoingSms) -> SendReceipt:
        self.inner.send(sms)
        raise WorkerKilled()

    def find_accepted(self, sms: OutgoingSms, since: datetime) -> SendReceipt | None:
        return self.inner.find_accepted(sms, since)


def test_a_worker_killed_mid_send_never_causes_a_duplicate(
    engine: Engine, fake: FakeTwilio, transport: TwilioSmsTransport
) -> None:
    grant(engine)
    queue(engine)
    with pytest.raises(WorkerKilled):
        dispatch_due(engine, DiesAfterSending(transport), NOW, rules=RULES)
    assert outbox_rows(engine)["CA0001"].status is OutboxStatus.CLAIMED

    assert dispatch_due(engine, transport, NOW + timedelta(seconds=30), rules=RULES).sent == 0
    assert dispatch_due(engine, transport, NOW + LEASE, rules=RULES).sent == 1

    assert len(fake.state.messages) == 1
    assert outbox_rows(engine)["CA0001"].provider_message_id == fake.state.messages[0].sid


# --- status callbacks ---------------------------------------------------------------------------


def report(
    engine: Engine, message_id: int, sid: str, status: str, code: int | None = None
) -> DeliveryUpdate:
    with engine.begin() as conn:
        return record_delivery(
            conn, DeliveryReport(sid, status, code, outbox_id=message_id), NOW, RULES
        )


def test_status_callbacks_move_delivery_forward_once(
    engine: Engine, transport: TwilioSmsTransport
) -> None:
    grant(engine)
    queue(engine)
    dispatch_due(engine, transport, NOW, rules=RULES)
    row = outbox_rows(engine)["CA0001"]
    sid = row.provider_message_id
    assert sid is not None

    assert report(engine, row.id, sid, "sent") is DeliveryUpdate.UNCHANGED
    assert report(engine, row.id, sid, "delivered") is DeliveryUpdate.RECORDED
    assert report(engine, row.id, sid, "delivered") is DeliveryUpdate.UNCHANGED
    assert report(engine, row.id, sid, "undelivered", 30003) is DeliveryUpdate.UNCHANGED
    assert report(engine, row.id, sid, "exploded") is DeliveryUpdate.UNKNOWN_STATUS
    assert outbox_rows(engine)["CA0001"].status is OutboxStatus.DELIVERED
    assert report(engine, row.id + 1, sid, "delivered") is DeliveryUpdate.UNKNOWN_MESSAGE
    assert report(engine, row.id, "SM" + "0" * 32, "delivered") is DeliveryUpdate.MISMATCH
    with engine.begin() as conn:
        by_sid = DeliveryReport("SM" + "0" * 32, "delivered")
        assert record_delivery(conn, by_sid, NOW, RULES) is DeliveryUpdate.UNKNOWN_MESSAGE


def test_a_callback_must_name_the_texts_numbers(
    engine: Engine, transport: TwilioSmsTransport
) -> None:
    grant(engine)
    queue(engine)
    row = outbox_rows(engine)["CA0001"]
    sid = "SM" + "5" * 32

    for numbers in ({"from_number": "+13035550140"}, {"to_number": "+13035550177"}):
        with engine.begin() as conn:
            stray = DeliveryReport(sid, "delivered", outbox_id=row.id, **numbers)
            assert record_delivery(conn, stray, NOW, RULES) is DeliveryUpdate.MISMATCH
    with engine.begin() as conn:
        assert list(conn.execute(select(early_delivery_reports))) == []


def test_a_21610_callback_revokes_and_cancels_pending(
    engine: Engine, transport: TwilioSmsTransport
) -> None:
    consent = grant(engine)
    queue(engine, "CA0001", consent=consent)
    queue(engine, "CA0002", consent=consent, due_at=NOW + timedelta(hours=2))
    dispatch_due(engine, transport, NOW, rules=RULES)
    row = outbox_rows(engine)["CA0001"]
    assert row.provider_message_id is not None

    update = report(engine, row.id, row.provider_message_id, "undelivered", 21610)

    assert update is DeliveryUpdate.RECORDED
    rows = outbox_rows(engine)
    assert (rows["CA0001"].status, rows["CA0001"].reason) == (
        OutboxStatus.UNDELIVERED,
        "undelivered: error 21610",
    )
    assert rows["CA0002"].status is OutboxStatus.CANCELLED
    assert ledger_kinds(engine)[-1] is EventKind.REVOKED


def test_a_callback_after_the_worker_died_is_held_and_applied_when_the_send_is_found(
    engine: Engine, fake: FakeTwilio, transport: TwilioSmsTransport
) -> None:
    grant(engine)
    row = queue(engine)
    with pytest.raises(WorkerKilled):
        dispatch_due(engine, DiesAfterSending(transport), NOW, rules=RULES)
    [stored] = fake.state.messages

    assert report(engine, row.id, stored.sid, "sent") is DeliveryUpdate.UNCHANGED
    assert report(engine, row.id, stored.sid, "failed", 30008) is DeliveryUpdate.HELD
    assert report(engine, row.id, stored.sid, "delivered") is DeliveryUpdate.HELD  # first wins
    assert outbox_rows(engine)["CA0001"].status is OutboxStatus.CLAIMED

    assert dispatch_due(engine, transport, NOW + LEASE, rules=RULES).sent == 1

    sent = outbox_rows(engine)["CA0001"]
    assert (sent.provider_message_id, sent.status, sent.reason) == (
        stored.sid,
        OutboxStatus.FAILED,
        "failed: error 30008",
    )
    assert len(fake.state.messages) == 1
    with engine.begin() as conn:
        assert list(conn.execute(select(early_delivery_reports))) == []


def test_an_early_report_for_another_message_sid_is_never_applied(
    engine: Engine, fake: FakeTwilio, transport: TwilioSmsTransport
) -> None:
    grant(engine)
    row = queue(engine)
    assert report(engine, row.id, "SM" + "7" * 32, "undelivered", 30003) is DeliveryUpdate.HELD

    assert dispatch_due(engine, transport, NOW, rules=RULES).sent == 1

    assert outbox_rows(engine)["CA0001"].status is OutboxStatus.SENT


def test_an_early_report_is_applied_when_the_send_is_recorded_after_an_error(
    engine: Engine, fake: FakeTwilio, transport: TwilioSmsTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant(engine)
    row = queue(engine)
    with pytest.raises(WorkerKilled):
        dispatch_due(engine, DiesAfterSending(transport), NOW, rules=RULES)
    [stored] = fake.state.messages
    assert report(engine, row.id, stored.sid, "delivered") is DeliveryUpdate.HELD
    calls: list[str] = []

    def fails_the_first_time(*args: Any) -> DeliveryUpdate | None:
        calls.append(args[2])
        if len(calls) == 1:
            raise RuntimeError("the send's transaction breaks after Twilio accepted the text")
        return apply_early_report(*args)

    monkeypatch.setattr(dispatch, "apply_early_report", fails_the_first_time)

    assert dispatch_due(engine, transport, NOW + LEASE, rules=RULES).sent == 1

    assert calls == [stored.sid, stored.sid]
    sent = outbox_rows(engine)["CA0001"]
    assert (sent.provider_message_id, sent.status) == (stored.sid, OutboxStatus.DELIVERED)
