"""``receptionist ledger verify|export|rebuild``: proving the consent records.

``verify`` checks every chain (or one business's) and the answer audio, with a progress line on
standard error for long ledgers, and exits 1 naming the first broken event. ``export`` writes an
audit packet (zip) for a number or a business, or a JSON or CSV summary; a bad argument is refused
before anything is written, and a packet is written to a temporary file renamed into place, so a
failed export never leaves half a file. ``rebuild`` recomputes the consent-state projection.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from voice_agent.cli.support import (
    CommandError,
    Count,
    database_engine,
    json_option,
    known_businesses,
    load_settings,
    missing_sqlite_file,
    open_database,
    opening,
    print_json,
    shown_url,
    unknown_business,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from consent_ledger import PacketRequest, VerificationReport

PROGRESS_THRESHOLD = 10_000
"""Ledgers longer than this show progress even when standard error is not a terminal."""

MAX_WORKERS = 64
"""The most processes ``verify --workers`` starts."""


class Day(click.ParamType[date]):
    """A calendar day, YYYY-MM-DD."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(f"not a date (YYYY-MM-DD): {value!r}", param, ctx)


@click.group()
def ledger() -> None:
    """The consent ledger: verify, export, rebuild."""


@ledger.command()
@click.option("--business", metavar="ID", help="Verify only this business's chain.")
@click.option(
    "--workers",
    type=Count("workers", MAX_WORKERS),
    default=None,
    help=f"Processes that check a large ledger at once (1 to {MAX_WORKERS}; default: one per "
    "core).",
)
@json_option("the report")
def verify(business: str | None, workers: int | None, as_json: bool) -> None:
    """Recompute every hash, chain and answer recording.

    Exit 1 naming the first broken event. A ledger of 200,000 events or more is checked by one
    process per core (or --workers)."""
    from consent_ledger import AudioStore, ledger_event_total, verify_ledger

    settings = load_settings()
    with _snapshot(settings.database_url) as conn:
        _require_business(conn, business)
        total = ledger_event_total(conn, business)
        show = total > PROGRESS_THRESHOLD or sys.stderr.isatty()
        progress = _progress_printer(sys.stderr, total) if show else None
        report = verify_ledger(
            conn,
            business,
            progress=progress,
            audio_store=AudioStore(settings.audio_dir),
            workers=workers or _cores(),
        )
    if show:
        print(file=sys.stderr)
    if as_json:
        print_json(_report_as_dict(business, report))
    else:
        print(_render_report(business, report))
    if not report.ok:
        raise click.exceptions.Exit(1)


@ledger.command()
@click.option("--number", metavar="E164", help="The caller's number, E.164 (+15555550123).")
@click.option("--business", metavar="ID", help="The business id.")
@click.option("--from", "start", type=Day(), help="First day (UTC), YYYY-MM-DD.")
@click.option("--to", "end", type=Day(), help="Last day (UTC, included), YYYY-MM-DD.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["zip", "json", "csv"]),
    default="zip",
    show_default=True,
    help="An audit packet (zip) or a summary of the events (json, csv).",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    help="File to write (default: audit-packet-….zip for zip, standard output for json and csv).",
)
def export(
    number: str | None,
    business: str | None,
    start: date | None,
    end: date | None,
    output_format: str,
    output: Path | None,
) -> None:
    """Export an audit packet or a summary of the events.

    Name a caller's number (--number) or a business (--business). The packet holds events.jsonl,
    the texts sent under each consent (texts.jsonl), a readable report.pdf (times on each
    business's clock), the answer audio, manifest.json and a standard-library verify.py that
    checks it offline."""
    from consent_ledger import (
        AudioStore,
        PacketRequest,
        PacketRequestError,
        build_audit_packet,
        summaries_to_csv,
        summaries_to_json,
        summarize_events,
    )
    from sms_sender import texts_under_consents

    if (number is None) == (business is None):
        raise click.UsageError("name either --number or --business (one of them, not both)")
    try:
        request = PacketRequest(
            business_id=business,
            phone_number=number,
            start=_start_of(start),
            end=_start_of(end + timedelta(days=1)) if end else None,
        )
    except PacketRequestError as error:
        raise CommandError(str(error)) from None
    if output_format == "zip" and output is None:
        output = Path(f"audit-packet-{_file_safe(request)}.zip")
    if output is not None:
        _require_writable(output)
    settings = load_settings()
    with _snapshot(settings.database_url) as conn:
        _require_business(conn, business)
        if output_format == "zip":
            content = build_audit_packet(
                conn,
                request,
                audio_store=AudioStore(settings.audio_dir),
                generated_at=datetime.now(UTC),
                time_zones=_time_zones(conn),
                text_log=texts_under_consents,
            )
        else:
            summaries = summarize_events(conn, request)
            render = summaries_to_json if output_format == "json" else summaries_to_csv
            content = render(summaries).encode("utf-8")
    if output is None:
        sys.stdout.write(content.decode("utf-8"))
        return
    _write_atomically(output, content)
    print(f"wrote {output} ({len(content):,} bytes)", file=sys.stderr)


