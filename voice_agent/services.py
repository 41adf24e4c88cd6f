"""Wiring: the adapters chosen in the settings, built once per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from media_stream import EspeakSynthesizer, Synthesizer, Transcriber, WhisperTranscriber
from sms_sender import LocalSmsTransport, OutgoingSms, SendReceipt, SmsTransport
from voice_agent.chat import ChatModel
from voice_agent.clock import Clock, system_clock
from voice_agent.db import make_engine
from voice_agent.interviewer import ScriptedInterviewer
from voice_agent.metrics import CallMetrics
from voice_agent.settings import Settings
from voice_agent.signatures import TwilioSignatures
from voice_agent.text_dispatcher import TextDispatcher


@dataclass
class Services:
    """Everything a live call and the webhooks need."""

    settings: Settings
    engine: Engine
    signatures: TwilioSignatures
    transcriber: Transcriber
    synthesizer: Synthesizer
    chat_model: ChatModel
    sms_transport: SmsTransport
    dispatcher: TextDispatcher
    clock: Clock
    metrics: CallMetrics


def build_services(
    settings: Settings,
    *,
    on_text: Callable[[OutgoingSms, SendReceipt], None] | None = None,
    clock: Clock = system_clock,
) -> Services:
    """The embedded engines are the only choices in this version; each setting names its engine."""
    engine = make_engine(settings.database_url)
    transport = LocalSmsTransport(on_send=on_text)
    return Services(
        settings=settings,
        engine=engine,
        signatures=TwilioSignatures(
            settings.twilio_auth_token.get_secret_value(), settings.public_base_url
        ),
        transcriber=WhisperTranscriber(),
        synthesizer=EspeakSynthesizer(voice=settings.assistant_voice),
        chat_model=ScriptedInterviewer(),
        sms_transport=transport,
        dispatcher=TextDispatcher(engine, transport, clock),
        clock=clock,
        metrics=CallMetrics(),
    )
