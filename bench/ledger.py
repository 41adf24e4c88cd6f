"""Consent-ledger benchmark: appends per second, events verified per second, audit-packet time.

Run ``.venv/bin/python bench/ledger.py [--events N] [--businesses B] [--postgres]``.

1. Appends: ``append_event`` one event per transaction (as a call does), on SQLite and, with
   ``--postgres`` when reachable, on PostgreSQL. The evidence is a real call's: script, answer
   with word timings, classifier, scope and audio hash.
2. A big ledger of N events spread over B businesses is built with bulk inserts of correctly
   chained rows (bodies, hashes and chain heads computed here), then verified in full: in one
   process, and in one process per core (``verify_ledger(workers=...)``; the CPU time shown is
   then this process's share only).
3. One number's audit packet (zip with events, PDF, manifest, verify.py) is exported from it.

Targets (ARCHITECTURE.md): at least 2,000 appends/s on SQLite, at least 100,000 events/s
verified, at most 1 s per packet. Each figure is given by the wall clock and by this process's
CPU time, the steadier of the two on a shared machine (on PostgreSQL it leaves out the server's
share); the load average before and after is printed with them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine, insert
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consent_ledger.audio_store import AudioStore
from consent_ledger.chain import BODY_SCHEMA, GENESIS_HASH, append_event, canonical_json
from consent_ledger.evidence import (
    AnswerEvidence,
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    EventKind,
    ScriptEvidence,
    WordEvidence,
)
from consent_ledger.export import PacketRequest, build_audit_packet
from consent_ledger.tables import consent_chain_heads, create_ledger_schema
from consent_ledger.verify import verify_ledger
from voice_agent.records.database import make_engine

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START = datetime(2025, 4, 11, 14, 0, tzinfo=UTC)
SCRIPT = (
    "This is Acme Plumbing's automated assistant. May we send you up to 2 text messages about "
    "this call in the next 24 hours? Msg & data rates may apply. Reply STOP to opt out, HELP for "
    "help. Is that okay?"
)
_PHONE_SLOT = "+19990000000"
_CALL_SLOT = "CA" + "f" * 32
_BULK_CHUNK = 20_000
CORES = len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Figure:
    """A measure by the wall clock, and by this process's CPU time alone (steadier on a shared
    machine; on PostgreSQL it leaves out the server's share)."""

    what: str
    database: str
    value: float
    cpu_value: float
    unit: str
    target: str


class Stopwatch:
    """Wall-clock and CPU seconds since it was started."""

    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def seconds(self) -> tuple[float, float]:
        return time.perf_counter() - self._wall, time.process_time() - self._cpu


def call_evidence(business_id: str, number: str, kind: EventKind, call_sid: str) -> ConsentEvidence:
    """The evidence a real call records: the script, a re-asked answer, the classifier, audio."""
    started = START
    confirmed = started + timedelta(seconds=9, milliseconds=420)
    answer_at = confirmed + timedelta(milliseconds=650)
    transcript = "yeah sure that's fine go ahead and text me"
    step = timedelta(milliseconds=210)
    words = tuple(
        WordEvidence(word, answer_at + i * step, answer_at + (i + 1) * step, 0.91)
        for i, word in enumerate(transcript.split())
    )
    answered = answer_at + len(words) * step
    granted = kind is EventKind.CONSENT_GRANTED
    return ConsentEvidence(
        business_id=business_id,
        business_name="Acme Plumbing & Heating",
        phone_number=number,
        call_sid=call_sid,
        stream_sid="MZ" + "2" * 32,
        kind=kind,
        method=ConsentMethod.VERBAL,
        script=ScriptEvidence(
            "sms-consent/3", SCRIPT, hashlib.sha256(SCRIPT.encode()).hexdigest(), started, confirmed
        ),
        answers=(
            AnswerEvidence(transcript, words, "deepgram/nova-3", 0.91, answer_at, answered, None),
        ),
        classifier="keyword-consent",
        classifier_version="2",
        reasked=False,
        scope=(
            ConsentScope("follow-up about this call", 2, answered + timedelta(hours=24))
            if granted
            else None
        ),
        occurred_at=answered + timedelta(milliseconds=5),
        audio_sha256=hashlib.sha256(call_sid.encode()).hexdigest(),
        note="" if granted else "the caller said no",
    )


