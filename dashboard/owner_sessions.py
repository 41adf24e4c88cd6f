"""Owner sessions: what keeps an owner signed in between pages after presenting an owner token.

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
from dashboard.tables import owner_sessions, owner_tokens

logger = logging.getLogger(__name__)

SESSION_LIFETIME = timedelta(hours=12)
_SECRET_BYTES = 32
_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class OwnerSession:
    """A signed-in owner: the session, and the token (hence the business) it rests on."""

    id: int
    token: AccessToken
    expires_at: datetime

    @property
    def business_id(self) -> str:
        return self.token.business_id


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
    return StartedSession(secret, OwnerSession(int(session_id), token, expires_at))


def find_session(conn: Connection, presented: str, now: datetime) -> OwnerSession | None:
    """The working session whose secret is ``presented``; None when there is none (malformed,
    unknown, expired, ended, or its token expired or was revoked)."""
    now = require_utc("now", now)
    if not _SECRET_SHAPE.fullmatch(presented):
        return None
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
    return OwnerSession(int(row.session_id), token, expires_at)


def end_session(conn: Connection, presented: str, now: datetime) -> None:
    """Sign out: the session whose secret is ``presented`` stops working from ``now`` (nothing
    happens when there is no such open session)."""
    now = require_utc("now", now)
    if not _SECRET_SHAPE.fullmatch(presented):
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
