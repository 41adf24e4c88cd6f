"""The Twilio Media Streams websocket protocol: every message, both directions, exactly on the wire.

Twilio sends ``connected``, ``start``, ``media``, ``dtmf``, ``mark`` and ``stop``; on a
bidirectional stream (``<Connect><Stream>``) we send ``media``, ``mark`` and ``clear``. Every
numeric field on the wire is a JSON string of decimal digits, except
``start.mediaFormat.sampleRate`` and ``start.mediaFormat.channels``, which are JSON numbers.

Parsing is strict about what we use and tolerant of fields Twilio may add: any frame that is
not what the documentation describes raises :class:`ProtocolError`, whose message names the
field and what is wrong with it, so the caller can log the frame and skip it. The message
dataclasses check their own values when built, so an invalid message can neither be parsed nor
encoded. ``encode_inbound`` and ``parse_outbound`` are Twilio's side, for a call simulator.

A call brings fifty ``media`` frames a second, so a ``media`` frame laid out as Twilio writes
it (its keys in the documented order, nothing added, no escapes) is read by one regular
expression that admits only frames the general parser would accept, with the same result;
any other frame, valid or not, goes to the general parser, which judges and explains it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar, assert_never

__all__ = [
    "DTMF_DIGITS",
    "MAX_COUNTER",
    "MAX_FRAME_BYTES",
    "MAX_MARK_NAME_CHARS",
    "MAX_OUTBOUND_PAYLOAD_BYTES",
    "TWILIO_MEDIA_FORMAT",
    "Clear",
    "Connected",
    "Dtmf",
    "InboundMessage",
    "Mark",
    "Media",
    "MediaFormat",
    "OutboundMark",
    "OutboundMedia",
    "OutboundMessage",
    "ProtocolError",
    "Start",
    "Stop",
    "encode_inbound",
    "encode_outbound",
    "parse_inbound",
    "parse_outbound",
]

MAX_FRAME_BYTES: Final = 64 * 1024
"""Frames larger than this (UTF-8 bytes) are rejected before any JSON parsing."""

MAX_MARK_NAME_CHARS: Final = 256
MAX_COUNTER: Final = 10**18 - 1
"""Largest sequence number, chunk or timestamp accepted (18 decimal digits)."""

MAX_OUTBOUND_PAYLOAD_BYTES: Final = 48_000
"""6 s of μ-law audio: its base64 plus the envelope stays under ``MAX_FRAME_BYTES``."""

DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")

_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_COUNTER = re.compile(r"[0-9]{1,18}")
_SHOWN_CHARS = 40
_JSON_TYPE_NAMES: Final[dict[type, str]] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


class ProtocolError(ValueError):
    """A frame that is not a valid Twilio Media Streams message; the text says what is wrong."""


def _require_unicode(text: str, where: str) -> str:
    """Refuse strings holding lone surrogates: JSON allows ``"\\ud800"``, UTF-8 does not."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError(f"{where} holds a lone surrogate, which is not Unicode text") from None
    return text


def _check_sid(value: str, name: str) -> None:
    if not _SID.fullmatch(value):
        raise ProtocolError(f"{name} must be 1-64 letters, digits, '_' or '-', got {value!r:.60}")


def _check_counter(value: int, name: str) -> None:
    if not 0 <= value <= MAX_COUNTER:
        raise ProtocolError(f"{name} must be between 0 and {MAX_COUNTER}, got {value}")


def _check_mark_name(value: str) -> None:
    if not 1 <= len(value) <= MAX_MARK_NAME_CHARS:
        raise ProtocolError(
            f"mark.name must be 1-{MAX_MARK_NAME_CHARS} characters, got {len(value)}"
        )
    _require_unicode(value, "mark.name")


def _check_not_empty(value: str, name: str) -> None:
    if not value:
        raise ProtocolError(f"{name} must not be empty")


@dataclass(frozen=True)
class MediaFormat:
    """The audio format of the stream's ``media`` payloads."""

    encoding: str
    sample_rate: int
    channels: int

    def __post_init__(self) -> None:
        _check_not_empty(self.encoding, "start.mediaFormat.encoding")
        if self.sample_rate <= 0:
            raise ProtocolError(
                f"start.mediaFormat.sampleRate must be positive, got {self.sample_rate}"
            )
        if self.channels <= 0:
            raise ProtocolError(f"start.mediaFormat.channels must be positive, got {self.channels}")


