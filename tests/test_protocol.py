"""Twilio Media Streams messages: the documented frames, round trips, and hostile frames."""

from __future__ import annotations

import base64
import copy
import json

import pytest

from media_stream.codec import FRAME_BYTES
from media_stream.protocol import (
    DTMF_DIGITS,
    MAX_FRAME_BYTES,
    MAX_MARK_NAME_CHARS,
    MAX_OUTBOUND_PAYLOAD_BYTES,
    TWILIO_MEDIA_FORMAT,
    Clear,
    Connected,
    Dtmf,
    InboundMessage,
    Mark,
    Media,
    MediaFormat,
    OutboundMark,
    OutboundMedia,
    OutboundMessage,
    ProtocolError,
    Start,
    Stop,
    _media_in_twilio_layout,
    encode_inbound,
    encode_outbound,
    parse_inbound,
    parse_outbound,
)

STREAM = "MZ" + "0123456789abcdef" * 2
ACCOUNT = "AC" + "0123456789abcdef" * 2
CALL = "CA" + "0123456789abcdef" * 2
AUDIO = bytes(range(256))[:FRAME_BYTES]
AUDIO_B64 = base64.b64encode(AUDIO).decode()

Frame = dict[str, object]

# The frames as Twilio's "Media Streams - WebSocket Messages" page shows them.
CONNECTED: Frame = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
START: Frame = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": ACCOUNT,
        "streamSid": STREAM,
        "callSid": CALL,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"business": "acme", "RemoteParty": "Bob"},
    },
    "streamSid": STREAM,
}
MEDIA: Frame = {
    "event": "media",
    "sequenceNumber": "4",
    "media": {"track": "inbound", "chunk": "2", "timestamp": "5", "payload": AUDIO_B64},
    "streamSid": STREAM,
}
DTMF: Frame = {
    "event": "dtmf",
    "streamSid": STREAM,
    "sequenceNumber": "5",
    "dtmf": {"track": "inbound_track", "digit": "1"},
}
MARK: Frame = {
    "event": "mark",
    "sequenceNumber": "6",
    "streamSid": STREAM,
    "mark": {"name": "reply-3"},
}
STOP: Frame = {
    "event": "stop",
    "sequenceNumber": "7",
    "stop": {"accountSid": ACCOUNT, "callSid": CALL},
    "streamSid": STREAM,
}
OUT_MEDIA: Frame = {"event": "media", "streamSid": STREAM, "media": {"payload": AUDIO_B64}}
OUT_MARK: Frame = {"event": "mark", "streamSid": STREAM, "mark": {"name": "reply-3"}}
OUT_CLEAR: Frame = {"event": "clear", "streamSid": STREAM}

MISSING = object()


def changed(frame: Frame, path: str, value: object) -> str:
    """``frame`` as JSON with the dotted ``path`` set to ``value`` (or removed if MISSING)."""
    result = copy.deepcopy(frame)
    *parents, leaf = path.split(".")
    target: Frame = result
    for name in parents:
        child = target[name]
        assert isinstance(child, dict)
        target = child
    if value is MISSING:
        del target[leaf]
    else:
        target[leaf] = value
    return json.dumps(result)


INBOUND_EXAMPLES: list[tuple[Frame, InboundMessage]] = [
    (CONNECTED, Connected(protocol="Call", version="1.0.0")),
    (
        START,
        Start(
            sequence_number=1,
            stream_sid=STREAM,
            account_sid=ACCOUNT,
            call_sid=CALL,
            tracks=("inbound",),
            custom_parameters={"business": "acme", "RemoteParty": "Bob"},
            media_format=MediaFormat(encoding="audio/x-mulaw", sample_rate=8000, channels=1),
        ),
    ),
    (
        MEDIA,
        Media(
            sequence_number=4,
            stream_sid=STREAM,
            track="inbound",
            chunk=2,
            timestamp_ms=5,
            payload=AUDIO,
        ),
    ),
    (DTMF, Dtmf(sequence_number=5, stream_sid=STREAM, track="inbound_track", digit="1")),
    (MARK, Mark(sequence_number=6, stream_sid=STREAM, name="reply-3")),
    (STOP, Stop(sequence_number=7, stream_sid=STREAM, account_sid=ACCOUNT, call_sid=CALL)),
]

