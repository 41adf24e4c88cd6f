"""Twilio's voice webhooks and the media-stream websocket.

``POST /twilio/voice`` rings the owner first or connects the stream. The owner's leg is
screened: when it answers, ``POST /twilio/voice/screen?business=ID`` asks whoever answered to
press 1 to take the call, and ``POST /twilio/voice/screen/answer?business=ID`` bridges the legs
only on that key. ``POST /twilio/voice/dial-status`` hangs up when the legs were bridged (the
owner took the call) and otherwise — no answer, busy, failed, no key, a voicemail that answered
— connects the stream; the websocket runs the call. Every request must carry a valid Twilio
signature. The TwiML that connects a stream carries the call's credential
(``stream_credentials``); the websocket runs a call only when its ``start`` presents that
credential for the first time, and closes with 1008 otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request, WebSocket
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.websockets import WebSocketDisconnect

from media_stream import Start, StreamClosed
from voice_agent.call.session import handle_call
from voice_agent.chat.numbers_in_words import spoken_phone_number
from voice_agent.journal.call_progress import CALL_PROGRESS, apply_progress, progress_entry
from voice_agent.phone import InvalidPhoneNumber, to_e164
from voice_agent.records.businesses import Business
from voice_agent.records.call_progress import FINAL_STATUSES, OwnerLeg, ProgressReport
from voice_agent.records.call_transfers import CallTransfer, end_transfer, transfer_of
from voice_agent.services import Services
from voice_agent.web.journaling import journal_request
from voice_agent.web.stream_credentials import (
    CREDENTIAL_PARAMETER,
    CredentialRefused,
    StreamClaims,
    StreamCredentials,
)
from voice_agent.web.twiml import (
    apology,
    connect_stream,
    hang_up,
    nothing,
    owner_answer,
    ring,
    screen,
    screening_question,
    transfer_not_taken,
)

logger = logging.getLogger(__name__)

router = APIRouter()

VOICE_PATH = "/twilio/voice"
DIAL_STATUS_PATH = "/twilio/voice/dial-status"
SCREEN_PATH = "/twilio/voice/screen"
SCREEN_ANSWER_PATH = "/twilio/voice/screen/answer"
CALL_STATUS_PATH = "/twilio/voice/status"
STREAM_ENDED_PATH = "/twilio/voice/stream-ended"
TRANSFER_STATUS_PATH = "/twilio/voice/transfer-status"
SCREEN_SECONDS = 6
"""How long the owner's leg has to press 1 once the screening question has been said, at most:
less when the business's ring time would run out first."""
SAY_WORDS_PER_SECOND = 2.5  # how fast Twilio's <Say> reads the screening question, roughly
MIN_KEY_WAIT = 2  # seconds: the least wait for the key that ringing leaves room for
MIN_RING_SECONDS = 5
MAX_FORM_FIELDS = 100
POLICY_VIOLATION = 1008
_CALL_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what a stream's start.callSid may be
_DURATION = re.compile(r"[0-9]{1,7}")
_CALL_STATUSES = frozenset({"queued", "ringing", "in-progress", *FINAL_STATUSES})


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

    return await services.businesses.by_number(called)  # the cache when the database is down


def _stream(services: Services, business: Business, params: dict[str, str]) -> Response:
    try:
        caller = to_e164(params.get("From", ""))
    except InvalidPhoneNumber:
        logger.warning("call from a withheld or invalid number; no message can be taken")
        return _twiml(apology())
    call_sid = params.get("CallSid", "")
    if not _CALL_SID.fullmatch(call_sid):
        logger.warning("signed call webhook without a usable CallSid")
        return _twiml(apology())
    credential = StreamCredentials.from_settings(services.settings).issue(
        call_sid, business.id, caller, services.clock()
    )
    stream_url, ended_url = services.settings.media_stream_url, _public(services, STREAM_ENDED_PATH)
    return _twiml(connect_stream(stream_url, business.id, caller, credential, ended_url))


def _public(services: Services, path: str, **query: str) -> str:
    return services.signatures.public_url(path, urlencode(query))


@router.post(VOICE_PATH)
async def incoming_call(request: Request) -> Response:
    params = await signed_form(request)
    services = _services(request)
    business = await _called_business(services, params)
    if business is None:
        logger.warning("call to a number no business owns")
        return _twiml(apology())
    if business.ring_owner_first:
        return _ring_screened(services, business, params, DIAL_STATUS_PATH, on_call=False)
    return _stream(services, business, params)


