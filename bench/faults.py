"""Fault benchmark: the database unavailable while calls end, STOPs arrive and new calls start; the
server killed mid-call and mid-apply; four concurrent audit exports during live calls.

Run ``.venv/bin/python bench/faults.py [--outage 90] [--calls 20] [--stops 5]
[--databases sqlite,postgres-paused,postgres-restarted] [--export-events 1000]``.

1. Outage. A real ``Services`` (journal, applier, dispatcher, business cache) on SQLite or on a
   PostgreSQL cluster of the benchmark's own (``initdb`` in a temporary directory, on a free port of
   127.0.0.1; never the machine's server). Numbers that consented before have a confirmation
   queued. Then the database becomes unavailable for ``--outage`` seconds — on SQLite another
   connection holds the write lock (``BEGIN IMMEDIATE``), on PostgreSQL every process of the
   cluster is paused (SIGSTOP) or the cluster is stopped and started again — and meanwhile
   ``--calls`` calls end (every fourth caller said "don't text me"), ``--stops`` of the earlier
   consenting numbers and one caller of the outage text STOP to the signed webhook, the business
   of a new call is looked up, and a new media stream runs a call. Then the database returns.
   Printed: calls, consent events, opt-outs and texts lost (must be 0 of N), texts that reached a
   number with an opt-out (must be 0), and how long the backlog took to drain.
2. Kills. A process applying the journal is killed with SIGKILL inside a call's transaction and
   again after a commit, before the entry's removal; a process with two ended calls journaled (the
   database locked) is killed in the middle of a third call. After each, a new applier replays
   the journal: every ended call stored once, the call in progress not at all, the ledger intact.
3. Exports. A business with ``--export-events`` consent events; event-loop lag (a 5 ms timer, how
   late it fires) with no export, with four concurrent whole-business zip exports in threads of
   the serving process, and with the same four in the audit routes' worker process; and the time
   of one export.

``tests/test_outage.py`` runs the same scenarios with a short outage and checks what must hold.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import functools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
import psycopg
from pydantic import SecretStr
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consent_ledger import (
    AudioStore,
    EventKind,
    PacketRequest,
    append_event,
    build_audit_packet,
    events_for_number,
    verify_ledger,
)
from consent_ledger.tables import consent_events
from dashboard import AuditContext, audit_router, issue_token
from media_stream import AnswerKind, CallerInput, SpeechEvent, StreamClosed, Utterance, Word
from sms_sender import LocalSmsTransport, OutboxKind, OutboxStatus, list_outbox
from voice_agent.call.conversation import CallOutcome, ConsentAttempt, ConsentOutcome, TimedAnswer
from voice_agent.call.journal_entry import CALL_ENDED, FinishedCall, apply_call_entry, call_entry
from voice_agent.call.session import _store, handle_call
from voice_agent.call.wrap_up import CallIdentity, consent_evidence
from voice_agent.chat.port import CallerMessage, Urgency
from voice_agent.consent.script import render_consent_script
from voice_agent.journal.applier import Backoff, JournalApplier
from voice_agent.journal.store import Journal
from voice_agent.records.businesses import Business, import_businesses, load_businesses
from voice_agent.records.calls import Turn, TurnMetrics
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade
from voice_agent.records.tables import calls
from voice_agent.services import Services, build_services
from voice_agent.settings import Settings
from voice_agent.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
BUSINESSES = {b.id: b for b in load_businesses(ROOT / "fixtures" / "businesses.yaml")}
ACME = BUSINESSES["acme-plumbing"]
AUTH_TOKEN = "fault-bench-token"
PUBLIC_BASE_URL = "https://receptionist.example.com"
CALL_TIME = datetime(2026, 3, 2, 15, 4, tzinfo=UTC)  # 9:04 in Chicago: texts may go
DRAIN_LIMIT = 180.0  # seconds to wait for the backlog once the database is back
LAG_INTERVAL = 0.005


# --- a call as the session hands it over --------------------------------------------------------


def ended_call(
    call_sid: str,
    *,
    business: Business = ACME,
    caller: str = "+15125550123",
    outcome: ConsentOutcome = ConsentOutcome.AFFIRMATIVE,
    refused: bool = False,
    ended_at: datetime = CALL_TIME,
    audio: bytes = b"",
) -> FinishedCall:
    """A call of a minute whose caller answered the consent question "yes please" (``outcome``
    says how it was taken), or with ``refused`` asked not to be texted and was never asked."""
    started_at = ended_at - timedelta(seconds=60)
    base = 5000.0  # time.monotonic() when the stream started
    identity = CallIdentity(call_sid, "MZ" + call_sid[2:], caller, started_at, base)
    words = (Word("yes", 39.0, 39.4, 0.95), Word("please", 39.4, 39.8, 0.9))
    heard = CallerInput(39.0, Utterance("yes please", 39.0, 39.8, 0.92, "whisper", words), None)
    script = render_consent_script(
        business.consent_script_version, business.name, business.max_texts
    )
    if refused:
        consent = ConsentAttempt(
            script,
            outcome=ConsentOutcome.DECLINED,
            note="the caller asked not to be texted during the call",
            refused_during_call=True,
        )
    else:
        times = ((base + 39.0, base + 39.4), (base + 39.4, base + 39.8))
        consent = ConsentAttempt(
            script,
            script_started_at=base + 30.0,
            playback_confirmed_at=base + 38.0,
            answers=[TimedAnswer(heard, base + 39.0, base + 39.8, times)],
            outcome=outcome,
            answer_audio=audio,
        )
    message = CallerMessage(
        caller_name="Dana", need="a leaking pipe", callback_number=caller, urgency=Urgency.URGENT
    )
    transcript = (
        Turn("assistant", "speech", "Hi, this is Acme Plumbing's automated assistant.", 0.0, 3.0),
        Turn("caller", "speech", "yes please", 39.0, 39.8, 0.92, words),
    )
    metrics = (TurnMetrics(700.0, 310.0, 0.1, 22.0, 1032.1),)
    return FinishedCall(
        business,
        identity,
        CallOutcome(message, consent, transcript, metrics),
        "hangup",
        ended_at,
    )


def number(i: int) -> str:
    return f"+1512555{i:04d}"


def call_sid(label: str, i: int) -> str:
    return f"CA{label}{i:0{32 - len(label)}d}"


# --- a media stream that Twilio would open ------------------------------------------------------


class SilentSession:
    """A transcription session that hears nothing (the caller only listens)."""

    def __init__(self) -> None:
        self._closed = asyncio.Event()

    def send_audio(self, ulaw: bytes, at: float) -> None:
        return

    async def events(self) -> AsyncIterator[SpeechEvent]:
        await self._closed.wait()
        return
        yield  # an async generator that yields nothing

    def expect(self, answer: AnswerKind) -> None:
        return

    async def finalize(self) -> None:
        return

    async def close(self) -> None:
        self._closed.set()


class SilentTranscriber:
    name = "silent"

    def load(self) -> None:
        return

    def open_session(self, keyterms: Sequence[str] = ()) -> SilentSession:
        return SilentSession()


class ScriptedStream:
    """Twilio's side of a media stream: ``start`` for a call to ``business`` from ``caller``,
    silence for ``seconds`` (each frame acknowledged by the assistant's marks as they come), then
    ``stop`` — or no end at all when ``seconds`` is None (the call goes on until killed)."""

    def __init__(
        self, sid: str, business_id: str, caller: str, seconds: float | None = 1.0
    ) -> None:
        self.call_sid = sid
        self.stream_sid = "MZ" + sid[2:]
        self._business_id = business_id
        self._caller = caller
        self._seconds = seconds
        self._step = 0
        self.media_sent = 0
        self.closed = False

    async def receive_text(self) -> str:
        self._step += 1
        stream = self.stream_sid
        if self._step == 1:
            return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        if self._step == 2:
            start = {
                "accountSid": "AC" + "0" * 32,
                "streamSid": stream,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {"business": self._business_id, "caller": self._caller},
            }
            return json.dumps(
                {"event": "start", "sequenceNumber": "1", "start": start, "streamSid": stream}
            )
        frame = self._step - 3
        if self._seconds is None or frame < self._seconds / 0.02:
            await asyncio.sleep(0.02)
            payload = base64.b64encode(b"\xff" * 160).decode()
            media = {"track": "inbound", "chunk": str(frame), "timestamp": str(frame * 20)}
            return json.dumps(
                {
                    "event": "media",
                    "sequenceNumber": str(self._step - 1),
                    "media": {**media, "payload": payload},
                    "streamSid": stream,
                }
            )
        if frame == int(self._seconds / 0.02):
            stop = {"accountSid": "AC" + "0" * 32, "callSid": self.call_sid}
            return json.dumps(
                {
                    "event": "stop",
                    "sequenceNumber": str(self._step - 1),
                    "stop": stop,
                    "streamSid": stream,
                }
            )
        raise StreamClosed()

    async def send_text(self, text: str) -> None:
        if '"media"' in text:
            self.media_sent += 1

    async def close(self) -> None:
        self.closed = True


async def admit_every_stream(_start: object) -> bool:
    """The stream's credential is the web layer's business; here every stream is one we answered."""
    return True


# --- how the database becomes unavailable ------------------------------------------------------


class Outage(Protocol):
    name: str

    def begin(self) -> None: ...

    def end(self) -> None: ...


class SqliteWriteLock:
    """Another connection holds SQLite's write lock (``BEGIN IMMEDIATE``): writers wait."""

    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self._path = path
        self._holder: Any = None

    def begin(self) -> None:
        import sqlite3

        self._holder = sqlite3.connect(self._path, isolation_level=None, timeout=30)
        self._holder.execute("BEGIN IMMEDIATE")

    def end(self) -> None:
        self._holder.execute("ROLLBACK")
        self._holder.close()


class OwnCluster:
    """A PostgreSQL cluster of our own, on a free port of 127.0.0.1, in a temporary directory."""

    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not found:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self._bin = found[-1].parent
        self.directory = Path(tempfile.mkdtemp(prefix="receptionist-faults-pg-"))
        self.port = free_port()
        self._data = self.directory / "data"
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to "postgres"
            shutil.chown(self.directory, "postgres")
        self._run("initdb", "-D", str(self._data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database(self, name: str) -> str:
        """A new database in the cluster; its SQLAlchemy URL."""
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=60"
        )
        self._run(
            "pg_ctl", "-D", str(self._data), "-o", options, "-l", str(self.directory / "log"),
            "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")

    def processes(self) -> list[int]:
        """The postmaster and every process it started."""
        postmaster = int((self._data / "postmaster.pid").read_text().split()[0])
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    stat = (entry / "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                        children.append(int(entry.name))
        return [postmaster, *children]

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self, program: str, *arguments: str) -> None:
        command = [str(self._bin / program), *arguments]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)


class PostgresPaused:
    """Every process of the cluster stopped (SIGSTOP): connections and queries hang."""

    name = "postgres-paused"

    def __init__(self, cluster: OwnCluster) -> None:
        self._cluster = cluster
        self._paused: list[int] = []

    def begin(self) -> None:
        self._paused = self._cluster.processes()
        for pid in self._paused:
            os.kill(pid, signal.SIGSTOP)

    def end(self) -> None:
        for pid in reversed(self._paused):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


class PostgresRestarted:
    """The cluster stopped at once (every connection dropped) and started again at the end."""

    name = "postgres-restarted"

    def __init__(self, cluster: OwnCluster) -> None:
        self._cluster = cluster

    def begin(self) -> None:
        self._cluster.stop()

    def end(self) -> None:
        self._cluster.start()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- the outage scenario -----------------------------------------------------------------------


@dataclass
class OutageReport:
    """What the outage did, counted from the database and the transport afterwards."""

    database: str
    outage_seconds: float
    calls_ended: list[str] = field(default_factory=list)
    calls_stored: Counter[str] = field(default_factory=Counter)
    consent_events: Counter[str] = field(default_factory=Counter)  # by call SID
    stopped_numbers: list[str] = field(default_factory=list)
    revoked_numbers: set[str] = field(default_factory=set)
    refused_numbers: list[str] = field(default_factory=list)
    expected_confirmations: set[str] = field(default_factory=set)
    sent: list[tuple[str, OutboxKind]] = field(default_factory=list)  # (to, kind) of each text
    handed_to_transport: int = 0
    texts_during_outage: int = 0
    webhook_answers: list[int] = field(default_factory=list)
    lookups: list[str | None] = field(default_factory=list)
    stream_greeted: bool = False
    backlog_during_outage: int = 0
    opt_outs_in_journal: set[str] = field(default_factory=set)
    health_during_outage: dict[str, Any] = field(default_factory=dict)
    health_after: dict[str, Any] = field(default_factory=dict)
    drain_seconds: float | None = None
    left_in_journal: int = 0
    set_aside: int = 0

    @property
    def stream_call(self) -> str:
        return self.calls_ended[-1]

    def calls_lost(self) -> int:
        return sum(1 for sid in self.calls_ended if self.calls_stored[sid] != 1)

    def consent_events_lost(self) -> int:
        return sum(1 for sid in self.calls_ended if self.consent_events[sid] != 1)

    def opt_outs_lost(self) -> int:
        return sum(1 for n in self.stopped_numbers if n not in self.revoked_numbers)

    def texts_to(self, to: str) -> list[OutboxKind]:
        return [kind for number, kind in self.sent if number == to]

    def texts_lost(self) -> int:
        """Confirmations owed and not sent once, opt-out confirmations owed and not sent once."""
        missing = sum(
            1 for n in self.expected_confirmations if self.texts_to(n) != [OutboxKind.CONFIRMATION]
        )
        unconfirmed = sum(
            1 for n in self.stopped_numbers if self.texts_to(n) != [OutboxKind.OPT_OUT_CONFIRMATION]
        )
        return missing + unconfirmed

    def texts_despite_opt_out(self) -> int:
        """Texts that reached a number with an opt-out, other than its opt-out confirmation."""
        opted_out = set(self.stopped_numbers) | set(self.refused_numbers)
        return sum(
            1
            for number, kind in self.sent
            if number in opted_out and kind is not OutboxKind.OPT_OUT_CONFIRMATION
        )

    def rows(self) -> list[tuple[str, str]]:
        n_calls = len(self.calls_ended)
        return [
            ("calls lost", f"{self.calls_lost()} of {n_calls}"),
            ("consent events lost", f"{self.consent_events_lost()} of {n_calls}"),
            ("opt-outs lost", f"{self.opt_outs_lost()} of {len(self.stopped_numbers)}"),
            (
                "texts lost",
                f"{self.texts_lost()} of "
                f"{len(self.expected_confirmations) + len(self.stopped_numbers)}",
            ),
            ("texts despite an opt-out", str(self.texts_despite_opt_out())),
            ("webhook answers during the outage", ", ".join(map(str, self.webhook_answers))),
            (
                "business lookups answered",
                f"{sum(1 for x in self.lookups if x)} of {len(self.lookups)}",
            ),
            ("stream during the outage greeted", "yes" if self.stream_greeted else "no"),
            ("journal backlog at the end of the outage", str(self.backlog_during_outage)),
            (
                "backlog drained after the database returned",
                "never" if self.drain_seconds is None else f"{self.drain_seconds:.2f} s",
            ),
            ("left in the journal / set aside", f"{self.left_in_journal} / {self.set_aside}"),
        ]


def bench_settings(url: str, workdir: Path, journal_dir: Path | None = None) -> Settings:
    return Settings(
        database_url=url,
        audio_dir=workdir / "audio",
        journal_dir=journal_dir or workdir / "journal",
        public_base_url=PUBLIC_BASE_URL,
        twilio_auth_token=SecretStr(AUTH_TOKEN),
        _env_file=None,  # type: ignore[call-arg]
    )


def prepared_services(
    url: str, workdir: Path, backoff: Backoff, journal_dir: Path | None = None
) -> Services:
    """Services on a migrated database with the demo businesses, the business cache filled,
    silent transcription (the callers of this bench only listen)."""
    upgrade(url)
    services = build_services(
        bench_settings(url, workdir, journal_dir), clock=lambda: CALL_TIME, journal_backoff=backoff
    )
    with services.engine.begin() as conn:
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
    services.businesses.load_all()
    return dataclasses.replace(
        services,
        transcriber=SilentTranscriber(),
        embedded_transcriber=SilentTranscriber(),  # type: ignore[arg-type]
    )


def signed_post(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> Awaitable[httpx.Response]:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE_URL + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def stop_text(sender: str, sid: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": ACME.twilio_numbers[0],
        "Body": "STOP",
        "NumMedia": "0",
    }


async def run_outage(
    url: str,
    outage: Outage,
    workdir: Path,
    *,
    calls: int = 8,
    stops: int = 2,
    outage_seconds: float = 3.0,
    backoff: Backoff | None = None,
) -> OutageReport:
    """The outage scenario (see the module's docstring); what happened, counted afterwards."""
    backoff = backoff or Backoff(first=0.05, factor=2.0, longest=1.0)
    services = prepared_services(url, workdir, backoff)
    transport = services.sms_transport
    assert isinstance(transport, LocalSmsTransport)
    report = OutageReport(outage.name, outage_seconds)
    audio = AudioStore(services.settings.audio_dir)
    for i in range(stops):  # consented before: a confirmation waits for each
        before = ended_call(call_sid("B", i), caller=number(100 + i))
        await asyncio.to_thread(apply_call_entry, services.engine, audio, _entry(before))
        report.stopped_numbers.append(before.identity.caller_number)
    app = create_app(services, export_processes=0)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_BASE_URL)
    tasks: list[asyncio.Task[None]] = []
    began = time.monotonic()
    outage.begin()
    try:
        tasks = [
            asyncio.create_task(services.journal_applier.run(), name="journal-applier"),
            asyncio.create_task(services.dispatcher.run(), name="text-dispatcher"),
        ]
        await _while_down(services, client, report, calls, stops)
        report.backlog_during_outage = len(services.journal.pending())
        report.opt_outs_in_journal = set(services.journal.pending_opt_outs())
        report.health_during_outage = (await client.get("/healthz")).json()
        report.texts_during_outage = len(transport.delivered)
        await asyncio.sleep(max(0.0, outage_seconds - (time.monotonic() - began)))
    finally:
        outage.end()
    back = time.monotonic()
    try:
        report.drain_seconds = await _drained(services, back)
        await _texts_settled(services, report)
        report.health_after = (await client.get("/healthz")).json()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await client.aclose()
    _count(services, report)
    report.handed_to_transport = len(transport.delivered)
    services.journal_applier.close()
    services.businesses.close()
    services.engine.dispose()
    return report


def _entry(call: FinishedCall) -> Any:
    from voice_agent.journal.store import JournalEntry

    payload = json.loads(json.dumps(call_entry(call)))
    return JournalEntry("(direct)", CALL_ENDED, call.identity.call_sid, 0, payload)


async def _while_down(
    services: Services,
    client: httpx.AsyncClient,
    report: OutageReport,
    calls: int,
    stops: int,
) -> None:
    """Calls end, STOPs come, a new call's business is looked up and a stream runs a call."""
    for i in range(calls):
        refused = i % 4 == 3
        call = ended_call(call_sid("D", i), caller=number(200 + i), refused=refused)
        await _store(services, call.business, call.identity, call.outcome, "hangup")
        report.calls_ended.append(call.identity.call_sid)
        if refused:
            report.refused_numbers.append(call.identity.caller_number)
        else:
            report.expected_confirmations.add(call.identity.caller_number)
    late_stopper = number(200)  # the first caller of the outage texts STOP after the call
    report.expected_confirmations.discard(late_stopper)
    senders = [*report.stopped_numbers[:stops], late_stopper]
    report.stopped_numbers = senders
    for i, sender in enumerate(senders):
        answer = await signed_post(client, "/twilio/sms", stop_text(sender, f"SM{i:032d}"))
        report.webhook_answers.append(answer.status_code)
    by_number = await services.businesses.by_number(ACME.twilio_numbers[0])  # /twilio/voice
    by_id = await services.businesses.by_id(ACME.id)  # a media stream's start
    report.lookups += [None if found is None else found.id for found in (by_number, by_id)]
    stream = ScriptedStream(call_sid("S", 0), ACME.id, number(300), seconds=1.0)
    await handle_call(services, stream, admit_every_stream)
    report.stream_greeted = stream.media_sent > 0
    report.calls_ended.append(stream.call_sid)


async def _drained(services: Services, since: float) -> float | None:
    deadline = since + DRAIN_LIMIT
    while time.monotonic() < deadline:
        if not services.journal.pending():
            return time.monotonic() - since
        services.journal_applier.wake()
        await asyncio.sleep(0.02)
    return None


async def _texts_settled(services: Services, report: OutageReport) -> None:
    """Wait until the texts owed went out and no text is due any more (bounded)."""
    owed = len(report.expected_confirmations) + len(report.stopped_numbers)
    transport = services.sms_transport
    assert isinstance(transport, LocalSmsTransport)
    deadline = time.monotonic() + DRAIN_LIMIT
    while time.monotonic() < deadline:
        due = await asyncio.to_thread(_due_texts, services.engine)
        if len(transport.delivered) >= owed and due == 0:
            return
        services.dispatcher.wake()
        await asyncio.sleep(0.05)


def _due_texts(engine: Engine) -> int:
    with engine.begin() as conn:
        return sum(
            1
            for m in list_outbox(conn)
            if m.status.value in ("scheduled", "claimed") and m.due_at <= CALL_TIME
        )


def _count(services: Services, report: OutageReport) -> None:
    with services.engine.begin() as conn:
        for sid in conn.execute(select(calls.c.call_sid)).scalars():
            report.calls_stored[sid] += 1
        rows = conn.execute(select(consent_events.c.body)).scalars()
        for body in rows:
            sid = json.loads(body)["evidence"].get("call_sid")
            if sid:
                report.consent_events[sid] += 1
        for stopped in report.stopped_numbers:
            kinds = [e.kind for e in events_for_number(conn, ACME.id, stopped)]
            if kinds and kinds[-1] is EventKind.REVOKED:
                report.revoked_numbers.add(stopped)
        report.sent = [
            (m.to_number, m.kind)
            for m in list_outbox(conn)
            if m.status in (OutboxStatus.SENT, OutboxStatus.DELIVERED)
        ]
    report.left_in_journal = len(services.journal.pending())
    report.set_aside = services.journal.backlog().failed


# --- kills ---------------------------------------------------------------------------------------


OWNER_CHOICE_KINDS = (
    EventKind.OWNER_NOTIFICATIONS_OPT_IN.value,
    EventKind.OWNER_NOTIFICATIONS_OPT_OUT.value,
)


@dataclass
class KillReport:
    stage: str
    calls_ended: list[str]
    call_in_progress: str | None
    stored: Counter[str]
    ledger_ok: bool
    events: int
    left_in_journal: int

    def lost(self) -> int:
        return sum(1 for sid in self.calls_ended if self.stored[sid] != 1)


def run_kill(url: str, workdir: Path, stage: str) -> KillReport:
    """Kill a process at ``stage`` (``in-transaction``, ``after-commit``, ``mid-call``), then
    replay its journal in a new applier."""
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
    journal_dir, marker = workdir / f"journal-{stage}", workdir / f"marker-{stage}"
    label = f"K{stage[0].upper()}"
    ended = [call_sid(label, i) for i in range(2 if stage == "mid-call" else 3)]
    in_progress = call_sid("KLIVE", 0) if stage == "mid-call" else None
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", stage, url, str(journal_dir), str(marker)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(6000):  # bounded: until the child is where it is to be killed
            if marker.exists() or child.poll() is not None:
                break
            time.sleep(0.01)
        if not marker.exists():
            raise RuntimeError(f"the child never reached {stage}: {child.stderr!r}")
    finally:
        child.kill()
        child.wait(timeout=30)
    journal = Journal(journal_dir)
    audio = AudioStore(workdir / "audio")
    applier = JournalApplier(
        journal, {CALL_ENDED: functools.partial(apply_call_entry, engine, audio)}
    )
    applier.apply_pending()
    stored: Counter[str] = Counter()
    with engine.begin() as conn:
        for sid in conn.execute(select(calls.c.call_sid)).scalars():
            stored[sid] += 1
        # The callers' events (the owners' summary-text choices recorded at import are not).
        callers = consent_events.c.kind.not_in(OWNER_CHOICE_KINDS)
        events = conn.execute(
            select(func.count()).select_from(consent_events).where(callers)
        ).scalar_one()
        ok = verify_ledger(conn).ok
    applier.close()
    engine.dispose()
    return KillReport(stage, ended, in_progress, stored, ok, events, len(journal.pending()))


def _child(stage: str, url: str, journal_dir: str, marker: str) -> None:
    """The process that is killed: it journals three calls and applies them (stalling on the
    second at ``stage``), or journals two and stalls in a third call that is still going on."""
    journal = Journal(Path(journal_dir))
    engine = make_engine(url)
    audio = AudioStore(Path(journal_dir).parent / "audio")
    label = f"K{stage[0].upper()}"
    if stage == "mid-call":
        asyncio.run(_child_mid_call(url, Path(journal_dir), Path(marker)))
        return
    for i in range(3):
        call = ended_call(call_sid(label, i), caller=number(400 + i))
        journal.append(CALL_ENDED, call.identity.call_sid, call_entry(call))
    second = call_sid(label, 1)

    def stall() -> None:
        Path(marker).write_text(stage)
        time.sleep(600)

    import voice_agent.call.wrap_up as wrap_up

    names = vars(wrap_up)  # save_call as wrap_up calls it
    saved = names["save_call"]

    def save_then_stall(conn: Any, record: Any) -> None:
        saved(conn, record)
        if record.call_sid == second:
            stall()  # killed inside the call's transaction: it never commits

    def apply_then_stall(entry: Any) -> bool:
        queued = apply_call_entry(engine, audio, entry)
        if entry.key == second:
            stall()  # killed after the commit, before the entry's removal
        return queued

    if stage == "in-transaction":
        names["save_call"] = save_then_stall
        handler: Callable[[Any], bool] = functools.partial(apply_call_entry, engine, audio)
    else:
        handler = apply_then_stall
    JournalApplier(journal, {CALL_ENDED: handler}).apply_pending()


async def _child_mid_call(url: str, journal_dir: Path, marker: Path) -> None:
    services = prepared_services(url, journal_dir.parent, Backoff(), journal_dir)
    lock = SqliteWriteLock(Path(make_url(url).database or "")) if url.startswith("sqlite") else None
    if lock is not None:
        lock.begin()  # nothing ended is stored before the kill
    for i in range(2):
        call = ended_call(call_sid("KM", i), caller=number(450 + i))
        await _store(services, call.business, call.identity, call.outcome, "hangup")
    stream = ScriptedStream(call_sid("KLIVE", 0), ACME.id, number(460), seconds=None)
    live = asyncio.create_task(handle_call(services, stream, admit_every_stream))
    for _ in range(2000):
        if stream.media_sent:
            break
        await asyncio.sleep(0.01)
    await asyncio.to_thread(marker.write_text, "mid-call")
    await live


# --- exports during live calls -------------------------------------------------------------------


@dataclass
class ExportReport:
    events: int
    export_seconds: float
    lag: dict[str, dict[str, float]]


async def run_exports(url: str, workdir: Path, events: int) -> ExportReport:
    """Event-loop lag with no export, four exports in threads, four in a worker process."""
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
        for i in range(events):
            call = ended_call(call_sid("E", i), caller=number(i % 500), ended_at=CALL_TIME)
            evidence = consent_evidence(ACME, call.identity, call.outcome.consent, CALL_TIME, None)
            append_event(conn, evidence, CALL_TIME + timedelta(microseconds=i))
        token = issue_token(conn, ACME.id, "bench", CALL_TIME, timedelta(days=1)).secret
    reader = make_engine(url, read_only=True)
    started = time.perf_counter()
    with reader.connect() as conn:
        build_audit_packet(
            conn,
            PacketRequest(ACME.id),
            audio_store=AudioStore(workdir / "audio"),
            generated_at=CALL_TIME,
        )
    export_seconds = time.perf_counter() - started
    lag = {"no export": await _lag_while(None)}
    for label, processes in (("4 exports, threads", 0), ("4 exports, worker process", 1)):
        context = AuditContext(
            engine,
            reader,
            workdir / "audio",
            lambda: CALL_TIME,
            export_processes=processes,
            worker_engine=functools.partial(make_engine, read_only=True),
            max_waiting_exports=8,
        )
        if processes == 0:  # as before: every request in a thread of its own, all at once
            context = dataclasses.replace(context, runner=_AllAtOnce())  # type: ignore[arg-type]
        app = _audit_app(context)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://audit"
        ) as client:
            if processes:  # start the worker first: its start-up is not an export
                await client.get("/audit/export?format=json", headers=_bearer(token))
            lag[label] = await _lag_while(
                asyncio.gather(
                    *(
                        client.get("/audit/export?format=zip", headers=_bearer(token))
                        for _ in range(4)
                    )
                )
            )
        context.close()
    reader.dispose()
    engine.dispose()
    return ExportReport(events, export_seconds, lag)


