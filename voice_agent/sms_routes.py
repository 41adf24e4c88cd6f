"""Twilio's messaging webhooks: inbound texts (``POST /twilio/sms``) and delivery status
(``POST /twilio/sms/status``). Both must carry a valid Twilio signature (``signed_form``).

Inbound texts are handed to ``sms_sender``'s inbound handler in one transaction; any reply
(HELP, the opt-out confirmation, …) is queued in the outbox and the dispatcher is woken, so every
reply is recorded and passes the same send rules as any text. The TwiML answer is always empty.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from sms_sender import (
    DeliveryReport,
    DeliveryUpdate,
    InboundError,
    InboundOutcome,
    InboundSms,
    handle_inbound,
    record_delivery,
)
from voice_agent.businesses import business_for_number
from voice_agent.call_flow import signed_form
from voice_agent.phone import InvalidPhoneNumber, to_e164
from voice_agent.services import Services
from voice_agent.sms_policies import send_rules, sms_policy

logger = logging.getLogger(__name__)

router = APIRouter()

SignedForm = Annotated[dict[str, str], Depends(signed_form)]
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


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
    report = _delivery_report(params)

    def record() -> DeliveryUpdate:
        with services.engine.begin() as conn:
            return record_delivery(conn, report, services.clock(), send_rules())

    update = await asyncio.to_thread(record)
    logger.info("status %s for %s: %s", report.status, report.message_sid, update.value)
    return _twiml()


def _delivery_report(params: dict[str, str]) -> DeliveryReport:
    sid = params.get("MessageSid", "")
    status = params.get("MessageStatus", "")
    code = params.get("ErrorCode") or None
    if not sid or len(sid) > 64 or not sid.isalnum() or not status:
        raise HTTPException(status_code=400, detail="a status callback needs MessageSid and status")
    if code is not None and not code.isdigit():
        raise HTTPException(status_code=400, detail="ErrorCode must be a number")
    return DeliveryReport(
        message_sid=sid, status=status.lower()[:32], error_code=None if code is None else int(code)
    )
