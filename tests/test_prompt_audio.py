"""Fixed prompts rendered once per voice, and the consent record's hash of the script as played.

The voice here renders fresh random bytes every time, as Piper does (it samples noise), so only
the cache can make two calls play the same audio. Whole calls run through the Conversation and a
CallBridge against a fake Twilio line that echoes each mark at once, with the caller's words
waiting in a fake transcriber: nothing waits on a clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime

import pytest

from media_stream import (
    FRAME_SECONDS,
    AnswerKind,
    CachedSynthesizer,
    CallBridge,
    Connected,
    Mark,
    Media,
    MediaFormat,
    OutboundMark,
    OutboundMedia,
    Playback,
    PromptAudio,
    SpeechEvent,
    Start,
    StreamClosed,
    SynthesizerFailure,
    Utterance,
    encode_inbound,
    fixed_prompts,
    parse_outbound,
)
from media_stream.sentences import split_sentences
from tests.conftest import ROOT
from voice_agent.call.conversation import ConsentOutcome, Conversation, greeting
from voice_agent.call.prompt_warmup import consent_prompts, render_ahead
from voice_agent.call.wrap_up import CallIdentity, consent_evidence
from voice_agent.chat.port import AgentReply, CallContext, CallerMessage, WholeReply
from voice_agent.consent.classifier import classify_answer
from voice_agent.consent.script import render_consent_script
from voice_agent.records.businesses import load_businesses

ACME = next(
    b for b in load_businesses(ROOT / "fixtures" / "businesses.yaml") if b.id == "acme-plumbing"
)
STREAM, ACCOUNT, CALL = "MZ" + "a" * 32, "AC" + "c" * 32, "CA" + "e" * 32
CALLER = "+15125550142"
QUESTION, DONE = "What can we help you with?", "Thanks, I have your message."
SCRIPT = render_consent_script(ACME.consent_script_version, ACME.name, ACME.max_texts).text
VOICE = "noisy/1"


class NoisyVoice:
    """Renders 40 ms of fresh random μ-law per word, in two chunks: never the same bytes twice."""

    name = "noisy"

    def __init__(self) -> None:
        self.rendered: list[str] = []

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        self.rendered.append(text)
        size = 320 * len(text.split())
        yield os.urandom(size // 2)
        yield os.urandom(size - size // 2)


class BrokenVoice:
    name = "broken"

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        yield b"\x7f" * 160
        raise SynthesizerFailure("the voice went away")


async def _spoken(voice: CachedSynthesizer, text: str) -> bytes:
    return b"".join([chunk async for chunk in voice.synthesize(text)])


async def _fixed(voice: CachedSynthesizer, text: str) -> bytes:
    with fixed_prompts():
        return await _spoken(voice, text)


# --- the cache ---------------------------------------------------------------------------------


async def test_a_fixed_prompt_is_rendered_once_and_replayed() -> None:
    inner = NoisyVoice()
    voice = CachedSynthesizer(inner, PromptAudio(), VOICE)
    first = await _fixed(voice, "Is that a yes?")
    assert await _fixed(voice, "Is that a yes?") == first
    assert inner.rendered == ["Is that a yes?"]


async def test_other_speech_is_rendered_every_time_and_never_kept() -> None:
    inner, cache = NoisyVoice(), PromptAudio()
    voice = CachedSynthesizer(inner, cache, VOICE)
    assert await _spoken(voice, "Thanks, Maria.") != await _spoken(voice, "Thanks, Maria.")
    assert len(inner.rendered) == 2 and len(cache) == 0


async def test_each_voice_has_its_own_rendering() -> None:
    cache = PromptAudio()
    one = CachedSynthesizer(NoisyVoice(), cache, "noisy/1")
    two = CachedSynthesizer(NoisyVoice(), cache, "noisy/2")
    assert await _fixed(one, "Goodbye!") != await _fixed(two, "Goodbye!")
    assert len(cache) == 2


async def test_a_rendering_cut_short_or_failed_is_not_kept() -> None:
    cache = PromptAudio()
    voice = CachedSynthesizer(NoisyVoice(), cache, VOICE)
    with fixed_prompts():
        chunks = voice.synthesize("Sound good?")
        await anext(chunks)
        await chunks.aclose()  # the caller hung up after the first chunk
    broken = CachedSynthesizer(BrokenVoice(), cache, "broken")
    with pytest.raises(SynthesizerFailure):
        await _fixed(broken, "Sound good?")
    assert len(cache) == 0


async def test_the_consent_prompts_are_rendered_ahead_as_the_bridge_will_ask_for_them() -> None:
    inner = NoisyVoice()
    voice = CachedSynthesizer(inner, PromptAudio(), VOICE)
    await render_ahead(voice, consent_prompts(ACME))
    said = [sentence for text in consent_prompts(ACME) for sentence in split_sentences(text)]
    sentences = list(dict.fromkeys(said))  # a sentence said twice is rendered once
    assert SCRIPT in consent_prompts(ACME)
    assert inner.rendered == sentences
    for sentence in sentences:  # the call then plays them without rendering anything
        await _fixed(voice, sentence)
    assert inner.rendered == sentences
    await render_ahead(voice, consent_prompts(ACME))
    assert inner.rendered == sentences, "kept prompts are not rendered again"


async def test_a_sentence_that_fails_to_render_ahead_is_left_for_later() -> None:
    voice = CachedSynthesizer(BrokenVoice(), PromptAudio(), VOICE)
    await render_ahead(voice, ("Is that a yes? Sound good?",))  # logs, does not raise
    assert len(voice._cache) == 0


def test_the_least_recently_played_prompt_goes_first() -> None:
    cache = PromptAudio(max_bytes=10)
    cache.put(VOICE, "a", b"1234")
    cache.put(VOICE, "b", b"5678")
    assert cache.get(VOICE, "a") == b"1234"  # "b" is now the least recently played
    cache.put(VOICE, "c", b"9012")
    assert (cache.get(VOICE, "b"), cache.get(VOICE, "a"), cache.size_bytes) == (None, b"1234", 8)
    assert cache.put(VOICE, "a", b"other") == b"1234"  # the first rendering stays
    assert cache.put(VOICE, "huge", b"x" * 11) == b"x" * 11 and cache.get(VOICE, "huge") is None


# --- whole calls -------------------------------------------------------------------------------


class Line:
    """Twilio's side of the stream: each mark echoed at once (or, after ``echoed`` marks, the
    caller hangs up instead), and the audio sent before each mark kept by the mark's name."""

    def __init__(self, echoed: int | None = None) -> None:
        self.incoming: asyncio.Queue[str | None] = asyncio.Queue()
        self.audio_before_mark: dict[str, bytes] = {}
        self._since_mark = bytearray()
        self._echo_left = echoed
        self._sequence = 0
        self._push(encode_inbound(Connected("Call", "1.0.0")))
        parameters = {"business": ACME.id, "caller": CALLER}
        media_format = MediaFormat("audio/x-mulaw", 8000, 1)
        start = Start(self._next(), STREAM, ACCOUNT, CALL, ("inbound",), parameters, media_format)
        self._push(encode_inbound(start))

    async def receive_text(self) -> str:
        item = await self.incoming.get()
        if item is None:
            raise StreamClosed()
        return item

    async def send_text(self, text: str) -> None:
        message = parse_outbound(text)
        if isinstance(message, OutboundMedia):
            self._since_mark += message.payload
        elif isinstance(message, OutboundMark):
            self.audio_before_mark[message.name] = bytes(self._since_mark)
            self._since_mark.clear()
            if self._echo_left == 0:
                self._push(None)  # the caller is gone before this mark was played
                return
            if self._echo_left is not None:
                self._echo_left -= 1
            self._push(encode_inbound(Mark(self._next(), STREAM, message.name)))

    async def close(self) -> None:
        self._push(None)

    async def send_silence(self) -> None:
        """The caller's frames every 20 ms, as Twilio sends them: here, silence."""
        chunk = 0
        while True:
            chunk += 1
            frame = Media(self._next(), STREAM, "inbound", chunk, (chunk - 1) * 20, b"\xff" * 160)
            self._push(encode_inbound(frame))
            await asyncio.sleep(FRAME_SECONDS)

    def audio_of(self, playback: Playback) -> bytes:
        """The media payloads sent on the websocket for ``playback``, in order."""
        return b"".join(self.audio_before_mark[name] for name in playback.marks)

    def _push(self, item: str | None) -> None:
        self.incoming.put_nowait(item)

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence


