"""OpenAI text-to-speech as a Synthesizer: streamed 24 kHz PCM, sent on as 8 kHz μ-law on arrival.

``audio.speech`` is asked for ``response_format="pcm"`` (24 kHz, 16-bit little-endian, mono) and
streamed; each network chunk is downsampled to 8 kHz and μ-law encoded straight away, so the first
audio goes out long before the sentence is fully synthesized. The downsampler keeps the filter's
context across chunks, so the result is sample-for-sample what resampling the whole sentence at
once would give: no clicks at chunk boundaries. Closing the generator cancels the request. Any
provider trouble raises :class:`SynthesizerFailure`, so the call can move to the embedded engine;
the SDK passes the body's transport errors through unwrapped, from ``httpx2`` (openai 3.x).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator

import httpx2
import numpy as np
import numpy.typing as npt
import openai

from media_stream.codec import SAMPLE_RATE, resample, ulaw_encode
from media_stream.ports import SynthesizerFailure

logger = logging.getLogger(__name__)

OPENAI_PCM_RATE = 24000
MAX_INPUT_CHARS = 4096  # the API's limit
CHUNK_BYTES = SAMPLE_RATE // 10  # hand on 100 ms of μ-law at a time: one mark each
VOICE_INSTRUCTIONS = "Speak like a calm, friendly phone receptionist: clear, warm, unhurried."
_FILTER_REACH = 15  # half the anti-aliasing filter in ``codec.resample`` (31 taps)


class StreamingDownsampler:
    """Downsamples 16-bit PCM arriving in pieces, exactly as ``resample`` would the whole signal.

    An output sample needs ``_FILTER_REACH`` input samples on either side; the downsampler emits
    every output whose neighbourhood has arrived and keeps just enough input for the next ones.
    A byte split across pieces is carried over.
    """

    def __init__(self, source_rate: int, target_rate: int) -> None:
        if target_rate <= 0 or source_rate % target_rate:
            raise ValueError(f"{source_rate} Hz is not a whole multiple of {target_rate} Hz")
        self.source_rate = source_rate
        self.target_rate = target_rate
        self._ratio = source_rate // target_rate
        self._context = self._ratio * -(-_FILTER_REACH // self._ratio)  # ≥ reach, on the grid
        self._kept = np.zeros(0, dtype=np.int16)  # input from ``_kept_from`` on
        self._kept_from = 0
        self._next_input = 0  # the input index of the next output sample
        self._received = 0
        self._odd_byte = b""

    def feed(self, pcm: bytes) -> npt.NDArray[np.int16]:
        """The output samples that ``pcm`` (little-endian int16 bytes) completes."""
        data = self._odd_byte + pcm
        whole = len(data) - len(data) % 2
        self._odd_byte = data[whole:]
        samples = np.frombuffer(data[:whole], dtype="<i2").astype(np.int16)
        self._kept = np.concatenate([self._kept, samples])
        self._received += len(samples)
        return self._emit(last_input=self._received - _FILTER_REACH - 1)

    def flush(self) -> npt.NDArray[np.int16]:
        """The remaining output once the input has ended (a lone odd byte is dropped)."""
        if self._received == 0:
            return np.zeros(0, dtype=np.int16)
        total_outputs = max(1, round(self._received * self.target_rate / self.source_rate))
        return self._emit(last_input=(total_outputs - 1) * self._ratio)

    def _emit(self, last_input: int) -> npt.NDArray[np.int16]:
        if last_input < self._next_input:
            return np.zeros(0, dtype=np.int16)
        window_from = max(0, self._next_input - self._context)
        window = self._kept[window_from - self._kept_from :]
        downsampled = resample(window, self.source_rate, self.target_rate)
        first = (self._next_input - window_from) // self._ratio
        last = min((last_input - window_from) // self._ratio, len(downsampled) - 1)
        emitted = downsampled[first : last + 1]
        self._next_input = window_from + (last + 1) * self._ratio
        keep_from = max(0, self._next_input - self._context)
        self._kept = self._kept[keep_from - self._kept_from :]
        self._kept_from = keep_from
        return emitted


class OpenAITtsSynthesizer:
    """The OpenAI `Synthesizer`: μ-law 8 kHz chunks of about 100 ms, streamed as synthesized."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        model: str = "gpt-4o-mini-tts",
        voice: str = "alloy",
        timeout: float = 10.0,
    ) -> None:
        if not voice.strip():
            raise ValueError("an OpenAI voice name is required")
        self.name = f"openai:{model}:{voice}"
        self.model = model
        self.voice = voice
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
        )

    def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        """μ-law audio for ``text`` as it streams in; close the generator to cancel.

        Raises ValueError at once for text over ``MAX_INPUT_CHARS``; blank text yields nothing;
        provider trouble raises SynthesizerFailure while iterating.
        """
        spoken = " ".join(text.split())
        if len(spoken) > MAX_INPUT_CHARS:
            raise ValueError(f"text too long to speak: {len(spoken)} characters")
        return self._stream(spoken)

    async def aclose(self) -> None:
        """Release the HTTP connections."""
        await self._client.close()

    async def _stream(self, text: str) -> AsyncGenerator[bytes, None]:
        if not text:
            return
        downsampler = StreamingDownsampler(OPENAI_PCM_RATE, SAMPLE_RATE)
        pending = bytearray()
        produced = 0
        try:
            async with self._client.audio.speech.with_streaming_response.create(
                model=self.model,
                voice=self.voice,
                input=text,
                response_format="pcm",
                instructions=VOICE_INSTRUCTIONS if "gpt-4o" in self.model else openai.omit,
            ) as response:
                async for piece in response.iter_bytes():
                    pending += ulaw_encode(downsampler.feed(piece))
                    if len(pending) >= CHUNK_BYTES:
                        produced += len(pending)
                        yield bytes(pending)
                        pending.clear()
        except openai.APIStatusError as error:
            raise SynthesizerFailure(f"{self.name}: HTTP {error.status_code}") from error
        except (openai.APITimeoutError, httpx2.TimeoutException) as error:
            raise SynthesizerFailure(f"{self.name}: no audio in time (stalled)") from error
        except (openai.APIConnectionError, httpx2.RequestError) as error:
            raise SynthesizerFailure(f"{self.name}: connection failed ({error!r})") from error
        except openai.OpenAIError as error:
            raise SynthesizerFailure(f"{self.name}: {error}") from error
        pending += ulaw_encode(downsampler.flush())
        if produced + len(pending) == 0:
            raise SynthesizerFailure(f"{self.name}: no audio for {len(text)} characters")
        if pending:
            yield bytes(pending)
