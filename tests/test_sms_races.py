"""Races: STOP against a worker claiming the same text (a caller's, or the owner's summary), two
STOPs sent together, a worker killed mid-send, four workers, and the carrier's error 21610 meeting
a STOP or another worker on PostgreSQL (no deadlock).

Rounds are bounded by count and driven by threads that start together at a barrier, or, for
21610, by a transport that answers once the racer waits on a lock (polled, with a bound); no test
asserts on the clock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import make_url

from consent_ledger import (
    ConsentMethod,
    EventKind,
    events_for_number,
    owner_notifications_allowed,
)
from consent_ledger.tables import consent_events
from sms_sender.dispatch import LEASE, dispatch_due
from sms_sender.inbound import InboundSms, handle_inbound
from sms_sender.local_transport import LocalSmsTransport
from sms_sender.outbox import OutboxKind, OutboxStatus, list_outbox
from sms_sender.owner import CallSummary, queue_owner_summary
from sms_sender.owner_choice import record_owner_choice
from sms_sender.send_rules import SendRules
from sms_sender.tables import outbox
from sms_sender.transport import OutgoingSms, SendFailed, SendReceipt
from tests.conftest import BACKENDS, fresh_database
from tests.sms_support import (
    BUSINESS,
    BUSINESS_NUMBER,
    CALLER,
    CONSENTED_AT,
    NOW,
    OPT_OUT_TEXT,
    POLICY,
    RULES,
    grant,
    queue,
    run_in_threads,
    sms_engine,
    with_tables,
)
from voice_agent.records.database import make_engine

ROUNDS = {"postgresql": 1000, "sqlite": 250}
"""STOP-against-worker rounds. SQLite serialises writers whole (BEGIN IMMEDIATE), so fewer rounds
there prove the same; PostgreSQL's row locks are where the race is real."""


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with sms_engine(request.param, tmp_path, "sms_races") as database:
        yield database


def number(index: int) -> str:
    return f"+1512{5550000 + index:07d}"


class RevocationWitness:
    """A transport that, at the moment a text other than an opt-out confirmation is handed to it,
    asks the database (on a separate connection, so it sees only committed data) whether the
    recipient's revocation (or, for the owner's phone, its opt-out) committed."""

    name = "witness"

    def __init__(self, engine: Engine, revocation: EventKind = EventKind.REVOKED) -> None:
        self.observer = create_engine(engine.url)  # no BEGIN IMMEDIATE: it only reads
        self.revocation = revocation
        self.local = LocalSmsTransport()
        self.after_revocation: list[str] = []

    def send(self, sms: OutgoingSms) -> SendReceipt:
        with self.observer.connect() as conn:
            kind = conn.execute(select(outbox.c.kind).where(outbox.c.id == sms.outbox_id)).scalar()
            revoked = conn.execute(
                select(consent_events.c.id).where(
                    consent_events.c.phone_number == sms.to_number,
                    consent_events.c.kind == self.revocation.value,
                )
            ).first()
        if kind != OutboxKind.OPT_OUT_CONFIRMATION.value and revoked is not None:
            self.after_revocation.append(sms.to_number)
        return self.local.send(sms)

    def find_accepted(self, sms: OutgoingSms, since: object) -> SendReceipt | None:
        return None


def test_stop_racing_a_worker_never_lets_a_text_out_after_the_revocation(engine: Engine) -> None:
    rounds = ROUNDS[engine.dialect.name]
    for index in range(rounds):
        grant(engine, number=number(index))
    for index in range(rounds):
        queue(
            engine,
            f"CA{index:05d}",
            number=number(index),
            due_at=CONSENTED_AT + timedelta(seconds=index),
        )
    transport = RevocationWitness(engine)
    sent_before_stop = 0
    for index in range(rounds):
        now = CONSENTED_AT + timedelta(seconds=index)
        start = threading.Barrier(2, timeout=10)

        def worker(at=now, barrier=start) -> None:  # type: ignore[no-untyped-def]
            barrier.wait()
            dispatch_due(engine, transport, at, limit=2, rules=RULES)

        def stop(i=index, at=now, barrier=start) -> None:  # type: ignore[no-untyped-def]
            sms = InboundSms(f"SM{i:032d}", number(i), BUSINESS_NUMBER, "STOP")
            barrier.wait()
            with engine.begin() as conn:
                handle_inbound(conn, sms, POLICY, at)

        run_in_threads(threading.Thread(target=worker), threading.Thread(target=stop))
    sent_before_stop = sum(1 for sms in transport.local.delivered if sms.body != OPT_OUT_TEXT)

    assert transport.after_revocation == []
    with engine.begin() as conn:
        statuses = {m.status for m in list_outbox(conn) if m.kind.value == "confirmation"}
    assert statuses <= {OutboxStatus.SENT, OutboxStatus.CANCELLED}
    assert 0 <= sent_before_stop <= rounds


