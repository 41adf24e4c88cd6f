"""DeepgramSynthesizer through the real deepgram-sdk against the fake Deepgram speak endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator

import pytest

from media_stream.deepgram_synthesizer import (
    MAX_TEXT_CHARS,
    DeepgramSynthesizer,
    SynthesizerFailure,
    speech_pieces,
)
from tests.fake_deepgram import API_KEY, FakeDeepgramSpeak, SpeakBehaviour, speech_for
from voice_agent.web.local_server import free_port

GREETING = "Thanks for calling Acme Plumbing."
QUESTION = "What can we help you with today?"


def synthesizer(url: str, **options: object) -> DeepgramSynthesizer:
    return DeepgramSynthesizer(API_KEY, base_url=url, stall_timeout=0.3, **options)  # type: ignore[arg-type]


async def spoken(audio: AsyncGenerator[bytes, None]) -> list[bytes]:
    async with asyncio.timeout(5):
        return [chunk async for chunk in audio]


async def failure(audio: AsyncGenerator[bytes, None]) -> SynthesizerFailure:
    with pytest.raises(SynthesizerFailure) as raised:
        await spoken(audio)
    return raised.value


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepgramSpeak]:
    async with FakeDeepgramSpeak() as server:
        yield server


async def test_the_request_follows_the_wire_format(fake: FakeDeepgramSpeak) -> None:
    chunks = await spoken(synthesizer(fake.url).synthesize(GREETING))
    assert b"".join(chunks) == speech_for(GREETING)
    [request] = fake.requests
    assert request.path == "/v1/speak"
    assert request.query == {
        "model": ["aura-2-thalia-en"],
        "encoding": ["mulaw"],
        "sample_rate": ["8000"],
        "container": ["none"],
    }
    assert request.headers["authorization"] == f"Token {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {"text": GREETING}


async def test_audio_streams_in_chunks(fake: FakeDeepgramSpeak) -> None:
    chunks = await spoken(synthesizer(fake.url, voice="aura-2-apollo-en").synthesize(GREETING))
    assert len(chunks) > 1
    assert fake.requests[0].query["model"] == ["aura-2-apollo-en"]


async def test_the_first_chunk_comes_out_before_the_server_has_finished() -> None:
    release = asyncio.Event()
    async with FakeDeepgramSpeak(SpeakBehaviour(hold_after_first=release)) as fake:
        audio = synthesizer(fake.url).synthesize(GREETING)
        async with asyncio.timeout(5):
            first = await anext(audio)
        request = fake.requests[0]
        assert first and speech_for(GREETING).startswith(first)
        assert not request.finished.is_set()
        release.set()
        rest = await spoken(audio)
        assert first + b"".join(rest) == speech_for(GREETING)
        assert request.finished.is_set()


async def test_each_sentence_is_its_own_request_in_order(fake: FakeDeepgramSpeak) -> None:
    chunks = await spoken(synthesizer(fake.url).synthesize(f"{GREETING} {QUESTION}"))
    assert [r.text for r in fake.requests] == [GREETING, QUESTION]
    assert b"".join(chunks) == speech_for(GREETING) + speech_for(QUESTION)


async def test_closing_the_generator_aborts_the_request() -> None:
    release = asyncio.Event()
    async with FakeDeepgramSpeak(SpeakBehaviour(hold_after_first=release)) as fake:
        audio = synthesizer(fake.url).synthesize(f"{GREETING} {QUESTION}")
        async with asyncio.timeout(5):
            await anext(audio)
            await audio.aclose()
            await fake.requests[0].aborted.wait()
        assert not fake.requests[0].finished.is_set()
        assert len(fake.requests) == 1  # the second sentence was never asked for


async def test_a_slow_server_still_delivers_everything() -> None:
    async with FakeDeepgramSpeak(SpeakBehaviour(chunk_delay=0.02)) as fake:
        chunks = await spoken(synthesizer(fake.url).synthesize(QUESTION))
        assert b"".join(chunks) == speech_for(QUESTION)


async def test_blank_text_asks_for_nothing(fake: FakeDeepgramSpeak) -> None:
    assert await spoken(synthesizer(fake.url).synthesize(" \n\t ")) == []
    assert fake.requests == []


async def test_control_characters_never_reach_the_provider(fake: FakeDeepgramSpeak) -> None:
    await spoken(synthesizer(fake.url).synthesize("Hello\x00 there,\x1b how are you doing?"))
    assert [r.text for r in fake.requests] == ["Hello  there,  how are you doing?"]


def test_overlong_text_is_refused_at_once() -> None:
    with pytest.raises(ValueError):
        DeepgramSynthesizer(API_KEY).synthesize("a" * (MAX_TEXT_CHARS + 1))


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_an_http_error_is_a_failure(status: int) -> None:
    async with FakeDeepgramSpeak(SpeakBehaviour(status=status)) as fake:
        raised = await failure(synthesizer(fake.url).synthesize(GREETING))
        assert f"HTTP {status}" in str(raised)


async def test_a_wrong_key_is_a_failure(fake: FakeDeepgramSpeak) -> None:
    audio = DeepgramSynthesizer("wrong-key", base_url=fake.url).synthesize(GREETING)
    assert "HTTP 401" in str(await failure(audio))


async def test_a_refused_connection_is_a_failure() -> None:
    audio = synthesizer(f"http://127.0.0.1:{free_port()}").synthesize(GREETING)
    assert "ConnectError" in str(await failure(audio))


async def test_a_stall_after_the_first_chunk_is_a_failure() -> None:
    async with FakeDeepgramSpeak(SpeakBehaviour(stall_after_first=True)) as fake:
        audio = synthesizer(fake.url).synthesize(GREETING)
        chunks: list[bytes] = []
        with pytest.raises(SynthesizerFailure, match="ReadTimeout"):
            async with asyncio.timeout(5):
                async for chunk in audio:
                    chunks.append(chunk)
        assert chunks == [speech_for(GREETING)[:800]]  # what came is passed on first


async def test_a_body_cut_short_is_a_failure() -> None:
    async with FakeDeepgramSpeak(SpeakBehaviour(truncate_after_first=True)) as fake:
        await failure(synthesizer(fake.url).synthesize(GREETING))


async def test_a_json_body_instead_of_audio_is_a_failure() -> None:
    async with FakeDeepgramSpeak(SpeakBehaviour(content_type="application/json")) as fake:
        assert "not audio" in str(await failure(synthesizer(fake.url).synthesize(GREETING)))


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        DeepgramSynthesizer("")
    with pytest.raises(ValueError):
        DeepgramSynthesizer(API_KEY, base_url="127.0.0.1:80")
    with pytest.raises(ValueError):
        DeepgramSynthesizer(API_KEY, voice="")
    with pytest.raises(ValueError):
        DeepgramSynthesizer(API_KEY, stall_timeout=0)


# --- splitting --------------------------------------------------------------------------------


def test_sentences_become_pieces_and_short_ones_join_the_next() -> None:
    assert speech_pieces(f"{GREETING} {QUESTION}") == [GREETING, QUESTION]
    assert speech_pieces(f"Yes. OK! {QUESTION}") == [f"Yes. OK! {QUESTION}"]
    assert speech_pieces("Line one is long enough here\nand line two") == [
        "Line one is long enough here",
        "and line two",
    ]
    assert speech_pieces("Fine.") == ["Fine."]
    assert speech_pieces("   ") == []


async def test_an_empty_answer_is_a_failure() -> None:
    async with FakeDeepgramSpeak(SpeakBehaviour(empty_body=True)) as fake:
        assert "no audio" in str(await failure(synthesizer(fake.url).synthesize(GREETING)))
