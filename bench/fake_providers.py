"""Speech and language engines with fixed latencies, for benchmarking our own code around them.

Each fake honours a port (``media_stream.ports`` or ``voice_agent.chat.port``) and takes a known,
fixed time, so whatever a benchmark measures beyond those times is ours:

- `FakeTranscriber`: each session runs the real `Endpointer` on the caller's audio, emits
  `SpeechStarted` at each onset, and ``transcription`` seconds after each end of speech an
  `Utterance` whose text is the next canned transcript of the session (the call's script).
- `FakeSynthesizer`: the text's μ-law audio, rendered once per distinct text and cached, is
  streamed ``first_byte`` seconds after the request, then chunk by chunk at ``stream_speed``
  times real time (default 2: cloud voices stream faster than real time; at 1.0 a voice
  only just keeps up).
- `DelayedChatModel`: any chat model (the scripted interviewer) answering after a fixed delay.

`with_fake_engines` puts them into a built `Services`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import math
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from media_stream import (
    SAMPLE_RATE,
    AnswerKind,
    SpeechEvent,
    SpeechStarted,
    Utterance,
    Word,
    ulaw_decode,
)
from media_stream.endpointing import Endpointer, SpeechBegan, SpeechEnded
from voice_agent.chat.port import AgentReply, CallContext, CallerMessage, ChatModel, WholeReply
from voice_agent.services import Services

TRANSCRIBER_NAME = "fake-transcriber"
SYNTHESIZER_NAME = "fake-synthesizer"
WORD_CONFIDENCE = 0.99


@dataclass(frozen=True)
class FakeLatencies:
    """The fixed times the fakes take, in seconds (defaults: typical cloud figures)."""

    endpointing_silence: float = 0.7  # silence that ends an utterance (the Endpointer's)
    transcription: float = 0.15  # end of speech detected → final transcript
    agent: float = 0.2  # caller's words → the assistant's reply
    first_byte: float = 0.08  # text → first audio from the voice
    stream_speed: float = 2.0  # audio after the first byte streams this many times real time
    chunk_seconds: float = 0.1  # audio per streamed chunk

    def __post_init__(self) -> None:
        delays = (self.transcription, self.agent, self.first_byte)
        if not all(math.isfinite(d) and 0 <= d <= 10 for d in delays):
            raise ValueError("fixed delays must be between 0 and 10 s")
        if not 0 < self.stream_speed <= 1000:
            raise ValueError(f"stream_speed must be in (0, 1000], got {self.stream_speed}")
        if not 0.02 <= self.chunk_seconds <= 5:
            raise ValueError(f"chunk_seconds must be 0.02–5 s, got {self.chunk_seconds}")


class FakeTranscriptionSession:
    """One call's fake recognition: real endpointing, canned transcripts after a fixed delay."""

    def __init__(self, transcripts: Sequence[str], endpointer: Endpointer, delay: float) -> None:
        self._transcripts = iter(transcripts)
        self._endpointer = endpointer
        self._delay = delay
        self._events: asyncio.Queue[SpeechEvent | None] = asyncio.Queue()
        self._pending: asyncio.Queue[tuple[SpeechEnded, float] | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    def send_audio(self, ulaw: bytes, at: float) -> None:
        """Feed μ-law audio starting at ``at`` stream seconds (ignored once closed)."""
        if self._closed:
            return
        for event in self._endpointer.push(ulaw_decode(ulaw), at):
            self._dispatch(event)

    def _dispatch(self, event: SpeechBegan | SpeechEnded) -> None:
        if isinstance(event, SpeechBegan):
            self._events.put_nowait(SpeechStarted(event.at))
            return
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._transcribe_in_order())
        self._pending.put_nowait((event, time.monotonic()))

    async def _transcribe_in_order(self) -> None:
        while (pending := await self._pending.get()) is not None:
            speech, endpointed_at = pending
            await sleep_until(endpointed_at + self._delay)
            self._events.put_nowait(self._utterance(speech, endpointed_at))

    def _utterance(self, speech: SpeechEnded, endpointed_at: float) -> Utterance:
        text = next(self._transcripts, "")
        words = spread_words(text, speech.start, speech.end)
        return Utterance(
            text=text,
            start=speech.start,
            end=speech.end,
            confidence=WORD_CONFIDENCE if words else 0.0,
            engine=TRANSCRIBER_NAME,
            words=words,
            endpointed_at=endpointed_at,
        )

    async def events(self) -> AsyncIterator[SpeechEvent]:
        """`SpeechStarted` at each onset and an `Utterance` per stretch of speech, in order."""
        while (event := await self._events.get()) is not None:
            yield event

    def expect(self, answer: AnswerKind) -> None:
        """The fake hears every answer alike."""

    async def finalize(self) -> None:
        """End the utterance in progress now, as if its closing silence had been heard."""
        if not self._closed:
            self._flush()

    def _flush(self) -> None:
        for ended in self._endpointer.flush():
            self._dispatch(ended)

    async def close(self) -> None:
        """Close any open utterance, deliver what is pending, then end ``events``."""
        if self._closed:
            return
        self._closed = True
        try:
            self._flush()
            if self._worker is not None:
                self._pending.put_nowait(None)
                await self._worker
        finally:
            self._events.put_nowait(None)


