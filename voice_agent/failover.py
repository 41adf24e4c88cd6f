"""Per-call failover: a cloud provider that fails mid-call hands that call to the embedded engine.

Each call gets its own wrappers, so one call's failure never moves another call. The caller
hears at most a short "One moment." and the call's notes say what happened.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing

from media_stream import (
    SpeechEvent,
    Synthesizer,
    SynthesizerFailure,
    Transcriber,
    TranscriberFailure,
    TranscriptionSession,
)
from voice_agent.chat import (
    AgentReply,
    CallContext,
    CallerMessage,
    ChatModel,
    ChatModelFailure,
    SpokenReply,
)

ONE_MOMENT = "One moment."

Notify = Callable[[str, str], None]  # (provider, what happened)


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


class FailoverSynthesizer:
    """The configured voice until it fails, then the embedded voice, after "One moment."."""

    def __init__(self, primary: Synthesizer, fallback: Synthesizer, notify: Notify) -> None:
        self._primary, self._fallback, self._notify = primary, fallback, notify
        self._failed = primary is fallback
        self.name = primary.name

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        if not self._failed:
            try:
                async with aclosing(self._primary.synthesize(text)) as chunks:
                    async for chunk in chunks:
                        yield chunk
                return
            except SynthesizerFailure as failure:
                self._failed = True
                self._notify(self._primary.name, f"{failure}; {self._fallback.name} took over")
                text = f"{ONE_MOMENT} {text}"
        async with aclosing(self._fallback.synthesize(text)) as chunks:
            async for chunk in chunks:
                yield chunk


class FailoverTranscription:
    """A transcription session that reopens on the fallback engine when the primary fails.

    Speech in flight when the primary failed is lost; the conversation's silence timeout
    asks the caller again. Both sessions get the call's ``keyterms``.
    """

    def __init__(
        self,
        primary: Transcriber,
        fallback: Transcriber,
        notify: Notify,
        keyterms: Sequence[str] = (),
    ) -> None:
        self._primary_name = primary.name
        self._fallback = fallback
        self._notify = notify
        self._keyterms = tuple(keyterms)
        self._session: TranscriptionSession = primary.open_session(self._keyterms)
        self._failed = primary is fallback

    def send_audio(self, ulaw: bytes, at: float) -> None:
        self._session.send_audio(ulaw, at)

    async def events(self) -> AsyncIterator[SpeechEvent]:
        try:
            async for event in self._session.events():
                yield event
            return
        except TranscriberFailure as failure:
            if self._failed:
                raise
            self._failed = True
            self._notify(self._primary_name, f"{failure}; {self._fallback.name} took over")
            failed, self._session = self._session, self._fallback.open_session(self._keyterms)
            with contextlib.suppress(Exception):  # the failed provider may not close cleanly
                await failed.close()
        async for event in self._session.events():
            yield event

    async def finalize(self) -> None:
        await self._session.finalize()

    async def close(self) -> None:
        await self._session.close()
