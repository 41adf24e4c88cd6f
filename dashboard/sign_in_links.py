"""One-time sign-in links in a call summary: the link opens the call's page signed in on the
owner's phone.

A link is bound to one business, one phone and one call, works once, for
:data:`LINK_LIFETIME`, and then the phone holds an ordinary 30-day session. Only its sha256 is
stored; the secret travels in the summary (the business's texts pages show it hidden:
``sms_sender.hide_sign_in_links``). :class:`CallLinks` is what the receptionist's wrap-up asks for
a call's link, in the transaction that queues the summary.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from dashboard.access_tokens import require_utc, sha256_hex, stored_instant
from dashboard.tables import sign_in_links
from sms_sender import SIGN_IN_LINK_PATH, last_four

logger = logging.getLogger(__name__)

LINK_LIFETIME = timedelta(hours=24)
_SECRET_BYTES = 16
_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{22}")


@dataclass(frozen=True)
class LinkTarget:
    """Who a link signs in, and the call it opens."""

    business_id: str
    phone_number: str
    call_sid: str


@dataclass(frozen=True)
class SeenLink:
    """A link looked at, not used: its target, and whether it would still sign in."""

    target: LinkTarget
    works: bool


@dataclass(frozen=True)
class CallLinks:
    """Issues the sign-in links of call summaries, under ``public_base_url``."""

    public_base_url: str

    def issue(
        self, conn: Connection, business_id: str, phone_number: str, call_sid: str, now: datetime
    ) -> str:
        """A new link to ``call_sid``'s page that signs ``phone_number`` in to ``business_id``."""
        now = require_utc("now", now)
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        conn.execute(
            insert(sign_in_links).values(
                business_id=business_id,
                phone_number=phone_number,
                call_sid=call_sid,
                link_sha256=sha256_hex(secret),
                created_at=now,
                expires_at=now + LINK_LIFETIME,
            )
        )
        logger.info(
            "sign-in link issued for %s",
            last_four(phone_number),
            extra={"business_id": business_id, "call_sid": call_sid},
        )
        return f"{self.public_base_url.rstrip('/')}{SIGN_IN_LINK_PATH}{secret}"


def peek_link(conn: Connection, presented: str, now: datetime) -> SeenLink | None:
    """The link ``presented`` without using it; None when there is no such link."""
    now = require_utc("now", now)
    row = _link_row(conn, presented)
    if row is None:
        return None
    works = row.used_at is None and row.revoked_at is None and now < stored_instant(row.expires_at)
    return SeenLink(LinkTarget(row.business_id, row.phone_number, row.call_sid), works)


def redeem_link(conn: Connection, presented: str, now: datetime) -> LinkTarget | None:
    """Use the link whose secret is ``presented``; None when it does not work (malformed,
    unknown, expired, used or revoked)."""
    now = require_utc("now", now)
    row = _link_row(conn, presented)
    if row is None:
        logger.warning("unknown sign-in link presented")
        return None
    used = conn.execute(
        update(sign_in_links)
        .where(
            sign_in_links.c.id == row.id,
            sign_in_links.c.used_at.is_(None),
            sign_in_links.c.revoked_at.is_(None),
            sign_in_links.c.expires_at > now,
        )
        .values(used_at=now)
    ).rowcount
    if used != 1:
        logger.warning("sign-in link %d refused: used, expired or revoked", row.id)
        return None
    logger.info("sign-in link %d used", row.id, extra={"business_id": row.business_id})
    return LinkTarget(row.business_id, row.phone_number, row.call_sid)


def _link_row(conn: Connection, presented: str) -> Row[Any] | None:
    """The stored link whose secret is ``presented``; None for a malformed or unknown one."""
    if not _SECRET_SHAPE.fullmatch(presented):
        return None
    return conn.execute(
        select(sign_in_links).where(sign_in_links.c.link_sha256 == sha256_hex(presented))
    ).one_or_none()


def revoke_links(conn: Connection, phone_number: str, now: datetime) -> int:
    """Make every unused link of ``phone_number`` stop working; how many did."""
    now = require_utc("now", now)
    revoked = conn.execute(
        update(sign_in_links)
        .where(
            sign_in_links.c.phone_number == phone_number,
            sign_in_links.c.used_at.is_(None),
            sign_in_links.c.revoked_at.is_(None),
            sign_in_links.c.expires_at > now,
        )
        .values(revoked_at=now)
    ).rowcount
    return int(revoked)
