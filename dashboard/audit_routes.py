"""Auditor access over HTTP, read-only: a number's consent records, and the audit export.

``GET /audit/numbers/{e164}`` answers with every event of the number, where its consent stands,
and whether the business's chain verifies; ``GET /audit/export`` gives the audit packet (zip) or a
JSON/CSV summary, for the business or one number, over an optional period. Both also answer under
``/audit/businesses/{business_id}/…`` for the token's own business.

Every request carries ``Authorization: Bearer rcpt_audit_…``; the token decides the business, so
an auditor need not name one and never sees another's records (a number on record only elsewhere
is a plain 404; a request that names another business, ``?business=…`` or in the path, is a 403).
The token check is a plain ``def`` that FastAPI runs in its thread pool. The heavy part of each
route (reading the records, verifying the business's whole chain, building the PDF and the zip)
runs off the process that carries the live calls: in worker processes
(``AuditContext.export_processes``, started on first use at a lower CPU priority), at most that
many at once with ``max_waiting_exports`` more queued, and beyond that a 503 with
``Retry-After``. (Pure Python work in a thread would still take the GIL from the event loop; a
process does not.) Without worker processes the work runs in a thread, one request at a time.

The lead puts an :class:`AuditContext` at ``app.state.audit`` and includes :func:`audit_router`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any, TypeVar

import phonenumbers
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import Connection, Engine, create_engine

from consent_ledger import (
    AudioStore,
    ConsentStateRow,
    PacketRequest,
    PacketRequestError,
    RecordedEvent,
    VerificationReport,
    build_audit_packet,
    canonical_json,
    consent_state,
    events_for_number,
    summaries_to_csv,
    summaries_to_json,
    summarize_events,
    verify_ledger,
)
from dashboard.access_tokens import AttemptLimiter
from dashboard.auditor_tokens import AuditorToken, authenticate
from dashboard.call_log import CallLog
from sms_sender import texts_under_consents

logger = logging.getLogger(__name__)

_E164_SHAPE = re.compile(r"\+[1-9][0-9]{1,14}")
_BEARER = re.compile(r"Bearer +(\S+) *", re.IGNORECASE)
_EXPORT_MEDIA_TYPES = {
    "zip": "application/zip",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}
_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9-]")
_NO_TOKEN_CHALLENGE = 'Bearer realm="audit"'
_BAD_TOKEN_CHALLENGE = 'Bearer realm="audit", error="invalid_token"'
_BUSINESS_PARAMETERS = ("business", "business_id")


@dataclass(frozen=True)
class AuditContext:
    """What the audit routes need from the application: the database (``read_engine`` for the long
    reads: on SQLite it begins deferred, so a verification never holds the write lock that calls
    need), the consent audio, a clock, the limiter of bad token attempts per address, and the
    call log that knows each business's time zone.

    ``export_processes`` worker processes (0: a thread instead) do the heavy reads and exports,
    each opening the database with ``worker_engine(url)`` (picklable, such as
    ``functools.partial(make_engine, read_only=True)``; a plain engine by default). The
    application calls :meth:`close` when it stops.
    """

    engine: Engine
    read_engine: Engine
    audio_store_root: Path
    clock: Callable[[], datetime]
    token_attempts: AttemptLimiter = field(default_factory=AttemptLimiter)
    export_processes: int = 0
    worker_engine: Callable[[str], Engine] | None = None
    max_waiting_exports: int = 8
    runner: ExportRunner = field(default_factory=lambda: ExportRunner(), compare=False)
    call_log: CallLog | None = None
    """Where the packet's report finds the business's time zone (UTC without one); it must be
    picklable, as it goes to the worker processes."""

    def close(self) -> None:
        """Stop the worker processes (an export under way is abandoned)."""
        self.runner.close()


_Result = TypeVar("_Result")


@dataclass(frozen=True)
class _EngineRecipe:
    """How a worker process opens the database: ``factory(url)``, kept for the process's life."""

    url: str
    factory: Callable[[str], Engine] | None


EngineSource = Engine | _EngineRecipe
"""What a job reads from: the engine itself (in a thread), or the recipe for one (in a process)."""

_worker_engines: dict[str, Engine] = {}
"""A worker process's engines, by database URL (a process serves one application)."""


