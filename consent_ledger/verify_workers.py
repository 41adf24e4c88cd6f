"""Verifying a large ledger on several cores: ranges of events checked in worker processes.

The events are cut into ranges of keys (row ids, or one chain's sequence numbers). This process and
``workers - 1`` worker processes each take the next unclaimed range, check it on its own
(``event_checks.check_range``), and the results are joined here in order
(``event_checks.join_range``) as they come in. The first range that does not join cleanly (a break
inside it, a chain entry that does not link, or a worker that failed) ends the parallel part: the
caller goes on from that range's first key in this process alone, with the chains as joined so far,
so it reports exactly what a verification in one pass would.

Every process reads the same state of the ledger. On PostgreSQL the workers take this transaction's
snapshot (``pg_export_snapshot``), so it must run at REPEATABLE READ. On SQLite the ranges end at
the largest key this transaction sees: events up to it never change (the database refuses it), and
none can appear later, because SQLite's single write lock hands out keys in commit order.

The workers are the standard library's process pool, started by ``forkserver`` (a fresh
interpreter, never a fork of this one: a forked child must not use a database connection its
parent has open). Each opens its own connection to the job's snapshot once, then checks the
ranges it is sent. A range a worker fails, or every range of a pool that cannot start, is checked
here instead: a worker's failure costs time, never a different report.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import re
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from consent_ledger.audio_store import AudioStore
from consent_ledger.event_checks import (
    ChainEnd,
    RangeCheck,
    ReadOrder,
    Tally,
    check_range,
    join_range,
)

logger = logging.getLogger(__name__)

PARALLEL_FROM_EVENTS = 200_000
"""Smaller ledgers are checked in one process: one process checks them in a few seconds."""

RANGES_PER_WORKER = 8
"""Ranges are small enough that a worker which starts late only takes fewer of them."""

RANGES_IN_FLIGHT = 2
"""Ranges handed to each worker ahead: one to check and one waiting, so that a worker never
idles until this process, busy with a range of its own, hands it the next."""

MIN_RANGE_EVENTS = 10_000
"""No range is cut smaller than this many keys."""

_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")
_REPEATABLE = frozenset({"REPEATABLE READ", "SERIALIZABLE"})

ProgressCallback = Callable[[int], None]


@dataclass
class JoinedRanges:
    """The chains as the ranges joined so far leave them; ``resume_from`` is the first key not
    joined cleanly (None when every range was)."""

    ends: dict[str, ChainEnd]
    tally: Tally
    resume_from: int | None


@dataclass(frozen=True)
class _Job:
    """What a worker needs: where the ledger is, the snapshot to read, and the ranges."""

    database_url: str
    snapshot: str | None
    order: ReadOrder
    ranges: tuple[tuple[int, int], ...]
    audio_store: AudioStore | None


def check_in_parallel(
    conn: Connection,
    order: ReadOrder,
    workers: int,
    audio_store: AudioStore | None,
    progress: ProgressCallback | None,
) -> JoinedRanges | None:
    """Check ``order``'s events in ranges across ``workers`` processes, this one included.

    None when that is not worth it (one worker, a small ledger) or not possible (an in-memory
    SQLite database, which other processes cannot open); then nothing has been checked.
    """
    url = conn.engine.url
    if workers < 2 or (url.get_backend_name() == "sqlite" and _in_memory(url.database)):
        return None
    bounds = order.key_bounds(conn)
    if bounds is None or bounds[1] - bounds[0] + 1 < PARALLEL_FROM_EVENTS:
        return None
    job = _Job(
        database_url=worker_database_url(conn),
        snapshot=_exported_snapshot(conn),
        order=order,
        ranges=_cut(*bounds, workers),
        audio_store=audio_store,
    )
    return _Run(job).check(conn, workers - 1, progress)


def worker_database_url(conn: Connection) -> str:
    """The URL the workers open: this connection's database."""
    return conn.engine.url.render_as_string(hide_password=False)


def _in_memory(database: str | None) -> bool:
    return not database or database == ":memory:" or "mode=memory" in database


def _exported_snapshot(conn: Connection) -> str | None:
    """This transaction's snapshot for the workers to share (PostgreSQL); SQLite needs none."""
    if conn.dialect.name != "postgresql":
        return None
    if conn.get_isolation_level() not in _REPEATABLE:
        raise ValueError("verifying in parallel on PostgreSQL needs a REPEATABLE READ transaction")
    return str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())


