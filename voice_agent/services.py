"""Wiring: the adapters chosen in the settings, built once per process."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from consent_ledger import AudioStore
from dashboard.sign_in_links import CallLinks
from media_stream import (
    CachedSynthesizer,
    DeepgramSynthesizer,
    DeepgramTranscriber,
    EspeakSynthesizer,
    OpenAITtsSynthesizer,
    PiperSynthesizer,
    PiperVoiceError,
    PromptAudio,
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
    announce_texts_queued,
)
from voice_agent.call.journal_entry import CALL_ENDED, apply_call_entry
from voice_agent.call.owner_notices import OwnerNotices
from voice_agent.call.summary_email import SmtpServer, SummaryMailer
from voice_agent.chat.interviewer import ScriptedInterviewer
from voice_agent.chat.openai_model import OpenAIChatModel
from voice_agent.chat.port import ChatModel
from voice_agent.clock import Clock, system_clock
from voice_agent.journal.applier import Backoff, EntryHandler, JournalApplier
from voice_agent.journal.businesses import BusinessDirectory
from voice_agent.journal.call_progress import CALL_PROGRESS, apply_progress
from voice_agent.journal.store import Journal, JournalEntry
from voice_agent.journal.texts import DELIVERY_STATUS, INBOUND_TEXT, apply_inbound, apply_status
from voice_agent.metrics import CallMetrics
from voice_agent.records.database import make_engine
from voice_agent.records.sms_policies import send_rules
from voice_agent.settings import (
    ChatModelChoice,
    Settings,
    SmsTransportChoice,
    SynthesizerChoice,
    TranscriberChoice,
    TurnEndChoice,
    VoiceActivityChoice,
)
from voice_agent.signatures import TwilioSignatures

logger = logging.getLogger(__name__)

EmbeddedVoice = PiperSynthesizer | EspeakSynthesizer


@dataclass
class Services:
    """Everything a live call and the webhooks need.

    The ``embedded_*`` engines are the fallback a call moves to when its configured provider
    fails mid-call: the embedded transcriber and brain, and the embedded voice that is not the
    configured one (espeak-ng behind Piper; Piper, else espeak-ng, behind a cloud voice). The
    configured ``synthesizer`` renders fixed prompts once and replays them from
    ``prompt_audio``. What a call, an inbound text or a status callback produces goes to
    the ``journal`` first; the ``journal_applier`` stores it in the database. ``businesses``
    answers the paths that only read, without waiting for a writer.
    """

    settings: Settings
    engine: Engine
    signatures: TwilioSignatures
    transcriber: Transcriber
    synthesizer: Synthesizer
    chat_model: ChatModel
    embedded_transcriber: WhisperTranscriber
    embedded_synthesizer: EmbeddedVoice
    prompt_audio: PromptAudio
    embedded_chat_model: ScriptedInterviewer
    sms_transport: SmsTransport
    dispatcher: TextDispatcher
    clock: Clock
    metrics: CallMetrics
    journal: Journal
    journal_applier: JournalApplier
    businesses: BusinessDirectory
    owner_notices: OwnerNotices = field(default_factory=OwnerNotices)


def build_services(
    settings: Settings,
    *,
    on_text: Callable[[OutgoingSms, SendReceipt], None] | None = None,
    clock: Clock = system_clock,
    journal_backoff: Backoff | None = None,
) -> Services:
    """Build the configured adapters; every provider without a key stays embedded."""
    engine = make_engine(settings.database_url)
    transport = _sms_transport(settings, on_text)
    journal = Journal(settings.journal_path)
    dispatcher = TextDispatcher(
        engine, transport, clock, send_rules(), pending_opt_outs=journal.pending_opt_outs
    )
    whisper = WhisperTranscriber(
        model=settings.whisper_model.value,
        beam_size=settings.whisper_beam_size,
        turn_end=settings.turn_end is TurnEndChoice.WORDS,
        voice_activity=settings.voice_activity is VoiceActivityChoice.SILERO,
    )
    espeak = EspeakSynthesizer(voice=settings.assistant_voice)
    piper = _piper_voice(settings)
    voice = _synthesizer(settings, piper or espeak)
    prompt_audio = PromptAudio()
    interviewer = ScriptedInterviewer()
    notices = owner_notices(settings)
    return Services(
        settings=settings,
        engine=engine,
        signatures=TwilioSignatures(
            settings.twilio_auth_token.get_secret_value(), settings.public_base_url
        ),
        transcriber=_transcriber(settings, whisper),
        synthesizer=CachedSynthesizer(voice, prompt_audio, _voice_name(voice, settings)),
        chat_model=_chat_model(settings, interviewer),
        embedded_transcriber=whisper,
        embedded_synthesizer=espeak if voice is piper else piper or espeak,
        prompt_audio=prompt_audio,
        embedded_chat_model=interviewer,
        sms_transport=transport,
        dispatcher=dispatcher,
        clock=clock,
        metrics=CallMetrics(),
        journal=journal,
        journal_applier=journal_applier(
            journal,
            engine,
            AudioStore(settings.audio_dir),
            dispatcher.wake,
            journal_backoff,
            notices,
        ),
        businesses=BusinessDirectory(make_engine(settings.database_url, read_only=True)),
        owner_notices=notices,
    )


def owner_notices(settings: Settings) -> OwnerNotices:
    """Sign-in links under the public base URL, and e-mail summaries when SMTP is set up."""
    mailer = None
    if settings.smtp_host is not None:
        mailer = SummaryMailer(
            SmtpServer(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                starttls=settings.smtp_starttls,
                user=settings.smtp_user,
                password=settings.smtp_password,
            )
        )
    return OwnerNotices(CallLinks(settings.public_base_url), mailer)


def journal_applier(
    journal: Journal,
    engine: Engine,
    audio_store: AudioStore,
    wake_dispatcher: Callable[[], None],
    backoff: Backoff | None = None,
    notices: OwnerNotices | None = None,
) -> JournalApplier:
    """The applier of ``journal`` to the database (calls, inbound texts, delivery statuses),
    which calls ``wake_dispatcher`` when it queued texts; ``notices`` add the owner's sign-in
    link and e-mail to each call's summary."""
    handlers: dict[str, EntryHandler] = {
        CALL_ENDED: functools.partial(apply_call_entry, engine, audio_store, notices=notices),
        INBOUND_TEXT: functools.partial(apply_inbound, engine),
        DELIVERY_STATUS: functools.partial(apply_status, engine),
        CALL_PROGRESS: functools.partial(apply_progress, engine),
    }
    return JournalApplier(
        journal,
        {kind: _announcing(handler, engine) for kind, handler in handlers.items()},
        backoff=backoff,
        on_texts_queued=wake_dispatcher,
    )