def _engine_of(source: EngineSource) -> Engine:
    if isinstance(source, Engine):
        return source
    engine = _worker_engines.get(source.url)
    if engine is None:
        engine = (source.factory or create_engine)(source.url)
        _worker_engines[source.url] = engine
    return engine


def _lower_priority() -> None:
    """A worker process's initializer: the process carrying live calls comes first for the CPU."""
    with contextlib.suppress(OSError):
        os.nice(10)


class ExportRunner:
    """Runs the audit routes' heavy jobs in worker processes (started on first use), or in a
    thread one at a time; it admits at most the workers plus ``max_waiting_exports`` at once."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Lock()
        self._admitted = 0
        self.worker_pids: set[int] = set()  # for the tests and benches: who did the work

    async def run(
        self, context: AuditContext, job: Callable[..., _Result], *args: object
    ) -> _Result:
        """``job(source, *args)`` off the event loop, ``source`` being what it reads from."""
        with self._lock:
            if self._admitted >= max(context.export_processes, 1) + context.max_waiting_exports:
                raise HTTPException(
                    503, "too many audit requests at once; try again shortly", {"Retry-After": "5"}
                )
            self._admitted += 1
        try:
            if context.export_processes <= 0:
                return await asyncio.to_thread(self._in_turn, job, context.read_engine, *args)
            recipe = _EngineRecipe(
                context.read_engine.url.render_as_string(hide_password=False),
                context.worker_engine,
            )
            pool = self._processes(context.export_processes)
            pid, result = await asyncio.wrap_future(pool.submit(_in_worker, job, recipe, *args))
            self.worker_pids.add(pid)
            return result
        finally:
            with self._lock:
                self._admitted -= 1

    def _in_turn(self, job: Callable[..., _Result], *args: object) -> _Result:
        with self._one_at_a_time:
            return job(*args)

    def _processes(self, workers: int) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_lower_priority,
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _in_worker(
    job: Callable[..., _Result], source: _EngineRecipe, *args: object
) -> tuple[int, _Result]:
    return os.getpid(), job(source, *args)


def audit_router() -> APIRouter:
    """The ``/audit`` routes."""
    router = APIRouter(prefix="/audit", tags=["audit"])
    for prefix in ("", "/businesses/{business_id}"):  # the business named, or the token's
        router.add_api_route(f"{prefix}/numbers/{{e164:path}}", audit_number, methods=["GET"])
        router.add_api_route(
            f"{prefix}/export", audit_export, methods=["GET"], response_class=Response
        )
    return router


def audit_context(request: Request) -> AuditContext:
    """The application's :class:`AuditContext` (a server error when the app was built without)."""
    context = getattr(request.app.state, "audit", None)
    if not isinstance(context, AuditContext):
        raise RuntimeError("app.state.audit must hold an AuditContext")
    return context


Context = Annotated[AuditContext, Depends(audit_context)]


def current_auditor(request: Request, context: Context) -> AuditorToken:
    """The active token the request presents; 401 with a Bearer challenge otherwise, and 429
    for an address that has presented too many bad tokens lately."""
    header = request.headers.get("authorization")
    if header is None:
        raise HTTPException(
            401, "an auditor token is required", {"WWW-Authenticate": _NO_TOKEN_CHALLENGE}
        )
    address = request.client.host if request.client is not None else "unknown"
    wait = context.token_attempts.retry_after(address)
    if wait is not None:
        logger.warning("auditor token attempts refused: too many bad tokens from one address")
        raise HTTPException(
            429, "too many invalid auditor tokens; try again later", {"Retry-After": str(wait)}
        )
    match = _BEARER.fullmatch(header)
    token = None
    if match is not None:
        with context.engine.begin() as conn:
            token = authenticate(conn, match.group(1), context.clock())
    if token is None:
        context.token_attempts.failed(address)
        raise HTTPException(
            401,
            "the auditor token is invalid, expired or revoked",
            {"WWW-Authenticate": _BAD_TOKEN_CHALLENGE},
        )
    return token


