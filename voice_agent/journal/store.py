"""The journal: an append-only directory of entries, each written durably before it is
acknowledged and removed only once the database has it (ARCHITECTURE.md, invariant 12).

An entry is one JSON file. It is written under ``tmp/``, fsync'd, renamed into ``pending/`` and
the directory fsync'd, so a file in ``pending/`` is always whole: a crash leaves either nothing
(the request was never acknowledged) or the complete entry. File names sort in the order the
entries were written (a nanosecond stamp, kept increasing), which is the order they are applied
in. An entry that can never be applied is moved to ``failed/`` with a note of why, never deleted.

An entry that opts a number out carries the number in its file name (``…-optout+15125550123``),
so the dispatcher — in this process or another on the same machine — can refuse texts to it
without reading any entry, until the opt-out is in the database and the entry gone.

Every process on a machine shares one journal directory (on local disk: the journal is what
outlives a database outage, so it must not depend on a network share). A name carries the
writer's process id after its stamp, so two processes writing in the same nanosecond never
collide. Appliers take the directory's lock (:meth:`Journal.applying`, an ``flock`` the kernel
releases when its process dies) for a whole pass: one applier at a time applies the entries, in
the order they were written, so no entry is applied twice at once nor skipped, and a STOP is never
overtaken by the START that followed it. Each machine has its own directory and its own appliers.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SUFFIX = ".json"
OPT_OUT_MARK = "-optout"
APPLIER_LOCK = "applier.lock"
_STAMP_DIGITS = 20
ABANDONED_WRITE_SECONDS = 600.0


class JournalCorrupt(ValueError):
    """An entry's file does not hold a journal entry (a damaged disk, a hand edit)."""


@dataclass(frozen=True)
class JournalEntry:
    """One request to apply: its ``kind`` (which applier handles it), ``key`` (the call SID or
    MessageSid it is about), when it was journaled (ns since the epoch) and its ``payload``."""

    name: str
    kind: str
    key: str
    journaled_ns: int
    payload: dict[str, Any]

    @property
    def opt_out(self) -> str | None:
        """The number this entry opts out, if it does."""
        return _opt_out_number(self.name)


@dataclass(frozen=True)
class Backlog:
    """What waits in the journal: ``pending`` entries, the oldest written ``oldest_ns`` (None
    when there is none), and ``failed`` entries set aside for an operator."""

    pending: int
    oldest_ns: int | None
    failed: int


class Journal:
    """The journal in ``directory`` (``pending/``, ``failed/``, ``tmp/`` inside it).

    Writes go through :meth:`append` (blocking: it fsyncs) or :meth:`append_async` (on the
    journal's own threads, so a slow disk delays no call and waits behind no database call).
    """

    def __init__(self, directory: Path, *, writers: int = 2) -> None:
        self.directory = directory
        self._pending = directory / "pending"
        self._failed = directory / "failed"
        self._tmp = directory / "tmp"
        for folder in (self._pending, self._failed, self._tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self._remove_abandoned_writes()
        self._lock = threading.Lock()
        self._last_stamp = 0
        self._writers = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="journal")

    def append(
        self, kind: str, key: str, payload: dict[str, Any], *, opt_out: str | None = None
    ) -> JournalEntry:
        """Write an entry durably; when this returns, it survives a crash. ``opt_out`` names the
        number the entry opts out (E.164), if any."""
        if not kind.isidentifier():
            raise ValueError(f"not an entry kind: {kind!r}")
        if opt_out is not None and not (opt_out.startswith("+") and opt_out[1:].isdigit()):
            raise ValueError("an opt-out must name an E.164 number")
        stamp = self._next_stamp()
        name = f"{stamp:0{_STAMP_DIGITS}d}-p{os.getpid()}-{kind}"
        name += OPT_OUT_MARK + opt_out if opt_out else ""
        name += SUFFIX
        document = {"kind": kind, "key": key, "journaled_ns": stamp, "payload": payload}
        data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        partial = self._tmp / name
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.rename(partial, self._pending / name)
        _fsync_directory(self._pending)
        return JournalEntry(name, kind, key, stamp, payload)

    async def append_async(
        self, kind: str, key: str, payload: dict[str, Any], *, opt_out: str | None = None
    ) -> JournalEntry:
        """:meth:`append` on the journal's own threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._writers, lambda: self.append(kind, key, payload, opt_out=opt_out)
        )

    def pending(self) -> list[str]:
        """The names of the entries still to apply, oldest first."""
        return sorted(_entry_names(self._pending))

    def read(self, name: str) -> JournalEntry:
        """The entry ``name`` (a JournalCorrupt when its file does not hold one)."""
        try:
            document = json.loads((self._pending / name).read_bytes())
            entry = JournalEntry(
                name,
                str(document["kind"]),
                str(document["key"]),
                int(document["journaled_ns"]),
                dict(document["payload"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise JournalCorrupt(f"{name}: {error}") from None
        return entry

    @contextlib.contextmanager
    def applying(self) -> Iterator[None]:
        """Hold the directory's applier lock (waiting for another process's pass to end)."""
        descriptor = os.open(self.directory / APPLIER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # releases the lock

    def complete(self, name: str) -> None:
        """Remove an applied entry. (Not fsync'd: an entry that comes back after a crash is
        applied again, which changes nothing.)"""
        with contextlib.suppress(FileNotFoundError):
            (self._pending / name).unlink()

    def set_aside(self, name: str, reason: str) -> None:
        """Move an entry that can never be applied to ``failed/``, with ``reason`` beside it."""
        note = self._failed / f"{name}.reason.txt"
        note.write_text(reason + "\n", encoding="utf-8")
        os.rename(self._pending / name, self._failed / name)
        _fsync_directory(self._failed)
        _fsync_directory(self._pending)
        logger.error("journal entry %s set aside in %s: %s", name, self._failed, reason)

    def pending_opt_outs(self) -> frozenset[str]:
        """Every number with an opt-out still in the journal (read from the file names)."""
        return frozenset(
            number
            for name in _entry_names(self._pending)
            if (number := _opt_out_number(name)) is not None
        )

    def backlog(self) -> Backlog:
        names = self.pending()
        oldest = int(names[0][:_STAMP_DIGITS]) if names else None
        failed = sum(1 for _ in _entry_names(self._failed))
        return Backlog(len(names), oldest, failed)

    def close(self) -> None:
        """Let the writes under way finish."""
        self._writers.shutdown(wait=True)

    def _remove_abandoned_writes(self) -> None:
        """Remove writes that never reached ``pending/`` (never acknowledged): those older than
        ``ABANDONED_WRITE_SECONDS``, so another process's write under way is left alone."""
        cutoff = time.time() - ABANDONED_WRITE_SECONDS
        for partial in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if partial.stat().st_mtime < cutoff:
                    partial.unlink()

    def _next_stamp(self) -> int:
        with self._lock:
            stamp = max(time.time_ns(), self._last_stamp + 1)
            self._last_stamp = stamp
            return stamp


def _entry_names(folder: Path) -> Iterator[str]:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(SUFFIX):
                yield entry.name


def _opt_out_number(name: str) -> str | None:
    stem = name.removesuffix(SUFFIX)
    mark = stem.find(OPT_OUT_MARK)
    return None if mark < 0 else stem[mark + len(OPT_OUT_MARK) :]


def _fsync_directory(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
