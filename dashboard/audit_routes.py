"""Auditor access over HTTP: one business's consent records for a named number, read-only.

Every request carries ``Authorization: Bearer rcpt_audit_…``; the token decides the business, so an
auditor never names one and never sees another's records (a number on record only elsewhere is a
plain 404). The routes are plain ``def`` functions: FastAPI runs them, and the token check, in its
thread pool, so the blocking SQLAlchemy calls never stall the event loop that carries live calls.

The lead puts an :class:`AuditContext` at ``app.state.audit`` and includes :func:`audit_router`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import phonenumbers
from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy import Connection, Engine

from consent_ledger import (
    RecordedEvent,
    VerificationReport,
    canonical_json,
    events_for_number,
    verify_ledger,
)
from dashboard.auditor_tokens import AuditorToken, authenticate

logger = logging.getLogger(__name__)

_E164_SHAPE = re.compile(r"\+[1-9][0-9]{1,14}")
_BEARER = re.compile(r"Bearer +(\S+) *", re.IGNORECASE)
_NO_TOKEN_CHALLENGE = 'Bearer realm="audit"'
_BAD_TOKEN_CHALLENGE = 'Bearer realm="audit", error="invalid_token"'


@dataclass(frozen=True)
class AuditContext:
    """What the audit routes need from the application: the database, the consent audio, a clock."""

    engine: Engine
    audio_store_root: Path
    clock: Callable[[], datetime]


def audit_router() -> APIRouter:
    """The ``/audit`` routes."""
    router = APIRouter(prefix="/audit", tags=["audit"])
    router.add_api_route("/numbers/{e164:path}", audit_number, methods=["GET"])
    return router


def audit_context(request: Request) -> AuditContext:
    """The application's :class:`AuditContext` (a server error when the app was built without)."""
    context = getattr(request.app.state, "audit", None)
    if not isinstance(context, AuditContext):
        raise RuntimeError("app.state.audit must hold an AuditContext")
    return context


Context = Annotated[AuditContext, Depends(audit_context)]


def current_auditor(request: Request, context: Context) -> AuditorToken:
    """The active token the request presents; 401 with a Bearer challenge otherwise."""
    header = request.headers.get("authorization")
    if header is None:
        raise HTTPException(
            401, "an auditor token is required", {"WWW-Authenticate": _NO_TOKEN_CHALLENGE}
        )
    match = _BEARER.fullmatch(header)
    token = None
    if match is not None:
        with context.engine.begin() as conn:
            token = authenticate(conn, match.group(1), context.clock())
    if token is None:
        raise HTTPException(
            401,
            "the auditor token is invalid, expired or revoked",
            {"WWW-Authenticate": _BAD_TOKEN_CHALLENGE},
        )
    return token


Auditor = Annotated[AuditorToken, Depends(current_auditor)]


def audit_number(e164: str, auditor: Auditor, context: Context) -> dict[str, Any]:
    """Every consent event of the auditor's business about ``e164``, where consent stands now, and
    whether the business's whole chain verifies."""
    number = parse_e164(e164)
    with _snapshot(context.engine) as conn:
        try:
            events = events_for_number(conn, auditor.business_id, number)
        except ValueError as error:
            return _damaged_record(
                auditor, number, str(error), verify_ledger(conn, auditor.business_id)
            )
        if not events:
            raise HTTPException(404, "no consent events for this number")
        report = verify_ledger(conn, auditor.business_id)
    logger.info(
        "auditor read a number's consent records",
        extra={"business_id": auditor.business_id, "token_id": auditor.id},
    )
    return {
        "business_id": auditor.business_id,
        "business_name": events[-1].body["evidence"]["business_name"],
        "phone_number": number,
        "events": [_event_json(event) for event in events],
        "verification": _verification_json(report),
    }


def parse_e164(raw: str) -> str:
    """``raw`` when it is a possible phone number written in E.164; 422 otherwise.

    The reply never repeats what was sent.
    """
    if _E164_SHAPE.fullmatch(raw) is not None:
        parsed = phonenumbers.parse(raw, None)
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if e164 == raw and phonenumbers.is_possible_number(parsed):
            return raw
    raise HTTPException(422, "not a phone number in E.164 form, like +15125550123")


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only connection that sees one consistent state of the ledger.

    On PostgreSQL that takes REPEATABLE READ; SQLite transactions from ``make_engine`` begin
    IMMEDIATE, which already keeps writers out until the read ends.
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


def _verification_json(report: VerificationReport) -> dict[str, Any]:
    broken = report.first_broken
    return {
        "ok": report.ok,
        "events_checked": report.events_checked,
        "first_broken": None
        if broken is None
        else {"seq": broken.seq, "event_id": broken.event_id, "reason": broken.reason},
    }


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
        "verification": _verification_json(report),
    }
