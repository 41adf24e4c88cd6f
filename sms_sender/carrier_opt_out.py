"""The carrier says the recipient unsubscribed (Twilio error 21610): treat it as a revocation.

The error can come back when a text is created or later in its status callback; either way every
pending text to the number is cancelled and the revocation is recorded in the ledger, in the
transaction that learned of it — for the owner's phone, as the end of its notification texts too.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Connection

from consent_ledger import ConsentMethod
from sms_sender.outbox import OutboxMessage, cancel_pending
from sms_sender.send_rules import SendRules
from sms_sender.text_choices import record_opt_out

logger = logging.getLogger(__name__)

UNSUBSCRIBED_AT_CARRIER = 21610


def revoke_after_carrier_opt_out(
    conn: Connection, message: OutboxMessage, now: datetime, rules: SendRules
) -> None:
    """Cancel every pending text to ``message``'s recipient and record the revocation in the
    ledger, in the caller's transaction; like a STOP, it holds even when the number's ledger
    history is damaged."""
    cancel_pending(conn, message.business_id, message.to_number, "unsubscribed at the carrier")
    policy = rules.policies(conn, message.business_id) if rules.policies else None
    if policy is None:
        logger.error(
            "no policy for %s: the carrier opt-out cancels texts but is not in the ledger",
            message.business_id,
        )
        return
    record_opt_out(
        conn,
        policy,
        message.to_number,
        ConsentMethod.SMS_KEYWORD,
        now,
        f"unsubscribed at the carrier (error {UNSUBSCRIBED_AT_CARRIER})",
    )
