"""The journal in front of the database: entries written whole and durably, opt-outs readable from
their names, an applier that keeps the order, retries database errors, sets aside what can never
be applied and applies a call, an inbound text or a status callback once however often it runs;
calls serialised and back; businesses read without waiting for a writer, or from the cache."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from bench.faults import ended_call
from consent_ledger import AudioStore, EventKind, events_for_number
from consent_ledger.tables import consent_events
from sms_sender import InboundSms, OutboxKind, OutboxStatus, list_outbox
from tests.conftest import BACKENDS, ROOT, fresh_database, receptionist_settings
from voice_agent.call.journal_entry import (
    CALL_ENDED,
    FinishedCall,
    apply_call_entry,
    call_entry,
    call_from_entry,
)
from voice_agent.journal.applier import Backoff, JournalApplier, PermanentFailure
from voice_agent.journal.businesses import BusinessDirectory
from voice_agent.journal.store import ABANDONED_WRITE_SECONDS, Journal, JournalEntry
from voice_agent.journal.texts import INBOUND_TEXT, inbound_entry, inbound_opt_out
from voice_agent.records.businesses import import_businesses, load_businesses
from voice_agent.records.calls import get_call
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade
from voice_agent.records.tables import calls
from voice_agent.services import build_services, journal_applier
from voice_agent.web.app import create_app

ENDED_AT = datetime(2026, 3, 2, 15, 4, 0, tzinfo=UTC)
CALLER = "+15125550123"
BUSINESSES = {b.id: b for b in load_businesses(ROOT / "fixtures" / "businesses.yaml")}
ACME = BUSINESSES["acme-plumbing"]


# --- a finished call, as the session hands it over ------------------------------------------


def finished_call(call_sid: str = "CA" + "a" * 32, **options: Any) -> FinishedCall:
    """A minute's call whose caller said "yes please" (see ``bench.faults.ended_call``)."""
    return ended_call(call_sid, **options)


