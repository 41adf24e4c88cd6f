"""Answer audio kept as evidence: WAV files stored by the sha256 of their bytes.

A file lives at ``root/<sha[:2]>/<sha>.wav``, so its name is its checksum and a consent event only
needs to carry the hash. Writes are atomic (a temporary file in the same folder, flushed to disk,
then renamed into place), so a reader never sees half a file and concurrent writers of the same
audio leave one good copy. When retention removes a file it leaves a tombstone
``root/<sha[:2]>/<sha>.purged`` (JSON: ``reason`` and ``at``), so the hash in the event is reported
as purged, not as missing evidence.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from consent_ledger.instants import format_instant, require_utc

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 16


class AudioStatus(StrEnum):
    """What the store holds for a hash."""

    PRESENT = "present"
    PURGED = "purged"
    MISSING = "missing"
    CORRUPT = "corrupt"


class AudioStore:
    """Content-addressed WAV files under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def put(self, wav: bytes) -> str:
        """Store ``wav`` and return its sha256 (lower-case hex); storing it again changes nothing.

        A copy that is present but damaged is replaced. Storing audio whose earlier copy was purged
        keeps it again and lifts the tombstone. Raises ValueError when ``wav`` is not a WAV file.
        """
        _require_wav(wav)
        digest = hashlib.sha256(wav).hexdigest()
        target = self.path(digest)
        if self.status(digest) is not AudioStatus.PRESENT:
            _write_atomically(target, wav)
            self._tombstone(digest).unlink(missing_ok=True)
        return digest

    def path(self, sha256: str) -> Path:
        """Where the audio with this hash is kept; ValueError for anything but 64 lower-case hex."""
        if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
            raise ValueError(f"an audio hash must be 64 lower-case hex digits, got {sha256!r}")
        return self.root / sha256[:2] / f"{sha256}.wav"

    def read(self, sha256: str) -> bytes:
        """The stored bytes, unchecked (see :meth:`status`); FileNotFoundError when absent."""
        return self.path(sha256).read_bytes()

    def status(self, sha256: str) -> AudioStatus:
        """Whether the audio is present and intact (re-hashed now), purged, missing or corrupt."""
        path = self.path(sha256)
        if self._tombstone(sha256).exists():
            return AudioStatus.PURGED
        try:
            actual = _file_sha256(path)
        except FileNotFoundError:
            return AudioStatus.MISSING
        except IsADirectoryError:
            return AudioStatus.CORRUPT
        return AudioStatus.PRESENT if actual == sha256 else AudioStatus.CORRUPT

    def purge(self, sha256: str, reason: str, at: datetime) -> None:
        """Delete the audio, leaving a tombstone that says why and when.

        The tombstone is written before the audio is deleted, so an interruption never leaves the
        audio gone without a record. Purging again keeps the first tombstone.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("a purge needs a reason")
        require_utc("at", at)
        tombstone = self._tombstone(sha256)
        if not tombstone.exists():
            record = {"reason": reason, "at": format_instant(at)}
            _write_atomically(tombstone, json.dumps(record, sort_keys=True).encode("utf-8"))
        self.path(sha256).unlink(missing_ok=True)

    def _tombstone(self, sha256: str) -> Path:
        return self.path(sha256).with_suffix(".purged")


def _require_wav(wav: object) -> None:
    if not isinstance(wav, bytes):
        raise ValueError(f"audio must be bytes, got {type(wav).__name__}")
    if len(wav) < 12 or wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise ValueError("audio must be a WAV file (RIFF/WAVE header)")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomically(target: Path, content: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(target.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX: fsync the directory)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
