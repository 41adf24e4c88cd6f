"""CallBridge against a scripted Twilio peer: marks, barge-in, the consent script, bad frames."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

import media_stream.bridge as bridge_module
from media_stream import (
    AnswerKind,
    CallBridge,
    CallEnded,
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaFormat,
    SpeechEvent,
    SpeechStarted,
    Start,
    Stop,
    StreamClosed,
    Utterance,
    encode_inbound,
)
from media_stream.ports import SpeechStopped

STREAM = "MZ" + "a" * 32
CALL = "CA" + "b" * 32


class FakeTwilio:
    """The Twilio side of the websocket, driven by the test."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[str | None] = asyncio.Queue()
        self.sent: list[dict[str, object]] = []
        self.closed = False
        self.sequence = 0

    async def receive_text(self) -> str:
        item = await self.incoming.get()
        if item is None:
            raise StreamClosed()
        return item

    async def send_text(self, text: str) -> None:
        if self.closed:
            raise StreamClosed()
        self.sent.append(json.loads(text))

    async def close(self) -> None:
        self.closed = True

    def push(self, text: str) -> None:
        self.incoming.put_nowait(text)

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def start(self) -> None:
        self.push(encode_inbound(Connected("Call", "1.0.0")))
        self.push(
            encode_inbound(
                Start(
                    self.next_sequence(),
                    STREAM,
                    "AC" + "c" * 32,
                    CALL,
                    ("inbound",),
                    {"business": "acme-plumbing", "caller": "+15125550142"},
                    MediaFormat("audio/x-mulaw", 8000, 1),
                )
            )
        )

    def media(self, chunk: int) -> None:
        self.push(
            encode_inbound(
                Media(
                    self.next_sequence(), STREAM, "inbound", chunk, (chunk - 1) * 20, b"\xff" * 160
                )
            )
        )

    def mark(self, name: str) -> None:
        self.push(encode_inbound(Mark(self.next_sequence(), STREAM, name)))

    def sent_events(self, event: str) -> list[dict[str, object]]:
        return [message for message in self.sent if message["event"] == event]

    def mark_names(self) -> list[str]:
        return [str(m["mark"]["name"]) for m in self.sent_events("mark")]  # type: ignore[index]


class FakeTranscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[SpeechEvent | None] = asyncio.Queue()
        self.audio: list[tuple[bytes, float]] = []
        self.finalized = 0
        self.expected: list[AnswerKind] = []
        self.closed = False

    def send_audio(self, ulaw: bytes, at: float) -> None:
        self.audio.append((ulaw, at))

    async def events(self) -> AsyncIterator[SpeechEvent]:
        while (event := await self.queue.get()) is not None:
            yield event

    def expect(self, answer: AnswerKind) -> None:
        self.expected.append(answer)

    async def finalize(self) -> None:
        self.finalized += 1

    async def close(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)


class FakeSynthesizer:
    name = "fake"

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        yield b"\x7f" * 800  # 100 ms per sentence


async def _open() -> tuple[FakeTwilio, FakeTranscription, CallBridge]:
    twilio, transcription = FakeTwilio(), FakeTranscription()
    bridge = CallBridge(twilio, FakeSynthesizer())
    twilio.start()
    start = await bridge.open()
    assert start.call_sid == CALL
    bridge.listen(transcription)
    return twilio, transcription, bridge


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _utterance(text: str, start: float, end: float) -> Utterance:
    return Utterance(text, start, end, 0.9, "fake")


async def test_reply_is_sent_with_a_mark_per_sentence_and_proven_by_the_last() -> None:
    twilio, _, bridge = await _open()
    playback = await bridge.say("One. Two")
    assert len(twilio.sent_events("media")) == 2
    first, last = twilio.mark_names()
    twilio.mark(first)
    await _settle()
    assert not playback.result.done()
    twilio.media(1)
    twilio.mark(last)
    result = await asyncio.wait_for(playback.finished(), 1)
    assert result.played and not result.cleared
    await bridge.close()


