"""Journal entries for Twilio's messaging webhooks: an inbound text and a delivery status.

The webhook journals the request and answers; the applier hands it to ``sms_sender`` later, with
the time it was received, so an opt-out counts from when it was sent and a confirmation older
than its five minutes is not sent. Both are idempotent there: an inbound text is handled once per
MessageSid, and a status only ever moves a text forward.

An opt-out (an opt-out keyword or plain request, Twilio's Advanced Opt-Out ``STOP``, or a
delivery failing with the carrier's "unsubscribed" error) is journaled as one, so no text leaves
for the number until the database has it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from sms_sender import (
    DeliveryReport,
    DeliveryUpdate,
    InboundError,
    InboundSms,
    ReplyIntent,
    classify_reply,
    handle_inbound,
    record_delivery,
)
from voice_agent.journal.applier import PermanentFailure
from voice_agent.journal.store import JournalEntry
from voice_agent.records.businesses import business_for_number
from voice_agent.records.sms_policies import send_rules, sms_policy

logger = logging.getLogger(__name__)

INBOUND_TEXT = "sms_inbound"
DELIVERY_STATUS = "sms_status"
UNSUBSCRIBED_AT_CARRIER = 21610
"""Twilio's error for a recipient who unsubscribed at the carrier: an opt-out."""


def inbound_entry(sms: InboundSms, received_at: datetime) -> dict[str, Any]:
    """The journal payload of an inbound text."""
    return {"sms": asdict(sms), "received_at": received_at.astimezone(UTC).isoformat()}


def inbound_opt_out(sms: InboundSms) -> str | None:
    """The number an inbound text opts out, if it is an opt-out."""
    if sms.opt_out_type == "STOP" or classify_reply(sms.body) is ReplyIntent.OPT_OUT:
        return sms.from_number
    return None


def status_entry(report: DeliveryReport, received_at: datetime) -> dict[str, Any]:
    """The journal payload of a status callback."""
    return {"report": asdict(report), "received_at": received_at.astimezone(UTC).isoformat()}


def status_opt_out(report: DeliveryReport) -> str | None:
    """The recipient a status callback says unsubscribed at the carrier, when it names one."""
    if report.error_code == UNSUBSCRIBED_AT_CARRIER and report.to_number:
        number = report.to_number
        return number if number.startswith("+") and number[1:].isdigit() else None
    return None


def apply_inbound(engine: Engine, entry: JournalEntry) -> bool:
    """Handle a journaled inbound text (once per MessageSid); True when it queued a reply or a
    forward to the owner."""
    try:
        sms = InboundSms(**entry.payload["sms"])
        received_at = _instant(entry.payload["received_at"])
    except (InboundError, KeyError, TypeError, ValueError) as error:
        raise PermanentFailure(f"not an inbound text: {error}") from None
    with engine.begin() as conn:
        business = business_for_number(conn, sms.to_number)
        if business is None:
            logger.warning("text %s to a number no business owns", sms.message_sid)
            return False
        outcome = handle_inbound(conn, sms, sms_policy(business), received_at)
    logger.info(
        "inbound text %s: %s%s",
        sms.message_sid,
        outcome.intent.value,
        " (handled before)" if outcome.duplicate else "",
        extra={"business_id": business.id},
    )
    return outcome.reply is not None or outcome.forwarded is not None


def apply_status(engine: Engine, entry: JournalEntry) -> bool:
    """Record a journaled delivery status (a repeated one changes nothing)."""
    try:
        report = DeliveryReport(**entry.payload["report"])
        received_at = _instant(entry.payload["received_at"])
    except (KeyError, TypeError, ValueError) as error:
        raise PermanentFailure(f"not a delivery status: {error}") from None
    with engine.begin() as conn:
        update = record_delivery(conn, report, received_at, send_rules())
    if update in (DeliveryUpdate.UNKNOWN_MESSAGE, DeliveryUpdate.MISMATCH):
        logger.warning("status %s for %s refused: %s", report.status, report.message_sid, update)
    else:
        logger.info("status %s for %s: %s", report.status, report.message_sid, update.value)
    return False


def _instant(text: object) -> datetime:
    if not isinstance(text, str):
        raise ValueError("a time must be ISO-8601 text")
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:
        raise ValueError("a time must carry its zone")
    return instant.astimezone(UTC)
