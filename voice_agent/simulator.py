"""A simulated phone call that behaves toward our server exactly as Twilio does.

``simulate_call`` plays a ``Scenario`` against a running server: it posts the signed
``/twilio/voice`` webhook, follows the TwiML it gets back (``<Say>``, ``<Dial>`` with its
action callback, ``<Connect><Stream>``, ``<Hangup/>``), and for a stream opens the signed
websocket and speaks Twilio's Media Streams protocol: ``connected``, ``start``, a 20 ms μ-law
frame every 20 ms of stream time (the caller's speech or silence), ``dtmf`` for keypad presses
and ``stop`` when the caller hangs up. It emulates Twilio's outbound playout buffer: the
server's audio plays in real time, a ``mark`` is echoed once the audio before it has played and
``clear`` drops the buffer and echoes every pending mark at once.

The caller takes turns like a patient person: before each step it waits until the assistant
has replied, finished playing and stayed quiet for a moment; a step with ``interrupt_after``
barges in that many seconds after the assistant's next reply starts playing. ``speed`` scales
all stream time (2.0 runs a call twice as fast as real time); the ring time of an unanswered
``<Dial>`` is not waited for.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
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

from media_stream.codec import (
    FRAME_BYTES,
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
from voice_agent.scenarios import HangUpStep, PressStep, SayStep, Scenario, Step, WavStep

logger = logging.getLogger(__name__)

FRAME_SECONDS = FRAME_BYTES / SAMPLE_RATE  # 0.02 s of caller audio per media message
QUIET_SECONDS = 0.6  # stream time of assistant silence before the caller takes its turn
DIGIT_SECONDS = 0.25  # stream time between two keypad presses of one step
REPLY_TIMEOUT_SECONDS = 30.0  # wall-clock patience for a reply or for the server to hang up
VOICE_WEBHOOK_PATH = "/twilio/voice"
OWNER_CALL_SECONDS = 60  # DialCallDuration reported when the owner answers
MAX_TWIML_DOCUMENTS = 10  # action callbacks followed before the call is declared looping
_HTTP_TIMEOUT_SECONDS = 15.0
_API_VERSION = "2010-04-01"
_SILENT_FRAME = bytes([SILENCE_BYTE]) * FRAME_BYTES

ClosedBy = Literal["server", "caller"]


class SimulationError(RuntimeError):
    """The call could not go on: bad TwiML, a failed webhook, or a reply that never came."""


class CallerVoice(Protocol):
    """Renders the caller's lines as μ-law 8 kHz audio (``EspeakSynthesizer`` is one)."""

    def render_ulaw(self, text: str) -> bytes: ...


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
) -> SimulatedCall:
    """Place ``scenario``'s call to the server at ``server_url`` as Twilio would.

    ``public_base_url`` is the address the server believes Twilio uses (what is signed);
    requests go to ``server_url``. ``synthesizer`` speaks the caller's lines (by default
    espeak-ng in the scenario's ``caller_voice``). Raises ``SimulationError`` when the call
    cannot go on; problems that Twilio would log and survive are listed in ``errors``.
    """
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    if reply_timeout <= 0:
        raise ValueError(f"reply_timeout must be positive, got {reply_timeout}")
    caller_audio = await asyncio.to_thread(_render_caller_audio, scenario, synthesizer)
    call = _CallRecord(scenario=scenario, account_sid=account_sid)
    signer = _Signer(RequestValidator(auth_token))
    addresses = _Addresses(server_url=server_url, public_base_url=public_base_url)
    async with httpx.AsyncClient(timeout=_HTTP_TIMEOUT_SECONDS) as http:
        webhooks = _Webhooks(http, addresses, signer)
        stream_settings = _StreamSettings(speed, reply_timeout, caller_audio)
        await _TwimlFollower(call, webhooks, addresses, signer, stream_settings).run()
    return call.result()


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
    # espeak-ng is loaded only when a scenario has lines to speak and no voice was given.
    from media_stream.espeak import EspeakSynthesizer

    if scenario.caller_voice is None:
        return EspeakSynthesizer()
    return EspeakSynthesizer(voice=scenario.caller_voice)


def read_wav_as_ulaw(path: Path) -> bytes:
    """A 16-bit PCM WAV file (any rate, mono or stereo) as μ-law 8 kHz mono."""
    try:
        with wave.open(str(path), "rb") as audio:
            width, channels = audio.getsampwidth(), audio.getnchannels()
            rate, data = audio.getframerate(), audio.readframes(audio.getnframes())
    except (OSError, EOFError, wave.Error) as error:
        raise SimulationError(f"cannot read the caller's audio {path}: {error}") from error
    if width != 2 or channels not in (1, 2):
        raise SimulationError(f"{path}: need 16-bit mono or stereo, got {8 * width}-bit × {channels}")
    samples = np.frombuffer(data[: len(data) - len(data) % (2 * channels)], dtype="<i2")
    mono = samples.reshape(-1, channels).mean(axis=1).round().astype(np.int16)
    return ulaw_encode(resample(mono, rate, SAMPLE_RATE))


@dataclass
class _CallRecord:
    """The call's identity and everything observed so far; becomes the ``SimulatedCall``."""

    scenario: Scenario
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
            "From": self.scenario.caller,
            "To": self.scenario.business_number,
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
            scenario=self.scenario.name,
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

    def public(self, path_or_url: str, relative_to: str | None = None) -> str:
        """A TwiML URL resolved the way Twilio does, against the document it came from."""
        return urljoin(relative_to or self.public_base_url.rstrip("/") + "/", path_or_url)

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
            raise SimulationError(f"{url} returned malformed TwiML ({error}): {text[:300]!r}")
        if root.tag != "Response":
            raise SimulationError(f"{url} returned <{root.tag}>, not a TwiML <Response>")
        return cls(url, root)


@dataclass(frozen=True)
class _StreamSettings:
    speed: float
    reply_timeout: float
    caller_audio: dict[int, bytes]


_Next = _TwimlDocument | None | Literal["continue"]
_VerbHandler = Callable[[_TwimlDocument, ElementTree.Element], Awaitable[_Next]]


class _TwimlFollower:
    """Carries out TwiML verbs in order, fetching action callbacks as Twilio does."""

    def __init__(
        self,
        call: _CallRecord,
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
        url = self._addresses.public(VOICE_WEBHOOK_PATH)
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
        numbers = [(child.text or "").strip() for child in verb if child.tag == "Number"]
        dialled = ", ".join(numbers) or (verb.text or "").strip()
        timeout = verb.get("timeout", "30")
        status = "completed" if self._call.scenario.owner_answers else "no-answer"
        self._call.heard("Dial", f"{dialled} (timeout {timeout}s): {status}")
        action = verb.get("action")
        if action is None:
            return "continue"
        params = self._call.params("in-progress") | {
            "DialCallStatus": status,
            "DialCallSid": new_sid("CA"),
            "DialCallDuration": str(OWNER_CALL_SECONDS if status == "completed" else 0),
        }
        return await self._action(document, verb, action, params)

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
        await _MediaStreamSession(self._call, target, self._stream_settings).run()
        if self._call.closed_by == "caller":
            return None
        action = verb.get("action")
        if action is None:
            return "continue"
        return await self._action(document, verb, action, self._call.params("in-progress"))

    def _stream_target(self, document: _TwimlDocument, stream: ElementTree.Element) -> _StreamTarget:
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