# A media frame exactly as Twilio lays it out (compact, keys in the documented order).
TWILIO_MEDIA = encode_inbound(INBOUND_EXAMPLES[2][1])

OUTBOUND_EXAMPLES: list[tuple[Frame, OutboundMessage]] = [
    (OUT_MEDIA, OutboundMedia(stream_sid=STREAM, payload=AUDIO)),
    (OUT_MARK, OutboundMark(stream_sid=STREAM, name="reply-3")),
    (OUT_CLEAR, Clear(stream_sid=STREAM)),
]


# --- the documented frames, both directions -------------------------------------------------


@pytest.mark.parametrize(("frame", "message"), INBOUND_EXAMPLES)
def test_parse_inbound_reads_each_documented_message(frame: Frame, message: InboundMessage) -> None:
    assert parse_inbound(json.dumps(frame)) == message


@pytest.mark.parametrize(("frame", "message"), INBOUND_EXAMPLES)
def test_encode_inbound_writes_exactly_the_documented_frame(
    frame: Frame, message: InboundMessage
) -> None:
    assert json.loads(encode_inbound(message)) == frame


@pytest.mark.parametrize(("frame", "message"), INBOUND_EXAMPLES)
def test_inbound_round_trip(frame: Frame, message: InboundMessage) -> None:
    assert parse_inbound(encode_inbound(message)) == message
    assert parse_inbound(encode_inbound(message).encode()) == message


@pytest.mark.parametrize(("frame", "message"), OUTBOUND_EXAMPLES)
def test_encode_outbound_writes_exactly_the_documented_frame(
    frame: Frame, message: OutboundMessage
) -> None:
    assert json.loads(encode_outbound(message)) == frame


@pytest.mark.parametrize(("frame", "message"), OUTBOUND_EXAMPLES)
def test_outbound_round_trip(frame: Frame, message: OutboundMessage) -> None:
    assert parse_outbound(json.dumps(frame)) == message
    assert parse_outbound(encode_outbound(message)) == message
    assert parse_outbound(encode_outbound(message).encode()) == message


def test_numeric_fields_are_strings_on_the_wire_except_the_media_format() -> None:
    start = json.loads(encode_inbound(INBOUND_EXAMPLES[1][1]))
    media = json.loads(encode_inbound(INBOUND_EXAMPLES[2][1]))
    assert start["sequenceNumber"] == "1"
    assert start["start"]["mediaFormat"]["sampleRate"] == 8000
    assert start["start"]["mediaFormat"]["channels"] == 1
    assert (media["sequenceNumber"], media["media"]["chunk"], media["media"]["timestamp"]) == (
        "4",
        "2",
        "5",
    )


def test_outbound_media_payload_is_raw_mulaw_in_base64() -> None:
    frame = json.loads(encode_outbound(OutboundMedia(stream_sid=STREAM, payload=b"\xff\x00\x7f")))
    assert frame["media"]["payload"] == "/wB/"


def test_twilio_media_format_is_the_documented_one() -> None:
    start = parse_inbound(json.dumps(START))
    assert isinstance(start, Start)
    assert start.media_format == TWILIO_MEDIA_FORMAT


def test_start_without_custom_parameters_has_none() -> None:
    message = parse_inbound(changed(START, "start.customParameters", MISSING))
    assert isinstance(message, Start)
    assert message.custom_parameters == {}


def test_unknown_extra_fields_are_tolerated() -> None:
    frame = copy.deepcopy(MEDIA)
    frame["future"] = {"anything": [1, 2]}
    media = frame["media"]
    assert isinstance(media, dict)
    media["extra"] = "x"
    assert parse_inbound(json.dumps(frame)) == INBOUND_EXAMPLES[2][1]


def test_start_with_both_tracks() -> None:
    message = parse_inbound(changed(START, "start.tracks", ["inbound", "outbound"]))
    assert isinstance(message, Start)
    assert message.tracks == ("inbound", "outbound")


