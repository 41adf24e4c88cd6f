"""The Twilio Messaging transport: ``messages.create`` with a status callback, through the
``twilio`` SDK, with a short timeout and provider errors mapped to ``SendFailed``.

The status callback URL names the text's outbox row (``?outbox=ID``), so its delivery reports
find the row even before the send's MessageSid is committed; Twilio signs that full URL.

A 4xx answer is permanent (21211: invalid number, 21610: unsubscribed at the carrier, …) and
carries Twilio's code and message as the reason; 429, 5xx and network errors are transient. A
timeout is ambiguous — Twilio may have accepted the text — so before any retry the dispatcher asks
``find_accepted``, which lists the recipient's recent messages from our number.
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import urlencode

import requests
from twilio.base import values
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from sms_sender.transport import OutgoingSms, SendFailed, SendReceipt

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 5.0
TOO_MANY_REQUESTS = 429
_LOOKUP_LIMIT = 20
OUTBOX_ID_PARAMETER = "outbox"
"""The status callback URL's query parameter naming the outbox row (no underscore: Twilio's API
reference disallows underscores in a StatusCallback URL)."""


class TwilioSmsTransport:
    """An ``SmsTransport`` that sends through Twilio's Messaging API."""

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        status_callback_url: str | None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        api_base_url: str | None = None,
    ) -> None:
        """``api_base_url`` replaces ``https://api.twilio.com`` (a test server on 127.0.0.1)."""
        self._client = Client(
            account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout_seconds)
        )
        if api_base_url is not None:
            self._client.api.base_url = api_base_url.rstrip("/")
        self._status_callback_url = status_callback_url

    def send(self, sms: OutgoingSms) -> SendReceipt:
        """Create the message; ``SendFailed`` when Twilio refuses it or cannot be reached."""
        try:
            message = self._client.messages.create(
                to=sms.to_number,
                from_=sms.from_number,
                body=sms.body,
                status_callback=self._status_callback(sms),
            )
        except TwilioRestException as error:
            raise _failure(error) from None
        except (requests.RequestException, TwilioException) as error:
            raise SendFailed(
                f"Twilio unreachable: {type(error).__name__}", permanent=False
            ) from None
        if not message.sid:
            raise SendFailed("Twilio accepted the text but returned no MessageSid", permanent=False)
        return SendReceipt(provider_message_id=message.sid)

    def _status_callback(self, sms: OutgoingSms) -> str | object:
        """The callback URL for ``sms``, naming its outbox row; unset when there is none."""
        if self._status_callback_url is None:
            unset: object = values.unset
            return unset
        if sms.outbox_id is None:
            return self._status_callback_url
        separator = "&" if "?" in self._status_callback_url else "?"
        query = urlencode({OUTBOX_ID_PARAMETER: sms.outbox_id})
        return f"{self._status_callback_url}{separator}{query}"

    def find_accepted(self, sms: OutgoingSms, since: datetime) -> SendReceipt | None:
        """The MessageSid of an identical text Twilio accepted since ``since``, or None."""
        try:
            messages = self._client.messages.list(
                to=sms.to_number,
                from_=sms.from_number,
                date_sent_after=since,
                limit=_LOOKUP_LIMIT,
            )
        except TwilioRestException as error:
            raise _failure(error, transient=True) from None
        except (requests.RequestException, TwilioException) as error:
            raise SendFailed(
                f"Twilio unreachable: {type(error).__name__}", permanent=False
            ) from None
        for message in messages:
            if message.body == sms.body and message.sid:
                return SendReceipt(provider_message_id=message.sid)
        return None


def _failure(error: TwilioRestException, transient: bool = False) -> SendFailed:
    code = error.code if isinstance(error.code, int) else None
    status = int(error.status)
    permanent = not transient and 400 <= status < 500 and status != TOO_MANY_REQUESTS
    message = str(error.msg).split(": ", 1)[-1] if error.msg else f"HTTP {status}"
    reason = f"{code}: {message}" if code is not None else f"HTTP {status}: {message}"
    logger.warning("Twilio refused a text: %s", reason)
    return SendFailed(reason, permanent=permanent, code=code)
