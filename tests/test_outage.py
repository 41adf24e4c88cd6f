"""Faults, with what must hold (the scenarios of ``bench/faults.py``, with a short outage):

- The database unavailable — on SQLite another connection holds the write lock, on PostgreSQL a
  cluster of the test's own is paused (every process SIGSTOPped) or stopped and started again —
  while calls end, STOPs arrive, a new call's business is looked up and a new stream runs a call:
  every webhook is answered 200, every lookup answered from the read-only engine or the cache,
  the stream's caller greeted, nothing sent meanwhile, every opt-out in the journal; once the
  database is back the backlog drains by itself, and no call, consent event, opt-out or text is
  lost (0 of N), none stored twice, and no text reaches a number with an opt-out but its one
  confirmation.
- A process killed inside a call's transaction, after a commit but before the entry's removal,
  or in the middle of a call: a new applier replays the journal, every ended call is stored
  exactly once, the call in progress not at all, and the ledger verifies.

Nothing here asserts on wall-clock time; every wait is a bounded loop that ends by itself. The
outage lasts ``OUTAGE_SECONDS`` (the bench runs 90 s) and the applier's backoff is shortened.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.faults import (
    Outage,
    OwnCluster,
    PostgresPaused,
    PostgresRestarted,
    SqliteWriteLock,
    run_kill,
    run_outage,
)
from tests.conftest import BACKENDS, fresh_database
from voice_agent.journal.applier import Backoff

OUTAGE_SECONDS = 3.0
CALLS = 6
STOPS = 2
FAST_BACKOFF = Backoff(first=0.05, factor=2.0, longest=0.5)


@pytest.fixture(scope="module")
def cluster() -> Iterator[OwnCluster]:
    """A PostgreSQL cluster of this module's own (never the machine's server)."""
    try:
        own = OwnCluster()
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        pytest.skip(f"no PostgreSQL cluster of our own: {error}")
    try:
        yield own
    finally:
        own.remove()


def database_and_outage(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[str, Outage]:
    if kind == "sqlite":
        path = tmp_path / "receptionist.db"
        return f"sqlite:///{path}", SqliteWriteLock(path)
    own: OwnCluster = request.getfixturevalue("cluster")
    url = own.database(f"outage_{uuid.uuid4().hex[:12]}")
    return url, PostgresPaused(own) if kind == "postgres-paused" else PostgresRestarted(own)


@pytest.mark.parametrize("kind", ["sqlite", "postgres-paused", "postgres-restarted"])
async def test_an_outage_loses_no_call_no_opt_out_and_no_text(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url, outage = database_and_outage(kind, tmp_path, request)

    report = await run_outage(
        url,
        outage,
        tmp_path,
        calls=CALLS,
        stops=STOPS,
        outage_seconds=OUTAGE_SECONDS,
        backoff=FAST_BACKOFF,
    )

    # while the database was down
    assert report.webhook_answers == [200] * (STOPS + 1)
    assert report.lookups == ["acme-plumbing", "acme-plumbing"]
    assert report.stream_greeted
    assert report.texts_during_outage == 0
    assert report.backlog_during_outage == len(report.calls_ended) + len(report.stopped_numbers)
    opted_out = set(report.stopped_numbers) | set(report.refused_numbers)
    assert opted_out <= report.opt_outs_in_journal
    assert report.health_during_outage["journal"]["pending"] == report.backlog_during_outage
    # once it was back
    assert report.drain_seconds is not None
    assert (report.left_in_journal, report.set_aside) == (0, 0)
    assert len(report.calls_ended) == CALLS + 1
    assert report.calls_lost() == 0
    assert all(report.calls_stored[sid] == 1 for sid in report.calls_ended)
    assert report.consent_events_lost() == 0
    assert report.opt_outs_lost() == 0
    assert report.texts_lost() == 0
    assert report.texts_despite_opt_out() == 0
    assert report.handed_to_transport == len(report.sent)  # every text sent is on record
    assert report.health_after["status"] == "ok"


@pytest.mark.parametrize("stage", ["in-transaction", "after-commit", "mid-call"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_killed_process_loses_no_ended_call_and_stores_none_twice(
    backend: str, stage: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path, "kill") as url:
        report = run_kill(url, tmp_path, stage)

    assert report.lost() == 0
    assert all(report.stored[sid] == 1 for sid in report.calls_ended)
    if report.call_in_progress is not None:
        assert report.stored[report.call_in_progress] == 0
    assert report.events == len(report.calls_ended)
    assert report.ledger_ok
    assert report.left_in_journal == 0
