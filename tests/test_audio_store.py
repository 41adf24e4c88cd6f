"""The content-addressed store of consent answer audio: layout, integrity, purge, hostile input."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from consent_ledger.audio_store import AudioStatus, AudioStore
from tests.ledger_support import mono_wav

AT = datetime(2030, 4, 11, 3, 0, 0, 250000, tzinfo=UTC)


def _wav(seed: int = 0, frames: int = 800) -> bytes:
    """A short 8 kHz mono 16-bit WAV whose samples depend on ``seed``."""
    return mono_wav(bytes((seed + i) % 256 for i in range(frames * 2)))


@pytest.fixture
def store(tmp_path: Path) -> AudioStore:
    return AudioStore(tmp_path / "audio")


def _files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_put_stores_the_audio_under_its_sha256(store: AudioStore) -> None:
    wav = _wav()
    digest = store.put(wav)

    assert digest == hashlib.sha256(wav).hexdigest()
    assert store.path(digest) == store.root / digest[:2] / f"{digest}.wav"
    assert store.path(digest).read_bytes() == wav
    assert store.read(digest) == wav
    assert store.status(digest) is AudioStatus.PRESENT
    assert _files(store.root) == [f"{digest[:2]}/{digest}.wav"]


def test_putting_the_same_audio_again_leaves_the_file_alone(store: AudioStore) -> None:
    wav = _wav()
    digest = store.put(wav)
    before = store.path(digest).stat()

    assert store.put(wav) == digest

    after = store.path(digest).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _files(store.root) == [f"{digest[:2]}/{digest}.wav"]


def test_different_audio_gets_different_files(store: AudioStore) -> None:
    digests = {store.put(_wav(seed)) for seed in range(5)}
    assert len(digests) == 5
    assert all(store.status(digest) is AudioStatus.PRESENT for digest in digests)


@pytest.mark.parametrize(
    "not_wav",
    [b"", b"RIFF", b"RIFF\x00\x00\x00\x00WAVX....", b"ID3\x03 an mp3", "RIFF....WAVE"],
    ids=["empty", "short", "not WAVE", "mp3", "text"],
)
def test_put_refuses_anything_but_wav_bytes(store: AudioStore, not_wav: object) -> None:
    with pytest.raises(ValueError, match="audio must be"):
        store.put(not_wav)  # type: ignore[arg-type]
    assert not store.root.exists() or _files(store.root) == []


_HOSTILE_HASHES: list[object] = [
    "../../../../etc/passwd",
    "../" + "a" * 61,
    "a" * 63,
    "a" * 65,
    "A" * 64,
    "g" * 64,
    "a" * 64 + "\n",
    " " + "a" * 63,
    "a" * 32 + "/" + "a" * 31,
    "\u0661" * 64,  # Arabic-Indic digit one: a digit, but not 0-9
    "a" * 62 + "\x00a",
    "",
    None,
    64,
    b"a" * 64,
]


@pytest.mark.parametrize("hostile", _HOSTILE_HASHES, ids=range(len(_HOSTILE_HASHES)))
def test_every_entry_point_refuses_a_hash_that_is_not_64_lowercase_hex(
    store: AudioStore, tmp_path: Path, hostile: object
) -> None:
    store.put(_wav())
    before = sorted(str(path) for path in tmp_path.rglob("*"))
    with pytest.raises(ValueError, match="64 lower-case hex"):
        store.path(hostile)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="64 lower-case hex"):
        store.read(hostile)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="64 lower-case hex"):
        store.status(hostile)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="64 lower-case hex"):
        store.purge(hostile, "retention", AT)  # type: ignore[arg-type]
    assert sorted(str(path) for path in tmp_path.rglob("*")) == before


def test_missing_audio_is_reported_missing_and_cannot_be_read(store: AudioStore) -> None:
    digest = hashlib.sha256(_wav()).hexdigest()
    assert store.status(digest) is AudioStatus.MISSING
    with pytest.raises(FileNotFoundError):
        store.read(digest)


def test_a_changed_byte_is_reported_corrupt_and_a_new_put_repairs_it(store: AudioStore) -> None:
    wav = _wav()
    digest = store.put(wav)
    damaged = bytearray(wav)
    damaged[-1] ^= 0x01
    store.path(digest).write_bytes(bytes(damaged))

    assert store.status(digest) is AudioStatus.CORRUPT
    assert store.read(digest) == bytes(damaged)  # read is unchecked; status is the check

    assert store.put(wav) == digest
    assert store.status(digest) is AudioStatus.PRESENT
    assert store.read(digest) == wav


def test_a_truncated_file_or_a_folder_in_its_place_is_corrupt(store: AudioStore) -> None:
    truncated = store.put(_wav(1))
    store.path(truncated).write_bytes(b"")
    folder = hashlib.sha256(_wav(2)).hexdigest()
    store.path(folder).mkdir(parents=True)

    assert store.status(truncated) is AudioStatus.CORRUPT
    assert store.status(folder) is AudioStatus.CORRUPT


def test_purge_deletes_the_audio_and_leaves_a_tombstone(store: AudioStore) -> None:
    digest = store.put(_wav())

    store.purge(digest, "consent retention of 5 years ended", AT)

    assert not store.path(digest).exists()
    assert store.status(digest) is AudioStatus.PURGED
    tombstone = store.root / digest[:2] / f"{digest}.purged"
    assert json.loads(tombstone.read_text()) == {
        "reason": "consent retention of 5 years ended",
        "at": "2030-04-11T03:00:00.250000Z",
    }
    assert _files(store.root) == [f"{digest[:2]}/{digest}.purged"]
    with pytest.raises(FileNotFoundError):
        store.read(digest)


def test_purging_again_keeps_the_first_tombstone(store: AudioStore) -> None:
    digest = store.put(_wav())
    store.purge(digest, "first", AT)
    store.purge(digest, "second", AT + timedelta(days=1))

    tombstone = store.path(digest).with_suffix(".purged")
    assert json.loads(tombstone.read_text())["reason"] == "first"


def test_purging_audio_never_stored_still_records_the_purge(store: AudioStore) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    store.purge(digest, "retention", AT)
    assert store.status(digest) is AudioStatus.PURGED


def test_storing_purged_audio_again_lifts_the_tombstone(store: AudioStore) -> None:
    wav = _wav()
    digest = store.put(wav)
    store.purge(digest, "retention", AT)

    assert store.put(wav) == digest

    assert store.status(digest) is AudioStatus.PRESENT
    assert _files(store.root) == [f"{digest[:2]}/{digest}.wav"]


@pytest.mark.parametrize(
    ("reason", "at", "message"),
    [
        ("", AT, "reason"),
        ("  ", AT, "reason"),
        (None, AT, "reason"),
        ("retention", datetime(2030, 4, 11), "naive"),
        ("retention", AT.astimezone(timezone(timedelta(hours=2))), "UTC"),
    ],
    ids=["empty reason", "blank reason", "no reason", "naive time", "non-UTC time"],
)
def test_purge_needs_a_reason_and_a_utc_instant(
    store: AudioStore, reason: object, at: datetime, message: str
) -> None:
    digest = store.put(_wav())
    with pytest.raises(ValueError, match=message):
        store.purge(digest, reason, at)  # type: ignore[arg-type]
    assert store.status(digest) is AudioStatus.PRESENT


def test_concurrent_puts_of_the_same_audio_leave_one_good_file(store: AudioStore) -> None:
    wav = _wav(frames=40_000)
    with ThreadPoolExecutor(max_workers=16) as pool:
        digests = set(pool.map(lambda _: store.put(wav), range(64)))

    (digest,) = digests
    assert store.status(digest) is AudioStatus.PRESENT
    assert _files(store.root) == [f"{digest[:2]}/{digest}.wav"]  # no temporary files left


def test_concurrent_puts_of_different_audio_share_folders_safely(store: AudioStore) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        digests = list(pool.map(lambda seed: store.put(_wav(seed)), range(200)))

    assert len(set(digests)) == 200
    assert all(store.status(digest) is AudioStatus.PRESENT for digest in digests)
    assert len(_files(store.root)) == 200