async def test_a_played_reply_knows_when_its_last_mark_arrived() -> None:
    twilio, _, bridge = await _open()
    playback = await bridge.say("Would it be okay if we text you?", interruptible=False)
    before = time.monotonic()
    twilio.mark(twilio.mark_names()[-1])
    result = await asyncio.wait_for(playback.finished(), 1)
    assert result.played and before <= result.known_at <= time.monotonic()
    await bridge.close()


async def test_frames_that_arrive_before_listen_are_all_transcribed() -> None:
    twilio, transcription = FakeTwilio(), FakeTranscription()
    bridge = CallBridge(twilio, FakeSynthesizer())
    twilio.start()
    twilio.media(1)
    await bridge.open()
    twilio.media(2)  # while the call's business is being looked up
    twilio.media(3)
    bridge.listen(transcription)
    await _settle()
    assert [at for _, at in transcription.audio] == [0.0, 0.02, 0.04]
    await bridge.close()
    assert transcription.closed  # the bridge closed the session


async def test_a_stream_nobody_transcribes_still_proves_its_playback() -> None:
    twilio = FakeTwilio()
    bridge = CallBridge(twilio, FakeSynthesizer())
    twilio.start()
    await bridge.open()
    bridge.listen()
    twilio.media(1)
    playback = await bridge.say("Sorry, this number isn't set up.", interruptible=False)
    twilio.mark(twilio.mark_names()[-1])
    assert (await asyncio.wait_for(playback.finished(), 1)).played
    await bridge.close()
    assert twilio.closed


async def test_a_speech_stop_is_no_input_and_the_transcript_can_be_finalized() -> None:
    _twilio, transcription, bridge = await _open()
    stopped = asyncio.ensure_future(bridge.speech_stopped())
    await _settle()
    transcription.queue.put_nowait(SpeechStopped(1.5))
    transcription.queue.put_nowait(_utterance("yes please", 1.0, 1.5))
    assert await asyncio.wait_for(stopped, 1) == 1.5
    await bridge.finalize_transcript()
    assert transcription.finalized == 1
    heard = await bridge.next_input(1)
    assert heard is not None and heard.utterance is not None
    assert heard.utterance.text == "yes please"
    await bridge.close()


async def test_the_answer_a_question_wants_reaches_the_session_and_is_dropped_unheard() -> None:
    _twilio, transcription, bridge = await _open()
    bridge.expect(AnswerKind.NAME)
    bridge.expect(AnswerKind.ANY)
    assert transcription.expected == [AnswerKind.NAME, AnswerKind.ANY]
    await bridge.close()
    unheard = CallBridge(FakeTwilio(), FakeSynthesizer())
    unheard.expect(AnswerKind.NAME)  # a stream nobody listens to: nothing to tell, no error


async def test_caller_speech_clears_an_interruptible_reply() -> None:
    twilio, transcription, bridge = await _open()
    playback = await bridge.say("Thanks for calling. What is your name?")
    transcription.queue.put_nowait(SpeechStarted(0.4))
    result = await asyncio.wait_for(playback.finished(), 1)
    assert result.cleared and not result.played
    assert len(twilio.sent_events("clear")) == 1
    for name in twilio.mark_names():  # Twilio echoes cleared marks: they prove nothing
        twilio.mark(name)
    await _settle()
    assert (await playback.finished()).cleared
    await bridge.close()


async def test_a_cut_reply_keeps_only_the_sentences_that_were_played() -> None:
    twilio, transcription, bridge = await _open()
    playback = await bridge.say("Thanks for calling. We can help. What is your name?")
    first, *_ = twilio.mark_names()
    twilio.mark(first)
    await _settle()
    transcription.queue.put_nowait(SpeechStarted(0.4))
    assert (await asyncio.wait_for(playback.finished(), 1)).cleared
    assert playback.played_text() == "Thanks for calling."
    await bridge.close()


