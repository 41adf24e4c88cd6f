"""One-time sign-in codes: six digits texted to a phone, good for ten minutes and five tries.

A code is stored as the sha256 of a random salt, the phone number and the code, never as itself.
Asking for a new code supersedes the phone's earlier ones, and a phone may ask for at most
:data:`CODES_PER_PHONE` codes in :data:`CODE_REQUEST_WINDOW` and :data:`CODES_PER_PHONE_PER_DAY`
in a day (the routes also limit each network address), so that guessing, five tries a code,
stays hopeless however many addresses try. A row is made for any phone number asked for, known
or not, so that the limits, the answers and the timing are the same whether the number belongs
to anyone; the code is texted only to a person's phone. A code dies after
:data:`MAX_WRONG_TRIES` wrong tries, when used, when it expires, or when revoked
(``receptionist owner sessions revoke --phone``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, insert, select, update

from dashboard.access_tokens import require_utc, stored_instant
from dashboard.tables import sign_in_codes
from sms_sender import SIGN_IN_CODE_LIFETIME, last_four

logger = logging.getLogger(__name__)

CODE_DIGITS = 6
MAX_WRONG_TRIES = 5
CODES_PER_PHONE = 3
CODE_REQUEST_WINDOW = timedelta(minutes=15)
CODES_PER_PHONE_PER_DAY = 10
_DAY = timedelta(days=1)


class CodeCheck(StrEnum):
    """What came of a code entered for a phone."""

    ACCEPTED = "accepted"
    WRONG = "wrong"
    """Not the phone's working code; the code's tries are counted."""
    NO_WORKING_CODE = "no_working_code"
    """The phone has no code that still works (none asked for, expired, used, revoked, or dead
    after too many wrong tries)."""


@dataclass(frozen=True)
class IssuedCode:
    """A new code for ``phone_number``; ``code`` is what the text carries, stored nowhere."""

    id: int
    phone_number: str
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class CodeRefused:
    """No new code for the phone: it asked for too many; it may ask again in ``retry_after``
    seconds."""

    retry_after: int


@dataclass(frozen=True)
class SignInCode:
    """What is known about a code; never the code itself."""

    id: int
    phone_number: str
    created_at: datetime
    expires_at: datetime
    failed_attempts: int
    used_at: datetime | None
    revoked_at: datetime | None

    def works(self, at: datetime) -> bool:
        return (
            self.used_at is None
            and self.revoked_at is None
            and at < self.expires_at
            and self.failed_attempts < MAX_WRONG_TRIES
        )


def issue_code(conn: Connection, phone_number: str, now: datetime) -> IssuedCode | CodeRefused:
    """A new code for ``phone_number`` (its earlier codes stop working); refused when the phone
    asked for :data:`CODES_PER_PHONE` codes within the last :data:`CODE_REQUEST_WINDOW`, or
    :data:`CODES_PER_PHONE_PER_DAY` within a day."""
    now = require_utc("now", now)
    for limit, period in ((CODES_PER_PHONE_PER_DAY, _DAY), (CODES_PER_PHONE, CODE_REQUEST_WINDOW)):
        asked = (
            conn.execute(
                select(sign_in_codes.c.created_at)
                .where(
                    sign_in_codes.c.phone_number == phone_number,
                    sign_in_codes.c.created_at > now - period,
                )
                .order_by(sign_in_codes.c.created_at.desc())
                .limit(limit)
            )
            .scalars()
            .all()
        )
        if len(asked) >= limit:
            logger.warning("sign-in code refused: too many asked for %s", last_four(phone_number))
            wait = stored_instant(asked[-1]) + period - now
            return CodeRefused(max(1, math.ceil(wait.total_seconds())))
    revoke_codes(conn, phone_number, now)  # only the newest code works
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    salt = secrets.token_hex(16)
    expires_at = now + SIGN_IN_CODE_LIFETIME
    code_id = conn.execute(
        insert(sign_in_codes)
        .values(
            phone_number=phone_number,
            code_salt=salt,
            code_sha256=_digest(salt, phone_number, code),
            created_at=now,
            expires_at=expires_at,
            failed_attempts=0,
        )
        .returning(sign_in_codes.c.id)
    ).scalar_one()
    logger.info("sign-in code %d issued for %s", code_id, last_four(phone_number))
    return IssuedCode(int(code_id), phone_number, code, expires_at)


def check_code(conn: Connection, phone_number: str, presented: str, now: datetime) -> CodeCheck:
    """Use the phone's working code if ``presented`` is it; count a wrong try otherwise."""
    now = require_utc("now", now)
    row = conn.execute(
        select(sign_in_codes)
        .where(*_working(phone_number, now))
        .order_by(sign_in_codes.c.id.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        logger.warning(
            "sign-in code entered for %s, which has none working", last_four(phone_number)
        )
        return CodeCheck.NO_WORKING_CODE
    entered = "".join(presented.split())
    if hmac.compare_digest(_digest(row.code_salt, phone_number, entered), row.code_sha256):
        used = conn.execute(
            update(sign_in_codes)
            .where(sign_in_codes.c.id == row.id, sign_in_codes.c.used_at.is_(None))
            .values(used_at=now)
        ).rowcount
        if used == 1:
            logger.info("sign-in code %d used", row.id)
            return CodeCheck.ACCEPTED
        return CodeCheck.NO_WORKING_CODE
    conn.execute(
        update(sign_in_codes)
        .where(sign_in_codes.c.id == row.id)
        .values(failed_attempts=sign_in_codes.c.failed_attempts + 1)
    )
    logger.warning("wrong sign-in code %d (try %d)", row.id, row.failed_attempts + 1)
    return CodeCheck.WRONG


def codes_for(conn: Connection, phone_number: str | None = None) -> list[SignInCode]:
    """Every code, of one phone or of all, oldest first."""
    query = select(sign_in_codes).order_by(sign_in_codes.c.id)
    if phone_number is not None:
        query = query.where(sign_in_codes.c.phone_number == phone_number)
    return [_code(row) for row in conn.execute(query)]


def revoke_codes(conn: Connection, phone_number: str, now: datetime) -> int:
    """Make every code of ``phone_number`` that still works stop working; how many did."""
    now = require_utc("now", now)
    revoked = conn.execute(
        update(sign_in_codes).where(*_working(phone_number, now)).values(revoked_at=now)
    ).rowcount
    return int(revoked)


def _working(phone_number: str, now: datetime) -> tuple[ColumnElement[bool], ...]:
    """The conditions a code of ``phone_number`` that still works meets at ``now``."""
    return (
        sign_in_codes.c.phone_number == phone_number,
        sign_in_codes.c.used_at.is_(None),
        sign_in_codes.c.revoked_at.is_(None),
        sign_in_codes.c.expires_at > now,
        sign_in_codes.c.failed_attempts < MAX_WRONG_TRIES,
    )


def _digest(salt: str, phone_number: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{phone_number}:{code}".encode()).hexdigest()


def _code(row: Row[Any]) -> SignInCode:
    return SignInCode(
        id=int(row.id),
        phone_number=row.phone_number,
        created_at=stored_instant(row.created_at),
        expires_at=stored_instant(row.expires_at),
        failed_attempts=int(row.failed_attempts),
        used_at=None if row.used_at is None else stored_instant(row.used_at),
        revoked_at=None if row.revoked_at is None else stored_instant(row.revoked_at),
    )
