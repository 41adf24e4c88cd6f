"""Owner sessions: what keeps an owner signed in between pages after presenting an owner token
(an operator's or a script's way in), and the one lookup the pages make for any session, token
or phone (``phone_sessions``: owners and staff signed in by code or link).

Signing in creates a row holding the sha256 of a fresh random secret; the secret itself goes to
the browser in an HttpOnly cookie and nowhere else. A session works until it expires (at most
:data:`SESSION_LIFETIME`, never past its token's expiry) or the owner signs out, and only while
its owner token still works, so revoking a token signs its browsers out at once. Sessions live in
the database, like everything else, so any web process can serve any page and no server-side
signing key is needed.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from dashboard.access_tokens import (
    AccessToken,
    TokenStatus,
    require_utc,
    sha256_hex,
    stored_instant,
    token_from_row,
)
from dashboard.people import Role
from dashboard.phone_sessions import end_phone_session, find_phone_session
from dashboard.tables import owner_sessions, owner_tokens

logger = logging.getLogger(__name__)

SESSION_LIFETIME = timedelta(hours=12)
_SECRET_BYTES = 32
_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class OwnerSession:
    """A signed-in browser: its business and ``role``, and what it rests on — an owner
    ``token`` (an owner: everything for the business) or a ``phone_number`` signed in by code or
    link (an owner or staff, as the business's list of people says)."""

    id: int
    business_id: str
    role: Role
    expires_at: datetime
    token: AccessToken | None = None
    phone_number: str | None = None


@dataclass(frozen=True)
class StartedSession:
    """A new session: ``secret`` goes into the owner's cookie; only its hash is stored."""

    secret: str
    session: OwnerSession


def start_session(conn: Connection, token: AccessToken, now: datetime) -> StartedSession:
    """Sign in with ``token`` (already authenticated) from ``now`` on."""
    now = require_utc("now", now)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    expires_at = min(now + SESSION_LIFETIME, token.expires_at)
    session_id = conn.execute(
        insert(owner_sessions)
        .values(
            token_id=token.id,
            session_sha256=sha256_hex(secret),
            created_at=now,
            expires_at=expires_at,
        )
        .returning(owner_sessions.c.id)
    ).scalar_one()
    logger.info(
        "owner signed in",
        extra={"business_id": token.business_id, "token_id": token.id, "session_id": session_id},
    )
    session = OwnerSession(int(session_id), token.business_id, Role.OWNER, expires_at, token)
    return StartedSession(secret, session)


def find_session(conn: Connection, presented: str, now: datetime) -> OwnerSession | None:
    """The working session whose secret is ``presented``, a token's or a phone's; None when
    there is none (malformed, unknown, expired, ended, its token expired or was revoked, or its
    phone's person removed)."""
    now = require_utc("now", now)
    if not _SECRET_SHAPE.fullmatch(presented):
        return None
    phone = find_phone_session(conn, presented, now)
    if phone is not None:
        return OwnerSession(
            phone.id, phone.business_id, phone.role, phone.expires_at, None, phone.phone_number
        )
    row = conn.execute(
        select(
            owner_sessions.c.id.label("session_id"),
            owner_sessions.c.expires_at.label("session_expires_at"),
            owner_sessions.c.ended_at,
            owner_tokens,
        )
        .join(owner_tokens, owner_tokens.c.id == owner_sessions.c.token_id)
        .where(owner_sessions.c.session_sha256 == sha256_hex(presented))
    ).one_or_none()
    if row is None or row.ended_at is not None:
        return None
    expires_at = stored_instant(row.session_expires_at)
    token = token_from_row(row)
    if now >= expires_at or token.status(now) is not TokenStatus.ACTIVE:
        return None
    return OwnerSession(int(row.session_id), token.business_id, Role.OWNER, expires_at, token)


def end_session(conn: Connection, presented: str, now: datetime) -> None:
    """Sign out: the session whose secret is ``presented`` stops working from ``now`` (nothing
    happens when there is no such open session)."""
    now = require_utc("now", now)
    if not _SECRET_SHAPE.fullmatch(presented) or end_phone_session(conn, presented, now):
        return
    ended = conn.execute(
        update(owner_sessions)
        .where(
            owner_sessions.c.session_sha256 == sha256_hex(presented),
            owner_sessions.c.ended_at.is_(None),
        )
        .values(ended_at=now)
        .returning(owner_sessions.c.id)
    ).scalar_one_or_none()
    if ended is not None:
        logger.info("owner signed out", extra={"session_id": ended})
