"""DeepgramTranscriber through the real deepgram-sdk against the fake Deepgram websocket."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator

import pytest

from media_stream.deepgram_transcriber import (
    MAX_KEYTERMS,
    MAX_MEDIA_BYTES,
    DeepgramSession,
    DeepgramTranscriber,
    StreamTiming,
    TranscriberFailure,
    deepgram_environment,
)
from media_stream.ports import SpeechEvent, SpeechStarted, SpeechStopped, Utterance, Word
from tests.fake_deepgram import (
    API_KEY,
    FakeDeepgramListen,
    FakeWord,
    ListenBehaviour,
    ListenStream,
    results_message,
    speech_started_message,
    utterance_end_message,
)
from voice_agent.web.local_server import free_port

FAST = StreamTiming(
    keepalive_interval=0.05, stall_timeout=0.3, connect_timeout=2.0, close_timeout=1.0
)
FRAME = b"\xff" * 160  # 20 ms of μ-law silence
ENGINE = "deepgram nova-3"

YES = FakeWord("yes", 0.5, 0.8, 0.9, "Yes,")
PLEASE = FakeWord("please", 0.9, 1.3, 0.7, "please.")


def transcriber(url: str, **options: object) -> DeepgramTranscriber:
    return DeepgramTranscriber(API_KEY, base_url=url, timing=FAST, **options)  # type: ignore[arg-type]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepgramListen]:
    async with FakeDeepgramListen() as server:
        yield server


async def open_stream(fake: FakeDeepgramListen) -> tuple[DeepgramSession, ListenStream]:
    session = transcriber(fake.url).open_session()
    return session, await fake.next_stream()


async def feed(session: DeepgramSession, stream: ListenStream, seconds: float, at: float) -> None:
    """Send ``seconds`` of 20 ms frames from stream time ``at``; wait until they arrived."""
    before = stream.audio_seconds
    for index in range(round(seconds / 0.02)):
        session.send_audio(FRAME, at + index * 0.02)
    await stream.wait_for_audio(before + seconds - 1e-9)


async def take(session: DeepgramSession, count: int) -> list[SpeechEvent]:
    events: list[SpeechEvent] = []
    async with asyncio.timeout(5):
        async for event in session.events():
            events.append(event)
            if len(events) == count:
                break
    return events


async def drain(session: DeepgramSession) -> list[SpeechEvent]:
    """All remaining events; the iterator must end on its own."""
    async with asyncio.timeout(5):
        return [event async for event in session.events()]


async def failure_after(session: DeepgramSession) -> tuple[list[SpeechEvent], TranscriberFailure]:
    events: list[SpeechEvent] = []
    with pytest.raises(TranscriberFailure) as raised:
        async with asyncio.timeout(5):
            async for event in session.events():
                events.append(event)
    return events, raised.value


# --- connection -------------------------------------------------------------------------------


async def test_connects_with_the_token_and_the_documented_query(
    fake: FakeDeepgramListen,
) -> None:
    session = transcriber(fake.url, keyterms=["Acme Plumbing", " boiler ", "", "boiler"])
    stream_session = session.open_session()
    stream = await fake.next_stream()
    assert stream.headers["Authorization"] == f"Token {API_KEY}"
    assert stream.query == {
        "model": ["nova-3"],
        "encoding": ["mulaw"],
        "sample_rate": ["8000"],
        "channels": ["1"],
        "interim_results": ["true"],
        "endpointing": ["300"],
        "utterance_end_ms": ["1000"],
        "vad_events": ["true"],
        "smart_format": ["true"],
        "keyterm": ["Acme Plumbing", "boiler"],
    }
    await stream_session.close()


async def test_a_call_adds_its_own_keyterms(fake: FakeDeepgramListen) -> None:
    chosen = transcriber(fake.url, keyterms=["Acme Plumbing"])
    session = chosen.open_session(keyterms=["water heater", "Acme Plumbing", " "])
    stream = await fake.next_stream()
    assert stream.query["keyterm"] == ["Acme Plumbing", "water heater"]
    await session.close()


async def test_hostile_keyterms_reach_the_query_as_they_are_and_at_most_the_limit(
    fake: FakeDeepgramListen,
) -> None:
    hostile = ["A&B Plumbing", "x=1&model=nova-2", "#fragment", "100% / ?done", "Ünïcode 😀"]
    many = [f"term {n}" for n in range(MAX_KEYTERMS + 20)]
    session = transcriber(fake.url).open_session(keyterms=[*hostile, *many])
    stream = await fake.next_stream()
    assert stream.query["model"] == ["nova-3"]
    assert stream.query["keyterm"] == [*hostile, *many][:MAX_KEYTERMS]
    await session.close()


async def test_custom_endpointing_and_no_keyterms(fake: FakeDeepgramListen) -> None:
    session = transcriber(fake.url, endpointing_ms=500, utterance_end_ms=1500).open_session()
    stream = await fake.next_stream()
    assert stream.query["endpointing"] == ["500"]
    assert stream.query["utterance_end_ms"] == ["1500"]
    assert "keyterm" not in stream.query
    await session.close()


async def test_a_wrong_key_is_refused_and_reported_as_a_failure(fake: FakeDeepgramListen) -> None:
    session = DeepgramTranscriber("wrong-key", base_url=fake.url, timing=FAST).open_session()
    session.send_audio(FRAME, 0.0)
    events, failure = await failure_after(session)
    assert events == []
    assert fake.refusals == [(401, "INVALID_AUTH")]
    assert "HTTP 401" in str(failure)


async def test_an_http_500_on_connect_is_a_failure() -> None:
    async with FakeDeepgramListen(ListenBehaviour(handshake_status=500)) as fake:
        session = transcriber(fake.url).open_session()
        _, failure = await failure_after(session)
        assert fake.refusals[0][0] == 500
        assert "HTTP 500" in str(failure)


async def test_a_refused_connection_is_a_failure() -> None:
    session = transcriber(f"http://127.0.0.1:{free_port()}").open_session()
    await failure_after(session)
    session.send_audio(FRAME, 0.0)  # dropped without complaint
    await session.close()


async def test_a_handshake_that_never_completes_is_a_failure() -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # cancelled when the test ends
            await reader.read()  # accept the TCP connection, never answer the upgrade

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    impatient = StreamTiming(connect_timeout=0.2, close_timeout=0.5)
    session = DeepgramTranscriber(
        API_KEY, base_url=f"http://127.0.0.1:{port}", timing=impatient
    ).open_session()
    try:
        _, failure = await failure_after(session)
        assert "in time" in str(failure)
    finally:
        await session.close()
        server.close()


# --- utterances on the stream clock -----------------------------------------------------------


async def test_interim_final_and_speech_final_make_one_utterance(fake: FakeDeepgramListen) -> None:
    session, stream = await open_stream(fake)
    await feed(session, stream, 1.6, at=12.0)
    await stream.send(results_message([FakeWord("yes", 0.5, 0.8, 0.6)], is_final=False))
    await stream.send(results_message([YES], is_final=True))
    await stream.send(results_message([PLEASE], is_final=True, speech_final=True))
    started, utterance = await take(session, 2)

    assert started == SpeechStarted(12.5)
    assert isinstance(utterance, Utterance)
    assert utterance.text == "Yes, please."
    assert utterance.words == (
        Word("Yes,", 12.5, 12.8, 0.9),
        Word("please.", 12.9, 13.3, 0.7),
    )
    assert (utterance.start, utterance.end) == (12.5, 13.3)
    assert math.isclose(utterance.confidence, 0.8)
    assert utterance.engine == ENGINE
    await session.close()
    assert await drain(session) == []


async def test_words_after_a_gap_in_the_audio_keep_their_stream_time(
    fake: FakeDeepgramListen,
) -> None:
    session, stream = await open_stream(fake)
    await feed(session, stream, 1.0, at=10.0)
    await feed(session, stream, 1.0, at=15.0)  # the caller's audio skipped 4 s
    word = FakeWord("hello", 1.2, 1.5, 0.95, "Hello.")
    await stream.send(results_message([word], is_final=True, speech_final=True))
    _, utterance = await take(session, 2)
    assert isinstance(utterance, Utterance)
    assert utterance.words == (Word("Hello.", 15.2, 15.5, 0.95),)
    await session.close()


async def test_utterance_end_closes_an_utterance_without_speech_final(
    fake: FakeDeepgramListen,
) -> None:
    session, stream = await open_stream(fake)
    await feed(session, stream, 2.0, at=0.0)
    await stream.send(results_message([YES], is_final=True))
    await stream.send(results_message([PLEASE], is_final=True))
    await stream.send(utterance_end_message(1.3))
    await stream.send(utterance_end_message(1.3))  # nothing pending: nothing to report
    started, utterance = await take(session, 2)
    assert started == SpeechStarted(0.5)
    assert isinstance(utterance, Utterance)
    assert utterance.text == "Yes, please."
    await session.close()
    assert await drain(session) == []


async def test_an_utterance_end_before_the_final_words_is_a_stop_and_their_final_ends_it(
    fake: FakeDeepgramListen,
) -> None:
    session, stream = await open_stream(fake)
    await feed(session, stream, 2.0, at=10.0)
    await stream.send(results_message([YES, PLEASE], is_final=False))
    await stream.send(results_message([], is_final=False, start=1.0))  # settles nothing
    await stream.send(utterance_end_message(1.3))
    assert await take(session, 2) == [SpeechStarted(10.5), SpeechStopped(11.3)]
    await stream.send(results_message([YES], is_final=True))  # not marked speech_final
    (utterance,) = await take(session, 1)
    assert isinstance(utterance, Utterance) and utterance.text == "Yes,"
    await stream.send(results_message([FakeWord("no", 1.6, 1.8)], is_final=True))
    await stream.send(utterance_end_message(1.8))  # everything final: the utterance ends
    (_, second) = await take(session, 2)
    assert isinstance(second, Utterance) and second.text == "no"
    await session.close()


async def test_finalize_after_a_stop_brings_the_whole_utterance(
    fake: FakeDeepgramListen,
) -> None:
    session, stream = await open_stream(fake)
    await feed(session, stream, 2.0, at=0.0)
    await stream.send(results_message([YES], is_final=True))
    await stream.send(results_message([PLEASE], is_final=False))
    await stream.send(utterance_end_message(1.3))
    assert await take(session, 2) == [SpeechStarted(0.5), SpeechStopped(1.3)]
    stream.staged_words = [PLEASE]
    await session.finalize()
    await stream.wait_for_control("Finalize")
    (utterance,) = await take(session, 1)
    assert isinstance(utterance, Utterance) and utterance.text == "Yes, please."
    await session.close()
    assert await drain(session) == []


async def test_vad_onset_is_reported_and_not_repeated_by_the_words_it_covers(
    fake: FakeDeepgramListen,
) -> None:
    session, stream = await open_stream(fake)
    await feed(session, stream, 10.0, at=100.0)
    await stream.send(speech_started_message(0.4))
    await stream.send(results_message([YES], is_final=False))  # covered by the VAD onset
    await stream.send(results_message([YES], is_final=True, speech_final=True))
    await stream.send(speech_started_message(3.0))  # noise: no words follow soon
    late = FakeWord("hello", 6.0, 6.4, 0.8)
    await stream.send(results_message([late], is_final=False))
    await stream.send(results_message([late], is_final=True, speech_final=True))
    events = await take(session, 5)
    assert events[0] == SpeechStarted(100.4)
    assert isinstance(events[1], Utterance) and events[1].text == "Yes,"
    assert events[2] == SpeechStarted(103.0)
    assert events[3] == SpeechStarted(106.0)  # the words themselves mark the onset
    assert isinstance(events[4], Utterance) and events[4].start == 106.0
    await session.close()


async def test_a_late_vad_onset_does_not_repeat_the_words_onset(fake: FakeDeepgramListen) -> None:
    session, stream = await open_stream(fake)
    await feed(session, stream, 2.0, at=0.0)
    await stream.send(results_message([YES], is_final=False))
    await stream.send(speech_started_message(0.45))  # VAD lagging behind the words
    await stream.send(results_message([YES], is_final=True, speech_final=True))
    events = await take(session, 2)
    assert events[0] == SpeechStarted(0.5)
    assert isinstance(events[1], Utterance)
    await session.close()
    assert await drain(session) == []


async def test_a_final_without_interims_still_reports_the_onset_first(
    fake: FakeDeepgramListen,
) -> None:
    session, stream = await open_stream(fake)
    await feed(session, stream, 1.5, at=3.0)
    await stream.send(results_message([YES], is_final=True, speech_final=True))
    assert await take(session, 2) == [
        SpeechStarted(3.5),
        Utterance("Yes,", 3.5, 3.8, 0.9, ENGINE, (Word("Yes,", 3.5, 3.8, 0.9),)),
    ]
    await session.close()


async def test_withdrawn_interim_words_do_not_hide_the_next_onset(
    fake: FakeDeepgramListen,
) -> None:
    session, stream = await open_stream(fake)
    await feed(session, stream, 3.0, at=0.0)
    await stream.send(results_message([FakeWord("uh", 0.2, 0.3, 0.3)], is_final=False))
    await stream.send(results_message([], is_final=True, start=0.0, duration=1.0))
    await stream.send(results_message([FakeWord("no", 2.0, 2.2, 0.9)], is_final=False))
    assert await take(session, 2) == [SpeechStarted(0.2), SpeechStarted(2.0)]
    await session.close()


async def test_close_flushes_final_words_that_were_never_endpointed(
    fake: FakeDeepgramListen,
) -> None:
    session, stream = await open_stream(fake)
    await feed(session, stream, 1.0, at=0.0)
    await stream.send(results_message([YES], is_final=True))
    await take(session, 1)
    stream.staged_words = [PLEASE]  # Deepgram's last words, sent in answer to CloseStream
    await session.close()
    remaining = await drain(session)
    assert [e.text for e in remaining if isinstance(e, Utterance)] == ["Yes, please."]
    assert stream.controls[-1] == "CloseStream"
    await stream.wait_closed()
    assert stream.close_code == 1000


# --- control messages -------------------------------------------------------------------------


async def test_finalize_follows_the_audio_and_ends_the_utterance(fake: FakeDeepgramListen) -> None:
    session, stream = await open_stream(fake)
    for index in range(50):
        session.send_audio(bytes([index]) * 160, index * 0.02)
    stream.staged_words = [YES, PLEASE]
    await session.finalize()
    await stream.wait_for_control("Finalize")
    assert bytes(stream.audio) == b"".join(bytes([i]) * 160 for i in range(50))
    started, utterance = await take(session, 2)
    assert started == SpeechStarted(0.5)
    assert isinstance(utterance, Utterance) and utterance.text == "Yes, please."
    await session.close()


async def test_a_burst_of_audio_arrives_whole_in_bounded_messages(
    fake: FakeDeepgramListen,
) -> None:
    session = transcriber(fake.url).open_session()
    burst = bytes(range(256)) * 400  # 12.8 s in one call, before the websocket is even open
    session.send_audio(burst, 0.0)
    for index in range(100):
        session.send_audio(FRAME, 12.8 + index * 0.02)
    stream = await fake.next_stream()
    await stream.wait_for_audio(14.8 - 1e-9)
    assert bytes(stream.audio) == burst + FRAME * 100
    assert max(stream.audio_message_sizes) <= MAX_MEDIA_BYTES
    await session.close()


async def test_keepalive_holds_a_silent_stream_open() -> None:
    async with FakeDeepgramListen(ListenBehaviour(idle_timeout=0.5)) as fake:
        session, stream = await open_stream(fake)
        await feed(session, stream, 0.1, at=0.0)
        await stream.wait_for_control("KeepAlive", count=15)  # well past the idle timeout
        assert stream.close_code is None
        await session.close()
        assert await drain(session) == []


async def test_without_keepalive_the_server_drops_the_stream_and_that_is_a_failure() -> None:
    slow_keepalive = StreamTiming(keepalive_interval=30, stall_timeout=0.3, close_timeout=1.0)
    async with FakeDeepgramListen(ListenBehaviour(idle_timeout=0.2)) as fake:
        session = DeepgramTranscriber(
            API_KEY, base_url=fake.url, timing=slow_keepalive
        ).open_session()
        stream = await fake.next_stream()
        await feed(session, stream, 0.1, at=0.0)
        await failure_after(session)
        assert stream.close_code == 1011


# --- hostile and failing servers --------------------------------------------------------------


async def test_malformed_and_unknown_messages_are_skipped(fake: FakeDeepgramListen) -> None:
    session, stream = await open_stream(fake)
    await feed(session, stream, 2.0, at=0.0)
    bad_word = results_message([YES], is_final=True, speech_final=True)
    bad_word["channel"]["alternatives"][0]["words"][0]["start"] = "soon"
    no_channel = results_message([YES], is_final=True, speech_final=True)
    del no_channel["channel"]
    for hostile in (
        "{not json",
        '["a", "list"]',
        {"type": "Mystery", "payload": 1},
        {"type": "SpeechStarted", "channel": [0], "timestamp": "later"},
        {"type": "SpeechStarted", "channel": [0], "timestamp": -1},
        bad_word,
        no_channel,
        results_message([FakeWord("x", 1.0, 0.5, 0.9)], is_final=True, speech_final=True),
        results_message([FakeWord("x", 0.1, 0.2, 7.0)], is_final=True, speech_final=True),
        results_message([FakeWord(" ", 0.1, 0.2, 0.9)], is_final=True, speech_final=True),
        {"type": "Error", "variant": "SchemaError", "description": "bad"},
    ):
        await stream.send(hostile)
    await stream.connection.send(b"\x00\x01binary")
    await stream.send(results_message([PLEASE], is_final=True, speech_final=True))
    started, utterance = await take(session, 2)
    assert started == SpeechStarted(0.9)
    assert isinstance(utterance, Utterance) and utterance.text == "please."
    await session.close()
    assert await drain(session) == []


async def test_a_slow_server_still_yields_events_in_order() -> None:
    async with FakeDeepgramListen(ListenBehaviour(reply_delay=0.05)) as fake:
        session, stream = await open_stream(fake)
        await feed(session, stream, 1.5, at=1.0)
        await stream.send(speech_started_message(0.45))
        await stream.send(results_message([YES], is_final=True))
        await stream.send(results_message([PLEASE], is_final=True, speech_final=True))
        events = await take(session, 2)
        assert events[0] == SpeechStarted(1.45)
        assert isinstance(events[1], Utterance) and events[1].text == "Yes, please."
        await session.close()


async def test_a_server_error_close_yields_what_was_heard_then_fails(
    fake: FakeDeepgramListen,
) -> None:
    session, stream = await open_stream(fake)
    await feed(session, stream, 1.0, at=0.0)
    await stream.send(results_message([YES], is_final=True))
    await stream.close(1011, "internal error")
    events, failure = await failure_after(session)
    assert [type(e) for e in events] == [SpeechStarted, Utterance]
    assert "1011" in str(failure)
    await session.close()  # after a failure, closing is quiet


async def test_an_unexpected_normal_close_is_a_failure(fake: FakeDeepgramListen) -> None:
    session, stream = await open_stream(fake)
    await feed(session, stream, 0.2, at=0.0)
    await stream.close(1000)
    _, failure = await failure_after(session)
    assert "closed" in str(failure)


async def test_a_stalled_server_is_a_failure_while_audio_flows() -> None:
    async with FakeDeepgramListen(ListenBehaviour(silent=True)) as fake:
        session, _ = await open_stream(fake)

        async def talk() -> None:
            at = 0.0
            while True:
                session.send_audio(FRAME, at)
                at += 0.02
                await asyncio.sleep(0.01)

        talker = asyncio.create_task(talk())
        try:
            _, failure = await failure_after(session)
        finally:
            talker.cancel()
        assert "no message" in str(failure)
        await session.close()


async def test_a_pause_in_the_audio_is_not_a_stall() -> None:
    async with FakeDeepgramListen(ListenBehaviour(silent=True)) as fake:
        session, stream = await open_stream(fake)
        await feed(session, stream, 0.1, at=0.0)  # less audio than the stall timeout
        await stream.wait_for_control("KeepAlive", count=12)  # longer than the stall timeout
        await session.close()
        assert await drain(session) == []


async def test_events_end_the_same_way_when_asked_again(fake: FakeDeepgramListen) -> None:
    session, _ = await open_stream(fake)
    await session.close()
    await session.close()
    assert await drain(session) == []
    assert await drain(session) == []


# --- configuration ----------------------------------------------------------------------------


def test_load_checks_the_key() -> None:
    DeepgramTranscriber("a-key").load()
    for key in ("", "two words", "line\nbreak"):
        with pytest.raises(ValueError):
            DeepgramTranscriber(key).load()


def test_a_bad_base_url_is_refused() -> None:
    for url in ("ftp://example.com", "127.0.0.1:8080", "http://"):
        with pytest.raises(ValueError):
            DeepgramTranscriber("a-key", base_url=url)


def test_settings_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError):
        DeepgramTranscriber("k", endpointing_ms=5)
    with pytest.raises(ValueError):
        DeepgramTranscriber("k", utterance_end_ms=500)
    with pytest.raises(ValueError):
        DeepgramTranscriber("k", model=" ")
    with pytest.raises(ValueError):
        StreamTiming(stall_timeout=0)


def test_the_engine_is_named_after_the_model() -> None:
    assert DeepgramTranscriber("k").name == ENGINE
    assert DeepgramTranscriber("k", model="nova-2").name == "deepgram nova-2"


def test_the_environment_follows_the_base_url() -> None:
    local = deepgram_environment("http://127.0.0.1:9000/")
    assert (local.base, local.production) == ("http://127.0.0.1:9000", "ws://127.0.0.1:9000")
    secure = deepgram_environment("https://dg.example.com")
    assert secure.production == "wss://dg.example.com"
    assert deepgram_environment(None).production == "wss://api.deepgram.com"
