"""Deepgram live transcription (nova-3 over the streaming websocket) behind the `Transcriber` port.

One websocket per call, opened through ``deepgram-sdk`` 7.x with μ-law 8 kHz audio, interim
results, endpointing, utterance-end detection, VAD events, smart formatting and keyterms.
``send_audio`` only queues: a sender task ships the audio (coalescing queued frames), sends a
``KeepAlive`` when nothing was sent for a while, and ``Finalize``/``CloseStream`` in order
with the audio. A receiver task turns Deepgram's messages into speech events:

* `SpeechStarted` once per onset, from Deepgram's VAD event or from the first words of an
  utterance (interim or final), whichever comes first; the two count as one onset when
  within ``utterance_end_ms`` of each other. Interim results therefore drive barge-in even
  when VAD is quiet, and VAD alone (a sound with no words yet) drives it too.
* One `Utterance` per finished utterance: final results accumulate until one is marked
  ``speech_final`` (the endpointer), comes ``from_finalize`` (our `DeepgramSession.finalize`)
  or an ``UtteranceEnd`` arrives. An ``UtteranceEnd`` while the last words are still interim
  is reported as `SpeechStopped` instead, and the next final result ends the utterance, so
  those words are not cut off into an utterance of their own (``finalize`` asks Deepgram for
  that final at once). Words keep their timings and confidences (punctuated form
  preferred); confidence is the mean word confidence; start and end are the first word's
  start and the last word's end. Unlike Whisper's, no empty utterance is ever reported.

Deepgram's times are seconds of audio it has received. They are mapped onto the stream clock
from the ``at`` of the audio sent: contiguous audio keeps the first ``at``'s offset, and a
jump in ``at`` (a gap in the caller's audio) starts a new offset from there.

A connect failure (refused, HTTP error, or not open within ``connect_timeout``), a websocket
error, an unexpected close, or no message at all while ``stall_timeout`` seconds (of time and
of audio) were sent ends the session with `TranscriberFailure`, which ``events()`` raises
after the events it already had (the utterance in progress included): the caller's cue to
move the call to another engine. Malformed or unknown messages are logged and skipped.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import enum
import functools
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from deepgram.core.api_error import ApiError
from deepgram.listen.v1 import (
    ListenV1Error,
    ListenV1Metadata,
    ListenV1Results,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)

from media_stream.codec import SAMPLE_RATE
from media_stream.ports import (
    AnswerKind,
    SpeechEvent,
    SpeechStarted,
    SpeechStopped,
    TranscriberFailure,
    Utterance,
    Word,
)

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "nova-3"
_CLOCK_GAP_TOLERANCE = 0.005  # seconds: a larger jump in ``at`` is a gap in the audio
MAX_MEDIA_BYTES = 4000  # at most 0.5 s of audio per websocket message, however much is queued
MAX_KEYTERMS = 100  # Deepgram's limit per stream


@dataclass(frozen=True)
class StreamTiming:
    """The session's clocks, in seconds (tests shorten them)."""

    keepalive_interval: float = 5.0  # send KeepAlive after this long without sending anything
    stall_timeout: float = 2.0  # fail after this long sending audio with no message back
    connect_timeout: float = 5.0  # fail when the websocket is not open by then
    close_timeout: float = 1.5  # how long ``close`` waits for the last results

    def __post_init__(self) -> None:
        for name in ("keepalive_interval", "stall_timeout", "connect_timeout", "close_timeout"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value}")


def deepgram_environment(base_url: str | None) -> DeepgramClientEnvironment:
    """The SDK environment for ``base_url`` (``http[s]://host[:port]``); Deepgram's when None.

    The listen websocket goes to the same host with ``ws[s]://``.
    """
    if base_url is None:
        return DeepgramClientEnvironment.PRODUCTION
    http = base_url.rstrip("/")
    parts = urlsplit(http)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"Deepgram base URL must be http[s]://host[:port], got {base_url!r}")
    websocket = "ws" + http.removeprefix("http")
    return DeepgramClientEnvironment(
        base=http, production=websocket, agent=websocket, agent_rest=http
    )


