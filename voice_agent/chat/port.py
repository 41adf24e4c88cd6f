"""The ChatModel port: the message-taking brain the Conversation talks to.

The Conversation greets the caller, then hands each final utterance to a ``ChatModel`` until the
model reports the message complete; then the Conversation itself reads the consent script. A
model only ever fills in the :class:`CallerMessage` and says what comes next — it never speaks,
writes or paraphrases the consent script. The embedded default is the deterministic
``ScriptedInterviewer``; an LLM adapter sits behind the same protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol


class Urgency(StrEnum):
    """How soon the caller needs the business."""

    EMERGENCY = "emergency"
    URGENT = "urgent"
    ROUTINE = "routine"


class MessageField(StrEnum):
    """The parts of the message, in the order a receptionist asks for them."""

    CALLER_NAME = "caller_name"
    NEED = "need"
    CALLBACK_NUMBER = "callback_number"
    URGENCY = "urgency"


class FollowUp(StrEnum):
    """What the scripted interviewer's last words wait for, besides the next empty part."""

    OTHER_NUMBER = "other_number"  # the number called from is not the best one: which is?
    NUMBER_READ_BACK = "number_read_back"  # a new number was read back: a correction may follow


@dataclass(frozen=True)
class SpokenTurn:
    """One thing said while the message was taken, as a conversational model remembers it."""

    speaker: Literal["caller", "assistant"]
    text: str


@dataclass
class CallerMessage:
    """The message the receptionist takes down; filled in during the call.

    ``need`` is what the caller needs in their own words (the owner sees it quoted); ``topic``
    is what the call was about in a few words of ours ("leaking kitchen sink"), for the texts
    to the caller, or None when no topic was recognised with confidence. ``emergencies`` lists
    each kind of danger the caller described (an ``EmergencyKind`` value) once they have been
    given its safety advice, so it is given once.

    ``missed_answers`` lists a field once for every time the caller gave no usable answer to its
    question (speech recognition heard nothing, or nothing that fits). ``follow_up`` is what the
    scripted interviewer's last question waits for when that is not simply the next empty part.
    ``history`` is what was said so far, for models that keep the conversation (the scripted
    interviewer does not); an interrupted reply should be cut there to what the caller actually
    heard. Together they are the only per-call state a model keeps, so one model instance can
    serve many calls.
    """

    caller_name: str | None = None
    need: str | None = None
    callback_number: str | None = None  # E.164
    urgency: Urgency | None = None
    address: str | None = None
    preferred_time: str | None = None  # in the caller's words; nobody promised it
    notes: list[str] = field(default_factory=list)
    missed_answers: list[MessageField] = field(default_factory=list)
    history: list[SpokenTurn] = field(default_factory=list)
    topic: str | None = None
    emergencies: list[str] = field(default_factory=list)
    follow_up: FollowUp | None = None

    def times_missed(self, message_field: MessageField) -> int:
        """How many times the question for ``message_field`` went without a usable answer."""
        return self.missed_answers.count(message_field)


@dataclass(frozen=True)
class CallContext:
    """What a model knows about the call: the business and the number calling.

    ``max_texts`` is how many texts the business may send a caller who agrees (None: not told).
    """

    business_name: str
    services: str
    callback_time: str
    caller_number: str  # E.164
    max_texts: int | None = None


@dataclass(frozen=True)
class AgentReply:
    """What the assistant says next; ``finished`` means the message is complete."""

    text: str
    finished: bool


class ChatModelFailure(Exception):
    """The chat provider failed or stalled; the call moves to the scripted interviewer."""


class SpokenReply(Protocol):
    """A reply being produced: its sentences as each is ready, then the finished reply."""

    def __aiter__(self) -> AsyncIterator[str]: ...

    async def result(self) -> AgentReply:
        """The whole reply (finishes the reply if its sentences were not all taken)."""
        ...

    async def aclose(self) -> None: ...


class ChatModel(Protocol):
    """Takes the caller's message, one turn at a time."""

    name: str

    async def reply(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> AgentReply:
        """Record what the caller said into ``message`` and say what comes next.

        ``caller_said`` is None when the call has just started (after the greeting): ask the
        first question.
        """
        ...

    def reply_stream(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> SpokenReply:
        """The same reply, sentence by sentence, so speech can start before it is finished."""
        ...


class WholeReply:
    """A SpokenReply for a model that answers all at once: one piece, the whole text."""

    def __init__(self, pending: Coroutine[Any, Any, AgentReply]) -> None:
        self._pending: Coroutine[Any, Any, AgentReply] | None = pending
        self._reply: AgentReply | None = None

    async def __aiter__(self) -> AsyncIterator[str]:
        reply = await self.result()
        if reply.text:
            yield reply.text

    async def result(self) -> AgentReply:
        if self._reply is None:
            assert self._pending is not None
            pending, self._pending = self._pending, None
            self._reply = await pending
        return self._reply

    async def aclose(self) -> None:
        if self._pending is not None:
            self._pending.close()
            self._pending = None
