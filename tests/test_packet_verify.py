"""The packet's ``verify.py``, run as an auditor would (``python -I verify.py``, standard library
only, from an extracted folder or on the zip): it passes a fresh packet and fails, naming the
problem, on one changed byte anywhere or a removed event."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consent_ledger.evidence import EventKind
from consent_ledger.export import PacketRequest, build_audit_packet
from consent_ledger.standalone_verify import GENESIS_HASH
from tests.ledger_support import (
    NUMBER,
    OTHER_NUMBER,
    T0,
    Ledger,
    answer_wav,
    append,
    call_evidence,
    ledger,
)

__all__ = ["ledger"]
GENERATED = datetime(2025, 5, 1, 9, 30, tzinfo=UTC)


def _packet(
    ledger: Ledger, tmp_path: Path, *, purge: bool = False, script_audio: str | None = None
) -> tuple[Path, str]:
    """An extracted packet for NUMBER at acme (3 of its 5 events); returns it and its audio hash.
    ``script_audio`` is the sha256 of the script's played audio in the first event's record."""
    sha = ledger.audio.put(answer_wav(tone=7))
    first = call_evidence(audio_sha256=sha)
    if script_audio is not None:
        assert first.script is not None
        first = replace(first, script=replace(first.script, audio_sha256=script_audio))
    with ledger.engine.begin() as conn:
        granted = append(conn, first, minutes=0)
        append(conn, call_evidence(number=OTHER_NUMBER), minutes=1)
        append(conn, call_evidence(business_id="bolt"), minutes=2)
        append(conn, call_evidence(revokes=granted.hash, kind=EventKind.REVOKED), minutes=3)
        append(conn, call_evidence(transcript="sure \u2014 \u201cok\u201d"), minutes=4)
    if purge:
        ledger.audio.purge(sha, "retention", T0 + timedelta(days=400))
    with ledger.engine.connect() as conn:
        content = build_audit_packet(
            conn,
            PacketRequest(business_id="acme", phone_number=NUMBER),
            audio_store=ledger.audio,
            generated_at=GENERATED,
        )
    archive = tmp_path / "packet.zip"
    archive.write_bytes(content)
    folder = tmp_path / "packet"
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(folder)
    return folder, sha


def _run(folder: Path, *target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", str(folder / "verify.py"), *target],
        capture_output=True,
        text=True,
        cwd=folder.parent,
        timeout=60,
        check=False,
    )


def _flip_byte(path: Path, offset: int) -> None:
    content = bytearray(path.read_bytes())
    content[offset] = ord("x") if content[offset] != ord("x") else ord("y")
    path.write_bytes(bytes(content))


def test_a_fresh_packet_verifies_from_its_folder(ledger: Ledger, tmp_path: Path) -> None:
    folder, sha = _packet(ledger, tmp_path)
    result = _run(folder)
    assert result.returncode == 0, result.stdout
    assert "VERDICT: VERIFIED" in result.stdout
    assert "FAIL" not in result.stdout
    assert "PASS  chain acme: 3 events, linked where consecutive (#1, #3-#4)" in result.stdout
    assert f"PASS  audio {sha[:12]}" in result.stdout
    assert (folder / "audio" / f"{sha}.wav").read_bytes() == ledger.audio.read(sha)


def test_a_packet_whose_record_hashes_the_played_script_verifies(
    ledger: Ledger, tmp_path: Path
) -> None:
    played = hashlib.sha256(b"the script as the caller heard it").hexdigest()
    folder, _sha = _packet(ledger, tmp_path, script_audio=played)
    result = _run(folder)
    assert result.returncode == 0, result.stdout
    assert "FAIL" not in result.stdout
    assert played in (folder / "events.jsonl").read_text()  # in the hashed body, as written


def test_a_fresh_packet_verifies_as_a_zip(ledger: Ledger, tmp_path: Path) -> None:
    folder, _sha = _packet(ledger, tmp_path)
    result = _run(folder, str(tmp_path / "packet.zip"))
    assert result.returncode == 0, result.stdout


def test_verify_uses_only_the_standard_library(ledger: Ledger, tmp_path: Path) -> None:
    folder, _sha = _packet(ledger, tmp_path)
    source = (folder / "verify.py").read_text()
    imports = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from "))
    }
    assert imports <= {
        "__future__",
        "argparse",
        "hashlib",
        "json",
        "sys",
        "zipfile",
        "collections",
        "dataclasses",
        "pathlib",
        "typing",
    }


def test_purged_audio_is_listed_and_passes(ledger: Ledger, tmp_path: Path) -> None:
    folder, sha = _packet(ledger, tmp_path, purge=True)
    assert not (folder / "audio").exists()
    result = _run(folder)
    assert result.returncode == 0, result.stdout
    assert f"PASS  audio {sha[:12]}: purged" in result.stdout


@pytest.mark.parametrize("where", ["body", "hash", "recorded_at"])
def test_a_changed_byte_in_events_fails(ledger: Ledger, tmp_path: Path, where: str) -> None:
    folder, _sha = _packet(ledger, tmp_path)
    events = folder / "events.jsonl"
    text = events.read_text()
    anchor = {"body": "yes plea", "hash": '"hash":"', "recorded_at": '"recorded_at":"2025-04-1'}
    _flip_byte(events, len(text[: text.index(anchor[where]) + len(anchor[where]) + 1].encode()))
    result = _run(folder)
    assert result.returncode == 1
    assert "FAIL  file events.jsonl" in result.stdout
    assert "FAIL  event acme #1" in result.stdout


def test_a_changed_byte_in_the_audio_fails(ledger: Ledger, tmp_path: Path) -> None:
    folder, sha = _packet(ledger, tmp_path)
    _flip_byte(folder / "audio" / f"{sha}.wav", 100)
    result = _run(folder)
    assert result.returncode == 1
    assert f"FAIL  file audio/{sha}.wav" in result.stdout
    assert f"FAIL  audio {sha[:12]}" in result.stdout


@pytest.mark.parametrize("offset", [0, 40, 200, -3])
def test_a_changed_byte_in_the_manifest_fails(ledger: Ledger, tmp_path: Path, offset: int) -> None:
    folder, _sha = _packet(ledger, tmp_path)
    manifest = folder / "manifest.json"
    _flip_byte(manifest, offset % len(manifest.read_bytes()))
    result = _run(folder)
    assert result.returncode == 1
    assert "FAIL  manifest:" in result.stdout


def test_a_removed_event_fails(ledger: Ledger, tmp_path: Path) -> None:
    folder, _sha = _packet(ledger, tmp_path)
    events = folder / "events.jsonl"
    lines = events.read_text().splitlines(keepends=True)
    events.write_text(lines[0] + lines[2])
    result = _run(folder)
    assert result.returncode == 1
    assert "FAIL  file events.jsonl" in result.stdout
    assert "FAIL  event count: 2 events, manifest says 3" in result.stdout


def test_a_removed_audio_file_fails(ledger: Ledger, tmp_path: Path) -> None:
    folder, sha = _packet(ledger, tmp_path)
    (folder / "audio" / f"{sha}.wav").unlink()
    result = _run(folder)
    assert result.returncode == 1
    assert f"FAIL  file audio/{sha}.wav: listed in the manifest but missing" in result.stdout


def test_garbage_instead_of_a_packet_fails_cleanly(tmp_path: Path) -> None:
    from consent_ledger import standalone_verify

    bogus = tmp_path / "bogus.zip"
    bogus.write_bytes(b"PK\x03\x04 not really a zip")
    checks = standalone_verify.verify_packet(bogus)
    assert [c.passed for c in checks] == [False]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert standalone_verify.verify_packet(empty)[0].detail == "manifest.json is missing"
    assert GENESIS_HASH == "0" * 64


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_usage_instead_of_taking_it_for_a_packet(
    ledger: Ledger, tmp_path: Path, flag: str
) -> None:
    folder, _ = _packet(ledger, tmp_path)
    result = _run(folder, flag)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: verify.py [-h] [packet]")
    assert "the packet's folder or zip file" in result.stdout
    assert "no packet at" not in result.stdout + result.stderr
    assert "PASS" not in result.stdout and "VERDICT" not in result.stdout


def test_an_unknown_option_is_bad_usage(ledger: Ledger, tmp_path: Path) -> None:
    folder, _ = _packet(ledger, tmp_path)
    result = _run(folder, "--verbose")
    assert result.returncode == 2
    assert "usage: verify.py" in result.stderr
    assert "VERDICT" not in result.stdout