TWILIO_MEDIA_FORMAT: Final = MediaFormat(encoding="audio/x-mulaw", sample_rate=8000, channels=1)
"""The only format Twilio documents for Media Streams."""


@dataclass(frozen=True)
class Connected:
    """The first message on the websocket: the protocol to expect."""

    protocol: str
    version: str


@dataclass(frozen=True)
class Start:
    """Stream metadata, sent once, right after ``connected``."""

    sequence_number: int
    stream_sid: str
    account_sid: str
    call_sid: str
    tracks: tuple[str, ...]
    custom_parameters: dict[str, str] = field(hash=False)
    media_format: MediaFormat

    def __post_init__(self) -> None:
        _check_counter(self.sequence_number, "sequenceNumber")
        _check_sid(self.stream_sid, "streamSid")
        _check_sid(self.account_sid, "start.accountSid")
        _check_sid(self.call_sid, "start.callSid")
        if not self.tracks:
            raise ProtocolError("start.tracks must name at least one track")
        for track in self.tracks:
            _check_not_empty(track, "start.tracks[]")


@dataclass(frozen=True)
class Media:
    """One chunk of the caller's (or our) audio as Twilio relays it."""

    sequence_number: int
    stream_sid: str
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes

    def __post_init__(self) -> None:
        _check_counter(self.sequence_number, "sequenceNumber")
        _check_sid(self.stream_sid, "streamSid")
        _check_not_empty(self.track, "media.track")
        _check_counter(self.chunk, "media.chunk")
        _check_counter(self.timestamp_ms, "media.timestamp")


@dataclass(frozen=True)
class Dtmf:
    """A keypad press detected on the caller's line."""

    sequence_number: int
    stream_sid: str
    track: str
    digit: str

    def __post_init__(self) -> None:
        _check_counter(self.sequence_number, "sequenceNumber")
        _check_sid(self.stream_sid, "streamSid")
        _check_not_empty(self.track, "dtmf.track")
        if self.digit not in DTMF_DIGITS:
            raise ProtocolError(f"dtmf.digit must be one of 0-9 * # A-D, got {self.digit!r:.20}")


@dataclass(frozen=True)
class Mark:
    """Twilio's echo of a mark we sent: the audio before it has played (or was cleared)."""

    sequence_number: int
    stream_sid: str
    name: str

    def __post_init__(self) -> None:
        _check_counter(self.sequence_number, "sequenceNumber")
        _check_sid(self.stream_sid, "streamSid")
        _check_mark_name(self.name)


@dataclass(frozen=True)
class Stop:
    """The stream has stopped or the call has ended."""

    sequence_number: int
    stream_sid: str
    account_sid: str
    call_sid: str

    def __post_init__(self) -> None:
        _check_counter(self.sequence_number, "sequenceNumber")
        _check_sid(self.stream_sid, "streamSid")
        _check_sid(self.account_sid, "stop.accountSid")
        _check_sid(self.call_sid, "stop.callSid")


InboundMessage = Connected | Start | Media | Dtmf | Mark | Stop


@dataclass(frozen=True)
class OutboundMedia:
    """Raw μ-law 8 kHz audio for Twilio to queue for playback (no WAV header)."""

    stream_sid: str
    payload: bytes

    def __post_init__(self) -> None:
        _check_sid(self.stream_sid, "streamSid")
        if not 1 <= len(self.payload) <= MAX_OUTBOUND_PAYLOAD_BYTES:
            raise ProtocolError(
                f"media.payload must be 1-{MAX_OUTBOUND_PAYLOAD_BYTES} bytes of audio, "
                f"got {len(self.payload)}"
            )


@dataclass(frozen=True)
class OutboundMark:
    """Asks Twilio to echo ``name`` once the audio queued before it has played."""

    stream_sid: str
    name: str

    def __post_init__(self) -> None:
        _check_sid(self.stream_sid, "streamSid")
        _check_mark_name(self.name)


@dataclass(frozen=True)
class Clear:
    """Drops the audio Twilio has buffered; every pending mark is echoed at once."""

    stream_sid: str

    def __post_init__(self) -> None:
        _check_sid(self.stream_sid, "streamSid")


OutboundMessage = OutboundMedia | OutboundMark | Clear


