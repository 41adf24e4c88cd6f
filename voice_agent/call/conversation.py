"""The receptionist's side of one call: greet, take the message, ask for consent, say goodbye.

The consent question is the Conversation's own: the script is rendered from its versioned file
and spoken verbatim, it is not interruptible, and only speech that starts after the mark of its
last chunk counts as the answer (ARCHITECTURE.md, invariants 1–6 and 10).

Turn-taking respects the caller: a question is unanswered only after a stretch of silence
(nothing heard, no words still being transcribed), never after a fixed time since it was asked;
speech that starts while the answer is awaited is taken however long its transcription takes,
and speech that goes on (or is still being transcribed) when the first words come belongs to the
same answer. The bridge never starts a prompt while the caller holds the floor.

The evidence's moments are ``time.monotonic()`` readings of when things reached us (a mark, the
audio carrying a word), not stream times: the stream clock is exact on Twilio but runs ahead of
the wall when a simulator streams faster than real time; they come from the audio, so they do
not depend on how long the transcriber took.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from media_stream import (
    AnswerKind,
    CallBridge,
    CallEnded,
    CallerInput,
    Playback,
    PlaybackResult,
    Utterance,
    fixed_prompts,
    split_sentences,
)
from voice_agent.call.answer_wanted import answer_wanted
from voice_agent.call.prompt_warmup import consent_prompts, render_ahead
from voice_agent.call.turn_metrics import measure_turn
from voice_agent.chat.port import AgentReply, CallContext, CallerMessage, ChatModel, SpokenTurn
from voice_agent.consent.classifier import ConsentAnswer, classify_answer, classify_keypad
from voice_agent.consent.questions import ASK_YES_OR_NO, answer_to_question
from voice_agent.consent.refusal import asks_not_to_be_texted
from voice_agent.consent.script import REASK, ConsentScript, render_consent_script
from voice_agent.records.businesses import Business
from voice_agent.records.calls import Turn, TurnMetrics

logger = logging.getLogger(__name__)

ANSWER_SILENCE = 8.0
"""Seconds of silence (nothing heard, no words still being transcribed) after which a message
question counts as unanswered and the model asks again: time to think or to look up a number,
short enough that a caller who missed the question is asked again before wondering whether
anyone is there. The clock runs only while the caller is silent."""

CONSENT_SILENCE = 7.0
"""The same for the consent question and its re-ask: a yes or a no needs less thought than a
message does, and a caller who stays silent reaches the goodbye (no texts) sooner."""

SECOND_BREATH = 1.0
"""Seconds of silence a yes must stand for before it is taken: a caller who says "Sure." and,
a breath later, "Actually, no thanks" has not agreed. What they say within it joins the answer
(which the classifier then hears as unclear, and the re-ask settles). Only a yes waits: a no
or an unclear answer cannot become less of a yes."""

MAX_MESSAGE_TURNS = 12
ANSWER_AUDIO_LEAD = 1.0  # seconds of audio kept before a recorded consent answer
RECORDING_SECONDS = 60.0  # how much caller audio a recorded call keeps in memory


TRANSFER_OFFER = "I can connect you to the on-call technician now. Would you like that?"
TRANSFER_CONNECTING = "Connecting you now. Please stay on the line."
TRANSFER_DECLINED = "Okay, I'll take your message."
TRANSFER_UNAVAILABLE = (
    "I'm sorry, I can't connect you right now. Your message is marked as an emergency."
)


class TransferDesk(Protocol):
    """Where an emergency caller can be put through to a person on call."""

    def open_now(self) -> bool:
        """Whether someone is on call now."""
        ...

    async def request(self) -> bool:
        """Ask for this call's transfer, to follow when the stream closes; False when it cannot
        be arranged."""
        ...


class ConsentOutcome(StrEnum):
    AFFIRMATIVE = "affirmative"
    DECLINED = "declined"
    UNCLEAR = "unclear"
    NOT_ASKED = "not_asked"


@dataclass(frozen=True)
class TimedAnswer:
    """One answer to the consent question and when it reached us (``time.monotonic()``).

    The moments are those at which the audio carrying the answer's start, end and words (or
    the key press) arrived; none is before the script's playback was confirmed, and they keep
    the answer's order: start, each word's start and end, end.
    """

    heard: CallerInput
    started_at: float
    ended_at: float
    word_times: tuple[tuple[float, float], ...] = ()


@dataclass
class ConsentAttempt:
    """Everything that happened at the consent question, for the evidence record."""

    script: ConsentScript
    script_started_at: float | None = None  # time.monotonic() as the script began
    playback_confirmed_at: float | None = None  # time.monotonic() as its last mark arrived
    script_audio_sha256: str | None = None  # of the μ-law sent for the script, once confirmed
    answers: list[TimedAnswer] = field(default_factory=list)
    reasked: bool = False
    outcome: ConsentOutcome = ConsentOutcome.NOT_ASKED
    note: str = ""
    refused_during_call: bool = False  # "don't text me" before the question: never asked
    answer_audio: bytes = b""  # μ-law, 1 s before the spoken answer to its end (when recording)

    @property
    def method(self) -> str:
        last = self.answers[-1].heard if self.answers else None
        return "keypad" if last is not None and last.digit is not None else "verbal"


@dataclass(frozen=True)
class CallOutcome:
    """What one call produced, taken when it ended: storage reads this, never the Conversation."""

    message: CallerMessage
    consent: ConsentAttempt
    transcript: tuple[Turn, ...]
    turn_metrics: tuple[TurnMetrics, ...]
    notice_confirmed_at: float | None = None  # time.monotonic() as the greeting's mark arrived


class Conversation:
    """Runs one call over a CallBridge; :meth:`outcome` hands over what it produced."""

    def __init__(
        self,
        business: Business,
        caller_number: str,
        chat_model: ChatModel,
        bridge: CallBridge,
        transfer_desk: TransferDesk | None = None,
    ) -> None:
        self.business = business
        self.transfer_desk = transfer_desk
        self.bridge = bridge
        self.chat_model = chat_model
        self.context = CallContext(
            business_name=business.name,
            services=business.services,
            callback_time=business.callback_time,
            caller_number=caller_number,
            max_texts=business.max_texts,
        )
        self.message = CallerMessage()
        self.notice_played = asyncio.Event()  # set once Twilio has played the greeting's notice
        self.notice_confirmed_at: float | None = None
        self._confirming_notice: asyncio.Task[None] | None = None
        self._transfer_offered = False
        self._rendering_ahead: asyncio.Task[None] | None = None
        self.transcript: list[Turn] = []
        self.turn_metrics: list[TurnMetrics] = []
        self.consent = ConsentAttempt(
            render_consent_script(
                business.consent_script_version, business.name, business.max_texts
            )
        )

    def hear_last(self, inputs: Sequence[CallerInput]) -> None:
        """Keep in the transcript what the caller said or pressed that the call ended before
        taking (words transcribed as the caller hung up): heard, never taken as an answer."""
        for heard in inputs:
            self._record_input(heard)

    def outcome(self, notes: Sequence[str] = ()) -> CallOutcome:
        """A snapshot of what the call produced, with ``notes`` from outside the conversation
        (provider failovers) added to the message's own."""
        message = copy.deepcopy(self.message)
        message.notes.extend(notes)
        return CallOutcome(
            message,
            copy.deepcopy(self.consent),
            tuple(self.transcript),
            tuple(self.turn_metrics),
            self.notice_confirmed_at,
        )

    async def run(self) -> None:
        """The whole call; returns when it is over (the caller may hang up at any point)."""
        try:
            if await self._take_message() or await self._put_through():
                return  # the stream closes and Twilio rings the on-call phones
            if self.consent.refused_during_call:
                self.consent.outcome = ConsentOutcome.DECLINED
                self.consent.note = "the caller asked not to be texted during the call"
            else:
                await self._ask_consent()
            await self._say_uninterrupted(self._goodbye())
        except CallEnded:
            logger.info("caller hung up (%s)", self.bridge.end_reason)
        finally:
            for task in (self._rendering_ahead, self._confirming_notice):
                if task is not None:
                    task.cancel()

    async def _take_message(self) -> bool:
        """Take the message; True when, as an emergency, the caller was put through instead."""
        first = await self.chat_model.reply(self.context, self.message, None)
        # The greeting and the first question, said before the caller has said anything: the
        # same words on every call of this business, rendered once.
        notice = greeting(self.business)
        playback = await self._say(f"{notice} {first.text}", fixed=True)
        self._confirming_notice = asyncio.create_task(
            self._confirm_notice(playback, len(split_sentences(notice)))
        )
        # The consent prompts are rendered while the message is taken, once the greeting is out
        # (never before it: a voice renders one sentence at a time).
        self._rendering_ahead = asyncio.create_task(
            render_ahead(self.bridge.synthesizer, consent_prompts(self.business))
        )
        for _ in range(MAX_MESSAGE_TURNS):
            played = await playback.finished()  # the silence is counted once the question is heard
            if played.cleared:
                self._cut_to_what_was_played(playback)
            heard = await self._caller_turn(ANSWER_SILENCE)
            playback, reply, reply_ready_at = await self._reply_to(self._hear(heard))
            if heard is not None:
                self.turn_metrics.append(measure_turn(self.bridge, heard, reply_ready_at, playback))
            if reply.finished:
                return False
            if self._transfer_due() and (await playback.finished()).played:
                # The emergency was just heard: a person is offered now, not after the message.
                if await self._put_through():
                    return True
                playback = await self._say(_going_on(playback.text))
        self.message.notes.append("message taking stopped after too many turns")
        return False

    async def _confirm_notice(self, playback: Playback, sentences: int) -> None:
        """The greeting's notice (an automated assistant; a recorded call) is confirmed once
        Twilio has played its sentences, the first of ``playback``; a caller who talked over
        it, or hung up, was never told in full, and it stays unconfirmed."""
        played_at = await playback.until_played(sentences)
        if played_at is not None:
            self.notice_confirmed_at = played_at
            self.notice_played.set()

    def _transfer_due(self) -> bool:
        """The message is an emergency, someone is on call, and no transfer was offered yet."""
        desk = self.transfer_desk
        if self._transfer_offered or desk is None or not self.message.emergencies:
            return False
        return desk.open_now()

    async def _put_through(self) -> bool:
        """Offer an emergency caller the on-call technician (once a call), when someone is on
        call; True when the caller said yes and the transfer is asked for (no consent question
        then: no texts). Every offer and its answer is in the message's notes."""
        desk = self.transfer_desk
        if desk is None or not self._transfer_due():
            return False
        self._transfer_offered = True
        await self._say_uninterrupted(TRANSFER_OFFER)
        heard = await self._caller_turn(CONSENT_SILENCE)
        said = self._hear(heard)
        pressed = heard.digit if heard is not None else None
        answer = classify_keypad(pressed) if pressed is not None else classify_answer(said)
        offered = "an emergency: offered the on-call technician"
        if answer is not ConsentAnswer.AFFIRMATIVE:
            declined = answer is ConsentAnswer.DECLINED
            self.message.notes.append(f"{offered}; {'declined' if declined else 'no clear yes'}")
            return False
        if not await desk.request():
            self.message.notes.append(f"{offered}; accepted, but it could not be arranged")
            await self._say_uninterrupted(TRANSFER_UNAVAILABLE)
            return False
        self.message.notes.append(f"{offered}; accepted and put through")
        await self._say_uninterrupted(TRANSFER_CONNECTING)
        return True

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
            self.bridge.expect(answer_wanted(finished.text))
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

    async def _caller_turn(self, silence: float) -> CallerInput | None:
        """The caller's next turn, or None after ``silence`` seconds of silence."""
        heard = await self.bridge.next_input(silence)
        if heard is None or heard.utterance is None:
            return heard
        return await self._rest_of_turn(heard)

    async def _rest_of_turn(self, heard: CallerInput) -> CallerInput:
        """``heard`` with what the caller went on to say: speech going on, or still being
        transcribed, when its words came is part of the same turn. A key press meanwhile is
        recorded and goes no further."""
        parts = [heard]
        while self.bridge.speech_pending:
            more = await self.bridge.next_input(0.0)
            if more is None:
                break
            if more.utterance is None:
                self._record_input(more)
                continue
            parts.append(more)
        return _joined(parts)

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
        """Read the script verbatim, take the answer, re-ask once (answering a question about
        the texts with the script's own facts first); fail closed on any error."""
        attempt = self.consent
        try:
            script_playback = await self._say(attempt.script.text, interruptible=False)
            attempt.script_started_at = script_playback.first_audio_at or time.monotonic()
            script = await self._played_through(script_playback)
            if not script.played:
                attempt.note = "the script's playback was never confirmed"
                return
            attempt.playback_confirmed_at = script.known_at
            attempt.script_audio_sha256 = script_playback.audio_sha256
            answer = await self._consent_answer(after=script.finished_at)
            reask_text = self._reask(answer)
            if reask_text is not None:
                attempt.reasked = True
                reask_playback = await self._say(reask_text, interruptible=False)
                reask = await self._played_through(reask_playback)
                if not reask.played:
                    attempt.outcome = ConsentOutcome.UNCLEAR
                    self._note("the re-ask's playback was never confirmed")
                    return
                answer = await self._consent_answer(
                    after=reask.finished_at, keypad_from=reask_playback.started_at
                )
            attempt.outcome = ConsentOutcome(answer.value)
        except CallEnded:
            if attempt.playback_confirmed_at is not None:
                attempt.outcome = ConsentOutcome.UNCLEAR
                self._note("the caller hung up before answering")
            raise
        except Exception:
            logger.exception("consent question failed; no texts will be sent")
            attempt.outcome = (
                ConsentOutcome.UNCLEAR
                if attempt.playback_confirmed_at is not None
                else ConsentOutcome.NOT_ASKED
            )
            self._note("an error interrupted the consent question")

    def _reask(self, answer: ConsentAnswer) -> str | None:
        """What to ask once more after the first answer, or None when it decided: the re-ask
        for an unclear answer; for a question about the texts, the script's facts that answer
        it and the re-ask of the yes or no (recorded in the evidence's note)."""
        if answer is ConsentAnswer.AFFIRMATIVE:
            return None
        heard = self.consent.answers[-1].heard if self.consent.answers else None
        said = heard.utterance.text if heard is not None and heard.utterance is not None else ""
        business = self.business
        facts = answer_to_question(
            said, answer, self.consent.script, business.name, business.max_texts
        )
        if facts is not None:
            self._note(f"the caller asked about the texts and was told: {facts}")
            return f"{facts} {ASK_YES_OR_NO}"
        return REASK if answer is ConsentAnswer.UNCLEAR else None

    def _note(self, note: str) -> None:
        self.consent.note = f"{self.consent.note}; {note}" if self.consent.note else note

    async def _consent_answer(
        self, *, after: float, keypad_from: float | None = None
    ) -> ConsentAnswer:
        """Classify the first answer after the prompt's last mark (keypad only on the re-ask)."""
        hurry = asyncio.create_task(self._finalize_when_speech_stops())
        try:
            return await self._first_answer(after, keypad_from)
        finally:
            hurry.cancel()

    async def _finalize_when_speech_stops(self) -> None:
        """Whenever the caller stops speaking before the transcriber has settled their words,
        ask for those words at once: the answer is decided without waiting for the
        transcriber's endpointing (Deepgram's Finalize)."""
        while True:
            await self.bridge.speech_stopped()
            await self.bridge.finalize_transcript()

    async def _first_answer(self, after: float, keypad_from: float | None) -> ConsentAnswer:
        """The first answer that starts after the prompt's mark; speech still going on when it
        comes is part of it. Earlier speech and keys are in the transcript, not answers."""
        while True:
            heard = await self.bridge.next_input(CONSENT_SILENCE)
            if heard is None:
                asked = "the question" if keypad_from is None else "the re-ask"
                self._note(f"no answer to {asked}")
                return ConsentAnswer.UNCLEAR
            if heard.digit is not None:
                if keypad_from is not None and heard.at >= keypad_from:
                    self._take_answer(heard)
                    return classify_keypad(heard.digit)
                self._record_input(heard)
                continue
            assert heard.utterance is not None
            if heard.utterance.start < after:
                self._record_input(heard)  # began while the question was still playing
                continue
            answer = await self._rest_of_turn(heard)
            assert answer.utterance is not None
            if classify_answer(answer.utterance.text) is ConsentAnswer.AFFIRMATIVE:
                answer = await self._second_breath(answer)
            self._take_answer(answer)
            spoken = answer.utterance
            assert spoken is not None
            self.consent.answer_audio = self.bridge.caller_audio(
                spoken.start - ANSWER_AUDIO_LEAD, spoken.end
            )
            return classify_answer(spoken.text)

    async def _second_breath(self, answer: CallerInput) -> CallerInput:
        """``answer`` (a yes) with what the caller goes on to say before `SECOND_BREATH`
        seconds of silence. A key press meanwhile is recorded and changes nothing; a caller who
        hangs up has let the yes stand."""
        try:
            more = await self.bridge.next_input(SECOND_BREATH)
        except CallEnded:
            return answer
        if more is None:
            return answer
        if more.utterance is None:
            self._record_input(more)
            return answer
        return _joined([answer, await self._rest_of_turn(more)])

    async def _say(
        self, text: str, *, interruptible: bool = True, fixed: bool | None = None
    ) -> Playback:
        """Speak ``text``; a fixed prompt (by default, whatever is not interruptible: the script,
        the re-ask, the goodbye) is rendered once per voice and replayed on later calls."""
        is_fixed = not interruptible if fixed is None else fixed
        # What is said without barge-in (the consent script, its re-ask, the transfer offer,
        # the goodbye) wants a yes, a no or nothing: heard with nothing favoured.
        self.bridge.expect(answer_wanted(text) if interruptible else AnswerKind.ANY)
        with fixed_prompts() if is_fixed else contextlib.nullcontext():
            playback = await self.bridge.say(text, interruptible=interruptible)
        self.transcript.append(Turn("assistant", "speech", text, playback.started_at))
        return playback

    async def _say_uninterrupted(self, text: str) -> PlaybackResult:
        """Play ``text`` without barge-in, until its last mark came back (or it never will)."""
        return await self._played_through(await self._say(text, interruptible=False))

    async def _played_through(self, playback: Playback) -> PlaybackResult:
        result = await playback.finished()
        if self.bridge.ended:
            raise CallEnded(self.bridge.end_reason)
        return result

    def _take_answer(self, heard: CallerInput) -> None:
        self._record_input(heard)
        confirmed = self.consent.playback_confirmed_at
        assert confirmed is not None, "an answer comes only after the script was played"
        self.consent.answers.append(_timed_answer(self.bridge, heard, confirmed))

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

    def _goodbye(self) -> str:
        """Whether texts will come, the callback (unless the caller just heard it), goodbye."""
        business = self.business
        callback = f"Someone from {business.name} will call you back {business.callback_time}."
        said = [turn.text for turn in self.transcript if turn.speaker == "assistant"]
        promise = "" if any(callback in text for text in said) else f" {callback}"
        if self.consent.outcome is ConsentOutcome.AFFIRMATIVE:
            texts = "Great, you'll get a text shortly."
        elif self.consent.outcome is ConsentOutcome.UNCLEAR:
            texts = "Without a clear yes, we won't text you."
        else:
            texts = "Okay, we won't text you."
        return f"{texts}{promise} Thanks for calling, goodbye!"


