"""The texts sent under each consent, as the audit packet lists them.

The texts themselves belong to the SMS sender, which sits above the ledger; the ledger may not
import it. So the ledger states here what a packet shows of a text, and the exporter is handed a
:data:`TextLog` that reads them (``sms_sender.texts_under_consents``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from consent_ledger.instants import format_instant


@dataclass(frozen=True)
class SentText:
    """One text planned or sent under a consent event (``consent_event_hash``): when it was
    queued and sent, what it said, and where it stands (``status``, with the ``reason`` for a
    cancelled, blocked or failed one), with the carrier's message id once it has one."""

    consent_event_hash: str
    business_id: str
    to_number: str
    kind: str
    body: str
    status: str
    queued_at: datetime
    sent_at: datetime | None
    message_sid: str | None
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        """The text as ``texts.jsonl`` holds it (times as canonical UTC instants)."""
        return {
            "consent_event_hash": self.consent_event_hash,
            "business_id": self.business_id,
            "to_number": self.to_number,
            "kind": self.kind,
            "body": self.body,
            "status": self.status,
            "queued_at": format_instant(self.queued_at),
            "sent_at": None if self.sent_at is None else format_instant(self.sent_at),
            "message_sid": self.message_sid,
            "reason": self.reason,
        }


TextLog = Callable[[Connection, str, str | None, Collection[str]], Sequence[SentText]]
"""``log(conn, business_id, phone_number, consent_hashes)``: the business's texts (to
``phone_number`` only, when it is given) sent or planned under any of ``consent_hashes``,
oldest first."""