def _cut(low: int, high: int, workers: int) -> tuple[tuple[int, int], ...]:
    """Keys ``low`` to ``high`` cut into consecutive ranges, inclusive at both ends."""
    span = high - low + 1
    count = max(1, min(workers * RANGES_PER_WORKER, span // MIN_RANGE_EVENTS))
    size = math.ceil(span / count)
    return tuple((first, min(high, first + size - 1)) for first in range(low, high + 1, size))


@dataclass
class _Joiner:
    """Joins range results in range order, whatever order they arrive in."""

    ranges: tuple[tuple[int, int], ...]
    ends: dict[str, ChainEnd] = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)
    joined: int = 0
    failed: bool = False
    _waiting: dict[int, RangeCheck] = field(default_factory=dict)

    def add(self, index: int, check: RangeCheck) -> None:
        self._waiting[index] = check
        while not self.failed and self.joined in self._waiting:
            if join_range(self.ends, self.tally, self._waiting.pop(self.joined)):
                self.joined += 1
            else:
                self.failed = True

    def checked(self) -> int:
        """Events checked so far, joined or not: for progress."""
        return self.tally.events + sum(check.tally.events for check in self._waiting.values())

    def result(self) -> JoinedRanges:
        resume = None if self.joined == len(self.ranges) else self.ranges[self.joined][0]
        return JoinedRanges(self.ends, self.tally, resume)


class _Run:
    """One parallel verification: ranges handed out in order, to this process and the pool."""

    def __init__(self, job: _Job) -> None:
        self._job = job
        self._next = 0
        self._joiner = _Joiner(job.ranges)
        self._in_flight: dict[Future[RangeCheck], int] = {}

    def check(
        self, conn: Connection, helpers: int, progress: ProgressCallback | None
    ) -> JoinedRanges:
        pool = ProcessPoolExecutor(
            helpers,
            mp_context=multiprocessing.get_context("forkserver"),
            initializer=_open_worker,
            initargs=(self._job,),
        )
        try:
            for _ in range(helpers * RANGES_IN_FLIGHT):
                self._hand_out(pool)
            while not self._joiner.failed and (index := self._claim()) is not None:
                self._accept(index, self._check_here(conn, index), progress)
                self._collect(conn, pool, progress, block=False)
            while not self._joiner.failed and self._in_flight:
                self._collect(conn, pool, progress, block=True)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return self._joiner.result()

    def _claim(self) -> int | None:
        """The next range nobody has taken, or None when there is none."""
        if self._next >= len(self._job.ranges):
            return None
        self._next += 1
        return self._next - 1

    def _hand_out(self, pool: ProcessPoolExecutor) -> None:
        index = self._claim()
        if index is not None:
            self._in_flight[pool.submit(_check_in_worker, index)] = index

    def _check_here(self, conn: Connection, index: int) -> RangeCheck:
        first, last = self._job.ranges[index]
        return check_range(conn, self._job.order, first, last, self._job.audio_store)

    def _accept(self, index: int, check: RangeCheck, progress: ProgressCallback | None) -> None:
        self._joiner.add(index, check)
        if progress is not None:
            progress(self._joiner.checked())

    def _collect(
        self,
        conn: Connection,
        pool: ProcessPoolExecutor,
        progress: ProgressCallback | None,
        *,
        block: bool,
    ) -> None:
        """Join the ranges the workers have finished (with ``block``, wait for one first) and
        give each free worker the next range. A range a worker failed is checked here."""
        done, _ = wait(self._in_flight, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            index = self._in_flight.pop(future)
            failure = future.exception()
            if failure is None:
                self._accept(index, future.result(), progress)
                if not self._joiner.failed:
                    self._hand_out(pool)
                continue
            logger.warning("a ledger verification worker failed: %s", failure)
            self._accept(index, self._check_here(conn, index), progress)


_worker: tuple[Connection, _Job] | None = None
"""In a worker process: its connection and the job (see ``_open_worker``)."""


def _open_worker(job: _Job) -> None:
    """A worker's start: connect, on the parent's snapshot where there is one."""
    global _worker
    conn = create_engine(job.database_url, poolclass=NullPool).connect()
    if job.snapshot is not None:
        _enter_snapshot(conn, job.snapshot)
    _worker = (conn, job)


def _check_in_worker(index: int) -> RangeCheck:
    if _worker is None:
        raise RuntimeError("the worker was not started with a job")
    conn, job = _worker
    first, last = job.ranges[index]
    return check_range(conn, job.order, first, last, job.audio_store)


def _enter_snapshot(conn: Connection, snapshot: str) -> None:
    """Begin a REPEATABLE READ transaction on ``conn`` that sees the exported ``snapshot``."""
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"not a PostgreSQL snapshot id: {snapshot!r}")
    conn.execution_options(isolation_level="REPEATABLE READ")
    conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
