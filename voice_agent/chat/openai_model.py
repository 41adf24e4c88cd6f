"""The OpenAI ChatModel: a language model takes the message over streaming Chat Completions.

Any OpenAI-compatible server works (``base_url``), so a self-hosted model can stand in. Each turn
sends the system prompt from ``prompts/system.md`` (rendered with the business profile and what is
recorded so far), the call's spoken history and the caller's latest words, with two tools:
``record_message`` fills in the :class:`CallerMessage`, ``finish_message`` says it is complete.

Tokens become sentences as they stream in, and every sentence passes the guardrails before it is
handed on, so speech can start before the reply is finished (:meth:`OpenAIChatModel.reply_stream`).
The model instance is shared by every call: a call's state lives only in its ``CallerMessage``
(fields and ``history``). Any provider trouble — connection refused, an HTTP error, a stall longer
than ``timeout``, a malformed or truncated stream — raises :class:`ChatModelFailure`, leaving the
message as it was before the turn (but flagged as an emergency if the caller described a danger),
so the caller can hand the same words to the scripted interviewer. A danger the caller describes
opens the reply with its fixed safety line (the guardrails, with the scripted interviewer's own
detector), and the message's ``topic`` — what the call is about in our words, for the texts — is
matched from the caller's words, or else from the need the model records.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field, fields
from importlib.resources import files
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from media_stream import SentenceSplitter
from voice_agent.chat.guardrails import (
    ReplyGuard,
    escalate_for_danger,
    may_finish,
    missing_fields,
    settled_urgency,
)
from voice_agent.chat.interviewer import ScriptedInterviewer, spoken_phone_number
from voice_agent.chat.port import (
    AgentReply,
    CallContext,
    CallerMessage,
    ChatModelFailure,
    MessageField,
    SpokenTurn,
    Urgency,
)
from voice_agent.chat.topics import find_topic
from voice_agent.phone import InvalidPhoneNumber, to_e164

logger = logging.getLogger(__name__)

SYSTEM_PROMPT_PATH = files("prompts") / "system.md"
RECORD_MESSAGE = "record_message"
FINISH_MESSAGE = "finish_message"
MAX_REPLY_TOKENS = 300
MAX_CALLER_CHARS = 1000
MAX_HISTORY_TURNS = 24
MAX_NAME_CHARS = 100
MAX_NEED_CHARS = 500
MAX_ADDRESS_CHARS = 200
MAX_PREFERRED_TIME_CHARS = 100
FINISHED_WITHOUT_WORDS = "Thanks, I've got all that."
CALLER_SILENT = "(The caller said nothing that could be made out.)"

_FIELD_LABELS = {
    MessageField.CALLER_NAME: "the caller's name",
    MessageField.NEED: "what they need",
    MessageField.CALLBACK_NUMBER: "a callback number",
}

_STRING = {"type": "string"}
TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": RECORD_MESSAGE,
            "description": (
                "Record details of the caller's message as soon as they give them. "
                "Only include what the caller actually said."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "caller_name": {**_STRING, "description": "The caller's name."},
                    "need": {
                        **_STRING,
                        "description": "What they need, in the caller's own words (a sentence "
                        "or two; it is shown to the owner as their quote).",
                    },
                    "address": {**_STRING, "description": "The job's address, if given."},
                    "callback_number": {
                        **_STRING,
                        "description": "A different callback number, digits as they said them.",
                    },
                    "confirmed_calling_number": {
                        "type": "boolean",
                        "description": "True if the number they are calling from is best.",
                    },
                    "urgency": {"type": "string", "enum": [level.value for level in Urgency]},
                    "preferred_time": {
                        **_STRING,
                        "description": "When they would like the work done, in their words.",
                    },
                },
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": FINISH_MESSAGE,
            "description": "The message is complete: name, need and callback number recorded.",
            "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
        },
    },
]


# --- one streamed completion ---------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model made, assembled from its streamed fragments."""

    id: str
    name: str
    arguments: str