def _ring_screened(
    services: Services,
    business: Business,
    params: dict[str, str],
    action_path: str,
    *,
    on_call: bool,
) -> Response:
    """Ring the owner's phone (or the on-call phones), screened, so that whatever happens the
    caller is handed on within the business's ring time: the phones ring for that time less
    what the screening question and a short wait for the key take, and the screening is told
    when the ring time ends."""
    question = _question(business, params, on_call=on_call)
    screening = _saying_seconds(question) + MIN_KEY_WAIT
    ring_for = max(MIN_RING_SECONDS, math.floor(business.ring_seconds - screening))
    ends = round((services.clock().timestamp() + business.ring_seconds) * 1000)
    query = {"business": business.id, "until": str(ends)} | ({"on_call": "1"} if on_call else {})
    phones = business.on_call_phones if on_call else [business.owner_phone]
    return _twiml(
        ring(
            phones,
            ring_for,
            _public(services, action_path),
            _public(services, SCREEN_PATH, **query),
        )
    )


def _question(business: Business, params: dict[str, str], *, on_call: bool) -> str:
    caller = spoken_phone_number(params.get("From", "")) or "a withheld number"
    return screening_question(business.name, caller, emergency=on_call)


def _saying_seconds(text: str) -> float:
    return len(text.split()) / SAY_WORDS_PER_SECOND


@router.post(SCREEN_PATH)
async def screen_leg(request: Request) -> Response:
    """A screened leg answered (the owner, an on-call phone, or a voicemail): ask for the key
    that takes the call."""
    params = await signed_form(request)
    services = _services(request)
    business = await services.businesses.by_id(request.query_params.get("business", ""))
    if business is None:
        return _twiml(hang_up())
    answer_url = services.signatures.public_url(SCREEN_ANSWER_PATH, request.url.query)
    question = _question(business, params, on_call=request.query_params.get("on_call") == "1")
    key_wait = _key_wait(request.query_params.get("until"), question, services.clock())
    if key_wait < 1:
        logger.info("a screened leg answered too late to be asked in time: the caller goes on")
        return _twiml(hang_up())
    return _twiml(screen(question, answer_url, key_wait))


def _key_wait(until: str | None, question: str, now: datetime) -> int:
    """Whole seconds the leg may wait for its key once ``question`` is said, so that the caller
    is handed on by ``until`` (the end of the business's ring time, in epoch milliseconds; a
    URL without it, made before this was kept, gets the full wait)."""
    if until is None or not until.isdigit():
        return SCREEN_SECONDS
    left = int(until) / 1000 - now.timestamp() - _saying_seconds(question)
    return min(SCREEN_SECONDS, math.floor(left))


@router.post(SCREEN_ANSWER_PATH)
async def screen_answer(request: Request) -> Response:
    params = await signed_form(request)
    return _twiml(owner_answer(params.get("Digits", "")))


@router.post(DIAL_STATUS_PATH)
async def dial_status(request: Request) -> Response:
    """The owner's leg ended. Bridged means the owner pressed 1 and took the call: it is over.
    Anything else goes to the assistant."""
    params = await signed_form(request)
    services = _services(request)
    business = await _called_business(services, params)
    bridged = params.get("DialBridged") == "true"
    try:
        await _report(services, params, business, owner_leg=_leg_outcome(params, bridged))
    except Exception:  # the record of the owner's leg must never keep the caller from us
        logger.exception("recording how the owner's leg ended failed; the call goes on")
    if bridged:
        return _twiml(hang_up())
    if business is None:
        return _twiml(apology())
    return _stream(services, business, params)


def _leg_outcome(params: dict[str, str], bridged: bool) -> OwnerLeg | None:
    """How ringing a screened phone ended, from the ``<Dial action>``'s report."""
    if bridged:
        return OwnerLeg.TOOK_IT
    status = params.get("DialCallStatus", "")
    if status in ("completed", "answered"):
        return OwnerLeg.NOT_TAKEN
    return OwnerLeg(status) if status in {leg.value for leg in OwnerLeg} else None


@router.post(STREAM_ENDED_PATH)
async def stream_ended(request: Request) -> Response:
    """We closed the call's media stream. An emergency caller who accepted the transfer is put
    through to the on-call phones (screened like the owner's); any other call ends."""
    params = await signed_form(request)
    services = _services(request)
    call_sid = params.get("CallSid", "")
    try:
        transfer = await asyncio.to_thread(_read_transfer, services, call_sid)
    except SQLAlchemyError:
        logger.exception("the call's transfer could not be read; the call ends")
        return _twiml(hang_up())
    if transfer is None or transfer.outcome is not None:
        return _twiml(hang_up())
    business = await services.businesses.by_id(transfer.business_id)
    if business is None or not business.on_call_phones:
        return _twiml(hang_up())
    return _ring_screened(services, business, params, TRANSFER_STATUS_PATH, on_call=True)