def check_api_key(api_key: str) -> None:
    """Raise ValueError unless ``api_key`` could be a Deepgram key: one printable token."""
    if not api_key or not api_key.isprintable() or any(c.isspace() for c in api_key):
        raise ValueError("the Deepgram API key must be a non-empty token without spaces")


class DeepgramTranscriber:
    """The cloud `Transcriber`: Deepgram live transcription, one websocket per call."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        endpointing_ms: int = 300,
        utterance_end_ms: int = 1000,
        keyterms: Sequence[str] = (),
        timing: StreamTiming | None = None,
    ) -> None:
        if not 10 <= endpointing_ms <= 10_000:
            raise ValueError(f"endpointing_ms must be 10–10000, got {endpointing_ms}")
        if not 1000 <= utterance_end_ms <= 10_000:  # Deepgram's minimum is 1000
            raise ValueError(f"utterance_end_ms must be 1000–10000, got {utterance_end_ms}")
        if not model.strip() or not model.isprintable():
            raise ValueError(f"invalid Deepgram model name {model!r}")
        self.name = f"deepgram {model}"
        self._api_key = api_key
        self._model = model
        self._endpointing_ms = endpointing_ms
        self._utterance_end_ms = utterance_end_ms
        self._keyterms = _distinct_terms(keyterms)
        self._timing = timing or StreamTiming()
        self._environment = deepgram_environment(base_url)
        # Built now, not on the first call: the SDK takes ~0.1 s to set itself up.
        self._client = AsyncDeepgramClient(api_key=api_key, environment=self._environment)

    def load(self) -> None:
        """Check the key (ValueError when unusable); nothing to download. Idempotent."""
        check_api_key(self._api_key)

    def open_session(self, keyterms: Sequence[str] = ()) -> DeepgramSession:
        """Start connecting at once; call from the event loop.

        ``keyterms`` (this call's business name, services …) are added to the transcriber's.
        """
        terms = _distinct_terms([*self._keyterms, *keyterms])
        return DeepgramSession(
            functools.partial(self._connect, terms),
            self.name,
            self._timing,
            onset_window=self._utterance_end_ms / 1000,
        )

    def _connect(self, keyterms: list[str]) -> contextlib.AbstractAsyncContextManager[Any]:
        connection: contextlib.AbstractAsyncContextManager[Any] = self._client.listen.v1.connect(
            model=self._model,
            encoding="mulaw",
            sample_rate=SAMPLE_RATE,
            channels=1,
            interim_results="true",
            endpointing=self._endpointing_ms,
            utterance_end_ms=self._utterance_end_ms,
            vad_events="true",
            smart_format="true",
            keyterm=keyterms or None,
        )
        return connection


def _distinct_terms(terms: Sequence[str]) -> list[str]:
    distinct = list(dict.fromkeys(t.strip() for t in terms if t.strip()))
    if len(distinct) > MAX_KEYTERMS:
        logger.warning("%d keyterms; Deepgram takes the first %d", len(distinct), MAX_KEYTERMS)
    return distinct[:MAX_KEYTERMS]


class _StreamClock:
    """Maps seconds of audio sent to Deepgram onto the stream clock."""

    def __init__(self) -> None:
        self._offsets: list[float] = []  # Deepgram seconds where a stretch of audio starts …
        self._starts: list[float] = []  # … and that stretch's stream time
        self._sent = 0.0

    def note_audio(self, seconds: float, at: float) -> None:
        if not self._offsets or abs(self.to_stream(self._sent) - at) > _CLOCK_GAP_TOLERANCE:
            self._offsets.append(self._sent)
            self._starts.append(at)
        self._sent += seconds

    def to_stream(self, deepgram_seconds: float) -> float:
        if not self._offsets:
            return deepgram_seconds
        index = max(bisect.bisect_right(self._offsets, deepgram_seconds) - 1, 0)
        return self._starts[index] + deepgram_seconds - self._offsets[index]


@dataclass(frozen=True)
class _Transcript:
    """One ``Results`` message, checked and on the stream clock."""

    text: str
    words: tuple[Word, ...]
    is_final: bool
    ends_utterance: bool  # final and marked speech_final or from_finalize


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"expected non-negative finite seconds, got {value!r}")
    return float(value)


def _word(item: Any, clock: _StreamClock) -> Word:
    start, end = _seconds(item.start), _seconds(item.end)
    confidence = item.confidence
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise ValueError(f"expected a confidence, got {confidence!r}")
    if not 0.0 <= confidence <= 1.0 or end < start:
        raise ValueError(f"word {item.word!r} has impossible times or confidence")
    punctuated = item.punctuated_word
    text = punctuated if isinstance(punctuated, str) and punctuated.strip() else item.word
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a word without text")
    return Word(text.strip(), clock.to_stream(start), clock.to_stream(end), float(confidence))


def _transcript(message: ListenV1Results, clock: _StreamClock) -> _Transcript:
    alternatives = message.channel.alternatives
    if not alternatives:
        return _Transcript("", (), message.is_final is True, False)
    best = alternatives[0]
    if not isinstance(best.transcript, str):
        raise ValueError(f"expected a transcript, got {best.transcript!r}")
    words = tuple(_word(item, clock) for item in best.words or ())
    is_final = message.is_final is True
    ends = is_final and (message.speech_final is True or message.from_finalize is True)
    return _Transcript(best.transcript.strip(), words, is_final, ends)


class _UtteranceAssembler:
    """Turns checked transcripts, VAD onsets and utterance ends into speech events.

    An onset is reported once, by whichever comes first: Deepgram's VAD or the utterance's
    first words. A VAD onset more than ``onset_window`` from the words is a different
    sound (noise that never became words), so both are reported then.
    """

    def __init__(self, engine: str, onset_window: float) -> None:
        self._engine = engine
        self._onset_window = onset_window
        self._texts: list[str] = []
        self._words: list[Word] = []
        self._words_onset: float | None = None  # where this utterance's first words began
        self._vad_onset: float | None = None
        self._previous_end = -math.inf
        self._interim_end: float | None = None  # end of interim words no final covers yet
        self._stopped = False  # speech stopped before its final: the next final ends it

    def vad_onset(self, at: float) -> list[SpeechEvent]:
        words = self._words_onset
        if words is not None and abs(at - words) <= self._onset_window:
            return []  # the words already said so
        self._vad_onset = at
        return [SpeechStarted(at)]

    def heard(self, transcript: _Transcript) -> list[SpeechEvent]:
        events: list[SpeechEvent] = []
        if transcript.words and self._words_onset is None:
            self._words_onset = transcript.words[0].start
            if not self._vad_reported(self._words_onset):
                events.append(SpeechStarted(self._words_onset))
        if not transcript.is_final:
            if transcript.words:  # only a final settles them, even if a later interim is empty
                self._interim_end = transcript.words[-1].end
            return events
        self._interim_end = None
        if transcript.words:
            self._texts.append(transcript.text)
            self._words.extend(transcript.words)
        elif not self._words:
            self._words_onset = None  # the interim words were withdrawn
        if transcript.ends_utterance or self._stopped:
            events.extend(self.finish_utterance())
        return events

    def utterance_end(self) -> list[SpeechEvent]:
        """Deepgram heard the words stop: the utterance is over, unless its last words are
        still interim; then the caller stopped, and the final that settles them ends it."""
        if self._interim_end is None:
            return self.finish_utterance()
        self._stopped = True
        return [SpeechStopped(self._interim_end)]

    def finish_utterance(self) -> list[SpeechEvent]:
        """The utterance heard so far, if any words were final; starts the next one."""
        self._words_onset = None
        self._stopped = False
        if not self._words:
            return []
        words = tuple(self._words)
        text = " ".join(t for t in self._texts if t) or " ".join(w.text for w in words)
        self._texts.clear()
        self._words.clear()
        self._previous_end = words[-1].end
        confidence = sum(w.confidence for w in words) / len(words)
        return [Utterance(text, words[0].start, words[-1].end, confidence, self._engine, words)]

    def _vad_reported(self, onset: float) -> bool:
        vad = self._vad_onset
        return (
            vad is not None and vad >= self._previous_end and abs(onset - vad) <= self._onset_window
        )


class _Control(enum.Enum):
    FINALIZE = "Finalize"
    CLOSE_STREAM = "CloseStream"


class DeepgramSession:
    """One call's Deepgram websocket: a `TranscriptionSession`.

    Build it through `DeepgramTranscriber.open_session` inside the event loop; it connects at
    once, and audio sent meanwhile is held and sent when the websocket opens.
    """

    def __init__(
        self,
        connect: Callable[[], contextlib.AbstractAsyncContextManager[Any]],
        engine: str,
        timing: StreamTiming,
        *,
        onset_window: float,
    ) -> None:
        self._connect = connect
        self._timing = timing
        self._loop = asyncio.get_running_loop()
        self._clock = _StreamClock()
        self._assembler = _UtteranceAssembler(engine, onset_window)
        self._events: asyncio.Queue[SpeechEvent | TranscriberFailure | None] = asyncio.Queue()
        self._outbox: deque[bytes | _Control] = deque()
        self._outbox_ready = asyncio.Event()
        self._awaiting_reply_since: float | None = None  # loop time of the first unanswered audio
        self._unanswered_audio = 0.0  # seconds of audio sent since Deepgram last said anything
        self._closing = False
        self._ended = False
        self._runner = self._loop.create_task(self._run())

    def send_audio(self, ulaw: bytes, at: float) -> None:
        """Queue μ-law audio starting at ``at`` stream seconds; never blocks."""
        if self._ended or self._closing:
            logger.debug("audio at %.3f s after the Deepgram session ended; dropped", at)
            return
        if not ulaw:
            return
        self._clock.note_audio(len(ulaw) / SAMPLE_RATE, at)
        for offset in range(0, len(ulaw), MAX_MEDIA_BYTES):
            self._post(ulaw[offset : offset + MAX_MEDIA_BYTES])

    def expect(self, answer: AnswerKind) -> None:
        """Nothing: Deepgram hears every answer with the call's keyterms, given at connect."""

    async def finalize(self) -> None:
        """Ask Deepgram to finish the utterance in progress now (after the audio sent so far).

        The conversation calls this when the consent answer ends, so the answer arrives as
        an `Utterance` without waiting for endpointing. Returns once queued.
        """
        if not (self._ended or self._closing):
            self._post(_Control.FINALIZE)

    async def events(self) -> AsyncIterator[SpeechEvent]:
        """Speech events in order; ends after ``close``, or raises `TranscriberFailure`."""
        while True:
            item = await self._events.get()
            if item is None or isinstance(item, TranscriberFailure):
                self._events.put_nowait(item)  # a later ``events()`` ends the same way
                if item is None:
                    return
                raise item
            yield item

    async def close(self) -> None:
        """Send CloseStream, wait briefly for the last results, then end ``events``."""
        if self._closing:
            return
        self._closing = True
        self._post(_Control.CLOSE_STREAM)
        try:
            await asyncio.wait({self._runner}, timeout=self._timing.close_timeout)
        finally:  # ``events`` ends even if closing was cancelled
            if not self._runner.done():
                logger.warning("Deepgram did not close the stream in time; dropping it")
                self._runner.cancel()
            self._end(None)

    def _post(self, item: bytes | _Control) -> None:
        self._outbox.append(item)
        self._outbox_ready.set()

    async def _run(self) -> None:
        # A deadline, not asyncio.timeout: cancelling the SDK's (legacy websockets) handshake
        # takes its 10 s close timeout, and the failure must be reported now.
        deadline = self._loop.call_later(self._timing.connect_timeout, self._connect_timed_out)
        try:
            async with contextlib.AsyncExitStack() as stack:
                connection = await stack.enter_async_context(self._connect())
                deadline.cancel()
                await self._converse(connection)
        except Exception as error:
            self._fail(error)
            return
        finally:
            deadline.cancel()
        self._end(None)

    def _connect_timed_out(self) -> None:
        self._fail(TranscriberFailure("Deepgram did not open the stream in time"))
        self._runner.cancel()

    async def _converse(self, connection: Any) -> None:
        async with asyncio.TaskGroup() as group:
            sender = group.create_task(self._reported(self._send_loop(connection)))
            watchdog = group.create_task(self._reported(self._watch_for_stall()))
            await self._reported(self._receive_loop(connection))
            sender.cancel()
            watchdog.cancel()

    async def _reported(self, work: Awaitable[None]) -> None:
        """Run ``work``, reporting its failure at once (closing the socket can take a while)."""
        try:
            await work
        except Exception as error:
            self._fail(error)
            raise

    async def _send_loop(self, connection: Any) -> None:
        while True:
            try:
                async with asyncio.timeout(self._timing.keepalive_interval):
                    await self._outbox_ready.wait()
            except TimeoutError:
                await connection.send_keep_alive()
                continue
            self._outbox_ready.clear()
            while self._outbox:
                item = self._outbox.popleft()
                if isinstance(item, bytes):
                    audio = self._with_queued_audio(item)
                    await connection.send_media(audio)
                    self._unanswered_audio += len(audio) / SAMPLE_RATE
                    if self._awaiting_reply_since is None:
                        self._awaiting_reply_since = self._loop.time()
                elif item is _Control.FINALIZE:
                    await connection.send_finalize()
                else:
                    await connection.send_close_stream()
                    return

    def _with_queued_audio(self, first: bytes) -> bytes:
        """``first`` joined by the audio queued behind it, up to ``MAX_MEDIA_BYTES``."""
        pieces, size = [first], len(first)
        while self._outbox and isinstance(queued := self._outbox[0], bytes):
            if size + len(queued) > MAX_MEDIA_BYTES:
                break
            self._outbox.popleft()
            pieces.append(queued)
            size += len(queued)
        return b"".join(pieces)

    async def _watch_for_stall(self) -> None:
        """Fail when ``stall_timeout`` seconds passed, and as much audio went out, unanswered.

        Counting audio as well as time keeps a pause in the caller's audio from looking
        like a stall: Deepgram has nothing to answer while it gets no audio.
        """
        stall = self._timing.stall_timeout
        while not self._closing:
            await asyncio.sleep(stall / 4)
            since = self._awaiting_reply_since
            if (
                not self._closing
                and since is not None
                and self._loop.time() - since >= stall
                and self._unanswered_audio >= stall
            ):
                raise TranscriberFailure(f"no message from Deepgram for {stall:g} s of audio")

    async def _receive_loop(self, connection: Any) -> None:
        async for message in connection:
            self._awaiting_reply_since = None
            self._unanswered_audio = 0.0
            for event in self._interpret(message):
                self._events.put_nowait(event)
        if not self._closing:
            raise TranscriberFailure("Deepgram closed the stream")

    def _interpret(self, message: object) -> list[SpeechEvent]:
        try:
            if isinstance(message, ListenV1Results):
                return self._assembler.heard(_transcript(message, self._clock))
            if isinstance(message, ListenV1SpeechStarted):
                return self._assembler.vad_onset(self._clock.to_stream(_seconds(message.timestamp)))
            if isinstance(message, ListenV1UtteranceEnd):
                return self._assembler.utterance_end()
            if isinstance(message, ListenV1Metadata):
                logger.debug("Deepgram stream metadata: request %s", message.request_id)
            elif isinstance(message, ListenV1Error):
                logger.warning("Deepgram reported an error: %s", message.description)
            else:
                logger.warning("skipping an unexpected Deepgram message: %.200r", message)
        except (AttributeError, TypeError, ValueError) as error:
            logger.warning("skipping a malformed %s: %s", type(message).__name__, error)
        return []

    def _fail(self, error: Exception) -> None:
        if self._ended:
            return
        if self._closing:
            logger.info("Deepgram stream ended with an error while closing: %r", error)
            self._end(None)
            return
        failure = error if isinstance(error, TranscriberFailure) else _failure_from(error)
        logger.warning("Deepgram transcription failed: %s", failure)
        self._end(failure)

    def _end(self, failure: TranscriberFailure | None) -> None:
        """Flush the utterance in progress and end ``events`` (with ``failure``, if any)."""
        if self._ended:
            return
        self._ended = True
        for event in self._assembler.finish_utterance():
            self._events.put_nowait(event)
        self._events.put_nowait(failure)


def _failure_from(error: BaseException) -> TranscriberFailure:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    if isinstance(error, TranscriberFailure):
        return error
    if isinstance(error, ApiError):
        failure = TranscriberFailure(f"Deepgram refused the stream: HTTP {error.status_code}")
    else:
        failure = TranscriberFailure(f"Deepgram stream failed: {error!r}")
    failure.__cause__ = error
    return failure