def _time_zones(conn: Connection) -> dict[str, str]:
    """Each configured business's time zone, in which its packet's report shows its times."""
    from voice_agent.records.businesses import list_businesses

    if not conn.dialect.has_table(conn, "businesses"):
        return {}
    return {business.id: business.time_zone for business in list_businesses(conn)}


@ledger.command()
@click.option("--business", metavar="ID", help="Rebuild only this business's consent state.")
def rebuild(business: str | None) -> None:
    """Recompute the consent-state projection from the events."""
    from consent_ledger import CorruptEventError, rebuild_projection

    engine = open_database(load_settings())
    try:
        with engine.begin() as conn:
            _require_business(conn, business)
            states = rebuild_projection(conn, business)
    except CorruptEventError as error:
        raise CommandError(
            f"the ledger is damaged, run `receptionist ledger verify`: {error}"
        ) from None
    finally:
        engine.dispose()
    print(f"consent state rebuilt for {states:,} number(s)")


@contextmanager
def _snapshot(database_url: str) -> Iterator[Connection]:
    """A read connection that sees one consistent state of the ledger throughout.

    PostgreSQL runs it at REPEATABLE READ (one snapshot for the events and the chain heads);
    SQLite's deferred read transaction in WAL mode is one snapshot and takes no write lock. A
    database with no ledger (a missing SQLite file included) is refused, and nothing is created.
    """
    missing = CommandError(
        f"there is no consent ledger in the database at {shown_url(database_url)}"
    )
    if missing_sqlite_file(database_url):
        raise missing
    engine = database_engine(database_url, read_only=True)
    with opening(database_url):
        conn = engine.connect()
    try:
        with conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            if not conn.dialect.has_table(conn, "consent_events"):
                raise missing
            yield conn
    finally:
        engine.dispose()


def _require_business(conn: Connection, business_id: str | None) -> None:
    """Refuse a business that is neither configured nor has a chain in the ledger."""
    if business_id is None:
        return
    from sqlalchemy import select

    from consent_ledger import metadata

    heads = metadata.tables["consent_chain_heads"]
    known = known_businesses(conn)
    if business_id in known:
        return
    chains = set(conn.execute(select(heads.c.business_id)).scalars())
    if business_id not in chains:
        raise unknown_business(business_id, known | chains)


def _report_as_dict(business: str | None, report: VerificationReport) -> dict[str, Any]:
    broken = report.first_broken
    return {
        "business": business,
        "intact": report.ok,
        "events_checked": report.events_checked,
        "chains_checked": report.chains_checked,
        "audio_checked": report.audio_checked,
        "audio_purged": report.audio_purged,
        "first_broken": None
        if broken is None
        else {
            "business_id": broken.business_id,
            "seq": broken.seq,
            "event_id": broken.event_id,
            "reason": broken.reason,
        },
    }


def _render_report(business: str | None, report: VerificationReport) -> str:
    scope = f"business {business!r}" if business else "the ledger"
    audio = f"audio: {report.audio_checked:,} intact, {report.audio_purged:,} purged"
    broken = report.first_broken
    if broken is None:
        return (
            f"{scope}: intact - {report.events_checked:,} events in "
            f"{report.chains_checked:,} chains verified ({audio})"
        )
    where = f"row id {broken.event_id}" if broken.event_id is not None else "chain head"
    return (
        f"{scope}: BROKEN at business {broken.business_id!r} event #{broken.seq} ({where}): "
        f"{broken.reason} - {report.events_checked:,} events checked"
    )


def _progress_printer(stream: TextIO, total: int) -> Callable[[int], None]:
    def show(checked: int) -> None:
        stream.write(f"\r  {checked:,} / {total:,} events verified")
        stream.flush()

    return show


def _cores() -> int:
    return min(MAX_WORKERS, len(os.sched_getaffinity(0)))


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