def journaled(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` as it comes back from the journal's file."""
    loaded: dict[str, Any] = json.loads(json.dumps(payload))
    return loaded


# --- the store --------------------------------------------------------------------------------


def test_an_entry_is_written_whole_and_read_back(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    entry = journal.append("sms_inbound", "SM1", {"body": "STOP ✋", "n": [1, 2]})

    assert journal.pending() == [entry.name]
    assert list((tmp_path / "journal" / "tmp").iterdir()) == []
    assert journal.read(entry.name) == entry
    assert entry.payload == {"body": "STOP ✋", "n": [1, 2]}


def test_entries_come_back_in_the_order_they_were_written(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    written = [journal.append("call", f"CA{i}", {"i": i}).name for i in range(200)]

    assert journal.pending() == written
    reopened = Journal(tmp_path)
    assert [reopened.read(name).key for name in reopened.pending()] == [
        f"CA{i}" for i in range(200)
    ]
    later = reopened.append("call", "CA-after-restart", {})
    assert reopened.pending()[-1] == later.name


def test_a_restart_drops_writes_that_never_finished_and_keeps_others(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    kept = journal.append("call", "CA1", {})
    abandoned = tmp_path / "tmp" / "1-call.json"
    abandoned.write_text('{"kind": "ca')
    old = time.time() - ABANDONED_WRITE_SECONDS - 5
    os.utime(abandoned, (old, old))
    under_way = tmp_path / "tmp" / "2-call.json"  # another process is writing it right now
    under_way.write_text("{")

    reopened = Journal(tmp_path)

    assert reopened.pending() == [kept.name]
    assert not abandoned.exists()
    assert under_way.exists()


def test_opt_outs_are_known_from_the_file_names_until_applied(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    stop = journal.append("sms_inbound", "SM1", {}, opt_out=CALLER)
    journal.append("sms_inbound", "SM2", {})
    journal.append("call", "CA1", {}, opt_out="+15125550188")

    assert journal.pending_opt_outs() == {CALLER, "+15125550188"}
    assert journal.read(stop.name).opt_out == CALLER
    assert Journal(tmp_path).pending_opt_outs() == {CALLER, "+15125550188"}  # any process
    journal.complete(stop.name)
    assert journal.pending_opt_outs() == {"+15125550188"}
    with pytest.raises(ValueError, match=r"E\.164"):
        journal.append("sms_inbound", "SM3", {}, opt_out="../../etc")


def test_an_inbound_stop_and_a_plain_request_are_opt_outs_and_a_question_is_not() -> None:
    def text(body: str, opt_out_type: str | None = None) -> InboundSms:
        return InboundSms("SM1", CALLER, "+15125550100", body, opt_out_type=opt_out_type)

    assert inbound_opt_out(text("STOP")) == CALLER
    assert inbound_opt_out(text("please stop texting me")) == CALLER
    assert inbound_opt_out(text("", opt_out_type="STOP")) == CALLER
    assert inbound_opt_out(text("Can you stop by at 5?")) is None
    assert inbound_opt_out(text("HELP", opt_out_type="HELP")) is None


# --- the applier ------------------------------------------------------------------------------


class Recorder:
    """A handler that records what it applied and fails as told."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.failures: list[Exception] = []
        self.calls = 0

    def __call__(self, entry: JournalEntry) -> bool:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.applied.append(entry.key)
        return entry.key.startswith("queue")


def database_down() -> OperationalError:
    return OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))


def test_a_database_error_stops_the_pass_and_the_order_is_kept(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    for key in ("first", "second", "third"):
        journal.append("thing", key, {})
    handler = Recorder()
    handler.failures = [database_down(), database_down()]
    applier = JournalApplier(journal, {"thing": handler})

    assert applier.apply_pending().stopped
    assert applier.apply_pending().stopped
    assert handler.applied == [] and len(journal.pending()) == 3
    status = applier.status()
    assert status["pending"] == 3 and "database is locked" in status["last_error"]
    assert status["retrying_for_seconds"] is not None

    report = applier.apply_pending()

    assert (report.applied, report.stopped) == (3, False)
    assert handler.applied == ["first", "second", "third"]
    assert journal.pending() == []
    assert applier.status()["retrying_for_seconds"] is None


class _AppliedLog:
    """A handler that appends each entry's key to a file shared by several processes (each line
    written with one ``O_APPEND`` write), taking a moment over each so that passes overlap."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, entry: JournalEntry) -> bool:
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(descriptor, f"{entry.key}\n".encode())
        finally:
            os.close(descriptor)
        time.sleep(0.002)
        return False


def _web_process(directory: Path, log: Path, name: str, start: Any) -> None:
    """What a web process does with the shared journal: writes entries of its own and applies
    whatever is pending, until nothing is."""
    journal = Journal(directory)
    applier = JournalApplier(journal, {"thing": _AppliedLog(log)})
    start.wait()
    for index in range(30):
        journal.append("thing", f"{name}-{index}", {})
        applier.apply_pending()
    while journal.pending():
        applier.apply_pending()


def test_processes_sharing_a_journal_apply_each_entry_once_and_in_order(tmp_path: Path) -> None:
    """Two web processes on one machine, one journal directory: every entry — those left from
    before (applied in the order written) and those each process writes meanwhile — is applied
    exactly once. (Without the directory's lock both passes apply the same entries.)"""
    import multiprocessing

    journal = Journal(tmp_path / "journal")
    earlier = [journal.append("thing", f"earlier-{index}", {}).key for index in range(100)]
    log = tmp_path / "applied.txt"
    context = multiprocessing.get_context("fork")
    start = context.Event()
    processes = [
        context.Process(target=_web_process, args=(journal.directory, log, name, start))
        for name in ("web1", "web2")
    ]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    applied = log.read_text().split()
    written = earlier + [f"{name}-{index}" for name in ("web1", "web2") for index in range(30)]
    assert sorted(applied) == sorted(written)  # each exactly once
    assert [key for key in applied if key.startswith("earlier-")] == earlier
    assert journal.pending() == []


def test_other_errors_are_retried_and_then_the_entry_is_set_aside(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    bad = journal.append("thing", "bad", {})
    journal.append("thing", "good", {})
    handler = Recorder()
    handler.failures = [ValueError("a bug"), ValueError("a bug"), ValueError("a bug")]
    applier = JournalApplier(journal, {"thing": handler}, backoff=Backoff(attempts=3))

    assert applier.apply_pending().stopped
    assert applier.apply_pending().stopped
    report = applier.apply_pending()

    assert (report.set_aside, report.applied) == (1, 1)
    assert handler.applied == ["good"]
    failed = tmp_path / "failed"
    assert (failed / bad.name).exists()
    assert "a bug" in (failed / f"{bad.name}.reason.txt").read_text()
    assert applier.status()["failed"] == 1


def test_unreadable_unknown_and_refused_entries_are_set_aside_never_dropped(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path)
    (tmp_path / "pending" / "00000000000000000001-thing.json").write_text("{not json")
    journal.append("mystery", "m", {})
    journal.append("thing", "refused", {})

    def refuse(entry: JournalEntry) -> bool:
        raise PermanentFailure("that call SID belongs to another business")

    report = JournalApplier(journal, {"thing": refuse}).apply_pending()

    assert report.set_aside == 3
    assert journal.pending() == []
    assert len([p for p in (tmp_path / "failed").iterdir() if p.suffix == ".json"]) == 3


async def test_the_background_applier_retries_with_backoff_until_the_database_returns(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path)
    handler = Recorder()
    handler.failures = [database_down() for _ in range(4)]
    woken: list[bool] = []
    applier = JournalApplier(
        journal,
        {"thing": handler},
        backoff=Backoff(first=0.01, factor=2.0, longest=0.04),
        on_texts_queued=lambda: woken.append(True),
    )
    runner = asyncio.create_task(applier.run())
    try:
        await asyncio.sleep(0)
        journal.append("thing", "queue-a-text", {})
        applier.wake()
        for _ in range(2000):  # bounded: stops by itself
            if not journal.pending() and woken:
                break
            await asyncio.sleep(0.005)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        applier.close()

    assert journal.pending() == []
    assert handler.applied == ["queue-a-text"]
    assert handler.calls == 5
    assert woken == [True]


def test_backoff_grows_to_its_longest() -> None:
    backoff = Backoff(first=0.25, factor=2.0, longest=5.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


# --- calls as entries -------------------------------------------------------------------------


def test_a_call_comes_back_from_its_entry_exactly() -> None:
    call = finished_call(audio=bytes(range(256)) * 10)

    assert call_from_entry(journaled(call_entry(call))) == call


def test_a_call_refused_on_the_line_is_an_opt_out() -> None:
    assert finished_call(refused=True).opt_out == CALLER
    assert finished_call().opt_out is None


def test_an_entry_that_is_not_a_call_is_refused() -> None:
    payload = journaled(call_entry(finished_call()))
    payload["outcome"]["transcript"] = [{"speaker": 3}]
    with pytest.raises(ValueError, match="not a call entry"):
        call_from_entry(payload)
    with pytest.raises(ValueError, match="format"):
        call_from_entry({**payload, "format": 99})


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database with the demo businesses."""
    with fresh_database(request.param, tmp_path, "journal") as url:
        upgrade(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
        yield engine
        engine.dispose()


def counts(engine: Engine, call_sid: str) -> tuple[int, int, int]:
    """Calls stored with ``call_sid``, the caller's consent events, outbox rows."""
    with engine.begin() as conn:
        stored = conn.execute(
            select(func.count()).select_from(calls).where(calls.c.call_sid == call_sid)
        ).scalar_one()
        events = conn.execute(
            select(func.count())
            .select_from(consent_events)
            .where(consent_events.c.phone_number == CALLER)
        ).scalar_one()
        texts = len(list_outbox(conn))
    return stored, events, texts


def test_a_call_applied_twice_is_stored_once(database: Engine, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    call = finished_call(audio=b"\xff" * 800)
    entry = journal.append(CALL_ENDED, call.identity.call_sid, call_entry(call))
    audio = AudioStore(tmp_path / "audio")
    read_back = journal.read(entry.name)

    assert apply_call_entry(database, audio, read_back) is True  # the confirmation is queued
    once = counts(database, call.identity.call_sid)
    assert apply_call_entry(database, audio, read_back) is False  # a crash before its removal

    assert counts(database, call.identity.call_sid) == once
    assert once[0] == 1 and once[1] == 1
    with database.begin() as conn:
        stored = get_call(conn, call.identity.call_sid)
        kinds = [(m.kind, m.status) for m in list_outbox(conn)]
        [event] = events_for_number(conn, ACME.id, CALLER)
    assert stored is not None and stored.consent_event_hash == event.hash
    assert stored.ended_at == ENDED_AT and len(stored.turns) == 2
    assert event.kind is EventKind.CONSENT_GRANTED
    assert (OutboxKind.CONFIRMATION, OutboxStatus.SCHEDULED) in kinds


def test_a_call_sid_stored_for_another_business_is_refused(
    database: Engine, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal")
    audio = AudioStore(tmp_path / "audio")
    ours = finished_call()
    theirs = finished_call(business=BUSINESSES["bright-spark-electric"])
    apply_call_entry(database, audio, journal.append(CALL_ENDED, "CA", call_entry(ours)))
    before = counts(database, ours.identity.call_sid)

    with pytest.raises(PermanentFailure, match="stored already"):
        apply_call_entry(database, audio, journal.append(CALL_ENDED, "CA", call_entry(theirs)))

    assert counts(database, ours.identity.call_sid) == before


def test_an_inbound_text_applied_twice_is_handled_once(database: Engine, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    woken: list[bool] = []
    applier = journal_applier(
        journal, database, AudioStore(tmp_path / "audio"), lambda: woken.append(True)
    )
    sms = InboundSms("SM" + "f" * 32, CALLER, ACME.twilio_numbers[0], "HELP")
    payload = inbound_entry(sms, ENDED_AT)
    journal.append(INBOUND_TEXT, sms.message_sid, payload)
    journal.append(INBOUND_TEXT, sms.message_sid, payload)  # Twilio posted it twice

    report = applier.drain()

    assert (report.applied, report.stopped) == (2, False)
    with database.begin() as conn:
        assert [m.kind for m in list_outbox(conn)] == [OutboxKind.HELP_REPLY]
    assert woken == [True]


# --- businesses without waiting on the database -----------------------------------------------


async def test_businesses_are_read_while_a_writer_holds_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    writer = make_engine(url)
    with writer.begin() as conn:
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
    directory = BusinessDirectory(make_engine(url, read_only=True), timeout=20.0)
    holder = writer.connect()
    holder.begin()  # BEGIN IMMEDIATE: every other writer now waits
    try:
        assert await directory.by_number(ACME.twilio_numbers[0]) == ACME
        assert await directory.by_id("bright-spark-electric") == BUSINESSES["bright-spark-electric"]
        assert await directory.by_id("nobody") is None
    finally:
        holder.rollback()
        holder.close()
        directory.close()
        writer.dispose()


async def test_a_database_that_does_not_answer_gives_the_copy_last_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    with make_engine(url).begin() as conn:
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
    database = str(tmp_path / "r.db")
    paused, released = threading.Event(), threading.Event()

    def connect() -> sqlite3.Connection:
        if paused.is_set():  # a PostgreSQL server that is paused: nothing answers
            released.wait(timeout=30)
        return sqlite3.connect(database, check_same_thread=False)

    engine = create_engine("sqlite://", creator=connect, poolclass=NullPool)
    directory = BusinessDirectory(engine, timeout=0.05)
    try:
        assert directory.load_all() == 2
        paused.set()
        assert await directory.by_number(ACME.twilio_numbers[0]) == ACME
        assert await directory.by_id(ACME.id) == ACME
        assert await directory.by_id("never-read") is None
    finally:
        released.set()
        directory.close()
        engine.dispose()


# --- /healthz -------------------------------------------------------------------------------------


async def test_healthz_reports_the_backlog_and_a_backlog_that_does_not_drain(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'receptionist.db'}"
    services = build_services(receptionist_settings(url, audio_dir=tmp_path / "audio"))
    app = create_app(services, export_processes=0)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://receptionist") as client:
            quiet = (await client.get("/healthz")).json()
            services.journal.append("call", "CA1", {})
            fresh = (await client.get("/healthz")).json()
            long_ago = f"{time.time_ns() - 60 * 10**9:020d}-call.json"  # a minute old
            (services.settings.journal_path / "pending" / long_ago).write_text("{}")
            stale = (await client.get("/healthz")).json()
    finally:
        services.journal_applier.close()
        services.businesses.close()
        services.engine.dispose()

    assert quiet == {
        "status": "ok",
        "journal": {
            "pending": 0,
            "oldest_seconds": None,
            "failed": 0,
            "retrying_for_seconds": None,
            "last_error": None,
        },
    }
    assert (fresh["status"], fresh["journal"]["pending"]) == ("ok", 1)
    assert (stale["status"], stale["journal"]["pending"]) == ("degraded", 2)
    assert stale["journal"]["oldest_seconds"] >= 60
    assert services.settings.journal_path == tmp_path / "receptionist.db.journal"
