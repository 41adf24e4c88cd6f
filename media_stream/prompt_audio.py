"""Fixed prompts rendered once: the μ-law audio of the assistant's fixed sentences, per voice.

The greeting, the consent script, the re-ask and the goodbye are said on every call in the same
words. A `CachedSynthesizer` renders each of their sentences once per voice and replays the same
bytes afterwards: the caller hears no synthesis delay, the work is done once, and every call that
heard a business's script in one voice heard the same audio (a neural voice such as Piper never
renders a sentence the same way twice), whose sha256 the consent record keeps.

What is a fixed prompt is said where it is spoken: code that speaks one does so inside
``with fixed_prompts():``. That is a context variable, so it reaches the synthesizer through the
call bridge and the per-call failover unchanged. Everything else passes straight through and is
never kept, so no caller's words (a name, a number read back) stay in memory.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from contextvars import ContextVar

from media_stream.ports import Synthesizer

PROMPT_AUDIO_BYTES = 32 * 1024 * 1024
"""How much prompt audio a process keeps by default: about 70 minutes of μ-law, the fixed
prompts of some hundred businesses; the least recently played goes first."""

_speaking_fixed_prompt: ContextVar[bool] = ContextVar("speaking_fixed_prompt", default=False)


@contextlib.contextmanager
def fixed_prompts() -> Iterator[None]:
    """Everything synthesized inside this block (in this task) is a fixed prompt."""
    token = _speaking_fixed_prompt.set(True)
    try:
        yield
    finally:
        _speaking_fixed_prompt.reset(token)


class PromptAudio:
    """μ-law audio by (voice, text), bounded in bytes; the least recently used goes first."""

    def __init__(self, max_bytes: int = PROMPT_AUDIO_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        self.max_bytes = max_bytes
        self.size_bytes = 0
        self._audio: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._audio)

    def get(self, voice: str, text: str) -> bytes | None:
        audio = self._audio.get((voice, text))
        if audio is not None:
            self._audio.move_to_end((voice, text))
        return audio

    def put(self, voice: str, text: str, audio: bytes) -> bytes:
        """Keep ``audio`` for (voice, text) unless some is kept already; what is kept now (the
        first rendering stays, so every later call plays the same bytes)."""
        kept = self.get(voice, text)
        if kept is not None:
            return kept
        if len(audio) > self.max_bytes:
            return audio
        self._audio[(voice, text)] = audio
        self.size_bytes += len(audio)
        while self.size_bytes > self.max_bytes:
            _, dropped = self._audio.popitem(last=False)
            self.size_bytes -= len(dropped)
        return audio


class CachedSynthesizer:
    """A `Synthesizer` that renders each fixed prompt once per voice and replays it.

    ``voice`` names what the inner engine sounds like (engine, voice, pace): two synthesizers
    with the same name share their renderings in one `PromptAudio`.
    """

    def __init__(self, inner: Synthesizer, cache: PromptAudio, voice: str | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.voice = voice or inner.name
        self._cache = cache

    def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        if not _speaking_fixed_prompt.get():
            return self.inner.synthesize(text)
        return self._fixed_prompt(text)

    async def _fixed_prompt(self, text: str) -> AsyncGenerator[bytes, None]:
        kept = self._cache.get(self.voice, text)
        if kept is not None:
            if kept:
                yield kept
            return
        pieces: list[bytes] = []
        async with aclosing(self.inner.synthesize(text)) as chunks:
            async for chunk in chunks:
                pieces.append(chunk)
                yield chunk
        # Only a whole rendering is kept: one cut short (closed) or failed never gets here.
        self._cache.put(self.voice, text, b"".join(pieces))
