"""Text workers in processes of their own: texts queued by one process wake the workers of others
at once (PostgreSQL's NOTIFY, heard by a worker's LISTEN; on SQLite nothing is sent and nothing
listens), and a backlog drains pass after pass without waiting for the poll."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import Engine

from sms_sender import (
    LocalSmsTransport,
    OutboxStatus,
    TextDispatcher,
    announce_texts_queued,
    list_outbox,
)
from sms_sender.dispatcher_loop import BATCH
from sms_sender.outbox_notices import listen_for_queued_texts
from tests.conftest import postgres_schema
from tests.sms_support import NOW, RULES, grant, queue, sms_engine
from voice_agent.records.database import make_engine

WAIT = 10.0  # seconds; a notice normally arrives within milliseconds


def test_a_notice_wakes_a_listening_worker_on_postgresql() -> None:
    with postgres_schema("notices") as database_url:
        engine = make_engine(database_url)
        woken = threading.Event()
        stop = threading.Event()
        listening = threading.Thread(
            target=listen_for_queued_texts, args=(engine, woken.set, stop), daemon=True
        )
        listening.start()
        try:
            for _ in range(int(WAIT / 0.2)):  # the listener connects first; announce until heard
                announce_texts_queued(engine)
                if woken.wait(0.2):
                    break
            assert woken.is_set()
        finally:
            stop.set()
            listening.join(timeout=WAIT)
            engine.dispose()
        assert not listening.is_alive()


def test_on_sqlite_there_is_nothing_to_announce_or_hear() -> None:
    engine = make_engine("sqlite://")
    stop = threading.Event()
    announce_texts_queued(engine)  # no error, nothing sent
    listen_for_queued_texts(engine, lambda: None, stop)  # returns at once
    engine.dispose()


async def _drain_backlog(engine: Engine, transport: LocalSmsTransport) -> None:
    dispatcher = TextDispatcher(engine, transport, lambda: NOW, RULES, poll_seconds=60)
    running = asyncio.create_task(dispatcher.run())
    try:
        for _ in range(100):
            if len(transport.delivered) + _blocked(engine) >= BACKLOG:
                return
            await asyncio.sleep(0.1)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


def _blocked(engine: Engine) -> int:
    with engine.connect() as conn:
        return sum(1 for text in list_outbox(conn) if text.status is OutboxStatus.BLOCKED)


BACKLOG = 2 * BATCH + 20


def test_a_backlog_larger_than_a_pass_drains_without_waiting_for_the_poll(tmp_path: Path) -> None:
    """A worker that finds more due texts than one pass takes goes on at once (with a minute's
    poll, a backlog of 120 would otherwise take two minutes)."""
    with sms_engine("sqlite", tmp_path, "backlog") as engine:
        for index in range(BACKLOG):
            number = f"+1512555{index:04d}"
            queue(engine, f"CA{index:04d}", number, consent=grant(engine, number))
        transport = LocalSmsTransport()
        asyncio.run(_drain_backlog(engine, transport))
        assert len(transport.delivered) == BACKLOG


def test_a_worker_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """systemd stops a worker with SIGTERM: the pass under way finishes, and it exits with 0."""
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'receptionist.db'}",
        "JOURNAL_DIR": str(tmp_path / "journal"),
    }
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "receptionist"), "worker"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert worker.stdout is not None
        lines = iter(worker.stdout.readline, b"")  # its log lines first, then the marker
        assert any(line == b"sending due texts until stopped\n" for line in lines)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
