"""The dispatcher: due outbox rows are sent only with consent, once, and failures close."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from consent_ledger.evidence import ConsentMethod, EventKind
from sms_sender.dispatch import DispatchReport, dispatch_due, retry_delay
from sms_sender.local_transport import LocalSmsTransport
from sms_sender.outbox import OutboxStatus, cancel_pending
from sms_sender.transport import OutgoingSms, SendFailed, SendReceipt
from tests.conftest import BACKENDS
from tests.ledger_support import without_call
from tests.sms_support import (
    BUSINESS,
    CALLER,
    CONSENTED_AT,
    NOW,
    FailingTransport,
    OverLocalTransport,
    grant,
    outbox_rows,
    queue,
    record,
    run_in_threads,
    sms_engine,
)

DROP_UPDATE_TRIGGER = {
    "sqlite": "DROP TRIGGER consent_events_refuse_update",
    "postgresql": "DROP TRIGGER consent_events_refuse_update_delete ON consent_events",
}


# --- databases --------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with sms_engine(request.param, tmp_path, "dispatch") as database:
        yield database


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Engine]:
    with sms_engine("postgresql", tmp_path, "dispatch") as database:
        yield database


# --- consent events and outbox rows -----------------------------------------------------------


def change_of_mind(engine: Engine, kind: EventKind, revokes: str | None, at: datetime) -> None:
    """Record a decline (on a call) or a revocation (by SMS keyword) for ``CALLER``."""
    evidence = without_call(
        kind,
        ConsentMethod.SMS_KEYWORD,
        at,
        business_id=BUSINESS,
        business_name="Acme Plumbing",
        number=CALLER,
        revokes=revokes,
    )
    record(engine, evidence, at)


# --- sending with and without consent ---------------------------------------------------------


def test_a_due_text_with_consent_is_sent_and_recorded(engine: Engine) -> None:
    consent = grant(engine)
    queued = queue(engine, consent=consent)
    shown: list[tuple[OutgoingSms, SendReceipt]] = []
    transport = LocalSmsTransport(on_send=lambda sms, receipt: shown.append((sms, receipt)))

    report = dispatch_due(engine, transport, NOW)

    assert report == DispatchReport(sent=1, blocked=0, failed=0)
    assert transport.delivered == [
        OutgoingSms(CALLER, "+15125550100", queued.body, outbox_id=queued.id)
    ]
    [(sms, receipt)] = shown
    assert sms == transport.delivered[0]
    assert re.fullmatch(r"LM[0-9a-f]{32}", receipt.provider_message_id)
    sent = outbox_rows(engine)["CA0001"]
    assert sent.status is OutboxStatus.SENT
    assert sent.provider_message_id == receipt.provider_message_id
    assert (sent.sent_at, sent.claimed_at, sent.attempts, sent.reason) == (NOW, NOW, 1, None)
    assert dispatch_due(engine, transport, NOW + timedelta(hours=1)) == DispatchReport(0, 0, 0)
    assert len(transport.delivered) == 1


def test_without_consent_the_text_is_blocked(engine: Engine) -> None:
    queue(engine)
    grant(engine, number="+15125550124")  # someone else's consent allows nothing here
    transport = LocalSmsTransport()

    assert dispatch_due(engine, transport, NOW) == DispatchReport(sent=0, blocked=1, failed=0)

    assert transport.delivered == []
    blocked = outbox_rows(engine)["CA0001"]
    assert (blocked.status, blocked.reason) == (OutboxStatus.BLOCKED, "no_consent")
    assert blocked.sent_at is None


def test_after_a_revocation_the_text_is_blocked(engine: Engine) -> None:
    consent = grant(engine)
    change_of_mind(engine, EventKind.REVOKED, revokes=consent, at=CONSENTED_AT)
    queue(engine, consent=consent)
    transport = LocalSmsTransport()

    assert dispatch_due(engine, transport, NOW).blocked == 1

    assert transport.delivered == []
    assert outbox_rows(engine)["CA0001"].reason == "revoked"


def test_after_a_decline_the_text_is_blocked(engine: Engine) -> None:
    grant(engine)
    change_of_mind(engine, EventKind.CONSENT_DECLINED, revokes=None, at=CONSENTED_AT)
    queue(engine)
    transport = LocalSmsTransport()

    assert dispatch_due(engine, transport, NOW).blocked == 1

    assert transport.delivered == []
    assert outbox_rows(engine)["CA0001"].reason == "declined"


def test_texts_past_the_cap_are_blocked(engine: Engine) -> None:
    consent = grant(engine, max_texts=1)
    queue(engine, "CA0001", consent=consent)
    queue(engine, "CA0002", consent=consent, due_at=CONSENTED_AT + timedelta(seconds=1))
    transport = LocalSmsTransport()

    assert dispatch_due(engine, transport, NOW) == DispatchReport(sent=1, blocked=1, failed=0)

    assert len(transport.delivered) == 1
    rows = outbox_rows(engine)
    assert rows["CA0001"].status is OutboxStatus.SENT
    assert (rows["CA0002"].status, rows["CA0002"].reason) == (OutboxStatus.BLOCKED, "cap_reached")


def test_a_text_due_after_the_consent_window_is_blocked(engine: Engine) -> None:
    grant(engine)
    queue(engine, due_at=CONSENTED_AT + timedelta(hours=23))
    transport = LocalSmsTransport()

    assert dispatch_due(engine, transport, CONSENTED_AT + timedelta(hours=24)).blocked == 1

    assert transport.delivered == []
    assert outbox_rows(engine)["CA0001"].reason == "expired"


def test_a_text_due_later_is_not_sent_yet(engine: Engine) -> None:
    grant(engine)
    queue(engine, due_at=NOW + timedelta(microseconds=1))
    transport = LocalSmsTransport()

    assert dispatch_due(engine, transport, NOW) == DispatchReport(sent=0, blocked=0, failed=0)

    assert transport.delivered == []
    assert outbox_rows(engine)["CA0001"].status is OutboxStatus.SCHEDULED
    assert dispatch_due(engine, transport, NOW + timedelta(seconds=1)).sent == 1


def test_cancelled_texts_are_not_sent(engine: Engine) -> None:
    grant(engine)
    queue(engine)
    with engine.begin() as conn:
        assert cancel_pending(conn, BUSINESS, CALLER, "revoked") == 1
    transport = LocalSmsTransport()

    assert dispatch_due(engine, transport, NOW) == DispatchReport(sent=0, blocked=0, failed=0)
    assert transport.delivered == []


def test_the_limit_bounds_one_pass(engine: Engine) -> None:
    grant(engine, max_texts=4)
    for index in range(3):
        queue(engine, f"CA000{index}", due_at=CONSENTED_AT + timedelta(seconds=index))
    transport = LocalSmsTransport()

    assert dispatch_due(engine, transport, NOW, limit=2).sent == 2
    assert [m.status for m in outbox_rows(engine).values()] == [
        OutboxStatus.SENT,
        OutboxStatus.SENT,
        OutboxStatus.SCHEDULED,
    ]


def test_a_naive_now_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="aware"):
        dispatch_due(engine, LocalSmsTransport(), datetime(2025, 6, 2, 15, 1))


# --- transport failures -----------------------------------------------------------------------


def test_a_permanent_failure_marks_the_text_failed(engine: Engine) -> None:
    grant(engine)
    queue(engine)
    transport = FailingTransport(SendFailed("21211: invalid To number", permanent=True))

    assert dispatch_due(engine, transport, NOW) == DispatchReport(sent=0, blocked=0, failed=1)

    failed = outbox_rows(engine)["CA0001"]
    assert (failed.status, failed.reason) == (OutboxStatus.FAILED, "21211: invalid To number")
    assert (failed.attempts, failed.sent_at) == (1, None)
    assert dispatch_due(engine, transport, NOW + timedelta(hours=1)).failed == 0
    assert transport.tried == 1


def test_transient_failures_back_off_then_give_up_after_five_attempts(engine: Engine) -> None:
    grant(engine)
    queue(engine)
    transport = FailingTransport(*(SendFailed("timeout", permanent=False) for _ in range(5)))
    at = NOW
    waits = []
    for _ in range(4):
        assert dispatch_due(engine, transport, at) == DispatchReport(0, 0, 0, retried=1)
        row = outbox_rows(engine)["CA0001"]
        assert (row.status, row.reason) == (OutboxStatus.SCHEDULED, "timeout")
        waits.append(row.due_at - at)
        assert dispatch_due(engine, transport, row.due_at - timedelta(microseconds=1)) == (
            DispatchReport(0, 0, 0)
        )
        at = row.due_at

    assert dispatch_due(engine, transport, at) == DispatchReport(sent=0, blocked=0, failed=1)

    assert waits == [timedelta(seconds=seconds) for seconds in (30, 60, 120, 240)]
    assert [retry_delay(attempts) for attempts in (1, 2, 3, 4)] == waits
    failed = outbox_rows(engine)["CA0001"]
    assert failed.status is OutboxStatus.FAILED
    assert failed.reason == "gave up after 5 attempts: timeout"
    assert (failed.attempts, transport.tried, transport.local.delivered) == (5, 5, [])


def test_a_transient_failure_then_success_is_sent(engine: Engine) -> None:
    grant(engine)
    queue(engine)
    transport = FailingTransport(SendFailed("rate limited", permanent=False))

    assert dispatch_due(engine, transport, NOW).retried == 1
    assert dispatch_due(engine, transport, NOW + retry_delay(1)).sent == 1

    sent = outbox_rows(engine)["CA0001"]
    assert (sent.status, sent.attempts, sent.reason) == (OutboxStatus.SENT, 2, None)
    assert sent.sent_at == NOW + retry_delay(1)


def test_an_unexpected_error_sends_nothing_and_the_next_row_still_goes(engine: Engine) -> None:
    grant(engine, max_texts=2)
    grant(engine, number="+15125550124")
    queue(engine, "CA0001")
    queue(engine, "CA0002", number="+15125550124", due_at=CONSENTED_AT + timedelta(seconds=1))
    transport = FailingTransport(RuntimeError("provider SDK exploded"))

    assert dispatch_due(engine, transport, NOW) == DispatchReport(sent=1, blocked=0, failed=1)

    rows = outbox_rows(engine)
    assert (rows["CA0001"].status, rows["CA0001"].reason) == (
        OutboxStatus.FAILED,
        "internal error",
    )
    assert rows["CA0001"].sent_at is None
    assert rows["CA0002"].status is OutboxStatus.SENT
    assert [sms.to_number for sms in transport.local.delivered] == ["+15125550124"]
    assert dispatch_due(engine, transport, NOW + timedelta(hours=1)) == DispatchReport(0, 0, 0)


def test_a_tampered_ledger_blocks_instead_of_sending(engine: Engine) -> None:
    grant(engine)
    queue(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(DROP_UPDATE_TRIGGER[conn.dialect.name])
        conn.exec_driver_sql("UPDATE consent_events SET body = replace(body, 'yes', 'yes!')")
    transport = LocalSmsTransport()

    assert dispatch_due(engine, transport, NOW) == DispatchReport(sent=0, blocked=1, failed=0)

    assert transport.delivered == []
    assert outbox_rows(engine)["CA0001"].reason == "invalid_record"


# --- PostgreSQL: concurrency ------------------------------------------------------------------


class RendezvousTransport(OverLocalTransport):
    """Holds each thread's first send until both threads are sending at the same time."""

    name = "rendezvous"

    def __init__(self) -> None:
        super().__init__()
        self.both_sending = threading.Barrier(2, timeout=10)
        self.thread_state = threading.local()

    def send(self, sms: OutgoingSms) -> SendReceipt:
        if not getattr(self.thread_state, "met", False):
            self.thread_state.met = True
            self.both_sending.wait()
        return self.local.send(sms)


