"""Calls transcribed by Deepgram (the real SDK against the fake server): the business's keyterms,
the apology for an unknown business, Finalize on the consent answer, and the answer's times."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect

import voice_agent.call.conversation as conversation_module
from media_stream import (
    FRAME_SECONDS,
    CallBridge,
    Clear,
    Connected,
    DeepgramTranscriber,
    EspeakSynthesizer,
    Mark,
    Media,
    MediaFormat,
    OutboundMark,
    OutboundMedia,
    Start,
    Stop,
    StreamClosed,
    encode_inbound,
    parse_outbound,
    split_sentences,
)
from media_stream.deepgram_transcriber import StreamTiming
from tests.conftest import AUTH_TOKEN, ROOT, receptionist_settings
from tests.fake_deepgram import (
    API_KEY,
    FakeDeepgramListen,
    FakeWord,
    ListenStream,
    results_message,
    utterance_end_message,
)
from voice_agent.call.conversation import ConsentOutcome, Conversation, greeting
from voice_agent.call.keyterms import call_keyterms
from voice_agent.call.session import NOTICE_NOT_CONFIRMED, UNKNOWN_NUMBER_APOLOGY
from voice_agent.call.wrap_up import CallIdentity, consent_evidence
from voice_agent.chat.port import AgentReply, CallContext, CallerMessage, WholeReply
from voice_agent.records.businesses import import_businesses, load_businesses
from voice_agent.records.calls import CallRecord, get_call
from voice_agent.records.migrate import upgrade
from voice_agent.services import build_services
from voice_agent.settings import Settings, TranscriberChoice
from voice_agent.web.local_server import free_port, serving
from voice_agent.web.stream_credentials import StreamCredentials

STREAM = "MZ" + "a" * 32
ACCOUNT = "AC" + "c" * 32
CALL = "CA" + "d" * 32
CALLER = "+15125550142"
BUSINESSES = ROOT / "fixtures" / "businesses.yaml"
ACME = next(b for b in load_businesses(BUSINESSES) if b.id == "acme-plumbing")
TIMING = StreamTiming(keepalive_interval=0.5, stall_timeout=5.0, close_timeout=1.0)


def _start(business: str, sequence: int, settings: Settings | None = None) -> str:
    """Twilio's ``start``; through the server (``settings``) with the call's stream credential,
    as the voice webhook's TwiML would have handed it over."""
    parameters = {"business": business, "caller": CALLER}
    if settings is not None:
        credentials = StreamCredentials.from_settings(settings)
        parameters["credential"] = credentials.issue(CALL, business, CALLER, datetime.now(UTC))
    return encode_inbound(
        Start(
            sequence,
            STREAM,
            ACCOUNT,
            CALL,
            ("inbound",),
            parameters,
            MediaFormat("audio/x-mulaw", 8000, 1),
        )
    )


