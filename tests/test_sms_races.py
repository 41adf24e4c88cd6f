"""Races: STOP against a worker claiming the same text, two STOPs sent together, a worker killed
mid-send, four workers.

Rounds are bounded by count and driven by threads that start together at a barrier; no test
sleeps or looks at the clock.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select

from consent_ledger import EventKind
from consent_ledger.tables import consent_events
from sms_sender.dispatch import LEASE, dispatch_due
from sms_sender.inbound import InboundSms, handle_inbound
from sms_sender.local_transport import LocalSmsTransport
from sms_sender.outbox import OutboxKind, OutboxStatus, list_outbox
from sms_sender.transport import OutgoingSms, SendReceipt
from tests.conftest import BACKENDS
from tests.test_dispatch import (
    CONSENTED_AT,
    grant,
    queue,
    run_in_threads,
    sms_engine,
)
from tests.test_inbound_sms import BUSINESS_NUMBER, OPT_OUT_TEXT, POLICY, RULES

ROUNDS = {"postgresql": 1000, "sqlite": 250}
"""STOP-against-worker rounds. SQLite serialises writers whole (BEGIN IMMEDIATE), so fewer rounds
there prove the same; PostgreSQL's row locks are where the race is real."""


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with sms_engine(request.param, tmp_path, "sms_races") as database:
        yield database


def _commit_without_flush(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    dbapi_connection.commit()


def number(index: int) -> str:
    return f"+1512{5550000 + index:07d}"


class RevocationWitness:
    """A transport that, at the moment a text is handed to it, asks the database (on a separate
    connection, so it sees only committed data) whether the recipient's revocation committed."""

    name = "witness"

    def __init__(self, engine: Engine) -> None:
        self.observer = create_engine(engine.url)  # no BEGIN IMMEDIATE: it only reads
        self.local = LocalSmsTransport()
        self.after_revocation: list[str] = []

    def send(self, sms: OutgoingSms) -> SendReceipt:
        if sms.body != OPT_OUT_TEXT and self._revoked(sms.to_number):
            self.after_revocation.append(sms.to_number)
        return self.local.send(sms)

    def find_accepted(self, sms: OutgoingSms, since: object) -> SendReceipt | None:
        return None

    def _revoked(self, to_number: str) -> bool:
        with self.observer.connect() as conn:
            found = conn.execute(
                select(consent_events.c.id).where(
                    consent_events.c.phone_number == to_number,
                    consent_events.c.kind == EventKind.REVOKED.value,
                )
            ).first()
        return found is not None


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
