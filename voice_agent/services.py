"""Wiring: the adapters chosen in the settings, built once per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from media_stream import (
    DeepgramSynthesizer,
    DeepgramTranscriber,
    EspeakSynthesizer,
    OpenAITtsSynthesizer,
    Synthesizer,
    Transcriber,
    WhisperTranscriber,
)
from sms_sender import (
    LocalSmsTransport,
    OutgoingSms,
    SendReceipt,
    SmsTransport,
    TextDispatcher,
    TwilioSmsTransport,
)
from voice_agent.chat.interviewer import ScriptedInterviewer
from voice_agent.chat.openai_model import OpenAIChatModel
from voice_agent.chat.port import ChatModel
from voice_agent.clock import Clock, system_clock
from voice_agent.metrics import CallMetrics
from voice_agent.records.database import make_engine
from voice_agent.records.sms_policies import send_rules
from voice_agent.settings import (
    ChatModelChoice,
    Settings,
    SmsTransportChoice,
    SynthesizerChoice,
    TranscriberChoice,
)
from voice_agent.signatures import TwilioSignatures


@dataclass
class Services:
    """Everything a live call and the webhooks need.

    The ``embedded_*`` engines are the defaults and the fallback a call moves to when a cloud
    provider fails mid-call.
    """

    settings: Settings
    engine: Engine
    signatures: TwilioSignatures
    transcriber: Transcriber
    synthesizer: Synthesizer
    chat_model: ChatModel
    embedded_transcriber: WhisperTranscriber
    embedded_synthesizer: EspeakSynthesizer
    embedded_chat_model: ScriptedInterviewer
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
    """Build the configured adapters; every provider without a key stays embedded."""
    engine = make_engine(settings.database_url)
    transport = _sms_transport(settings, on_text)
    whisper = WhisperTranscriber()
    espeak = EspeakSynthesizer(voice=settings.assistant_voice)
    interviewer = ScriptedInterviewer()
    return Services(
        settings=settings,
        engine=engine,
        signatures=TwilioSignatures(
            settings.twilio_auth_token.get_secret_value(), settings.public_base_url
        ),
        transcriber=_transcriber(settings, whisper),
        synthesizer=_synthesizer(settings, espeak),
        chat_model=_chat_model(settings, interviewer),
        embedded_transcriber=whisper,
        embedded_synthesizer=espeak,
        embedded_chat_model=interviewer,
        sms_transport=transport,
        dispatcher=TextDispatcher(engine, transport, clock, send_rules()),
        clock=clock,
        metrics=CallMetrics(),
    )


def _transcriber(settings: Settings, embedded: WhisperTranscriber) -> Transcriber:
    if settings.transcriber is TranscriberChoice.DEEPGRAM and settings.deepgram_api_key:
        return DeepgramTranscriber(
            settings.deepgram_api_key.get_secret_value(), base_url=settings.deepgram_base_url
        )
    return embedded


def _synthesizer(settings: Settings, embedded: EspeakSynthesizer) -> Synthesizer:
    if settings.synthesizer is SynthesizerChoice.DEEPGRAM and settings.deepgram_api_key:
        return DeepgramSynthesizer(
            settings.deepgram_api_key.get_secret_value(),
            base_url=settings.deepgram_base_url,
            voice=settings.deepgram_voice,
        )
    if settings.synthesizer is SynthesizerChoice.OPENAI and settings.openai_api_key:
        return OpenAITtsSynthesizer(
            settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            model=settings.openai_tts_model,
            voice=settings.openai_tts_voice,
            timeout=settings.openai_timeout,
        )
    return embedded


def _chat_model(settings: Settings, embedded: ScriptedInterviewer) -> ChatModel:
    if settings.chat_model is ChatModelChoice.OPENAI and settings.openai_api_key:
        return OpenAIChatModel(
            settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            timeout=settings.openai_timeout,
        )
    return embedded


def _sms_transport(
    settings: Settings, on_text: Callable[[OutgoingSms, SendReceipt], None] | None
) -> SmsTransport:
    if settings.sms_transport is SmsTransportChoice.TWILIO:
        return TwilioSmsTransport(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            f"{settings.public_base_url}/twilio/sms/status",
        )
    return LocalSmsTransport(on_send=on_text)
