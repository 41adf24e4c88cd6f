"""Signed tokens for the public callback form (its CSRF protection).

The form page carries a token that names the business and when the page was served, with an
HMAC over both; a post is taken only with a token this deployment issued for that business within
:data:`TOKEN_LIFETIME`. No session is needed, so any web process can check a token another one
issued (they share the key: ``STREAM_CREDENTIAL_SECRET``, else one derived from the Twilio auth
token, under a label of its own). The time it names is when the visitor was shown the form, kept
in the consent evidence as when the disclosure was first shown.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta

from voice_agent.settings import Settings

TOKEN_LIFETIME = timedelta(hours=2)
CLOCK_SKEW = timedelta(minutes=1)
_KEY_LABEL = b"public callback form token"
_TOKEN = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})")


class FormTokens:
    """Issues and checks the callback form's tokens for one deployment."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("a form token key must not be empty")
        self._key = hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()

    @classmethod
    def from_settings(cls, settings: Settings) -> FormTokens:
        secret = settings.stream_credential_secret or settings.twilio_auth_token
        return cls(secret.get_secret_value().encode("utf-8"))

    def issue(self, business_id: str, now: datetime) -> str:
        """A token for a form of ``business_id`` served at ``now``."""
        issued = str(int(now.timestamp()))
        nonce = secrets.token_urlsafe(12)
        return f"{issued}.{nonce}.{self._mac(business_id, issued, nonce)}"

    def check(self, token: str, business_id: str, now: datetime) -> datetime | None:
        """When the form carrying ``token`` was served, if the token is ours, for
        ``business_id`` and still good at ``now``; None otherwise."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        issued, nonce, mac = match.groups()
        if not hmac.compare_digest(mac, self._mac(business_id, issued, nonce)):
            return None
        served_at = datetime.fromtimestamp(int(issued), UTC)
        if not served_at - CLOCK_SKEW <= now <= served_at + TOKEN_LIFETIME:
            return None
        return min(served_at, now)

    def _mac(self, business_id: str, issued: str, nonce: str) -> str:
        message = f"{business_id}\n{issued}\n{nonce}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