def _announcing(handler: EntryHandler, engine: Engine) -> EntryHandler:
    """``handler``, announcing to the text workers of other processes the texts it queued."""

    def apply(entry: JournalEntry) -> bool:
        queued = handler(entry)
        if queued:
            announce_texts_queued(engine)
        return queued

    return apply


def _transcriber(settings: Settings, embedded: WhisperTranscriber) -> Transcriber:
    if settings.transcriber is TranscriberChoice.DEEPGRAM and settings.deepgram_api_key:
        return DeepgramTranscriber(
            settings.deepgram_api_key.get_secret_value(), base_url=settings.deepgram_base_url
        )
    return embedded


def _piper_voice(settings: Settings) -> PiperSynthesizer | None:
    """The Piper voice, loaded now, unless espeak-ng was chosen or the voice cannot load (then
    espeak-ng speaks, and the log says why)."""
    if settings.synthesizer is SynthesizerChoice.ESPEAK:
        return None
    piper = PiperSynthesizer(settings.piper_model)
    try:
        piper.load()
    except PiperVoiceError as error:
        logger.warning("the Piper voice cannot load, espeak-ng speaks instead: %s", error)
        return None
    return piper


def _voice_name(voice: Synthesizer, settings: Settings) -> str:
    """What ``voice`` sounds like (engine, voice, pace): the key of its rendered prompts."""
    if isinstance(voice, PiperSynthesizer):
        return f"{voice.name}/{voice.voice}"
    if isinstance(voice, EspeakSynthesizer):
        return f"{voice.name}/{voice.voice}/{voice.words_per_minute}"
    if isinstance(voice, DeepgramSynthesizer):
        return f"{voice.name}/{settings.deepgram_voice}"
    return voice.name  # OpenAI's names its model and voice


def _synthesizer(settings: Settings, embedded: EmbeddedVoice) -> Synthesizer:
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
