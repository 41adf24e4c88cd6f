"""Turn-taking that respects the caller, on a virtual clock.

A whole call runs through the Conversation and a CallBridge against a fake Twilio line (frames
every 20 ms, the assistant's audio played out in real time, marks echoed as it ends) and a fake
transcriber that reports `SpeechStarted` when the caller begins, `SpeechStopped` when they stop,
and the `Utterance` a configurable delay later. The event loop's clock (and ``time.monotonic``)
jump ahead whenever nothing is ready, so seconds of silence take no time and every moment is
exact: the tests assert on that virtual clock, never on the wall.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from media_stream import (
    AnswerKind,
    CallBridge,
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaFormat,
    OutboundMark,
    OutboundMedia,
    Playback,
    SpeechEvent,
    SpeechStarted,
    Start,
    StreamClosed,
    Utterance,
    Word,
    encode_inbound,
    parse_outbound,
)
from media_stream.ports import SpeechStopped
from media_stream.protocol import Clear
from media_stream.sentences import split_sentences
from tests.conftest import ROOT
from voice_agent.call.conversation import (
    ANSWER_SILENCE,
    CONSENT_SILENCE,
    SECOND_BREATH,
    ConsentOutcome,
    Conversation,
)
from voice_agent.call.wrap_up import CallIdentity, consent_evidence
from voice_agent.chat.port import AgentReply, CallContext, CallerMessage, WholeReply
from voice_agent.consent.classifier import classify_answer
from voice_agent.consent.questions import ASK_YES_OR_NO, answer_to_question
from voice_agent.consent.script import REASK, render_consent_script
from voice_agent.records.businesses import load_businesses

STREAM = "MZ" + "a" * 32
ACCOUNT = "AC" + "c" * 32
CALL = "CA" + "e" * 32
CALLER = "+15125550142"
ACME = next(
    b for b in load_businesses(ROOT / "fixtures" / "businesses.yaml") if b.id == "acme-plumbing"
)
FRAME = 0.02
SECONDS_PER_WORD = 0.3  # how long the fake voice takes to say a word
QUESTION = "What can we help you with?"
ASK_AGAIN = "Sorry, what do you need?"
DONE = "Thanks, I have your message."


# --- a virtual clock ---------------------------------------------------------------------------


class _JumpingSelector(selectors.DefaultSelector):
    """Polls without waiting; where the loop would wait, its clock jumps ahead instead."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        if timeout is None:
            raise RuntimeError("the call would wait forever: nothing is scheduled")
        self._loop.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on a clock of its own that never waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.now


