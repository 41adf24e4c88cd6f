"""Fixed prompts rendered once per voice, and the consent record's hash of the script as played.

The voice here renders fresh random bytes every time, as Piper does (it samples noise), so only
the cache can make two calls play the same audio. Whole calls run through the Conversation and a
CallBridge on the virtual clock and fake Twilio line of ``tests/test_turn_taking.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime

import pytest

from media_stream import (
    CachedSynthesizer,
    CallBridge,
    OutboundMark,
    OutboundMedia,
    Playback,
    PromptAudio,
    SynthesizerFailure,
    fixed_prompts,
    parse_outbound,
)
from media_stream.sentences import split_sentences
from tests.test_turn_taking import (
    ACME,
    CALL,
    CALLER,
    DONE,
    QUESTION,
    STREAM,
    AskForNeed,
    Caller,
    Ears,
    Line,
    run_on_virtual_clock,
)
from voice_agent.call.conversation import ConsentOutcome, Conversation, greeting
from voice_agent.call.wrap_up import CallIdentity, consent_evidence

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


class RecordingLine(Line):
    """The fake line, also keeping what was sent to it: the audio since the last mark, by mark."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_before_mark: dict[str, bytes] = {}
        self._since_mark = bytearray()

    async def send_text(self, text: str) -> None:
        message = parse_outbound(text)
        if isinstance(message, OutboundMedia):
            self._since_mark += message.payload
        elif isinstance(message, OutboundMark):
            self.audio_before_mark[message.name] = bytes(self._since_mark)
            self._since_mark.clear()
        await super().send_text(text)

    def audio_of(self, playback: Playback) -> bytes:
        """The media payloads sent on the websocket for ``playback``, in order."""
        return b"".join(self.audio_before_mark[name] for name in playback.marks)


class KeptBridge(CallBridge):
    def __init__(self, line: Line, voice: CachedSynthesizer) -> None:
        super().__init__(line, voice)
        self.playbacks: list[Playback] = []
        self.sent = asyncio.Event()  # set as each playback has been sent

    async def say_pieces(
        self, pieces: AsyncIterator[str], *, interruptible: bool = True
    ) -> Playback:
        playback = await super().say_pieces(pieces, interruptible=interruptible)
        self.playbacks.append(playback)
        self.sent.set()
        return playback


async def _consenting_call(voice: CachedSynthesizer) -> tuple[RecordingLine, KeptBridge, str]:
    """A call in which the caller gives the message and says yes; the bridge and the line, and
    the consent record's ``script.audio_sha256``."""
    line, ears = RecordingLine(), Ears()
    bridge = KeptBridge(line, voice)
    line.start()
    await bridge.open()
    bridge.listen(ears)
    conversation = Conversation(ACME, CALLER, AskForNeed(), bridge)
    caller = Caller(line, ears)

    async def act() -> None:
        await line.assistant_quiet(1)
        await asyncio.sleep(1.0)
        await caller.say("My kitchen sink leaks", 1.5, 0.8)
        await line.assistant_quiet(2)  # the script has been played
        await asyncio.sleep(0.5)
        await caller.say("Yes please", 0.8, 0.5)

    acting = asyncio.create_task(act())
    try:
        await conversation.run()
    finally:
        await bridge.close()
        acting.cancel()
    consent = conversation.consent
    assert consent.outcome is ConsentOutcome.AFFIRMATIVE
    now = datetime.now(UTC)
    identity = CallIdentity(CALL, STREAM, CALLER, now, line.started_at)
    evidence = consent_evidence(ACME, identity, consent, now, None)
    assert evidence.script is not None and evidence.script.audio_sha256 is not None
    return line, bridge, evidence.script.audio_sha256


def test_the_records_script_audio_hash_is_that_of_the_bytes_sent_and_of_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inner, cache = NoisyVoice(), PromptAudio()
    voice = CachedSynthesizer(inner, cache, VOICE)
    script = Conversation(ACME, CALLER, AskForNeed(), None).consent.script.text  # type: ignore[arg-type]
    recorded: list[str] = []

    async def main() -> None:
        for _ in range(2):
            line, bridge, audio_sha256 = await _consenting_call(voice)
            (played,) = [p for p in bridge.playbacks if p.text == script]
            sent = line.audio_of(played)
            assert audio_sha256 == hashlib.sha256(sent).hexdigest() == played.audio_sha256
            cached = b"".join(cache.get(VOICE, s) or b"" for s in split_sentences(script))
            assert hashlib.sha256(cached).hexdigest() == audio_sha256
            recorded.append(audio_sha256)

    run_on_virtual_clock(monkeypatch, main)
    assert recorded[0] == recorded[1]  # the second call played the first call's rendering
    for sentence in split_sentences(script):
        assert inner.rendered.count(sentence) == 1
    # The greeting with the first question is fixed; the brain's later reply is not kept.
    assert all(cache.get(VOICE, s) for s in split_sentences(f"{greeting(ACME)} {QUESTION}"))
    assert inner.rendered.count(DONE) == 2 and cache.get(VOICE, DONE) is None


def test_a_record_without_a_confirmed_script_has_no_audio_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def main() -> None:
        line, ears = RecordingLine(), Ears()
        bridge = KeptBridge(line, CachedSynthesizer(NoisyVoice(), PromptAudio(), VOICE))
        line.start()
        await bridge.open()
        bridge.listen(ears)
        conversation = Conversation(ACME, CALLER, AskForNeed(), bridge)

        async def hang_up_during_the_script() -> None:
            await line.assistant_quiet(1)
            await Caller(line, ears).say("My kitchen sink leaks", 1.5, 0.8)
            while not any(p.text == conversation.consent.script.text for p in bridge.playbacks):
                bridge.sent.clear()
                await bridge.sent.wait()
            line.incoming.put_nowait(None)  # the caller is gone before the script's last mark

        acting = asyncio.create_task(hang_up_during_the_script())
        try:
            await conversation.run()
        finally:
            await bridge.close()
            acting.cancel()
        now = datetime.now(UTC)
        identity = CallIdentity(CALL, STREAM, CALLER, now, line.started_at)
        evidence = consent_evidence(ACME, identity, conversation.consent, now, None)
        assert evidence.script is not None
        assert evidence.script.playback_confirmed_at is None
        assert evidence.script.audio_sha256 is None

    run_on_virtual_clock(monkeypatch, main)