def bench_appends(engine: Engine, count: int) -> tuple[float, float]:
    """Appends per second (wall, CPU), each in its own transaction, to a few chains."""
    evidences = [
        call_evidence(
            f"append-{i % 4}", f"+1212555{i % 10000:04d}", EventKind.CONSENT_GRANTED, f"CA{i:032d}"
        )
        for i in range(count)
    ]
    stopwatch = Stopwatch()
    for i, evidence in enumerate(evidences):
        with engine.begin() as conn:
            append_event(conn, evidence, START + timedelta(microseconds=i))
    wall, cpu = stopwatch.seconds()
    return count / wall, count / cpu


class BodyTemplate:
    """A real call's canonical body with slots for the number, call SID, time and sequence."""

    def __init__(self, business_id: str, kind: EventKind) -> None:
        evidence = call_evidence(business_id, _PHONE_SLOT, kind, _CALL_SLOT).to_dict()
        evidence["audio_sha256"] = "0" * 64
        body = canonical_json(
            {"schema": BODY_SCHEMA, "seq": 0, "recorded_at": "AT_SLOT", "evidence": evidence}
        )
        head, self.tail = body.rsplit('"seq":0}', 1)
        self.pieces = head.replace("0" * 64, "AUDIO_SLOT").split("AUDIO_SLOT")
        assert len(self.pieces) == 2 and not self.tail

    def render(self, number: str, call_sid: str, instant: str, seq: int) -> str:
        audio = hashlib.sha256(call_sid.encode()).hexdigest()
        text = audio.join(self.pieces)
        text = text.replace(_PHONE_SLOT, number).replace(_CALL_SLOT, call_sid)
        return text.replace("AT_SLOT", instant) + f'"seq":{seq}}}'


def chained_rows(events: int, businesses: int) -> Iterator[tuple[object, ...]]:
    """Correctly chained rows: event i belongs to business i % B; every 4th is a decline."""
    names = [f"biz-{b:04d}" for b in range(businesses)]
    templates = {
        (name, kind): BodyTemplate(name, kind)
        for name in names
        for kind in (EventKind.CONSENT_GRANTED, EventKind.CONSENT_DECLINED)
    }
    last_hash = dict.fromkeys(names, GENESIS_HASH)
    for i in range(events):
        name = names[i % businesses]
        seq = i // businesses + 1
        kind = EventKind.CONSENT_DECLINED if i % 4 == 3 else EventKind.CONSENT_GRANTED
        number = f"+1212{(i // (2 * businesses)) % 10_000_000:07d}"
        instant = START + timedelta(seconds=i)
        body = templates[name, kind].render(
            number, f"CA{i:032x}", instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), seq
        )
        digest = hashlib.sha256((last_hash[name] + body).encode()).hexdigest()
        yield (name, seq, number, kind.value, instant, body, last_hash[name], digest)
        last_hash[name] = digest


def build_big_ledger(engine: Engine, events: int, businesses: int) -> float:
    """Bulk-insert ``events`` chained rows and their chain heads; returns seconds taken."""
    began = time.perf_counter()
    heads: dict[str, tuple[int, str]] = {}
    columns = "business_id, seq, phone_number, kind, recorded_at, body, prev_hash, hash"
    chunk: list[tuple[object, ...]] = []
    with engine.begin() as conn:
        for row in chained_rows(events, businesses):
            chunk.append(row)
            heads[str(row[0])] = (int(str(row[1])), str(row[7]))
            if len(chunk) == _BULK_CHUNK:
                _insert_rows(conn, columns, chunk)
                chunk = []
        _insert_rows(conn, columns, chunk)
        conn.execute(
            insert(consent_chain_heads),
            [{"business_id": b, "seq": seq, "hash": h} for b, (seq, h) in heads.items()],
        )
    return time.perf_counter() - began


