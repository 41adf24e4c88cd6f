"""Audit export: the consent evidence for a number or a business, as a packet or a summary.

:func:`build_audit_packet` makes a zip an auditor can check offline:

- ``events.jsonl``: the stored events exactly, one canonical JSON object per line (``seq``,
  ``business_id``, ``phone_number``, ``kind``, ``recorded_at``, ``body``, ``prev_hash``,
  ``hash``). Each line proves itself: ``hash = sha256(prev_hash + body)``.
- ``report.pdf``: the same evidence for a person to read (see ``audit_pdf``), with the result of
  verifying each business's whole chain at export time.
- ``audio/<sha256>.wav``: each event's answer audio when the store still has it.
- ``texts.jsonl``: every text planned or sent under each event (time, body, status, the
  carrier's message id), one JSON object per line, oldest first, when the exporter was given a
  :data:`~consent_ledger.text_log.TextLog` to read them with (the manifest says either way).
- ``verify.py``: a standard-library-only checker (``standalone_verify``).
- ``manifest.json``: when and what was asked, the sha256 and size of every file, the event count,
  each business's chain head at export, the state of every audio file, and its own sha256.

:func:`summarize_events` gives one row per event for ``--format json|csv``. Events are read through
the ``(business_id, phone_number, seq)`` index, so one number's packet costs the same on a ledger
of any size; only the business's chain verification grows with the chain.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import cached_property
from importlib import resources
from typing import Any

import phonenumbers
from sqlalchemy import Connection, Select, select

from consent_ledger.audio_store import AudioStatus, AudioStore
from consent_ledger.audit_pdf import AuditReport, ReportedChain, ReportedEvent, render_audit_report
from consent_ledger.chain import GENESIS_HASH, canonical_json
from consent_ledger.evidence import MAX_BUSINESS_ID_LENGTH, ConsentEvidence
from consent_ledger.instants import format_instant, require_utc, stored_instant
from consent_ledger.standalone_verify import (
    EVENTS,
    MANIFEST,
    MANIFEST_DIGEST_FIELD,
    manifest_digest,
    manifest_text,
)
from consent_ledger.tables import consent_chain_heads, consent_events
from consent_ledger.text_log import SentText, TextLog
from consent_ledger.verify import verify_ledger
from consent_ledger.wording import decision

PACKET_FORMAT = "consent-audit-packet/1"
NOT_INCLUDED = "not_included"
"""The audio status of a packet built without access to the audio store, and its texts' status
when built without a text log."""
TEXTS = "texts.jsonl"


class PacketRequestError(ValueError):
    """An export request that cannot be answered as asked; the message says why."""


@dataclass(frozen=True)
class PacketRequest:
    """Which events to export: a business's, a number's, or one number's with one business.

    ``start`` is inclusive and ``end`` exclusive, both aware UTC instants of ``recorded_at``.
    """

    business_id: str | None = None
    phone_number: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.business_id is None and self.phone_number is None:
            raise PacketRequestError("name a business, a phone number, or both")
        if self.business_id is not None and (
            not isinstance(self.business_id, str)
            or not self.business_id.strip()
            or len(self.business_id) > MAX_BUSINESS_ID_LENGTH
        ):
            raise PacketRequestError(f"not a business id: {self.business_id!r}")
        if self.phone_number is not None and not _is_e164(self.phone_number):
            raise PacketRequestError(
                f"not a phone number in E.164 form (+ and digits): {self.phone_number!r}"
            )
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None:
                try:
                    require_utc(name, value)
                except ValueError as error:
                    raise PacketRequestError(str(error)) from None
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise PacketRequestError("the period's start must come before its end")

    def describe(self) -> str:
        """The request in words, e.g. ``+15555550123 at acme, 2025-04-01 … 2025-05-01``."""
        subject = " at ".join(part for part in (self.phone_number, self.business_id) if part)
        if self.start is None and self.end is None:
            return subject
        start = format_instant(self.start) if self.start else "the beginning"
        end = format_instant(self.end) if self.end else "now"
        return f"{subject}, recorded from {start} until {end}"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "business_id": self.business_id,
            "phone_number": self.phone_number,
            "start": format_instant(self.start) if self.start else None,
            "end": format_instant(self.end) if self.end else None,
        }


@dataclass(frozen=True)
class StoredEvent:
    """A ``consent_events`` row exactly as stored, ``recorded_at`` as its canonical instant."""

    seq: int
    business_id: str
    phone_number: str
    kind: str
    recorded_at: str
    body: str
    prev_hash: str
    hash: str

    def evidence(self) -> ConsentEvidence | None:
        """The evidence the body records, or None when the stored body does not load."""
        return self._loaded[0]

    def audio_sha256(self) -> str | None:
        """The answer audio's hash as the body records it, read even from damaged evidence."""
        return self._loaded[1]

    @cached_property
    def _loaded(self) -> tuple[ConsentEvidence | None, str | None]:
        """The body's evidence and audio hash, read once (an export asks for both, repeatedly)."""
        try:
            recorded = json.loads(self.body)["evidence"]
        except (ValueError, KeyError, TypeError):
            return None, None
        try:
            evidence = ConsentEvidence.from_dict(recorded)
        except (ValueError, KeyError, TypeError):
            evidence = None
        found = recorded.get("audio_sha256") if isinstance(recorded, dict) else None
        return evidence, found if isinstance(found, str) else None


