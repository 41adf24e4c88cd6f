"""``receptionist ledger verify`` and ``receptionist ledger export``: proving the consent records.

``verify`` checks every chain (or one business's) and the answer audio, with a progress line on
standard error for long ledgers, and exits 1 naming the first broken event. ``export`` writes an
audit packet (zip) for a number or a business, or a JSON or CSV summary; a bad argument is refused
before anything is written, and a packet is written to a temporary file renamed into place, so a
failed export never leaves half a file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

from consent_ledger import (
    AudioStore,
    CorruptEventError,
    PacketRequest,
    PacketRequestError,
    build_audit_packet,
    ledger_event_total,
    rebuild_projection,
    summaries_to_csv,
    summaries_to_json,
    summarize_events,
    verify_ledger,
)
from voice_agent.cli.support import CommandError, counted, open_database
from voice_agent.records.database import make_engine
from voice_agent.settings import Settings

PROGRESS_THRESHOLD = 10_000
"""Ledgers longer than this show progress even when standard error is not a terminal."""

MAX_WORKERS = 64
"""The most processes ``verify --workers`` starts."""


def register(commands: Any) -> None:
    """Add ``ledger verify|export|rebuild`` to the top-level sub-command parser."""
    ledger = commands.add_parser("ledger", help="the consent ledger: verify, export, rebuild")
    ledger_commands = ledger.add_subparsers(dest="ledger", required=True)

    verify = ledger_commands.add_parser("verify", help="recompute every hash, check the audio")
    verify.add_argument("--business", help="only this business's chain")
    verify.add_argument(
        "--workers",
        type=counted("workers", MAX_WORKERS),
        default=_cores(),
        help=f"processes that check a large ledger at once (1 to {MAX_WORKERS}; "
        "default: one per core)",
    )
    verify.set_defaults(handler=cmd_ledger_verify)

    export = ledger_commands.add_parser("export", help="audit packet (zip) or summary")
    subject = export.add_mutually_exclusive_group(required=True)
    subject.add_argument("--number", help="the caller's number, E.164 (+15555550123)")
    subject.add_argument("--business", help="the business id")
    export.add_argument("--from", dest="start", type=_day, help="first day (UTC), YYYY-MM-DD")
    export.add_argument("--to", dest="end", type=_day, help="last day (UTC, included)")
    export.add_argument(
        "--output",
        type=Path,
        help="file to write (default: audit-packet-….zip for zip, standard output for json/csv)",
    )
    export.add_argument("--format", choices=("zip", "json", "csv"), default="zip")
    export.set_defaults(handler=cmd_ledger_export)

    rebuild = ledger_commands.add_parser(
        "rebuild", help="recompute the consent-state projection from the events"
    )
    rebuild.add_argument("--business", help="only this business")
    rebuild.set_defaults(handler=cmd_ledger_rebuild)


def cmd_ledger_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    engine = open_database(settings)
    try:
        with engine.begin() as conn:
            states = rebuild_projection(conn, args.business)
    except CorruptEventError as error:
        raise CommandError(
            f"the ledger is damaged, run `receptionist ledger verify`: {error}"
        ) from None
    finally:
        engine.dispose()
    print(f"consent state rebuilt for {states:,} number(s)")
    return 0


def cmd_ledger_verify(settings: Settings, args: argparse.Namespace) -> int:
    store = AudioStore(settings.audio_dir)
    with _snapshot(settings.database_url) as conn:
        total = ledger_event_total(conn, args.business)
        show = total > PROGRESS_THRESHOLD or sys.stderr.isatty()
        progress = _progress_printer(sys.stderr, total) if show else None
        report = verify_ledger(
            conn, args.business, progress=progress, audio_store=store, workers=args.workers
        )
    if show:
        print(file=sys.stderr)
    scope = f"business {args.business!r}" if args.business else "the ledger"
    audio = f"audio: {report.audio_checked:,} intact, {report.audio_purged:,} purged"
    broken = report.first_broken
    if broken is None:
        print(
            f"{scope}: intact - {report.events_checked:,} events in "
            f"{report.chains_checked:,} chains verified ({audio})"
        )
        return 0
    where = f"row id {broken.event_id}" if broken.event_id is not None else "chain head"
    print(
        f"{scope}: BROKEN at business {broken.business_id!r} event #{broken.seq} ({where}): "
        f"{broken.reason} - {report.events_checked:,} events checked"
    )
    return 1


def cmd_ledger_export(settings: Settings, args: argparse.Namespace) -> int:
    try:
        request = PacketRequest(
            business_id=args.business,
            phone_number=args.number,
            start=_start_of(args.start),
            end=_start_of(args.end + timedelta(days=1)) if args.end else None,
        )
    except PacketRequestError as error:
        raise CommandError(str(error)) from None
    output: Path | None = args.output
    if args.format == "zip" and output is None:
        output = Path(f"audit-packet-{_file_safe(request)}.zip")
    if output is not None:
        _require_writable(output)
    with _snapshot(settings.database_url) as conn:
        if args.format == "zip":
            content = build_audit_packet(
                conn,
                request,
                audio_store=AudioStore(settings.audio_dir),
                generated_at=datetime.now(UTC),
            )
        else:
            summaries = summarize_events(conn, request)
            render = summaries_to_json if args.format == "json" else summaries_to_csv
            content = render(summaries).encode("utf-8")
    if output is None:
        sys.stdout.write(content.decode("utf-8"))
        return 0
    _write_atomically(output, content)
    print(f"wrote {output} ({len(content):,} bytes)", file=sys.stderr)
    return 0


@contextmanager
def _snapshot(database_url: str) -> Any:
    """A read connection that sees one consistent state of the ledger throughout.

    PostgreSQL runs it at REPEATABLE READ (one snapshot for the events and the chain heads);
    SQLite's deferred read transaction in WAL mode is one snapshot and takes no write lock.
    """
    engine = make_engine(database_url, read_only=True)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            yield conn
    finally:
        engine.dispose()


def _progress_printer(stream: TextIO, total: int) -> Callable[[int], None]:
    def show(checked: int) -> None:
        stream.write(f"\r  {checked:,} / {total:,} events verified")
        stream.flush()

    return show


def _cores() -> int:
    return min(MAX_WORKERS, len(os.sched_getaffinity(0)))


def _day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {raw!r}") from None


def _start_of(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), tzinfo=UTC)


def _file_safe(request: PacketRequest) -> str:
    parts = (request.business_id or "", (request.phone_number or "").lstrip("+"))
    name = "-".join(part for part in parts if part)
    return "".join(char if char.isalnum() or char in "-_" else "_" for char in name)


def _require_writable(output: Path) -> None:
    folder = output.parent if str(output.parent) else Path(".")
    if output.is_dir():
        raise CommandError(f"{output} is a folder; name a file")
    if not folder.is_dir():
        raise CommandError(f"cannot write {output}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise CommandError(f"cannot write {output}: folder {folder} is not writable")


def _write_atomically(output: Path, content: bytes) -> None:
    handle, temporary = tempfile.mkstemp(
        dir=output.parent, prefix=f".{output.name}.", suffix=".part"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
