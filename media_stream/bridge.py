"""CallBridge: one live call's media stream, between Twilio's websocket and the conversation.

The bridge reads Twilio's messages (skipping malformed or out-of-order ones), feeds the caller's
audio to a transcription session, turns speech and keypad presses into ``CallerInput``, sends
synthesized replies as outbound media followed by a mark per chunk, and clears the caller's
playout buffer when the caller talks over an interruptible reply (never over the consent script).

Audio is sent as soon as it is synthesized: Twilio buffers it and plays it in real time, so the
caller never hears a gap, and the echoed marks say what has actually been played.

Turn-taking: from the moment the transcriber hears speech start until that speech's words come
back, the caller holds the floor. ``next_input`` counts a question's silence only while nobody
holds it, so an answer is taken however long its transcription takes, and a new prompt's first
audio waits until the caller has finished and been transcribed.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Protocol

from media_stream.codec import FRAME_BYTES, FRAME_SECONDS
from media_stream.ports import (
    AnswerKind,
    SpeechEvent,
    SpeechStarted,
    SpeechStopped,
    Synthesizer,
    TranscriptionSession,
    Utterance,
)
from media_stream.protocol import (
    Clear,
    Connected,
    Dtmf,
    Mark,
    Media,
    OutboundMark,
    OutboundMedia,
    ProtocolError,
    Start,
    Stop,
    encode_outbound,
    parse_inbound,
)
from media_stream.sentences import split_sentences
from media_stream.sequencing import InboundOrder

logger = logging.getLogger(__name__)

CHUNK_BYTES = FRAME_BYTES * 10  # 200 ms of audio per outbound media message
ARRIVALS_KEPT = 1500  # arrival times of the last 30 s of inbound frames, for latency metrics
SKIPPED_FRAMES_LOGGED = 5  # per stream; the count of all of them is logged at the end
TRANSCRIPTS_TASK = "bridge-transcripts"


async def _pieces(text: str) -> AsyncIterator[str]:
    yield text


UNHEARD_SPEECH_LIMIT = 20.0
"""Seconds a start of speech holds the floor while its words are still to come. The endpointer
cuts an utterance at 15 s and transcription under load takes a few seconds more, so real speech
always brings its words sooner; only a sound that never becomes words (noise that Deepgram's
voice detection took for speech, words lost with a transcriber that failed) reaches it."""

AUDIO_READ_SLACK = 0.1
"""Seconds the caller's audio read so far may trail the clock and still count as read (a few
frames in flight). A silence whose audio trails further (a busy server reads the stream late)
is waited for, looking again this often."""

LAST_WORDS_WAIT = 10.0
"""Seconds a closing call waits for the transcript's last events once the transcriber has
closed (its pending words are transcribed by then; this only bounds a session that fails to
end its events)."""

LONGEST_WAIT = 60.0
"""However often noise looks like speech, a question waits at most this long for an answer and a
prompt at most this long for the floor, so a call with nobody on the line still ends."""


def _monotonic() -> float:
    """``time.monotonic()``, looked up when called (tests run the bridge on a virtual clock)."""
    return time.monotonic()


class StreamClosed(Exception):
    """The websocket closed."""


class CallEnded(Exception):
    """The caller hung up (Twilio sent ``stop`` or the websocket closed)."""


class StreamSocket(Protocol):
    """The websocket the bridge talks over (adapted from the web framework's)."""

    async def receive_text(self) -> str:
        """The next text message; raises StreamClosed when the socket is gone."""

    async def send_text(self, text: str) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class CallerInput:
    """Something the caller did: finished an utterance, or pressed a key.

    ``at`` is on the stream clock; ``received_at`` is ``time.monotonic()`` when it reached us.
    """

    at: float
    utterance: Utterance | None = None
    digit: str | None = None
    received_at: float = field(default_factory=_monotonic)


@dataclass(frozen=True)
class PlaybackResult:
    """How a reply ended: fully played (proven by its last mark), cleared, or cut off by hang-up.

    ``finished_at`` is the stream time when that became known, ``known_at`` the
    ``time.monotonic()`` (for a played reply: when its last mark arrived).
    """

    played: bool
    finished_at: float
    cleared: bool = False
    known_at: float = field(default_factory=_monotonic)


@dataclass
class Playback:
    """One reply being played to the caller; one mark after each sentence."""

    text: str
    interruptible: bool
    started_at: float
    marks: list[str] = field(default_factory=list)
    sentences: dict[str, str] = field(default_factory=dict)  # mark name → the sentence before it
    result: asyncio.Future[PlaybackResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    sending_done: bool = False
    first_audio_at: float | None = None  # time.monotonic() when its first audio was sent
    played_at: dict[str, float] = field(default_factory=dict)  # mark → monotonic() it came
    _audio_sent: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)
    _progress: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def __post_init__(self) -> None:
        self.result.add_done_callback(lambda _: self._progress.set())

    @property
    def audio_sha256(self) -> str:
        """The sha256 of the μ-law audio sent for this reply so far: the media payloads, in
        order, exactly as they went out on the websocket."""
        return self._audio_sent.hexdigest()

    @property
    def fully_played(self) -> bool:
        return self.sending_done and bool(self.marks) and self.marks[-1] in self.played_at

    def played_text(self) -> str:
        """The sentences Twilio confirmed it played (all of them unless the reply was cut)."""
        return " ".join(self.sentences[name] for name in self.marks if name in self.played_at)

    async def finished(self) -> PlaybackResult:
        """Wait until Twilio has played the whole reply, or it was cleared, or the call ended."""
        return await asyncio.shield(self.result)

    async def until_played(self, sentences: int) -> float | None:
        """When Twilio had played the first ``sentences`` sentences of this reply (the
        ``time.monotonic()`` their last mark came back), or None once the reply is over (cleared,
        the call ended) without them."""
        while True:
            named = self.marks[:sentences]
            if len(named) == sentences and all(name in self.played_at for name in named):
                return self.played_at[named[-1]]
            if self.result.done():
                return None
            self._progress.clear()
            await self._progress.wait()


class _Unheard:
    """The transcription of a stream nobody listens to (before ``listen``, or a call that only
    hears an apology): the caller's audio is dropped and no speech is ever reported."""

    def send_audio(self, ulaw: bytes, at: float) -> None:
        """Drop the audio."""

    async def events(self) -> AsyncIterator[SpeechEvent]:
        """Nothing, ever: an async generator that ends at once."""
        return
        yield

    def expect(self, answer: AnswerKind) -> None:
        """Nobody listens."""

    async def finalize(self) -> None:
        """Nothing is in progress."""

    async def close(self) -> None:
        """Nothing to close."""


class CallBridge:
    """One call's media stream: inbound frames, caller input, outbound speech.

    ``open`` reads up to Twilio's ``start``, which names the business; ``listen`` then hands
    the bridge the call's transcription session (chosen for that business) and starts reading.
    """

    def __init__(self, socket: StreamSocket, synthesizer: Synthesizer) -> None:
        self._socket = socket
        self._transcription: TranscriptionSession = _Unheard()
        self._synthesizer = synthesizer
        self._order = InboundOrder()
        self._inputs: asyncio.Queue[CallerInput | None] = asyncio.Queue()
        self._playbacks: dict[str, Playback] = {}
        self._current: Playback | None = None
        self._mark_ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self._ended = asyncio.Event()
        self._closed = False
        self.start: Start | None = None
        self.stream_time = 0.0
        self.end_reason = "in progress"
        self.skipped_frames = 0
        # Two aligned deques of floats rather than one of pairs: a pair per frame would be a new
        # object for the garbage collector fifty times a second per call.
        self._arrival_stream_times: deque[float] = deque(maxlen=ARRIVALS_KEPT)
        self._arrived_at: deque[float] = deque(maxlen=ARRIVALS_KEPT)
        self._recording: deque[tuple[float, bytes]] | None = None
        self._speech_stop_waiters: list[asyncio.Future[float]] = []
        # Starts of speech whose words are still to come: (stream time, loop time heard).
        self._unheard_speech: list[tuple[float, float]] = []
        self._words_after_end: list[CallerInput] = []
        self._floor_changed = asyncio.Event()  # an input, a start of speech, its words, the end

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    @property
    def speech_pending(self) -> bool:
        """Whether the caller holds the floor: speaking, or their words still being transcribed."""
        return self._floor_held_until(asyncio.get_running_loop().time()) is not None

    async def open(self) -> Start:
        """Read until Twilio's ``start``; what follows waits on the websocket for ``listen``."""
        while self.start is None:
            message = await self._next_message()
            if message is None:
                raise CallEnded("the stream closed before it started")
            if isinstance(message, Start):
                self.start = message
            elif isinstance(message, Stop):
                raise CallEnded("the stream stopped before it started")
        return self.start

    @property
    def synthesizer(self) -> Synthesizer:
        """The call's voice."""
        return self._synthesizer

    def listen(self, transcription: TranscriptionSession | None = None) -> None:
        """Read the stream in the background from where ``open`` stopped (nothing is lost),
        feeding the caller's audio to ``transcription``, which the bridge now owns and closes.
        Without one the caller is not heard, as on a call that only gets an apology."""
        assert self.start is not None and not self._tasks, "listen once, after open"
        if transcription is not None:
            self._transcription = transcription
        self._tasks = [
            asyncio.create_task(self._read_stream(), name="bridge-reader"),
            asyncio.create_task(self._read_transcripts(), name=TRANSCRIPTS_TASK),
        ]

    async def speech_stopped(self) -> float:
        """Wait until the transcriber hears the caller stop speaking before it has their final
        words; the stream time they stopped (see `finalize_transcript`)."""
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._speech_stop_waiters.append(waiter)
        return await waiter

    def expect(self, answer: AnswerKind) -> None:
        """The question being asked wants this kind of answer (see `TranscriptionSession`)."""
        self._transcription.expect(answer)

    async def finalize_transcript(self) -> None:
        """Ask the transcriber for the final words of what the caller said so far, now."""
        await self._transcription.finalize()

    async def say(self, text: str, *, interruptible: bool = True) -> Playback:
        """Synthesize ``text`` and send it, with a mark after each sentence; returns once all
        is sent. A non-interruptible reply (the consent script) is never cleared by speech."""
        return await self.say_pieces(_pieces(text), interruptible=interruptible)

    async def say_pieces(
        self, pieces: AsyncIterator[str], *, interruptible: bool = True
    ) -> Playback:
        """Speak text as it arrives (a reply still being written): each sentence is sent as
        soon as it is synthesized, so the caller hears the start before the end exists."""
        if self.ended:
            raise CallEnded(self.end_reason)
        playback = Playback(text="", interruptible=interruptible, started_at=self.stream_time)
        self._current = playback
        async for piece in pieces:
            playback.text = f"{playback.text} {piece}".strip()
            await self._speak_sentences(playback, piece)
            if playback.result.done():
                break
        playback.sending_done = True
        if not playback.result.done() and (playback.fully_played or not playback.marks):
            playback.result.set_result(PlaybackResult(True, self.stream_time))
        return playback

    async def _speak_sentences(self, playback: Playback, text: str) -> None:
        for sentence in split_sentences(text):
            if playback.result.done():
                return
            async with aclosing(self._synthesizer.synthesize(sentence)) as audio_chunks:
                async for audio in audio_chunks:
                    if playback.result.done():
                        break
                    await self._send_audio(playback, audio)
            if playback.result.done():
                return
            await self._send_mark(playback, sentence)

    async def next_input(self, silence: float, *, after: float | None = None) -> CallerInput | None:
        """The caller's next utterance or key press, or None once the caller has been silent for
        ``silence`` seconds: no speech heard, and none whose words are still to come.

        Speech that starts while waiting stops the silence and holds the floor until its words
        come, however long transcription takes (see `UNHEARD_SPEECH_LIMIT`, `LONGEST_WAIT`);
        the silence starts again from nothing once they have come. A silence counts only once
        it has lasted ``silence`` seconds by the clock *and* the caller's audio of that long has
        been read and listened to: a server too busy to read the stream in time waits for the
        audio rather than taking unread speech for silence. Utterances that began
        before ``after`` (stream seconds) are skipped: they overlapped what the caller was being
        asked. Raises CallEnded once the caller has hung up.
        """
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + LONGEST_WAIT
        quiet_since: tuple[float, float] | None = None  # (loop time, stream time)
        while True:
            self._floor_changed.clear()
            if not self._inputs.empty():
                item = self._inputs.get_nowait()
                if item is None:
                    self._inputs.put_nowait(None)
                    raise CallEnded(self.end_reason)
                spoken = item.utterance
                if after is not None and spoken is not None and spoken.start < after:
                    logger.info("skipping speech that began before the prompt ended: %r", item)
                    continue
                return item
            now = loop.time()
            held_until = self._floor_held_until(now)
            if held_until is None:
                quiet_since = quiet_since or (now, self.stream_time)
                wake_at = quiet_since[0] + silence
                if now >= wake_at:
                    if self.stream_time + AUDIO_READ_SLACK >= quiet_since[1] + silence:
                        return None
                    wake_at = now + AUDIO_READ_SLACK  # that silence's audio is still unread
            else:
                quiet_since = None
                wake_at = held_until
            if now >= give_up_at:
                return None
            wake_at = min(wake_at, give_up_at)
            await self._until_floor_changes(wake_at - now)

    async def _until_caller_yields(self, playback: Playback) -> None:
        """Wait while the caller holds the floor (at most `LONGEST_WAIT`), until the call ends
        or ``playback`` is over (an interruptible one that the caller talked over)."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + LONGEST_WAIT
        while not self.ended and not playback.result.done():
            self._floor_changed.clear()
            now = loop.time()
            held_until = self._floor_held_until(now)
            if held_until is None or now >= give_up_at:
                return
            await self._until_floor_changes(min(held_until, give_up_at) - now)

    async def _until_floor_changes(self, seconds: float) -> None:
        """Wait for an input, a start of speech or its words, or the end; ``seconds`` at most
        (a timer sets the event: a spurious wake-up only makes a waiter look again)."""
        timer = asyncio.get_running_loop().call_later(seconds, self._floor_changed.set)
        try:
            await self._floor_changed.wait()
        finally:
            timer.cancel()

    def _floor_held_until(self, now: float) -> float | None:
        """Until when (loop time) the caller holds the floor, or None when they do not; speech
        whose words have not come within `UNHEARD_SPEECH_LIMIT` is forgotten."""
        if self._unheard_speech and self._unheard_speech[0][1] + UNHEARD_SPEECH_LIMIT <= now:
            self._unheard_speech = [
                (at, heard)
                for at, heard in self._unheard_speech
                if heard + UNHEARD_SPEECH_LIMIT > now
            ]
            if not self._unheard_speech:
                logger.info("speech was heard starting but its words never came")
        if not self._unheard_speech:
            return None
        return self._unheard_speech[0][1] + UNHEARD_SPEECH_LIMIT

    def record_caller_audio(self, seconds: float) -> None:
        """Keep the caller's last ``seconds`` of audio (only for businesses that record calls)."""
        self._recording = deque(maxlen=max(1, round(seconds / FRAME_SECONDS)))

    def caller_audio(self, start: float, end: float) -> bytes:
        """The caller's μ-law audio between two stream times (empty when not recording)."""
        if self._recording is None:
            return b""
        return b"".join(payload for at, payload in self._recording if start <= at <= end)

    def arrival_time(self, stream_time: float) -> float | None:
        """``time.monotonic()`` when the caller's audio at ``stream_time`` arrived, if recent."""
        # A float end of speech can sit a hair past its frame's timestamp: allow 1 ms.
        index = bisect.bisect_left(self._arrival_stream_times, stream_time - 0.001)
        if index >= len(self._arrived_at):
            return None
        return self._arrived_at[index]

    async def close(self) -> None:
        """Stop everything and close the stream, so Twilio runs the TwiML after <Connect>
        (our <Hangup/>). Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self.skipped_frames:
            logger.warning("skipped %d malformed or out-of-order frames", self.skipped_frames)
        self._finish("assistant hung up")
        # Closing ends the transcript's events after the last words (those of speech cut off
        # by the hang-up included): the reader of transcripts finishes by itself and keeps them.
        await self._transcription.close()
        for task in self._tasks:
            if task.get_name() != TRANSCRIPTS_TASK:
                task.cancel()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=LAST_WORDS_WAIT)
            for task in late:
                logger.warning("the transcript did not end %.0f s after the call", LAST_WORDS_WAIT)
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self._socket.close()
        except Exception:  # the peer may already be gone
            logger.debug("socket already closed", exc_info=True)

    async def _send_audio(self, playback: Playback, audio: bytes) -> None:
        assert self.start is not None
        if playback.first_audio_at is None:
            # Nothing new starts while the caller speaks or their words are being transcribed.
            await self._until_caller_yields(playback)
            if playback.result.done():  # the caller barged in meanwhile
                return
            playback.started_at = self.stream_time
        stream_sid = self.start.stream_sid
        for offset in range(0, len(audio), CHUNK_BYTES):
            payload = audio[offset : offset + CHUNK_BYTES]
            await self._send(encode_outbound(OutboundMedia(stream_sid, payload)))
            playback._audio_sent.update(payload)
            if playback.first_audio_at is None:
                playback.first_audio_at = time.monotonic()

    async def _send_mark(self, playback: Playback, sentence: str) -> None:
        assert self.start is not None
        name = f"say-{next(self._mark_ids)}"
        playback.marks.append(name)
        playback.sentences[name] = sentence
        self._playbacks[name] = playback
        await self._send(encode_outbound(OutboundMark(self.start.stream_sid, name)))

    async def _send(self, text: str) -> None:
        if self.ended:  # e.g. the caller hung up while the reply was being synthesized
            raise CallEnded(self.end_reason)
        try:
            await self._socket.send_text(text)
        except StreamClosed:
            self._finish("caller hung up")
            raise CallEnded(self.end_reason) from None

    async def _next_message(self) -> Start | Media | Dtmf | Mark | Stop | None:
        """The next well-formed, in-order message; None when the socket closed."""
        while True:
            try:
                raw = await self._socket.receive_text()
            except StreamClosed:
                return None
            try:
                message = parse_inbound(raw)
            except ProtocolError as error:
                self._skip("malformed", error)
                continue
            reason = self._order.admit(message)
            if reason is not None:
                self._skip("out-of-order", reason)
                continue
            if not isinstance(message, Connected):  # the only message the bridge ignores
                return message

    def _skip(self, kind: str, why: object) -> None:
        """Count a skipped frame; only the first few of a call are logged one by one (a peer
        sending junk must not flood the log), the rest are counted when the bridge closes."""
        self.skipped_frames += 1
        if self.skipped_frames <= SKIPPED_FRAMES_LOGGED:
            logger.warning("skipping %s frame: %s", kind, why)
            if self.skipped_frames == SKIPPED_FRAMES_LOGGED:
                logger.warning("further skipped frames of this stream are only counted")

    async def _read_stream(self) -> None:
        while True:
            message = await self._next_message()
            if message is None:
                self._finish("caller hung up")
                return
            if isinstance(message, Media):
                self.stream_time = message.timestamp_ms / 1000
                self._arrival_stream_times.append(self.stream_time)
                self._arrived_at.append(time.monotonic())
                if message.track in ("inbound", "inbound_track"):
                    self._transcription.send_audio(message.payload, self.stream_time)
                    if self._recording is not None:
                        self._recording.append((self.stream_time, message.payload))
            elif isinstance(message, Dtmf):
                self._inputs.put_nowait(CallerInput(at=self.stream_time, digit=message.digit))
                self._floor_changed.set()
            elif isinstance(message, Mark):
                self._mark_played(message.name)
            elif isinstance(message, Stop):
                self._finish("caller hung up")
                return

    async def _read_transcripts(self) -> None:
        async for event in self._transcription.events():
            if isinstance(event, SpeechStarted):
                self._unheard_speech.append((event.at, asyncio.get_running_loop().time()))
                self._floor_changed.set()
                await self._barge_in(event)
            elif isinstance(event, SpeechStopped):
                self._report_speech_stop(event.at)
            else:
                self._words_came(event)

    def _words_came(self, utterance: Utterance) -> None:
        """The words of the speech that started up to the utterance's end (not those of speech
        that started since, whose words are still to come: the engine reports them in order)."""
        self._unheard_speech = [
            (at, heard)
            for at, heard in self._unheard_speech
            if at >= utterance.end and at > utterance.start
        ]
        heard = CallerInput(at=utterance.end, utterance=utterance)
        if self.ended:
            self._words_after_end.append(heard)
        else:
            self._inputs.put_nowait(heard)
        self._floor_changed.set()

    def inputs_left(self) -> list[CallerInput]:
        """What the caller said or pressed that nobody took when the call ended: inputs still
        waiting, then the words transcribed while it closed. Call after `close`."""
        left: list[CallerInput] = []
        while not self._inputs.empty():
            item = self._inputs.get_nowait()
            if item is not None:
                left.append(item)
        self._inputs.put_nowait(None)
        return [*left, *self._words_after_end]

    def _report_speech_stop(self, at: float) -> None:
        waiters, self._speech_stop_waiters = self._speech_stop_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(at)

    async def _barge_in(self, event: SpeechStarted) -> None:
        playback = self._current
        if playback is None or playback.result.done() or not playback.interruptible:
            return
        assert self.start is not None
        logger.info("caller spoke at %.2fs over the assistant: clearing playback", event.at)
        playback.result.set_result(PlaybackResult(False, self.stream_time, cleared=True))
        try:
            await self._send(encode_outbound(Clear(self.start.stream_sid)))
        except CallEnded:
            return

    def _mark_played(self, name: str) -> None:
        playback = self._playbacks.pop(name, None)
        if playback is None or playback.result.done():
            return  # unknown, or echoed because of a clear: proves nothing
        playback.played_at[name] = time.monotonic()
        playback._progress.set()
        if playback.fully_played:
            playback.result.set_result(PlaybackResult(True, self.stream_time))

    def _finish(self, reason: str) -> None:
        if self._ended.is_set():
            return
        self.end_reason = reason
        self._ended.set()
        self._inputs.put_nowait(None)
        self._floor_changed.set()
        for playback in {id(p): p for p in self._playbacks.values()}.values():
            if not playback.result.done():
                playback.result.set_result(PlaybackResult(False, self.stream_time))
        self._playbacks.clear()