async def test_the_consent_script_is_never_cleared() -> None:
    twilio, transcription, bridge = await _open()
    playback = await bridge.say("Would it be okay if we text you?", interruptible=False)
    transcription.queue.put_nowait(SpeechStarted(0.4))
    await _settle()
    assert twilio.sent_events("clear") == []
    assert not playback.result.done()
    twilio.mark(twilio.mark_names()[-1])
    assert (await asyncio.wait_for(playback.finished(), 1)).played
    await bridge.close()


async def test_speech_that_began_before_the_prompt_ended_is_skipped() -> None:
    _twilio, transcription, bridge = await _open()
    transcription.queue.put_nowait(_utterance("yes", 1.0, 1.5))
    transcription.queue.put_nowait(_utterance("no thanks", 3.0, 3.6))
    heard = await bridge.next_input(1, after=2.0)
    assert heard is not None and heard.utterance is not None
    assert heard.utterance.text == "no thanks"
    await bridge.close()


async def test_speech_that_has_started_holds_the_silence_until_its_words_come() -> None:
    _twilio, transcription, bridge = await _open()
    transcription.queue.put_nowait(SpeechStarted(1.0))
    waiting = asyncio.ensure_future(bridge.next_input(0.01))
    await asyncio.sleep(0.1)  # ten times the silence asked for: still waiting for the words
    assert not waiting.done()
    assert bridge.speech_pending
    transcription.queue.put_nowait(_utterance("no thank you", 1.0, 2.2))
    heard = await asyncio.wait_for(waiting, 1)
    assert heard is not None and heard.utterance is not None
    assert heard.utterance.text == "no thank you"
    assert not bridge.speech_pending
    await bridge.close()


async def test_speech_begun_after_an_utterance_still_holds_the_floor() -> None:
    _twilio, transcription, bridge = await _open()
    transcription.queue.put_nowait(SpeechStarted(1.0))
    transcription.queue.put_nowait(SpeechStarted(2.4))  # before the first one's words came
    transcription.queue.put_nowait(_utterance("yes", 1.0, 1.5))
    heard = await asyncio.wait_for(bridge.next_input(0.01), 1)
    assert heard is not None and heard.utterance is not None
    assert heard.utterance.text == "yes"
    assert bridge.speech_pending  # the words begun at 2.4 s are still to come
    transcription.queue.put_nowait(_utterance("but only one text", 2.4, 3.5))
    more = await asyncio.wait_for(bridge.next_input(0.0), 1)
    assert more is not None and more.utterance is not None
    assert more.utterance.text == "but only one text"
    assert not bridge.speech_pending
    await bridge.close()


async def test_a_start_of_speech_whose_words_never_come_stops_holding_the_floor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bridge_module, "UNHEARD_SPEECH_LIMIT", 0.05)
    _twilio, transcription, bridge = await _open()
    transcription.queue.put_nowait(SpeechStarted(1.0))  # a noise, or words lost with a provider
    await _settle()
    assert bridge.speech_pending
    assert await asyncio.wait_for(bridge.next_input(0.01), 1) is None
    assert not bridge.speech_pending
    await bridge.close()


async def test_a_prompt_does_not_start_while_the_caller_holds_the_floor() -> None:
    twilio, transcription, bridge = await _open()
    transcription.queue.put_nowait(SpeechStarted(1.0))
    await _settle()
    saying = asyncio.ensure_future(bridge.say("Is that a yes?", interruptible=False))
    await asyncio.sleep(0.05)
    assert twilio.sent_events("media") == []  # synthesized, held until the caller is done
    transcription.queue.put_nowait(_utterance("um", 1.0, 1.4))
    playback = await asyncio.wait_for(saying, 1)
    assert len(twilio.sent_events("media")) == 1 and len(twilio.mark_names()) == 1
    assert not playback.result.done()  # sent, and playing
    await bridge.close()


