"""Access tokens: bearer secrets that open one business's records, for auditors and for owners.

A token is its kind's prefix (``rcpt_audit_``, ``rcpt_owner_``) followed by 32 random bytes in
URL-safe base64. It is shown once, when it is issued; the database keeps only its sha256, with
the business it opens, a label saying who holds it, and when it was created, expires, was revoked
and was last used. A presented token is checked by hashing it and looking the hash up in its
kind's own table, so no stored secret is ever compared byte by byte, a token never opens more
than its one business, and an auditor's token never signs an owner in (nor the reverse).
:class:`AttemptLimiter` lets the routes refuse an address that keeps presenting bad tokens.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, Table, insert, select, update

from dashboard.tables import auditor_tokens, owner_tokens

logger = logging.getLogger(__name__)

MAX_LABEL_LENGTH = 200
MAX_BUSINESS_ID_LENGTH = 64
_TOKEN_BYTES = 32


class TokenError(ValueError):
    """A token that cannot be issued as asked (bad business id, label or lifetime)."""


class TokenStatus(StrEnum):
    """Whether a token opens its business's records at a given instant."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class AccessToken:
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
    """A newly issued token: ``secret`` is what its holder presents; it is not stored anywhere."""

    secret: str
    token: AccessToken


class TokenStore:
    """The tokens of one kind (``role``): issued, listed, revoked and checked in their own table.

    Every method works inside the transaction of the ``conn`` it is given (the caller commits).
    """

    def __init__(self, role: str, prefix: str, table: Table) -> None:
        self.role = role
        self.prefix = prefix
        """Every token of this kind starts with it, so that a leaked one is recognised (and
        secret scanners can match it)."""
        self._table = table
        self._shape = re.compile(rf"{re.escape(prefix)}[A-Za-z0-9_-]{{43}}")

    def issue(
        self, conn: Connection, business_id: str, label: str, now: datetime, lifetime: timedelta
    ) -> IssuedToken:
        """Create a token for ``business_id`` valid from ``now`` for ``lifetime``."""
        _check_business_id(business_id)
        label = _checked_label(label)
        if lifetime <= timedelta(0):
            raise TokenError("a token's lifetime must be positive")
        now = require_utc("now", now)
        secret = self.prefix + secrets.token_urlsafe(_TOKEN_BYTES)
        expires_at = now + lifetime
        token_id = conn.execute(
            insert(self._table)
            .values(
                business_id=business_id,
                label=label,
                token_sha256=sha256_hex(secret),
                created_at=now,
                expires_at=expires_at,
            )
            .returning(self._table.c.id)
        ).scalar_one()
        logger.info(
            "%s token issued", self.role, extra={"business_id": business_id, "token_id": token_id}
        )
        token = AccessToken(int(token_id), business_id, label, now, expires_at, None, None)
        return IssuedToken(secret=secret, token=token)

    def tokens(self, conn: Connection, business_id: str | None = None) -> list[AccessToken]:
        """Every token, of one business or of all, oldest first."""
        statement = select(self._table).order_by(self._table.c.id)
        if business_id is not None:
            statement = statement.where(self._table.c.business_id == business_id)
        return [token_from_row(row) for row in conn.execute(statement)]

    def revoke(self, conn: Connection, token_id: int, now: datetime) -> AccessToken | None:
        """Revoke the token ``token_id`` from ``now`` on; None when there is no such token.

        Revoking a revoked token changes nothing: it keeps its first revocation time.
        """
        now = require_utc("now", now)
        table = self._table
        row = conn.execute(
            select(table).where(table.c.id == token_id).with_for_update()
        ).one_or_none()
        if row is None:
            return None
        token = token_from_row(row)
        if token.revoked_at is not None:
            return token
        conn.execute(update(table).where(table.c.id == token_id).values(revoked_at=now))
        logger.info(
            "%s token revoked",
            self.role,
            extra={"business_id": token.business_id, "token_id": token_id},
        )
        return replace(token, revoked_at=now)

    def authenticate(self, conn: Connection, presented: str, now: datetime) -> AccessToken | None:
        """The active token ``presented`` is, with its use recorded at ``now``; None when it is
        not one (malformed, unknown, expired or revoked)."""
        now = require_utc("now", now)
        if not self._shape.fullmatch(presented):
            return None
        table = self._table
        row = conn.execute(
            select(table).where(table.c.token_sha256 == sha256_hex(presented))
        ).one_or_none()
        if row is None:
            logger.warning("unknown %s token presented", self.role)
            return None
        token = token_from_row(row)
        status = token.status(now)
        if status is not TokenStatus.ACTIVE:
            logger.warning(
                "%s token refused",
                self.role,
                extra={"business_id": token.business_id, "token_id": token.id, "status": status},
            )
            return None
        conn.execute(update(table).where(table.c.id == token.id).values(last_used_at=now))
        return replace(token, last_used_at=now)


AUDITOR_TOKENS = TokenStore("auditor", "rcpt_audit_", auditor_tokens)
"""Tokens that let a carrier or counsel read one business's consent records over ``/audit``."""
OWNER_TOKENS = TokenStore("owner", "rcpt_owner_", owner_tokens)
"""Tokens that sign a business owner in to the dashboard's ``/owner`` pages."""


class AttemptLimiter:
    """Slows down token guessing: an address with ``max_failures`` failed token attempts within
    the last ``window`` seconds is refused (the routes answer 429) until the oldest of them is
    ``window`` old. Successful attempts are not limited and do not wipe the count.

    Kept in memory per process (a guess is a failure wherever it lands, so many processes each
    allow their own share), for at most ``max_addresses`` addresses, the stalest dropped first.
    Thread-safe: the routes run in FastAPI's thread pool.
    """

    def __init__(
        self,
        max_failures: int = 10,
        window: float = 60.0,
        *,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or window <= 0 or max_addresses < 1:
            raise ValueError("an attempt limiter needs positive limits")
        self.max_failures = max_failures
        self.window = window
        self._max_addresses = max_addresses
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try a token again; None when it may now."""
        now = self._clock()
        with self._lock:
            failures = self._recent(address, now)
            if failures is None or len(failures) < self.max_failures:
                return None
            return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, address: str) -> None:
        """Count a failed token attempt from ``address``."""
        now = self._clock()
        with self._lock:
            failures = self._recent(address, now) or deque(maxlen=self.max_failures)
            failures.append(now)
            self._failures.pop(address, None)
            self._failures[address] = failures  # the most recently failing address goes last
            while len(self._failures) > self._max_addresses:
                del self._failures[next(iter(self._failures))]

    def _recent(self, address: str, now: float) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures


def sha256_hex(secret: str) -> str:
    """The stored form of a secret: the hex sha256 of its ASCII text."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def require_utc(name: str, value: datetime) -> datetime:
    """``value`` when it is an aware UTC datetime; ValueError otherwise."""
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError(f"{name} must be an aware UTC datetime")
    return value


def stored_instant(value: datetime) -> datetime:
    """A datetime read back from the database, as aware UTC (SQLite keeps no zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def token_from_row(row: Row[Any]) -> AccessToken:
    """The :class:`AccessToken` of a selected token row."""
    return AccessToken(
        id=int(row.id),
        business_id=row.business_id,
        label=row.label,
        created_at=stored_instant(row.created_at),
        expires_at=stored_instant(row.expires_at),
        revoked_at=None if row.revoked_at is None else stored_instant(row.revoked_at),
        last_used_at=None if row.last_used_at is None else stored_instant(row.last_used_at),
    )


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
