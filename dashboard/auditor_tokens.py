"""Auditor tokens: bearer secrets that let a carrier or counsel read one business's consent records.

A token is ``rcpt_audit_`` followed by 32 random bytes in URL-safe base64. It is shown once, when it
is issued; the database keeps only its sha256, with the business it opens, a label saying who holds
it, and when it was created, expires, was revoked and was last used. A presented token is checked
by hashing it and looking the hash up, so no stored secret is ever compared byte by byte, and a
token never opens more than its one business, read-only.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from dashboard.tables import auditor_tokens

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "rcpt_audit_"
"""Every auditor token starts with this, so that a leaked one is recognised (and secret scanners
can match it)."""

MAX_LABEL_LENGTH = 200
MAX_BUSINESS_ID_LENGTH = 64
_TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(rf"{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}")


class TokenError(ValueError):
    """A token that cannot be issued as asked (bad business id, label or lifetime)."""


class TokenStatus(StrEnum):
    """Whether a token opens its business's records at a given instant."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class AuditorToken:
    """What is known about a token; never the token itself."""

    id: int
    business_id: str
    label: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    def status(self, at: datetime) -> TokenStatus:
        """Revoked wins over expired; a token expires at the instant ``expires_at``."""
        if self.revoked_at is not None:
            return TokenStatus.REVOKED
        if at >= self.expires_at:
            return TokenStatus.EXPIRED
        return TokenStatus.ACTIVE


@dataclass(frozen=True)
class IssuedToken:
    """A newly issued token: ``secret`` is what the auditor presents; it is not stored anywhere."""

    secret: str
    token: AuditorToken


def issue_token(
    conn: Connection, business_id: str, label: str, now: datetime, lifetime: timedelta
) -> IssuedToken:
    """Create a token for ``business_id`` valid from ``now`` for ``lifetime``, inside ``conn``'s
    transaction (the caller commits)."""
    _check_business_id(business_id)
    label = _checked_label(label)
    if lifetime <= timedelta(0):
        raise TokenError("a token's lifetime must be positive")
    now = _utc("now", now)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    expires_at = now + lifetime
    token_id = conn.execute(
        insert(auditor_tokens)
        .values(
            business_id=business_id,
            label=label,
            token_sha256=_digest(secret),
            created_at=now,
            expires_at=expires_at,
        )
        .returning(auditor_tokens.c.id)
    ).scalar_one()
    logger.info("auditor token issued", extra={"business_id": business_id, "token_id": token_id})
    token = AuditorToken(int(token_id), business_id, label, now, expires_at, None, None)
    return IssuedToken(secret=secret, token=token)


def list_tokens(conn: Connection, business_id: str | None = None) -> list[AuditorToken]:
    """Every token, of one business or of all, oldest first."""
    statement = select(auditor_tokens).order_by(auditor_tokens.c.id)
    if business_id is not None:
        statement = statement.where(auditor_tokens.c.business_id == business_id)
    return [_token_from_row(row) for row in conn.execute(statement)]


def revoke_token(conn: Connection, token_id: int, now: datetime) -> AuditorToken | None:
    """Revoke the token ``token_id`` from ``now`` on; None when there is no such token.

    Revoking a revoked token changes nothing: it keeps its first revocation time.
    """
    now = _utc("now", now)
    row = conn.execute(
        select(auditor_tokens).where(auditor_tokens.c.id == token_id).with_for_update()
    ).one_or_none()
    if row is None:
        return None
    token = _token_from_row(row)
    if token.revoked_at is not None:
        return token
    conn.execute(
        update(auditor_tokens).where(auditor_tokens.c.id == token_id).values(revoked_at=now)
    )
    logger.info(
        "auditor token revoked", extra={"business_id": token.business_id, "token_id": token_id}
    )
    return replace(token, revoked_at=now)


def authenticate(conn: Connection, presented: str, now: datetime) -> AuditorToken | None:
    """The active token ``presented`` is, with its use recorded at ``now``; None when it is not
    one (malformed, unknown, expired or revoked)."""
    now = _utc("now", now)
    if not _TOKEN_SHAPE.fullmatch(presented):
        return None
    row = conn.execute(
        select(auditor_tokens).where(auditor_tokens.c.token_sha256 == _digest(presented))
    ).one_or_none()
    if row is None:
        logger.warning("unknown auditor token presented")
        return None
    token = _token_from_row(row)
    status = token.status(now)
    if status is not TokenStatus.ACTIVE:
        logger.warning(
            "auditor token refused",
            extra={"business_id": token.business_id, "token_id": token.id, "status": status},
        )
        return None
    conn.execute(
        update(auditor_tokens).where(auditor_tokens.c.id == token.id).values(last_used_at=now)
    )
    return replace(token, last_used_at=now)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _check_business_id(business_id: str) -> None:
    if not business_id or len(business_id) > MAX_BUSINESS_ID_LENGTH:
        raise TokenError(f"a business id has 1 to {MAX_BUSINESS_ID_LENGTH} characters")


def _checked_label(label: str) -> str:
    label = label.strip()
    if len(label) > MAX_LABEL_LENGTH:
        raise TokenError(f"a label has at most {MAX_LABEL_LENGTH} characters")
    if any(not character.isprintable() for character in label):
        raise TokenError("a label must not hold control characters")
    return label


def _utc(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError(f"{name} must be an aware UTC datetime")
    return value


def _stored(value: datetime) -> datetime:
    """A datetime read back from the database, as aware UTC (SQLite keeps no zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _stored_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _stored(value)


def _token_from_row(row: Row[Any]) -> AuditorToken:
    return AuditorToken(
        id=int(row.id),
        business_id=row.business_id,
        label=row.label,
        created_at=_stored(row.created_at),
        expires_at=_stored(row.expires_at),
        revoked_at=_stored_or_none(row.revoked_at),
        last_used_at=_stored_or_none(row.last_used_at),
    )
