"""Twilio request signatures, checked on every webhook and on the media-stream upgrade.

Twilio signs the public URL it requested (which we rebuild from PUBLIC_BASE_URL, since a TLS
terminator in front of us changes scheme and host) together with the POST parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator


class TwilioSignatures:
    """Checks ``X-Twilio-Signature`` values against the account's auth token."""

    def __init__(self, auth_token: str, public_base_url: str) -> None:
        self._validator = RequestValidator(auth_token)
        self._base = public_base_url.rstrip("/")

    def public_url(self, path: str, query: str = "") -> str:
        return f"{self._base}{path}" + (f"?{query}" if query else "")

    def webhook_is_signed(
        self, path: str, query: str, params: Mapping[str, str], signature: str | None
    ) -> bool:
        """Whether a form-encoded webhook to ``path`` carries Twilio's signature."""
        if not signature:
            return False
        return bool(self._validator.validate(self.public_url(path, query), dict(params), signature))

    def stream_is_signed(self, stream_url: str, signature: str | None) -> bool:
        """Whether a websocket upgrade to ``stream_url`` (the wss:// URL in our TwiML) is signed.

        Some set-ups sign the URL with a trailing slash, so both forms are accepted.
        """
        if not signature:
            return False
        candidates = (stream_url, stream_url.rstrip("/") + "/")
        return any(self._validator.validate(url, {}, signature) for url in candidates)