def auditor_of_named_business(
    request: Request, token: Annotated[AuditorToken, Depends(current_auditor)]
) -> AuditorToken:
    """The token, when the request names no business or only the token's own (``?business=``,
    ``?business_id=`` or the path's ``/audit/businesses/{id}/…``); 403 when it names any other,
    existing or not, so a request meant for another business is never answered with this one's
    records."""
    named = [value for name in _BUSINESS_PARAMETERS for value in request.query_params.getlist(name)]
    if "business_id" in request.path_params:
        named.append(request.path_params["business_id"])
    if any(value != token.business_id for value in named):
        logger.warning(
            "auditor asked for another business's records; refused",
            extra={"business_id": token.business_id, "token_id": token.id},
        )
        raise HTTPException(
            403,
            "this auditor token opens one business's records only, and not the business named",
        )
    return token


Auditor = Annotated[AuditorToken, Depends(auditor_of_named_business)]


async def audit_number(e164: str, auditor: Auditor, context: Context) -> dict[str, Any]:
    """Every consent event of the auditor's business about ``e164``, where consent stands now, and
    whether the business's whole chain (and its answer audio) verifies."""
    number = parse_e164(e164)
    found = await context.runner.run(
        context,
        _number_records,
        auditor.business_id,
        number,
        context.audio_store_root,
        context.clock(),
    )
    if found is None:
        raise HTTPException(404, "no consent events for this number")
    log_fields = {"business_id": auditor.business_id, "token_id": auditor.id}
    if found["events"] is None:
        logger.error("auditor read a damaged consent record", extra=log_fields)
    else:
        logger.info("auditor read a number's consent records", extra=log_fields)
    return found


def _number_records(
    source: EngineSource, business_id: str, number: str, audio_root: Path, now: datetime
) -> dict[str, Any] | None:
    """What :func:`audit_number` answers (None: no events), read in one snapshot."""
    with _snapshot(_engine_of(source)) as conn:
        try:
            events = events_for_number(conn, business_id, number)
        except ValueError as error:
            report = _verify(conn, business_id, audio_root)
            return _damaged_record(business_id, number, str(error), report)
        if not events:
            return None
        standing = consent_state(conn, business_id, number)
        report = _verify(conn, business_id, audio_root)
    return {
        "business_id": business_id,
        "business_name": events[-1].body["evidence"]["business_name"],
        "phone_number": number,
        "events": [_event_json(event) for event in events],
        "standing": None if standing is None else _standing_json(standing, now),
        "verification": _verification_json(report),
    }


async def audit_export(
    auditor: Auditor,
    context: Context,
    number: str | None = None,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    export_format: Annotated[str, Query(alias="format")] = "zip",
) -> Response:
    """The audit packet (``format=zip``) or a summary (``json``, ``csv``) of the auditor's business,
    or of one number with it, for events recorded from ``from`` (inclusive) to ``to``
    (exclusive). A ``+`` left unencoded in ``number`` arrives as a space and is read as ``+``."""
    if export_format not in _EXPORT_MEDIA_TYPES:
        raise HTTPException(422, "format must be zip, json or csv")
    phone_number = None if number is None else parse_e164(_plus_restored(number))
    try:
        request = PacketRequest(
            auditor.business_id, phone_number, _instant_param(start), _instant_param(end)
        )
    except PacketRequestError as error:  # the inputs are checked: only the period can be wrong
        raise HTTPException(422, str(error)) from None
    generated_at = context.clock()
    content = await context.runner.run(
        context,
        _export,
        request,
        export_format,
        context.audio_store_root,
        generated_at,
        context.call_log,
    )
    if content is None:
        raise HTTPException(404, "no consent events for this number")
    logger.info(
        "auditor exported consent records",
        extra={"business_id": auditor.business_id, "token_id": auditor.id, "format": export_format},
    )
    file_name = _export_file_name(request, generated_at, export_format)
    return Response(
        content,
        media_type=_EXPORT_MEDIA_TYPES[export_format],
        headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
    )


def parse_e164(raw: str) -> str:
    """``raw`` when it is a possible phone number written in E.164; 422 otherwise.

    The reply never repeats what was sent.
    """
    if _E164_SHAPE.fullmatch(raw) is not None:
        try:
            parsed = phonenumbers.parse(raw, None)
        except phonenumbers.NumberParseException:  # e.g. no such country code: +999…
            parsed = None
        if parsed is not None:
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if e164 == raw and phonenumbers.is_possible_number(parsed):
                return raw
    raise HTTPException(422, "not a phone number in E.164 form, like +15125550123")


def _plus_restored(raw: str) -> str:
    return "+" + raw[1:] if raw.startswith(" ") else raw