def _describe(value: object) -> str:
    shown = repr(value)
    if len(shown) > _SHOWN_CHARS:
        shown = shown[: _SHOWN_CHARS - 3] + "..."
    return f"{_JSON_TYPE_NAMES.get(type(value), type(value).__name__)} {shown}"


class _JsonObject:
    """One JSON object of a frame, read field by field; errors name the field's dotted path."""

    __slots__ = ("_data", "_path")

    def __init__(self, data: dict[str, object], path: str = "") -> None:
        self._data = data
        self._path = path

    def _where(self, name: str) -> str:
        return f"{self._path}{name}"

    def _wrong(self, name: str, expected: str, value: object) -> ProtocolError:
        return ProtocolError(f"{self._where(name)} must be {expected}, got {_describe(value)}")

    def has(self, name: str) -> bool:
        return name in self._data

    def value(self, name: str) -> object:
        if name not in self._data:
            raise ProtocolError(f"{self._where(name)} is missing")
        return self._data[name]

    def text(self, name: str) -> str:
        value = self.value(name)
        if not isinstance(value, str):
            raise self._wrong(name, "a string", value)
        return _require_unicode(value, self._where(name))

    def counter(self, name: str) -> int:
        """A non-negative integer carried, as Twilio does, in a JSON string."""
        value = self.value(name)
        if not isinstance(value, str) or not _COUNTER.fullmatch(value):
            raise self._wrong(name, "a string of 1-18 decimal digits", value)
        return int(value)

    def number(self, name: str) -> int:
        value = self.value(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._wrong(name, "a JSON integer", value)
        return value

    def child(self, name: str) -> _JsonObject:
        value = self.value(name)
        if not isinstance(value, dict):
            raise self._wrong(name, "an object", value)
        return _JsonObject(value, f"{self._where(name)}.")

    def texts(self, name: str) -> tuple[str, ...]:
        value = self.value(name)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._wrong(name, "an array of strings", value)
        return tuple(_require_unicode(item, f"{self._where(name)}[]") for item in value)

    def text_map(self, name: str) -> dict[str, str]:
        value = self.value(name)
        if not isinstance(value, dict):
            raise self._wrong(name, "an object", value)
        parameters: dict[str, str] = {}
        for key, item in value.items():
            where = f"{self._where(name)}[{key!r:.40}]"
            if not isinstance(item, str):
                raise self._wrong(f"{name}[{key!r:.40}]", "a string", item)
            parameters[_require_unicode(key, where)] = _require_unicode(item, where)
        return parameters

    def base64(self, name: str) -> bytes:
        value = self.text(name)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise self._wrong(name, "standard base64", value) from None


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    data: dict[str, object] = {}
    for key, value in pairs:
        if key in data:
            raise ProtocolError(f"frame repeats the key {key!r:.60}")
        data[key] = value
    return data


def _reject_constant(constant: str) -> object:
    raise ProtocolError(f"frame contains {constant}, which is not JSON")


def _check_frame_size(size: int) -> None:
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame is {size} bytes, over the {MAX_FRAME_BYTES}-byte limit")


def _frame_text(raw: str | bytes) -> str:
    """The frame as text, refusing anything over ``MAX_FRAME_BYTES`` before decoding it."""
    if isinstance(raw, str):
        _check_frame_size(len(raw))  # cheap: characters never outnumber UTF-8 bytes
        _check_frame_size(len(raw.encode("utf-8", "surrogatepass")))
        return raw
    _check_frame_size(len(raw))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProtocolError(
            f"frame is not UTF-8 text: {error.reason} at byte {error.start}"
        ) from None


def _load_object(raw: str | bytes) -> _JsonObject:
    text = _frame_text(raw)
    try:
        data = json.loads(
            text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
        )
    except ProtocolError:
        raise
    except RecursionError:
        raise ProtocolError("frame nests JSON too deeply") from None
    except ValueError as error:
        raise ProtocolError(f"frame is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"frame must be a JSON object, got {_describe(data)}")
    return _JsonObject(data)


def _parse_connected(frame: _JsonObject) -> Connected:
    return Connected(protocol=frame.text("protocol"), version=frame.text("version"))


def _parse_start(frame: _JsonObject) -> Start:
    start = frame.child("start")
    stream_sid = frame.text("streamSid")
    start_stream_sid = start.text("streamSid")
    if start_stream_sid != stream_sid:
        raise ProtocolError(
            f"streamSid {stream_sid!r:.70} differs from start.streamSid {start_stream_sid!r:.70}"
        )
    media_format = start.child("mediaFormat")
    return Start(
        sequence_number=frame.counter("sequenceNumber"),
        stream_sid=stream_sid,
        account_sid=start.text("accountSid"),
        call_sid=start.text("callSid"),
        tracks=start.texts("tracks"),
        custom_parameters=start.text_map("customParameters")
        if start.has("customParameters")
        else {},
        media_format=MediaFormat(
            encoding=media_format.text("encoding"),
            sample_rate=media_format.number("sampleRate"),
            channels=media_format.number("channels"),
        ),
    )


def _parse_media(frame: _JsonObject) -> Media:
    media = frame.child("media")
    return Media(
        sequence_number=frame.counter("sequenceNumber"),
        stream_sid=frame.text("streamSid"),
        track=media.text("track"),
        chunk=media.counter("chunk"),
        timestamp_ms=media.counter("timestamp"),
        payload=media.base64("payload"),
    )


def _parse_dtmf(frame: _JsonObject) -> Dtmf:
    dtmf = frame.child("dtmf")
    return Dtmf(
        sequence_number=frame.counter("sequenceNumber"),
        stream_sid=frame.text("streamSid"),
        track=dtmf.text("track"),
        digit=dtmf.text("digit"),
    )


def _parse_mark(frame: _JsonObject) -> Mark:
    return Mark(
        sequence_number=frame.counter("sequenceNumber"),
        stream_sid=frame.text("streamSid"),
        name=frame.child("mark").text("name"),
    )


def _parse_stop(frame: _JsonObject) -> Stop:
    stop = frame.child("stop")
    return Stop(
        sequence_number=frame.counter("sequenceNumber"),
        stream_sid=frame.text("streamSid"),
        account_sid=stop.text("accountSid"),
        call_sid=stop.text("callSid"),
    )


_INBOUND_PARSERS: Final[dict[str, Callable[[_JsonObject], InboundMessage]]] = {
    "connected": _parse_connected,
    "start": _parse_start,
    "media": _parse_media,
    "dtmf": _parse_dtmf,
    "mark": _parse_mark,
    "stop": _parse_stop,
}


def _parse_outbound_media(frame: _JsonObject) -> OutboundMedia:
    return OutboundMedia(
        stream_sid=frame.text("streamSid"), payload=frame.child("media").base64("payload")
    )


def _parse_outbound_mark(frame: _JsonObject) -> OutboundMark:
    return OutboundMark(stream_sid=frame.text("streamSid"), name=frame.child("mark").text("name"))


def _parse_clear(frame: _JsonObject) -> Clear:
    return Clear(stream_sid=frame.text("streamSid"))


_OUTBOUND_PARSERS: Final[dict[str, Callable[[_JsonObject], OutboundMessage]]] = {
    "media": _parse_outbound_media,
    "mark": _parse_outbound_mark,
    "clear": _parse_clear,
}


_Message = TypeVar("_Message", InboundMessage, OutboundMessage)


def _parse(
    raw: str | bytes, parsers: dict[str, Callable[[_JsonObject], _Message]], direction: str
) -> _Message:
    frame = _load_object(raw)
    event = frame.text("event")
    parser = parsers.get(event)
    if parser is None:
        raise ProtocolError(f"unknown {direction} event {event!r:.60}")
    try:
        return parser(frame)
    except ProtocolError as error:
        raise ProtocolError(f"{event} message: {error}") from None


def _json_tokens(*tokens: str) -> re.Pattern[str]:
    """A pattern for these JSON tokens in order, with any JSON whitespace around them."""
    whitespace = "[ \t\n\r]*"
    return re.compile(whitespace + whitespace.join(tokens) + whitespace)


def _string_field(key: str, value: str) -> tuple[str, ...]:
    return (f'"{key}"', ":", f'"({value})"')


# Every group is ASCII without quotes or backslashes: JSON strings without escapes, whose
# characters are their UTF-8 bytes. The values are what the general parser demands.
_MEDIA_FRAME: Final = _json_tokens(
    "{",
    '"event"', ":", '"media"', ",",
    *_string_field("sequenceNumber", _COUNTER.pattern), ",",
    '"media"', ":", "{",
    *_string_field("track", "[a-z_]{1,64}"), ",",
    *_string_field("chunk", _COUNTER.pattern), ",",
    *_string_field("timestamp", _COUNTER.pattern), ",",
    *_string_field("payload", "[A-Za-z0-9+/]*={0,2}"),
    "}", ",",
    *_string_field("streamSid", _SID.pattern),
    "}",
)  # fmt: skip


def _media_in_twilio_layout(raw: str) -> Media | None:
    """The ``media`` message of a frame laid out exactly as Twilio sends it, or None for the
    general parser to judge (another layout, or a payload that is not strict base64)."""
    if len(raw) > MAX_FRAME_BYTES:
        return None
    match = _MEDIA_FRAME.fullmatch(raw)
    if match is None:
        return None
    sequence_number, track, chunk, timestamp_ms, payload, stream_sid = match.groups()
    try:
        audio = binascii.a2b_base64(payload, strict_mode=True)
    except binascii.Error:
        return None
    return Media(int(sequence_number), stream_sid, track, int(chunk), int(timestamp_ms), audio)


def parse_inbound(raw: str | bytes) -> InboundMessage:
    """A websocket frame from Twilio as a message; raises :class:`ProtocolError` if malformed."""
    if isinstance(raw, str) and (media := _media_in_twilio_layout(raw)) is not None:
        return media
    return _parse(raw, _INBOUND_PARSERS, "inbound")


def parse_outbound(raw: str | bytes) -> OutboundMessage:
    """A frame we sent, as Twilio reads it; raises :class:`ProtocolError` if malformed."""
    return _parse(raw, _OUTBOUND_PARSERS, "outbound")


def _dump(body: dict[str, object]) -> str:
    return json.dumps(body, separators=(",", ":"))


def _base64(payload: bytes) -> str:
    return base64.b64encode(payload).decode("ascii")


def _inbound_body(message: InboundMessage) -> dict[str, object]:
    match message:
        case Connected():
            return {"event": "connected", "protocol": message.protocol, "version": message.version}
        case Start():
            return {
                "event": "start",
                "sequenceNumber": str(message.sequence_number),
                "start": {
                    "accountSid": message.account_sid,
                    "streamSid": message.stream_sid,
                    "callSid": message.call_sid,
                    "tracks": list(message.tracks),
                    "customParameters": dict(message.custom_parameters),
                    "mediaFormat": {
                        "encoding": message.media_format.encoding,
                        "sampleRate": message.media_format.sample_rate,
                        "channels": message.media_format.channels,
                    },
                },
                "streamSid": message.stream_sid,
            }
        case Media():
            return {
                "event": "media",
                "sequenceNumber": str(message.sequence_number),
                "media": {
                    "track": message.track,
                    "chunk": str(message.chunk),
                    "timestamp": str(message.timestamp_ms),
                    "payload": _base64(message.payload),
                },
                "streamSid": message.stream_sid,
            }
        case Dtmf():
            return {
                "event": "dtmf",
                "streamSid": message.stream_sid,
                "sequenceNumber": str(message.sequence_number),
                "dtmf": {"track": message.track, "digit": message.digit},
            }
        case Mark():
            return {
                "event": "mark",
                "sequenceNumber": str(message.sequence_number),
                "streamSid": message.stream_sid,
                "mark": {"name": message.name},
            }
        case Stop():
            return {
                "event": "stop",
                "sequenceNumber": str(message.sequence_number),
                "stop": {"accountSid": message.account_sid, "callSid": message.call_sid},
                "streamSid": message.stream_sid,
            }
        case _:
            assert_never(message)


def encode_inbound(message: InboundMessage) -> str:
    """The frame Twilio would send for ``message`` (for simulating calls)."""
    return _dump(_inbound_body(message))


_OUTBOUND_MEDIA: Final = '{"event":"media","streamSid":"%s","media":{"payload":"%s"}}'


def encode_outbound(message: OutboundMessage) -> str:
    """The frame we send to Twilio for ``message``."""
    match message:
        case OutboundMedia():
            # The frame sent most, and the largest: its values need no JSON escaping (a checked
            # SID and base64), so it is written as it is instead of scanned by the encoder.
            return _OUTBOUND_MEDIA % (message.stream_sid, _base64(message.payload))
        case OutboundMark():
            return _dump(
                {"event": "mark", "streamSid": message.stream_sid, "mark": {"name": message.name}}
            )
        case Clear():
            return _dump({"event": "clear", "streamSid": message.stream_sid})
        case _:
            assert_never(message)
