"""Caller audio kept on this machine until the caller has been told who is listening.

With a cloud transcriber, a call's audio would reach the provider from its first frame, before
the greeting has said that an automated assistant answers (and that the call is recorded). A
`NoticeHold` transcribes the call with the embedded engine until ``release`` is called, when
Twilio has played the greeting's notice; only then is the cloud session opened, and only audio
from then on is sent to it. What the caller said before stays local: the embedded session
finishes transcribing it, and its words come first. A call whose notice is never confirmed (the
caller hung up during the greeting) never opens the cloud session at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from media_stream.ports import AnswerKind, SpeechEvent, TranscriptionSession


class NoticeHold:
    """One call's transcription: ``local`` until the notice is confirmed, then the session
    ``open_cloud`` opens."""

    def __init__(
        self, local: TranscriptionSession, open_cloud: Callable[[], TranscriptionSession]
    ) -> None:
        self._local = local
        self._open_cloud = open_cloud
        self._cloud: TranscriptionSession | None = None
        self._local_closing: asyncio.Task[None] | None = None
        self._closed = False
        self._expected = AnswerKind.ANY

    @property
    def released(self) -> bool:
        return self._cloud is not None

    def release(self) -> None:
        """The notice has been played: the caller's audio goes to the cloud engine from now on.
        The embedded session is closed, reporting what it still holds."""
        if self._cloud is not None or self._closed:
            return
        self._cloud = self._open_cloud()
        self._cloud.expect(self._expected)
        self._local_closing = asyncio.create_task(self._local.close())

    def send_audio(self, ulaw: bytes, at: float) -> None:
        (self._cloud or self._local).send_audio(ulaw, at)

    async def events(self) -> AsyncIterator[SpeechEvent]:
        async for event in self._local.events():
            yield event
        if self._cloud is not None:
            async for event in self._cloud.events():
                yield event

    def expect(self, answer: AnswerKind) -> None:
        self._expected = answer
        (self._cloud or self._local).expect(answer)

    async def finalize(self) -> None:
        await (self._cloud or self._local).finalize()

    async def close(self) -> None:
        self._closed = True
        if self._local_closing is None:
            await self._local.close()
        else:
            await self._local_closing
        if self._cloud is not None:
            await self._cloud.close()