class _AllAtOnce:
    """The export runner as the routes were before: each request in a thread, no bound."""

    def __init__(self) -> None:
        self.worker_pids: set[int] = set()

    async def run(self, context: AuditContext, job: Callable[..., Any], *args: object) -> Any:
        return await asyncio.to_thread(job, context.read_engine, *args)

    def close(self) -> None:
        return


def _audit_app(context: AuditContext) -> Any:
    from fastapi import FastAPI

    app = FastAPI()
    app.state.audit = context
    app.include_router(audit_router())
    return app


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _lag_while(work: Awaitable[Any] | None, quiet_seconds: float = 2.0) -> dict[str, float]:
    """How late a 5 ms timer fires while ``work`` runs (or for ``quiet_seconds``), in ms."""
    lags: list[float] = []
    running = True

    async def probe() -> None:
        while running:
            expected = time.monotonic() + LAG_INTERVAL
            await asyncio.sleep(LAG_INTERVAL)
            lags.append(time.monotonic() - expected)

    prober = asyncio.create_task(probe())
    started = time.perf_counter()
    if work is None:
        await asyncio.sleep(quiet_seconds)
    else:
        answers = await work
        assert all(answer.status_code == 200 for answer in answers)
    seconds = time.perf_counter() - started
    running = False
    await prober
    ordered = sorted(lags)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000,
        "max_ms": ordered[-1] * 1000,
        "seconds": seconds,
    }


