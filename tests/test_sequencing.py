"""Protocol order for one stream: each rule admits the right message and skips the wrong one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from media_stream.protocol import (
    TWILIO_MEDIA_FORMAT,
    Connected,
    Dtmf,
    InboundMessage,
    Mark,
    Media,
    Start,
    Stop,
    encode_inbound,
    parse_inbound,
)
from media_stream.sequencing import InboundOrder

STREAM = "MZ" + "a" * 32
OTHER_STREAM = "MZ" + "b" * 32
ACCOUNT = "AC" + "c" * 32
CALL = "CA" + "d" * 32

CONNECTED = Connected(protocol="Call", version="1.0.0")


def start(sequence_number: int = 1, stream_sid: str = STREAM) -> Start:
    return Start(
        sequence_number=sequence_number,
        stream_sid=stream_sid,
        account_sid=ACCOUNT,
        call_sid=CALL,
        tracks=("inbound",),
        custom_parameters={"business": "acme"},
        media_format=TWILIO_MEDIA_FORMAT,
    )


def media(
    sequence_number: int,
    chunk: int,
    timestamp_ms: int,
    *,
    track: str = "inbound",
    stream_sid: str = STREAM,
) -> Media:
    return Media(
        sequence_number=sequence_number,
        stream_sid=stream_sid,
        track=track,
        chunk=chunk,
        timestamp_ms=timestamp_ms,
        payload=b"\xff" * 160,
    )


def dtmf(sequence_number: int, stream_sid: str = STREAM) -> Dtmf:
    return Dtmf(
        sequence_number=sequence_number, stream_sid=stream_sid, track="inbound_track", digit="1"
    )


def mark(sequence_number: int, stream_sid: str = STREAM) -> Mark:
    return Mark(sequence_number=sequence_number, stream_sid=stream_sid, name="reply-1")


def stop(sequence_number: int, stream_sid: str = STREAM) -> Stop:
    return Stop(
        sequence_number=sequence_number, stream_sid=stream_sid, account_sid=ACCOUNT, call_sid=CALL
    )


def started() -> InboundOrder:
    order = InboundOrder()
    assert order.admit(CONNECTED) is None
    assert order.admit(start()) is None
    return order


def test_a_whole_call_in_order_is_admitted() -> None:
    order = InboundOrder()
    assert (order.started, order.stopped, order.stream_sid) == (False, False, None)
    call: list[InboundMessage] = [
        CONNECTED,
        start(1),
        media(2, 1, 0),
        media(3, 2, 20),
        dtmf(4),
        media(5, 3, 40),
        mark(6),
        media(7, 4, 60),
        stop(8),
    ]
    for message in call:
        assert order.admit(message) is None, message
        if isinstance(message, Start):
            assert (order.started, order.stream_sid) == (True, STREAM)
    assert (order.started, order.stopped, order.stream_sid) == (True, True, STREAM)


def test_a_call_read_off_the_wire_is_admitted() -> None:
    order = InboundOrder()
    frames = [encode_inbound(m) for m in (CONNECTED, start(1), media(2, 1, 0), stop(3))]
    assert [order.admit(parse_inbound(frame)) for frame in frames] == [None] * 4


def test_connected_is_optional() -> None:
    order = InboundOrder()
    assert order.admit(start()) is None
    assert order.started


# --- connected: at most once, only before start ---------------------------------------------


def test_a_second_connected_is_skipped() -> None:
    order = InboundOrder()
    assert order.admit(CONNECTED) is None
    assert order.admit(CONNECTED) == "duplicate connected"
    assert order.admit(start()) is None


def test_connected_after_start_is_skipped() -> None:
    order = InboundOrder()
    assert order.admit(start()) is None
    assert order.admit(CONNECTED) == "connected after start"


def test_connected_after_stop_is_skipped() -> None:
    order = started()
    assert order.admit(stop(2)) is None
    assert order.admit(CONNECTED) is not None


# --- start: exactly one, before everything else -----------------------------------------------


@pytest.mark.parametrize(
    ("message", "event"),
    [(media(2, 1, 0), "media"), (dtmf(2), "dtmf"), (mark(2), "mark"), (stop(2), "stop")],
)
def test_messages_before_start_are_skipped(message: InboundMessage, event: str) -> None:
    order = InboundOrder()
    assert order.admit(CONNECTED) is None
    assert order.admit(message) == f"{event} before start"
    assert not order.started
    assert not order.stopped
    assert order.admit(start(1)) is None


def test_a_second_start_is_skipped_and_keeps_the_first_stream() -> None:
    order = started()
    assert order.admit(start(2, stream_sid=OTHER_STREAM)) == "duplicate start"
    assert order.stream_sid == STREAM
    assert order.admit(media(2, 1, 0)) is None


def test_a_replayed_start_is_skipped() -> None:
    order = started()
    assert order.admit(start(1)) == "duplicate start"


# --- the stream SID of every later message is the start's ------------------------------------


@pytest.mark.parametrize(
    ("message", "event"),
    [
        (media(2, 1, 0, stream_sid=OTHER_STREAM), "media"),
        (dtmf(2, stream_sid=OTHER_STREAM), "dtmf"),
        (mark(2, stream_sid=OTHER_STREAM), "mark"),
        (stop(2, stream_sid=OTHER_STREAM), "stop"),
    ],
)
def test_messages_for_another_stream_are_skipped(
    message: Media | Dtmf | Mark | Stop, event: str
) -> None:
    order = started()
    reason = order.admit(message)
    assert reason == f"{event} for stream {OTHER_STREAM}, not {STREAM}"
    assert not order.stopped
    # Skipping changed nothing: the same sequence number is still next for our stream.
    assert order.admit(replace(message, stream_sid=STREAM)) is None


# --- sequence numbers strictly increase ------------------------------------------------------


@pytest.mark.parametrize(
    "late",
    [dtmf(3), dtmf(2), mark(1), media(3, 9, 900), stop(0)],
    ids=["duplicate", "backwards", "back-to-start", "media-duplicate", "stop-backwards"],
)
def test_duplicate_or_backwards_sequence_numbers_are_skipped(late: InboundMessage) -> None:
    order = started()
    assert order.admit(media(2, 1, 0)) is None
    assert order.admit(media(3, 2, 20)) is None
    reason = order.admit(late)
    assert reason is not None
    assert "is not after 3" in reason
    assert not order.stopped


def test_sequence_numbers_are_shared_by_all_message_types() -> None:
    order = started()
    assert order.admit(mark(5)) is None
    assert order.admit(media(4, 1, 0)) == (
        "media sequence number 4 is not after 5 (duplicate or out of order)"
    )
    assert order.admit(media(6, 1, 0)) is None


def test_gaps_in_sequence_numbers_are_allowed() -> None:
    order = started()
    assert order.admit(media(10, 1, 0)) is None
    assert order.admit(media(11, 2, 20)) is None


def test_start_sequence_number_counts() -> None:
    order = InboundOrder()
    assert order.admit(start(7)) is None
    assert order.admit(dtmf(7)) is not None
    assert order.admit(dtmf(8)) is None


# --- media chunks strictly increase; timestamps never go back ---------------------------------


def test_a_repeated_media_chunk_is_skipped() -> None:
    order = started()
    assert order.admit(media(2, 5, 100)) is None
    assert order.admit(media(3, 5, 120)) == "inbound media chunk 5 is not after 5"
    assert order.admit(media(4, 4, 120)) == "inbound media chunk 4 is not after 5"
    assert order.admit(media(5, 6, 120)) is None


def test_a_media_timestamp_going_back_is_skipped() -> None:
    order = started()
    assert order.admit(media(2, 1, 100)) is None
    assert order.admit(media(3, 2, 80)) == "inbound media timestamp 80 ms goes back from 100 ms"
    assert order.admit(media(4, 3, 100)) is None  # equal is not backwards
    assert order.admit(media(5, 4, 120)) is None


def test_a_skipped_media_message_does_not_move_the_chunk_or_clock() -> None:
    order = started()
    assert order.admit(media(2, 1, 0)) is None
    assert order.admit(media(2, 50, 5000)) is not None  # duplicate sequence number
    assert order.admit(media(3, 2, 20)) is None


def test_chunks_and_timestamps_are_counted_per_track() -> None:
    order = started()
    assert order.admit(media(2, 1, 0, track="inbound")) is None
    assert order.admit(media(3, 1, 0, track="outbound")) is None
    assert order.admit(media(4, 2, 20, track="inbound")) is None
    assert order.admit(media(5, 1, 20, track="outbound")) == (
        "outbound media chunk 1 is not after 1"
    )
    assert order.admit(media(6, 2, 20, track="outbound")) is None


def test_dtmf_and_marks_do_not_touch_media_counters() -> None:
    order = started()
    assert order.admit(media(2, 1, 0)) is None
    assert order.admit(dtmf(3)) is None
    assert order.admit(mark(4)) is None
    assert order.admit(media(5, 2, 20)) is None


# --- nothing after stop ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "event"),
    [
        (media(10, 10, 1000), "media"),
        (dtmf(10), "dtmf"),
        (mark(10), "mark"),
        (stop(10), "stop"),
        (start(10), "start"),
    ],
)
def test_nothing_is_admitted_after_stop(message: InboundMessage, event: str) -> None:
    order = started()
    assert order.admit(media(2, 1, 0)) is None
    assert order.admit(stop(3)) is None
    assert order.stopped
    assert order.admit(message) == f"{event} after stop"
    assert order.stream_sid == STREAM
