"""Twilio's messaging webhooks: inbound texts (``POST /twilio/sms``) and delivery status
(``POST /twilio/sms/status?outbox=ID``). Both must carry a valid Twilio signature
(``signed_form``), which for the status callback covers the query naming the text.

Inbound texts are handed to ``sms_sender``'s inbound handler in one transaction; any reply
(HELP, the opt-out confirmation, …) is queued in the outbox and the dispatcher is woken, so every
reply is recorded and passes the same send rules as any text. The TwiML answer is always empty.

A status callback that names no text we have gets 404, one that contradicts the text it names
(another MessageSid, other numbers) 409, a malformed one 400; none of them changes anything.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from sms_sender import (
    OUTBOX_ID_PARAMETER,
    DeliveryReport,
    DeliveryUpdate,
    InboundError,
    InboundOutcome,
    InboundSms,
    handle_inbound,
    record_delivery,
)
from voice_agent.phone import InvalidPhoneNumber, to_e164
from voice_agent.records.businesses import business_for_number
from voice_agent.records.sms_policies import send_rules, sms_policy
from voice_agent.services import Services
from voice_agent.web.voice_webhooks import signed_form

logger = logging.getLogger(__name__)

router = APIRouter()

SignedForm = Annotated[dict[str, str], Depends(signed_form)]
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
MAX_OUTBOX_ID = 2**31 - 1  # the outbox's integer key on PostgreSQL
_OUTBOX_ID = re.compile(r"[1-9][0-9]{0,9}")
_MESSAGE_SID = re.compile(r"[A-Za-z0-9]{1,64}")
_ERROR_CODE = re.compile(r"[0-9]{1,9}")
_REFUSED_CALLBACKS = {
    DeliveryUpdate.UNKNOWN_MESSAGE: (404, "no such text"),
    DeliveryUpdate.MISMATCH: (409, "the status callback does not match the text it names"),
}


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


@router.post("/twilio/sms")
async def inbound_text(request: Request, params: SignedForm) -> Response:
    services = _services(request)
    sms = _inbound_sms(params)

    def handle() -> InboundOutcome | None:
        with services.engine.begin() as conn:
            business = business_for_number(conn, sms.to_number)
            if business is None:
                return None
            return handle_inbound(conn, sms, sms_policy(business), services.clock())

    outcome = await asyncio.to_thread(handle)
    if outcome is None:
        logger.warning("text to a number no business owns")
        return _twiml()
    logger.info("inbound text %s: %s", sms.message_sid, outcome.intent.value)
    if outcome.reply is not None or outcome.forwarded is not None:
        services.dispatcher.wake()
    return _twiml()


@router.post("/twilio/sms/status")
async def delivery_status(request: Request, params: SignedForm) -> Response:
    services = _services(request)
    report = _delivery_report(params, request.query_params.getlist(OUTBOX_ID_PARAMETER))

    def record() -> DeliveryUpdate:
        with services.engine.begin() as conn:
            return record_delivery(conn, report, services.clock(), send_rules())

    update = await asyncio.to_thread(record)
    logger.info("status %s for %s: %s", report.status, report.message_sid, update.value)
    refused = _REFUSED_CALLBACKS.get(update)
    if refused is not None:
        raise HTTPException(status_code=refused[0], detail=refused[1])
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
