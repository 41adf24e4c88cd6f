"""Texts queued by one process wake the text workers of others at once: PostgreSQL's NOTIFY, heard
by a worker's LISTEN (on SQLite nothing is sent and nothing listens)."""

from __future__ import annotations

import threading

from sms_sender import announce_texts_queued
from sms_sender.outbox_notices import listen_for_queued_texts
from tests.conftest import postgres_schema
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