@dataclass
class _ToolCallParts:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class CompletionRound:
    """What one streamed completion produced besides its text."""

    text: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    _parts: dict[int, _ToolCallParts] = field(default_factory=dict)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(parts.id or f"call_{index}", parts.name, "".join(parts.arguments))
            for index, parts in sorted(self._parts.items())
        ]

    def take(self, chunk: Any) -> str | None:
        """Fold one chunk in; its content piece, if any. Raises ValueError on a malformed chunk."""
        try:
            choices = chunk.choices
            if not isinstance(choices, list):
                raise ValueError(f"chunk choices is {type(choices).__name__}, not a list")
            content = None
            for choice in choices:
                if choice.index != 0:
                    continue
                delta = choice.delta
                for fragment in delta.tool_calls or ():
                    self._take_tool_fragment(fragment)
                if choice.finish_reason is not None:
                    self.finish_reason = str(choice.finish_reason)
                if delta.content:
                    content = str(delta.content)
        except (AttributeError, TypeError) as error:
            raise ValueError(f"malformed chunk: {error}") from error
        if content is not None:
            self.text.append(content)
        return content

    def _take_tool_fragment(self, fragment: Any) -> None:
        if not isinstance(fragment.index, int):
            raise ValueError(f"tool call fragment without an index: {fragment!r}")
        parts = self._parts.setdefault(fragment.index, _ToolCallParts())
        if fragment.id:
            parts.id = parts.id or str(fragment.id)
        function = fragment.function
        if function is None:
            return
        if function.name:
            parts.name = parts.name or str(function.name)
        if function.arguments:
            parts.arguments.append(str(function.arguments))


class ChatCompletionsStream:
    """Streams completions from an OpenAI-compatible server; provider trouble → ChatModelFailure."""

    def __init__(self, client: openai.AsyncOpenAI, model: str) -> None:
        self._client = client
        self.model = model

    async def pieces(
        self, messages: list[ChatCompletionMessageParam], *, tools: bool, into: CompletionRound
    ) -> AsyncIterator[str]:
        """Content pieces as they arrive; tool calls and the finish reason are folded ``into``."""
        try:
            stream = await self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                tools=TOOLS,
                tool_choice="auto" if tools else "none",
                stream=True,
                stream_options={"include_usage": True},
                max_tokens=MAX_REPLY_TOKENS,
                temperature=0.3,
            )
            async with stream:
                async for chunk in stream:
                    piece = into.take(chunk)
                    if piece is not None:
                        yield piece
        except openai.APIStatusError as error:
            raise ChatModelFailure(f"{self.model}: HTTP {error.status_code}") from error
        except openai.APITimeoutError as error:
            raise ChatModelFailure(f"{self.model}: no data in time (stalled)") from error
        except openai.APIConnectionError as error:
            raise ChatModelFailure(f"{self.model}: connection failed ({error})") from error
        except (openai.OpenAIError, ValueError) as error:
            raise ChatModelFailure(f"{self.model}: malformed stream ({error})") from error
        if into.finish_reason is None:
            raise ChatModelFailure(f"{self.model}: the stream ended before the reply finished")


# --- one turn --------------------------------------------------------------------------------


