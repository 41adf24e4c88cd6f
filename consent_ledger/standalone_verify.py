"""Check a consent audit packet offline, with nothing but the Python standard library.

This file is shipped inside every audit packet as ``verify.py``. Run it as

    python verify.py [PACKET_DIR_OR_ZIP]

(default: the folder it sits in; ``python verify.py --help`` prints the usage). It checks,
printing PASS or FAIL for each:

1. ``manifest.json`` is intact: written in its canonical layout and matching its own
   ``manifest_sha256`` (the sha256 of the manifest's compact, key-sorted JSON without that field).
2. Every file the manifest lists is present with the listed size and sha256.
3. Every event in ``events.jsonl`` hashes correctly: ``hash = sha256(prev_hash + body)`` (UTF-8,
   lower-case hex), and its fields say what its hashed body says.
4. Events of one business chain: where sequence numbers are consecutive, each event's
   ``prev_hash`` is the previous event's hash; the first event links to 64 zeros; an event at the
   chain head recorded in the manifest has the head's hash.
5. Each event's answer audio (``audio/<sha256>.wav``) hashes to the ``audio_sha256`` its body
   records, unless the manifest lists that audio as purged by retention.

Exit status 0 only when every check passes. The packet's own copy of this script proves nothing
about itself: an auditor may verify with a copy obtained separately.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

GENESIS_HASH = "0" * 64
MANIFEST = "manifest.json"
EVENTS = "events.jsonl"
MANIFEST_DIGEST_FIELD = "manifest_sha256"
EVENT_FIELDS = (
    "body",
    "business_id",
    "hash",
    "kind",
    "phone_number",
    "prev_hash",
    "recorded_at",
    "seq",
)
UNAVAILABLE_AUDIO = ("purged", "not_included")
"""Audio statuses a packet may list without the file: retention purged it, or the export was
made without access to the audio."""
_CHUNK = 1 << 16


def manifest_digest(manifest: dict[str, Any]) -> str:
    """The sha256 of the manifest's compact, key-sorted JSON, leaving out ``manifest_sha256``."""
    content = {key: value for key, value in manifest.items() if key != MANIFEST_DIGEST_FIELD}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest_text(manifest: dict[str, Any]) -> str:
    """The canonical layout of ``manifest.json``: key-sorted, indented by two, one final newline."""
    return json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class Check:
    """The outcome of one check: what was checked, whether it passed, and the evidence why."""

    name: str
    passed: bool
    detail: str


class Packet:
    """The files of a packet, read from a folder or a zip file alike."""

    def __init__(self, location: Path) -> None:
        self.location = location
        self._zip = zipfile.ZipFile(location) if location.is_file() else None
        self._members = frozenset(self._zip.namelist()) if self._zip is not None else frozenset()

    def exists(self, name: str) -> bool:
        if self._zip is not None:
            return name in self._members
        return (self.location / name).is_file()

    def open(self, name: str) -> IO[bytes]:
        if self._zip is not None:
            return self._zip.open(name)
        return (self.location / name).open("rb")

    def read_text(self, name: str) -> str:
        with self.open(name) as file:
            return file.read().decode("utf-8")

    def digest(self, name: str) -> tuple[str, int]:
        """The sha256 and size of a file, read in chunks."""
        digest, size = hashlib.sha256(), 0
        with self.open(name) as file:
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


@dataclass
class _Chain:
    """What the chain check remembers of one business: seq -> (prev_hash, hash)."""

    links: dict[int, tuple[str, str]] = field(default_factory=dict)


def check_manifest(packet: Packet) -> tuple[Check, dict[str, Any] | None]:
    """The manifest, parsed, when it is intact."""
    if not packet.exists(MANIFEST):
        return Check("manifest", False, f"{MANIFEST} is missing"), None
    try:
        text = packet.read_text(MANIFEST)
        manifest = json.loads(text)
    except (UnicodeDecodeError, ValueError) as error:
        return Check("manifest", False, f"{MANIFEST} is not valid JSON: {error}"), None
    if not isinstance(manifest, dict):
        return Check("manifest", False, f"{MANIFEST} is not a JSON object"), None
    if manifest_text(manifest) != text:
        return Check("manifest", False, f"{MANIFEST} is not in its canonical layout"), None
    recorded = manifest.get(MANIFEST_DIGEST_FIELD)
    if recorded != manifest_digest(manifest):
        return Check(
            "manifest", False, f"{MANIFEST} does not match its {MANIFEST_DIGEST_FIELD}"
        ), None
    return Check("manifest", True, f"intact ({MANIFEST_DIGEST_FIELD} {recorded})"), manifest