@router.post(TRANSFER_STATUS_PATH)
async def transfer_status(request: Request) -> Response:
    """Ringing the on-call phones ended: bridged, someone took the call; otherwise the caller
    hears that the message stands. Either way the attempt's outcome is recorded."""
    params = await signed_form(request)
    services = _services(request)
    bridged = params.get("DialBridged") == "true"
    outcome = _leg_outcome(params, bridged) or OwnerLeg.FAILED
    call_sid = params.get("CallSid", "")
    try:
        transfer = await asyncio.to_thread(_end_transfer, services, call_sid, outcome)
    except SQLAlchemyError:
        logger.exception("the transfer's outcome could not be recorded")
        transfer = None
    if bridged:
        return _twiml(hang_up())
    business = None if transfer is None else await services.businesses.by_id(transfer.business_id)
    if business is None:
        return _twiml(apology())
    return _twiml(transfer_not_taken(business.name, business.callback_time))


def _read_transfer(services: Services, call_sid: str) -> CallTransfer | None:
    with services.engine.connect() as conn:
        return transfer_of(conn, call_sid)


def _end_transfer(services: Services, call_sid: str, outcome: OwnerLeg) -> CallTransfer | None:
    with services.engine.begin() as conn:
        end_transfer(conn, call_sid, outcome, services.clock())
        return transfer_of(conn, call_sid)


@router.post(CALL_STATUS_PATH)
async def call_status(request: Request) -> Response:
    """Twilio's status callback for a call (the number's, at least ``completed``): its status
    and duration, kept whether or not the call reached the assistant."""
    params = await signed_form(request)
    status = params.get("CallStatus", "")
    duration = params.get("CallDuration")
    known = status in _CALL_STATUSES and _CALL_SID.fullmatch(params.get("CallSid", ""))
    if not known or (duration is not None and not _DURATION.fullmatch(duration)):
        raise HTTPException(status_code=400, detail="a call status needs CallSid and CallStatus")
    services = _services(request)
    business = await _called_business(services, params)
    await _report(
        services,
        params,
        business,
        status=status,
        duration_seconds=None if duration is None else int(duration),
    )
    return _twiml(nothing())


async def _report(
    services: Services,
    params: dict[str, str],
    business: Business | None,
    *,
    owner_leg: OwnerLeg | None = None,
    status: str | None = None,
    duration_seconds: int | None = None,
) -> None:
    """Journal what this webhook says about its call (nothing without a usable CallSid)."""
    call_sid = params.get("CallSid", "")
    if not _CALL_SID.fullmatch(call_sid):
        logger.warning("signed call webhook without a usable CallSid: nothing to record")
        return
    try:
        caller: str | None = to_e164(params.get("From", ""))
    except InvalidPhoneNumber:
        caller = None
    report = ProgressReport(
        call_sid=call_sid,
        reported_at=services.clock(),
        business_id=None if business is None else business.id,
        caller_number=caller,
        owner_leg=owner_leg,
        status=status,
        duration_seconds=duration_seconds,
    )
    await journal_request(services, CALL_PROGRESS, call_sid, progress_entry(report), apply_progress)


class StarletteStreamSocket:
    """Adapts Starlette's WebSocket to the bridge's StreamSocket.

    Until the stream is ``admitted`` closing it says 1008 (policy violation), whatever the
    reason: no ``start`` in time, no valid credential, a credential used before.
    """

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self.admitted = False

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
        await self._websocket.close(code=1000 if self.admitted else POLICY_VIOLATION)


@router.websocket("/twilio/media-stream")
async def media_stream(websocket: WebSocket) -> None:
    services = _services(websocket)
    signature = websocket.headers.get("x-twilio-signature")
    if not services.signatures.stream_is_signed(services.settings.media_stream_url, signature):
        logger.warning("rejected media stream without a valid Twilio signature")
        await websocket.close(code=POLICY_VIOLATION)
        return
    await websocket.accept()
    socket = StarletteStreamSocket(websocket)

    async def admit(start: Start) -> bool:
        socket.admitted = await _admit(services, websocket.app.state.stream_claims, start)
        return socket.admitted

    await handle_call(services, socket, admit)


async def _admit(services: Services, claims: StreamClaims, start: Start) -> bool:
    """Whether ``start`` presents the credential of its own call, for the first time."""
    parameters = start.custom_parameters
    now = services.clock()
    try:
        grant = StreamCredentials.from_settings(services.settings).check(
            parameters.get(CREDENTIAL_PARAMETER, ""),
            start.call_sid,
            parameters.get("business", ""),
            parameters.get("caller", ""),
            now,
        )
    except CredentialRefused as refused:
        logger.warning("refused media stream %s: %s", start.stream_sid, refused)
        return False
    first_use = await claims.claim(grant, now)
    if not first_use:
        logger.warning(
            "refused media stream %s: its call's credential was used before", start.stream_sid
        )
    return first_use