class ReplyStream:
    """One reply, streamed: iterate for guarded sentences as they arrive, then await ``result``.

    The sentences are exactly what ``result().text`` holds, in order. Iteration raises
    ChatModelFailure on provider trouble, with the message left as it was. ``aclose`` stops the
    request (the caller hung up or barged in): the caller's words and what was said so far are
    kept in the history, tool calls not yet complete are dropped.
    """

    def __init__(
        self,
        completions: ChatCompletionsStream,
        prompt_template: str,
        context: CallContext,
        message: CallerMessage,
        caller_said: str | None,
    ) -> None:
        self._completions = completions
        self._prompt_template = prompt_template
        self._context = context
        self._message = message
        self._caller_said = caller_said
        self._guard = ReplyGuard(
            context,
            caller_said,
            known_names=[message.caller_name or ""],
            advised=frozenset(message.emergencies),
        )
        self._reply: AgentReply | None = None
        self._failure: ChatModelFailure | None = None
        self._sentences = self._run()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._sentences

    async def result(self) -> AgentReply:
        """The whole reply (waits for the rest of the sentences if they were not consumed)."""
        async for _ in self._sentences:
            pass
        if self._failure is not None:
            raise self._failure
        if self._reply is None:
            raise ChatModelFailure("the reply was closed before it finished")
        return self._reply

    async def aclose(self) -> None:
        """Stop the reply; idempotent."""
        await self._sentences.aclose()

    async def _run(self) -> AsyncGenerator[str, None]:
        try:
            if self._caller_said is None:
                opening = await ScriptedInterviewer().reply(self._context, self._message, None)
                yield self._guard.admit(opening.text)
                self._settle(opening.finished)
                return
            async for sentence in self._model_turn():
                yield sentence
        except ChatModelFailure as failure:
            self._failure = failure
            logger.warning("chat model failed: %s", failure)
            raise
        finally:
            if self._reply is None and self._failure is None:
                self._remember()

    async def _model_turn(self) -> AsyncGenerator[str, None]:
        escalate_for_danger(self._message, self._caller_said)
        before = copy.deepcopy(self._message)
        if self._message.topic is None:  # in our words, for the caller's texts
            self._message.topic = find_topic(self._caller_said)
        try:
            async for sentence in self._model_rounds():
                yield sentence
        except ChatModelFailure:
            _restore(self._message, before)  # the fallback takes the same words afresh
            raise

    async def _model_rounds(self) -> AsyncGenerator[str, None]:
        for sentence in self._guard.opening():
            yield sentence
        opening_count = len(self._guard.spoken)
        messages = self._messages()
        first = CompletionRound()
        async for sentence in self._round(messages, first, tools=True):
            yield sentence
        finish_requested, outcomes = self._apply(first.tool_calls)
        model_spoke = len(self._guard.spoken) > opening_count
        if outcomes and not model_spoke and not (finish_requested and may_finish(self._message)):
            follow_up = CompletionRound()
            messages += _tool_exchange(first, outcomes)
            async for sentence in self._round(messages, follow_up, tools=False):
                yield sentence
            finish_requested |= self._apply(follow_up.tool_calls)[0]
            model_spoke = len(self._guard.spoken) > opening_count
        finished = finish_requested and may_finish(self._message)
        if not model_spoke:
            fallback = await self._fallback(finished)
            yield self._guard.admit(fallback.text)
            finished = fallback.finished
        self._settle(finished)

    async def _round(
        self, messages: list[ChatCompletionMessageParam], into: CompletionRound, *, tools: bool
    ) -> AsyncIterator[str]:
        splitter = SentenceSplitter()
        async for piece in self._completions.pieces(messages, tools=tools, into=into):
            for sentence in splitter.feed(piece):
                screened = self._guard.screen(sentence)
                if screened is not None:
                    yield screened
        rest = splitter.flush()
        screened = self._guard.screen(rest) if rest is not None else None
        if screened is not None:
            yield screened

    async def _fallback(self, finished: bool) -> AgentReply:
        """What to say when the model said nothing speakable: the scripted next question."""
        if finished:
            return AgentReply(FINISHED_WITHOUT_WORDS, finished=True)
        logger.info("the model said nothing speakable: asking the scripted question")
        scripted = await ScriptedInterviewer().reply(self._context, self._message, None)
        return AgentReply(scripted.text, scripted.finished and may_finish(self._message))

    def _apply(self, calls: list[ToolCall]) -> tuple[bool, list[tuple[ToolCall, str]]]:
        """Apply the tool calls to the message; whether finishing was asked, and each outcome."""
        finish_requested = False
        outcomes: list[tuple[ToolCall, str]] = []
        for call in calls:
            if call.name == FINISH_MESSAGE:
                finish_requested = True
                outcomes.append((call, _finish_outcome(self._message)))
            elif call.name == RECORD_MESSAGE:
                outcomes.append((call, self._record(call)))
            else:
                logger.warning("the model called an unknown tool %r", call.name[:80])
                outcomes.append((call, f"There is no tool called {call.name[:80]!r}."))
        return finish_requested, outcomes

    def _record(self, call: ToolCall) -> str:
        try:
            arguments = json.loads(call.arguments or "{}")
        except json.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            logger.warning("record_message arguments are not a JSON object: %r", call.arguments)
            return "Nothing recorded: the arguments were not a JSON object."
        record_details(self._context, self._message, arguments)
        return _finish_outcome(self._message, recorded=True)

    def _messages(self) -> list[ChatCompletionMessageParam]:
        system = render_system_prompt(self._prompt_template, self._context, self._message)
        messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": system}]
        for turn in self._message.history[-MAX_HISTORY_TURNS:]:
            if turn.speaker == "caller":
                messages.append({"role": "user", "content": _caller_words(turn.text)})
            else:
                messages.append({"role": "assistant", "content": turn.text})
        messages.append({"role": "user", "content": _caller_words(self._caller_said or "")})
        return messages

    def _settle(self, finished: bool) -> None:
        self._reply = AgentReply(" ".join(self._guard.spoken), finished)
        self._remember()

    def _remember(self) -> None:
        if self._caller_said is not None:
            self._message.history.append(SpokenTurn("caller", self._caller_said))
        if self._guard.spoken:
            self._message.history.append(SpokenTurn("assistant", " ".join(self._guard.spoken)))


def _restore(message: CallerMessage, earlier: CallerMessage) -> None:
    for part in fields(message):
        setattr(message, part.name, getattr(earlier, part.name))


def _tool_exchange(
    completion: CompletionRound, outcomes: list[tuple[ToolCall, str]]
) -> list[ChatCompletionMessageParam]:
    """The assistant's tool calls and their results, for a follow-up request."""
    exchange: list[ChatCompletionMessageParam] = [
        {
            "role": "assistant",
            "content": "".join(completion.text) or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments or "{}"},
                }
                for call, _ in outcomes
            ],
        }
    ]
    for call, outcome in outcomes:
        exchange.append({"role": "tool", "tool_call_id": call.id, "content": outcome})
    return exchange