def test_two_dispatchers_skip_each_others_rows_and_send_each_once(postgres: Engine) -> None:
    numbers = [f"+1512555{1000 + index}" for index in range(12)]
    for index, number in enumerate(numbers):
        grant(postgres, number=number)
        queue(postgres, f"CA{index:04}", number=number)
    transport = RendezvousTransport()
    reports: list[DispatchReport] = []

    def dispatcher() -> None:
        reports.append(dispatch_due(postgres, transport, NOW))

    run_in_threads(threading.Thread(target=dispatcher), threading.Thread(target=dispatcher))

    assert sorted(sms.to_number for sms in transport.local.delivered) == sorted(numbers)
    assert sum(report.sent for report in reports) == 12
    assert all(report.sent >= 1 for report in reports)  # both sent while the other held a row
    assert sum(report.failed + report.blocked for report in reports) == 0
    assert {m.status for m in outbox_rows(postgres).values()} == {OutboxStatus.SENT}


class WaitForRivalTransport(OverLocalTransport):
    """Holds the first send until another session waits for an advisory lock."""

    name = "wait-for-rival"

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.rival_waited = False

    def send(self, sms: OutgoingSms) -> SendReceipt:
        if not self.local.delivered:
            self.rival_waited = self._wait_for_rival()
        return self.local.send(sms)

    def _wait_for_rival(self) -> bool:
        waiting = text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        with self.engine.connect() as conn:
            for _ in range(1000):
                if conn.execute(waiting).scalar_one() > 0:
                    return True
                conn.execute(text("SELECT pg_sleep(0.01)"))
                conn.rollback()
        return False