@pytest.mark.parametrize("digit", sorted(DTMF_DIGITS))
def test_every_dtmf_digit_parses(digit: str) -> None:
    message = parse_inbound(changed(DTMF, "dtmf.digit", digit))
    assert isinstance(message, Dtmf)
    assert message.digit == digit


def test_empty_inbound_media_payload_is_accepted() -> None:
    message = parse_inbound(changed(MEDIA, "media.payload", ""))
    assert isinstance(message, Media)
    assert message.payload == b""


def test_big_counters_and_leading_zeros() -> None:
    frame = copy.deepcopy(MEDIA)
    frame["sequenceNumber"] = "9" * 18
    media = frame["media"]
    assert isinstance(media, dict)
    media["timestamp"] = "000120"
    message = parse_inbound(json.dumps(frame))
    assert isinstance(message, Media)
    assert (message.sequence_number, message.timestamp_ms) == (10**18 - 1, 120)


def test_custom_parameters_keep_unicode() -> None:
    message = parse_inbound(changed(START, "start.customParameters", {"business": "Čistý ✓"}))
    assert isinstance(message, Start)
    assert message.custom_parameters == {"business": "Čistý ✓"}
    assert parse_inbound(encode_inbound(message)) == message


def test_largest_outbound_media_fits_in_one_frame() -> None:
    message = OutboundMedia(stream_sid="M" * 64, payload=b"\x00" * MAX_OUTBOUND_PAYLOAD_BYTES)
    frame = encode_outbound(message)
    assert len(frame.encode()) <= MAX_FRAME_BYTES
    assert parse_outbound(frame) == message


# --- hostile and malformed frames ------------------------------------------------------------


