"""Scale-out on PostgreSQL: texts per second with 1, 2 and 4 ``receptionist worker`` processes,
and simulated calls through 1, 2 and 4 ``receptionist serve`` processes.

    .venv/bin/python bench/scale.py [--processes 1 2 4] [--texts 1000] [--calls-per-process 2]
                                    [--skip-calls] [--postgres URL]

Texts: the workers start, then ``--texts`` opted-in callers' confirmations are queued in one
transaction and announced (NOTIFY); the figure is texts over the time from that commit until
every one is sent (each exactly once: the workers print every text they hand over).

Calls: ``--calls-per-process`` consent-yes calls per web process, all at once, through the
call simulator at 4× speed with the embedded speech engines; the figure is how many went as
their scenario expects and the calls finished per minute. Each run has a schema of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sms import grant_evidence  # noqa: E402
from call_simulator import load_scenario, simulate_call  # noqa: E402
from consent_ledger import append_event  # noqa: E402
from sms_sender import (  # noqa: E402
    ConfirmationRequest,
    ConfirmationTerms,
    OutboxStatus,
    announce_texts_queued,
)
from sms_sender.outbox import queue_confirmation  # noqa: E402
from sms_sender.tables import outbox  # noqa: E402
from voice_agent.records.businesses import import_businesses  # noqa: E402
from voice_agent.records.database import make_engine  # noqa: E402
from voice_agent.records.migrate import upgrade  # noqa: E402
from voice_agent.web.local_server import free_port  # noqa: E402

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RECEPTIONIST = Path(sys.executable).parent / "receptionist"
PUBLIC_BASE_URL = "https://receptionist.example.com"
AUTH_TOKEN = "bench-auth-token"
ACCOUNT_SID = "AC" + "0" * 32
ACME_NUMBER = "+15125550100"
SPEED = 4.0
PRINTED_TEXT = re.compile(r"^\[text (LM[0-9a-f]{32})\] ", re.MULTILINE)


@contextlib.contextmanager
def schema(base_url: str) -> Iterator[str]:
    """A fresh schema, migrated, with the demo businesses; dropped afterwards."""
    name = f"bench_scale_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    url = make_url(base_url).set(query={"options": f"-csearch_path={name}"})
    database_url = url.render_as_string(hide_password=False)
    try:
        upgrade(database_url)
        engine = make_engine(database_url)
        with engine.begin() as conn:
            import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
        engine.dispose()
        yield database_url
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()


def environment(database_url: str, workdir: Path, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "SYNTHESIZER": "espeak",
        "JOURNAL_DIR": str(workdir / "journal"),
        "AUDIO_DIR": str(workdir / "audio"),
        "HOST": "127.0.0.1",
        **more,
    }


@contextlib.contextmanager
def processes(commands: list[tuple[list[str], dict[str, str], Path]]) -> Iterator[list[Path]]:
    """Start ``receptionist`` commands (arguments, environment, log); SIGTERM them at the end."""
    started = []
    for args, env, log in commands:
        with log.open("wb") as output:
            started.append(
                subprocess.Popen(
                    [str(RECEPTIONIST), *args], env=env, stdout=output, stderr=subprocess.STDOUT
                )
            )
    try:
        yield [log for _, _, log in commands]
    finally:
        for process in started:
            process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


# --- texts ------------------------------------------------------------------------------------


def queue_texts(database_url: str, count: int) -> float:
    """Queue ``count`` confirmations to opted-in callers in one transaction, announce them, and
    return when they were committed (``time.perf_counter``)."""
    engine = make_engine(database_url)
    at = datetime.now(UTC)
    with engine.begin() as conn:
        for index in range(count):
            number = f"+1512{6000000 + index:07d}"
            evidence = dataclasses.replace(
                grant_evidence(number, at),
                business_id="acme-plumbing",
                business_name="Acme Plumbing",
            )
            event = append_event(conn, evidence, at)
            request = ConfirmationRequest(
                "acme-plumbing",
                "Acme Plumbing",
                ACME_NUMBER,
                number,
                f"CAscale{index:06d}",
                "a leak",
                "soon",
                event.hash,
            )
            terms = ConfirmationTerms(2, at + timedelta(hours=24), "America/Chicago")
            queue_confirmation(conn, request, at, terms)
    committed = time.perf_counter()
    announce_texts_queued(engine)
    engine.dispose()
    return committed


def texts_per_second(base_url: str, workers: int, count: int) -> tuple[float, int]:
    """Texts per second with ``workers`` worker processes, and how many were handed over."""
    with tempfile.TemporaryDirectory(prefix="scale-") as folder, schema(base_url) as database_url:
        workdir = Path(folder)
        env = environment(database_url, workdir)
        commands = [(["worker"], env, workdir / f"worker{n}.log") for n in range(workers)]
        with processes(commands) as logs:
            time.sleep(8)  # the workers are up and listening
            committed = queue_texts(database_url, count)
            engine = make_engine(database_url)
            sent = 0
            deadline = time.monotonic() + 600
            while sent < count and time.monotonic() < deadline:
                with engine.connect() as conn:
                    sent = conn.execute(
                        select(func.count())
                        .select_from(outbox)
                        .where(outbox.c.status == OutboxStatus.SENT.value)
                    ).scalar_one()
                time.sleep(0.05)
            elapsed = time.perf_counter() - committed
            engine.dispose()
        handed = [m[1] for log in logs for m in PRINTED_TEXT.finditer(log.read_text())]
    if len(handed) != len(set(handed)) or len(handed) != count:
        raise SystemExit(f"{workers} workers: {len(handed)} texts handed over, expected {count}")
    return count / elapsed, len(handed)


# --- calls ------------------------------------------------------------------------------------


async def place_calls(urls: list[str], per_process: int) -> list[bool]:
    scenario = load_scenario(ROOT / "fixtures" / "calls" / "consent-yes.yaml")

    async def one(url: str, index: int) -> bool:
        call = await simulate_call(
            dataclasses.replace(scenario, caller=f"+1512{7000000 + index:07d}"),
            server_url=url,
            public_base_url=PUBLIC_BASE_URL,
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            speed=SPEED,
        )
        return not call.errors and call.closed_by == "server"

    jobs = [one(url, n * len(urls) + i) for n in range(per_process) for i, url in enumerate(urls)]
    return await asyncio.gather(*jobs)


def calls_through(base_url: str, web: int, per_process: int) -> tuple[int, int, float]:
    """Calls that went as expected, calls placed, and calls finished per minute."""
    with tempfile.TemporaryDirectory(prefix="scale-") as folder, schema(base_url) as database_url:
        workdir = Path(folder)
        ports = [free_port() for _ in range(web)]
        commands = [
            (["serve"], environment(database_url, workdir, PORT=str(port)), workdir / f"w{port}")
            for port in ports
        ]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        with processes(commands):
            for url in urls:
                wait_ready(url)
            started = time.perf_counter()
            outcomes = asyncio.run(place_calls(urls, per_process))
            elapsed = time.perf_counter() - started
            engine = make_engine(database_url)
            stored = 0
            deadline = time.monotonic() + 30
            while stored < len(outcomes) and time.monotonic() < deadline:
                with engine.connect() as conn:
                    stored = conn.exec_driver_sql(
                        "SELECT count(*) FROM calls WHERE consent_outcome = 'affirmative'"
                    ).scalar_one()
                time.sleep(0.2)
            engine.dispose()
    return min(sum(outcomes), stored), len(outcomes), len(outcomes) / elapsed * 60


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"{url} was not ready in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--calls-per-process", type=int, default=2)
    parser.add_argument("--skip-calls", action="store_true")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    options = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| processes | texts/s (workers) | calls ok / placed | calls finished per minute |")
    print("|---|---|---|---|")
    for count in options.processes:
        rate, _ = texts_per_second(options.postgres, count, options.texts)
        calls = "—"
        per_minute = "—"
        if not options.skip_calls:
            ok, placed, finished = calls_through(options.postgres, count, options.calls_per_process)
            calls, per_minute = f"{ok} / {placed}", f"{finished:.1f}"
        print(f"| {count} | {rate:.0f} | {calls} | {per_minute} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
