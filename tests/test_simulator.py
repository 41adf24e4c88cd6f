"""The call simulator against a small fake server on 127.0.0.1 that checks what Twilio would send.

The fake server validates every signature with Twilio's own ``RequestValidator``, reads the
media stream with the protocol parser, and drives the playout from the server side (audio,
marks, clear). Stream-time assertions use the caller's own ``media.timestamp`` as the clock,
never the wall clock.
"""

from __future__ import annotations

import asyncio
import base64
import math
import re
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from twilio.request_validator import RequestValidator

from call_simulator.scenarios import HangUpStep, OwnerLeg, PressStep, SayStep, Scenario, Step
from call_simulator.simulator import (
    PlayoutBuffer,
    SimulatedCall,
    SimulationError,
    read_wav_as_ulaw,
    simulate_call,
)
from media_stream.codec import SAMPLE_RATE, SILENCE_BYTE, ulaw_encode
from media_stream.protocol import (
    TWILIO_MEDIA_FORMAT,
    Connected,
    Dtmf,
    InboundMessage,
    Mark,
    Media,
    Start,
    Stop,
    parse_inbound,
)

PUBLIC = "https://receptionist.example.com"
STREAM_URL = "wss://receptionist.example.com/twilio/media-stream"
TOKEN = "fake-auth-token"
ACCOUNT = "AC" + "a" * 32
SPEED = 4.0
SID = re.compile(r"(CA|MZ)[0-9a-f]{32}")
NEVER = 600.0  # an interrupt_after that is never reached: the server ends the call first

on_server_loop = pytest.mark.asyncio(loop_scope="module")  # the loop the fake server runs on

StreamScript = Callable[["StreamPeer"], Awaitable[None]]


def _twiml(*verbs: str) -> str:
    return "<?xml version='1.0' encoding='UTF-8'?><Response>" + "".join(verbs) + "</Response>"


def _connect(**parameters: str) -> str:
    children = "".join(f'<Parameter name="{k}" value="{v}"/>' for k, v in parameters.items())
    return f'<Connect><Stream url="{STREAM_URL}">{children}</Stream></Connect>'


def _tone(seconds: float) -> bytes:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return ulaw_encode((8000 * np.sin(2 * math.pi * 440 * t)).astype(np.int16))


class ToneVoice:
    """A caller voice without espeak: every line is 0.3 s of a 440 Hz tone."""

    def render_ulaw(self, text: str) -> bytes:
        return _tone(0.3)


def _scenario(*steps: Step, owner: OwnerLeg = "no-answer") -> Scenario:
    return Scenario(
        name="fake",
        description="A call to the fake server.",
        business_number="+15125550100",
        caller="+15125550142",
        steps=steps,
        owner=owner,
    )


@dataclass
class Webhook:
    path: str
    form: dict[str, str]
    signed: bool


