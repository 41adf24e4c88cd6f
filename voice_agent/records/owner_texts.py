"""The owner's choice about call-summary texts, made on the command line and recorded as a ledger
event of its own (``sms_sender.record_owner_choice``; the owner's phone can make it by text)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from consent_ledger import ConsentMethod, RecordedEvent
from sms_sender import record_owner_choice
from voice_agent.records.businesses import Business
from voice_agent.records.sms_policies import sms_policy


def record_owner_texts_choice(
    conn: Connection, business: Business, wanted: bool, at: datetime
) -> RecordedEvent:
    """Opt the owner's phone in to (or out of) a text summary after every call."""
    return record_owner_choice(conn, sms_policy(business), wanted, ConsentMethod.OWNER, at)