def _going_on(reply: str) -> str:
    """After a declined transfer, back to the message: the question the reply ended with, asked
    again (the caller answered the offer, not it)."""
    sentences = split_sentences(reply)
    question = sentences[-1] if sentences and sentences[-1].endswith("?") else ""
    return f"{TRANSFER_DECLINED} {question}".strip()


def greeting(business: Business) -> str:
    """The first words of a call, as short as the disclosures allow (at most 6 s of audio): whose
    line it is, that an automated assistant answers, and that the call is recorded when it is.
    The model's first question follows at once."""
    name = business.name
    possessive = f"{name}'" if name.endswith("s") else f"{name}'s"
    recording = " This call is recorded." if business.recording_enabled else ""
    return f"This is {possessive} automated assistant.{recording}"


def _joined(parts: Sequence[CallerInput]) -> CallerInput:
    """One caller turn said in several utterances, as one: their words in order, from the first
    one's start to the last one's end."""
    if len(parts) == 1:
        return parts[0]
    spoken = [part.utterance for part in parts if part.utterance is not None]
    words = tuple(word for utterance in spoken for word in utterance.words)
    engines = dict.fromkeys(utterance.engine for utterance in spoken)
    last = parts[-1]
    utterance = Utterance(
        text=" ".join(utterance.text for utterance in spoken if utterance.text),
        start=spoken[0].start,
        end=spoken[-1].end,
        confidence=sum(word.confidence for word in words) / len(words) if words else 0.0,
        engine=" + ".join(engines),
        words=words,
        endpointed_at=spoken[-1].endpointed_at,
    )
    return CallerInput(at=last.at, utterance=utterance, received_at=last.received_at)


def _timed_answer(bridge: CallBridge, heard: CallerInput, not_before: float) -> TimedAnswer:
    """When ``heard`` reached us, from the arrival of its audio (or of its key press)."""
    if heard.digit is not None:
        pressed = max(heard.received_at, not_before)
        return TimedAnswer(heard, pressed, pressed)
    assert heard.utterance is not None
    spoken = heard.utterance
    started = max(_arrival(bridge, spoken.start), not_before)
    word_times: list[tuple[float, float]] = []
    latest = started
    for word in spoken.words:
        word_start = max(_arrival(bridge, word.start), latest)
        latest = max(_arrival(bridge, word.end), word_start)
        word_times.append((word_start, latest))
    ended = max(_arrival(bridge, spoken.end), latest)
    return TimedAnswer(heard, started, ended, tuple(word_times))


def _arrival(bridge: CallBridge, stream_time: float) -> float:
    """When the caller's audio at ``stream_time`` arrived; now, if it has not been seen."""
    arrived = bridge.arrival_time(stream_time)
    return time.monotonic() if arrived is None else arrived
