"""Per-call failover: real cloud adapters that cannot reach their provider hand the call over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

from media_stream import (
    ONE_MOMENT,
    AnswerKind,
    DeepgramSynthesizer,
    DeepgramTranscriber,
    FailoverSynthesizer,
    FailoverTranscription,
    SpeechEvent,
    Utterance,
)
from tests.fake_openai import FakeOpenAI, ScriptedCompletion
from voice_agent.chat.failover import FailoverChatModel
from voice_agent.chat.interviewer import ScriptedInterviewer
from voice_agent.chat.openai_model import OpenAIChatModel
from voice_agent.chat.port import CallContext, CallerMessage
from voice_agent.web.local_server import free_port

CONTEXT = CallContext("Acme Plumbing", "leaks and drains", "within 30 minutes", "+15125550142")


def _nowhere() -> str:
    """A loopback URL nothing listens on: every connection is refused."""
    return f"http://127.0.0.1:{free_port()}"


class Notes:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, provider: str, what: str) -> None:
        self.seen.append((provider, what))


class RecordingSynthesizer:
    name = "embedded"

    def __init__(self) -> None:
        self.spoken: list[str] = []

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        self.spoken.append(text)
        yield b"\xff" * 160


class CannedTranscriber:
    name = "embedded"

    def __init__(self) -> None:
        self.sessions: list[CannedSession] = []

    def load(self) -> None:
        pass

    def open_session(self, keyterms: Sequence[str] = ()) -> CannedSession:
        self.sessions.append(CannedSession(tuple(keyterms)))
        return self.sessions[-1]


class CannedSession:
    def __init__(self, keyterms: tuple[str, ...]) -> None:
        self.keyterms = keyterms
        self.finalized = 0
        self.expected: list[AnswerKind] = []
        self.queue: asyncio.Queue[SpeechEvent | None] = asyncio.Queue()

    def send_audio(self, ulaw: bytes, at: float) -> None:
        self.queue.put_nowait(Utterance("heard by the fallback", at, at + 0.5, 0.9, "embedded"))

    async def events(self) -> AsyncIterator[SpeechEvent]:
        while (event := await self.queue.get()) is not None:
            yield event

    def expect(self, answer: AnswerKind) -> None:
        self.expected.append(answer)

    async def finalize(self) -> None:
        self.finalized += 1

    async def close(self) -> None:
        self.queue.put_nowait(None)


async def test_chat_model_that_cannot_connect_hands_the_call_to_the_interviewer() -> None:
    notes = Notes()
    model = FailoverChatModel(
        OpenAIChatModel("sk-test", base_url=f"{_nowhere()}/v1", timeout=2.0),
        ScriptedInterviewer(),
        notes,
    )
    message = CallerMessage()
    await model.reply(CONTEXT, message, None)
    reply = await model.reply(CONTEXT, message, "Hi, my name is Maria Lopez.")
    assert message.caller_name == "Maria Lopez"
    assert "Maria" in reply.text
    assert [provider for provider, _ in notes.seen] == ["openai:gpt-4o-mini"]
    await model.reply(CONTEXT, message, "My sink is leaking.")
    assert len(notes.seen) == 1, "after failing over, the call stays on the fallback"


async def test_synthesizer_that_cannot_connect_says_one_moment_in_the_embedded_voice() -> None:
    notes, embedded = Notes(), RecordingSynthesizer()
    voice = FailoverSynthesizer(
        DeepgramSynthesizer("dg-test", base_url=_nowhere()), embedded, notes
    )
    audio = [chunk async for chunk in voice.synthesize("What is your name?")]
    assert audio and embedded.spoken == [f"{ONE_MOMENT} What is your name?"]
    assert [provider for provider, _ in notes.seen] == ["deepgram aura"]
    _ = [chunk async for chunk in voice.synthesize("Thanks.")]
    assert embedded.spoken[-1] == "Thanks."


async def test_transcriber_that_cannot_connect_reopens_on_the_fallback() -> None:
    notes, fallback = Notes(), CannedTranscriber()
    session = FailoverTranscription(
        DeepgramTranscriber("dg-test", base_url=_nowhere()),
        fallback,
        notes,
        keyterms=["Acme Plumbing", "water heaters"],
    )
    first_event = asyncio.ensure_future(anext(session.events()))
    session.expect(AnswerKind.PHONE_NUMBER)  # asked before the provider failed
    session.send_audio(b"\xff" * 160, 0.0)  # lost with the failed provider
    for _ in range(500):
        if notes.seen:
            break
        await asyncio.sleep(0.02)
    assert notes.seen and notes.seen[0][0] == "deepgram nova-3"
    session.send_audio(b"\xff" * 160, 1.0)
    heard = await asyncio.wait_for(first_event, 5)
    assert isinstance(heard, Utterance) and heard.text == "heard by the fallback"
    (reopened,) = fallback.sessions
    assert reopened.keyterms == ("Acme Plumbing", "water heaters")
    assert reopened.expected == [AnswerKind.PHONE_NUMBER]  # the fallback listens for it too
    await session.finalize()
    assert reopened.finalized == 1
    await session.close()


async def test_a_streamed_reply_speaks_its_first_sentence_before_the_rest_exists() -> None:
    async with FakeOpenAI() as fake:
        held = ScriptedCompletion(
            content=["Thanks, Maria. ", "What can we help with?"], hold_after=2
        )
        fake.completions.append(held)
        openai = OpenAIChatModel("sk-test", base_url=fake.base_url, timeout=5.0)
        model = FailoverChatModel(openai, ScriptedInterviewer(), Notes())
        reply = model.reply_stream(CONTEXT, CallerMessage(), "This is Maria.")
        sentences = aiter(reply)
        assert await asyncio.wait_for(anext(sentences), 5) == "Thanks, Maria."
        held.release.set()  # the model writes the rest only now
        assert [s async for s in sentences] == ["What can we help with?"]
        assert (await reply.result()).text == "Thanks, Maria. What can we help with?"
        await reply.aclose()
        await openai.aclose()


async def test_a_stream_that_fails_mid_reply_is_finished_by_the_fallback() -> None:
    async with FakeOpenAI() as fake:
        fake.completions.append(ScriptedCompletion(content=["Thanks. ", "And"], drop_after=1))
        notes = Notes()
        openai = OpenAIChatModel("sk-test", base_url=fake.base_url, timeout=5.0)
        model = FailoverChatModel(openai, ScriptedInterviewer(), notes)
        message = CallerMessage()
        reply = model.reply_stream(CONTEXT, message, "Hi, my name is Maria Lopez.")
        spoken = [sentence async for sentence in reply]
        assert notes.seen and notes.seen[0][0].startswith("openai:")
        assert message.caller_name == "Maria Lopez"  # the fallback took the same answer down
        assert "Maria" in spoken[-1]
        await reply.aclose()
        await openai.aclose()
