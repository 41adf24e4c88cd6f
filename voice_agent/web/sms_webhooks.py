"""Twilio's messaging webhooks: inbound texts (``POST /twilio/sms``) and delivery status
(``POST /twilio/sms/status?outbox=ID``). Both must carry a valid Twilio signature
(``signed_form``), which for the status callback covers the query naming the text.

Both are answered as soon as the journal has them (``voice_agent.journal``): the applier then
hands them to ``sms_sender`` — an inbound text to its inbound handler in one transaction, whose
replies (HELP, the opt-out confirmation, …) are queued in the outbox and the dispatcher woken, a
status to ``record_delivery`` — retrying while the database is down. An opt-out is honoured from
the moment it is journaled: the dispatcher sends nothing to the number until it is stored. The
TwiML answer is always empty.

A malformed request gets 400 and is not journaled. A status callback that names no text we have,
or contradicts the text it names (another MessageSid, other numbers), changes nothing when it is
applied, and is logged.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from sms_sender import (
    OUTBOX_ID_PARAMETER,
    DeliveryReport,
    InboundError,
    InboundSms,
)
from voice_agent.journal.texts import (
    DELIVERY_STATUS,
    INBOUND_TEXT,
    apply_inbound,
    apply_status,
    inbound_entry,
    inbound_opt_out,
    status_entry,
    status_opt_out,
)
from voice_agent.phone import InvalidPhoneNumber, to_e164
from voice_agent.services import Services
from voice_agent.web.journaling import journal_request
from voice_agent.web.voice_webhooks import signed_form

logger = logging.getLogger(__name__)

router = APIRouter()

INBOUND_PATH = "/twilio/sms"
SignedForm = Annotated[dict[str, str], Depends(signed_form)]
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
MAX_OUTBOX_ID = 2**31 - 1  # the outbox's integer key on PostgreSQL
_OUTBOX_ID = re.compile(r"[1-9][0-9]{0,9}")
_MESSAGE_SID = re.compile(r"[A-Za-z0-9]{1,64}")
_ERROR_CODE = re.compile(r"[0-9]{1,9}")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _twiml() -> Response:
    return Response(content=EMPTY_TWIML, media_type="application/xml")


def _inbound_sms(params: dict[str, str]) -> InboundSms:
    try:
        num_media = int(params.get("NumMedia", "0") or 0)
        return InboundSms(
            message_sid=params.get("MessageSid", ""),
            from_number=to_e164(params.get("From", "")),
            to_number=to_e164(params.get("To", "")),
            body=params.get("Body", ""),
            num_media=num_media,
            opt_out_type=params.get("OptOutType") or None,
        )
    except (InboundError, InvalidPhoneNumber, ValueError) as error:
        raise HTTPException(status_code=400, detail=f"malformed inbound text: {error}") from None


@router.post(INBOUND_PATH)
async def inbound_text(request: Request, params: SignedForm) -> Response:
    services = _services(request)
    sms = _inbound_sms(params)
    payload = inbound_entry(sms, services.clock())
    opt_out = inbound_opt_out(sms)
    await journal_request(
        services, INBOUND_TEXT, sms.message_sid, payload, apply_inbound, opt_out=opt_out
    )
    logger.info("inbound text %s journaled%s", sms.message_sid, " (an opt-out)" if opt_out else "")
    return _twiml()


@router.post("/twilio/sms/status")
async def delivery_status(request: Request, params: SignedForm) -> Response:
    services = _services(request)
    report = _delivery_report(params, request.query_params.getlist(OUTBOX_ID_PARAMETER))
    payload = status_entry(report, services.clock())
    opt_out = status_opt_out(report)
    await journal_request(
        services, DELIVERY_STATUS, report.message_sid, payload, apply_status, opt_out=opt_out
    )
    logger.info("status %s for %s journaled", report.status, report.message_sid)
    return _twiml()


def _delivery_report(params: dict[str, str], outbox_ids: list[str]) -> DeliveryReport:
    sid = params.get("MessageSid", "")
    status = params.get("MessageStatus", "")
    code = params.get("ErrorCode") or None
    if not _MESSAGE_SID.fullmatch(sid) or not status:
        raise HTTPException(status_code=400, detail="a status callback needs MessageSid and status")
    if code is not None and not _ERROR_CODE.fullmatch(code):
        raise HTTPException(status_code=400, detail="ErrorCode must be a number")
    return DeliveryReport(
        message_sid=sid,
        status=status.lower()[:32],
        error_code=None if code is None else int(code),
        outbox_id=_outbox_id(outbox_ids),
        from_number=params.get("From") or None,
        to_number=params.get("To") or None,
    )


def _outbox_id(values: list[str]) -> int | None:
    """The outbox id in the callback URL; None for texts sent before URLs carried one."""
    if not values:
        return None
    if len(values) > 1 or not _OUTBOX_ID.fullmatch(values[0]) or int(values[0]) > MAX_OUTBOX_ID:
        raise HTTPException(
            status_code=400,
            detail=f"{OUTBOX_ID_PARAMETER} must be one whole number from 1 to {MAX_OUTBOX_ID}",
        )
    return int(values[0])