def _long(text: str) -> str:
    return text * (MAX_FRAME_BYTES // len(text) + 1)


MALFORMED_INBOUND: list[tuple[str | bytes, str]] = [
    ("", "not JSON"),
    ("not json", "not JSON"),
    ('{"event": "media"', "not JSON"),
    ("[]", "must be a JSON object, got array"),
    ('"media"', "must be a JSON object, got string"),
    ("null", "must be a JSON object, got null"),
    ("42", "must be a JSON object, got number"),
    (b"\xff\xfe{}", "not UTF-8"),
    ("{}", "event is missing"),
    ('{"event": 5}', "event must be a string, got number 5"),
    ('{"event": null}', "event must be a string"),
    ('{"event": "clear", "streamSid": "MZ1"}', "unknown inbound event 'clear'"),
    ('{"event": "Media"}', "unknown inbound event 'Media'"),
    ('{"event": "start", "event": "media"}', "repeats the key 'event'"),
    (changed(START, "start.mediaFormat.sampleRate", float("nan")), "NaN, which is not JSON"),
    (changed(MEDIA, "sequenceNumber", float("inf")), "Infinity, which is not JSON"),
    ("[" * 40_000 + "]" * 40_000, "over the 65536-byte limit"),
    ('{"a":' * 10_000 + "1" + "}" * 10_000, "nests JSON too deeply"),
    (json.dumps({"event": "x", "pad": _long("a")}), "over the 65536-byte limit"),
    (json.dumps({"event": "x", "pad": _long("é")}, ensure_ascii=False), "over the 65536-byte"),
    (json.dumps({"event": "x", "pad": _long("a")}).encode(), "over the 65536-byte limit"),
    ('{"event": "start", "n": ' + "9" * 5000 + "}", "not JSON"),
    # connected
    (changed(CONNECTED, "protocol", 1), "connected message: protocol must be a string"),
    (changed(CONNECTED, "version", MISSING), "connected message: version is missing"),
    # sequence numbers: a JSON string of decimal digits, nothing else
    (changed(MEDIA, "sequenceNumber", 4), "sequenceNumber must be a string of 1-18 decimal"),
    (changed(MEDIA, "sequenceNumber", "-1"), "got string '-1'"),
    (changed(MEDIA, "sequenceNumber", "1.5"), "decimal digits"),
    (changed(MEDIA, "sequenceNumber", ""), "decimal digits"),
    (changed(MEDIA, "sequenceNumber", " 4"), "decimal digits"),
    (changed(MEDIA, "sequenceNumber", "4\n"), "decimal digits"),
    (changed(MEDIA, "sequenceNumber", "+4"), "decimal digits"),
    (changed(MEDIA, "sequenceNumber", "1e3"), "decimal digits"),
    (changed(MEDIA, "sequenceNumber", "0x10"), "decimal digits"),
    (changed(MEDIA, "sequenceNumber", "1_000"), "decimal digits"),
    (changed(MEDIA, "sequenceNumber", "٤"), "decimal digits"),
    (changed(MEDIA, "sequenceNumber", "1" * 19), "decimal digits"),
    (changed(MEDIA, "sequenceNumber", True), "got boolean True"),
    (changed(MEDIA, "sequenceNumber", MISSING), "media message: sequenceNumber is missing"),
    # stream SIDs
    (changed(MEDIA, "streamSid", MISSING), "streamSid is missing"),
    (changed(MEDIA, "streamSid", ""), "streamSid must be 1-64 letters"),
    (changed(MEDIA, "streamSid", "MZ 1"), "streamSid must be 1-64 letters"),
    (changed(MEDIA, "streamSid", "MZ\n1"), "streamSid must be 1-64 letters"),
    (changed(MEDIA, "streamSid", "M" * 65), "streamSid must be 1-64 letters"),
    (changed(MEDIA, "streamSid", 12), "streamSid must be a string"),
    # media
    (changed(MEDIA, "media", MISSING), "media message: media is missing"),
    (changed(MEDIA, "media", [AUDIO_B64]), "media must be an object, got array"),
    (changed(MEDIA, "media.chunk", "-2"), "media.chunk must be a string of 1-18 decimal"),
    (changed(MEDIA, "media.chunk", 2), "media.chunk must be a string"),
    (changed(MEDIA, "media.timestamp", "5.0"), "media.timestamp must be a string of 1-18"),
    (changed(MEDIA, "media.timestamp", MISSING), "media.timestamp is missing"),
    (changed(MEDIA, "media.track", None), "media.track must be a string, got null"),
    (changed(MEDIA, "media.track", ""), "media.track must not be empty"),
    (changed(MEDIA, "media.payload", "no+JhoaJjpz..."), "media.payload must be standard base64"),
    (changed(MEDIA, "media.payload", "AAA"), "media.payload must be standard base64"),
    (changed(MEDIA, "media.payload", "AAAA\nAAAA"), "media.payload must be standard base64"),
    (changed(MEDIA, "media.payload", "AA-_"), "media.payload must be standard base64"),
    (changed(MEDIA, "media.payload", "ÿÿÿÿ"), "media.payload must be standard base64"),
    (changed(MEDIA, "media.payload", 7), "media.payload must be a string"),
    (changed(MEDIA, "media.payload", MISSING), "media.payload is missing"),
    # media frames in Twilio's own layout, which is read without the JSON parser
    (TWILIO_MEDIA[:-1] + ',"streamSid":"MZ2"}', "repeats the key 'streamSid'"),
    (TWILIO_MEDIA.replace(",", ",\f", 1), "not JSON"),  # form feed: not JSON whitespace
    (TWILIO_MEDIA + "}", "not JSON"),
    (TWILIO_MEDIA + "\u00a0", "not JSON"),
    (TWILIO_MEDIA.replace(AUDIO_B64, "A" * MAX_FRAME_BYTES), "over the 65536-byte limit"),
    (TWILIO_MEDIA.replace(AUDIO_B64, "AAAAA"), "media.payload must be standard base64"),
    (TWILIO_MEDIA.replace(AUDIO_B64, "AA=A"), "media.payload must be standard base64"),
    (TWILIO_MEDIA.replace(AUDIO_B64, "AA==="), "media.payload must be standard base64"),
    (TWILIO_MEDIA.replace(AUDIO_B64, "=AAA"), "media.payload must be standard base64"),
    (TWILIO_MEDIA.replace('"4"', '"0004"').replace('"2"', '"' + "2" * 19 + '"'), "media.chunk"),
    (TWILIO_MEDIA.replace(STREAM, "MZ\\u002f"), "streamSid must be 1-64 letters"),
    (TWILIO_MEDIA.replace('"inbound"', '"in\\ud800"'), "media.track holds a lone surrogate"),
    # start
    (changed(START, "streamSid", "MZother"), "streamSid 'MZother' differs from start.streamSid"),
    (changed(START, "streamSid", MISSING), "start message: streamSid is missing"),
    (changed(START, "start", MISSING), "start message: start is missing"),
    (changed(START, "start.callSid", MISSING), "start.callSid is missing"),
    (changed(START, "start.accountSid", "AC/../x"), "start.accountSid must be 1-64 letters"),
    (changed(START, "start.tracks", "inbound"), "start.tracks must be an array of strings"),
    (changed(START, "start.tracks", ["inbound", 1]), "start.tracks must be an array of strings"),
    (changed(START, "start.tracks", []), "start.tracks must name at least one track"),
    (changed(START, "start.tracks", [""]), "start.tracks[] must not be empty"),
    (changed(START, "start.customParameters", ["a"]), "start.customParameters must be an object"),
    (
        changed(START, "start.customParameters", {"business": 7}),
        "start.customParameters['business'] must be a string, got number 7",
    ),
    (
        changed(START, "start.customParameters", {"b": None}),
        "start.customParameters['b'] must be a string, got null",
    ),
    (
        changed(START, "start.customParameters", {"b": {"nested": "x"}}),
        "start.customParameters['b'] must be a string, got object",
    ),
    (changed(START, "start.mediaFormat", MISSING), "start.mediaFormat is missing"),
    (
        changed(START, "start.mediaFormat.sampleRate", "8000"),
        "start.mediaFormat.sampleRate must be a JSON integer, got string '8000'",
    ),
    (changed(START, "start.mediaFormat.sampleRate", 8000.0), "must be a JSON integer"),
    (changed(START, "start.mediaFormat.sampleRate", 0), "sampleRate must be positive"),
    (changed(START, "start.mediaFormat.channels", True), "channels must be a JSON integer"),
    (changed(START, "start.mediaFormat.channels", -1), "channels must be positive"),
    (changed(START, "start.mediaFormat.encoding", ""), "encoding must not be empty"),
    (changed(START, "sequenceNumber", "one"), "start message: sequenceNumber must be"),
    # dtmf
    (changed(DTMF, "dtmf.digit", "E"), "dtmf.digit must be one of 0-9 * # A-D, got 'E'"),
    (changed(DTMF, "dtmf.digit", "a"), "dtmf.digit must be one of"),
    (changed(DTMF, "dtmf.digit", "12"), "dtmf.digit must be one of"),
    (changed(DTMF, "dtmf.digit", ""), "dtmf.digit must be one of"),
    (changed(DTMF, "dtmf.digit", 1), "dtmf.digit must be a string, got number 1"),
    (changed(DTMF, "dtmf", "1"), "dtmf must be an object"),
    (changed(DTMF, "dtmf.track", MISSING), "dtmf.track is missing"),
    # mark
    (changed(MARK, "mark.name", ""), "mark.name must be 1-256 characters, got 0"),
    (changed(MARK, "mark.name", "x" * 257), "mark.name must be 1-256 characters, got 257"),
    (changed(MARK, "mark.name", 3), "mark.name must be a string"),
    (changed(MARK, "mark", MISSING), "mark message: mark is missing"),
    # stop
    (changed(STOP, "stop.callSid", MISSING), "stop message: stop.callSid is missing"),
    (changed(STOP, "stop.accountSid", ""), "stop.accountSid must be 1-64 letters"),
    (changed(STOP, "stop", None), "stop must be an object, got null"),
]


@pytest.mark.parametrize(("raw", "expected"), MALFORMED_INBOUND)
def test_parse_inbound_rejects_malformed_frames(raw: str | bytes, expected: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_inbound(raw)
    assert expected in str(caught.value)
    assert len(str(caught.value)) < 300, "errors must not echo a whole hostile frame"


# --- media frames in Twilio's layout: read fast, judged exactly as the general parser -------


def test_twilio_media_layouts_take_the_fast_reading() -> None:
    expected = INBOUND_EXAMPLES[2][1]
    assert _media_in_twilio_layout(TWILIO_MEDIA) == expected
    assert _media_in_twilio_layout(json.dumps(MEDIA, indent=2)) == expected
    assert _media_in_twilio_layout(" \r\n" + json.dumps(MEDIA) + "\t") == expected
    assert _media_in_twilio_layout(json.dumps({**MEDIA, "extra": 1})) is None


@pytest.mark.parametrize(
    ("raw", "payload"),
    [
        (TWILIO_MEDIA.replace(AUDIO_B64, "\\/wB\\/"), b"\xff\x00\x7f"),  # escaped solidus
        (TWILIO_MEDIA.replace('"inbound"', '"\\u0069nbound"'), AUDIO),
        (json.dumps({**MEDIA, "extra": 1}), AUDIO),
        (json.dumps(dict(reversed(MEDIA.items()))), AUDIO),
    ],
)
def test_media_frames_in_other_layouts_are_read_by_the_general_parser(
    raw: str, payload: bytes
) -> None:
    assert _media_in_twilio_layout(raw) is None
    assert parse_inbound(raw) == Media(4, STREAM, "inbound", 2, 5, payload)


def _judged(raw: str | bytes) -> InboundMessage | str:
    try:
        return parse_inbound(raw)
    except ProtocolError as error:
        return f"refused: {error}"


def _one_character_changes(frame: str) -> set[str]:
    """Every deletion, replacement and insertion of one character from a hostile alphabet."""
    alphabet = '"\\{}[],:0 9aAzZ_-+/=\t\n\f\x00é✓'
    changes = {frame[:i] + frame[i + 1 :] for i in range(len(frame))}
    for i in range(len(frame) + 1):
        for char in alphabet:
            changes.add(frame[:i] + char + frame[i + 1 :])
            changes.add(frame[:i] + char + frame[i:])
    return changes


@pytest.mark.parametrize(
    "raw", [raw for raw, _ in MALFORMED_INBOUND if isinstance(raw, str) and raw.isascii()]
)
def test_hostile_frames_are_refused_alike_as_text_and_as_bytes(raw: str) -> None:
    assert _judged(raw) == _judged(raw.encode())


@pytest.mark.parametrize("frame", [TWILIO_MEDIA, json.dumps(MEDIA, indent=1)])
def test_the_fast_reading_judges_every_changed_frame_as_the_general_parser(frame: str) -> None:
    # Only text frames take the fast reading: the same frame as UTF-8 bytes is the reference.
    for changed_frame in _one_character_changes(frame):
        judged = _judged(changed_frame)
        assert judged == _judged(changed_frame.encode()), changed_frame


def test_protocol_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_inbound("{")


def test_oversized_frames_are_refused_before_parsing() -> None:
    # Valid JSON for a valid message, padded past the limit: the size alone decides.
    frame = copy.deepcopy(MARK)
    frame["padding"] = " " * MAX_FRAME_BYTES
    with pytest.raises(ProtocolError, match="over the 65536-byte limit"):
        parse_inbound(json.dumps(frame))


def test_a_frame_at_the_limit_is_accepted() -> None:
    frame = copy.deepcopy(MARK)
    frame["padding"] = ""
    base = len(json.dumps(frame))
    frame["padding"] = "x" * (MAX_FRAME_BYTES - base)
    raw = json.dumps(frame)
    assert len(raw) == MAX_FRAME_BYTES
    assert parse_inbound(raw) == INBOUND_EXAMPLES[4][1]


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (changed(MARK, "mark.name", "\ud800"), "mark.name"),
        (changed(START, "start.customParameters", {"business": "\udfff"}), "customParameters"),
        (changed(START, "start.customParameters", {"\ud800": "acme"}), "customParameters"),
        (changed(START, "start.tracks", ["\ud800"]), "start.tracks[]"),
        (changed(MEDIA, "media.track", "in\udc00"), "media.track"),
    ],
)
def test_strings_with_escaped_lone_surrogates_are_refused(raw: str, where: str) -> None:
    assert "\\ud" in raw or "\\udc00" in raw or "\\udfff" in raw  # escaped, as on the wire
    with pytest.raises(ProtocolError, match="lone surrogate") as caught:
        parse_inbound(raw)
    assert where in str(caught.value)


