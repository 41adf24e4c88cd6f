"""Phone sessions: what keeps an owner or staff member signed in on their phone for 30 days.

Signing in by code or by a summary's link creates a row holding the sha256 of a fresh random
secret; the secret goes to the browser in the same HttpOnly cookie as token sessions. A session
works for :data:`SESSION_LIFETIME` from its last renewal, and using it renews it (sliding, at
most once every :data:`RENEW_EVERY`, so reading pages does not write on every request), until it
is signed out or revoked (``receptionist owner sessions revoke``), and only while its person is
still on the business's list: a removed person is signed out at once, and a changed role applies
at the next page.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from dashboard.access_tokens import require_utc, sha256_hex, stored_instant
from dashboard.people import Person, Role, current_person
from dashboard.tables import phone_sessions
from sms_sender import last_four

logger = logging.getLogger(__name__)

SESSION_LIFETIME = timedelta(days=30)
RENEW_EVERY = timedelta(hours=1)
_SECRET_BYTES = 32
_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


class SignInMethod(StrEnum):
    """How a phone session began."""

    CODE = "code"
    LINK = "link"


class SessionEnd(StrEnum):
    """Why a phone session stopped before it expired."""

    SIGNED_OUT = "signed_out"
    REVOKED = "revoked"


@dataclass(frozen=True)
class PhoneSession:
    """What is known about a phone session; never its secret."""

    id: int
    business_id: str
    phone_number: str
    role: Role
    method: SignInMethod
    created_at: datetime
    renewed_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    ended_by: SessionEnd | None

    def works(self, at: datetime) -> bool:
        return self.ended_at is None and at < self.expires_at


@dataclass(frozen=True)
class StartedPhoneSession:
    """A new session: ``secret`` goes into the cookie; only its hash is stored."""

    secret: str
    session: PhoneSession


def start_phone_session(
    conn: Connection, person: Person, method: SignInMethod, now: datetime
) -> StartedPhoneSession:
    """Sign ``person`` in from ``now`` on."""
    now = require_utc("now", now)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    values = {
        "business_id": person.business_id,
        "phone_number": person.phone_number,
        "role": person.role.value,
        "method": method.value,
        "session_sha256": sha256_hex(secret),
        "created_at": now,
        "renewed_at": now,
        "expires_at": now + SESSION_LIFETIME,
    }
    session_id = conn.execute(
        insert(phone_sessions).values(**values).returning(phone_sessions.c.id)
    ).scalar_one()
    logger.info(
        "%s signed in by %s on %s",
        person.role.value,
        method.value,
        last_four(person.phone_number),
        extra={"business_id": person.business_id, "session_id": session_id},
    )
    session = PhoneSession(
        int(session_id),
        person.business_id,
        person.phone_number,
        person.role,
        method,
        now,
        now,
        now + SESSION_LIFETIME,
        None,
        None,
    )
    return StartedPhoneSession(secret, session)


def find_phone_session(conn: Connection, presented: str, now: datetime) -> PhoneSession | None:
    """The working session whose secret is ``presented``, with its person's role now; None
    when there is none (malformed, unknown, expired, ended, or its person removed)."""
    now = require_utc("now", now)
    row = _by_secret(conn, presented)
    if row is None:
        return None
    session = _session(row)
    if not session.works(now):
        return None
    person = current_person(conn, session.business_id, session.phone_number)
    if person is None:
        return None
    return replace(session, role=person.role)


def renew_phone_session(conn: Connection, presented: str, now: datetime) -> datetime | None:
    """Slide the working session ``presented`` on to ``now`` + :data:`SESSION_LIFETIME` when it
    was last renewed :data:`RENEW_EVERY` ago or more; its new expiry, or None when nothing was
    renewed."""
    now = require_utc("now", now)
    row = _by_secret(conn, presented)
    if row is None:
        return None
    session = _session(row)
    if not session.works(now) or now - session.renewed_at < RENEW_EVERY:
        return None
    expires_at = now + SESSION_LIFETIME
    conn.execute(
        update(phone_sessions)
        .where(phone_sessions.c.id == session.id, phone_sessions.c.ended_at.is_(None))
        .values(renewed_at=now, expires_at=expires_at)
    )
    return expires_at


def end_phone_session(conn: Connection, presented: str, now: datetime) -> bool:
    """Sign out the session whose secret is ``presented``; whether there was one to end."""
    now = require_utc("now", now)
    row = _by_secret(conn, presented)
    if row is None:
        return False
    return _end(conn, int(row.id), now, SessionEnd.SIGNED_OUT) is not None


def revoke_phone_session(conn: Connection, session_id: int, now: datetime) -> PhoneSession | None:
    """End session ``session_id`` from ``now`` on (an ended one keeps its end); None when
    there is no such session."""
    now = require_utc("now", now)
    _end(conn, session_id, now, SessionEnd.REVOKED)
    row = conn.execute(
        select(phone_sessions).where(phone_sessions.c.id == session_id)
    ).one_or_none()
    return None if row is None else _session(row)


def revoke_phone_sessions_of(
    conn: Connection, phone_number: str, now: datetime, business_id: str | None = None
) -> int:
    """End every open session of ``phone_number`` (of one business, or of all); how many."""
    now = require_utc("now", now)
    query = update(phone_sessions).where(
        phone_sessions.c.phone_number == phone_number, phone_sessions.c.ended_at.is_(None)
    )
    if business_id is not None:
        query = query.where(phone_sessions.c.business_id == business_id)
    ended = conn.execute(query.values(ended_at=now, ended_by=SessionEnd.REVOKED.value)).rowcount
    logger.info("%d session(s) of %s revoked", ended, last_four(phone_number))
    return int(ended)


def working_phone_sessions(conn: Connection, business_id: str, now: datetime) -> list[PhoneSession]:
    """The business's phone sessions that work at ``now``, most recently used first."""
    rows = conn.execute(
        select(phone_sessions)
        .where(
            phone_sessions.c.business_id == business_id,
            phone_sessions.c.ended_at.is_(None),
            phone_sessions.c.expires_at > require_utc("now", now),
        )
        .order_by(phone_sessions.c.renewed_at.desc(), phone_sessions.c.id.desc())
    )
    return [_session(row) for row in rows]


