"""The owner's choice about call-summary texts, recorded as a ledger event of its own."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from consent_ledger import ConsentEvidence, ConsentMethod, EventKind, RecordedEvent, append_event
from voice_agent.businesses import Business


def record_owner_texts_choice(
    conn: Connection, business: Business, wanted: bool, at: datetime
) -> RecordedEvent:
    """Opt the owner's phone in to (or out of) a text summary after every call."""
    kind = EventKind.OWNER_NOTIFICATIONS_OPT_IN if wanted else EventKind.OWNER_NOTIFICATIONS_OPT_OUT
    evidence = ConsentEvidence(
        business_id=business.id,
        business_name=business.name,
        phone_number=business.owner_phone,
        call_sid=None,
        stream_sid=None,
        kind=kind,
        method=ConsentMethod.OWNER,
        script=None,
        answers=(),
        classifier=None,
        classifier_version=None,
        reasked=False,
        scope=None,
        occurred_at=at,
    )
    return append_event(conn, evidence, at)