def check_files(packet: Packet, manifest: dict[str, Any]) -> list[Check]:
    """Every listed file is present with its listed sha256 and size."""
    entries = manifest.get("files")
    if not isinstance(entries, list) or not entries:
        return [Check("files", False, "the manifest lists no files")]
    checks = []
    for entry in entries:
        name = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not _is_safe_name(name):
            checks.append(Check("file", False, f"the manifest lists an unsafe path {name!r}"))
        elif not packet.exists(name):
            checks.append(Check(f"file {name}", False, "listed in the manifest but missing"))
        else:
            digest, size = packet.digest(name)
            matches = digest == entry.get("sha256") and size == entry.get("size")
            detail = f"sha256 {digest}, {size} bytes"
            checks.append(
                Check(f"file {name}", matches, detail if matches else f"{detail}: not as listed")
            )
    return checks


def check_events(packet: Packet, manifest: dict[str, Any]) -> list[Check]:
    """Each event hashes correctly and chains to its neighbours; each audio file matches."""
    if not packet.exists(EVENTS):
        return [Check("events", False, f"{EVENTS} is missing")]
    chains: dict[str, _Chain] = {}
    audio: dict[str, str] = {}
    checks: list[Check] = []
    count = 0
    for number, line in _lines(packet):
        count += 1
        event, problem = _parse_event(line)
        if event is None:
            checks.append(Check(f"event at line {number}", False, problem))
            continue
        label = f"event {event['business_id']} #{event['seq']}"
        if problem:
            checks.append(Check(label, False, problem))
            continue
        links = chains.setdefault(event["business_id"], _Chain()).links
        if event["seq"] in links:
            checks.append(Check(label, False, "appears more than once"))
            continue
        links[event["seq"]] = (event["prev_hash"], event["hash"])
        audio_sha256 = json.loads(event["body"])["evidence"].get("audio_sha256")
        if isinstance(audio_sha256, str):
            audio[audio_sha256] = label
    if not checks:
        checks.append(Check("event hashes", True, f"all {count} events hash correctly"))
    expected = manifest.get("event_count")
    checks.append(
        Check("event count", count == expected, f"{count} events, manifest says {expected}")
    )
    checks += [
        _chain_check(business, chain, manifest) for business, chain in sorted(chains.items())
    ]
    checks += [_audio_check(packet, manifest, sha, label) for sha, label in sorted(audio.items())]
    return checks


def _lines(packet: Packet) -> Iterator[tuple[int, str]]:
    with packet.open(EVENTS) as file:
        for number, raw in enumerate(file, start=1):
            yield number, raw.decode("utf-8", errors="replace").rstrip("\n")


