"""Per-call failover for the brain: a chat model that fails mid-call hands the call to the
scripted interviewer (see :mod:`media_stream.failover` for the speech engines' twin)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from media_stream import Notify
from voice_agent.chat.port import (
    AgentReply,
    CallContext,
    CallerMessage,
    ChatModel,
    ChatModelFailure,
    SpokenReply,
)


class FailoverChatModel:
    """The configured chat model until it fails, then the fallback for the rest of the call."""

    def __init__(self, primary: ChatModel, fallback: ChatModel, notify: Notify) -> None:
        self._primary, self._fallback, self._notify = primary, fallback, notify
        self._failed = primary is fallback
        self.name = primary.name

    def current(self) -> ChatModel:
        return self._fallback if self._failed else self._primary

    def fail(self, failure: ChatModelFailure) -> ChatModel | None:
        """Move this call to the fallback; None when it already was there (nothing left)."""
        if self._failed:
            return None
        self._failed = True
        self._notify(self._primary.name, f"{failure}; {self._fallback.name} took over")
        return self._fallback

    async def reply(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> AgentReply:
        stream = self.reply_stream(context, message, caller_said)
        try:
            return await stream.result()
        finally:
            await stream.aclose()

    def reply_stream(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> SpokenReply:
        return _FailoverReply(self, context, message, caller_said)


class _FailoverReply:
    """One turn's reply: the primary model's sentences, or the fallback's once it failed."""

    def __init__(
        self,
        owner: FailoverChatModel,
        context: CallContext,
        message: CallerMessage,
        caller_said: str | None,
    ) -> None:
        self._owner = owner
        self._turn = (context, message, caller_said)
        self._reply = owner.current().reply_stream(context, message, caller_said)

    async def __aiter__(self) -> AsyncIterator[str]:
        try:
            async for sentence in self._reply:
                yield sentence
            return
        except ChatModelFailure as failure:
            await self._fall_back(failure)
        async for sentence in self._reply:
            yield sentence

    async def result(self) -> AgentReply:
        try:
            return await self._reply.result()
        except ChatModelFailure as failure:
            await self._fall_back(failure)
            return await self._reply.result()

    async def aclose(self) -> None:
        await self._reply.aclose()

    async def _fall_back(self, failure: ChatModelFailure) -> None:
        fallback = self._owner.fail(failure)
        if fallback is None:
            raise failure
        await self._reply.aclose()
        self._reply = fallback.reply_stream(*self._turn)