class StreamPeer:
    """The fake server's end of one media stream; reads Twilio's side in the background."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.messages: list[InboundMessage] = []
        self.echoes: list[tuple[str, int]] = []  # mark name, caller's last media timestamp
        self.first_speech_ms: int | None = None
        self.speech_ended_ms: int | None = None
        self.last_media_ms = -1
        self.disconnected = False
        self._changed = asyncio.Event()

    @property
    def stream_sid(self) -> str:
        start = next(m for m in self.messages if isinstance(m, Start))
        return start.stream_sid

    async def read(self) -> None:
        try:
            while True:
                self._note(parse_inbound(await self.websocket.receive_text()))
        except (WebSocketDisconnect, RuntimeError):
            self.disconnected = True
            self._changed.set()

    def _note(self, message: InboundMessage) -> None:
        self.messages.append(message)
        if isinstance(message, Media):
            self.last_media_ms = message.timestamp_ms
            speaking = any(byte != SILENCE_BYTE for byte in message.payload)
            if speaking and self.first_speech_ms is None:
                self.first_speech_ms = message.timestamp_ms
            if not speaking and self.first_speech_ms is not None and self.speech_ended_ms is None:
                self.speech_ended_ms = message.timestamp_ms
        if isinstance(message, Mark):
            self.echoes.append((message.name, self.last_media_ms))
        self._changed.set()

    async def until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def started(self) -> None:
        await self.until(lambda: any(isinstance(m, Start) for m in self.messages))

    async def echoed(self, name: str) -> None:
        await self.until(lambda: any(echo == name for echo, _ in self.echoes))

    async def send_audio(self, seconds: float) -> None:
        payload = base64.b64encode(_tone(seconds)).decode()
        await self.send_json({"event": "media", "media": {"payload": payload}})

    async def send_mark(self, name: str) -> None:
        await self.send_json({"event": "mark", "mark": {"name": name}})

    async def send_clear(self) -> None:
        await self.send_json({"event": "clear"})

    async def send_json(self, body: dict[str, object]) -> None:
        await self.websocket.send_json({**body, "streamSid": self.stream_sid})


@dataclass
class FakeServer:
    """Stands in for our server: scripted TwiML and a scripted media stream."""

    voice_twiml: str = field(default_factory=lambda: _twiml(_connect(business="acme")))
    dial_twiml: str = field(default_factory=lambda: _twiml(_connect(business="acme")))
    script: StreamScript | None = None
    websocket_token: str = TOKEN
    webhooks: list[Webhook] = field(default_factory=list)
    stream_signed: bool | None = None
    peer: StreamPeer | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _webhook(self, request: Request, twiml: str) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        signed = RequestValidator(TOKEN).validate(PUBLIC + request.url.path, form, signature)
        self.webhooks.append(Webhook(request.url.path, form, signed))
        if not signed:
            return PlainTextResponse("forbidden", status_code=403)
        return Response(twiml, media_type="application/xml")

    async def voice(self, request: Request) -> Response:
        return await self._webhook(request, self.voice_twiml)

    async def dial_status(self, request: Request) -> Response:
        return await self._webhook(request, self.dial_twiml)

    async def stream(self, websocket: WebSocket) -> None:
        signature = websocket.headers.get("x-twilio-signature", "")
        self.stream_signed = RequestValidator(self.websocket_token).validate(
            STREAM_URL, {}, signature
        )
        if not self.stream_signed:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        self.peer = StreamPeer(websocket)
        reader = asyncio.create_task(self.peer.read())
        try:
            if self.script is not None:
                await self.script(self.peer)
            if not self.peer.disconnected:
                await websocket.close()
        finally:
            await asyncio.wait({reader}, timeout=5)


@dataclass
class FakeServerHost:
    """One uvicorn server for the module; each test gets a fresh ``FakeServer`` behind it."""

    current: FakeServer = field(default_factory=FakeServer)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/twilio/voice", self._voice, methods=["POST"]),
                Route("/twilio/voice/dial-status", self._dial_status, methods=["POST"]),
                WebSocketRoute("/twilio/media-stream", self._stream),
            ]
        )

    async def _voice(self, request: Request) -> Response:
        return await self.current.voice(request)

    async def _dial_status(self, request: Request) -> Response:
        return await self.current.dial_status(request)

    async def _stream(self, websocket: WebSocket) -> None:
        await self.current.stream(websocket)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def host() -> AsyncIterator[tuple[FakeServerHost, int]]:
    fake_host = FakeServerHost()
    config = uvicorn.Config(
        fake_host.app(),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ws="websockets-sansio",
    )
    uvicorn_server = uvicorn.Server(config)
    task = asyncio.create_task(uvicorn_server.serve())
    while not uvicorn_server.started:  # noqa: ASYNC110 - uvicorn's flag is not an Event
        await asyncio.sleep(0.01)
    yield fake_host, uvicorn_server.servers[0].sockets[0].getsockname()[1]
    uvicorn_server.should_exit = True
    await task


@pytest.fixture
def server(host: tuple[FakeServerHost, int]) -> FakeServer:
    fake_host, port = host
    fake_host.current = FakeServer(port=port)
    return fake_host.current


async def _call(
    server: FakeServer, scenario: Scenario, *, token: str = TOKEN, reply_timeout: float = 10.0
) -> SimulatedCall:
    return await simulate_call(
        scenario,
        server_url=server.url,
        public_base_url=PUBLIC,
        account_sid=ACCOUNT,
        auth_token=token,
        speed=SPEED,
        synthesizer=ToneVoice(),
        reply_timeout=reply_timeout,
    )


def _verbs(call: SimulatedCall) -> list[str]:
    return [heard.verb for heard in call.twiml]


async def _greet_answer_and_say_goodbye(peer: StreamPeer) -> None:
    await peer.started()
    await peer.send_audio(0.4)
    await peer.send_mark("greeting")
    await peer.until(lambda: peer.speech_ended_ms is not None)
    await peer.send_audio(0.2)
    await peer.send_mark("goodbye")
    await peer.echoed("goodbye")


@on_server_loop
async def test_follows_twiml_signs_everything_and_speaks_the_protocol(server: FakeServer) -> None:
    server.voice_twiml = _twiml(
        "<Say>Please hold.</Say>",
        '<Dial action="/twilio/voice/dial-status" timeout="20">'
        "<Number>+15125550199</Number></Dial>",
        "<Say>Never reached.</Say>",
    )
    server.dial_twiml = _twiml(
        _connect(business="acme-plumbing", caller="+15125550142"), "<Hangup/>"
    )
    server.script = _greet_answer_and_say_goodbye

    call = await _call(server, _scenario(SayStep("Hi, this is Maria.")))

    assert [hook.path for hook in server.webhooks] == ["/twilio/voice", "/twilio/voice/dial-status"]
    assert all(hook.signed for hook in server.webhooks)
    assert server.stream_signed is True
    ringing, dial_status = (hook.form for hook in server.webhooks)
    assert ringing == {
        "CallSid": call.call_sid,
        "AccountSid": ACCOUNT,
        "From": "+15125550142",
        "To": "+15125550100",
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    assert SID.fullmatch(call.call_sid) and call.call_sid.startswith("CA")
    assert dial_status["CallSid"] == call.call_sid
    assert dial_status["DialCallStatus"] == "no-answer"
    assert dial_status["DialCallDuration"] == "0"
    assert SID.fullmatch(dial_status["DialCallSid"]) and dial_status["DialCallSid"] != call.call_sid

    assert _verbs(call) == ["Say", "Dial", "Connect", "Hangup"]
    assert call.twiml[0].detail == "Please hold."
    assert "+15125550199" in call.twiml[1].detail and "no-answer" in call.twiml[1].detail
    assert call.closed_by == "server"
    assert call.errors == ()
    assert call.marks_echoed == 2
    assert call.clears_received == 0
    assert call.assistant_audio_seconds == pytest.approx(0.6, abs=0.01)
    assert [performed.index for performed in call.caller_steps] == [0]

    assert server.peer is not None
    messages = server.peer.messages
    assert messages[0] == Connected(protocol="Call", version="1.0.0")
    start = messages[1]
    assert isinstance(start, Start)
    assert start.sequence_number == 1
    assert start.stream_sid == call.stream_sid and SID.fullmatch(start.stream_sid)
    assert (start.call_sid, start.account_sid) == (call.call_sid, ACCOUNT)
    assert start.tracks == ("inbound",)
    assert start.custom_parameters == {"business": "acme-plumbing", "caller": "+15125550142"}
    assert start.media_format == TWILIO_MEDIA_FORMAT
    sequenced = [m for m in messages[1:] if not isinstance(m, Connected)]
    assert [m.sequence_number for m in sequenced] == list(range(1, len(sequenced) + 1))
    media = [m for m in messages if isinstance(m, Media)]
    assert [m.chunk for m in media] == list(range(1, len(media) + 1))
    assert all(m.timestamp_ms == (m.chunk - 1) * 20 for m in media)
    assert all(len(m.payload) == 160 and m.track == "inbound" for m in media)
    # The caller waited for the greeting (0.4 s) and a quiet period (0.6 s) before speaking.
    assert server.peer.first_speech_ms is not None and server.peer.first_speech_ms >= 900


@on_server_loop
async def test_owner_answering_ends_the_call_without_a_stream(server: FakeServer) -> None:
    server.voice_twiml = _twiml(
        f'<Dial action="{PUBLIC}/twilio/voice/dial-status" timeout="20">+15125550199</Dial>'
    )
    server.dial_twiml = _twiml("<Hangup/>")

    call = await _call(server, _scenario(HangUpStep(), owner="takes-it"))

    assert server.webhooks[1].form["DialCallStatus"] == "completed"
    assert all(hook.signed for hook in server.webhooks)
    assert _verbs(call) == ["Dial", "Hangup"]
    assert call.stream_sid is None and call.caller_steps == ()
    assert server.stream_signed is None


@on_server_loop
async def test_dial_without_action_goes_on_to_the_next_verb(server: FakeServer) -> None:
    server.voice_twiml = _twiml('<Dial timeout="5">+15125550199</Dial>', "<Hangup/>")

    call = await _call(server, _scenario(HangUpStep()))

    assert _verbs(call) == ["Dial", "Hangup"]
    assert [hook.path for hook in server.webhooks] == ["/twilio/voice"]


@on_server_loop
async def test_connect_action_is_requested_after_the_server_closes(server: FakeServer) -> None:
    relative = '<Connect action="voice/dial-status">'  # resolved against /twilio/voice
    connect = _connect(business="acme").replace("<Connect>", relative)
    server.voice_twiml = _twiml(connect, "<Say>Never reached.</Say>")
    server.dial_twiml = _twiml("<Say>Bye.</Say>", "<Hangup/>")

    async def script(peer: StreamPeer) -> None:
        await peer.started()
        await peer.send_audio(0.2)
        await peer.until(lambda: peer.speech_ended_ms is not None)

    server.script = script
    call = await _call(server, _scenario(SayStep("Hi.")))

    assert [hook.path for hook in server.webhooks] == ["/twilio/voice", "/twilio/voice/dial-status"]
    assert all(hook.signed for hook in server.webhooks)
    assert server.webhooks[1].form["CallSid"] == call.call_sid
    assert _verbs(call) == ["Connect", "Say", "Hangup"]
    assert call.closed_by == "server"


@on_server_loop
async def test_mark_is_echoed_once_the_audio_before_it_has_played(server: FakeServer) -> None:
    async def script(peer: StreamPeer) -> None:
        await peer.started()
        await peer.send_mark("nothing-queued")
        await peer.send_audio(1.0)
        await peer.send_mark("played")
        await peer.echoed("played")

    server.script = script
    call = await _call(server, _scenario(HangUpStep(interrupt_after=NEVER)))

    assert server.peer is not None
    names = [name for name, _ in server.peer.echoes]
    assert names == ["nothing-queued", "played"]
    heard_at = dict(server.peer.echoes)
    assert heard_at["played"] >= 900  # the caller's stream had run through the second of audio
    assert call.marks_echoed == 2
    assert call.assistant_audio_seconds == pytest.approx(1.0, abs=0.01)
    assert call.closed_by == "server"
    assert call.errors == ("the server closed the stream before step 1 of 1 (hang up)",)


@on_server_loop
async def test_clear_drops_the_buffer_and_echoes_pending_marks_at_once(server: FakeServer) -> None:
    async def script(peer: StreamPeer) -> None:
        await peer.started()
        await peer.send_audio(5.0)
        await peer.send_mark("long-a")
        await peer.send_audio(1.0)
        await peer.send_mark("long-b")
        await peer.until(lambda: peer.last_media_ms >= 200)
        await peer.send_clear()
        await peer.echoed("long-b")
        await peer.send_audio(0.2)
        await peer.send_mark("after")
        await peer.echoed("after")

    server.script = script
    call = await _call(server, _scenario(HangUpStep(interrupt_after=NEVER)))

    assert server.peer is not None
    assert [name for name, _ in server.peer.echoes] == ["long-a", "long-b", "after"]
    assert dict(server.peer.echoes)["long-b"] < 3000  # not after 6 s of playout
    assert call.clears_received == 1
    assert call.marks_echoed == 3
    assert 0.2 < call.assistant_audio_seconds < 3.2


@on_server_loop
async def test_barge_in_starts_after_the_reply_starts_playing(server: FakeServer) -> None:
    async def script(peer: StreamPeer) -> None:
        await peer.started()
        await peer.send_audio(3.0)
        await peer.send_mark("greeting")
        await peer.until(lambda: peer.first_speech_ms is not None)
        await peer.send_clear()
        await peer.until(lambda: peer.speech_ended_ms is not None)
        await peer.send_audio(0.2)
        await peer.send_mark("goodbye")
        await peer.echoed("goodbye")

    server.script = script
    call = await _call(server, _scenario(SayStep("Hi, it's Alex.", interrupt_after=0.5)))

    assert server.peer is not None
    assert server.peer.first_speech_ms is not None
    assert 400 <= server.peer.first_speech_ms < 2500  # during the greeting, after 0.5 s of it
    assert [name for name, _ in server.peer.echoes] == ["greeting", "goodbye"]
    assert call.clears_received == 1
    assert call.errors == ()
    assert call.closed_by == "server"


@on_server_loop
async def test_keypad_presses_are_dtmf_events(server: FakeServer) -> None:
    async def script(peer: StreamPeer) -> None:
        await peer.started()
        await peer.send_audio(0.2)
        await peer.until(lambda: sum(isinstance(m, Dtmf) for m in peer.messages) == 2)

    server.script = script
    call = await _call(server, _scenario(PressStep("1#")))

    assert server.peer is not None
    presses = [m for m in server.peer.messages if isinstance(m, Dtmf)]
    assert [(m.digit, m.track) for m in presses] == [("1", "inbound_track"), ("#", "inbound_track")]
    assert call.errors == ()


@on_server_loop
async def test_hang_up_sends_stop_closes_and_skips_the_rest_of_the_twiml(
    server: FakeServer,
) -> None:
    server.voice_twiml = _twiml(_connect(business="acme"), "<Say>Goodbye.</Say>", "<Hangup/>")

    async def script(peer: StreamPeer) -> None:
        await peer.started()
        await peer.send_audio(0.3)
        await peer.until(lambda: peer.speech_ended_ms is not None)
        await peer.send_audio(0.3)
        await peer.until(lambda: peer.disconnected)

    server.script = script
    call = await _call(server, _scenario(SayStep("Hi, this is Sam."), HangUpStep()))

    assert server.peer is not None
    stop = server.peer.messages[-1]
    assert isinstance(stop, Stop)
    assert (stop.call_sid, stop.account_sid, stop.stream_sid) == (
        call.call_sid,
        ACCOUNT,
        call.stream_sid,
    )
    assert call.closed_by == "caller"
    assert _verbs(call) == ["Connect"]
    assert [performed.index for performed in call.caller_steps] == [0, 1]
    assert call.errors == ()


@on_server_loop
async def test_malformed_server_messages_are_recorded_not_fatal(server: FakeServer) -> None:
    async def script(peer: StreamPeer) -> None:
        await peer.started()
        await peer.websocket.send_text("not json")
        await peer.websocket.send_bytes(b"\x00\xff binary")
        await peer.websocket.send_text('{"event":"dance","streamSid":"' + peer.stream_sid + '"}')
        await peer.send_json({"event": "media", "media": {"payload": "***not base64***"}})
        await peer.websocket.send_json(
            {"event": "media", "streamSid": "MZ" + "0" * 32, "media": {"payload": "//8="}}
        )
        await peer.send_audio(0.2)
        await peer.send_mark("still-works")
        await peer.echoed("still-works")

    server.script = script
    call = await _call(server, _scenario(HangUpStep(interrupt_after=NEVER)))

    problems = "\n".join(call.errors)
    assert problems.count("malformed message from the server") == 4
    assert "not this stream's" in problems
    assert call.marks_echoed == 1
    assert call.assistant_audio_seconds == pytest.approx(0.2, abs=0.01)


@on_server_loop
async def test_silent_server_times_out_with_a_clear_error_and_a_hang_up(
    server: FakeServer,
) -> None:
    async def script(peer: StreamPeer) -> None:
        await peer.until(lambda: peer.disconnected)

    server.script = script
    with pytest.raises(SimulationError, match=r"step 1 of 1 .*did not finish a reply"):
        await _call(server, _scenario(SayStep("Hello?")), reply_timeout=0.3)
    assert server.peer is not None
    await server.peer.until(lambda: server.peer is not None and server.peer.disconnected)
    assert isinstance(server.peer.messages[-1], Stop)


@on_server_loop
async def test_closing_with_audio_unplayed_is_reported(server: FakeServer) -> None:
    async def script(peer: StreamPeer) -> None:
        await peer.started()
        await peer.send_audio(2.0)

    server.script = script
    call = await _call(server, _scenario(HangUpStep(interrupt_after=NEVER)))

    assert any("of audio unplayed" in problem for problem in call.errors)
    assert call.assistant_audio_seconds < 2.0


@on_server_loop
async def test_server_that_never_hangs_up_is_hung_up_on(server: FakeServer) -> None:
    async def script(peer: StreamPeer) -> None:
        await peer.started()
        await peer.send_audio(0.2)
        await peer.until(lambda: peer.disconnected)

    server.script = script
    call = await _call(server, _scenario(SayStep("Hi.")), reply_timeout=0.3)

    assert call.closed_by == "caller"
    assert any("did not end the call" in problem for problem in call.errors)
    assert server.peer is not None and isinstance(server.peer.messages[-1], Stop)


@pytest.mark.parametrize(
    ("voice_twiml", "problem"),
    [
        (_twiml("<Play>https://example.com/a.mp3</Play>"), "unsupported TwiML verb <Play>"),
        ("<html><body>oops</body></html>", "not a TwiML <Response>"),
        ("<Response><Say>unclosed", "malformed TwiML"),
        ("", "malformed TwiML"),
        (
            _twiml('<Connect><Stream url="ws://receptionist.example.com/x"/></Connect>'),
            "must be a wss:// URL",
        ),
        (
            _twiml('<Connect><Stream url="wss://evil.example.net/twilio/media-stream"/></Connect>'),
            "not under the public base URL",
        ),
        (
            _twiml('<Dial action="https://evil.example.net/steal">+15125550199</Dial>'),
            "not under the public base URL",
        ),
        (_twiml('<Dial action="/twilio/voice/dial-status" method="GET">+1</Dial>'), "only POST"),
        (
            _twiml(f'<Connect><Stream url="{STREAM_URL}"><Bogus/></Stream></Connect>'),
            "only <Parameter name value>",
        ),
        (_twiml("<Connect/>"), "exactly one <Stream>"),
        (_twiml('<Dial action="/twilio/voice">+15125550199</Dial>'), "TwiML documents: a loop"),
    ],
)
@on_server_loop
async def test_twiml_twilio_would_reject_is_a_clear_error(
    server: FakeServer, voice_twiml: str, problem: str
) -> None:
    server.voice_twiml = voice_twiml
    with pytest.raises(SimulationError, match=re.escape(problem)):
        await _call(server, _scenario(SayStep("Hi.")))


@on_server_loop
async def test_wrong_auth_token_is_refused_by_the_server(server: FakeServer) -> None:
    with pytest.raises(SimulationError, match="answered 403"):
        await _call(server, _scenario(SayStep("Hi.")), token="not-the-token")
    assert server.webhooks[0].signed is False


@on_server_loop
async def test_refused_websocket_upgrade_is_a_clear_error(server: FakeServer) -> None:
    server.websocket_token = "another-token"
    with pytest.raises(SimulationError, match="cannot open the media stream"):
        await _call(server, _scenario(SayStep("Hi.")))
    assert server.stream_signed is False


@on_server_loop
async def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(SimulationError, match="failed"):
        await simulate_call(
            _scenario(SayStep("Hi.")),
            server_url="http://127.0.0.1:9",
            public_base_url=PUBLIC,
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            synthesizer=ToneVoice(),
        )


@pytest.mark.parametrize("speed", [0.0, -1.0])
@on_server_loop
async def test_speed_must_be_positive(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        await simulate_call(
            _scenario(SayStep("Hi.")),
            server_url="http://127.0.0.1:9",
            public_base_url=PUBLIC,
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            speed=speed,
        )


def test_playout_buffer_plays_in_order_and_marks_follow_the_audio() -> None:
    buffer = PlayoutBuffer()
    buffer.add_mark("empty", now=0.0)
    assert buffer.pop_due_marks(0.0) == ["empty"]
    assert buffer.append_audio(1.0, now=0.0) == 0.0
    assert buffer.append_audio(0.5, now=0.5) == 1.0  # queued behind the first second
    buffer.add_mark("end", now=0.5)
    assert buffer.next_mark_due() == 1.5
    assert buffer.pop_due_marks(1.49) == []
    assert buffer.pop_due_marks(1.5) == ["end"]
    assert buffer.played_seconds(1.5) == 1.5
    assert buffer.quiet_since() == 1.5
    assert buffer.append_audio(0.2, now=3.0) == 3.0  # after a gap, plays at once


def test_playout_clear_drops_unplayed_audio_and_returns_pending_marks() -> None:
    buffer = PlayoutBuffer()
    buffer.append_audio(2.0, now=0.0)
    buffer.add_mark("a", now=0.0)
    buffer.append_audio(1.0, now=0.1)
    buffer.add_mark("b", now=0.1)
    assert buffer.clear(now=0.5) == ["a", "b"]
    assert buffer.next_mark_due() is None
    assert buffer.unplayed_seconds(0.5) == 0.0
    assert buffer.played_seconds(0.5) == pytest.approx(0.5)
    assert buffer.append_audio(0.3, now=0.6) == 0.6
    assert buffer.clear(now=0.6) == []


def test_wav_is_mixed_to_mono_and_resampled(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    t = np.arange(16000 // 2) / 16000
    tone = (6000 * np.sin(2 * math.pi * 300 * t)).astype("<i2")
    with wave.open(str(path), "wb") as audio:
        audio.setsampwidth(2)
        audio.setnchannels(2)
        audio.setframerate(16000)
        audio.writeframes(np.repeat(tone, 2).tobytes())
    ulaw = read_wav_as_ulaw(path)
    assert len(ulaw) == 4000  # 0.5 s at 8 kHz
    assert any(byte != SILENCE_BYTE for byte in ulaw)


def test_unreadable_wav_is_a_simulation_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x00\x00")
    with pytest.raises(SimulationError, match="cannot read"):
        read_wav_as_ulaw(path)
    with pytest.raises(SimulationError, match="cannot read"):
        read_wav_as_ulaw(tmp_path / "absent.wav")
