"""One live call from the websocket's first frame to the stored record.

The call's transcription session opens once Twilio's ``start`` has named the business, so the
transcriber can be told the business's words (its name, its services); the caller's audio
waits on the websocket meanwhile. With a cloud transcriber, the embedded engine hears the caller
until Twilio has played the greeting's notice (`NoticeHold`): no audio leaves this machine
before the caller has been told an automated assistant answers. A stream is run only once
``start`` has come in time and been admitted (by the web layer: the per-call credential of
``voice_agent.web.stream_credentials``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from consent_ledger import AudioStore
from media_stream import (
    CallBridge,
    CallEnded,
    FailoverSynthesizer,
    FailoverTranscription,
    NoticeHold,
    Start,
    StreamSocket,
)
from voice_agent.call.conversation import RECORDING_SECONDS, CallOutcome, Conversation
from voice_agent.call.journal_entry import CALL_ENDED, FinishedCall, call_entry, store_call
from voice_agent.call.keyterms import call_keyterms
from voice_agent.call.wrap_up import CallIdentity
from voice_agent.chat.failover import FailoverChatModel
from voice_agent.logging_setup import bind_call
from voice_agent.phone import InvalidPhoneNumber, to_e164
from voice_agent.records.businesses import Business
from voice_agent.records.call_transfers import request_transfer
from voice_agent.services import Services

logger = logging.getLogger(__name__)

UNKNOWN_NUMBER_APOLOGY = (
    "Sorry, this number isn't set up to take messages right now. Please try again later. Goodbye."
)


NOTICE_NOT_CONFIRMED = (
    "the greeting's notice was never confirmed played, so the caller's audio stayed on this "
    "machine (embedded transcription)"
)

StreamAdmission = Callable[[Start], Awaitable[bool]]
"""Decides from Twilio's ``start`` whether the stream belongs to a call we answered."""


async def handle_call(services: Services, socket: StreamSocket, admit: StreamAdmission) -> None:
    """Run the conversation over the stream, then store the call (also after an abrupt hang-up).

    Nothing reaches the conversation, and nothing is stored, unless ``start`` arrives within
    ``stream_start_seconds`` and ``admit`` accepts it; otherwise the stream is just closed.
    """
    failures: list[str] = []

    def provider_failed(provider: str, what: str) -> None:
        logger.warning("%s failed mid-call: %s", provider, what)
        services.metrics.provider_error(provider)
        failures.append(f"{provider} failed: {what}")

    bridge = CallBridge(
        socket,
        FailoverSynthesizer(services.synthesizer, services.embedded_synthesizer, provider_failed),
    )
    try:
        async with asyncio.timeout(services.settings.stream_start_seconds):
            start = await bridge.open()
    except CallEnded as ended:
        logger.warning("media stream ended before it started: %s", ended)
        await bridge.close()
        return
    except TimeoutError:
        logger.warning(
            "media stream sent no start within %ss: closed", services.settings.stream_start_seconds
        )
        await bridge.close()
        return
    bind_call(start.call_sid, start.custom_parameters.get("business", "-"))
    if not await admit(start):
        await bridge.close()
        return
    started_at, started_monotonic = services.clock(), time.monotonic()
    business = await _business(services, start.custom_parameters)
    caller = _caller(start.custom_parameters)
    if business is None or caller is None:
        logger.warning("stream %s names no known business or caller", start.stream_sid)
        await _apologise(bridge)
        return
    business = business.answering_at(started_at)  # after hours, the after-hours promise
    if business.recording_enabled:
        bridge.record_caller_audio(RECORDING_SECONDS)
    keyterms = call_keyterms(business)

    def configured_transcription() -> FailoverTranscription:
        return FailoverTranscription(
            services.transcriber, services.embedded_transcriber, provider_failed, keyterms
        )

    hold = None
    if services.transcriber is services.embedded_transcriber:
        bridge.listen(configured_transcription())  # embedded: nothing leaves, nothing to hold
    else:
        hold = NoticeHold(
            services.embedded_transcriber.open_session(keyterms), configured_transcription
        )
        bridge.listen(hold)
    chat_model = FailoverChatModel(
        services.chat_model, services.embedded_chat_model, provider_failed
    )
    desk = OnCallDesk(services, business, start.call_sid)
    conversation = Conversation(business, caller, chat_model, bridge, desk)
    releasing = None if hold is None else asyncio.create_task(_release(conversation, hold))
    services.metrics.call_started()
    try:
        await conversation.run()
    finally:
        if releasing is not None:
            releasing.cancel()
        await bridge.close()
        if hold is not None and not hold.released:
            failures.append(NOTICE_NOT_CONFIRMED)
        conversation.hear_last(bridge.inputs_left())
        outcome = conversation.outcome(notes=failures)
        services.metrics.call_ended(outcome.consent.outcome.value, outcome.turn_metrics)
        identity = CallIdentity(
            start.call_sid, start.stream_sid, caller, started_at, started_monotonic
        )
        await _store(services, business, identity, outcome, bridge.end_reason)