def _instant_param(raw: str | None) -> datetime | None:
    """A ``from``/``to`` value: a date (midnight UTC) or an ISO-8601 time with a zone, as UTC."""
    if raw is None:
        return None
    with contextlib.suppress(ValueError):
        return datetime.combine(date.fromisoformat(raw), time(), UTC)
    try:
        instant: datetime | None = datetime.fromisoformat(raw)
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise HTTPException(
            422, "from and to take a date (2025-06-01) or a time with a zone (2025-06-01T09:00Z)"
        )
    return instant.astimezone(UTC)


def _export(
    source: EngineSource,
    request: PacketRequest,
    export_format: str,
    audio_root: Path,
    generated_at: datetime,
    call_log: CallLog | None,
) -> bytes | None:
    """The export's bytes, read in one snapshot (None: the number named has no events); a
    packet holds the texts sent under each event, its times on the business's clock."""
    with _snapshot(_engine_of(source)) as conn:
        business_id = request.business_id or ""
        number = request.phone_number
        if number is not None and consent_state(conn, business_id, number) is None:
            return None
        if export_format == "zip":
            profile = None if call_log is None else call_log.business(conn, business_id)
            return build_audit_packet(
                conn,
                request,
                audio_store=AudioStore(audio_root),
                generated_at=generated_at,
                time_zones={} if profile is None else {business_id: profile.time_zone},
                text_log=texts_under_consents,
            )
        summaries = summarize_events(conn, request)
    render = summaries_to_json if export_format == "json" else summaries_to_csv
    return render(summaries).encode("utf-8")


def _export_file_name(request: PacketRequest, generated_at: datetime, extension: str) -> str:
    """``consent-audit-<business>-<number digits or "all">-<UTC time>.<format>``, file-name safe."""
    business = _UNSAFE_IN_FILE_NAME.sub("_", request.business_id or "")
    subject = (request.phone_number or "+all")[1:]
    return f"consent-audit-{business}-{subject}-{generated_at:%Y%m%dT%H%M%SZ}.{extension}"


@contextlib.contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection that sees one consistent state of the ledger while writers go on.

    On PostgreSQL that takes REPEATABLE READ; on SQLite, the read engine's deferred transaction
    reads one snapshot of the WAL.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def _event_json(event: RecordedEvent) -> dict[str, Any]:
    """One event as the auditor sees it: its chain position and hashes, the evidence it records,
    and the exact canonical text its hash covers (``sha256(prev_hash + canonical_body)``)."""
    return {
        "seq": event.seq,
        "recorded_at": event.body["recorded_at"],
        **event.body["evidence"],
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        "canonical_body": canonical_json(event.body),
    }


def _standing_json(standing: ConsentStateRow, now: datetime) -> dict[str, Any]:
    """Where the number's consent stands: the status, the event it rests on, and the window and cap
    of the consent it concerns; ``window_open`` says whether ``now`` falls inside that window."""
    start, end = standing.window_start, standing.window_end
    return {
        "status": standing.status.value,
        "rests_on_seq": standing.event_seq,
        "consent_seq": standing.consent_seq,
        "window_start": _instant(start),
        "window_end": _instant(end),
        "window_open": start is not None and end is not None and start <= now < end,
        "max_texts": standing.max_texts,
        "last_seq": standing.last_seq,
    }


def _verify(conn: Connection, business_id: str, audio_root: Path) -> VerificationReport:
    """The business's whole chain, re-hashed now, with each event's answer audio."""
    return verify_ledger(conn, business_id, audio_store=AudioStore(audio_root))


def _verification_json(report: VerificationReport) -> dict[str, Any]:
    broken = report.first_broken
    return {
        "ok": report.ok,
        "events_checked": report.events_checked,
        "audio_checked": report.audio_checked,
        "audio_purged": report.audio_purged,
        "first_broken": None
        if broken is None
        else {"seq": broken.seq, "event_id": broken.event_id, "reason": broken.reason},
    }


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _damaged_record(
    business_id: str, number: str, problem: str, report: VerificationReport
) -> dict[str, Any]:
    return {
        "business_id": business_id,
        "phone_number": number,
        "events": None,
        "records_error": problem,
        "standing": None,
        "verification": _verification_json(report),
    }