def test_owner_stop_racing_a_worker_never_lets_a_summary_out_after_the_opt_out(
    engine: Engine,
) -> None:
    rounds = ROUNDS[engine.dialect.name] // 4
    policies = {
        f"owner-race-{i}": dataclasses.replace(
            POLICY, business_id=f"owner-race-{i}", owner_number=number(i)
        )
        for i in range(rounds)
    }
    rules = SendRules(
        policies=lambda _conn, business_id: policies.get(business_id),
        owner_opted_in=owner_notifications_allowed,
    )
    for index, policy in enumerate(policies.values()):
        call = CallSummary(f"CA{index:05d}", BUSINESS_NUMBER, CALLER, None, None, None, None, "")
        with engine.begin() as conn:
            record_owner_choice(conn, policy, True, ConsentMethod.OWNER, CONSENTED_AT)
            queue_owner_summary(conn, call, policy, CONSENTED_AT + timedelta(seconds=index))
    transport = RevocationWitness(engine, EventKind.OWNER_NOTIFICATIONS_OPT_OUT)
    for index, policy in enumerate(policies.values()):
        now = CONSENTED_AT + timedelta(seconds=index)
        start = threading.Barrier(2, timeout=10)

        def worker(at=now, barrier=start) -> None:  # type: ignore[no-untyped-def]
            barrier.wait()
            dispatch_due(engine, transport, at, limit=2, rules=rules)

        def stop(i=index, at=now, barrier=start, owner=policy) -> None:  # type: ignore[no-untyped-def]
            sms = InboundSms(f"SM{i:032d}", number(i), BUSINESS_NUMBER, "STOP")
            barrier.wait()
            with engine.begin() as conn:
                handle_inbound(conn, sms, owner, at)

        run_in_threads(threading.Thread(target=worker), threading.Thread(target=stop))

    assert transport.after_revocation == []
    with engine.begin() as conn:
        summaries = Counter(
            m.status for m in list_outbox(conn) if m.kind is OutboxKind.OWNER_SUMMARY
        )
        opted_out = sum(
            not owner_notifications_allowed(conn, policy.business_id, number(i))
            for i, policy in enumerate(policies.values())
        )
    assert set(summaries) <= {OutboxStatus.SENT, OutboxStatus.CANCELLED}
    assert summaries.total() == opted_out == rounds


def test_two_stops_sent_together_by_a_number_that_never_consented_are_confirmed_once(
    engine: Engine,
) -> None:
    rounds = ROUNDS[engine.dialect.name] // 10
    for index in range(rounds):
        start = threading.Barrier(2, timeout=10)

        def stop(sid: str, i: int = index, barrier: threading.Barrier = start) -> None:
            sms = InboundSms(sid, number(i), BUSINESS_NUMBER, "STOP")
            barrier.wait()
            with engine.begin() as conn:
                handle_inbound(conn, sms, POLICY, CONSENTED_AT)

        run_in_threads(
            *(
                threading.Thread(target=stop, args=(f"SM{index:016d}{twin:016d}",))
                for twin in (1, 2)
            )
        )

    with engine.begin() as conn:
        confirmed = Counter(
            m.to_number for m in list_outbox(conn) if m.kind is OutboxKind.OPT_OUT_CONFIRMATION
        )
    assert confirmed == {number(index): 1 for index in range(rounds)}


class KilledMidSend(BaseException):
    """Stands for the worker process dying while the provider holds the text."""


