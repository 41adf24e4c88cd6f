"""The notice hold: the embedded session hears the caller until the notice is confirmed, the
cloud session only what follows; a call never released never opens the cloud session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from media_stream import AnswerKind, NoticeHold, SpeechEvent, SpeechStarted, Utterance


class RecordingSession:
    """A transcription session that keeps the audio it was sent and reports one utterance per
    ``say``, ending its events when closed."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.audio: list[tuple[bytes, float]] = []
        self.expected: list[AnswerKind] = []
        self.closed = False
        self.finalized = 0
        self._events: asyncio.Queue[SpeechEvent | None] = asyncio.Queue()

    def say(self, text: str, at: float) -> None:
        self._events.put_nowait(SpeechStarted(at))
        self._events.put_nowait(Utterance(text, at, at + 0.5, 0.9, self.engine))

    def send_audio(self, ulaw: bytes, at: float) -> None:
        assert not self.closed, "audio after close"
        self.audio.append((ulaw, at))

    async def events(self) -> AsyncIterator[SpeechEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    def expect(self, answer: AnswerKind) -> None:
        self.expected.append(answer)

    async def finalize(self) -> None:
        self.finalized += 1

    async def close(self) -> None:
        self.closed = True
        self._events.put_nowait(None)


async def _collect(hold: NoticeHold, into: list[SpeechEvent]) -> None:
    async for event in hold.events():
        into.append(event)


def _held() -> tuple[NoticeHold, RecordingSession, list[RecordingSession]]:
    """A hold over an embedded session, and the cloud sessions it opens, as they open."""
    local, clouds = RecordingSession("embedded"), []

    def open_cloud() -> RecordingSession:
        clouds.append(RecordingSession("cloud"))
        return clouds[-1]

    return NoticeHold(local, open_cloud), local, clouds


async def test_audio_before_the_notice_stays_local_and_after_it_goes_to_the_cloud() -> None:
    hold, local, clouds = _held()
    events: list[SpeechEvent] = []
    reading = asyncio.create_task(_collect(hold, events))
    hold.send_audio(b"a", 0.0)
    local.say("hello", 0.0)
    await hold.finalize()
    assert local.finalized == 1 and not clouds and not hold.released
    hold.release()
    hold.release()  # a second confirmation changes nothing
    assert len(clouds) == 1 and hold.released
    cloud = clouds[0]
    hold.send_audio(b"b", 1.0)
    cloud.say("my sink leaks", 1.0)
    await hold.finalize()
    await hold.close()
    await asyncio.wait_for(reading, 5)
    assert local.audio == [(b"a", 0.0)] and cloud.audio == [(b"b", 1.0)]
    assert local.closed and cloud.closed and cloud.finalized == 1
    heard = [(e.engine, e.text) for e in events if isinstance(e, Utterance)]
    assert heard == [("embedded", "hello"), ("cloud", "my sink leaks")]  # the local words first


async def test_a_call_closed_before_the_notice_never_opens_the_cloud_session() -> None:
    hold, local, opened = _held()
    events: list[SpeechEvent] = []
    reading = asyncio.create_task(_collect(hold, events))
    hold.send_audio(b"a", 0.0)
    await hold.close()
    hold.release()  # a mark echoed after the call closed: too late to open anything
    await asyncio.wait_for(reading, 5)
    assert not opened and local.closed and not hold.released


async def test_the_answer_wanted_goes_to_the_session_listening_and_to_the_cloud_when_it_opens() -> (
    None
):
    hold, local, clouds = _held()
    hold.expect(AnswerKind.NAME)
    assert local.expected == [AnswerKind.NAME]
    hold.release()
    assert clouds[0].expected == [AnswerKind.NAME]  # the question asked before the notice ended
    hold.expect(AnswerKind.ANY)
    assert local.expected == [AnswerKind.NAME] and clouds[0].expected == [
        AnswerKind.NAME,
        AnswerKind.ANY,
    ]
    await hold.close()
