"""Auditor access over HTTP, read-only: a number's consent records, and the audit export.

``GET /audit/numbers/{e164}`` answers with every event of the number, where its consent stands,
and whether the business's chain verifies; ``GET /audit/export`` gives the audit packet (zip) or a
JSON/CSV summary, for the business or one number, over an optional period.

Every request carries ``Authorization: Bearer rcpt_audit_…``; the token decides the business, so an
auditor never names one and never sees another's records (a number on record only elsewhere is a
plain 404). The routes are plain ``def`` functions: FastAPI runs them, and the token check, in its
thread pool, so the blocking SQLAlchemy calls never stall the event loop that carries live calls.

The lead puts an :class:`AuditContext` at ``app.state.audit`` and includes :func:`audit_router`.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any

import phonenumbers
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import Connection, Engine

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


@dataclass(frozen=True)
class AuditContext:
    """What the audit routes need from the application: the database (``read_engine`` for the long
    reads: on SQLite it begins deferred, so a verification never holds the write lock that calls
    need), the consent audio, a clock, and the limiter of bad token attempts per address."""

    engine: Engine
    read_engine: Engine
    audio_store_root: Path
    clock: Callable[[], datetime]
    token_attempts: AttemptLimiter = field(default_factory=AttemptLimiter)


def audit_router() -> APIRouter:
    """The ``/audit`` routes."""
    router = APIRouter(prefix="/audit", tags=["audit"])
    router.add_api_route("/numbers/{e164:path}", audit_number, methods=["GET"])
    router.add_api_route("/export", audit_export, methods=["GET"], response_class=Response)
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


Auditor = Annotated[AuditorToken, Depends(current_auditor)]


def audit_number(e164: str, auditor: Auditor, context: Context) -> dict[str, Any]:
    """Every consent event of the auditor's business about ``e164``, where consent stands now, and
    whether the business's whole chain (and its answer audio) verifies."""
    number = parse_e164(e164)
    now = context.clock()
    with _snapshot(context.read_engine) as conn:
        try:
            events = events_for_number(conn, auditor.business_id, number)
        except ValueError as error:
            return _damaged_record(auditor, number, str(error), _verify(conn, auditor, context))
        if not events:
            raise HTTPException(404, "no consent events for this number")
        standing = consent_state(conn, auditor.business_id, number)
        report = _verify(conn, auditor, context)
    logger.info(
        "auditor read a number's consent records",
        extra={"business_id": auditor.business_id, "token_id": auditor.id},
    )
    return {
        "business_id": auditor.business_id,
        "business_name": events[-1].body["evidence"]["business_name"],
        "phone_number": number,
        "events": [_event_json(event) for event in events],
        "standing": None if standing is None else _standing_json(standing, now),
        "verification": _verification_json(report),
    }


def audit_export(
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
    with _snapshot(context.read_engine) as conn:
        if (
            phone_number is not None
            and consent_state(conn, auditor.business_id, phone_number) is None
        ):
            raise HTTPException(404, "no consent events for this number")
        content = _export(conn, request, export_format, context, generated_at)
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
    conn: Connection,
    request: PacketRequest,
    export_format: str,
    context: AuditContext,
    generated_at: datetime,
) -> bytes:
    if export_format == "zip":
        audio_store = AudioStore(context.audio_store_root)
        return build_audit_packet(conn, request, audio_store=audio_store, generated_at=generated_at)
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


def _verify(conn: Connection, auditor: AuditorToken, context: AuditContext) -> VerificationReport:
    """The business's whole chain, re-hashed now, with each event's answer audio."""
    return verify_ledger(
        conn, auditor.business_id, audio_store=AudioStore(context.audio_store_root)
    )


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
    auditor: AuditorToken, number: str, problem: str, report: VerificationReport
) -> dict[str, Any]:
    logger.error(
        "auditor read a damaged consent record",
        extra={"business_id": auditor.business_id, "token_id": auditor.id},
    )
    return {
        "business_id": auditor.business_id,
        "phone_number": number,
        "events": None,
        "records_error": problem,
        "standing": None,
        "verification": _verification_json(report),
    }
