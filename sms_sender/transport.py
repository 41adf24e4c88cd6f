"""The port every SMS transport implements: hand one text to a carrier, get its message id back,
and say whether a text was already accepted (so a retry after a lost answer never duplicates)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class OutgoingSms:
    """One text as the transport sees it; ``outbox_id`` names its outbox row, so the provider's
    delivery reports can name it too (None for a text outside the outbox)."""

    to_number: str
    from_number: str
    body: str
    outbox_id: int | None = None


@dataclass(frozen=True)
class SendReceipt:
    """The provider's acknowledgement that it accepted a text."""

    provider_message_id: str


class SendFailed(Exception):
    """The provider did not accept a text.

    ``permanent`` means trying again cannot help (an invalid or unsubscribed number); otherwise
    the failure is transient (a timeout, a rate limit, a provider outage) and worth retrying.
    ``code`` is the provider's error code when it gave one (Twilio's 21610: the recipient
    unsubscribed at the carrier).
    """

    def __init__(self, reason: str, permanent: bool, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.code = code


class SmsTransport(Protocol):
    """Sends texts; raises ``SendFailed`` when the provider refuses one."""

    name: str

    def send(self, sms: OutgoingSms) -> SendReceipt:
        """Hand ``sms`` to the provider and return its receipt."""
        ...

    def find_accepted(self, sms: OutgoingSms, since: datetime) -> SendReceipt | None:
        """The receipt of a text identical to ``sms`` the provider accepted at or after
        ``since``, or None; raises ``SendFailed`` when the provider cannot be asked."""
        ...