class DiesOnFirstSend:
    name = "dies-on-first-send"

    def __init__(self) -> None:
        self.local = LocalSmsTransport()
        self.died = False

    def send(self, sms: OutgoingSms) -> SendReceipt:
        receipt = self.local.send(sms)
        if not self.died:
            self.died = True
            raise KilledMidSend()
        return receipt

    def find_accepted(self, sms: OutgoingSms, since: object) -> SendReceipt | None:
        return self.local.find_accepted(sms, since)  # type: ignore[arg-type]


def test_a_worker_killed_mid_send_causes_no_duplicate(engine: Engine) -> None:
    for index in range(3):
        grant(engine, number=number(index))
        queue(engine, f"CA{index}", number=number(index))
    transport = DiesOnFirstSend()
    now = CONSENTED_AT + timedelta(minutes=1)

    with pytest.raises(KilledMidSend):
        dispatch_due(engine, transport, now, rules=RULES)
    dispatch_due(engine, transport, now, rules=RULES)
    dispatch_due(engine, transport, now + LEASE, rules=RULES)

    delivered = sorted(sms.to_number for sms in transport.local.delivered)
    assert delivered == [number(0), number(1), number(2)]
    with engine.begin() as conn:
        assert {m.status for m in list_outbox(conn)} == {OutboxStatus.SENT}


def test_four_workers_on_postgresql_send_every_row_exactly_once(tmp_path: Path) -> None:
    with sms_engine("postgresql", tmp_path, "sms_four_workers") as engine:
        rows = 200
        for index in range(rows):
            grant(engine, number=number(index))
            queue(engine, f"CA{index:04d}", number=number(index))
        transport = LocalSmsTransport()
        now = CONSENTED_AT + timedelta(minutes=1)

        def worker() -> None:
            while dispatch_due(engine, transport, now, limit=5, rules=RULES).sent:
                pass

        run_in_threads(*(threading.Thread(target=worker) for _ in range(4)))

        delivered = sorted(sms.to_number for sms in transport.delivered)
        assert delivered == sorted(number(index) for index in range(rows))
        with engine.begin() as conn:
            assert {m.status for m in list_outbox(conn)} == {OutboxStatus.SENT}


# --- a carrier opt-out (error 21610) racing a STOP or another worker, on PostgreSQL --------------

CARRIER_RACE_ROUNDS = 100
OBSERVER_DSN = "postgresql://postgres@127.0.0.1:5432/test"
WAITING_FOR_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'"
)


@contextlib.contextmanager
def named_postgres(tmp_path: Path, name: str) -> Iterator[tuple[Engine, str]]:
    """An engine on a fresh PostgreSQL schema (or a skip) whose sessions carry an application
    name of their own, so that this test's lock waits can be seen and no one else's."""
    with fresh_database("postgresql", tmp_path, name) as url:
        application_name = f"{name}_{uuid.uuid4().hex[:12]}"
        named = make_url(url).set(
            query={**make_url(url).query, "application_name": application_name}
        )
        engine = with_tables(make_engine(named.render_as_string(hide_password=False)))
        try:
            yield engine, application_name
        finally:
            engine.dispose()


class UnsubscribedAtCarrier:
    """Refuses every text with Twilio's error 21610, the recipient unsubscribed at the carrier.

    It answers only once another session of the test waits for a lock behind the send (or the
    racers are done), so the revocation the error sets off meets whatever the racer holds by then:
    the interleaving in which opposite lock orders deadlock.
    """

    name = "unsubscribed-at-carrier"

    def __init__(self, application_name: str) -> None:
        self.application_name = application_name
        self.sending = threading.Event()
        self.racers: list[threading.Thread] = []
        self.raced = 0

    def send(self, sms: OutgoingSms) -> SendReceipt:
        self.sending.set()
        if self._a_racer_waits():
            self.raced += 1
        raise SendFailed("21610: unsubscribed recipient", permanent=True, code=21610)

    def find_accepted(self, sms: OutgoingSms, since: object) -> SendReceipt | None:
        return None

    def _a_racer_waits(self) -> bool:
        others = [racer for racer in self.racers if racer is not threading.current_thread()]
        with psycopg.connect(OBSERVER_DSN, autocommit=True) as observer:
            for _ in range(5000):
                row = observer.execute(WAITING_FOR_A_LOCK, (self.application_name,)).fetchone()
                if row is not None and row[0] > 0:
                    return True
                if not any(racer.is_alive() for racer in others):
                    return False
                time.sleep(0.002)
        return False


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def carrier_failures(engine: Engine) -> Counter[str]:
    """What became of each text: its status and, for a failure, whether 21610 or an error."""
    with engine.begin() as conn:
        return Counter(
            f"{m.status.value}: {m.reason}"
            for m in list_outbox(conn)
            if m.kind.value == "confirmation"
        )


