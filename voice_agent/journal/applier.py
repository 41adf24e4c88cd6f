"""The applier: stores the journal's entries in the database, oldest first, until it can.

A pass applies each pending entry with the handler of its kind and removes it once applied.
Handlers are idempotent (a call by its SID and business, an inbound text by its MessageSid, a
status callback moves a text only forward), so an entry applied again after a crash changes
nothing. A database error (locked, unreachable, restarting) ends the pass, and the next one comes
after a backoff that grows from ``Backoff.first`` to ``Backoff.longest``; the entry stays first
in line, so entries are applied in the order they came. Any other error is retried the same way
``Backoff.attempts`` times, and then the entry is set aside in the journal's ``failed/`` (so one
bad entry cannot hold up the rest); a :class:`PermanentFailure` sets it aside at once. Nothing is
ever dropped.

The applier runs on a thread of its own, so an outage that makes it wait never takes a thread
from anyone else; a new entry wakes it at once. A pass holds the journal directory's lock, so the
appliers of several processes sharing the directory take turns (see ``store``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from voice_agent.journal.store import Journal, JournalCorrupt, JournalEntry

logger = logging.getLogger(__name__)


class PermanentFailure(Exception):
    """The entry can never be applied as it is (a handler says why); it is set aside."""


EntryHandler = Callable[[JournalEntry], bool]
"""Applies one entry in the database (idempotently); True when it queued texts to send."""


@dataclass(frozen=True)
class Backoff:
    """How the applier waits between passes that failed: ``first`` seconds, then ``factor`` times
    longer each time up to ``longest``; an entry failing with anything but a database error is
    set aside after ``attempts`` tries."""

    first: float = 0.25
    factor: float = 2.0
    longest: float = 2.0
    attempts: int = 5

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` (≥ 1) failed passes in a row."""
        return min(self.first * self.factor ** (failures - 1), self.longest)


@dataclass(frozen=True)
class PassReport:
    """What one pass did: entries ``applied`` and ``set_aside``, whether it ``stopped`` on an
    error (the first pending entry cannot be applied yet), whether an entry queued texts."""

    applied: int = 0
    set_aside: int = 0
    stopped: bool = False
    texts_queued: bool = False


def is_database_outage(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be used right now (rather than a bad entry)."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(
        error, OperationalError | InterfaceError | DisconnectionError | PoolTimeout | OSError
    )


class JournalApplier:
    """Applies ``journal`` with ``handlers`` (by entry kind) in the background (:meth:`run`), or
    on demand (:meth:`drain`). ``on_texts_queued`` is called (on the event loop, in :meth:`run`)
    after a pass that queued texts: it wakes the dispatcher."""

    def __init__(
        self,
        journal: Journal,
        handlers: Mapping[str, EntryHandler],
        *,
        backoff: Backoff | None = None,
        on_texts_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.journal = journal
        self._handlers = dict(handlers)
        self.backoff = backoff or Backoff()
        self._on_texts_queued = on_texts_queued
        self._attempts: Counter[str] = Counter()
        self._lock = threading.Lock()  # one pass at a time (run and drain alike)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-applier")
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failing_since: float | None = None
        self._last_error: str | None = None

    def wake(self) -> None:
        """Apply now (an entry was just written); safe from any thread."""
        loop, event = self._loop, self._wake
        if loop is None or event is None:
            return
        if _running_loop() is loop:
            event.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(event.set)

    async def run(self) -> None:
        """Apply entries as they come (and those left from before a restart) until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        failures = 0
        while True:
            self._wake.clear()
            try:
                report = await self._loop.run_in_executor(self._thread, self.apply_pending)
            except Exception:  # a bug here must not stop the journal being applied
                logger.exception("journal pass failed")
                report = PassReport(stopped=True)
            if report.texts_queued:
                self._on_texts_queued()
            if report.stopped:
                failures += 1
                await asyncio.sleep(self.backoff.delay(failures))
                continue
            failures = 0
            if report.applied or report.set_aside:
                continue  # more may have come meanwhile
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.backoff.longest)

    def drain(self) -> PassReport:
        """One pass now, in this thread (for the CLI and the tests); wakes the dispatcher when
        texts were queued."""
        report = self.apply_pending()
        if report.texts_queued:
            self._on_texts_queued()
        return report

    def apply_pending(self) -> PassReport:
        """Apply the pending entries in order, until the first that cannot be applied yet."""
        applied = set_aside = 0
        queued = False
        with self._lock, self.journal.applying():
            for name in self.journal.pending():
                outcome = self._apply(name)
                if outcome is None:
                    return PassReport(applied, set_aside, stopped=True, texts_queued=queued)
                if outcome == "set aside":
                    set_aside += 1
                    continue
                applied += 1
                queued = queued or outcome == "queued"
            if self._failing_since is not None:
                logger.warning(
                    "journal applied again after %.1f s of failures",
                    time.monotonic() - self._failing_since,
                )
            self._failing_since = None
            self._last_error = None
        return PassReport(applied, set_aside, texts_queued=queued)

    def status(self) -> dict[str, Any]:
        """The backlog for ``/healthz``: entries waiting, the oldest one's age, entries set
        aside, and the error that holds the journal up, if any."""
        backlog = self.journal.backlog()
        oldest = None if backlog.oldest_ns is None else (time.time_ns() - backlog.oldest_ns) / 1e9
        failing = self._failing_since
        return {
            "pending": backlog.pending,
            "oldest_seconds": None if oldest is None else round(max(oldest, 0.0), 3),
            "failed": backlog.failed,
            "retrying_for_seconds": None
            if failing is None
            else round(time.monotonic() - failing, 3),
            "last_error": self._last_error,
        }

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)

    def _apply(self, name: str) -> str | None:
        """``"applied"``, ``"queued"`` (applied, and texts were queued) or ``"set aside"``; None
        when the entry cannot be applied yet."""
        try:
            entry = self.journal.read(name)
        except FileNotFoundError:
            return "applied"  # applied and removed by another pass
        except JournalCorrupt as error:
            self._set_aside(name, f"unreadable: {error}")
            return "set aside"
        handler = self._handlers.get(entry.kind)
        if handler is None:
            self._set_aside(name, f"no handler for entries of kind {entry.kind!r}")
            return "set aside"
        try:
            queued = handler(entry)
        except PermanentFailure as refusal:
            self._set_aside(name, str(refusal))
            return "set aside"
        except Exception as error:
            return self._failed(name, entry, error)
        self.journal.complete(name)
        self._attempts.pop(name, None)
        return "queued" if queued else "applied"

    def _failed(self, name: str, entry: JournalEntry, error: Exception) -> str | None:
        described = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        self._last_error = described[:300]
        if is_database_outage(error):
            logger.warning(
                "journal entry %s (%s %s) waits for the database: %s",
                name,
                entry.kind,
                entry.key,
                self._last_error,
            )
            return None
        self._attempts[name] += 1
        if self._attempts[name] < self.backoff.attempts:
            logger.exception("journal entry %s (%s) failed; will retry", name, entry.kind)
            return None
        self._set_aside(name, f"failed {self._attempts[name]} times; last: {described}")
        return "set aside"

    def _set_aside(self, name: str, reason: str) -> None:
        self._attempts.pop(name, None)
        self.journal.set_aside(name, reason)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
