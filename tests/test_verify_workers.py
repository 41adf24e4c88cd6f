"""Verification in worker processes: the same report as one pass, on one snapshot, and a worker
that cannot start or that fails costs nothing but time."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine

from consent_ledger import verify_workers
from consent_ledger.evidence import EventKind
from consent_ledger.verify import VerificationReport, verify_ledger
from consent_ledger.verify_workers import _cut
from tests.conftest import fresh_database, postgres_schema
from tests.ledger_support import (
    OTHER_NUMBER,
    Ledger,
    append,
    call_evidence,
    drop_append_only_triggers,
    ledger,
    ledger_engine,
)
from voice_agent.records.database import make_engine

__all__ = ["ledger"]

BUSINESSES = ("acme", "bolt", "crane")
EVENTS_PER_BUSINESS = 20


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut even a small ledger into ranges of about five events, checked by workers."""
    monkeypatch.setattr(verify_workers, "PARALLEL_FROM_EVENTS", 1)
    monkeypatch.setattr(verify_workers, "MIN_RANGE_EVENTS", 5)


@pytest.fixture
def filled(ledger: Ledger) -> Iterator[Ledger]:
    """Sixty events, the three businesses' appends interleaved."""
    _fill(ledger.engine)
    yield ledger


def _fill(engine: Engine) -> None:
    with engine.begin() as conn:
        for i in range(EVENTS_PER_BUSINESS):
            for business in BUSINESSES:
                kind = EventKind.CONSENT_DECLINED if i % 3 == 2 else EventKind.CONSENT_GRANTED
                append(conn, call_evidence(kind, business_id=business), minutes=i)


def _both_ways(
    engine: Engine, business_id: str | None = None
) -> tuple[VerificationReport, VerificationReport]:
    with engine.connect() as conn:
        parallel = verify_ledger(conn, business_id, workers=2)
    with engine.connect() as conn:
        one_pass = verify_ledger(conn, business_id)
    return parallel, one_pass


@pytest.mark.usefixtures("small_ranges")
def test_an_intact_ledger_gets_the_same_report_from_workers(filled: Ledger) -> None:
    parallel, one_pass = _both_ways(filled.engine)
    assert parallel == one_pass
    assert parallel.ok and parallel.events_checked == 60 and parallel.chains_checked == 3
    parallel, one_pass = _both_ways(filled.engine, "bolt")
    assert parallel == one_pass
    assert parallel.ok and parallel.events_checked == EVENTS_PER_BUSINESS


def _sql(statement: str) -> Callable[[Connection], None]:
    def damage(conn: Connection) -> None:
        conn.exec_driver_sql(statement)

    return damage


_DAMAGES = {
    "the first event's body": _sql(
        "UPDATE consent_events SET body = replace(body, 'yes please', 'yes pleasE') WHERE id = 1"
    ),
    "the first event of a later range": _sql(
        "UPDATE consent_events SET body = replace(body, 'yes please', 'yes pleasE') WHERE id = 6"
    ),
    "a hash in the middle of a range": _sql(
        "UPDATE consent_events SET hash = replace(hash, substr(hash, 1, 1), 'x') WHERE id = 33"
    ),
    "an event removed at a range boundary": _sql("DELETE FROM consent_events WHERE id = 11"),
    "the last event removed": _sql(
        "DELETE FROM consent_events WHERE id = (SELECT max(id) FROM consent_events)"
    ),
    "two events of a chain swapped across ranges": _sql(
        "UPDATE consent_events SET seq = CASE id WHEN 4 THEN 99 WHEN 7 THEN 2 END "
        "WHERE id IN (4, 7)"
    ),
    "a chain head": _sql("UPDATE consent_chain_heads SET seq = seq + 1 WHERE business_id = 'bolt'"),
}


_ON_POSTGRESQL_TOO = ("the first event of a later range", "an event removed at a range boundary")
"""Every damage is tried on SQLite; PostgreSQL, slower to set up, takes these two."""