def test_two_dispatchers_never_exceed_the_cap_for_one_number(postgres: Engine) -> None:
    consent = grant(postgres, max_texts=1)
    queue(postgres, "CA0001", consent=consent)
    queue(postgres, "CA0002", consent=consent)
    transport = WaitForRivalTransport(postgres)
    reports: list[DispatchReport] = []

    def dispatcher() -> None:
        reports.append(dispatch_due(postgres, transport, NOW, limit=1))

    run_in_threads(threading.Thread(target=dispatcher), threading.Thread(target=dispatcher))

    assert transport.rival_waited
    assert len(transport.local.delivered) == 1
    assert sorted(m.reason or "" for m in outbox_rows(postgres).values()) == ["", "cap_reached"]


class HeldTransport(OverLocalTransport):
    """Sends, then holds the transaction open until told to finish."""

    name = "held"

    def __init__(self) -> None:
        super().__init__()
        self.sending = threading.Event()
        self.finish = threading.Event()

    def send(self, sms: OutgoingSms) -> SendReceipt:
        receipt = self.local.send(sms)
        self.sending.set()
        assert self.finish.wait(timeout=10)
        return receipt


def test_a_revocation_waits_for_the_text_being_sent(postgres: Engine) -> None:
    grant(postgres)
    queue(postgres)
    transport = HeldTransport()
    dispatcher = threading.Thread(target=dispatch_due, args=(postgres, transport, NOW))
    dispatcher.start()
    assert transport.sending.wait(timeout=10)

    with postgres.connect() as conn:
        conn.execute(text("SET lock_timeout = '50ms'"))
        with pytest.raises(DBAPIError, match="lock timeout"):
            cancel_pending(conn, BUSINESS, CALLER, "revoked")
        conn.rollback()
    transport.finish.set()
    dispatcher.join(timeout=10)

    with postgres.begin() as conn:
        assert cancel_pending(conn, BUSINESS, CALLER, "revoked") == 0
    assert outbox_rows(postgres)["CA0001"].status is OutboxStatus.SENT


def test_rows_sent_by_a_dispatcher_keep_their_identity(engine: Engine) -> None:
    consent = grant(engine)
    queued = queue(engine, consent=consent)

    dispatch_due(engine, LocalSmsTransport(), NOW)

    sent = outbox_rows(engine)["CA0001"]
    unchanged = ("status", "claimed_at", "sent_at", "provider_message_id", "attempts", "reason")
    assert dataclasses.replace(sent, **{f: getattr(queued, f) for f in unchanged}) == queued
