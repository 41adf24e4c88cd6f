"""Deepgram Aura speech behind the `Synthesizer` port: μ-law 8 kHz straight from the REST API.

Each piece of the text (a sentence, with very short ones merged into the next) is one
``POST /v1/speak?model=…&encoding=mulaw&sample_rate=8000&container=none`` made through
``deepgram-sdk``'s streaming speak client, so a piece's audio is passed on chunk by chunk as it
arrives, before Deepgram has finished synthesizing it, and the first piece is short enough to
start speaking early. The audio is already what Twilio plays: no resampling, no transcoding.

Closing the generator aborts the HTTP request in flight. Any provider trouble — refused
connection, an HTTP error, a body that is not audio or holds none, a connection cut short, or
no data for ``stall_timeout`` seconds — raises `SynthesizerFailure`, the caller's cue to speak
with another engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator

import httpx
from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.speak.v1.audio.client import AsyncAudioClient

from media_stream.codec import SAMPLE_RATE
from media_stream.deepgram_transcriber import check_api_key, deepgram_environment
from media_stream.ports import SynthesizerFailure
from media_stream.sentences import split_sentences

DEFAULT_VOICE = "aura-2-thalia-en"
MAX_TEXT_CHARS = 2000  # Deepgram's limit for one request
_MIN_PIECE_CHARS = 24  # a shorter sentence is merged with the next (fewer, steadier requests)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_NOT_AUDIO = ("application/json", "text/")


def speech_pieces(text: str) -> list[str]:
    """``text`` cut at sentence ends, short sentences joined to the next; one request each."""
    pieces: list[str] = []
    pending = ""
    for sentence in split_sentences(text):
        pending = f"{pending} {sentence.strip()}".strip()
        if len(pending) >= _MIN_PIECE_CHARS:
            pieces.append(pending)
            pending = ""
    if pending:
        pieces.append(pending)
    return pieces


def _clean(text: str) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"text too long to speak: {len(text)} characters (max {MAX_TEXT_CHARS})")
    return _CONTROL_CHARACTERS.sub(" ", text.replace("\r", "\n"))


class DeepgramSynthesizer:
    """The cloud `Synthesizer`: Deepgram Aura voices as μ-law 8 kHz chunks, streamed."""

    name = "deepgram aura"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        voice: str = DEFAULT_VOICE,
        stall_timeout: float = 2.0,
        connect_timeout: float = 2.0,
    ) -> None:
        check_api_key(api_key)
        if not voice.strip() or not voice.isprintable():
            raise ValueError(f"invalid Deepgram voice {voice!r}")
        if not (stall_timeout > 0 and connect_timeout > 0):
            raise ValueError("timeouts must be positive")
        self.voice = voice
        self._api_key = api_key
        self._environment = deepgram_environment(base_url)
        self._timeout = httpx.Timeout(
            connect=connect_timeout, read=stall_timeout, write=stall_timeout, pool=connect_timeout
        )
        self._speak_api = self._new_speak_api()  # built now: it costs ~0.1 s the first time
        self._speak_api_loop: asyncio.AbstractEventLoop | None = None

    def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        """μ-law audio for ``text`` as it streams in; close the generator to cancel.

        Raises ValueError at once for text over ``MAX_TEXT_CHARS``; blank text yields nothing;
        provider trouble raises `SynthesizerFailure` during iteration.
        """
        return self._speak(speech_pieces(_clean(text)))

    async def _speak(self, pieces: list[str]) -> AsyncGenerator[bytes, None]:
        for piece in pieces:
            async with contextlib.aclosing(self._piece_audio(piece)) as audio:  # abort on close
                async for chunk in audio:
                    yield chunk

    async def _piece_audio(self, piece: str) -> AsyncGenerator[bytes, None]:
        heard_audio = False
        try:
            async with self._speak_client().with_raw_response.generate(
                text=piece,
                model=self.voice,
                encoding="mulaw",
                sample_rate=SAMPLE_RATE,
                container="none",
            ) as response:
                _check_content_type(response.headers.get("content-type", ""))
                async for chunk in response.data:
                    if chunk:
                        heard_audio = True
                        yield chunk
        except ApiError as error:
            raise SynthesizerFailure(
                f"Deepgram refused to speak: HTTP {error.status_code}"
            ) from error
        except (httpx.HTTPError, OSError) as error:
            raise SynthesizerFailure(f"Deepgram speech failed: {error!r}") from error
        if not heard_audio:
            raise SynthesizerFailure("Deepgram answered with no audio")

    def _speak_client(self) -> AsyncAudioClient:
        """The SDK's speak client for the running loop (pooled connections belong to one loop)."""
        loop = asyncio.get_running_loop()
        if self._speak_api_loop not in (None, loop):
            self._speak_api = self._new_speak_api()
        self._speak_api_loop = loop
        return self._speak_api

    def _new_speak_api(self) -> AsyncAudioClient:
        client = AsyncDeepgramClient(
            api_key=self._api_key,
            environment=self._environment,
            httpx_client=httpx.AsyncClient(timeout=self._timeout),
        )
        speak_api: AsyncAudioClient = client.speak.v1.audio
        return speak_api


def _check_content_type(content_type: str) -> None:
    if content_type.lower().startswith(_NOT_AUDIO):
        raise SynthesizerFailure(f"Deepgram answered with {content_type}, not audio")