@pytest.mark.usefixtures("small_ranges")
@pytest.mark.parametrize(
    ("backend", "damage"),
    [("sqlite", damage) for damage in _DAMAGES]
    + [("postgresql", damage) for damage in _ON_POSTGRESQL_TOO],
)
def test_a_break_is_reported_as_one_pass_reports_it(
    backend: str, damage: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path, "ledger") as url, ledger_engine(url) as engine:
        _fill(engine)
        with engine.begin() as conn:
            drop_append_only_triggers(conn)
            _DAMAGES[damage](conn)
        parallel, one_pass = _both_ways(engine)
    assert not one_pass.ok
    assert parallel == one_pass


@pytest.mark.usefixtures("small_ranges")
def test_a_break_in_one_chain_is_reported_as_one_pass_reports_it(filled: Ledger) -> None:
    with filled.engine.begin() as conn:
        drop_append_only_triggers(conn)
        _DAMAGES["two events of a chain swapped across ranges"](conn)
    parallel, one_pass = _both_ways(filled.engine, "acme")
    assert not one_pass.ok
    assert parallel == one_pass


@pytest.mark.usefixtures("small_ranges")
def test_workers_read_the_snapshot_of_the_verifying_transaction(filled: Ledger) -> None:
    reader = make_engine(filled.url, read_only=True)  # SQLite: a read that lets writers in
    with reader.connect() as conn:
        verify_ledger(conn)  # begins the read transaction: the state as of now
        with filled.engine.begin() as other:
            for minute in range(10):
                append(other, call_evidence(business_id="acme", number=OTHER_NUMBER), minute)
        report = verify_ledger(conn, workers=2)
    reader.dispose()
    assert report.ok and report.events_checked == 60
    with filled.engine.connect() as conn:
        assert verify_ledger(conn, workers=2).events_checked == 70


@pytest.mark.usefixtures("small_ranges")
@pytest.mark.parametrize(
    "worker_url",
    [
        "sqlite:///file:/nonexistent/folder/ledger.db?mode=ro&uri=true",  # cannot connect
        "postgresql+psycopg://nobody@127.0.0.1:9/none",  # nothing listens on port 9
    ],
    ids=["missing-sqlite-file", "closed-port"],
)
def test_workers_that_cannot_start_leave_the_work_to_this_process(
    filled: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    worker_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(verify_workers, "worker_database_url", lambda _conn: worker_url)
    with filled.engine.connect() as conn:
        report = verify_ledger(conn, workers=3)
    assert report.ok and report.events_checked == 60
    assert "worker failed" in caplog.text


@pytest.mark.usefixtures("small_ranges")
def test_a_worker_that_fails_a_range_leaves_it_to_this_process(
    filled: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Workers that connect, then fail every range they are given: their database is empty."""
    with contextlib.ExitStack() as stack:
        if filled.url.startswith("sqlite"):
            sqlite3.connect(tmp_path / "empty.db").close()
            empty = f"sqlite:///{tmp_path / 'empty.db'}"
        else:  # the same server (so the snapshot is there to share), an empty schema
            empty = stack.enter_context(postgres_schema("empty", migrated=False))
        monkeypatch.setattr(verify_workers, "worker_database_url", lambda _conn: empty)
        with filled.engine.connect() as conn:
            report = verify_ledger(conn, workers=2)
    assert report.ok and report.events_checked == 60
    assert re.search(r"worker failed: .*(no such table|does not exist)", caplog.text)


@pytest.mark.usefixtures("small_ranges")
def test_progress_grows_to_the_whole_ledger(filled: Ledger) -> None:
    heard: list[int] = []
    with filled.engine.connect() as conn:
        report = verify_ledger(conn, workers=2, progress=heard.append)
    assert heard == sorted(heard) and heard[-1] == report.events_checked == 60


def test_fewer_than_one_worker_is_refused(ledger: Ledger) -> None:
    with ledger.engine.connect() as conn, pytest.raises(ValueError, match="at least 1"):
        verify_ledger(conn, workers=0)


@pytest.mark.parametrize(("low", "high", "workers"), [(1, 1, 4), (1, 9, 2), (7, 123_456, 3)])
def test_ranges_cover_every_key_once_in_order(low: int, high: int, workers: int) -> None:
    ranges = _cut(low, high, workers)
    assert ranges[0][0] == low and ranges[-1][1] == high
    assert all(first <= last for first, last in ranges)
    assert all(ranges[i][1] + 1 == ranges[i + 1][0] for i in range(len(ranges) - 1))