def _parse_event(line: str) -> tuple[dict[str, Any] | None, str]:
    """The event on one line, and what is wrong with it ("" when nothing)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None, "not valid JSON"
    if not isinstance(event, dict) or tuple(sorted(event)) != EVENT_FIELDS:
        return None, f"an event needs exactly the fields {', '.join(EVENT_FIELDS)}"
    if not all(isinstance(event[name], str) for name in EVENT_FIELDS if name != "seq"):
        return None, "an event's fields other than seq must be strings"
    if type(event["seq"]) is not int:
        return None, "seq must be an integer"
    actual = hashlib.sha256((event["prev_hash"] + event["body"]).encode("utf-8")).hexdigest()
    if actual != event["hash"]:
        return event, f"hash mismatch: sha256(prev_hash + body) is {actual}"
    try:
        body = json.loads(event["body"])
        evidence = body["evidence"]
        hashed = {
            "business_id": evidence["business_id"],
            "phone_number": evidence["phone_number"],
            "kind": evidence["kind"],
            "seq": body["seq"],
            "recorded_at": body["recorded_at"],
        }
    except (ValueError, KeyError, TypeError):
        return event, "the hashed body is not a consent event"
    for name, value in hashed.items():
        if event[name] != value:
            return event, f"{name} {event[name]!r} differs from the hashed body's {value!r}"
    return event, ""


def _chain_check(business: str, chain: _Chain, manifest: dict[str, Any]) -> Check:
    name = f"chain {business}"
    for seq, (prev_hash, _hash) in sorted(chain.links.items()):
        if seq == 1 and prev_hash != GENESIS_HASH:
            return Check(name, False, "event #1 does not start the chain (prev_hash is not zeros)")
        previous = chain.links.get(seq - 1)
        if previous is not None and previous[1] != prev_hash:
            return Check(name, False, f"event #{seq} does not link to event #{seq - 1}")
    heads = manifest.get("chain_heads")
    head = heads.get(business) if isinstance(heads, dict) else None
    if not isinstance(head, dict) or type(head.get("seq")) is not int:
        return Check(name, False, "the manifest has no chain head for this business")
    at_head = chain.links.get(head["seq"])
    if at_head is not None and at_head[1] != head.get("hash"):
        return Check(name, False, f"event #{head['seq']} is not the chain head it should be")
    if any(seq > head["seq"] for seq in chain.links):
        return Check(name, False, "an event lies beyond the chain head recorded at export")
    runs = _runs(sorted(chain.links))
    return Check(name, True, f"{len(chain.links)} events, linked where consecutive ({runs})")


def _runs(seqs: list[int]) -> str:
    runs: list[list[int]] = []
    for seq in seqs:
        if runs and runs[-1][-1] == seq - 1:
            runs[-1].append(seq)
        else:
            runs.append([seq])
    return ", ".join(f"#{r[0]}" if len(r) == 1 else f"#{r[0]}-#{r[-1]}" for r in runs)


def _audio_check(packet: Packet, manifest: dict[str, Any], sha256: str, label: str) -> Check:
    name = f"audio {sha256[:12]}"
    path = f"audio/{sha256}.wav"
    entries = manifest.get("audio")
    listed = {
        entry.get("sha256"): entry.get("status")
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict)
    }
    if packet.exists(path):
        digest, size = packet.digest(path)
        if digest != sha256:
            return Check(name, False, f"{path} hashes to {digest}, not the hash {label} records")
        return Check(name, True, f"{path} ({size} bytes) matches {label}")
    status = listed.get(sha256)
    if status in UNAVAILABLE_AUDIO:
        return Check(name, True, f"{status} (the hash stays in {label}); no file to check")
    return Check(name, False, f"{path} for {label} is missing (manifest says {status!r})")


def _is_safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name


def verify_packet(location: Path) -> list[Check]:
    """Every check of the packet at ``location`` (a folder or a zip file)."""
    try:
        packet = Packet(location)
    except (OSError, zipfile.BadZipFile) as error:
        return [Check("packet", False, f"cannot open {location}: {error}")]
    try:
        manifest_check, manifest = check_manifest(packet)
        if manifest is None:
            return [manifest_check]
        return [manifest_check, *check_files(packet, manifest), *check_events(packet, manifest)]
    finally:
        packet.close()


def _arguments(argv: list[str]) -> argparse.Namespace:
    """The command line: one optional packet location; ``--help`` prints the usage."""
    parser = argparse.ArgumentParser(
        prog="verify.py",
        description="Check a consent audit packet offline: the manifest, every file's sha256, "
        "every event's hash and chain link, and the answer audio. Exit status 0 only when "
        "every check passes, 1 when one fails, 2 for bad usage.",
    )
    parser.add_argument(
        "packet",
        nargs="?",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="the packet's folder or zip file (default: the folder this script sits in)",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    location = _arguments(argv).packet
    if not location.exists():
        print(f"no packet at {location}", file=sys.stderr)
        return 2
    checks = verify_packet(location)
    for check in checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    failed = [check for check in checks if not check.passed]
    if failed:
        print(f"VERDICT: NOT VERIFIED - {len(failed)} of {len(checks)} checks failed")
        return 1
    print(f"VERDICT: VERIFIED - all {len(checks)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
