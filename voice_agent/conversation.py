"""The receptionist's side of one call: greet, take the message, ask for consent, say goodbye.

The consent question is the Conversation's own: the script is rendered from its versioned file
and spoken verbatim, it is not interruptible, and only speech that starts after the mark of its
last chunk counts as the answer (ARCHITECTURE.md, invariants 1–6 and 10).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from enum import StrEnum

from media_stream import CallBridge, CallEnded, CallerInput, Playback, Word
from voice_agent.businesses import Business
from voice_agent.chat import AgentReply, CallContext, CallerMessage, ChatModel, SpokenTurn
from voice_agent.consent import ConsentAnswer, classify_answer, classify_keypad
from voice_agent.consent_script import REASK, ConsentScript, render_consent_script
from voice_agent.text_refusal import asks_not_to_be_texted
from voice_agent.turn_metrics import TurnMetrics, measure_turn

logger = logging.getLogger(__name__)

ANSWER_TIMEOUT = 8.0  # seconds of caller silence before a question counts as unanswered
CONSENT_ANSWER_TIMEOUT = 7.0
MAX_MESSAGE_TURNS = 12
ANSWER_AUDIO_LEAD = 1.0  # seconds of audio kept before a recorded consent answer
RECORDING_SECONDS = 60.0  # how much caller audio a recorded call keeps in memory


class ConsentOutcome(StrEnum):
    AFFIRMATIVE = "affirmative"
    DECLINED = "declined"
    UNCLEAR = "unclear"
    NOT_ASKED = "not_asked"


@dataclass(frozen=True)
class Turn:
    """One thing said (or keyed) on the call, on the stream clock."""

    speaker: str  # "assistant" | "caller"
    kind: str  # "speech" | "keypad"
    text: str
    start: float
    end: float | None = None
    confidence: float | None = None
    words: tuple[Word, ...] = ()
    interrupted: bool = False


@dataclass
class ConsentAttempt:
    """Everything that happened at the consent question, for the evidence record."""

    script: ConsentScript
    script_started_at: float | None = None
    playback_confirmed_at: float | None = None
    answers: list[CallerInput] = field(default_factory=list)
    reasked: bool = False
    outcome: ConsentOutcome = ConsentOutcome.NOT_ASKED
    note: str = ""
    refused_during_call: bool = False  # "don't text me" before the question: never asked
    answer_audio: bytes = b""  # μ-law, 1 s before the spoken answer to its end (when recording)

    @property
    def method(self) -> str:
        last = self.answers[-1] if self.answers else None
        return "keypad" if last is not None and last.digit is not None else "verbal"


class Conversation:
    """Runs one call over a CallBridge; the results stay on the instance for recording."""

    def __init__(
        self, business: Business, caller_number: str, chat_model: ChatModel, bridge: CallBridge
    ) -> None:
        self.business = business
        self.bridge = bridge
        self.chat_model = chat_model
        self.context = CallContext(
            business_name=business.name,
            services=business.services,
            callback_time=business.callback_time,
            caller_number=caller_number,
        )
        self.message = CallerMessage()
        self.transcript: list[Turn] = []
        self.turn_metrics: list[TurnMetrics] = []
        self.consent = ConsentAttempt(
            render_consent_script(
                business.consent_script_version, business.name, business.max_texts
            )
        )

    async def run(self) -> None:
        """The whole call; returns when it is over (the caller may hang up at any point)."""
        try:
            await self._take_message()
            if self.consent.refused_during_call:
                self.consent.outcome = ConsentOutcome.DECLINED
                self.consent.note = "the caller asked not to be texted during the call"
            else:
                await self._ask_consent()
            await self._say_uninterrupted(self._goodbye())
        except CallEnded:
            logger.info("caller hung up (%s)", self.bridge.end_reason)

    async def _take_message(self) -> None:
        first = await self.chat_model.reply(self.context, self.message, None)
        playback = await self._say(f"{self._greeting()} {first.text}")
        for _ in range(MAX_MESSAGE_TURNS):
            played = await playback.finished()  # ANSWER_TIMEOUT runs once the question is heard
            if played.cleared:
                self._cut_to_what_was_played(playback)
            heard = await self.bridge.next_input(ANSWER_TIMEOUT)
            playback, reply, reply_ready_at = await self._reply_to(self._hear(heard))
            if heard is not None:
                self.turn_metrics.append(measure_turn(self.bridge, heard, reply_ready_at, playback))
            if reply.finished:
                return
        self.message.notes.append("message taking stopped after too many turns")

    async def _reply_to(self, said: str) -> tuple[Playback, AgentReply, float]:
        """Speak the model's reply sentence by sentence as it is written; returns the playback,
        the finished reply and when its first sentence was ready (``time.monotonic()``)."""
        reply = self.chat_model.reply_stream(self.context, self.message, said)
        first_ready: list[float] = []

        async def sentences() -> AsyncIterator[str]:
            async for sentence in reply:
                first_ready.append(time.monotonic())
                yield sentence

        try:
            playback = await self.bridge.say_pieces(sentences())
            finished = await reply.result()
        finally:
            await reply.aclose()
        self.transcript.append(Turn("assistant", "speech", playback.text, playback.started_at))
        return playback, finished, first_ready[0] if first_ready else time.monotonic()

    def _cut_to_what_was_played(self, playback: Playback) -> None:
        """The caller talked over a reply: the transcript marks it interrupted, and the model's
        history keeps only the sentences the caller actually heard."""
        index = max(i for i, turn in enumerate(self.transcript) if turn.speaker == "assistant")
        self.transcript[index] = replace(self.transcript[index], interrupted=True)
        history = self.message.history
        if history and history[-1].speaker == "assistant":
            history[-1] = SpokenTurn("assistant", playback.played_text())

    def _hear(self, heard: CallerInput | None) -> str:
        """What the caller said ("" for silence, a key press, or speech nobody made out)."""
        if heard is None:
            return ""
        self._record_input(heard)
        said = heard.utterance.text if heard.utterance is not None else ""
        if asks_not_to_be_texted(said):
            self.consent.refused_during_call = True
        return said

    async def _ask_consent(self) -> None:
        """Read the script verbatim, take the answer, re-ask once; fail closed on any error."""
        attempt = self.consent
        try:
            attempt.script_started_at = self.bridge.stream_time
            played_at = await self._say_uninterrupted(attempt.script.text)
            if played_at is None:
                attempt.note = "the script's playback was never confirmed"
                return
            attempt.playback_confirmed_at = played_at
            answer = await self._consent_answer(after=played_at)
            if answer is ConsentAnswer.UNCLEAR:
                attempt.reasked = True
                reask_started = self.bridge.stream_time
                reask_played = await self._say_uninterrupted(REASK)
                if reask_played is None:
                    attempt.outcome = ConsentOutcome.UNCLEAR
                    attempt.note = "the re-ask's playback was never confirmed"
                    return
                answer = await self._consent_answer(after=reask_played, keypad_from=reask_started)
            attempt.outcome = ConsentOutcome(answer.value)
        except CallEnded:
            if attempt.playback_confirmed_at is not None:
                attempt.outcome = ConsentOutcome.UNCLEAR
                attempt.note = "the caller hung up before answering"
            raise
        except Exception:
            logger.exception("consent question failed; no texts will be sent")
            attempt.outcome = (
                ConsentOutcome.UNCLEAR
                if attempt.playback_confirmed_at is not None
                else ConsentOutcome.NOT_ASKED
            )
            attempt.note = "an error interrupted the consent question"

    async def _consent_answer(
        self, *, after: float, keypad_from: float | None = None
    ) -> ConsentAnswer:
        """Classify the first answer after the prompt's last mark (keypad only on the re-ask)."""
        while True:
            heard = await self.bridge.next_input(CONSENT_ANSWER_TIMEOUT)
            if heard is None:
                self.consent.note = "no answer"
                return ConsentAnswer.UNCLEAR
            if heard.digit is not None:
                if keypad_from is not None and heard.at >= keypad_from:
                    self._take_answer(heard)
                    return classify_keypad(heard.digit)
                continue
            assert heard.utterance is not None
            if heard.utterance.start < after:
                continue  # began while the question was still playing: not an answer
            self._take_answer(heard)
            spoken = heard.utterance
            self.consent.answer_audio = self.bridge.caller_audio(
                spoken.start - ANSWER_AUDIO_LEAD, spoken.end
            )
            return classify_answer(spoken.text)

    async def _say(self, text: str, *, interruptible: bool = True) -> Playback:
        playback = await self.bridge.say(text, interruptible=interruptible)
        self.transcript.append(Turn("assistant", "speech", text, playback.started_at))
        return playback

    async def _say_uninterrupted(self, text: str) -> float | None:
        """Play ``text`` without barge-in; the stream time its last mark came back, or None."""
        playback = await self._say(text, interruptible=False)
        result = await playback.finished()
        if self.bridge.ended:
            raise CallEnded(self.bridge.end_reason)
        return result.finished_at if result.played else None

    def _take_answer(self, heard: CallerInput) -> None:
        self._record_input(heard)
        self.consent.answers.append(heard)

    def _record_input(self, heard: CallerInput) -> None:
        if heard.digit is not None:
            self.transcript.append(Turn("caller", "keypad", heard.digit, heard.at, heard.at))
            return
        assert heard.utterance is not None
        spoken = heard.utterance
        self.transcript.append(
            Turn(
                "caller",
                "speech",
                spoken.text,
                spoken.start,
                spoken.end,
                spoken.confidence,
                spoken.words,
            )
        )

    def _greeting(self) -> str:
        recording = " This call is recorded." if self.business.recording_enabled else ""
        return (
            f"Thanks for calling {self.business.name}. Sorry we couldn't get to the phone. "
            f"I'm an automated assistant, and I'll take a message so the team can call you back."
            f"{recording}"
        )

    def _goodbye(self) -> str:
        callback = (
            f"Someone from {self.business.name} will call you back {self.business.callback_time}."
        )
        if self.consent.outcome is ConsentOutcome.AFFIRMATIVE:
            return f"Great, you'll get a text shortly. {callback} Thanks for calling. Goodbye!"
        return f"No problem, we won't text you. {callback} Thanks for calling. Goodbye!"
