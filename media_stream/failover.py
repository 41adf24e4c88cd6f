"""Per-call failover for speech: a cloud transcriber or voice that fails mid-call hands that call
to the embedded engine.

Each call gets its own wrappers, so one call's failure never moves another call. The caller
hears at most a short "One moment." and the call's notes say what happened.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing

from media_stream.ports import (
    AnswerKind,
    SpeechEvent,
    Synthesizer,
    SynthesizerFailure,
    Transcriber,
    TranscriberFailure,
    TranscriptionSession,
)

ONE_MOMENT = "One moment."

Notify = Callable[[str, str], None]  # (provider, what happened)


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
        self._expected = AnswerKind.ANY

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
            self._session.expect(self._expected)
            with contextlib.suppress(Exception):  # the failed provider may not close cleanly
                await failed.close()
        async for event in self._session.events():
            yield event

    def expect(self, answer: AnswerKind) -> None:
        self._expected = answer
        self._session.expect(answer)

    async def finalize(self) -> None:
        await self._session.finalize()

    async def close(self) -> None:
        await self._session.close()
