"""SMS benchmarks: hang-up → first text at the transport, dispatch throughput, STOP → cancelled.

    .venv/bin/python bench/sms.py [--postgres URL]

Each figure is measured on SQLite (a temporary file) and, when reachable, on PostgreSQL (in a
schema of its own, dropped afterwards):

- hang-up → first text: a call's consent grant and confirmation are stored in one transaction
  (as ``voice_agent.call.wrap_up.record_call`` does), then the dispatcher is woken the way
  ``voice_agent.call.session`` wakes ``sms_sender.dispatcher_loop.TextDispatcher``; the time runs
  until the text reaches the transport. Target p99 ≤ 1 s.
- dispatch throughput: texts sent per second by 1 and by 4 worker threads.
- STOP → pending cancelled: the inbound STOP's transaction (revocation + every pending text
  cancelled) until it commits. Target ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scoring import percentile
from consent_ledger import (
    AnswerEvidence,
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    EventKind,
    ScriptEvidence,
    append_event,
)
from consent_ledger import metadata as ledger_metadata
from consent_ledger.tables import append_only_ddl
from sms_sender import (
    ConfirmationRequest,
    ConfirmationTerms,
    LocalSmsTransport,
    OutgoingSms,
    SendReceipt,
)
from sms_sender import metadata as sms_metadata
from sms_sender.dispatch import dispatch_due
from sms_sender.dispatcher_loop import TextDispatcher
from sms_sender.inbound import InboundSms, handle_inbound
from sms_sender.outbox import queue_confirmation
from sms_sender.policy import SmsPolicy
from sms_sender.send_rules import SendRules
from voice_agent.records.database import make_engine

BUSINESS = "bench-plumbing"
BUSINESS_NUMBER = "+15125550100"
SCRIPT = "May Bench Plumbing text you about your request? Msg & data rates may apply."
POLICY = SmsPolicy(BUSINESS, "Bench Plumbing", "America/Chicago", "(512) 555-0199", max_texts=4)
RULES = SendRules(policies=lambda _conn, _business: POLICY)
CALLS = 200
ROWS = 1000
STOPS = 200
PG_SCHEMA = "bench_sms"


def caller(index: int) -> str:
    return f"+1512{5000000 + index:07d}"


def grant_evidence(number: str, at: datetime) -> ConsentEvidence:
    return ConsentEvidence(
        business_id=BUSINESS,
        business_name="Bench Plumbing",
        phone_number=number,
        call_sid=f"CA{number[1:]}",
        stream_sid="MZbench",
        kind=EventKind.CONSENT_GRANTED,
        method=ConsentMethod.VERBAL,
        script=ScriptEvidence("v1", SCRIPT, hashlib.sha256(SCRIPT.encode()).hexdigest(), at, at),
        answers=(AnswerEvidence("yes", (), "bench", 0.9, at, at),),
        classifier="yes-words",
        classifier_version="1",
        reasked=False,
        scope=ConsentScope("follow-up texts", 4, at + timedelta(hours=24)),
        occurred_at=at,
    )


def store_call(engine: Engine, index: int, call_tag: str, at: datetime) -> None:
    """What ``record_call`` does for an opted-in call: the consent event and the confirmation."""
    number = caller(index)
    with engine.begin() as conn:
        event = append_event(conn, grant_evidence(number, at), at)
        request = ConfirmationRequest(
            BUSINESS,
            "Bench Plumbing",
            BUSINESS_NUMBER,
            number,
            f"CA{call_tag}{index:06d}",
            "a leaking water heater",
            "within the hour",
            event.hash,
        )
        queue_confirmation(conn, request, at, _terms(at))


def _terms(at: datetime) -> ConfirmationTerms:
    """What a bench confirmation promises: two texts within a day."""
    return ConfirmationTerms(2, at + timedelta(hours=24), "America/Chicago")


class TimedTransport(LocalSmsTransport):
    """Records when each text reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: dict[str, float] = {}
        self.arrived = threading.Condition()

    def send(self, sms: OutgoingSms) -> SendReceipt:
        receipt = super().send(sms)
        with self.arrived:
            self.arrivals[sms.to_number] = time.perf_counter()
            self.arrived.notify_all()
        return receipt


