"""Operator settings, read from the environment and ``.env`` (see ``.env.example``)."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class TranscriberChoice(StrEnum):
    EMBEDDED = "embedded"
    DEEPGRAM = "deepgram"


class SynthesizerChoice(StrEnum):
    """The assistant's voice. ``embedded`` (the default) and ``piper`` are the natural embedded
    voice, Piper, with espeak-ng speaking instead when it cannot load; ``espeak`` is espeak-ng
    alone."""

    EMBEDDED = "embedded"
    PIPER = "piper"
    ESPEAK = "espeak"
    DEEPGRAM = "deepgram"
    OPENAI = "openai"


class WhisperModelChoice(StrEnum):
    """The embedded ears (``bench/ears.py`` compares them on 210 caller lines): ``tiny.en``, the
    default, is the fastest and hears digits and yes/no best; ``base`` hears trade words and
    names a little better, digits and yes/no worse, and takes about twice as long a turn."""

    TINY_EN = "tiny.en"
    BASE = "base"


class TurnEndChoice(StrEnum):
    """``words`` (the default): a yes/no or whole phone number ends the turn after 0.25 s of
    silence, words that lead on wait 1.5 s, others 0.7 s; the speech is transcribed from 0.25 s
    of silence on, so the transcript is ready when the turn ends (bench/voice.py: turn latency
    p50 / p95 787 / 845 ms against 1,328 / 1,399 ms, false cut-offs 4 of 22 against 10);
    ``silence``: a fixed 0.7 s of silence ends every turn, which is transcribed only then."""

    WORDS = "words"
    SILENCE = "silence"


class VoiceActivityChoice(StrEnum):
    """``silero``: Silero VAD confirms each loud frame is speech (energy alone if it cannot
    load; turns end under babble, but the talk-over scenario call fails with it: not yet the
    default); ``energy`` (the default): the energy endpointer alone."""

    SILERO = "silero"
    ENERGY = "energy"


class ChatModelChoice(StrEnum):
    SCRIPTED = "scripted"
    OPENAI = "openai"


class SmsTransportChoice(StrEnum):
    LOCAL = "local"
    TWILIO = "twilio"


class LogFormatChoice(StrEnum):
    """``text``: one ``key=value`` line per record (the default); ``json``: one JSON object per
    line, for a log collector. Phone numbers are masked in both."""

    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    """Everything an operator can set; defaults run on a laptop with no keys and no network."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./var/receptionist.db"
    public_base_url: str = Field(
        default="http://127.0.0.1:8765",
        description="The base URL Twilio reaches us at; signatures are checked against it.",
    )
    twilio_account_sid: str = "AC00000000000000000000000000000000"
    twilio_auth_token: SecretStr = SecretStr("local-development-token")
    stream_credential_secret: SecretStr | None = Field(
        default=None,
        description=(
            "The key of the per-call media-stream credentials; unset, one is derived from "
            "TWILIO_AUTH_TOKEN (every process of a deployment must use the same)."
        ),
    )
    stream_credential_seconds: int = Field(
        default=300,
        ge=10,
        le=3600,
        description="How long the credential in a call's TwiML lets its media stream start.",
    )
    stream_start_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="A media stream that has not sent Twilio's start after this is closed.",
    )
    transcriber: TranscriberChoice = TranscriberChoice.EMBEDDED
    whisper_model: WhisperModelChoice = Field(
        default=WhisperModelChoice.TINY_EN,
        description="The embedded Whisper model (loaded offline from its PyPI package).",
    )
    whisper_beam_size: int = Field(
        default=1, ge=1, le=5, description="Whisper's beam size; 1 is greedy (the fastest)."
    )
    turn_end: TurnEndChoice = Field(
        default=TurnEndChoice.WORDS,
        description="How the embedded ears decide a caller has finished (media_stream.turn_end).",
    )
    voice_activity: VoiceActivityChoice = Field(
        default=VoiceActivityChoice.ENERGY,
        description="What tells the embedded ears a sound is speech (media_stream.voice_activity).",
    )
    synthesizer: SynthesizerChoice = SynthesizerChoice.EMBEDDED
    chat_model: ChatModelChoice = ChatModelChoice.SCRIPTED
    sms_transport: SmsTransportChoice = SmsTransportChoice.LOCAL
    assistant_voice: str = Field(
        default="en-us", description="The espeak-ng voice, when espeak-ng speaks for the assistant."
    )
    piper_model: Path | None = Field(
        default=None,
        description=(
            "A Piper voice's .onnx file, its .onnx.json config beside it; unset, the bundled "
            "en_US-joe-medium voice (checked against its pinned sha256)."
        ),
    )
    audio_dir: Path = Path("./var/audio")
    journal_dir: Path | None = Field(
        default=None,
        description=(
            "Where calls, inbound texts and status callbacks are journaled before the database "
            "has them; unset, beside a SQLite file (<file>.journal) or ./var/journal/<database>."
        ),
    )
    deepgram_api_key: SecretStr | None = None
    deepgram_base_url: str | None = None
    deepgram_voice: str = "aura-2-thalia-en"
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_tts_model: str = "gpt-4o-mini-tts"
    openai_tts_voice: str = "alloy"
    openai_timeout: float = Field(default=10.0, gt=0, le=120)
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    smtp_host: str | None = Field(
        default=None,
        description="The SMTP server owners' call summaries are e-mailed through; unset: none.",
    )
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_from: str = Field(
        default="receptionist@localhost", description="The From address of summary e-mails."
    )
    smtp_starttls: bool = Field(default=True, description="Upgrade the SMTP connection to TLS.")
    smtp_user: SecretStr | None = None
    smtp_password: SecretStr | None = None
    run_dispatcher: bool = Field(
        default=True,
        description=(
            "Web processes send due texts themselves; false (or `serve --no-dispatcher`) when "
            "`receptionist worker` processes send them."
        ),
    )
    drain_seconds: float = Field(
        default=600.0,
        ge=0,
        le=7200,
        description=(
            "On SIGTERM a web process answers /readyz with 503 and waits at most this long for "
            "its live calls to end before it stops."
        ),
    )
    log_format: LogFormatChoice = Field(
        default=LogFormatChoice.TEXT, description="Log lines as key=value text or JSON."
    )

    @field_validator("public_base_url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("PUBLIC_BASE_URL must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _keys_for_chosen_providers(self) -> Settings:
        uses_deepgram = (
            self.transcriber is TranscriberChoice.DEEPGRAM
            or self.synthesizer is SynthesizerChoice.DEEPGRAM
        )
        if uses_deepgram and self.deepgram_api_key is None:
            raise ValueError("TRANSCRIBER=deepgram or SYNTHESIZER=deepgram needs DEEPGRAM_API_KEY")
        uses_openai = (
            self.chat_model is ChatModelChoice.OPENAI
            or self.synthesizer is SynthesizerChoice.OPENAI
        )
        if uses_openai and self.openai_api_key is None:
            raise ValueError("CHAT_MODEL=openai or SYNTHESIZER=openai needs OPENAI_API_KEY")
        return self

    @cached_property
    def journal_path(self) -> Path:
        """The journal's directory: ``journal_dir``, or one of the database's own."""
        if self.journal_dir is not None:
            return self.journal_dir
        from sqlalchemy.engine import make_url  # not at import: commands that never journal

        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return Path(url.database).with_name(Path(url.database).name + ".journal")
        digest = hashlib.sha256(self.database_url.encode("utf-8")).hexdigest()[:16]
        return Path("./var/journal") / digest

    @cached_property
    def media_stream_url(self) -> str:
        """The ``wss://`` URL Twilio connects the media stream to (signed exactly as written)."""
        host = self.public_base_url.split("://", 1)[1]
        return f"wss://{host}/twilio/media-stream"
