"""The embedded SMS transport: records texts in memory and logs them, sends nothing anywhere.

It lets the whole product run on a laptop with no provider account. The outbox row is the
database record of each text; ``on_send`` lets the CLI show each text as it goes out. Its log
line shows the numbers' last four digits only, and not the text, unless debug logging is on.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sms_sender.transport import OutgoingSms, SendReceipt

logger = logging.getLogger(__name__)

SendListener = Callable[[OutgoingSms, SendReceipt], None]


def last_four(number: str) -> str:
    """A phone number as logs show it: only its last four digits (``+*******0123``)."""
    if len(number) <= 4:
        return "*" * len(number)
    return "".join(c if not c.isdigit() else "*" for c in number[:-4]) + number[-4:]


@dataclass(frozen=True)
class _Accepted:
    sms: OutgoingSms
    receipt: SendReceipt
    at: datetime


class LocalSmsTransport:
    """An ``SmsTransport`` that keeps every text in ``delivered`` instead of sending it."""

    name = "local"

    def __init__(self, on_send: SendListener | None = None) -> None:
        self.delivered: list[OutgoingSms] = []
        self._accepted: list[_Accepted] = []
        self._on_send = on_send
        self._lock = threading.Lock()

    def send(self, sms: OutgoingSms) -> SendReceipt:
        """Record ``sms`` and return a local message id ("LM" and 32 hex digits)."""
        receipt = SendReceipt(provider_message_id=f"LM{uuid.uuid4().hex}")
        with self._lock:
            self.delivered.append(sms)
            self._accepted.append(_Accepted(sms, receipt, datetime.now(UTC)))
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "local SMS %s from %s to %s: %s",
                receipt.provider_message_id,
                sms.from_number,
                sms.to_number,
                sms.body,
            )
        else:  # no numbers in full and no text (it may quote one) unless debugging
            logger.info(
                "local SMS %s from %s to %s (%d characters)",
                receipt.provider_message_id,
                last_four(sms.from_number),
                last_four(sms.to_number),
                len(sms.body),
            )
        if self._on_send is not None:
            self._on_send(sms, receipt)
        return receipt

    def find_accepted(self, sms: OutgoingSms, since: datetime) -> SendReceipt | None:
        """The receipt of an identical text recorded at or after ``since`` (wall clock)."""
        with self._lock:
            for accepted in reversed(self._accepted):
                if accepted.sms == sms and accepted.at >= since:
                    return accepted.receipt
        return None