async def hangup_to_first_text(engine: Engine) -> list[float]:
    transport = TimedTransport()
    now = datetime.now(UTC)
    dispatcher = TextDispatcher(
        engine, transport, lambda: datetime.now(UTC), RULES, poll_seconds=5.0
    )
    running = asyncio.create_task(dispatcher.run())
    latencies = []
    try:
        for index in range(CALLS):
            hung_up = time.perf_counter()
            await asyncio.to_thread(store_call, engine, index, "H", now)
            dispatcher.wake()
            number = caller(index)
            while number not in transport.arrivals:  # noqa: ASYNC110 - set from a worker thread
                await asyncio.sleep(0.0005)
            latencies.append(transport.arrivals[number] - hung_up)
    finally:
        running.cancel()
    return latencies


def throughput(engine: Engine, workers: int, tag: str) -> float:
    at = datetime.now(UTC)
    with engine.begin() as conn:
        for index in range(ROWS):
            number = caller(100_000 + index)
            event = append_event(conn, grant_evidence(number, at), at)
            request = ConfirmationRequest(
                BUSINESS,
                "Bench Plumbing",
                BUSINESS_NUMBER,
                number,
                f"CA{tag}{index:06d}",
                "a leak",
                "soon",
                event.hash,
            )
            queue_confirmation(conn, request, at, _terms(at))
    transport = LocalSmsTransport()

    def work() -> None:
        while dispatch_due(engine, transport, at, limit=10, rules=RULES).sent:
            pass

    threads = [threading.Thread(target=work) for _ in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert len(transport.delivered) == ROWS, "every row must be sent exactly once"
    return ROWS / elapsed


def stop_to_cancelled(engine: Engine) -> list[float]:
    at = datetime.now(UTC)
    durations = []
    for index in range(STOPS):
        number = caller(200_000 + index)
        with engine.begin() as conn:
            event = append_event(conn, grant_evidence(number, at), at)
            for kind_index in range(3):
                request = ConfirmationRequest(
                    BUSINESS,
                    "Bench Plumbing",
                    BUSINESS_NUMBER,
                    number,
                    f"CAS{index:05d}{kind_index}",
                    "a leak",
                    "soon",
                    event.hash,
                )
                queue_confirmation(conn, request, at + timedelta(hours=kind_index + 1), _terms(at))
        stop = InboundSms(f"SM{index:032d}", number, BUSINESS_NUMBER, "STOP")
        started = time.perf_counter()
        with engine.begin() as conn:
            outcome = handle_inbound(conn, stop, POLICY, at)
        durations.append(time.perf_counter() - started)
        assert outcome.cancelled == 3
    return durations


def prepared(engine: Engine) -> Engine:
    with engine.begin() as conn:
        sms_metadata.create_all(conn)
        ledger_metadata.create_all(conn)
        for statement in append_only_ddl(conn.dialect.name):
            conn.exec_driver_sql(statement)
    return engine


def postgres(url: str) -> Callable[[], None] | Engine:
    admin = make_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    except OperationalError:
        return lambda: None
    finally:
        admin.dispose()
    return make_engine(f"{url}?options=-csearch_path%3D{PG_SCHEMA}")


def report(name: str, engine: Engine) -> None:
    print(f"== {name}")
    latencies = asyncio.run(hangup_to_first_text(engine))
    print(
        f"hang-up -> first text at the transport ({CALLS} calls): "
        f"p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )
    for workers, tag in ((1, "A"), (4, "B")):
        rate = throughput(engine, workers, tag)
        print(f"dispatch throughput, {workers} worker(s): {rate:.0f} texts/s ({ROWS} texts)")
    stops = stop_to_cancelled(engine)
    print(
        f"STOP -> revoked and pending cancelled ({STOPS} STOPs, 3 pending each): "
        f"p50 {statistics.median(stops) * 1000:.1f} ms, p99 {percentile(stops, 0.99) * 1000:.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sqlite = prepared(make_engine(f"sqlite:///{folder}/bench.db"))
        report("SQLite", sqlite)
        sqlite.dispose()
    pg = postgres(args.postgres)
    if isinstance(pg, Engine):
        report("PostgreSQL", prepared(pg))
        with pg.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        pg.dispose()
    else:
        print(f"== PostgreSQL not reachable at {args.postgres}; skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
