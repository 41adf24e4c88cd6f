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

A worker is a fresh interpreter (``python -m consent_ledger.verify_workers``), not a fork (a forked
child must not open a database its parent has open) and not a ``multiprocessing`` spawn (which
would first re-run the caller's main module, the whole CLI). It reads pickled messages on standard
input and answers on standard output: the job, answered by True once connected; then a range index
for each range it is given (None: stop), answered by that range's ``RangeCheck`` or by the text of
the error that kept it from checking the range. Here, one thread per worker hands out ranges and
receives results. A worker that cannot start takes no range; a range it fails is checked here.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import IO, Any

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
"""Smaller ledgers are checked in one process: starting a worker costs about a second of CPU."""

RANGES_PER_WORKER = 8
"""Ranges are small enough that a worker which starts late only takes fewer of them."""

MIN_RANGE_EVENTS = 10_000
"""No range is cut smaller than this many keys."""

_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")
_REPEATABLE = frozenset({"REPEATABLE READ", "SERIALIZABLE"})

ProgressCallback = Callable[[int], None]
_Outcome = RangeCheck | str
"""A worker's check of a range, or why it could not check it."""


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
        database_url=url.render_as_string(hide_password=False),
        snapshot=_exported_snapshot(conn),
        order=order,
        ranges=_cut(*bounds, workers),
        audio_store=audio_store,
    )
    return _Run(job).check(conn, workers - 1, progress)


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
    """One parallel verification: the ranges, who has claimed which, and the results so far."""

    def __init__(self, job: _Job) -> None:
        self._job = job
        self._lock = threading.Lock()
        self._claimed = 0
        self._stopping = False
        self._results: queue.Queue[tuple[int, _Outcome]] = queue.Queue()
        self._joiner = _Joiner(job.ranges)

    def check(
        self, conn: Connection, helpers: int, progress: ProgressCallback | None
    ) -> JoinedRanges:
        workers = _start_workers(self._job, helpers)
        threads = [
            threading.Thread(target=self._serve, args=(worker,), daemon=True) for worker in workers
        ]
        for thread in threads:
            thread.start()
        finished = False
        try:
            while not self._joiner.failed and (index := self._claim()) is not None:
                self._accept(index, self._check_here(conn, index), progress)
                self._collect(conn, progress, wait=False)
            while not self._joiner.failed and self._joiner.joined < self._claimed_count():
                self._collect(conn, progress, wait=True)
            finished = not self._joiner.failed
        finally:
            self._stop()
            for worker in workers:
                if not finished:
                    worker.kill()  # what it is checking is no longer needed
            for thread in threads:
                thread.join()
            for worker in workers:
                worker.wait()
        return self._joiner.result()

    def _check_here(self, conn: Connection, index: int) -> RangeCheck:
        first, last = self._job.ranges[index]
        return check_range(conn, self._job.order, first, last, self._job.audio_store)

    def _accept(self, index: int, check: RangeCheck, progress: ProgressCallback | None) -> None:
        if check.broken is not None:
            self._stop()  # ranges after a break are not needed
        self._joiner.add(index, check)
        if progress is not None:
            progress(self._joiner.checked())

    def _claim(self) -> int | None:
        """The next unclaimed range, or None when there is none (or the run is stopping)."""
        with self._lock:
            if self._stopping or self._claimed >= len(self._job.ranges):
                return None
            self._claimed += 1
            return self._claimed - 1

    def _claimed_count(self) -> int:
        with self._lock:
            return self._claimed

    def _stop(self) -> None:
        with self._lock:
            self._stopping = True

    def _serve(self, worker: _Worker) -> None:
        """Hand ranges to one worker and pass its results on, until none is left or it fails."""
        failure = worker.wait_until_ready()
        if failure is not None:
            logger.warning("a ledger verification worker could not start: %s", failure)
            return
        while (index := self._claim()) is not None:
            outcome = worker.check(index)
            self._results.put((index, outcome))
            if isinstance(outcome, str):
                return
        worker.stop()

    def _collect(self, conn: Connection, progress: ProgressCallback | None, *, wait: bool) -> None:
        """Join the results that have arrived (with ``wait``, wait for one first).

        A range that a worker could not check is checked here instead.
        """
        try:
            index, outcome = self._results.get(block=wait)
        except queue.Empty:
            return
        while True:
            if isinstance(outcome, str):
                logger.warning("a ledger verification worker failed: %s", outcome)
                outcome = self._check_here(conn, index)
            self._accept(index, outcome, progress)
            try:
                index, outcome = self._results.get_nowait()
            except queue.Empty:
                return


def _start_workers(job: _Job, count: int) -> list[_Worker]:
    """Up to ``count`` worker processes, each sent the job; one that cannot start is left out."""
    workers = []
    for _ in range(count):
        try:
            workers.append(_Worker.start(job))
        except OSError as error:
            logger.warning("a ledger verification worker could not start: %s", error)
    return workers


class _Worker:
    """A worker process, seen from here."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process

    @classmethod
    def start(cls, job: _Job) -> _Worker:
        """Start a worker and send it ``job``; OSError when it cannot be started."""
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=environment,
        )
        worker = cls(process)
        try:
            worker._send(job)
        except OSError:
            worker.kill()
            worker.wait()
            raise
        return worker

    def wait_until_ready(self) -> str | None:
        """None once the worker is connected and ready for ranges; else why it is not."""
        try:
            answer = self._receive()
        except (OSError, EOFError, pickle.UnpicklingError) as error:
            return f"worker process ended: {error or type(error).__name__}"
        return None if answer is True else str(answer)

    def check(self, index: int) -> _Outcome:
        """Have the worker check range ``index``; its check, or why it could not."""
        try:
            self._send(index)
            outcome = self._receive()
        except (OSError, EOFError, pickle.UnpicklingError) as error:
            return f"worker process ended: {error or type(error).__name__}"
        if not isinstance(outcome, RangeCheck | str):
            return f"worker sent {type(outcome).__name__}"
        return outcome

    def stop(self) -> None:
        """Tell the worker that no range is left (it then exits)."""
        with suppress(OSError):
            self._send(None)

    def kill(self) -> None:
        self._process.kill()

    def wait(self) -> None:
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()
        self._process.wait()

    def _send(self, message: Any) -> None:
        _send(_pipe(self._process.stdin), message)

    def _receive(self) -> Any:
        return pickle.load(_pipe(self._process.stdout))


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    if stream is None:
        raise OSError("the pipe to the worker is closed")
    return stream


def _send(stream: IO[bytes], message: Any) -> None:
    pickle.dump(message, stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.flush()


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """The worker's side: read the job, then check each range it is given until told to stop."""
    job: _Job = pickle.load(requests)
    engine = create_engine(job.database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if job.snapshot is not None:
                _enter_snapshot(conn, job.snapshot)
            _send(replies, True)
            while (index := pickle.load(requests)) is not None:
                first, last = job.ranges[index]
                outcome: _Outcome = check_range(conn, job.order, first, last, job.audio_store)
                _send(replies, outcome)
    except Exception as error:  # reported to the parent, which checks the range itself
        _send(replies, f"{type(error).__name__}: {error}")
    finally:
        engine.dispose()


def _enter_snapshot(conn: Connection, snapshot: str) -> None:
    """Begin a REPEATABLE READ transaction on ``conn`` that sees the exported ``snapshot``."""
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"not a PostgreSQL snapshot id: {snapshot!r}")
    conn.execution_options(isolation_level="REPEATABLE READ")
    conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")


def _main() -> None:
    """Serve on the standard streams; anything else the process prints goes to standard error."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    _main()
