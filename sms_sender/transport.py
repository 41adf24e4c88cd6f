"""The port every SMS transport implements: hand one text to a carrier, get its message id back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutgoingSms:
    """One text as the transport sees it."""

    to_number: str
    from_number: str
    body: str


@dataclass(frozen=True)
class SendReceipt:
    """The provider's acknowledgement that it accepted a text."""

    provider_message_id: str


class SendFailed(Exception):
    """The provider did not accept a text.

    ``permanent`` means trying again cannot help (an invalid or unsubscribed number); otherwise
    the failure is transient (a timeout, a rate limit, a provider outage) and worth retrying.
    """

    def __init__(self, reason: str, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class SmsTransport(Protocol):
    """Sends texts; raises ``SendFailed`` when the provider refuses one."""

    name: str

    def send(self, sms: OutgoingSms) -> SendReceipt:
        """Hand ``sms`` to the provider and return its receipt."""
        ...