def revoke_business_session(
    conn: Connection, business_id: str, session_id: int, now: datetime
) -> PhoneSession | None:
    """End session ``session_id`` when it is one of ``business_id``'s; None when it is not."""
    owner = conn.execute(
        select(phone_sessions.c.business_id).where(phone_sessions.c.id == session_id)
    ).scalar_one_or_none()
    return None if owner != business_id else revoke_phone_session(conn, session_id, now)


def phone_sessions_of(conn: Connection, business_id: str | None = None) -> list[PhoneSession]:
    """Every phone session, of one business or of all, oldest first."""
    query = select(phone_sessions).order_by(phone_sessions.c.id)
    if business_id is not None:
        query = query.where(phone_sessions.c.business_id == business_id)
    return [_session(row) for row in conn.execute(query)]


def _end(conn: Connection, session_id: int, now: datetime, why: SessionEnd) -> int | None:
    ended = conn.execute(
        update(phone_sessions)
        .where(phone_sessions.c.id == session_id, phone_sessions.c.ended_at.is_(None))
        .values(ended_at=now, ended_by=why.value)
        .returning(phone_sessions.c.business_id)
    ).scalar_one_or_none()
    if ended is None:
        return None
    logger.info(
        "phone session %s", why.value, extra={"business_id": ended, "session_id": session_id}
    )
    return session_id


def _by_secret(conn: Connection, presented: str) -> Row[Any] | None:
    if not _SECRET_SHAPE.fullmatch(presented):
        return None
    return conn.execute(
        select(phone_sessions).where(phone_sessions.c.session_sha256 == sha256_hex(presented))
    ).one_or_none()


def _session(row: Row[Any]) -> PhoneSession:
    return PhoneSession(
        id=int(row.id),
        business_id=row.business_id,
        phone_number=row.phone_number,
        role=Role(row.role),
        method=SignInMethod(row.method),
        created_at=stored_instant(row.created_at),
        renewed_at=stored_instant(row.renewed_at),
        expires_at=stored_instant(row.expires_at),
        ended_at=None if row.ended_at is None else stored_instant(row.ended_at),
        ended_by=None if row.ended_by is None else SessionEnd(row.ended_by),
    )