def _finish_outcome(message: CallerMessage, *, recorded: bool = False) -> str:
    prefix = "Recorded. " if recorded else ""
    missing = missing_fields(message)
    if not missing:
        return f"{prefix}The message has everything it needs."
    needed = ", ".join(_FIELD_LABELS[part] for part in missing)
    return f"{prefix}Not finished: still need {needed}. Ask for it."


def _caller_words(said: str) -> str:
    text = " ".join(said.split())[:MAX_CALLER_CHARS]
    return text or CALLER_SILENT


# --- recording the message ------------------------------------------------------------------


def record_details(context: CallContext, message: CallerMessage, arguments: dict[str, Any]) -> None:
    """Copy what ``record_message`` gave into the message, cleaned and bounded."""
    name = _text(arguments.get("caller_name"), MAX_NAME_CHARS)
    if name and any(char.isalpha() for char in name):
        message.caller_name = name
    need = _text(arguments.get("need"), MAX_NEED_CHARS)
    if need:
        message.need = need
        message.topic = message.topic or find_topic(need)
    address = _text(arguments.get("address"), MAX_ADDRESS_CHARS)
    if address:
        message.address = address
    preferred_time = _text(arguments.get("preferred_time"), MAX_PREFERRED_TIME_CHARS)
    if preferred_time:
        message.preferred_time = preferred_time
    urgency = arguments.get("urgency")
    if isinstance(urgency, str) and urgency in {level.value for level in Urgency}:
        message.urgency = settled_urgency(message.urgency, Urgency(urgency))
    number = _text(arguments.get("callback_number"), 40)
    if number:
        _record_callback_number(context, message, number)
    elif arguments.get("confirmed_calling_number") is True:
        _record_calling_number(context, message)


def _record_callback_number(context: CallContext, message: CallerMessage, said: str) -> None:
    try:
        message.callback_number = to_e164(said)
        return
    except InvalidPhoneNumber:
        logger.info("the callback number the model recorded is not a phone number")
    note = f"The callback number the caller gave ({said}) isn't a valid phone number."
    if message.callback_number is None:
        _record_calling_number(context, message)
        if message.callback_number is not None:
            note += " Using the number they called from."
    message.notes.append(note)


def _record_calling_number(context: CallContext, message: CallerMessage) -> None:
    try:
        message.callback_number = to_e164(context.caller_number)
    except InvalidPhoneNumber:
        note = "The caller's own number is withheld or invalid; no callback number yet."
        if note not in message.notes:
            message.notes.append(note)


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    printable = "".join(char if char.isprintable() else " " for char in value)
    return " ".join(printable.split())[:limit] or None


# --- the adapter ------------------------------------------------------------------------------


def render_system_prompt(template: str, context: CallContext, message: CallerMessage) -> str:
    """The system prompt for one turn: the business profile and what is recorded so far."""
    return template.format_map(
        {
            "business_name": context.business_name,
            "services": context.services or "general work in its trade",
            "callback_time": context.callback_time,
            "caller_number": spoken_phone_number(context.caller_number) or "a withheld number",
            "recorded": _recorded_so_far(message),
        }
    )


def _recorded_so_far(message: CallerMessage) -> str:
    details = (
        ("Name", message.caller_name),
        ("Need", message.need),
        ("Address", message.address),
        ("Callback number", spoken_phone_number(message.callback_number or "")),
        ("Urgency", message.urgency.value if message.urgency else None),
        ("Preferred time", message.preferred_time),
    )
    lines = [f"- {label}: {value or 'not yet'}" for label, value in details]
    missing = missing_fields(message)
    if missing:
        lines.append("Still needed: " + ", ".join(_FIELD_LABELS[part] for part in missing) + ".")
    else:
        lines.append("Everything needed is recorded: call finish_message.")
    return "\n".join(lines)


class OpenAIChatModel:
    """A ChatModel backed by streaming Chat Completions; one instance serves every call."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        model: str = "gpt-4o-mini",
        timeout: float = 10.0,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.name = f"openai:{model}"
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
        )
        self._completions = ChatCompletionsStream(self._client, model)
        self._prompt_template = SYSTEM_PROMPT_PATH.read_text(encoding="utf-8")

    def reply_stream(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> ReplyStream:
        """Start a reply: iterate the result for sentences to speak, then await ``result()``."""
        return ReplyStream(self._completions, self._prompt_template, context, message, caller_said)

    async def reply(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> AgentReply:
        """The whole reply at once (the ChatModel port); raises ChatModelFailure."""
        stream = self.reply_stream(context, message, caller_said)
        try:
            return await stream.result()
        finally:
            await stream.aclose()

    async def aclose(self) -> None:
        """Release the HTTP connections."""
        await self._client.close()