@dataclass(frozen=True)
class EventSummary:
    """One event in a summary row."""

    recorded_at: str
    business_id: str
    phone_number: str
    kind: str
    decision: str
    method: str
    script_version: str
    answer_transcript: str
    outcome: str
    note: str
    hash: str


SUMMARY_COLUMNS = tuple(EventSummary.__dataclass_fields__)


def stored_events(conn: Connection, request: PacketRequest) -> list[StoredEvent]:
    """The events the request names, in chain order (business, then sequence number)."""
    c = consent_events.c
    statement: Select[Any] = select(
        c.seq, c.business_id, c.phone_number, c.kind, c.recorded_at, c.body, c.prev_hash, c.hash
    )
    if request.business_id is not None:
        statement = statement.where(c.business_id == request.business_id)
    else:
        # Name every business so the (business_id, phone_number, seq) index serves the query.
        statement = statement.where(c.business_id.in_(select(consent_chain_heads.c.business_id)))
    if request.phone_number is not None:
        statement = statement.where(c.phone_number == request.phone_number)
    if request.start is not None:
        statement = statement.where(c.recorded_at >= request.start)
    if request.end is not None:
        statement = statement.where(c.recorded_at < request.end)
    rows = conn.execute(statement.order_by(c.business_id, c.seq))
    return [
        StoredEvent(
            seq=row.seq,
            business_id=row.business_id,
            phone_number=row.phone_number,
            kind=row.kind,
            recorded_at=format_instant(stored_instant(row.recorded_at)),
            body=row.body,
            prev_hash=row.prev_hash,
            hash=row.hash,
        )
        for row in rows
    ]


def summarize_events(conn: Connection, request: PacketRequest) -> list[EventSummary]:
    """One summary per event the request names, in chain order."""
    return [_summary(event) for event in stored_events(conn, request)]


def summaries_to_json(summaries: list[EventSummary]) -> str:
    return json.dumps([asdict(s) for s in summaries], indent=2, ensure_ascii=False) + "\n"