async def sleep_until(moment: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``moment`` (at once if it has)."""
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


def spread_words(text: str, start: float, end: float) -> tuple[Word, ...]:
    """The words of ``text`` spread evenly over ``start``–``end`` (stream seconds)."""
    tokens = text.split()
    if not tokens:
        return ()
    step = max(0.0, end - start) / len(tokens)
    return tuple(
        Word(token, start + i * step, start + (i + 1) * step, WORD_CONFIDENCE)
        for i, token in enumerate(tokens)
    )


class FakeTranscriber:
    """A `Transcriber` whose sessions hear the call's script, one line per utterance."""

    name = TRANSCRIBER_NAME

    def __init__(
        self, transcripts: Sequence[str], *, delay: float, endpointing_silence: float
    ) -> None:
        self._transcripts = tuple(transcripts)
        self._delay = delay
        Endpointer(silence_to_end=endpointing_silence)  # fail now on a bad setting
        self._endpointing_silence = endpointing_silence

    def load(self) -> None:
        """Nothing to load."""

    def open_session(self, keyterms: Sequence[str] = ()) -> FakeTranscriptionSession:
        """A session hearing the script; ``keyterms`` change nothing for canned transcripts."""
        endpointer = Endpointer(silence_to_end=self._endpointing_silence)
        return FakeTranscriptionSession(self._transcripts, endpointer, self._delay)


class SpeechCache:
    """μ-law audio per distinct text, rendered once (in a worker thread) however many ask."""

    def __init__(self, render: Callable[[str], bytes]) -> None:
        self._render = render
        self._lock = threading.Lock()
        self._rendered: dict[str, concurrent.futures.Future[bytes]] = {}

    @property
    def texts_rendered(self) -> int:
        return len(self._rendered)

    async def audio(self, text: str) -> bytes:
        with self._lock:
            future = self._rendered.get(text)
            owner = future is None
            if future is None:
                future = self._rendered[text] = concurrent.futures.Future()
        if owner:
            try:
                future.set_result(await asyncio.to_thread(self._render, text))
            except Exception as error:
                with self._lock:
                    del self._rendered[text]  # let a later request try again
                future.set_exception(error)
        return await asyncio.wrap_future(future)


class FakeSynthesizer:
    """A streaming `Synthesizer` with a fixed first-byte delay and a fixed streaming speed."""

    name = SYNTHESIZER_NAME

    def __init__(self, speech: SpeechCache, latencies: FakeLatencies) -> None:
        self._speech = speech
        self._first_byte = latencies.first_byte
        self._speed = latencies.stream_speed
        self._chunk_bytes = round(latencies.chunk_seconds * SAMPLE_RATE)

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        """The cached audio of ``text`` in chunks, each no earlier than a voice would send it."""
        requested_at = time.monotonic()
        audio = await self._speech.audio(text)
        for offset in range(0, len(audio), self._chunk_bytes):
            await sleep_until(requested_at + self._first_byte + offset / SAMPLE_RATE / self._speed)
            yield audio[offset : offset + self._chunk_bytes]


class DelayedChatModel:
    """A `ChatModel` that answers like ``inner`` but only after ``delay`` seconds."""

    def __init__(self, inner: ChatModel, delay: float) -> None:
        self._inner = inner
        self._delay = delay
        self.name = inner.name

    async def reply(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> AgentReply:
        await asyncio.sleep(self._delay)
        return await self._inner.reply(context, message, caller_said)

    def reply_stream(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> WholeReply:
        """The delayed reply as one piece: the delay stands for the model's whole answer."""
        return WholeReply(self.reply(context, message, caller_said))


def with_fake_engines(
    services: Services, latencies: FakeLatencies, transcripts: Sequence[str]
) -> Services:
    """``services`` with the fakes in place of the configured engines.

    The voice renders with the embedded espeak-ng voice; the agent is the embedded scripted
    interviewer, delayed.
    """
    speech = SpeechCache(services.embedded_synthesizer.render_ulaw)
    return dataclasses.replace(
        services,
        transcriber=FakeTranscriber(
            transcripts,
            delay=latencies.transcription,
            endpointing_silence=latencies.endpointing_silence,
        ),
        synthesizer=FakeSynthesizer(speech, latencies),
        chat_model=DelayedChatModel(services.embedded_chat_model, latencies.agent),
    )