class Ears:
    """The fake transcriber: the caller's utterances are waiting before the call begins (the
    message, then the answer, which counts as said after the script: no audio moves the
    stream clock)."""

    def __init__(self, *said: str) -> None:
        self.events_queue: asyncio.Queue[SpeechEvent | None] = asyncio.Queue()
        for text in said:
            self.events_queue.put_nowait(Utterance(text, 0.0, 0.0, 0.9, "fake"))

    def send_audio(self, ulaw: bytes, at: float) -> None:
        """The line sends no audio."""

    async def events(self) -> AsyncIterator[SpeechEvent]:
        while (event := await self.events_queue.get()) is not None:
            yield event

    def expect(self, answer: AnswerKind) -> None:
        """Every answer is already written."""

    async def finalize(self) -> None:
        """The words are all there already."""

    async def close(self) -> None:
        self.events_queue.put_nowait(None)


class AskForNeed:
    """Asks what the caller needs and is done when told."""

    name = "ask for need"

    async def reply(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> AgentReply:
        return AgentReply(QUESTION if caller_said is None else DONE, finished=bool(caller_said))

    def reply_stream(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> WholeReply:
        return WholeReply(self.reply(context, message, caller_said))


class KeptBridge(CallBridge):
    """A CallBridge that keeps every playback it started."""

    def __init__(self, line: Line, voice: CachedSynthesizer) -> None:
        super().__init__(line, voice)
        self.playbacks: list[Playback] = []

    async def say_pieces(
        self, pieces: AsyncIterator[str], *, interruptible: bool = True
    ) -> Playback:
        playback = await super().say_pieces(pieces, interruptible=interruptible)
        self.playbacks.append(playback)
        return playback


async def _call(voice: CachedSynthesizer, line: Line) -> tuple[KeptBridge, Conversation]:
    """A whole call on ``line`` in which the caller gives the message and says yes."""
    bridge = KeptBridge(line, voice)
    await bridge.open()
    bridge.listen(Ears("My kitchen sink leaks", "Yes please"))
    conversation = Conversation(ACME, CALLER, AskForNeed(), bridge)
    frames = asyncio.create_task(line.send_silence())
    try:
        await asyncio.wait_for(conversation.run(), timeout=30)
    finally:
        frames.cancel()
        await bridge.close()
    return bridge, conversation


def _script_record(conversation: Conversation) -> tuple[str | None, datetime | None]:
    """The consent record's script audio hash and playback confirmation."""
    now = datetime.now(UTC)
    identity = CallIdentity(CALL, STREAM, CALLER, now, 0.0)
    evidence = consent_evidence(ACME, identity, conversation.consent, now, None)
    assert evidence.script is not None and evidence.script.text == SCRIPT
    return evidence.script.audio_sha256, evidence.script.playback_confirmed_at


async def test_the_records_script_audio_hash_is_that_of_the_bytes_sent_and_of_the_cache() -> None:
    assert classify_answer("Yes please").value == "affirmative"
    inner, cache = NoisyVoice(), PromptAudio()
    voice = CachedSynthesizer(inner, cache, VOICE)
    recorded = []
    for _ in range(2):
        line = Line()
        bridge, conversation = await _call(voice, line)
        assert conversation.consent.outcome is ConsentOutcome.AFFIRMATIVE
        audio_sha256, _ = _script_record(conversation)
        (played,) = [p for p in bridge.playbacks if p.text == SCRIPT]
        sent = line.audio_of(played)
        assert audio_sha256 == hashlib.sha256(sent).hexdigest() == played.audio_sha256
        cached = b"".join(cache.get(VOICE, s) or b"" for s in split_sentences(SCRIPT))
        assert hashlib.sha256(cached).hexdigest() == audio_sha256
        recorded.append(audio_sha256)
    assert recorded[0] == recorded[1]  # the second call played the first call's rendering
    for sentence in split_sentences(SCRIPT):
        assert inner.rendered.count(sentence) == 1
    # The greeting with the first question is fixed; the brain's later reply is not kept.
    assert all(cache.get(VOICE, s) for s in split_sentences(f"{greeting(ACME)} {QUESTION}"))
    assert inner.rendered.count(DONE) == 2 and cache.get(VOICE, DONE) is None


async def test_a_record_without_a_confirmed_script_has_no_audio_hash() -> None:
    greeted = len(split_sentences(f"{greeting(ACME)} {QUESTION}"))
    line = Line(echoed=greeted + 1)  # the greeting and the reply are heard, then the caller goes
    bridge, conversation = await _call(CachedSynthesizer(NoisyVoice(), PromptAudio(), VOICE), line)
    assert any(p.text == SCRIPT for p in bridge.playbacks)  # the script was being played
    assert _script_record(conversation) == (None, None)