async def _release(conversation: Conversation, hold: NoticeHold) -> None:
    """The caller's audio goes to the cloud transcriber only once they have heard the notice."""
    await conversation.notice_played.wait()
    hold.release()


class OnCallDesk:
    """The business's on-call phones, for this call: the transfer is asked for in the database,
    where the webhook Twilio calls when the stream closes finds it (in any process)."""

    def __init__(self, services: Services, business: Business, call_sid: str) -> None:
        self._services = services
        self._business = business
        self._call_sid = call_sid

    def open_now(self) -> bool:
        return self._business.on_call_at(self._services.clock())

    async def request(self) -> bool:
        def ask() -> None:
            with self._services.engine.begin() as conn:
                request_transfer(conn, self._call_sid, self._business.id, self._services.clock())

        try:
            await asyncio.to_thread(ask)
        except SQLAlchemyError:
            logger.exception("the transfer to the on-call phones could not be asked for")
            return False
        return True


async def _store(
    services: Services,
    business: Business,
    identity: CallIdentity,
    outcome: CallOutcome,
    end_reason: str,
) -> None:
    """Journal the call durably, then let the journal's applier store it (and queue its texts):
    a database that is down or locked delays the call's records and texts, and loses none."""
    call = FinishedCall(business, identity, outcome, end_reason, services.clock())
    try:
        await services.journal.append_async(
            CALL_ENDED, identity.call_sid, call_entry(call), opt_out=call.opt_out
        )
    except Exception:
        logger.exception("journaling call %s failed; storing it directly", identity.call_sid)
        await _store_directly(services, call)
        return
    services.journal_applier.wake()


async def _store_directly(services: Services, call: FinishedCall) -> None:
    """Store a call the journal could not take (a full or failed disk), as one attempt."""
    audio_store = AudioStore(services.settings.audio_dir)
    try:
        wrap_up = await asyncio.to_thread(
            store_call, services.engine, audio_store, call, services.owner_notices
        )
    except Exception:
        logger.exception("storing call %s failed; no text will be sent", call.identity.call_sid)
        return
    if wrap_up.texts_queued:
        services.dispatcher.wake()


async def _apologise(bridge: CallBridge) -> None:
    """Say sorry and hang up; nobody transcribes the caller (no cloud session is opened)."""
    bridge.listen()
    try:
        playback = await bridge.say(UNKNOWN_NUMBER_APOLOGY, interruptible=False)
        await playback.finished()
    except CallEnded:
        pass
    finally:
        await bridge.close()


async def _business(services: Services, parameters: dict[str, str]) -> Business | None:
    """The business the stream names: read without waiting for any writer, or as last read when
    the database does not answer (the call is taken all the same)."""
    return await services.businesses.by_id(parameters.get("business", ""))


def _caller(parameters: dict[str, str]) -> str | None:
    try:
        return to_e164(parameters.get("caller", ""))
    except InvalidPhoneNumber:
        return None