def summaries_to_csv(summaries: list[EventSummary]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(SUMMARY_COLUMNS)
    for summary in summaries:
        writer.writerow([_csv_safe(value) for value in asdict(summary).values()])
    return out.getvalue()


def build_audit_packet(
    conn: Connection,
    request: PacketRequest,
    *,
    audio_store: AudioStore | None,
    generated_at: datetime,
    time_zones: Mapping[str, str] | None = None,
    text_log: TextLog | None = None,
) -> bytes:
    """The audit packet (zip bytes) for ``request``, as the ledger stands now.

    ``time_zones`` names each business's time zone, in which the report shows its times (UTC
    beside them; UTC alone for a business it does not name); ``text_log`` reads the texts sent
    under the events (without it the packet says that its texts are not included)."""
    require_utc("generated_at", generated_at)
    events = stored_events(conn, request)
    businesses = sorted({e.business_id for e in events} | _named_business(request))
    chains = [_chain_at_export(conn, business) for business in businesses]
    audio = _collect_audio(events, audio_store)
    texts = None if text_log is None else _texts(conn, text_log, request, events)
    under: dict[str, list[SentText]] = {}
    for text in texts or ():
        under.setdefault(text.consent_event_hash, []).append(text)
    report = AuditReport(
        subject=request.describe(),
        generated_at=generated_at,
        events=[_reported(event, audio.statuses, under) for event in events],
        chains=chains,
        time_zones=dict(time_zones or {}),
        texts_included=texts is not None,
    )
    files: dict[str, bytes] = {
        EVENTS: "".join(_event_line(event) for event in events).encode("utf-8"),
        "report.pdf": render_audit_report(report),
        **{f"audio/{sha}.wav": wav for sha, wav in sorted(audio.files.items())},
        "verify.py": _verifier_source(),
    }
    if texts is not None:
        files[TEXTS] = "".join(canonical_json(t.as_dict()) + "\n" for t in texts).encode("utf-8")
    texts_count = None if texts is None else len(texts)
    manifest = _manifest(request, generated_at, events, chains, audio.statuses, texts_count, files)
    files[MANIFEST] = manifest_text(manifest).encode("utf-8")
    return _zip(files, generated_at)


def _texts(
    conn: Connection, text_log: TextLog, request: PacketRequest, events: list[StoredEvent]
) -> list[SentText]:
    """The texts sent under ``events``, business by business, each business's oldest first."""
    hashes: dict[str, set[str]] = {}
    for event in events:
        hashes.setdefault(event.business_id, set()).add(event.hash)
    return [
        text
        for business, named in sorted(hashes.items())
        for text in text_log(conn, business, request.phone_number, named)
    ]


@dataclass(frozen=True)
class _PacketAudio:
    statuses: dict[str, str]
    files: dict[str, bytes]


def _collect_audio(events: list[StoredEvent], store: AudioStore | None) -> _PacketAudio:
    statuses: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for sha in sorted({s for event in events if (s := event.audio_sha256()) is not None}):
        if store is None:
            statuses[sha] = NOT_INCLUDED
            continue
        try:
            status = store.status(sha)
            wav = store.read(sha) if status is AudioStatus.PRESENT else b""
        except (ValueError, OSError):
            status, wav = AudioStatus.MISSING, b""
        if status is AudioStatus.PRESENT and hashlib.sha256(wav).hexdigest() != sha:
            status = AudioStatus.CORRUPT  # changed between the check and the read
        statuses[sha] = status.value
        if status is AudioStatus.PRESENT:
            files[sha] = wav
    return _PacketAudio(statuses, files)


def _chain_at_export(conn: Connection, business_id: str) -> ReportedChain:
    head = conn.execute(
        select(consent_chain_heads.c.seq, consent_chain_heads.c.hash).where(
            consent_chain_heads.c.business_id == business_id
        )
    ).one_or_none()
    return ReportedChain(
        business_id=business_id,
        head_seq=0 if head is None else int(head.seq),
        head_hash=GENESIS_HASH if head is None else str(head.hash),
        verification=verify_ledger(conn, business_id),
    )


def _manifest(
    request: PacketRequest,
    generated_at: datetime,
    events: list[StoredEvent],
    chains: list[ReportedChain],
    audio: dict[str, str],
    texts_count: int | None,
    files: dict[str, bytes],
) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "format": PACKET_FORMAT,
        "generated_at": format_instant(generated_at),
        "request": request.as_dict(),
        "event_count": len(events),
        "chain_heads": {c.business_id: {"seq": c.head_seq, "hash": c.head_hash} for c in chains},
        "verification": {c.business_id: _verification(c) for c in chains},
        "audio": [{"sha256": sha, "status": status} for sha, status in sorted(audio.items())],
        "texts": NOT_INCLUDED if texts_count is None else texts_count,
        "files": [
            {"path": name, "sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
            for name, content in sorted(files.items())
        ],
    }
    manifest[MANIFEST_DIGEST_FIELD] = manifest_digest(manifest)
    return manifest


def _verification(chain: ReportedChain) -> dict[str, Any]:
    result = chain.verification
    broken = result.first_broken
    return {
        "ok": result.ok,
        "events_checked": result.events_checked,
        "first_broken": None if broken is None else {"seq": broken.seq, "reason": broken.reason},
    }


def _event_line(event: StoredEvent) -> str:
    return canonical_json(asdict(event)) + "\n"


def _reported(
    event: StoredEvent, audio: dict[str, str], texts: Mapping[str, Sequence[SentText]]
) -> ReportedEvent:
    sha = event.audio_sha256()
    return ReportedEvent(
        business_id=event.business_id,
        seq=event.seq,
        phone_number=event.phone_number,
        kind=event.kind,
        recorded_at=event.recorded_at,
        hash=event.hash,
        evidence=event.evidence(),
        audio_status=None if sha is None else f"{audio.get(sha, NOT_INCLUDED)} (sha256 {sha})",
        texts=tuple(texts.get(event.hash, ())),
    )


def _summary(event: StoredEvent) -> EventSummary:
    evidence = event.evidence()
    if evidence is None:
        return EventSummary(
            event.recorded_at,
            event.business_id,
            event.phone_number,
            event.kind,
            decision(event.kind),
            "",
            "",
            "",
            "stored evidence does not load",
            "",
            event.hash,
        )
    return EventSummary(
        recorded_at=event.recorded_at,
        business_id=event.business_id,
        phone_number=event.phone_number,
        kind=event.kind,
        decision=decision(event.kind),
        method=evidence.method.value,
        script_version=evidence.script.version if evidence.script else "",
        answer_transcript=answer_words(evidence),
        outcome=_outcome(evidence),
        note=evidence.note,
        hash=event.hash,
    )


def answer_words(evidence: ConsentEvidence) -> str:
    """What the person answered, in order: the words said, a key pressed (``pressed 1 on the
    keypad``), or the text that made a change by text (``texted "STOP" (SM…)``)."""
    said = [
        f"pressed {answer.keypad_digit} on the keypad" if answer.keypad_digit else answer.transcript
        for answer in evidence.answers
    ]
    if evidence.message is not None:
        said.append(f'texted "{evidence.message.body}" ({evidence.message.sid})')
    return " / ".join(said)


def _outcome(evidence: ConsentEvidence) -> str:
    parts = []
    if evidence.scope is not None:
        parts.append(
            f"allows up to {evidence.scope.max_texts} texts until "
            f"{format_instant(evidence.scope.expires_at)}"
        )
    if evidence.revokes is not None:
        parts.append(f"undoes event {evidence.revokes}")
    return "; ".join(parts) or decision(evidence.kind)


def _csv_safe(value: object) -> object:
    """Keep a spreadsheet from running a cell as a formula (caller-controlled transcripts)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        if value.startswith("+") and value[1:].isdigit():
            return value  # an E.164 number
        return "'" + value
    return value


def _named_business(request: PacketRequest) -> set[str]:
    return set() if request.business_id is None else {request.business_id}


def _verifier_source() -> bytes:
    return resources.files("consent_ledger").joinpath("standalone_verify.py").read_bytes()


def _zip(files: dict[str, bytes], generated_at: datetime) -> bytes:
    out = io.BytesIO()
    stamp = generated_at.timetuple()[:6]
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return out.getvalue()


def _is_e164(number: object) -> bool:
    if not isinstance(number, str) or not number.startswith("+") or not number[1:].isdigit():
        return False
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return formatted == number and phonenumbers.is_possible_number(parsed)