async def test_a_reply_held_for_the_caller_is_dropped_when_they_start_again() -> None:
    twilio, transcription, bridge = await _open()
    transcription.queue.put_nowait(SpeechStarted(1.0))
    await _settle()
    saying = asyncio.ensure_future(bridge.say("What is your name?"))
    await _settle()
    transcription.queue.put_nowait(SpeechStarted(1.8))  # talking over a reply not yet begun
    playback = await asyncio.wait_for(saying, 1)
    assert (await playback.finished()).cleared
    assert twilio.sent_events("media") == []
    await bridge.close()


async def test_keypad_and_timeout() -> None:
    twilio, _, bridge = await _open()
    assert await bridge.next_input(0.05) is None
    twilio.push(encode_inbound(Dtmf(twilio.next_sequence(), STREAM, "inbound_track", "1")))
    heard = await bridge.next_input(1)
    assert heard is not None and heard.digit == "1"
    await bridge.close()


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[]",
        '{"event": "media"}',
        '{"event": "teleport", "streamSid": "x"}',
        json.dumps(
            {
                "event": "media",
                "sequenceNumber": "99",
                "streamSid": "MZother",
                "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "/w=="},
            }
        ),
        "x" * 100_000,
    ],
)
async def test_malformed_and_foreign_frames_are_skipped(frame: str) -> None:
    twilio, transcription, bridge = await _open()
    twilio.push(frame)
    twilio.media(1)
    twilio.media(2)
    await _settle()
    assert bridge.skipped_frames == 1
    assert [at for _, at in transcription.audio] == [0.0, 0.02]
    await bridge.close()


async def test_out_of_order_media_is_skipped() -> None:
    twilio, transcription, bridge = await _open()
    twilio.media(2)
    twilio.media(1)  # chunk number goes backwards
    await _settle()
    assert bridge.skipped_frames == 1
    assert len(transcription.audio) == 1
    await bridge.close()


async def test_stop_ends_the_call() -> None:
    twilio, _, bridge = await _open()
    twilio.push(encode_inbound(Stop(twilio.next_sequence(), STREAM, "AC" + "c" * 32, CALL)))
    with pytest.raises(CallEnded):
        await bridge.next_input(1)
    assert bridge.end_reason == "caller hung up"
    await bridge.close()


class HeldSynthesizer:
    name = "held"

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        await self.release.wait()
        yield b"\x7f" * 800


async def test_a_hang_up_during_synthesis_ends_the_reply_instead_of_leaving_it_pending() -> None:
    twilio, voice = FakeTwilio(), HeldSynthesizer()
    bridge = CallBridge(twilio, voice)
    twilio.start()
    await bridge.open()
    bridge.listen(FakeTranscription())
    saying = asyncio.ensure_future(bridge.say("Thanks for calling."))
    await _settle()
    twilio.push(encode_inbound(Stop(twilio.next_sequence(), STREAM, "AC" + "c" * 32, CALL)))
    await _settle()
    voice.release.set()
    with pytest.raises(CallEnded):
        await asyncio.wait_for(saying, 1)
    assert twilio.sent == []  # nothing is sent to a caller who is gone
    await bridge.close()


async def test_abrupt_disconnect_ends_the_call_and_resolves_pending_playback() -> None:
    twilio, _, bridge = await _open()
    playback = await bridge.say("Still talking.")
    twilio.incoming.put_nowait(None)
    result = await asyncio.wait_for(playback.finished(), 1)
    assert not result.played
    with pytest.raises(CallEnded):
        await bridge.next_input(1)
    await bridge.close()
    assert twilio.closed


async def test_stream_that_never_starts() -> None:
    twilio = FakeTwilio()
    bridge = CallBridge(twilio, FakeSynthesizer())
    twilio.push(encode_inbound(Connected("Call", "1.0.0")))
    twilio.incoming.put_nowait(None)
    with pytest.raises(CallEnded):
        await bridge.open()