def test_a_raw_lone_surrogate_outside_any_field_we_read_is_harmless() -> None:
    frame = json.dumps(MARK)[:-1] + ', "\ud800": 1}'
    assert parse_inbound(frame) == INBOUND_EXAMPLES[4][1]


def test_an_outbound_mark_name_must_be_unicode_text() -> None:
    with pytest.raises(ProtocolError, match="lone surrogate"):
        OutboundMark(stream_sid=STREAM, name="\ud800")


MALFORMED_OUTBOUND: list[tuple[str | bytes, str]] = [
    ("nope", "not JSON"),
    ("[1]", "must be a JSON object"),
    ('{"event": "start"}', "unknown outbound event 'start'"),
    ('{"event": "stop"}', "unknown outbound event 'stop'"),
    (changed(OUT_CLEAR, "streamSid", MISSING), "clear message: streamSid is missing"),
    (changed(OUT_CLEAR, "streamSid", "bad sid"), "streamSid must be 1-64 letters"),
    (changed(OUT_MEDIA, "media", MISSING), "media message: media is missing"),
    (changed(OUT_MEDIA, "media.payload", "%%%%"), "media.payload must be standard base64"),
    (changed(OUT_MEDIA, "media.payload", ""), "media.payload must be 1-48000 bytes of audio"),
    (changed(OUT_MARK, "mark.name", "y" * 300), "mark.name must be 1-256 characters, got 300"),
    (changed(OUT_MARK, "mark", {}), "mark.name is missing"),
    (json.dumps({**OUT_MEDIA, "media": {"payload": "A" * 70_000}}), "over the 65536-byte"),
]


