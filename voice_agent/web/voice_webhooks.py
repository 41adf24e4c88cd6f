"""Twilio's voice webhooks and the media-stream websocket.

``POST /twilio/voice`` rings the owner first or connects the stream; ``POST
/twilio/voice/dial-status`` connects the stream when the owner did not answer; the websocket
runs the call. Every request must carry a valid Twilio signature.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, HTTPException, Request, WebSocket
from fastapi.responses import Response
from starlette.websockets import WebSocketDisconnect

from media_stream import StreamClosed
from voice_agent.call.session import handle_call
from voice_agent.phone import InvalidPhoneNumber, to_e164
from voice_agent.records.businesses import Business, business_for_number
from voice_agent.services import Services
from voice_agent.web.twiml import apology, connect_stream, hang_up, ring_owner

logger = logging.getLogger(__name__)

router = APIRouter()

UNANSWERED = {"no-answer", "busy", "failed", "canceled"}
MAX_FORM_FIELDS = 100


def _services(request: Request | WebSocket) -> Services:
    services: Services = request.app.state.services
    return services


async def signed_form(request: Request) -> dict[str, str]:
    """The webhook's form parameters, once its Twilio signature checks out (else 403)."""
    form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
    params = {key: value for key, value in form.items() if isinstance(value, str)}
    signature = request.headers.get("x-twilio-signature")
    signed = _services(request).signatures.webhook_is_signed(
        request.url.path, request.url.query, params, signature
    )
    if not signed:
        logger.warning("rejected unsigned or forged webhook to %s", request.url.path)
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    return params


def _twiml(document: str) -> Response:
    return Response(content=document, media_type="application/xml")


async def _called_business(services: Services, params: dict[str, str]) -> Business | None:
    try:
        called = to_e164(params.get("To", ""))
    except InvalidPhoneNumber:
        return None

    def lookup() -> Business | None:
        with services.engine.connect() as conn:
            return business_for_number(conn, called)

    return await asyncio.to_thread(lookup)


def _stream(services: Services, business: Business, params: dict[str, str]) -> Response:
    try:
        caller = to_e164(params.get("From", ""))
    except InvalidPhoneNumber:
        logger.warning("call from a withheld or invalid number; no message can be taken")
        return _twiml(apology())
    return _twiml(connect_stream(services.settings.media_stream_url, business.id, caller))


@router.post("/twilio/voice")
async def incoming_call(request: Request) -> Response:
    params = await signed_form(request)
    services = _services(request)
    business = await _called_business(services, params)
    if business is None:
        logger.warning("call to a number no business owns")
        return _twiml(apology())
    if business.ring_owner_first:
        action = services.signatures.public_url("/twilio/voice/dial-status")
        return _twiml(ring_owner(business.owner_phone, business.ring_seconds, action))
    return _stream(services, business, params)


@router.post("/twilio/voice/dial-status")
async def dial_status(request: Request) -> Response:
    params = await signed_form(request)
    services = _services(request)
    if params.get("DialCallStatus") not in UNANSWERED:
        return _twiml(hang_up())
    business = await _called_business(services, params)
    if business is None:
        return _twiml(apology())
    return _stream(services, business, params)


class StarletteStreamSocket:
    """Adapts Starlette's WebSocket to the bridge's StreamSocket."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket

    async def receive_text(self) -> str:
        try:
            message = await self._websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            raise StreamClosed() from None
        if message["type"] == "websocket.disconnect":
            raise StreamClosed()
        text = message.get("text")
        if text is None:
            data = message.get("bytes") or b""
            return data.decode("utf-8", errors="replace")
        return str(text)

    async def send_text(self, text: str) -> None:
        try:
            await self._websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError):
            raise StreamClosed() from None

    async def close(self) -> None:
        await self._websocket.close()


@router.websocket("/twilio/media-stream")
async def media_stream(websocket: WebSocket) -> None:
    services = _services(websocket)
    signature = websocket.headers.get("x-twilio-signature")
    if not services.signatures.stream_is_signed(services.settings.media_stream_url, signature):
        logger.warning("rejected media stream without a valid Twilio signature")
        await websocket.close(code=1008)
        return
    await websocket.accept()
    await handle_call(services, StarletteStreamSocket(websocket))