# --- the command --------------------------------------------------------------------------------


@contextlib.contextmanager
def databases(names: Sequence[str], workdir: Path) -> Iterator[list[tuple[str, Outage]]]:
    """(URL, outage) for each database asked for; a PostgreSQL cluster of our own if needed."""
    cluster = OwnCluster() if any(n.startswith("postgres") for n in names) else None
    try:
        chosen: list[tuple[str, Outage]] = []
        for name in names:
            if name == "sqlite":
                path = workdir / "sqlite" / "receptionist.db"
                path.parent.mkdir(parents=True)
                chosen.append((f"sqlite:///{path}", SqliteWriteLock(path)))
            elif cluster is not None and name in ("postgres-paused", "postgres-restarted"):
                url = cluster.database(name.replace("-", "_"))
                outage: Outage = (
                    PostgresPaused(cluster)
                    if name == "postgres-paused"
                    else PostgresRestarted(cluster)
                )
                chosen.append((url, outage))
            else:
                raise ValueError(f"unknown database {name!r}")
        yield chosen
    finally:
        if cluster is not None:
            cluster.remove()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outage", type=float, default=90.0, help="seconds the database is down")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--stops", type=int, default=5)
    parser.add_argument(
        "--databases", default="sqlite,postgres-paused,postgres-restarted", help="comma-separated"
    )
    parser.add_argument("--export-events", type=int, default=1000)
    parser.add_argument("--skip-kills", action="store_true")
    parser.add_argument("--skip-exports", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["--child"]:
        _child(*arguments[1:5])
        return 0
    args = _parser().parse_args(arguments)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="receptionist-faults-") as temporary:
        workdir = Path(temporary)
        names = [name.strip() for name in args.databases.split(",") if name.strip()]
        with databases(names, workdir) as chosen:
            for url, outage in chosen:
                place = workdir / outage.name
                place.mkdir(exist_ok=True)
                report = asyncio.run(
                    run_outage(
                        url,
                        outage,
                        place,
                        calls=args.calls,
                        stops=args.stops,
                        outage_seconds=args.outage,
                        backoff=Backoff(),
                    )
                )
                print(f"\n{outage.name}: database unavailable for {args.outage:.0f} s")
                for what, value in report.rows():
                    print(f"  {what:<46} {value}")
                lost = (
                    report.calls_lost()
                    + report.consent_events_lost()
                    + report.opt_outs_lost()
                    + report.texts_lost()
                    + report.texts_despite_opt_out()
                )
                failures += lost > 0 or report.drain_seconds is None
        if not args.skip_kills:
            print("\nkilled with SIGKILL, then the journal replayed (SQLite)")
            for stage in ("in-transaction", "after-commit", "mid-call"):
                place = workdir / "kills" / stage
                place.mkdir(parents=True)
                kill = run_kill(f"sqlite:///{place / 'receptionist.db'}", place, stage)
                live = kill.call_in_progress
                print(
                    f"  {stage:<15} calls lost {kill.lost()} of {len(kill.calls_ended)}; "
                    f"the call in progress stored: "
                    f"{'-' if live is None else 'yes' if kill.stored[live] else 'no'}; "
                    f"ledger intact: {kill.ledger_ok}; left in the journal: {kill.left_in_journal}"
                )
                failures += kill.lost() > 0 or not kill.ledger_ok
        if not args.skip_exports:
            place = workdir / "exports"
            place.mkdir()
            exports = asyncio.run(
                run_exports(f"sqlite:///{place / 'ledger.db'}", place, args.export_events)
            )
            print(
                f"\nexports: one whole-business packet of {exports.events} events in "
                f"{exports.export_seconds:.2f} s; event-loop lag (5 ms timer):"
            )
            for label, lag in exports.lag.items():
                print(
                    f"  {label:<28} p50 {lag['p50_ms']:6.1f} ms  p95 {lag['p95_ms']:6.1f} ms  "
                    f"max {lag['max_ms']:7.1f} ms  over {lag['seconds']:.1f} s"
                )
    print("\nall held" if not failures else f"\n{failures} scenario(s) lost something")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