async def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Look every 10 ms until ``condition`` holds (a stored row, the conversation's state)."""
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


# --- through the server's websocket -----------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A migrated database with the demo businesses; Deepgram is configured per test."""
    settings = receptionist_settings(f"sqlite:///{tmp_path / 'receptionist.db'}", free_port())
    upgrade(settings.database_url)
    services = build_services(settings)
    with services.engine.begin() as conn:
        import_businesses(conn, BUSINESSES)
    services.engine.dispose()
    return settings


@contextlib.asynccontextmanager
async def _deepgram_server(
    settings: Settings,
) -> AsyncIterator[tuple[FakeDeepgramListen, str, Engine]]:
    """The application transcribing with Deepgram, which is the fake on 127.0.0.1."""
    async with FakeDeepgramListen() as fake:
        services = build_services(
            settings.model_copy(
                update={
                    "transcriber": TranscriberChoice.DEEPGRAM,
                    "deepgram_api_key": SecretStr(API_KEY),
                    "deepgram_base_url": fake.url,
                }
            )
        )
        try:
            with serving(services) as server_url:
                yield fake, server_url, services.engine
        finally:
            services.engine.dispose()


@contextlib.asynccontextmanager
async def _media_stream(settings: Settings, server_url: str) -> AsyncIterator[ClientConnection]:
    """Twilio's signed websocket to the server, after its ``connected`` message."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(settings.media_stream_url, {})
    url = server_url.replace("http://", "ws://") + "/twilio/media-stream"
    async with connect(url, additional_headers={"x-twilio-signature": signature}) as websocket:
        await websocket.send(encode_inbound(Connected("Call", "1.0.0")))
        yield websocket


async def test_a_call_opens_deepgram_with_its_business_keyterms(settings: Settings) -> None:
    async with (
        _deepgram_server(settings) as (fake, server_url, engine),
        _media_stream(settings, server_url) as twilio,
    ):
        await twilio.send(_start(ACME.id, 1, settings))
        await _play_the_greeting(twilio, sequence=2)
        stream = await fake.next_stream()
        assert stream.query["keyterm"] == [
            "Acme Plumbing",
            "leaks",
            "clogged drains",
            "water heaters",
            "burst pipes",
        ]
        await twilio.send(encode_inbound(Stop(10, STREAM, ACCOUNT, CALL)))
        async for _ in twilio:  # until the server hangs up
            pass
        await _until(lambda: _stored_call(engine) is not None)
        assert fake.streams_opened == 1


# --- the notice: no caller audio leaves before the greeting has said who answers --------------


def _stored_call(engine: Engine) -> CallRecord | None:
    with engine.connect() as conn:
        return get_call(conn, CALL)


async def _greeting_marks(twilio: ClientConnection) -> list[str]:
    """Read what the server sends until the greeting's marks (one per sentence) have come."""
    wanted = len(split_sentences(greeting(ACME)))
    marks: list[str] = []
    while len(marks) < wanted:
        message = parse_outbound(await twilio.recv())
        if isinstance(message, OutboundMark):
            marks.append(message.name)
    return marks


async def _play_the_greeting(twilio: ClientConnection, sequence: int) -> int:
    """Play the greeting's marks back, as Twilio does once it has played them; the next
    sequence number."""
    for name in await _greeting_marks(twilio):
        await twilio.send(encode_inbound(Mark(sequence, STREAM, name)))
        sequence += 1
    return sequence


def _caller_frames(ulaw: bytes, first_chunk: int, sequence: int) -> list[str]:
    """``ulaw`` as the caller's 20 ms media frames, numbered from ``first_chunk``."""
    frames = []
    for index, offset in enumerate(range(0, len(ulaw), 160)):
        chunk = first_chunk + index
        payload = ulaw[offset : offset + 160].ljust(160, b"\xff")
        frames.append(
            encode_inbound(
                Media(sequence + index, STREAM, "inbound", chunk, (chunk - 1) * 20, payload)
            )
        )
    return frames


async def test_caller_audio_reaches_deepgram_only_after_the_greetings_notice_was_played(
    settings: Settings,
) -> None:
    """Deepgram's stream opens when Twilio confirms the greeting's notice was played, and gets
    only the audio that follows: none of the line's sound from before it."""
    async with (
        _deepgram_server(settings) as (fake, server_url, engine),
        _media_stream(settings, server_url) as twilio,
    ):
        await twilio.send(_start(ACME.id, 1, settings))
        before = _caller_frames(b"\xfe" * 16000, 1, 2)  # 2 s of a quiet line
        for frame in before:
            await twilio.send(frame)
        marks = await _greeting_marks(twilio)
        await asyncio.sleep(0.5)  # time enough to open a stream, had the audio been let through
        assert fake.streams_opened == 0
        sequence = len(before) + 2
        for name in marks:
            await twilio.send(encode_inbound(Mark(sequence, STREAM, name)))
            sequence += 1
        stream = await fake.next_stream()
        after = _caller_frames(b"\x7e" * 8000, len(before) + 1, sequence)
        for frame in after:
            await twilio.send(frame)
        await stream.wait_for_audio(1.0)
        record = await _hang_up(twilio, engine, sequence + len(after))
    assert stream.audio_seconds == pytest.approx(1.0, abs=0.05)
    assert b"\xfe" not in stream.audio  # none of what came before the notice
    assert record.notice_confirmed_at is not None
    assert record.started_at <= record.notice_confirmed_at <= (record.ended_at or record.started_at)
    assert NOTICE_NOT_CONFIRMED not in record.notes


async def test_a_caller_who_talks_over_the_notice_is_heard_on_this_machine_alone(
    settings: Settings,
) -> None:
    """Talking over the greeting cuts it short: the caller was never told in full, so nothing
    is sent to Deepgram for the whole call, and the embedded engine hears them."""
    said = EspeakSynthesizer(settings.assistant_voice).render_ulaw(
        "Hello, my kitchen sink is leaking everywhere."
    )
    async with (
        _deepgram_server(settings) as (fake, server_url, engine),
        _media_stream(settings, server_url) as twilio,
    ):
        await twilio.send(_start(ACME.id, 1, settings))
        frames = _caller_frames(said + b"\xff" * 16000, 1, 2)
        for frame in frames:
            await twilio.send(frame)
        sequence = len(frames) + 2
        marks: list[str] = []
        async with asyncio.timeout(30):
            while not isinstance(message := parse_outbound(await twilio.recv()), Clear):
                if isinstance(message, OutboundMark):
                    marks.append(message.name)
        for name in marks:  # after a clear Twilio echoes the cleared marks: they prove nothing
            await twilio.send(encode_inbound(Mark(sequence, STREAM, name)))
            sequence += 1
        await asyncio.sleep(0.5)
        record = await _hang_up(twilio, engine, sequence)
        assert fake.streams_opened == 0
    assert record.notice_confirmed_at is None and NOTICE_NOT_CONFIRMED in record.notes
    heard = " ".join(turn.text.lower() for turn in record.turns if turn.speaker == "caller")
    assert any(word in heard for word in ("kitchen", "sink", "leak")), heard


async def test_a_caller_who_hangs_up_during_the_greeting_never_reaches_deepgram(
    settings: Settings,
) -> None:
    async with (
        _deepgram_server(settings) as (fake, server_url, engine),
        _media_stream(settings, server_url) as twilio,
    ):
        await twilio.send(_start(ACME.id, 1, settings))
        frames = _caller_frames(b"\x7f" * 8000, 1, 2)
        for frame in frames:
            await twilio.send(frame)
        await _greeting_marks(twilio)  # sent, never confirmed played: the caller hangs up
        record = await _hang_up(twilio, engine, len(frames) + 2)
        assert fake.streams_opened == 0
    assert record.notice_confirmed_at is None and NOTICE_NOT_CONFIRMED in record.notes


async def _hang_up(twilio: ClientConnection, engine: Engine, sequence: int) -> CallRecord:
    """Twilio's ``stop``; the call as stored once the server has hung up and applied it."""
    await twilio.send(encode_inbound(Stop(sequence, STREAM, ACCOUNT, CALL)))
    async for _ in twilio:  # until the server hangs up
        pass
    await _until(lambda: _stored_call(engine) is not None)
    record = _stored_call(engine)
    assert record is not None
    return record


async def test_an_unknown_business_hears_the_apology_and_opens_no_deepgram_stream(
    settings: Settings,
) -> None:
    audio, marks = bytearray(), []
    async with (
        _deepgram_server(settings) as (fake, server_url, _),
        _media_stream(settings, server_url) as twilio,
    ):
        await twilio.send(_start("no-such-business", 1, settings))
        async for raw in twilio:  # play every mark back at once, until the server hangs up
            message = parse_outbound(raw)
            if isinstance(message, OutboundMedia):
                audio += message.payload
            elif isinstance(message, OutboundMark):
                marks.append(message.name)
                await twilio.send(encode_inbound(Mark(1 + len(marks), STREAM, message.name)))
        assert fake.streams_opened == 0
    sentences = split_sentences(UNKNOWN_NUMBER_APOLOGY)
    assert len(marks) == len(sentences)  # one mark after each sentence of the apology
    voice = EspeakSynthesizer(settings.assistant_voice)
    apology = sum(len(voice.render_ulaw(sentence)) for sentence in sentences)
    assert len(audio) == pytest.approx(apology, rel=0.05)  # espeak-ng varies by a few samples


# --- the consent answer, with the conversation in process -------------------------------------


class TwilioPeer:
    """Twilio's side of an in-process media stream: the caller's frames, and every mark played
    back the moment it is sent."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[str | None] = asyncio.Queue()
        self.frames_sent = 0
        self._sequence = 0

    @property
    def stream_time(self) -> float:
        """Where the caller's audio sent so far ends, in stream seconds."""
        return self.frames_sent * FRAME_SECONDS

    def start(self) -> None:
        self.incoming.put_nowait(encode_inbound(Connected("Call", "1.0.0")))
        self.incoming.put_nowait(_start(ACME.id, self._next()))

    def speak(self, seconds: float) -> None:
        for _ in range(round(seconds / FRAME_SECONDS)):
            self.frames_sent += 1
            chunk = self.frames_sent
            frame = Media(self._next(), STREAM, "inbound", chunk, (chunk - 1) * 20, b"\xff" * 160)
            self.incoming.put_nowait(encode_inbound(frame))

    async def receive_text(self) -> str:
        item = await self.incoming.get()
        if item is None:
            raise StreamClosed()
        return item

    async def send_text(self, text: str) -> None:
        message = parse_outbound(text)
        if isinstance(message, OutboundMark):
            self.incoming.put_nowait(encode_inbound(Mark(self._next(), STREAM, message.name)))

    async def close(self) -> None:
        self.incoming.put_nowait(None)

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence


class Voice:
    name = "test voice"

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        yield b"\x7f" * 800


class OneQuestion:
    """A chat model that asks what the caller needs and takes the answer as the message."""

    name = "one question"

    async def reply(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> AgentReply:
        if caller_said is None:
            return AgentReply("What can we help you with?", finished=False)
        message.need = caller_said
        return AgentReply("Thanks, I have your message.", finished=True)

    def reply_stream(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> WholeReply:
        return WholeReply(self.reply(context, message, caller_said))


@dataclass
class CallAtConsent:
    """A call whose consent script has just been played; the answer is awaited."""

    twilio: TwilioPeer
    bridge: CallBridge
    conversation: Conversation
    stream: ListenStream
    running: asyncio.Task[None]
    identity: CallIdentity

    async def finish(self) -> None:
        """Let the call run to its end, the caller's line sending silence every 20 ms as
        Twilio's does (a yes is taken once it has stood for a breath of it)."""
        line = asyncio.create_task(self._silence())
        try:
            await asyncio.wait_for(self.running, 10)
        finally:
            line.cancel()
        await self.bridge.close()

    async def _silence(self) -> None:
        while True:
            self.twilio.speak(FRAME_SECONDS)
            await asyncio.sleep(FRAME_SECONDS)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepgramListen]:
    async with FakeDeepgramListen() as server:
        yield server


async def _call_until_the_consent_answer(fake: FakeDeepgramListen) -> CallAtConsent:
    identity = CallIdentity(CALL, STREAM, CALLER, datetime.now(UTC), time.monotonic())
    twilio = TwilioPeer()
    bridge = CallBridge(twilio, Voice())
    twilio.start()
    twilio.speak(1.0)
    await bridge.open()
    transcriber = DeepgramTranscriber(API_KEY, base_url=fake.url, timing=TIMING)
    bridge.listen(transcriber.open_session(call_keyterms(ACME)))
    stream = await fake.next_stream()
    conversation = Conversation(ACME, CALLER, OneQuestion(), bridge)
    running = asyncio.create_task(conversation.run())
    await stream.wait_for_audio(1.0)
    need = [FakeWord("my", 0.2, 0.3), FakeWord("sink", 0.3, 0.5), FakeWord("leaks", 0.5, 0.8)]
    await stream.send(results_message(need, is_final=True, speech_final=True))
    await _until(lambda: conversation.consent.playback_confirmed_at is not None)
    return CallAtConsent(twilio, bridge, conversation, stream, running, identity)


async def test_a_consent_answer_that_stops_unsettled_is_finalized_and_decided_by_its_final(
    fake: FakeDeepgramListen,
) -> None:
    call = await _call_until_the_consent_answer(fake)
    at = call.twilio.stream_time
    call.twilio.speak(2.0)
    await call.stream.wait_for_audio(3.0)
    answer = [
        FakeWord("yes", at + 0.3, at + 0.6, 0.95, "Yes,"),
        FakeWord("please", at + 0.7, at + 1.0),
    ]
    await call.stream.send(results_message(answer, is_final=False))
    call.stream.staged_words = answer  # what Deepgram settles on when asked to finalize
    await call.stream.send(utterance_end_message(at + 1.0))
    await call.stream.wait_for_control("Finalize")
    await call.finish()
    consent = call.conversation.consent
    assert consent.outcome is ConsentOutcome.AFFIRMATIVE
    (taken,) = consent.answers
    assert taken.heard.utterance is not None and taken.heard.utterance.text == "Yes, please"
    controls = [kind for kind in call.stream.controls if kind != "KeepAlive"]
    assert controls == ["Finalize", "CloseStream"]  # only the consent answer was finalized


async def test_an_answer_heard_as_the_mark_returns_is_dated_from_the_confirmation(
    fake: FakeDeepgramListen,
) -> None:
    call = await _call_until_the_consent_answer(fake)
    at = call.bridge.stream_time  # the last frame before the script's mark came back
    call.twilio.speak(1.0)
    await call.stream.wait_for_audio(2.0)
    answer = [FakeWord("yes", at, at + 0.3, 0.9, "Yes."), FakeWord("sure", at + 0.4, at + 0.6)]
    await call.stream.send(results_message(answer, is_final=True, speech_final=True))
    await call.finish()
    assert "Finalize" not in call.stream.controls  # Deepgram's own endpointing came first
    consent = call.conversation.consent
    assert consent.outcome is ConsentOutcome.AFFIRMATIVE
    now = datetime.now(UTC)
    evidence = consent_evidence(ACME, call.identity, consent, now, None)
    script, (spoken,) = evidence.script, evidence.answers
    assert script is not None and script.started_at is not None
    assert script.playback_confirmed_at is not None
    assert spoken.started_at == script.playback_confirmed_at  # its first frame came earlier
    moments = [
        call.identity.started_at,
        script.started_at,
        script.playback_confirmed_at,
        spoken.started_at,
        *(moment for word in spoken.words for moment in (word.start, word.end)),
        spoken.ended_at,
        now,
    ]
    assert moments == sorted(moments)


async def test_a_consent_answer_whose_final_comes_long_after_its_start_is_still_taken(
    fake: FakeDeepgramListen, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversation_module, "CONSENT_SILENCE", 0.3)
    call = await _call_until_the_consent_answer(fake)
    at = call.twilio.stream_time
    call.twilio.speak(2.0)
    await call.stream.wait_for_audio(3.0)
    answer = [
        FakeWord("no", at + 0.2, at + 0.4, 0.95, "No,"),
        FakeWord("thanks", at + 0.5, at + 0.8),
    ]
    await call.stream.send(results_message(answer, is_final=False))  # the caller has begun
    await asyncio.sleep(1.0)  # longer than the silence: the words to come hold the floor
    assert call.conversation.consent.outcome is ConsentOutcome.NOT_ASKED  # still listening
    await call.stream.send(results_message(answer, is_final=True, speech_final=True))
    await call.finish()
    consent = call.conversation.consent
    assert consent.outcome is ConsentOutcome.DECLINED
    assert not consent.reasked and consent.note == ""
    (taken,) = consent.answers
    assert taken.heard.utterance is not None and taken.heard.utterance.text == "No, thanks"