def revocations(engine: Engine, rounds: int) -> Counter[int]:
    """How many revocations each round's number has in the ledger, counted by how many."""
    with engine.begin() as conn:
        return Counter(
            [e.kind for e in events_for_number(conn, BUSINESS, number(i))].count(EventKind.REVOKED)
            for i in range(rounds)
        )


def test_a_carrier_opt_out_racing_a_stop_neither_deadlocks_nor_lets_a_text_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with named_postgres(tmp_path, "carrier_stop") as (engine, application_name):
        for index in range(CARRIER_RACE_ROUNDS):
            grant(engine, number=number(index))
            # The later text is stored first, so a STOP's cancellation meets it before the
            # text being sent.
            queue(engine, f"CY{index:04d}", number=number(index), due_at=NOW + timedelta(hours=2))
            queue(engine, f"CX{index:04d}", number=number(index), due_at=NOW)
        transport = UnsubscribedAtCarrier(application_name)
        errors: list[str] = []
        for index in range(CARRIER_RACE_ROUNDS):
            transport.sending.clear()

            def stop(i: int = index) -> None:
                if not transport.sending.wait(timeout=10):
                    errors.append(f"round {i}: nothing was sent")
                    return
                sms = InboundSms(f"SM{i:032d}", number(i), BUSINESS_NUMBER, "STOP")
                try:
                    with engine.begin() as conn:
                        handle_inbound(conn, sms, POLICY, NOW)
                except Exception as error:  # a deadlock victim, which would lose the STOP
                    errors.append(f"round {i}: {error}")

            stopper = threading.Thread(target=stop)
            worker = threading.Thread(
                target=dispatch_due,
                args=(engine, transport, NOW),
                kwargs={"limit": 1, "rules": RULES},
            )
            transport.racers = [stopper]
            run_in_threads(worker, stopper)

        assert errors == []
        assert errors_logged(caplog) == []
        # Most STOPs wait behind the send; on a busy machine a round can miss the overlap
        assert transport.raced >= CARRIER_RACE_ROUNDS * 9 // 10
        assert carrier_failures(engine) == {
            "failed: 21610: unsubscribed recipient": CARRIER_RACE_ROUNDS,
            "cancelled: unsubscribed at the carrier": CARRIER_RACE_ROUNDS,
        }
        assert revocations(engine, CARRIER_RACE_ROUNDS) == {1: CARRIER_RACE_ROUNDS}
        witness = RevocationWitness(engine)
        dispatch_due(engine, witness, NOW + timedelta(hours=2), rules=RULES)
        assert witness.local.delivered == []


def test_two_workers_meeting_a_carrier_opt_out_do_not_deadlock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with named_postgres(tmp_path, "carrier_workers") as (engine, application_name):
        for index in range(CARRIER_RACE_ROUNDS):
            grant(engine, number=number(index))
            queue(engine, f"CY{index:04d}", number=number(index), due_at=NOW)
            queue(engine, f"CX{index:04d}", number=number(index), due_at=NOW)
        transport = UnsubscribedAtCarrier(application_name)
        for _ in range(CARRIER_RACE_ROUNDS):
            start = threading.Barrier(2, timeout=10)

            def work(barrier: threading.Barrier = start) -> None:
                barrier.wait()
                dispatch_due(engine, transport, NOW, limit=1, rules=RULES)

            transport.racers = [threading.Thread(target=work) for _ in range(2)]
            run_in_threads(*transport.racers)

        assert errors_logged(caplog) == []  # a deadlock victim is rolled back and logged
        assert transport.raced == CARRIER_RACE_ROUNDS  # one worker waited behind the other
        assert carrier_failures(engine) == {
            "failed: 21610: unsubscribed recipient": CARRIER_RACE_ROUNDS,
            "cancelled: unsubscribed at the carrier": CARRIER_RACE_ROUNDS,
        }
        assert revocations(engine, CARRIER_RACE_ROUNDS) == {1: CARRIER_RACE_ROUNDS}
