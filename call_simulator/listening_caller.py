"""A caller that listens: hears the assistant, answers by what it heard, pauses like a person.

``call_as_persona`` places a ``Persona``'s call through the simulated Twilio (``place_call``)
and takes the caller's side of the media stream:

- **The ear** hears the assistant's outbound μ-law as Twilio would play it. Audio is gathered
  sentence by sentence (a sentence ends at the server's ``mark``) and, once the server pauses
  in sending, transcribed whole sentences at a time (at most ``MAX_BATCH_SECONDS``) with the
  embedded engine (``media_stream.WhisperTranscriber`` by default, or any ``Hearing``), in a
  worker thread. Each word counts as heard when the playout
  reaches its end; a ``clear`` drops the words that had not played yet.
- **The caller** matches what it heard against the persona's rules: an ``over`` rule fires as
  soon as its cue has been heard, while the assistant goes on; any other rule waits until the
  assistant has finished its turn (its audio played out and the line quiet for a moment). The
  caller then waits a human pause drawn from the persona's range (a seeded RNG) after the end
  of the assistant's turn (or after the cue), and says its line with espeak-ng — in several
  breaths when the rule has several, with a drawn pause between them — or presses keys, hangs
  up or stays quiet.

Everything is on the stream clock (``speed`` runs it faster than the wall, as for
``simulate_call``), so at real time the caller's lines line up with the times the server stores
for them (faster, the server scales its stored times; ``verdict.stored_time_scale`` maps them).
The result (``ListeningCall``) lists what the caller heard, what it said and when, whether each
line began while the assistant was silent (an answer window) or over it, and when the
assistant began speaking after a silence (for reply latency as the caller hears it).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from call_simulator.caller_voices import CallerVoice, caller_voice
from call_simulator.personas import HangUp, KeepQuiet, Persona, Press, Rule, Say, normalise
from call_simulator.simulator import (
    REPLY_TIMEOUT_SECONDS,
    CallLine,
    CallParties,
    ClosedBy,
    SimulatedCall,
    place_call,
)
from media_stream import SAMPLE_RATE, Utterance, duration_seconds, ulaw_decode

logger = logging.getLogger(__name__)

TURN_END_SECONDS = 0.35  # stream time of quiet after the assistant's audio: its turn is over
GATHER_WALL_SECONDS = 0.15  # the server sent nothing for this long: transcribe what came
UNMARKED_WALL_SECONDS = 1.0  # audio with no mark after it is transcribed after this long
MAX_BATCH_SECONDS = 12.0  # Whisper hears 30 s at most, and writes 128 tokens at most
ONSET_GAP_SECONDS = 0.06  # assistant audio starting this long after the last ended: an onset
MAX_CALL_SECONDS = 600.0  # stream time after which the caller gives up and hangs up
SPEECH_LEVEL = 300  # 16-bit sample magnitude above which the caller's audio counts as sound
DEFAULT_CALLER_VOICE = "en-us"
DEFAULT_WORDS_PER_MINUTE = 165

LineKind = Literal["say", "press", "quiet", "hang_up"]


class Hearing(Protocol):
    """Transcribes a stretch of μ-law audio the caller heard (``WhisperTranscriber`` is one)."""

    name: str

    def load(self) -> None: ...

    def transcribe(
        self,
        pcm8k: npt.NDArray[np.int16],
        audio_start: float,
        speech_start: float,
        speech_end: float | None = None,
    ) -> Utterance: ...


@dataclass(frozen=True)
class HeardTurn:
    """What the caller heard before it decided, and what it decided."""

    text: str  # as the caller's ear transcribed it
    heard_from: float  # stream time the first of these words was heard
    heard_to: float
    decided_at: float
    rule: int | None  # the persona's rule that fired; None: no rule matched, the caller waited
    response: str


@dataclass(frozen=True)
class Breath:
    """One breath of a caller line: its speech (the audio's silent edges left out), in stream
    seconds."""

    text: str
    started_at: float
    ended_at: float
    over_assistant: bool  # the assistant's audio was playing when the breath began


@dataclass(frozen=True)
class CallerLine:
    """Something the caller did: a line (in one or more breaths), keys, a hang-up, silence."""

    rule: int
    kind: LineKind
    text: str
    answering: str  # what the caller had heard
    decided_at: float
    started_at: float
    breaths: tuple[Breath, ...] = ()
    in_answer_window: bool = False  # began while the assistant was silent, after it had spoken

    @property
    def ended_at(self) -> float:
        return self.breaths[-1].ended_at if self.breaths else self.started_at

    @property
    def over_assistant(self) -> bool:
        return any(breath.over_assistant for breath in self.breaths)


@dataclass(frozen=True)
class ListeningCall:
    """What happened on one persona's call, from the caller's side of the line."""

    persona: str
    simulated: SimulatedCall
    heard: tuple[HeardTurn, ...]
    lines: tuple[CallerLine, ...]
    assistant_onsets: tuple[float, ...]  # stream times the assistant began after a silence
    ear_transcripts: tuple[str, ...]  # every stretch of assistant audio, as the ear heard it
    duration: float  # stream seconds from the start of the media stream to its end
    problems: tuple[str, ...]
    speed: float = 1.0  # stream seconds per wall second

    @property
    def closed_by(self) -> ClosedBy:
        return self.simulated.closed_by

    def cut_offs(self) -> tuple[CallerLine, ...]:
        """The lines the assistant cut off: it began to speak after the caller's first breath
        and before its last one ended (it took a pause inside an answer for the end)."""
        return tuple(
            line
            for line in self.lines
            if line.kind == "say"
            and line.breaths
            and any(
                line.breaths[0].ended_at < onset < line.ended_at for onset in self.assistant_onsets
            )
        )

    def reply_gaps(self) -> tuple[float, ...]:
        """For each line said in an answer window, the silence the caller heard between its
        last breath and the assistant's next words (when they came before its next line)."""
        gaps: list[float] = []
        for line in self.lines:
            if line.kind != "say" or not line.in_answer_window:
                continue
            later = [other.started_at for other in self.lines if other.started_at > line.ended_at]
            until = min([*later, self.duration])
            position = bisect.bisect_left(self.assistant_onsets, line.ended_at)
            if position < len(self.assistant_onsets) and self.assistant_onsets[position] <= until:
                gaps.append(self.assistant_onsets[position] - line.ended_at)
        return tuple(gaps)


async def call_as_persona(
    persona: Persona,
    *,
    server_url: str,
    public_base_url: str,
    account_sid: str,
    auth_token: str,
    speed: float = 1.0,
    hearing: Hearing | None = None,
    voice: CallerVoice | None = None,
    run_seed: int = 0,
    reply_timeout: float = REPLY_TIMEOUT_SECONDS,
    max_call_seconds: float = MAX_CALL_SECONDS,
) -> ListeningCall:
    """Place ``persona``'s call to the server and take the caller's side until it ends.

    ``hearing`` transcribes the assistant (by default Whisper tiny.en, loaded offline, one CPU
    thread); ``voice`` speaks the caller's lines (by default espeak-ng in the persona's voice).
    ``run_seed`` varies the drawn pauses from run to run while keeping each run reproducible.
    Raises ``SimulationError`` when the call cannot go on, as ``simulate_call`` does.
    """
    ear_engine = hearing or _default_hearing()
    await asyncio.to_thread(ear_engine.load)
    audio = await asyncio.to_thread(_render_lines, persona, voice)
    caller = ListeningCaller(
        persona, audio, ear_engine, random.Random(persona.seed ^ run_seed), max_call_seconds
    )
    parties = CallParties(
        name=persona.name, caller=persona.caller, business_number=persona.business_number
    )
    simulated = await place_call(
        parties,
        caller,
        server_url=server_url,
        public_base_url=public_base_url,
        account_sid=account_sid,
        auth_token=auth_token,
        speed=speed,
        reply_timeout=reply_timeout,
    )
    return replace(caller.result(simulated), speed=speed)


def _default_hearing() -> Hearing:
    from media_stream import WhisperTranscriber

    return WhisperTranscriber(cpu_threads=1)


def _render_lines(persona: Persona, voice: CallerVoice | None) -> dict[str, bytes]:
    """μ-law audio of every breath the persona may say, rendered before the call."""
    if voice is None and persona.lines:
        voice = caller_voice(
            persona.voice or DEFAULT_CALLER_VOICE,
            persona.words_per_minute or DEFAULT_WORDS_PER_MINUTE,
        )
    assert voice is not None or not persona.lines
    return {line: voice.render_ulaw(line) for line in persona.lines} if voice else {}


def _silent_edges(audio: bytes) -> tuple[float, float]:
    """Seconds of near-silence before the first and after the last sound in ``audio``."""
    loud = np.flatnonzero(np.abs(ulaw_decode(audio).astype(np.int32)) > SPEECH_LEVEL)
    if loud.size == 0:
        return 0.0, 0.0
    samples = len(audio)  # one μ-law byte per sample
    return float(loud[0]) / SAMPLE_RATE, float(samples - 1 - loud[-1]) / SAMPLE_RATE


# --- the ear -----------------------------------------------------------------------------------


@dataclass(eq=False)
class _Chunk:
    """A piece of the assistant's audio and where it sits on the playout."""

    audio: bytes
    plays_from: float
    seconds: float
    cut_at: float = float("inf")  # a clear at this time dropped whatever had not played

    @property
    def plays_to(self) -> float:
        return self.plays_from + self.seconds


@dataclass(frozen=True)
class _HeardWord:
    text: str
    heard_at: float  # when the playout reached the word's end
    chunk: _Chunk


class AssistantEar:
    """Hears the assistant: gathers its audio by sentence, transcribes it, releases words as
    they are played (an ``AssistantListener``)."""

    def __init__(self, hearing: Hearing) -> None:
        self._hearing = hearing
        self._sentence: list[_Chunk] = []  # audio since the last mark
        self._ready: deque[list[_Chunk]] = deque()  # whole sentences waiting to be transcribed
        self._unplayed: list[_Chunk] = []  # chunks a clear may still cut
        self._words: deque[_HeardWord] = deque()
        self._arrived = asyncio.Event()
        self._last_arrival = 0.0  # loop time
        self._transcribing = False
        self._play_end = float("-inf")
        self.onsets: list[float] = []
        self.transcripts: list[str] = []
        self.failures: list[str] = []

    # AssistantListener

    def assistant_audio(self, audio: bytes, plays_from: float) -> None:
        seconds = duration_seconds(audio)
        if plays_from > self._play_end + ONSET_GAP_SECONDS:
            self.onsets.append(plays_from)
        self._play_end = max(self._play_end, plays_from + seconds)
        chunk = _Chunk(audio, plays_from, seconds)
        self._sentence.append(chunk)
        self._unplayed.append(chunk)
        self._touch()

    def assistant_mark(self, name: str, due: float) -> None:
        if self._sentence:
            self._ready.append(self._sentence)
        self._sentence = []
        self._touch()

    def assistant_cleared(self, at: float) -> None:
        for chunk in self._unplayed:
            if chunk.plays_to > at:
                chunk.cut_at = min(chunk.cut_at, at)
        self._unplayed = []
        self._play_end = min(self._play_end, at)
        # A sentence cut short gets no mark: what of it played is all there will be.
        played = [chunk for chunk in self._sentence if chunk.plays_from < at]
        if played:
            self._ready.append(played)
        self._sentence = []
        self._touch()

    def _touch(self) -> None:
        self._last_arrival = asyncio.get_running_loop().time()
        self._arrived.set()

    # the caller's side

    @property
    def pending(self) -> bool:
        """Whether audio that arrived is still to be transcribed."""
        return self._transcribing or bool(self._ready) or bool(self._sentence)

    @property
    def last_arrival(self) -> float:
        return self._last_arrival

    def take_heard(self, now: float) -> list[_HeardWord]:
        """The words whose end has played by ``now`` (stream time), in order, once each."""
        taken: list[_HeardWord] = []
        while self._words and self._words[0].heard_at <= now:
            word = self._words.popleft()
            if word.heard_at <= word.chunk.cut_at + 1e-6:
                taken.append(word)
        return taken

    async def run(self) -> None:
        """Transcribe gathered audio in order, one stretch at a time, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            if not (self._ready or self._sentence):
                self._arrived.clear()
                await self._arrived.wait()
                continue
            quiet_for = loop.time() - self._last_arrival
            batch = self._take_batch(quiet_for)
            if batch is None:
                threshold = GATHER_WALL_SECONDS if self._ready else UNMARKED_WALL_SECONDS
                self._arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), max(0.01, threshold - quiet_for))
                continue
            self._transcribing = True
            try:
                words = await asyncio.to_thread(self._transcribe, batch)
            finally:
                self._transcribing = False
            self._words.extend(words)

    def _take_batch(self, quiet_for: float) -> list[_Chunk] | None:
        """Whole sentences (a long one alone, cut) once the server paused in sending, or once
        they fill a batch; audio left without a mark after a longer pause."""
        ready_seconds = sum(chunk.seconds for sentence in self._ready for chunk in sentence)
        if self._ready and (quiet_for >= GATHER_WALL_SECONDS or ready_seconds >= MAX_BATCH_SECONDS):
            pass
        elif self._sentence and not self._ready and quiet_for >= UNMARKED_WALL_SECONDS:
            self._ready.append(self._sentence)
            self._sentence = []
        else:
            return None
        batch: list[_Chunk] = []
        total = 0.0
        while self._ready:
            sentence = self._ready[0]
            seconds = sum(chunk.seconds for chunk in sentence)
            if batch and total + seconds > MAX_BATCH_SECONDS:
                break
            if not batch and seconds > MAX_BATCH_SECONDS:  # a long sentence: cut it
                taken = 0
                while taken < len(sentence) and (
                    not taken or total + sentence[taken].seconds <= MAX_BATCH_SECONDS
                ):
                    total += sentence[taken].seconds
                    taken += 1
                batch.extend(sentence[:taken])
                del sentence[:taken]
                if not sentence:
                    self._ready.popleft()
                break
            batch.extend(self._ready.popleft())
            total += seconds
        return batch

    def _transcribe(self, batch: Sequence[_Chunk]) -> list[_HeardWord]:
        """Words of ``batch`` with the stream time each was (or will be) heard; in a thread."""
        offsets: list[float] = []
        total = 0.0
        for chunk in batch:
            offsets.append(total)
            total += chunk.seconds
        try:
            heard = self._hearing.transcribe(
                ulaw_decode(b"".join(chunk.audio for chunk in batch)), 0.0, 0.0
            )
        except Exception as error:  # the ear failing must not end the call
            logger.exception("the caller's ear failed")
            self.failures.append(f"the caller's ear failed: {error!r}")
            return []
        self.transcripts.append(heard.text)
        if heard.text and not heard.words:
            return [_HeardWord(heard.text, batch[-1].plays_to, batch[-1])]
        words = []
        for word in heard.words:
            end = min(max(word.end, 0.0), total)
            index = max(0, bisect.bisect_right(offsets, end) - 1)
            if index > 0 and end <= offsets[index] + 1e-9:
                index -= 1  # a word ending exactly where a chunk begins ends in the one before
            chunk = batch[index]
            heard_at = chunk.plays_from + min(end - offsets[index], chunk.seconds)
            words.append(_HeardWord(word.text, heard_at, chunk))
        return words


def choose_rule(
    rules: Sequence[Rule], heard: str, *, over: bool, fired: Sequence[int]
) -> int | None:
    """The index of the rule to act on after hearing ``heard``: among the rules of this kind
    (``over`` or not) that may still fire (``fired[i]`` times so far), the one whose cue was
    heard last; the first such rule on a tie. None when no rule matches."""
    text = normalise(heard)
    best: tuple[int, int] | None = None  # (where its last cue ends, rule index)
    for index, rule in enumerate(rules):
        if rule.over != over or (rule.times is not None and fired[index] >= rule.times):
            continue
        position = rule.last_cue_at(text)
        if position is not None and (best is None or position > best[0]):
            best = (position, index)
    return None if best is None else best[1]


# --- the caller --------------------------------------------------------------------------------


@dataclass
class _Turn:
    """Words heard since the caller last decided."""

    words: list[_HeardWord] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(word.text.strip() for word in self.words).strip()


class ListeningCaller:
    """The persona on the line (a ``CallerSide``): listens, decides, pauses, answers."""

    def __init__(
        self,
        persona: Persona,
        audio: dict[str, bytes],
        hearing: Hearing,
        rng: random.Random,
        max_call_seconds: float = MAX_CALL_SECONDS,
    ) -> None:
        self._persona = persona
        self._audio = audio
        self._ear = AssistantEar(hearing)
        self._rng = rng
        self._max_call_seconds = max_call_seconds
        self._fired = [0] * len(persona.rules)
        self._heard: list[HeardTurn] = []
        self._lines: list[CallerLine] = []
        self._problems: list[str] = []
        self._ended_at = 0.0
        self._assistant_spoke = False

    def result(self, simulated: SimulatedCall) -> ListeningCall:
        return ListeningCall(
            persona=self._persona.name,
            simulated=simulated,
            heard=tuple(self._heard),
            lines=tuple(self._lines),
            assistant_onsets=tuple(self._ear.onsets),
            ear_transcripts=tuple(self._ear.transcripts),
            duration=self._ended_at,
            problems=(*simulated.errors, *self._ear.failures, *self._problems),
        )

    async def converse(self, line: CallLine) -> ClosedBy:
        line.listen(self._ear)
        ear = asyncio.create_task(self._ear.run(), name=f"ear-{self._persona.name}")
        try:
            return await self._take_turns(line)
        finally:
            self._ended_at = line.now()
            ear.cancel()
            await asyncio.gather(ear, return_exceptions=True)

    async def _take_turns(self, line: CallLine) -> ClosedBy:
        turn = _Turn()
        last_action = line.now()
        while not line.closed:
            now = line.now()
            if now >= self._max_call_seconds:
                return await self._give_up(line, f"the call lasted over {now:.0f} s")
            fresh = self._ear.take_heard(now)
            turn.words.extend(fresh)
            self._assistant_spoke = self._assistant_spoke or bool(fresh)
            choice: tuple[int, float] | None = None
            if fresh:
                choice = self._choose(turn.text, over=True, since=fresh[-1].heard_at)
            if choice is None and turn.words and self._turn_is_over(line, now):
                choice = self._choose(turn.text, over=False, since=line.playout.quiet_since())
                if choice is None:
                    self._note_heard(turn, line.now(), None, "no rule matched: kept listening")
                    turn = _Turn()
            if choice is not None:
                ended = await self._act(line, turn, *choice)
                turn = _Turn()
                last_action = line.now()
                if ended is not None:
                    return ended
                continue
            silent_since = max(last_action, line.playout.quiet_since())
            if line.wall_seconds(now - silent_since) > line.reply_timeout and not self._ear.pending:
                return await self._give_up(
                    line, f"the assistant said nothing for {line.reply_timeout:g} s"
                )
            await line.wait_closed(line.poll_seconds)
        return "server"

    async def _give_up(self, line: CallLine, why: str) -> ClosedBy:
        self._problems.append(f"{why}; the caller hung up")
        await line.hang_up()
        return "caller"

    def _turn_is_over(self, line: CallLine, now: float) -> bool:
        playout = line.playout
        return (
            playout.unplayed_seconds(now) <= 0
            and now >= playout.quiet_since() + TURN_END_SECONDS
            and not self._ear.pending
        )

    def _choose(self, heard: str, *, over: bool, since: float) -> tuple[int, float] | None:
        """The rule to act on and the stream time its pause counts from."""
        index = choose_rule(self._persona.rules, heard, over=over, fired=self._fired)
        return None if index is None else (index, since)

    def _note_heard(self, turn: _Turn, decided_at: float, rule: int | None, response: str) -> None:
        words = turn.words
        self._heard.append(
            HeardTurn(
                text=turn.text,
                heard_from=words[0].heard_at if words else decided_at,
                heard_to=words[-1].heard_at if words else decided_at,
                decided_at=decided_at,
                rule=rule,
                response=response,
            )
        )

    async def _act(self, line: CallLine, turn: _Turn, index: int, since: float) -> ClosedBy | None:
        """Carry out rule ``index`` after the pause; who ended the call, or None to go on."""
        rule = self._persona.rules[index]
        self._fired[index] += 1
        decided = line.now()
        self._note_heard(turn, decided, index, rule.describe())
        low, high = rule.pause or self._persona.pause
        start_at = max(since + self._rng.uniform(low, high), decided)
        logger.info(
            "%s heard %r at %.2f s: will %s at %.2f s",
            self._persona.name,
            turn.text,
            decided,
            rule.describe(),
            start_at,
        )
        if await line.wait_closed(line.wall_seconds(start_at - line.now())):
            return "server"
        action = rule.action
        started = line.now()
        window = self._assistant_spoke and line.playout.unplayed_seconds(started) <= 0

        def record(kind: LineKind, text: str, breaths: tuple[Breath, ...] = ()) -> None:
            self._lines.append(
                CallerLine(index, kind, text, turn.text, decided, started, breaths, window)
            )

        if isinstance(action, HangUp):
            record("hang_up", "")
            await line.hang_up()
            return "caller"
        if isinstance(action, KeepQuiet):
            record("quiet", "")
            return None
        if isinstance(action, Press):
            pressed = await line.press(action.digits)
            record("press", action.digits)
            return None if pressed else "server"
        breaths, finished = await self._say(line, action)
        record("say", " ".join(breath.text for breath in breaths), breaths)
        if not finished:
            return "server"
        if rule.hang_up_after:
            await line.hang_up()
            return "caller"
        return None

    async def _say(self, line: CallLine, action: Say) -> tuple[tuple[Breath, ...], bool]:
        """Say each breath, with a drawn pause between; (the breaths said, all finished)."""
        said: list[Breath] = []
        for position, text in enumerate(action.breaths):
            if position:
                gap = self._rng.uniform(*self._persona.breath)
                if await line.wait_closed(line.wall_seconds(gap)):
                    return tuple(said), False
            audio = self._audio[text]
            started = line.now()
            over = line.playout.unplayed_seconds(started) > 0
            finished = await line.speak(audio)
            lead, trail = _silent_edges(audio)
            ended = line.now()
            said.append(Breath(text, min(started + lead, ended), max(ended - trail, started), over))
            if not finished:
                return tuple(said), False
        return tuple(said), True
