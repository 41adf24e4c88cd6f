"""A simulated phone call that behaves toward our server exactly as Twilio does.

``simulate_call`` plays a ``Scenario`` against a running server: it posts the signed
``/twilio/voice`` webhook, follows the TwiML it gets back (``<Say>``, ``<Dial>`` with its
action callback, ``<Connect><Stream>``, ``<Hangup/>``), and for a stream opens the signed
websocket and speaks Twilio's Media Streams protocol: ``connected``, ``start``, a 20 ms μ-law
frame every 20 ms of stream time (the caller's speech or silence), ``dtmf`` for keypad presses
and ``stop`` when the caller hangs up. It emulates Twilio's outbound playout buffer: the
server's audio plays in real time, a ``mark`` is echoed once the audio before it has played and
``clear`` drops the buffer and echoes every pending mark at once.

The scripted caller takes turns like a patient person: before each step it waits until the
assistant has replied, finished playing and stayed quiet for a moment; a step with
``interrupt_after`` barges in that many seconds after the assistant's next reply starts playing.
``speed`` scales all stream time (2.0 runs a call twice as fast as real time); the ring time of
an unanswered ``<Dial>`` is not waited for.

Other callers plug in through ``place_call``: a ``CallerSide`` takes its turns over the
``CallLine`` (speak, press, hang up, the playout, the stream clock) and may listen to what the
assistant sends (``AssistantListener``); ``call_simulator.listening_caller`` is one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import wave
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urljoin, urlsplit
from xml.etree import ElementTree

import httpx
import numpy as np
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from call_simulator.caller_voices import PIPER, CallerVoice, caller_voice
from call_simulator.scenarios import (
    HangUpStep,
    OwnerLeg,
    PressStep,
    SayStep,
    Scenario,
    Step,
    WavStep,
)
from media_stream.codec import (
    FRAME_BYTES,
    FRAME_SECONDS,
    SAMPLE_RATE,
    SILENCE_BYTE,
    duration_seconds,
    frames,
    resample,
    ulaw_encode,
)
from media_stream.protocol import (
    TWILIO_MEDIA_FORMAT,
    Clear,
    Connected,
    Dtmf,
    InboundMessage,
    Mark,
    Media,
    OutboundMark,
    OutboundMedia,
    ProtocolError,
    Start,
    Stop,
    encode_inbound,
    parse_outbound,
)

logger = logging.getLogger(__name__)

# Assistant silence before the caller takes its turn, in stream time and in wall time both: a
# call run faster than real time gives the server as long as a real one to go on speaking.
QUIET_SECONDS = 0.6
DIGIT_SECONDS = 0.25  # stream time between two keypad presses of one step
REPLY_TIMEOUT_SECONDS = 30.0  # wall-clock patience for a reply or for the server to hang up
VOICE_WEBHOOK_PATH = "/twilio/voice"
STATUS_CALLBACK_PATH = "/twilio/voice/status"
OWNER_CALL_SECONDS = 60  # DialCallDuration reported when the owner takes the call
VOICEMAIL_ANSWERS_AFTER = 12.0  # seconds of ringing before the owner's voicemail picks up
OWNER_TAKES_IT_KEY = "1"  # what an owner who takes the call presses when the leg is screened
_ANSWERING_LEGS = frozenset({"takes-it", "presses-nothing", "voicemail"})
MAX_TWIML_DOCUMENTS = 10  # action callbacks followed before the call is declared looping
_HTTP_TIMEOUT_SECONDS = 15.0
_API_VERSION = "2010-04-01"
_SILENT_FRAME = bytes([SILENCE_BYTE]) * FRAME_BYTES

ClosedBy = Literal["server", "caller"]


class SimulationError(RuntimeError):
    """The call could not go on: bad TwiML, a failed webhook, or a reply that never came."""


@dataclass(frozen=True)
class CallParties:
    """Who calls whom: the caller's number, the business number dialled, what happens on the
    owner's phone when the business rings it (before the assistant answers) and on the on-call
    phones when it transfers the caller (after), and a name for the call in logs and results."""

    name: str
    caller: str
    business_number: str
    owner: OwnerLeg = "no-answer"
    on_call: OwnerLeg = "no-answer"


class AssistantListener(Protocol):
    """Hears what the server sends, on the stream clock (the playout's own times)."""

    def assistant_audio(self, audio: bytes, plays_from: float) -> None:
        """μ-law ``audio`` arrived; it starts playing at ``plays_from`` stream seconds."""

    def assistant_mark(self, name: str, due: float) -> None:
        """A mark arrived; the audio before it has played at ``due`` stream seconds."""

    def assistant_cleared(self, at: float) -> None:
        """``clear`` arrived at ``at``: whatever had not played by then never will."""


class CallLine(Protocol):
    """The caller's end of a live media stream, as a ``CallerSide`` uses it."""

    @property
    def call_sid(self) -> str: ...

    @property
    def playout(self) -> PlayoutBuffer:
        """The assistant's audio as Twilio plays it to the caller."""

    @property
    def reply_start(self) -> float | None:
        """When the first reply since ``forget_reply`` started playing (stream seconds)."""

    @property
    def closed(self) -> bool:
        """Whether the server has closed the stream."""

    @property
    def reply_timeout(self) -> float:
        """Wall-clock patience for a reply, in seconds."""

    @property
    def poll_seconds(self) -> float:
        """Wall seconds of one 20 ms frame of stream time: a good polling interval."""

    def now(self) -> float:
        """Stream time in seconds since the stream started."""

    def wall_seconds(self, stream_seconds: float) -> float: ...

    async def sleep_until(self, stream_time: float) -> None: ...

    def forget_reply(self) -> None:
        """Start looking for the next reply (``reply_start`` becomes None)."""

    def listen(self, listener: AssistantListener) -> None:
        """Tell ``listener`` about everything the server sends from now on."""

    async def speak(self, audio: bytes) -> bool:
        """Send ``audio`` as the caller's frames; False if the stream closed before its end."""

    async def press(self, digits: str) -> bool:
        """Send keypad presses; False if the stream closed first."""

    async def hang_up(self) -> None:
        """``stop`` and close at once, as Twilio does when the caller hangs up."""

    async def wait_closed(self, patience: float) -> bool:
        """Wait at most ``patience`` wall seconds for the server to close; True if it did."""

    def record_step(self, step: PerformedStep) -> None:
        """Note a performed scenario step in the call's result."""

    def error(self, problem: str) -> None:
        """Note a problem Twilio would log and survive."""


class CallerSide(Protocol):
    """The caller's behaviour on the stream: takes its turns, returns who ended the stream."""

    async def converse(self, line: CallLine) -> ClosedBy: ...


@dataclass(frozen=True)
class HeardTwiml:
    """One TwiML verb as the simulated Twilio carried it out."""

    verb: str
    detail: str


@dataclass(frozen=True)
class PerformedStep:
    """A caller step that was carried out, with its start and end in stream seconds."""

    index: int
    step: Step
    started_at: float
    ended_at: float


@dataclass(frozen=True)
class SimulatedCall:
    """What happened on one simulated call."""

    call_sid: str
    stream_sid: str | None
    scenario: str
    twiml: tuple[HeardTwiml, ...]
    caller_steps: tuple[PerformedStep, ...]
    assistant_audio_seconds: float
    marks_echoed: int
    clears_received: int
    errors: tuple[str, ...]
    closed_by: ClosedBy


async def simulate_call(
    scenario: Scenario,
    *,
    server_url: str,
    public_base_url: str,
    account_sid: str,
    auth_token: str,
    speed: float = 1.0,
    synthesizer: CallerVoice | None = None,
    reply_timeout: float = REPLY_TIMEOUT_SECONDS,
    status_callback: bool = False,
) -> SimulatedCall:
    """Place ``scenario``'s call to the server at ``server_url`` as Twilio would.

    ``public_base_url`` is the address the server believes Twilio uses (what is signed);
    requests go to ``server_url``. ``synthesizer`` speaks the caller's lines (by default
    the scenario's ``caller_voice``, Piper when it names none: ``call_simulator.caller_voices``).
    With ``status_callback``, the number's call status callback is posted when the call ends
    (see ``place_call``). Raises ``SimulationError`` when the call cannot go on; problems that
    Twilio would log and survive are listed in ``errors``.
    """
    _check_pace(speed, reply_timeout)
    caller_audio = await asyncio.to_thread(_render_caller_audio, scenario, synthesizer)
    parties = CallParties(
        name=scenario.name,
        caller=scenario.caller,
        business_number=scenario.business_number,
        owner=scenario.owner,
        on_call=scenario.on_call,
    )
    return await place_call(
        parties,
        _ScriptedCaller(scenario, caller_audio),
        server_url=server_url,
        public_base_url=public_base_url,
        account_sid=account_sid,
        auth_token=auth_token,
        speed=speed,
        reply_timeout=reply_timeout,
        status_callback=status_callback,
    )


async def place_call(
    parties: CallParties,
    caller: CallerSide,
    *,
    server_url: str,
    public_base_url: str,
    account_sid: str,
    auth_token: str,
    speed: float = 1.0,
    reply_timeout: float = REPLY_TIMEOUT_SECONDS,
    status_callback: bool = False,
) -> SimulatedCall:
    """Place a call from ``parties.caller`` as Twilio would, with ``caller`` on the line once
    the media stream is connected (``simulate_call`` with any caller behaviour).

    With ``status_callback`` the business number is one whose status callback is
    ``STATUS_CALLBACK_PATH`` (as ``receptionist twilio connect`` sets it): when the call ends,
    Twilio posts ``CallStatus=completed`` and the call's ``CallDuration`` there."""
    _check_pace(speed, reply_timeout)
    call = _CallState(parties=parties, account_sid=account_sid)
    signer = _Signer(RequestValidator(auth_token))
    addresses = _Addresses(server_url=server_url, public_base_url=public_base_url)
    async with httpx.AsyncClient(timeout=_HTTP_TIMEOUT_SECONDS) as http:
        webhooks = _Webhooks(http, addresses, signer)
        stream_settings = _StreamSettings(speed, reply_timeout, caller)
        started = time.monotonic()
        await _TwimlFollower(call, webhooks, addresses, signer, stream_settings).run()
        if status_callback:
            seconds = round((time.monotonic() - started) * speed)  # on the call's own clock
            completed = call.params("completed") | {"CallDuration": str(seconds)}
            url = public_base_url.rstrip("/") + STATUS_CALLBACK_PATH
            await webhooks.post(url, completed)
    return call.result()


def _check_pace(speed: float, reply_timeout: float) -> None:
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    if reply_timeout <= 0:
        raise ValueError(f"reply_timeout must be positive, got {reply_timeout}")


def new_sid(prefix: str) -> str:
    """A Twilio-style identifier: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def _render_caller_audio(scenario: Scenario, voice: CallerVoice | None) -> dict[int, bytes]:
    """μ-law audio for every spoken or played step, by step index, rendered before the call."""
    audio: dict[int, bytes] = {}
    for index, step in enumerate(scenario.steps):
        if isinstance(step, SayStep):
            voice = voice or _default_voice(scenario)
            audio[index] = voice.render_ulaw(step.text)
        elif isinstance(step, WavStep):
            audio[index] = read_wav_as_ulaw(step.path)
    return audio


def _default_voice(scenario: Scenario) -> CallerVoice:
    # A voice is loaded only when a scenario has lines to speak and no voice was given.
    return caller_voice(scenario.caller_voice or PIPER)


def read_wav_as_ulaw(path: Path) -> bytes:
    """A 16-bit PCM WAV file (any rate, mono or stereo) as μ-law 8 kHz mono."""
    try:
        with wave.open(str(path), "rb") as audio:
            width, channels = audio.getsampwidth(), audio.getnchannels()
            rate, data = audio.getframerate(), audio.readframes(audio.getnframes())
    except (OSError, EOFError, wave.Error) as error:
        raise SimulationError(f"cannot read the caller's audio {path}: {error}") from error
    if width != 2 or channels not in (1, 2):
        raise SimulationError(
            f"{path}: need 16-bit mono or stereo, got {8 * width}-bit × {channels}"
        )
    samples = np.frombuffer(data[: len(data) - len(data) % (2 * channels)], dtype="<i2")
    mono = samples.reshape(-1, channels).mean(axis=1).round().astype(np.int16)
    return ulaw_encode(resample(mono, rate, SAMPLE_RATE))


@dataclass
class _CallState:
    """The call's identity and everything observed so far; becomes the ``SimulatedCall``."""

    parties: CallParties
    account_sid: str
    call_sid: str = field(default_factory=lambda: new_sid("CA"))
    stream_sid: str | None = None
    twiml: list[HeardTwiml] = field(default_factory=list)
    caller_steps: list[PerformedStep] = field(default_factory=list)
    assistant_audio_seconds: float = 0.0
    marks_echoed: int = 0
    clears_received: int = 0
    errors: list[str] = field(default_factory=list)
    closed_by: ClosedBy = "server"

    def params(self, call_status: str) -> dict[str, str]:
        """The form fields Twilio posts with every voice webhook of this call."""
        return {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "From": self.parties.caller,
            "To": self.parties.business_number,
            "CallStatus": call_status,
            "Direction": "inbound",
            "ApiVersion": _API_VERSION,
        }

    def heard(self, verb: str, detail: str) -> None:
        self.twiml.append(HeardTwiml(verb, detail))

    def error(self, problem: str) -> None:
        logger.warning("call %s: %s", self.call_sid, problem)
        self.errors.append(problem)

    def result(self) -> SimulatedCall:
        return SimulatedCall(
            call_sid=self.call_sid,
            stream_sid=self.stream_sid,
            scenario=self.parties.name,
            twiml=tuple(self.twiml),
            caller_steps=tuple(self.caller_steps),
            assistant_audio_seconds=self.assistant_audio_seconds,
            marks_echoed=self.marks_echoed,
            clears_received=self.clears_received,
            errors=tuple(self.errors),
            closed_by=self.closed_by,
        )


@dataclass(frozen=True)
class _Signer:
    """Twilio's request signature (``X-Twilio-Signature``) with the account's auth token."""

    validator: RequestValidator

    def sign(self, url: str, params: dict[str, str]) -> str:
        return str(self.validator.compute_signature(url, params))


@dataclass(frozen=True)
class _Addresses:
    """Maps the public URLs the server hands out onto the local server the requests go to."""

    server_url: str
    public_base_url: str

    @staticmethod
    def public(path_or_url: str, document_url: str) -> str:
        """A TwiML URL resolved the way Twilio does, against the document it came from."""
        return urljoin(document_url, path_or_url)

    def local_http(self, public_url: str) -> str:
        return self.server_url.rstrip("/") + self._local_path(public_url, keep_query=True)

    def local_websocket(self, public_url: str) -> str:
        server = urlsplit(self.server_url)
        scheme = "wss" if server.scheme == "https" else "ws"
        base = f"{scheme}://{server.netloc}{server.path.rstrip('/')}"
        return base + self._local_path(public_url, keep_query=False)

    def _local_path(self, public_url: str, *, keep_query: bool) -> str:
        url, base = urlsplit(public_url), urlsplit(self.public_base_url)
        prefix = base.path.rstrip("/")
        if url.netloc.lower() != base.netloc.lower() or not url.path.startswith(prefix + "/"):
            raise SimulationError(
                f"{public_url} is not under the public base URL {self.public_base_url}"
            )
        path = url.path[len(prefix) :]
        return path + (f"?{url.query}" if keep_query and url.query else "")


class _Webhooks:
    """Signed form posts to the server, as Twilio makes them."""

    def __init__(self, http: httpx.AsyncClient, addresses: _Addresses, signer: _Signer) -> None:
        self._http = http
        self._addresses = addresses
        self._signer = signer

    async def post(self, public_url: str, params: dict[str, str]) -> str:
        headers = {"X-Twilio-Signature": self._signer.sign(public_url, params)}
        local_url = self._addresses.local_http(public_url)
        try:
            response = await self._http.post(local_url, data=params, headers=headers)
        except httpx.HTTPError as error:
            raise SimulationError(f"POST {local_url} failed: {error}") from error
        if response.status_code != 200:
            raise SimulationError(
                f"POST {public_url} answered {response.status_code}: {response.text[:300]!r}"
            )
        return response.text


@dataclass(frozen=True)
class _TwimlDocument:
    """A TwiML response and the public URL it was fetched from (for relative URLs)."""

    url: str
    root: ElementTree.Element

    @classmethod
    def parse(cls, url: str, text: str) -> _TwimlDocument:
        try:
            root = ElementTree.fromstring(text)
        except ElementTree.ParseError as error:
            raise SimulationError(
                f"{url} returned malformed TwiML ({error}): {text[:300]!r}"
            ) from error
        if root.tag != "Response":
            raise SimulationError(f"{url} returned <{root.tag}>, not a TwiML <Response>")
        return cls(url, root)


@dataclass(frozen=True)
class _StreamSettings:
    speed: float
    reply_timeout: float
    caller: CallerSide


_Next = _TwimlDocument | None | Literal["continue"]
_VerbHandler = Callable[[_TwimlDocument, ElementTree.Element], Awaitable[_Next]]


class _TwimlFollower:
    """Carries out TwiML verbs in order, fetching action callbacks as Twilio does."""

    def __init__(
        self,
        call: _CallState,
        webhooks: _Webhooks,
        addresses: _Addresses,
        signer: _Signer,
        stream_settings: _StreamSettings,
    ) -> None:
        self._call = call
        self._webhooks = webhooks
        self._addresses = addresses
        self._signer = signer
        self._stream_settings = stream_settings
        self._verbs: dict[str, _VerbHandler] = {
            "Say": self._say,
            "Dial": self._dial,
            "Connect": self._connect,
            "Hangup": self._hangup,
        }

    async def run(self) -> None:
        url = self._addresses.public_base_url.rstrip("/") + VOICE_WEBHOOK_PATH
        document: _TwimlDocument | None = await self._fetch(url, self._call.params("ringing"))
        fetched = 1
        while document is not None:
            document = await self._follow(document)
            fetched += 1
            if document is not None and fetched > MAX_TWIML_DOCUMENTS:
                raise SimulationError(f"more than {MAX_TWIML_DOCUMENTS} TwiML documents: a loop?")

    async def _fetch(self, public_url: str, params: dict[str, str]) -> _TwimlDocument:
        return _TwimlDocument.parse(public_url, await self._webhooks.post(public_url, params))

    async def _follow(self, document: _TwimlDocument) -> _TwimlDocument | None:
        """Run the document's verbs; the next document (an action's) or None when it ends."""
        for verb in document.root:
            handler = self._verbs.get(verb.tag)
            if handler is None:
                raise SimulationError(f"{document.url}: unsupported TwiML verb <{verb.tag}>")
            outcome = await handler(document, verb)
            if outcome != "continue":
                return outcome
        return None

    async def _say(self, _document: _TwimlDocument, verb: ElementTree.Element) -> _Next:
        self._call.heard("Say", (verb.text or "").strip())
        return "continue"

    async def _hangup(self, _document: _TwimlDocument, _verb: ElementTree.Element) -> _Next:
        self._call.heard("Hangup", "")
        return None

    async def _dial(self, document: _TwimlDocument, verb: ElementTree.Element) -> _Next:
        """Ring the owner (or, once the assistant has had the call, the on-call phones). A leg
        that answers runs its ``<Number url>`` TwiML (screening) and is
        bridged only when that ends without hanging up; the action gets ``DialCallStatus`` and
        ``DialBridged`` as Twilio posts them."""
        numbers = [child for child in verb if child.tag == "Number"]
        dialled = ", ".join((n.text or "").strip() for n in numbers) or (verb.text or "").strip()
        timeout = float(verb.get("timeout", "30"))
        parties = self._call.parties
        leg = parties.owner if self._call.stream_sid is None else parties.on_call
        if leg == "voicemail" and timeout <= VOICEMAIL_ANSWERS_AFTER:
            leg = "no-answer"  # the dial gives up before the voicemail picks up
        bridged = False
        if leg in _ANSWERING_LEGS:
            status = "completed"
            url = numbers[0].get("url") if numbers else None
            bridged = url is None or await self._screen(document, numbers[0], url, leg)
        else:
            status = leg
        self._call.heard(
            "Dial", f"{dialled} (timeout {timeout:g}s): {status}, bridged: {str(bridged).lower()}"
        )
        action = verb.get("action")
        if action is None:
            return "continue"
        params = self._call.params("in-progress") | {
            "DialCallStatus": status,
            "DialCallSid": new_sid("CA"),
            "DialCallDuration": str(OWNER_CALL_SECONDS if bridged else 0),
            "DialBridged": str(bridged).lower(),
        }
        return await self._action(document, verb, action, params)

    async def _screen(
        self, document: _TwimlDocument, number: ElementTree.Element, url: str, leg: OwnerLeg
    ) -> bool:
        """Run the owner leg's ``<Number url>`` TwiML: ``<Say>``, ``<Gather>`` (the owner who
        takes the call presses 1; nobody else presses anything, and Twilio goes on to the next
        verb) and ``<Hangup>``. Whether the leg is bridged: its TwiML ended without a hangup."""
        if number.get("method", "POST").upper() != "POST":
            raise SimulationError("<Number method> other than POST is not simulated")
        params = {
            "CallSid": new_sid("CA"),
            "ParentCallSid": self._call.call_sid,
            "AccountSid": self._call.account_sid,
            "From": self._call.parties.caller,  # the caller's number is shown to the owner
            "To": (number.text or "").strip(),
            "CallStatus": "in-progress",
            "Direction": "outbound-dial",
            "ApiVersion": _API_VERSION,
        }
        screen = await self._fetch(self._addresses.public(url, document.url), params)
        for _ in range(MAX_TWIML_DOCUMENTS):
            following: _TwimlDocument | None = None
            for owner_verb in screen.root:
                said = " ".join((say.text or "").strip() for say in owner_verb.iter("Say"))
                if owner_verb.tag == "Hangup":
                    return False
                if owner_verb.tag == "Say":
                    self._call.heard("Screen", said)
                elif owner_verb.tag == "Gather":
                    self._call.heard("Screen", said)
                    if leg == "takes-it":
                        action = owner_verb.get("action") or screen.url
                        digits = params | {"Digits": OWNER_TAKES_IT_KEY}
                        following = await self._action(screen, owner_verb, action, digits)
                        break
                else:
                    raise SimulationError(f"<{owner_verb.tag}> on the owner's leg is not simulated")
            if following is None:
                return True
            screen = following
        raise SimulationError(f"more than {MAX_TWIML_DOCUMENTS} screening documents: a loop?")

    async def _action(
        self,
        document: _TwimlDocument,
        verb: ElementTree.Element,
        action: str,
        params: dict[str, str],
    ) -> _TwimlDocument:
        method = verb.get("method", "POST").upper()
        if method != "POST":
            raise SimulationError(f"<{verb.tag} method={method!r}>: only POST is simulated")
        return await self._fetch(self._addresses.public(action, document.url), params)

    async def _connect(self, document: _TwimlDocument, verb: ElementTree.Element) -> _Next:
        streams = [child for child in verb if child.tag == "Stream"]
        if len(streams) != 1 or len(verb) != 1:
            raise SimulationError(f"{document.url}: <Connect> must hold exactly one <Stream>")
        target = self._stream_target(document, streams[0])
        self._call.heard("Connect", f"Stream {target.twiml_url} {target.parameters}")
        await _run_media_stream(self._call, target, self._stream_settings)
        if self._call.closed_by == "caller":
            return None
        action = verb.get("action")
        if action is None:
            return "continue"
        return await self._action(document, verb, action, self._call.params("in-progress"))

    def _stream_target(
        self, document: _TwimlDocument, stream: ElementTree.Element
    ) -> _StreamTarget:
        url = stream.get("url", "")
        if urlsplit(url).scheme != "wss":
            raise SimulationError(f"{document.url}: <Stream url={url!r}> must be a wss:// URL")
        if urlsplit(url).query:
            self._call.error(f"<Stream url={url!r}> has a query string, which Twilio drops")
        parameters: dict[str, str] = {}
        for child in stream:
            name, value = child.get("name"), child.get("value")
            if child.tag != "Parameter" or name is None or value is None:
                raise SimulationError(
                    f"{document.url}: <Stream> may hold only <Parameter name value>, "
                    f"got <{child.tag} {child.attrib}>"
                )
            parameters[name] = value
        return _StreamTarget(
            twiml_url=url,
            local_url=self._addresses.local_websocket(url),
            signature=self._signer.sign(url, {}),
            parameters=parameters,
        )


@dataclass(frozen=True)
class _StreamTarget:
    """Where the media stream goes and how it is signed."""

    twiml_url: str  # the wss:// URL exactly as written in the TwiML (what is signed)
    local_url: str  # the same path on the local server
    signature: str
    parameters: dict[str, str]


@dataclass(frozen=True)
class _PendingMark:
    name: str
    due: float  # stream time at which the audio before the mark has played


class PlayoutBuffer:
    """Twilio's outbound audio buffer, on the stream clock (seconds since the stream started).

    Audio plays in order, in real time, from when it arrives or when the audio before it
    ends. A mark is due when the audio queued before it has played; ``clear`` drops what has
    not played and hands back every pending mark to be echoed at once.
    """

    def __init__(self) -> None:
        self._play_end = 0.0
        self._last_arrival = 0.0
        self._received_seconds = 0.0
        self._dropped_seconds = 0.0
        self._marks: deque[_PendingMark] = deque()

    def append_audio(self, seconds: float, now: float) -> float:
        """Queue ``seconds`` of audio that arrived at ``now``; returns when it starts playing."""
        start = max(now, self._play_end)
        self._play_end = start + seconds
        self._last_arrival = now
        self._received_seconds += seconds
        return start

    def add_mark(self, name: str, now: float) -> float:
        """Queue a mark after the audio queued so far; returns when it is due."""
        due = max(now, self._play_end)
        self._marks.append(_PendingMark(name, due))
        return due

    def next_mark_due(self) -> float | None:
        return self._marks[0].due if self._marks else None

    def pop_due_marks(self, now: float) -> list[str]:
        """Names of the marks whose audio has played by ``now``, in the order they came."""
        due: list[str] = []
        while self._marks and self._marks[0].due <= now:
            due.append(self._marks.popleft().name)
        return due

    def clear(self, now: float) -> list[str]:
        """Drop the audio not yet played; returns every pending mark's name."""
        self._dropped_seconds += self.unplayed_seconds(now)
        self._play_end = min(self._play_end, now)
        names = [mark.name for mark in self._marks]
        self._marks.clear()
        return names

    def unplayed_seconds(self, now: float) -> float:
        return max(0.0, self._play_end - now)

    def played_seconds(self, now: float) -> float:
        return self._received_seconds - self._dropped_seconds - self.unplayed_seconds(now)

    def quiet_since(self) -> float:
        """When the line went quiet: the later of the playout's end and the last arrival."""
        return max(self._play_end, self._last_arrival)


class _StreamClock:
    """Stream time in seconds since ``start``, running ``speed`` times faster than the wall."""

    def __init__(self, speed: float) -> None:
        self._speed = speed
        self._loop = asyncio.get_running_loop()
        self._origin = self._loop.time()

    def restart(self) -> None:
        """Stream time 0 is now."""
        self._origin = self._loop.time()

    def now(self) -> float:
        return (self._loop.time() - self._origin) * self._speed

    def wall_seconds(self, stream_seconds: float) -> float:
        return max(0.0, stream_seconds) / self._speed

    async def sleep_until(self, stream_time: float) -> None:
        await asyncio.sleep(self.wall_seconds(stream_time - self.now()))


class _CallerMouth:
    """The caller's side of the line: frames of the current line, silence when there is none."""

    def __init__(self) -> None:
        self._frames: deque[bytes] = deque()
        self._finished: asyncio.Future[None] | None = None

    def speak(self, audio: bytes) -> asyncio.Future[None]:
        """Queue ``audio``; the future resolves once its last frame has been sent."""
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._frames.extend(frames(audio))
        if self._frames:
            self._finished = finished
        else:
            finished.set_result(None)
        return finished

    def next_frame(self) -> tuple[bytes, asyncio.Future[None] | None]:
        """The next frame, and the line's future when this frame is its last."""
        if not self._frames:
            return _SILENT_FRAME, None
        frame = self._frames.popleft()
        if self._frames:
            return frame, None
        finished, self._finished = self._finished, None
        return frame, finished


def describe_step(step: Step) -> str:
    """A short human description of a caller step, for logs and errors."""
    if isinstance(step, SayStep):
        return f"say {step.text!r}"
    if isinstance(step, PressStep):
        return f"press {step.digits!r}"
    if isinstance(step, WavStep):
        return f"play {step.path.name}"
    return "hang up"


async def _run_media_stream(
    call: _CallState, target: _StreamTarget, settings: _StreamSettings
) -> None:
    """Open the signed websocket to the local server and carry the call's stream over it."""
    headers = {"x-twilio-signature": target.signature}
    try:
        websocket = await connect(target.local_url, additional_headers=headers, compression=None)
    except (OSError, InvalidHandshake, TimeoutError) as error:
        raise SimulationError(
            f"cannot open the media stream {target.local_url}: {error}"
        ) from error
    async with websocket:
        await _MediaStreamSession(call, target, settings, websocket).run()


class _MediaStreamSession:
    """One bidirectional media stream, Twilio's side: audio out, playout and marks in; the
    ``CallLine`` its caller takes turns over."""

    def __init__(
        self,
        call: _CallState,
        target: _StreamTarget,
        settings: _StreamSettings,
        websocket: ClientConnection,
    ) -> None:
        self._call = call
        self._target = target
        self._settings = settings
        self._websocket = websocket
        self._stream_sid = new_sid("MZ")
        self._sequence = 0
        self._send_lock = asyncio.Lock()
        self._playout = PlayoutBuffer()
        self._mouth = _CallerMouth()
        self._marks_changed = asyncio.Event()
        self._closed = asyncio.Event()
        self._reply_start: float | None = None  # play start of the first reply since the caller
        self._listeners: list[AssistantListener] = []
        self._clock = _StreamClock(settings.speed)

    async def run(self) -> None:
        """Send connected and start, take the caller's turns, then account for the playout."""
        self._call.stream_sid = self._stream_sid
        await self._websocket.send(encode_inbound(Connected(protocol="Call", version="1.0.0")))
        await self._send(self._start_message)
        self._clock.restart()
        tasks = [
            asyncio.create_task(self._receive()),
            asyncio.create_task(self._send_frames()),
            asyncio.create_task(self._echo_marks_when_played()),
        ]
        try:
            self._call.closed_by = await self._converse()
        finally:
            for task in tasks:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        self._account_for_playout()
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise SimulationError(f"the simulated stream failed: {outcome!r}") from outcome

    def _account_for_playout(self) -> None:
        now = self._clock.now()
        self._call.assistant_audio_seconds += self._playout.played_seconds(now)
        unplayed = self._playout.unplayed_seconds(now)
        if self._call.closed_by == "server" and unplayed > FRAME_SECONDS:
            self._call.error(
                f"the server closed the stream with {unplayed:.2f} s of audio unplayed"
            )

    async def _send(self, message_for: Callable[[int], InboundMessage]) -> None:
        """Send the message built with the next sequence number (in sequence order)."""
        async with self._send_lock:
            self._sequence += 1
            await self._websocket.send(encode_inbound(message_for(self._sequence)))

    def _start_message(self, sequence_number: int) -> Start:
        return Start(
            sequence_number=sequence_number,
            stream_sid=self._stream_sid,
            account_sid=self._call.account_sid,
            call_sid=self._call.call_sid,
            tracks=("inbound",),
            custom_parameters=dict(self._target.parameters),
            media_format=TWILIO_MEDIA_FORMAT,
        )

    def _media_message(self, chunk: int, frame: bytes) -> Callable[[int], Media]:
        return lambda sequence_number: Media(
            sequence_number=sequence_number,
            stream_sid=self._stream_sid,
            track="inbound",
            chunk=chunk,
            timestamp_ms=(chunk - 1) * FRAME_BYTES * 1000 // SAMPLE_RATE,
            payload=frame,
        )

    def _dtmf_message(self, digit: str) -> Callable[[int], Dtmf]:
        return lambda sequence_number: Dtmf(
            sequence_number=sequence_number,
            stream_sid=self._stream_sid,
            track="inbound_track",
            digit=digit,
        )

    def _mark_message(self, name: str) -> Callable[[int], Mark]:
        return lambda sequence_number: Mark(
            sequence_number=sequence_number, stream_sid=self._stream_sid, name=name
        )

    def _stop_message(self, sequence_number: int) -> Stop:
        return Stop(
            sequence_number=sequence_number,
            stream_sid=self._stream_sid,
            account_sid=self._call.account_sid,
            call_sid=self._call.call_sid,
        )

    async def _send_frames(self) -> None:
        """A caller frame every 20 ms of stream time, as Twilio sends them: speech or silence."""
        chunk = 0
        try:
            while True:
                chunk += 1
                await self._clock.sleep_until((chunk - 1) * FRAME_SECONDS)
                frame, finished = self._mouth.next_frame()
                await self._send(self._media_message(chunk, frame))
                if finished is not None:
                    finished.set_result(None)
        except ConnectionClosed:
            return

    async def _receive(self) -> None:
        try:
            async for raw in self._websocket:
                await self._handle(raw)
        except ConnectionClosed:
            pass
        finally:
            self._closed.set()

    async def _handle(self, raw: str | bytes) -> None:
        try:
            message = parse_outbound(raw)
        except ProtocolError as error:
            self._call.error(f"malformed message from the server: {error}")
            return
        if message.stream_sid != self._stream_sid:
            self._call.error(
                f"{type(message).__name__} for streamSid {message.stream_sid!r}, "
                f"not this stream's {self._stream_sid!r}"
            )
            return
        now = self._clock.now()
        match message:
            case OutboundMedia():
                start = self._playout.append_audio(duration_seconds(message.payload), now)
                if self._reply_start is None:
                    self._reply_start = start
                for listener in self._listeners:
                    listener.assistant_audio(message.payload, start)
            case OutboundMark():
                due = self._playout.add_mark(message.name, now)
                self._marks_changed.set()
                for listener in self._listeners:
                    listener.assistant_mark(message.name, due)
            case Clear():
                self._call.clears_received += 1
                for listener in self._listeners:
                    listener.assistant_cleared(now)
                await self._echo_marks(self._playout.clear(now))
                self._marks_changed.set()

    async def _echo_marks_when_played(self) -> None:
        try:
            while True:
                self._marks_changed.clear()
                due = self._playout.next_mark_due()
                if due is None:
                    await self._marks_changed.wait()
                    continue
                delay = self._clock.wall_seconds(due - self._clock.now())
                if delay > 0:
                    await self._until_event(self._marks_changed, delay)
                    continue
                await self._echo_marks(self._playout.pop_due_marks(self._clock.now()))
        except ConnectionClosed:
            return

    async def _echo_marks(self, names: list[str]) -> None:
        for name in names:
            await self._send(self._mark_message(name))
            self._call.marks_echoed += 1

    @staticmethod
    async def _until_event(event: asyncio.Event, patience: float) -> bool:
        """Wait for ``event`` at most ``patience`` wall seconds; True if it was set."""
        try:
            await asyncio.wait_for(event.wait(), patience)
        except TimeoutError:
            return False
        return True

    async def _converse(self) -> ClosedBy:
        """Let the caller take its turns; who ended the stream."""
        try:
            return await self._settings.caller.converse(self)
        except SimulationError:
            await self.hang_up()
            raise

    # --- the CallLine a caller uses ---------------------------------------------------------

    @property
    def call_sid(self) -> str:
        return self._call.call_sid

    @property
    def playout(self) -> PlayoutBuffer:
        return self._playout

    @property
    def reply_start(self) -> float | None:
        return self._reply_start

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def reply_timeout(self) -> float:
        return self._settings.reply_timeout

    @property
    def poll_seconds(self) -> float:
        return self._clock.wall_seconds(FRAME_SECONDS)

    def now(self) -> float:
        return self._clock.now()

    def wall_seconds(self, stream_seconds: float) -> float:
        return self._clock.wall_seconds(stream_seconds)

    async def sleep_until(self, stream_time: float) -> None:
        await self._clock.sleep_until(stream_time)

    def forget_reply(self) -> None:
        self._reply_start = None

    def listen(self, listener: AssistantListener) -> None:
        self._listeners.append(listener)

    async def speak(self, audio: bytes) -> bool:
        line = self._mouth.speak(audio)
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait((line, closed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        return line.done()

    async def press(self, digits: str) -> bool:
        try:
            for position, digit in enumerate(digits):
                if position:
                    await self._clock.sleep_until(self._clock.now() + DIGIT_SECONDS)
                await self._send(self._dtmf_message(digit))
        except ConnectionClosed:
            return False
        return True

    async def hang_up(self) -> None:
        try:
            await self._send(self._stop_message)
            await self._websocket.close()
        except ConnectionClosed:
            logger.info("call %s: the stream was already closed at hang-up", self._call.call_sid)

    async def wait_closed(self, patience: float) -> bool:
        return await self._until_event(self._closed, patience)

    def record_step(self, step: PerformedStep) -> None:
        self._call.caller_steps.append(step)

    def error(self, problem: str) -> None:
        self._call.error(problem)


def _quiet_needed(line: CallLine) -> float:
    """Stream seconds of assistant silence after which the caller speaks (`QUIET_SECONDS`)."""
    return max(QUIET_SECONDS, QUIET_SECONDS / line.wall_seconds(1.0))


class _ScriptedCaller:
    """The scenario's caller: its steps in order, each once the assistant has had its say."""

    def __init__(self, scenario: Scenario, caller_audio: dict[int, bytes]) -> None:
        self._scenario = scenario
        self._caller_audio = caller_audio

    async def converse(self, line: CallLine) -> ClosedBy:
        steps = self._scenario.steps
        for index, step in enumerate(steps):
            where = f"step {index + 1} of {len(steps)} ({describe_step(step)})"
            if not await self._await_turn(line, step, where):
                line.error(f"the server closed the stream before {where}")
                return "server"
            started = line.now()
            if isinstance(step, HangUpStep):
                await line.hang_up()
                self._record_step(line, index, step, started)
                return "caller"
            if not await self._perform(line, index, step):
                line.error(f"the server closed the stream during {where}")
                return "server"
            self._record_step(line, index, step, started)
            line.forget_reply()
        if await line.wait_closed(line.reply_timeout):
            return "server"
        line.error(
            f"the server did not end the call within {line.reply_timeout:g} s "
            "after the caller's last step; the caller hung up"
        )
        await line.hang_up()
        return "caller"

    @staticmethod
    def _record_step(line: CallLine, index: int, step: Step, started: float) -> None:
        performed = PerformedStep(index, step, started, line.now())
        line.record_step(performed)
        logger.info(
            "call %s: caller step %d %s at %.2f–%.2f s",
            line.call_sid,
            index + 1,
            describe_step(step),
            performed.started_at,
            performed.ended_at,
        )

    async def _await_turn(self, line: CallLine, step: Step, where: str) -> bool:
        """Wait until the caller may take ``step``; False if the server closed the stream.

        The timeout runs while the assistant is silent: a long reply never trips it.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + line.reply_timeout
        while not line.closed:
            if self._turn_has_come(line, step):
                return True
            if line.playout.quiet_since() + _quiet_needed(line) >= line.now():
                deadline = loop.time() + line.reply_timeout  # talking or just done: no stall
            if loop.time() >= deadline:
                awaited = "start" if step.interrupt_after is not None else "finish"
                raise SimulationError(
                    f"before {where}: the assistant did not {awaited} a reply "
                    f"within {line.reply_timeout:g} s"
                )
            await line.wait_closed(line.poll_seconds)
        return False

    @staticmethod
    def _turn_has_come(line: CallLine, step: Step) -> bool:
        reply_start = line.reply_start
        if reply_start is None:
            return False
        now = line.now()
        if step.interrupt_after is not None:
            return now >= reply_start + step.interrupt_after
        return now >= line.playout.quiet_since() + _quiet_needed(line)

    async def _perform(
        self, line: CallLine, index: int, step: SayStep | PressStep | WavStep
    ) -> bool:
        """Speak or press ``step``; False if the stream closed first."""
        if isinstance(step, PressStep):
            return await line.press(step.digits)
        return await line.speak(self._caller_audio[index])