@pytest.mark.parametrize(("raw", "expected"), MALFORMED_OUTBOUND)
def test_parse_outbound_rejects_malformed_frames(raw: str | bytes, expected: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_outbound(raw)
    assert expected in str(caught.value)


# --- messages check their own values, so we can never encode an invalid one ----------------


def test_outbound_mark_name_limit() -> None:
    assert OutboundMark(stream_sid=STREAM, name="n" * MAX_MARK_NAME_CHARS).name
    with pytest.raises(ProtocolError, match=r"mark\.name must be 1-256 characters"):
        OutboundMark(stream_sid=STREAM, name="n" * (MAX_MARK_NAME_CHARS + 1))


@pytest.mark.parametrize("size", [0, MAX_OUTBOUND_PAYLOAD_BYTES + 1])
def test_outbound_media_payload_limits(size: int) -> None:
    with pytest.raises(ProtocolError, match=r"media\.payload must be"):
        OutboundMedia(stream_sid=STREAM, payload=b"\xff" * size)


@pytest.mark.parametrize("sid", ["", "MZ 1", "M" * 65, 'MZ"}'])
def test_outbound_messages_refuse_bad_stream_sids(sid: str) -> None:
    for build in (
        lambda: Clear(stream_sid=sid),
        lambda: OutboundMark(stream_sid=sid, name="m"),
        lambda: OutboundMedia(stream_sid=sid, payload=b"\xff"),
    ):
        with pytest.raises(ProtocolError, match="streamSid"):
            build()


def test_inbound_messages_refuse_negative_counters() -> None:
    with pytest.raises(ProtocolError, match=r"media\.chunk must be between 0 and"):
        Media(
            sequence_number=1,
            stream_sid=STREAM,
            track="inbound",
            chunk=-1,
            timestamp_ms=0,
            payload=b"",
        )
    with pytest.raises(ProtocolError, match="sequenceNumber must be between 0 and"):
        Mark(sequence_number=-5, stream_sid=STREAM, name="m")
    with pytest.raises(ProtocolError, match="sequenceNumber must be between 0 and"):
        Stop(sequence_number=10**18, stream_sid=STREAM, account_sid=ACCOUNT, call_sid=CALL)


def test_dtmf_refuses_unknown_digits() -> None:
    with pytest.raises(ProtocolError, match=r"dtmf\.digit"):
        Dtmf(sequence_number=1, stream_sid=STREAM, track="inbound_track", digit="#1")