def _insert_rows(conn: Connection, columns: str, rows: list[tuple[object, ...]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY consent_events ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    sqlite_rows = [(*row[:4], row[4].strftime("%Y-%m-%d %H:%M:%S.%f"), *row[5:]) for row in rows]  # type: ignore[attr-defined]
    conn.exec_driver_sql(
        f"INSERT INTO consent_events ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", sqlite_rows
    )


def bench_verify(engine: Engine, workers: int) -> tuple[float, float]:
    """Events verified per second (wall, CPU of this process only)."""
    with engine.connect() as conn:
        stopwatch = Stopwatch()
        report = verify_ledger(conn, workers=workers)
        wall, cpu = stopwatch.seconds()
    if not report.ok:
        raise SystemExit(f"the bulk ledger does not verify: {report.first_broken}")
    return report.events_checked / wall, report.events_checked / cpu


def bench_packet(engine: Engine, audio_root: Path, runs: int = 5) -> tuple[float, float]:
    """Median seconds (wall, CPU) to export one number's packet (its business's chain is
    verified too).

    Every number has two events in every business (see ``chained_rows``).
    """
    request = PacketRequest(business_id="biz-0000", phone_number="+12120001234")
    store = AudioStore(audio_root)
    times = []
    for _ in range(runs):
        with engine.connect() as conn:
            stopwatch = Stopwatch()
            packet = build_audit_packet(
                conn, request, audio_store=store, generated_at=datetime.now(UTC)
            )
            times.append(stopwatch.seconds())
    if len(packet) < 1000:
        raise SystemExit("the packet came out empty")
    walls, cpus = zip(*times, strict=True)
    return statistics.median(walls), statistics.median(cpus)


def postgres_engine() -> tuple[Engine, str] | None:
    schema = f"bench_ledger_{uuid.uuid4().hex[:12]}"
    url = make_url(POSTGRES_URL).set(query={"options": f"-csearch_path={schema}"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            create_ledger_schema(conn)
    except Exception as error:
        print(f"PostgreSQL skipped: {error}", file=sys.stderr)
        return None
    return engine, schema


def run_database(
    label: str, engine: Engine, args: argparse.Namespace, audio_root: Path
) -> list[Figure]:
    rate, cpu_rate = bench_appends(engine, args.appends)
    figures = [Figure("appends", label, rate, cpu_rate, "events/s", ">= 2,000")]
    print(f"[{label}] building a ledger of {args.events:,} events ...", file=sys.stderr)
    build_seconds = build_big_ledger(engine, args.events, args.businesses)
    print(f"[{label}] built in {build_seconds:.1f} s; verifying ...", file=sys.stderr)
    for workers in sorted({1, CORES}):
        rate, cpu_rate = bench_verify(engine, workers)
        verified = f"verify, {workers} process{'es' if workers > 1 else ''}"
        figures.append(Figure(verified, label, rate, cpu_rate, "events/s", ">= 100,000"))
    seconds, cpu_seconds = bench_packet(engine, audio_root)
    figures.append(Figure("one number's packet", label, seconds, cpu_seconds, "s", "<= 1"))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--businesses", type=int, default=25)
    parser.add_argument("--appends", type=int, default=2_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as scratch:
        root = Path(scratch)
        sqlite = make_engine(f"sqlite:///{root / 'ledger.db'}")
        with sqlite.begin() as conn:
            create_ledger_schema(conn)
        figures += run_database("sqlite", sqlite, args, root / "audio")
        sqlite.dispose()
        if args.postgres and (found := postgres_engine()) is not None:
            engine, schema = found
            try:
                figures += run_database("postgresql", engine, args, root / "audio")
            finally:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
                engine.dispose()
    print(
        f"{'measure':<28} {'database':<11} {'wall clock':>12} {'CPU time':>12}  {'unit':<9} target"
    )
    for f in figures:
        print(
            f"{f.what:<28} {f.database:<11} {f.value:>12,.3f} {f.cpu_value:>12,.3f}  "
            f"{f.unit:<9} {f.target}"
        )
    print(
        f"({args.events + args.appends:,} events over {args.businesses} businesses, {CORES} cores)"
    )
    load_after = os.getloadavg()[0]
    print(f"(1-minute load average {load_before:.2f} before, {load_after:.2f} after)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
