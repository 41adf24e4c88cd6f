"""Many processes, one truth: ``receptionist serve`` and ``receptionist worker`` as real processes.

Two web processes (``serve --no-dispatcher``, one journal directory, as on one machine) and two
text workers on one PostgreSQL database take simulated calls on both web processes, with STOPs
arriving at both at once (each opt-out delivered twice, to both processes, as a Twilio retry
may); then every invariant is checked: one unforked chain per business, every text handed to the
transport exactly once, nothing but the opt-out confirmation sent to a number after its
revocation. And a web process stopped with SIGTERM in the middle of a call lets the call finish,
stores it, and only then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select
from twilio.request_validator import RequestValidator

from call_simulator import SimulatedCall, load_scenario, simulate_call
from consent_ledger import EventKind, verify_ledger
from consent_ledger.tables import consent_events
from sms_sender import OutboxKind, OutboxStatus, list_outbox
from sms_sender.tables import outbox
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL, ROOT, postgres_schema
from voice_agent.records.businesses import import_businesses
from voice_agent.records.calls import get_call
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade
from voice_agent.web.local_server import free_port

pytestmark = pytest.mark.slow

SPEED = 4.0
RECEPTIONIST = Path(sys.executable).parent / "receptionist"
ACCOUNT_SID = "AC" + "0" * 32
ACME_NUMBER = "+15125550100"
BRIGHT_SPARK_NUMBER = "+13035550140"
START_TIMEOUT = 90.0  # seconds for a process to load its speech model and answer /readyz
SETTLE_TIMEOUT = 30.0  # seconds for the journal to be applied and the due texts sent
PRINTED_TEXT = re.compile(r"^\[text (LM[0-9a-f]{32})\] to (\+[0-9]+): ", re.MULTILINE)
"""A text the local transport handed over, as ``receptionist worker`` prints it."""


@dataclasses.dataclass
class Process:
    """A ``receptionist`` command running in the background, its output in ``log``."""

    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _environment(database_url: str, workdir: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH"}}
    environment.update(
        DATABASE_URL=database_url,
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        SYNTHESIZER="espeak",  # fast and the same on every run, as in tests/conftest.py
        JOURNAL_DIR=str(workdir / "journal"),  # one machine: its processes share the journal
        AUDIO_DIR=str(workdir / "audio"),
        HOST="127.0.0.1",
    )
    return environment


@contextlib.contextmanager
def _running(
    args: list[str], environment: dict[str, str], log: Path, **settings: str
) -> Iterator[Process]:
    """``receptionist ARGS`` with ``settings`` added to the environment; SIGTERM at the end."""
    with log.open("wb") as output:
        popen = subprocess.Popen(
            [str(RECEPTIONIST), *args],
            cwd=ROOT,
            env={**environment, **settings},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    process = Process(popen, log)
    try:
        yield process
    finally:
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()


def _wait_ready(process: Process, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise AssertionError(f"the server exited while starting:\n{process.output()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"the server was not ready in time:\n{process.output()}")


def _prepared_database(database_url: str) -> Engine:
    upgrade(database_url)
    engine = make_engine(database_url)
    with engine.begin() as conn:
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
    return engine


async def _call(url: str, caller: str, business_number: str = ACME_NUMBER) -> SimulatedCall:
    """The consent-yes scenario from ``caller`` to ``business_number`` through ``url``."""
    scenario = dataclasses.replace(
        load_scenario(ROOT / "fixtures" / "calls" / "consent-yes.yaml"),
        caller=caller,
        business_number=business_number,
    )
    return await simulate_call(
        scenario,
        server_url=url,
        public_base_url=PUBLIC_BASE_URL,
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        speed=SPEED,
    )


async def _stop(url: str, caller: str, to_number: str, message_sid: str) -> int:
    """A signed inbound STOP from ``caller``, as Twilio posts it."""
    params = {
        "MessageSid": message_sid,
        "AccountSid": ACCOUNT_SID,
        "From": caller,
        "To": to_number,
        "Body": "STOP",
        "NumMedia": "0",
        "NumSegments": "1",
    }
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        f"{PUBLIC_BASE_URL}/twilio/sms", params
    )
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{url}/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
        )
    return response.status_code


def _poll(condition: object, timeout: float) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


# --- two web processes and two workers on PostgreSQL -----------------------------------------

CALLERS = ("+15125550161", "+15125550162", "+15125550163", "+15125550164")
STOPPING = {CALLERS[0], CALLERS[1], CALLERS[2]}
"""Callers who text STOP: the first two while the second round of calls is under way, the
third at the moment its own call ends (racing the confirmation text)."""


async def _traffic(web: tuple[str, str]) -> list[SimulatedCall]:
    """Calls on both web processes; STOPs, each to both processes at once, meanwhile."""
    first = await asyncio.gather(
        _call(web[0], CALLERS[0]), _call(web[1], CALLERS[1], BRIGHT_SPARK_NUMBER)
    )
    second_calls = asyncio.gather(_call(web[0], CALLERS[2]), _call(web[1], CALLERS[3]))
    stops = [
        _stop(url, caller, business, f"SM{index:032x}")
        for index, (caller, business) in enumerate(
            [(CALLERS[0], ACME_NUMBER), (CALLERS[1], BRIGHT_SPARK_NUMBER)], start=1
        )
        for url in web  # the same message delivered to both processes
    ]
    answers = await asyncio.gather(*stops)
    assert answers == [200] * len(stops)
    second = await second_calls
    racing = [_stop(url, CALLERS[2], ACME_NUMBER, f"SM{3:032x}") for url in web]
    assert await asyncio.gather(*racing) == [200, 200]
    return [*first, *second]


def test_two_web_processes_and_two_workers_keep_every_invariant(tmp_path: Path) -> None:
    with postgres_schema("fleet") as database_url:
        engine = _prepared_database(database_url)
        environment = _environment(database_url, tmp_path)
        ports = (free_port(), free_port())
        web = (f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}")
        with contextlib.ExitStack() as stack:
            servers = [
                stack.enter_context(
                    _running(
                        ["serve", "--no-dispatcher"],
                        environment,
                        tmp_path / f"web{index}.log",
                        PORT=str(port),
                    )
                )
                for index, port in enumerate(ports, start=1)
            ]
            workers = [
                stack.enter_context(
                    _running(["worker"], environment, tmp_path / f"worker{index}.log")
                )
                for index in (1, 2)
            ]
            for server, url in zip(servers, web, strict=True):
                _wait_ready(server, url)

            calls = asyncio.run(_traffic(web))

            assert [call.errors for call in calls] == [()] * len(calls)
            assert _poll(lambda: _settled(engine, tmp_path / "journal"), SETTLE_TIMEOUT), (
                "the journal was not applied or texts were left unsent"
            )
            printed = [
                (match[1], match[2])
                for worker in workers
                for match in PRINTED_TEXT.finditer(worker.output())
            ]
        _check_invariants(engine, calls, printed)
        engine.dispose()


def _settled(engine: Engine, journal: Path) -> bool:
    """Every journal entry applied, and no text due now left unsent."""
    if any((journal / "pending").iterdir()):
        return False
    with engine.connect() as conn:
        return not any(
            text.status in (OutboxStatus.SCHEDULED, OutboxStatus.CLAIMED)
            and text.due_at <= datetime.now(text.due_at.tzinfo)
            for text in list_outbox(conn)
        )


def _check_invariants(
    engine: Engine, calls: list[SimulatedCall], printed: list[tuple[str, str]]
) -> None:
    with engine.connect() as conn:
        stored = [get_call(conn, call.call_sid) for call in calls]
        texts = list_outbox(conn)
        events = conn.execute(
            select(consent_events).order_by(consent_events.c.business_id, consent_events.c.seq)
        ).all()
        assert verify_ledger(conn).ok
        sent_rows = conn.execute(
            select(outbox.c.provider_message_id).where(
                outbox.c.status.in_([OutboxStatus.SENT.value, OutboxStatus.DELIVERED.value])
            )
        ).all()

    # Every call was stored by whichever process held it. (Each caller says yes; on a starved
    # machine the embedded ears may hear an answer as unclear, which changes only the texts.)
    assert all(call is not None for call in stored)
    affirmative = {
        call.caller_number for call in stored if call and call.consent_outcome == "affirmative"
    }
    assert affirmative, "no call's yes was heard: nothing here tested the texts"

    # One chain per business: sequence numbers 1..n, each event linked to the one before.
    chains: dict[str, list[tuple[int, str, str]]] = {}
    for event in events:
        chains.setdefault(event.business_id, []).append((event.seq, event.prev_hash, event.hash))
    assert set(chains) == {"acme-plumbing", "bright-spark-electric"}
    for chain in chains.values():
        assert [seq for seq, _, _ in chain] == list(range(1, len(chain) + 1))
        for (_, _, earlier_hash), (_, prev_hash, _) in itertools.pairwise(chain):
            assert prev_hash == earlier_hash

    # Each STOP was applied once, though delivered to both processes.
    revoked_at = {
        event.phone_number: event.recorded_at for event in events if event.kind == EventKind.REVOKED
    }
    assert set(revoked_at) == STOPPING
    assert Counter(e.phone_number for e in events if e.kind == EventKind.REVOKED) == Counter(
        STOPPING
    )

    # Every text handed to the transport exactly once, and only texts the outbox sent.
    handed = Counter(message_id for message_id, _ in printed)
    assert all(count == 1 for count in handed.values()), handed
    assert set(handed) == {row.provider_message_id for row in sent_rows}
    sent = [text for text in texts if text.provider_message_id in handed]
    confirmed = {text.to_number for text in sent if text.kind is OutboxKind.CONFIRMATION}
    assert (CALLERS[3] in confirmed) == (CALLERS[3] in affirmative)  # never texted STOP

    # Nothing after a revocation but its one confirmation.
    for number, revoked in revoked_at.items():
        to_number = [text for text in sent if text.to_number == number]
        confirmations = [t for t in to_number if t.kind is OutboxKind.OPT_OUT_CONFIRMATION]
        assert len(confirmations) == 1
        for text in to_number:
            if text.kind is not OutboxKind.OPT_OUT_CONFIRMATION:
                assert text.claimed_at is not None and text.claimed_at < revoked, text


# --- a web process stopped in the middle of a call -------------------------------------------


def _live_calls(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics", timeout=2).text
    match = re.search(r"^receptionist_live_calls ([0-9.]+)$", metrics, re.MULTILINE)
    return float(match[1]) if match else 0.0


async def _call_interrupted_by_sigterm(
    server: Process, url: str
) -> tuple[SimulatedCall, list[int]]:
    """Place a call; once it is live, SIGTERM the server; the readiness answers meanwhile."""
    call = asyncio.create_task(_call(url, CALLERS[0]))
    while await asyncio.to_thread(_live_calls, url) < 1:
        assert not call.done(), "the call ended before it was live"
        await asyncio.sleep(0.1)
    server.popen.send_signal(signal.SIGTERM)
    readiness = []
    while not call.done():
        async with httpx.AsyncClient(timeout=2) as client:
            with contextlib.suppress(httpx.HTTPError):
                readiness.append((await client.get(f"{url}/readyz")).status_code)
        await asyncio.sleep(0.5)
    return await call, readiness


def test_a_call_live_at_sigterm_finishes_and_is_stored_before_the_process_stops(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite:///{tmp_path / 'receptionist.db'}"
    engine = _prepared_database(database_url)
    environment = _environment(database_url, tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _running(["serve"], environment, tmp_path / "web.log", PORT=str(port)) as server:
        _wait_ready(server, url)
        simulated, readiness = asyncio.run(_call_interrupted_by_sigterm(server, url))
        server.popen.wait(timeout=30)  # it stops by itself once the call is over
        log = server.output()

    assert simulated.errors == (), log
    assert readiness and set(readiness) == {503}, readiness  # no new calls meanwhile
    with engine.connect() as conn:
        call = get_call(conn, simulated.call_sid)
    assert call is not None and call.consent_outcome == "affirmative", log
    assert "SIGTERM: not ready any more" in log and "no live calls: stopping" in log
    engine.dispose()


# --- serve --workers N ------------------------------------------------------------------------


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    children = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
            if fields.get("PPid", "").strip() == str(pid):
                children.add(int(status.parent.name))
    return children


def _serving_children(pid: int) -> set[int]:
    """``pid``'s children that run a web process (not multiprocessing's resource tracker)."""
    return {
        child
        for child in _children(pid)
        if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()
    }


def test_serve_with_workers_runs_that_many_web_processes_and_stops_them_all(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite:///{tmp_path / 'receptionist.db'}"
    _prepared_database(database_url).dispose()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = _environment(database_url, tmp_path)
    with _running(
        ["serve", "--workers", "2", "--no-dispatcher"],
        environment,
        tmp_path / "web.log",
        PORT=str(port),
    ) as server:
        _wait_ready(server, url)
        assert _poll(lambda: len(_serving_children(server.popen.pid)) == 2, START_TIMEOUT)
        # Both must have started their application (and with it the drain on SIGTERM): one
        # answering /readyz says nothing of the other.
        assert _poll(
            lambda: server.output().count("Application startup complete") == 2, START_TIMEOUT
        )
        workers = _serving_children(server.popen.pid)
        server.popen.send_signal(signal.SIGTERM)
        server.popen.wait(timeout=30)
        log = server.output()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), log
    assert log.count("no live calls: stopping") == 2, log  # each drained, then stopped
