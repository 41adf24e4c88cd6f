"""Per-call media-stream credentials: a stream is accepted only for a call we answered.

The websocket upgrade's Twilio signature covers only the fixed ``wss://…/twilio/media-stream``
URL, so it is the same for every call and never expires: anyone who saw one could replay it.
What ties a stream to a call is a credential that only a signed voice webhook issues and puts in
the TwiML as ``<Parameter name="credential">``; Twilio hands it back in the stream's ``start``
(``customParameters``). It is an HMAC over the call SID, the business, the caller and an expiry
a few minutes ahead, so the business and caller that ``start`` names are the ones we answered
for, and a credential for one call opens no other.

It is good once: the first stream that presents it inserts the call SID into
``stream_credential_uses``, and the primary key refuses every later insert, in whatever process
it happens. The insert is the whole check-and-mark, so two streams racing with the same
credential cannot both win.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from voice_agent.records.tables import stream_credential_uses
from voice_agent.settings import Settings

logger = logging.getLogger(__name__)

CREDENTIAL_PARAMETER = "credential"
"""The ``<Parameter>`` name of the credential in the TwiML (and in ``start.customParameters``)."""

_VERSION = "v1"
_KEY_LABEL = b"receptionist media-stream credential key v1"
_SHAPE = re.compile(r"v1\.([0-9]{1,11})\.([A-Za-z0-9_-]{43})")


class CredentialRefused(Exception):
    """A stream's credential does not admit it; the text says why (never the credential)."""


@dataclass(frozen=True)
class StreamGrant:
    """What a valid credential vouches for: this call, of this business, from this caller."""

    call_sid: str
    business_id: str
    caller: str
    expires_at: datetime


class StreamCredentials:
    """Issues and checks the credentials of one deployment (every process shares the key)."""

    def __init__(self, secret: bytes, lifetime: timedelta) -> None:
        if not secret:
            raise ValueError("a stream credential key must not be empty")
        if lifetime <= timedelta(0):
            raise ValueError("a stream credential's lifetime must be positive")
        self._key = hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()
        self.lifetime = lifetime

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamCredentials:
        """Keyed by STREAM_CREDENTIAL_SECRET, or by a key derived from the Twilio auth token."""
        secret = settings.stream_credential_secret or settings.twilio_auth_token
        return cls(
            secret.get_secret_value().encode("utf-8"),
            timedelta(seconds=settings.stream_credential_seconds),
        )

    def issue(self, call_sid: str, business_id: str, caller: str, now: datetime) -> str:
        """The credential for this call's stream, good from ``now`` for the lifetime."""
        expires = int(now.timestamp() + self.lifetime.total_seconds())
        return f"{_VERSION}.{expires}.{self._mac(call_sid, business_id, caller, expires)}"

    def check(
        self, presented: str, call_sid: str, business_id: str, caller: str, now: datetime
    ) -> StreamGrant:
        """The grant ``presented`` makes for a stream whose ``start`` names this call SID,
        business and caller; :class:`CredentialRefused` when it makes none."""
        if not presented:
            raise CredentialRefused("the stream presents no credential")
        match = _SHAPE.fullmatch(presented)
        if match is None:
            raise CredentialRefused("the stream's credential is malformed")
        expires = int(match.group(1))
        expected = self._mac(call_sid, business_id, caller, expires)
        if not hmac.compare_digest(expected, match.group(2)):
            raise CredentialRefused(
                "the stream's credential was not issued for this call, business and caller"
            )
        expires_at = datetime.fromtimestamp(expires, UTC)
        if now >= expires_at:
            raise CredentialRefused("the stream's credential has expired")
        return StreamGrant(call_sid, business_id, caller, expires_at)

    def _mac(self, call_sid: str, business_id: str, caller: str, expires: int) -> str:
        # A JSON array keeps the fields apart whatever they hold.
        message = json.dumps([_VERSION, call_sid, business_id, caller, expires])
        digest = hmac.new(self._key, message.encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


CLAIM_WAIT_SECONDS = 2.0
"""How long a stream's start waits for the database to record its credential's use; longer
would be silence the caller hears, and a database that slow is treated as down."""


def claim_stream(engine: Engine, grant: StreamGrant, now: datetime) -> bool:
    """Mark the grant's credential used; False when it (or any stream of its call) was before.

    One insert in its own transaction: the primary key on the call SID is the check.
    """
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(stream_credential_uses).values(
                    call_sid=grant.call_sid,
                    business_id=grant.business_id,
                    used_at=now,
                    expires_at=grant.expires_at,
                )
            )
    except IntegrityError:
        return False
    return True


class StreamClaims:
    """Credentials used, as the database records them for every process, or, while the database
    cannot answer within :data:`CLAIM_WAIT_SECONDS`, as this process remembers them.

    During an outage a replay to this process is still refused; a replay to another process gets
    its stream taken but can store nothing new, since a call is stored once per call SID and the
    credential names the call. The use is still written to the database when it answers.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._remembered: set[str] = set()

    async def claim(self, grant: StreamGrant, now: datetime) -> bool:
        """Whether this is the first use of ``grant``'s credential."""
        if grant.call_sid in self._remembered:
            return False
        self._remembered.add(grant.call_sid)
        if len(self._remembered) > _REMEMBERED_AT_MOST:
            self._remembered.clear()  # the database is the record; this only bridges outages
            self._remembered.add(grant.call_sid)
        recording = asyncio.ensure_future(asyncio.to_thread(claim_stream, self._engine, grant, now))
        try:
            return await asyncio.wait_for(asyncio.shield(recording), CLAIM_WAIT_SECONDS)
        except (TimeoutError, SQLAlchemyError) as error:
            logger.warning(
                "the database did not record stream credential use (%s); this process's "
                "record of used credentials decides",
                type(error).__name__,
            )
            recording.add_done_callback(_log_late_claim)
            return True


_REMEMBERED_AT_MOST = 100_000


def _log_late_claim(recording: asyncio.Future[bool]) -> None:
    if recording.cancelled() or recording.exception() is not None:
        logger.warning("a stream credential's use was never recorded in the database")
    elif not recording.result():
        logger.error("a stream accepted during an outage had a credential used before")