def run_on_virtual_clock(
    monkeypatch: pytest.MonkeyPatch, main: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """Run ``main`` with the loop's clock as ``time.monotonic`` (the evidence's clock)."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        loop = runner.get_loop()
        monkeypatch.setattr(time, "monotonic", loop.time)
        runner.run(main())


def _now() -> float:
    return asyncio.get_running_loop().time()


# --- the line, the caller's words, the brain --------------------------------------------------


class Line:
    """Twilio's side of the media stream: a frame every 20 ms, the assistant's audio played out
    in real time, each mark echoed when the audio before it has played, ``clear`` honoured."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[str | None] = asyncio.Queue()
        self.started_at = 0.0
        self.playout_ends = 0.0
        self.pending_marks: dict[str, asyncio.TimerHandle] = {}
        self.quiet_moments: list[float] = []  # when the playout ran dry with every mark echoed
        self._quiet = asyncio.Event()
        self._sequence = 0
        self._frames: asyncio.Task[None] | None = None
        self._held: list[str | None] | None = None

    def start(self) -> None:
        self.started_at = _now()
        self._push(encode_inbound(Connected("Call", "1.0.0")))
        self._push(
            encode_inbound(
                Start(
                    self._next(),
                    STREAM,
                    ACCOUNT,
                    CALL,
                    ("inbound",),
                    {"business": ACME.id, "caller": CALLER},
                    MediaFormat("audio/x-mulaw", 8000, 1),
                )
            )
        )
        self._frames = asyncio.create_task(self._send_frames())

    def stream_time(self) -> float:
        """The stream time of the caller's frame being sent now."""
        return round((_now() - self.started_at) / FRAME) * FRAME

    def press(self, digit: str) -> None:
        self._push(encode_inbound(Dtmf(self._next(), STREAM, "inbound_track", digit)))

    async def assistant_quiet(self, count: int) -> float:
        """Wait until the assistant has gone quiet ``count`` times; when it went quiet last."""
        while len(self.quiet_moments) < count:
            self._quiet.clear()
            await self._quiet.wait()
        return self.quiet_moments[count - 1]

    async def _send_frames(self) -> None:
        chunk = 0
        while True:
            chunk += 1
            await asyncio.sleep(self.started_at + (chunk - 1) * FRAME - _now())
            media = Media(self._next(), STREAM, "inbound", chunk, (chunk - 1) * 20, b"\xff" * 160)
            self._push(encode_inbound(media))

    async def receive_text(self) -> str:
        item = await self.incoming.get()
        if item is None:
            raise StreamClosed()
        return item

    async def send_text(self, text: str) -> None:
        message = parse_outbound(text)
        now = _now()
        if isinstance(message, OutboundMedia):
            self.playout_ends = max(self.playout_ends, now) + len(message.payload) / 8000
        elif isinstance(message, OutboundMark):
            loop = asyncio.get_running_loop()
            handle = loop.call_at(self.playout_ends, self._echo, message.name)
            self.pending_marks[message.name] = handle
        elif isinstance(message, Clear):
            self.playout_ends = now
            for name, handle in list(self.pending_marks.items()):
                handle.cancel()
                self._echo(name)

    async def close(self) -> None:
        if self._frames is not None:
            self._frames.cancel()
        self._push(None)

    def _echo(self, name: str) -> None:
        self.pending_marks.pop(name, None)
        self._push(encode_inbound(Mark(self._next(), STREAM, name)))
        if not self.pending_marks and self.playout_ends <= _now() + 1e-6:
            self.quiet_moments.append(_now())
            self._quiet.set()

    def hold(self) -> None:
        """From now on the server reads nothing (it is too busy), until `release`."""
        self._held = []

    def release(self) -> None:
        """The server catches up: everything sent meanwhile is read at once, in order."""
        held, self._held = self._held or [], None
        for item in held:
            self.incoming.put_nowait(item)

    def hang_up(self) -> None:
        self._push(None)

    def _push(self, item: str | None) -> None:
        if self._held is not None:
            self._held.append(item)
            return
        self.incoming.put_nowait(item)

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence


class Ears:
    """The fake transcriber's session: the caller pushes what it would have heard."""

    def __init__(self) -> None:
        self.events_queue: asyncio.Queue[SpeechEvent | None] = asyncio.Queue()
        self.finalized = 0
        self.transcribing: list[asyncio.Task[None]] = []
        self.wanted = AnswerKind.ANY  # what the question last asked wants

    def send_audio(self, ulaw: bytes, at: float) -> None:
        """The caller's speech is told to `hear` instead."""

    async def events(self) -> AsyncIterator[SpeechEvent]:
        while (event := await self.events_queue.get()) is not None:
            yield event

    def expect(self, answer: AnswerKind) -> None:
        """The words are scripted whatever was asked; what it wanted is kept."""
        self.wanted = answer

    async def finalize(self) -> None:
        self.finalized += 1  # the words still come when they come: the worst case

    async def close(self) -> None:
        """As a real session closes: the words of speech already heard come first."""
        await asyncio.gather(*self.transcribing)
        self.events_queue.put_nowait(None)


@dataclass
class Spoken:
    """One stretch of the caller's speech, on the virtual clock and the stream clock."""

    text: str
    began_at: float
    ended_at: float = 0.0
    heard_at: float = 0.0  # when its words reached the bridge
    stream_start: float = 0.0
    stream_end: float = 0.0


@dataclass
class Caller:
    line: Line
    ears: Ears
    spoken: list[Spoken] = field(default_factory=list)

    async def say(self, text: str, lasts: float, transcribed_after: float) -> Spoken:
        """Speak ``text`` for ``lasts`` seconds; its words come ``transcribed_after`` later."""
        speech = Spoken(text, _now(), stream_start=self.line.stream_time())
        self.spoken.append(speech)
        self.ears.events_queue.put_nowait(SpeechStarted(speech.stream_start))
        await asyncio.sleep(lasts)
        speech.ended_at, speech.stream_end = _now(), self.line.stream_time()
        self.ears.events_queue.put_nowait(SpeechStopped(speech.stream_end))
        self.ears.transcribing.append(asyncio.create_task(self.words_of(speech, transcribed_after)))
        return speech

    async def words_of(self, speech: Spoken, transcribed_after: float) -> None:
        """The speech's words reach the bridge ``transcribed_after`` seconds from now."""
        await asyncio.sleep(transcribed_after)
        texts = speech.text.split()
        step = (speech.stream_end - speech.stream_start) / len(texts)
        words = tuple(
            Word(word, speech.stream_start + i * step, speech.stream_start + (i + 1) * step, 0.9)
            for i, word in enumerate(texts)
        )
        speech.heard_at = _now()
        self.ears.events_queue.put_nowait(
            Utterance(speech.text, speech.stream_start, speech.stream_end, 0.9, "fake", words)
        )


class Voice:
    name = "fake voice"

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        yield b"\x7f" * round(8000 * SECONDS_PER_WORD * len(text.split()))


class WatchedBridge(CallBridge):
    """A CallBridge that keeps every playback it started."""

    def __init__(self, line: Line) -> None:
        super().__init__(line, Voice())
        self.playbacks: list[Playback] = []

    async def say_pieces(
        self, pieces: AsyncIterator[str], *, interruptible: bool = True
    ) -> Playback:
        playback = await super().say_pieces(pieces, interruptible=interruptible)
        self.playbacks.append(playback)
        return playback

    def started(self, text: str) -> float:
        """When the caller began to hear the first playback holding ``text``."""
        playback = next(p for p in self.playbacks if text in p.text)
        assert playback.first_audio_at is not None
        return playback.first_audio_at


class AskForNeed:
    """Asks what the caller needs; asks once more after silence, then takes what it has."""

    name = "ask for need"

    def __init__(self) -> None:
        self.heard: list[str] = []

    async def reply(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> AgentReply:
        if caller_said is None:
            return AgentReply(QUESTION, finished=False)
        self.heard.append(caller_said)
        if caller_said:
            message.need = caller_said
        elif len(self.heard) < 2:
            return AgentReply(ASK_AGAIN, finished=False)
        return AgentReply(DONE, finished=True)

    def reply_stream(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> WholeReply:
        return WholeReply(self.reply(context, message, caller_said))


@dataclass
class Call:
    line: Line
    ears: Ears
    caller: Caller
    bridge: WatchedBridge
    conversation: Conversation
    model: AskForNeed


async def _run_call(script: Callable[[Call], Coroutine[Any, Any, None]]) -> Call:
    """A whole call, the caller acting out ``script``; returns once the assistant hung up."""
    line, ears = Line(), Ears()
    bridge = WatchedBridge(line)
    line.start()
    await bridge.open()
    bridge.listen(ears)
    model = AskForNeed()
    call = Call(
        line, ears, Caller(line, ears), bridge, Conversation(ACME, CALLER, model, bridge), model
    )
    acting = asyncio.create_task(script(call))
    try:
        await call.conversation.run()
    finally:
        await bridge.close()
        call.conversation.hear_last(bridge.inputs_left())
        acting.cancel()
    return call


async def _give_the_message(call: Call) -> float:
    """Answer the first question; when the script's playback was then confirmed (its mark)."""
    await call.line.assistant_quiet(1)
    await asyncio.sleep(1.0)
    await call.caller.say("My kitchen sink leaks", 1.5, 0.8)
    return await call.line.assistant_quiet(2)


def _assert_no_prompt_over_the_caller(call: Call) -> None:
    """No playback began while the caller was speaking or their words were being transcribed."""
    for playback in call.bridge.playbacks:
        began = playback.first_audio_at
        assert began is not None, playback.text
        for speech in call.caller.spoken:
            assert not speech.began_at <= began < speech.heard_at, (playback.text, speech)


def _assert_answer_timed_from_its_audio(call: Call, speech: Spoken) -> None:
    """The evidence dates the answer by its audio, however late its words were transcribed."""
    (answer, *_) = call.conversation.consent.answers
    assert answer.started_at == pytest.approx(speech.began_at, abs=FRAME)
    assert answer.ended_at == pytest.approx(speech.ended_at, abs=FRAME)
    assert answer.heard.received_at == pytest.approx(speech.heard_at)
    identity = CallIdentity(CALL, STREAM, CALLER, datetime.now(UTC), call.line.started_at)
    consent_evidence(ACME, identity, call.conversation.consent, datetime.now(UTC), None)


# --- the consent answer ------------------------------------------------------------------------


@pytest.mark.parametrize("transcribed_after", [0.0, 1.5, 3.0])
@pytest.mark.parametrize("lasts", [1.0, 3.0])
@pytest.mark.parametrize("starts_after", [0.5, 3.0, 5.0, 6.9])
def test_an_answer_that_starts_in_the_window_is_taken_however_late_its_words(
    monkeypatch: pytest.MonkeyPatch, starts_after: float, lasts: float, transcribed_after: float
) -> None:
    spoken: list[Spoken] = []

    async def caller(call: Call) -> None:
        mark = await _give_the_message(call)
        await asyncio.sleep(mark + starts_after - _now())
        spoken.append(await call.caller.say("No, thank you", lasts, transcribed_after))

    async def main() -> None:
        call = await _run_call(caller)
        consent = call.conversation.consent
        assert consent.outcome is ConsentOutcome.DECLINED
        assert not consent.reasked and consent.note == ""
        (answer,) = consent.answers
        assert answer.heard.utterance is not None
        assert answer.heard.utterance.text == "No, thank you"
        assert not any(REASK in p.text for p in call.bridge.playbacks)
        _assert_answer_timed_from_its_audio(call, spoken[0])
        _assert_no_prompt_over_the_caller(call)
        assert call.bridge.started("we won't text you") >= spoken[0].heard_at

    run_on_virtual_clock(monkeypatch, main)


def test_a_silence_counts_only_once_the_server_has_read_its_audio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server too busy to read the stream for longer than the consent silence: the answer said
    meanwhile is found in the audio when it is read, and taken; nobody is asked again."""

    async def caller(call: Call) -> None:
        mark = await _give_the_message(call)
        call.line.hold()
        await asyncio.sleep(3.0)
        speech = Spoken("No thank you", _now(), stream_start=call.line.stream_time())
        await asyncio.sleep(1.5)
        speech.ended_at, speech.stream_end = _now(), call.line.stream_time()
        await asyncio.sleep(mark + CONSENT_SILENCE + 2.0 - _now())  # the clock's silence is over
        call.line.release()
        call.ears.events_queue.put_nowait(SpeechStarted(speech.stream_start))
        call.ears.events_queue.put_nowait(SpeechStopped(speech.stream_end))
        await call.caller.words_of(speech, 0.5)

    async def main() -> None:
        call = await _run_call(caller)
        consent = call.conversation.consent
        assert consent.outcome is ConsentOutcome.DECLINED
        assert not consent.reasked and consent.note == ""
        assert not any(REASK in p.text for p in call.bridge.playbacks)

    run_on_virtual_clock(monkeypatch, main)


def test_words_said_as_the_caller_hangs_up_are_kept_in_the_transcript(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def caller(call: Call) -> None:
        await call.line.assistant_quiet(1)
        await asyncio.sleep(1.0)
        await call.caller.say("Sorry I have the wrong number", 2.0, 2.5)
        call.line.hang_up()  # before its words were transcribed

    async def main() -> None:
        call = await _run_call(caller)
        assert call.bridge.end_reason == "caller hung up"
        said = [turn.text for turn in call.conversation.transcript if turn.speaker == "caller"]
        assert said == ["Sorry I have the wrong number"]
        assert call.conversation.consent.outcome is ConsentOutcome.NOT_ASKED

    run_on_virtual_clock(monkeypatch, main)


def test_the_ears_listen_for_what_each_question_wants_and_for_nothing_in_the_consent_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wanted: list[AnswerKind] = []

    async def caller(call: Call) -> None:
        await call.line.assistant_quiet(1)
        wanted.append(call.ears.wanted)  # "What can we help you with?"
        await call.caller.say("My kitchen sink leaks", 1.5, 0.8)
        await call.line.assistant_quiet(2)
        wanted.append(call.ears.wanted)  # the consent script
        await call.caller.say("Yes please", 1.0, 0.5)

    async def main() -> None:
        call = await _run_call(caller)
        assert wanted == [AnswerKind.PROBLEM, AnswerKind.ANY]
        assert call.conversation.consent.outcome is ConsentOutcome.AFFIRMATIVE

    run_on_virtual_clock(monkeypatch, main)


def test_a_silent_caller_is_asked_once_more_then_let_go_after_the_silence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marks: list[float] = []

    async def caller(call: Call) -> None:
        marks.append(await _give_the_message(call))
        marks.append(await call.line.assistant_quiet(3))  # the re-ask has been played

    async def main() -> None:
        call = await _run_call(caller)
        consent = call.conversation.consent
        assert consent.outcome is ConsentOutcome.UNCLEAR
        assert consent.reasked and consent.answers == []
        assert consent.note == "no answer to the question; no answer to the re-ask"
        script_mark, reask_mark = marks
        assert call.bridge.started(REASK) == pytest.approx(script_mark + CONSENT_SILENCE)
        goodbye = call.bridge.started("Without a clear yes, we won't text you.")
        assert goodbye == pytest.approx(reask_mark + CONSENT_SILENCE)

    run_on_virtual_clock(monkeypatch, main)


def test_speech_begun_during_the_script_is_no_answer_but_the_silence_waits_for_its_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spoken: list[Spoken] = []

    async def caller(call: Call) -> None:
        await call.line.assistant_quiet(1)
        await asyncio.sleep(1.0)
        await call.caller.say("My kitchen sink leaks", 1.5, 0.8)
        await asyncio.sleep(0.8 + FRAME)  # its words came: the reply and the script are queued
        await asyncio.sleep(call.line.playout_ends - 1.0 - _now())  # 1 s before the script ends
        spoken.append(await call.caller.say("Sorry what was that", 2.0, 3.0))

    async def main() -> None:
        call = await _run_call(caller)
        consent = call.conversation.consent
        assert consent.outcome is ConsentOutcome.UNCLEAR and consent.answers == []
        said = [turn.text for turn in call.conversation.transcript if turn.speaker == "caller"]
        assert said == ["My kitchen sink leaks", "Sorry what was that"]
        # The re-ask waited for a whole stretch of silence after the words came.
        assert call.bridge.started(REASK) == pytest.approx(spoken[0].heard_at + CONSENT_SILENCE)
        _assert_no_prompt_over_the_caller(call)

    run_on_virtual_clock(monkeypatch, main)


def test_an_answer_said_in_two_breaths_is_one_answer_and_nothing_is_said_between(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def caller(call: Call) -> None:
        mark = await _give_the_message(call)
        await asyncio.sleep(mark + 2.0 - _now())
        await call.caller.say("Yes", 0.6, 2.0)
        await asyncio.sleep(0.8)
        await call.caller.say("but only one text", 1.5, 2.0)

    async def main() -> None:
        call = await _run_call(caller)
        consent = call.conversation.consent
        _, first, second = call.caller.spoken
        (answer, *_) = consent.answers
        assert answer.heard.utterance is not None
        assert answer.heard.utterance.text == "Yes but only one text"
        words = [word.text for word in answer.heard.utterance.words]
        assert words == ["Yes", "but", "only", "one", "text"]
        assert answer.started_at == pytest.approx(first.began_at, abs=FRAME)
        assert answer.ended_at == pytest.approx(second.ended_at, abs=FRAME)
        assert consent.reasked  # a condition is not a clear yes
        assert call.bridge.started(REASK) >= second.heard_at
        assert consent.outcome is ConsentOutcome.UNCLEAR
        _assert_no_prompt_over_the_caller(call)

    run_on_virtual_clock(monkeypatch, main)


def test_a_yes_taken_back_in_a_second_breath_is_no_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    """ "Sure." and, once its words are in, "Actually, no thanks.": one answer, unclear, so the
    re-ask settles it; no text on the first breath alone."""

    async def caller(call: Call) -> None:
        mark = await _give_the_message(call)
        await asyncio.sleep(mark + 1.0 - _now())
        await call.caller.say("Sure.", 0.5, 0.3)
        await asyncio.sleep(0.3 + SECOND_BREATH * 0.6)  # its words are in, and then some
        await call.caller.say("Actually, no thanks.", 1.2, 0.3)
        reasked = await call.line.assistant_quiet(3)
        await asyncio.sleep(reasked + 1.0 - _now())
        await call.caller.say("No.", 0.4, 0.3)

    async def main() -> None:
        call = await _run_call(caller)
        consent = call.conversation.consent
        first, second = (a.heard.utterance.text for a in consent.answers if a.heard.utterance)
        assert first == "Sure. Actually, no thanks."
        assert second == "No."
        _, sure, taken_back, _ = call.caller.spoken
        assert sure.heard_at < taken_back.began_at  # two breaths, the first one's words in
        assert consent.reasked and consent.outcome is ConsentOutcome.DECLINED
        _assert_no_prompt_over_the_caller(call)

    run_on_virtual_clock(monkeypatch, main)


def test_a_yes_is_taken_once_it_has_stood_for_a_breath(monkeypatch: pytest.MonkeyPatch) -> None:
    async def caller(call: Call) -> None:
        mark = await _give_the_message(call)
        await asyncio.sleep(mark + 1.0 - _now())
        await call.caller.say("Yes please.", 0.8, 0.3)

    async def main() -> None:
        call = await _run_call(caller)
        consent = call.conversation.consent
        assert consent.outcome is ConsentOutcome.AFFIRMATIVE and not consent.reasked
        _, yes = call.caller.spoken
        goodbye = call.bridge.started("you'll get a text shortly")
        assert yes.heard_at + SECOND_BREATH <= goodbye < yes.heard_at + SECOND_BREATH + 0.5

    run_on_virtual_clock(monkeypatch, main)


# --- questions at the consent point ----------------------------------------------------------

SCRIPT_FACTS = {
    "What kind of texts?": (
        "You'll get one or two texts within a day, things like a callback confirmation or "
        "follow-up."
    ),
    "How many texts will I get?": (
        "You'll get one or two texts within a day, things like a callback confirmation or "
        "follow-up."
    ),
    "Who will text me?": "The texts would come from Acme Plumbing.",
    "Will it cost me anything?": "Message and data rates may apply.",
    "Can I stop them?": "You can reply STOP to opt out, or HELP for help, anytime.",
}


@pytest.mark.parametrize("question", list(SCRIPT_FACTS))
def test_a_question_about_the_texts_gets_the_scripts_facts_then_a_clear_yes_decides(
    monkeypatch: pytest.MonkeyPatch, question: str
) -> None:
    async def caller(call: Call) -> None:
        mark = await _give_the_message(call)
        await asyncio.sleep(mark + 1.0 - _now())
        await call.caller.say(question, 1.5, 1.0)
        reasked = await call.line.assistant_quiet(3)
        await asyncio.sleep(reasked + 1.0 - _now())
        await call.caller.say("Yes please", 1.0, 1.0)

    async def main() -> None:
        call = await _run_call(caller)
        consent = call.conversation.consent
        facts = SCRIPT_FACTS[question]
        assert facts in consent.script.text or facts == "The texts would come from Acme Plumbing."
        reply = f"{facts} {ASK_YES_OR_NO}"
        assistant = [t.text for t in call.conversation.transcript if t.speaker == "assistant"]
        assert reply in assistant
        assert consent.reasked and consent.outcome is ConsentOutcome.AFFIRMATIVE
        asked, agreed = (a.heard.utterance.text for a in consent.answers if a.heard.utterance)
        assert (asked, agreed) == (question, "Yes please")
        assert consent.note == f"the caller asked about the texts and was told: {facts}"
        _assert_no_prompt_over_the_caller(call)

    run_on_virtual_clock(monkeypatch, main)


def test_after_the_facts_there_is_no_second_re_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    async def caller(call: Call) -> None:
        mark = await _give_the_message(call)
        await asyncio.sleep(mark + 1.0 - _now())
        await call.caller.say("How many texts?", 1.0, 1.0)
        reasked = await call.line.assistant_quiet(3)
        await asyncio.sleep(reasked + 1.0 - _now())
        await call.caller.say("And what do they cost?", 1.0, 1.0)

    async def main() -> None:
        call = await _run_call(caller)
        consent = call.conversation.consent
        assert consent.outcome is ConsentOutcome.UNCLEAR and len(consent.answers) == 2
        asks = [p.text for p in call.bridge.playbacks if ASK_YES_OR_NO in p.text or REASK in p.text]
        assert len(asks) == 1
        assert "Without a clear yes, we won't text you." in call.bridge.playbacks[-1].text

    run_on_virtual_clock(monkeypatch, main)


def test_a_key_press_after_the_facts_is_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    async def caller(call: Call) -> None:
        mark = await _give_the_message(call)
        await asyncio.sleep(mark + 1.0 - _now())
        await call.caller.say("Hmm, what kind of texts?", 1.5, 1.0)
        reasked = await call.line.assistant_quiet(3)
        await asyncio.sleep(reasked + 1.0 - _now())
        call.line.press("1")

    async def main() -> None:
        call = await _run_call(caller)
        consent = call.conversation.consent
        assert consent.outcome is ConsentOutcome.AFFIRMATIVE and consent.method == "keypad"

    run_on_virtual_clock(monkeypatch, main)


def test_a_no_with_a_question_stays_a_no(monkeypatch: pytest.MonkeyPatch) -> None:
    async def caller(call: Call) -> None:
        mark = await _give_the_message(call)
        await asyncio.sleep(mark + 1.0 - _now())
        await call.caller.say("No. How many texts anyway?", 1.5, 1.0)

    async def main() -> None:
        call = await _run_call(caller)
        consent = call.conversation.consent
        assert consent.outcome is ConsentOutcome.DECLINED and not consent.reasked

    run_on_virtual_clock(monkeypatch, main)


# --- taking the message -------------------------------------------------------------------------


@pytest.mark.parametrize("starts_after", [0.5, 4.0, 7.9])
def test_a_late_slow_answer_to_a_message_question_is_taken(
    monkeypatch: pytest.MonkeyPatch, starts_after: float
) -> None:
    async def caller(call: Call) -> None:
        asked = await call.line.assistant_quiet(1)
        await asyncio.sleep(asked + starts_after - _now())
        await call.caller.say("The water heater is banging", 3.0, 3.0)

    async def main() -> None:
        call = await _run_call(caller)
        assert call.conversation.message.need == "The water heater is banging"
        assert call.model.heard == ["The water heater is banging"]
        assert not any(ASK_AGAIN in p.text for p in call.bridge.playbacks)
        assert call.bridge.started(DONE) >= call.caller.spoken[0].heard_at
        _assert_no_prompt_over_the_caller(call)

    run_on_virtual_clock(monkeypatch, main)


def test_a_silent_caller_is_asked_again_after_the_silence_and_the_call_ends_politely(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quiet: list[float] = []

    async def caller(call: Call) -> None:
        for count in range(1, 5):
            quiet.append(await call.line.assistant_quiet(count))

    async def main() -> None:
        call = await _run_call(caller)
        asked, asked_again, script, reask = quiet
        assert call.model.heard == ["", ""]
        assert call.bridge.started(ASK_AGAIN) == pytest.approx(asked + ANSWER_SILENCE)
        assert call.bridge.started(DONE) == pytest.approx(asked_again + ANSWER_SILENCE)
        assert call.bridge.started(REASK) == pytest.approx(script + CONSENT_SILENCE)
        goodbye = call.bridge.playbacks[-1]
        assert goodbye.text.endswith("Thanks for calling, goodbye!")
        assert goodbye.first_audio_at == pytest.approx(reask + CONSENT_SILENCE)
        assert call.conversation.consent.outcome is ConsentOutcome.UNCLEAR

    run_on_virtual_clock(monkeypatch, main)


def test_after_a_barge_in_the_next_prompt_waits_for_the_callers_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def caller(call: Call) -> None:
        await asyncio.sleep(1.0)  # into the greeting and its question
        await call.caller.say("Hi my sink is leaking badly", 2.0, 3.0)

    async def main() -> None:
        call = await _run_call(caller)
        greeting, thanks, *_ = call.bridge.playbacks
        assert (await greeting.finished()).cleared
        assert call.conversation.message.need == "Hi my sink is leaking badly"
        assert thanks.text == DONE
        assert thanks.first_audio_at == pytest.approx(call.caller.spoken[0].heard_at)
        _assert_no_prompt_over_the_caller(call)

    run_on_virtual_clock(monkeypatch, main)


@pytest.mark.parametrize(
    "said",
    [
        "What?",  # not heard: the plain re-ask
        "Who is this?",
        "When will someone call me back?",  # the callback, not the texts
        "Can you stop texting me?",  # a refusal, however it is put
        "No. How many texts?",
        "Yes please",
    ],
)
def test_what_is_not_a_question_about_the_texts(said: str) -> None:
    script = render_consent_script("v1", ACME.name, ACME.max_texts)
    assert (
        answer_to_question(said, classify_answer(said), script, ACME.name, ACME.max_texts) is None
    )


def test_every_fact_given_is_the_scripts_own_sentence() -> None:
    script = render_consent_script("v1", "Bright Spark Electric", 4)
    said = "Who sends them, how many, what do they cost and can I opt out?"
    facts = answer_to_question(said, classify_answer(said), script, "Bright Spark Electric", 4)
    assert facts is not None
    sender, *quoted = split_sentences(facts)
    assert sender == "The texts would come from Bright Spark Electric."
    assert len(quoted) == 3 and all(sentence in script.text for sentence in quoted)
    assert "one to four texts within a day" in quoted[0]
