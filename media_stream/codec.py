"""G.711 μ-law ⇄ 16-bit PCM, resampling and 20 ms framing, in numpy.

Bit-exact with ITU-T G.711 (the 14-bit μ-law segment table), without the stdlib ``audioop``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000  # 160 μ-law bytes (one sample each) per 20 ms frame
FRAME_SECONDS = FRAME_MS / 1000  # the audio one Twilio media message carries
SILENCE_BYTE = 0xFF  # μ-law code for zero

_BIAS = 33  # 0x21, added to the 14-bit magnitude
_CLIP = 8159


def _build_decode_table() -> npt.NDArray[np.int16]:
    codes = np.arange(256, dtype=np.int32) ^ 0xFF
    sign = codes & 0x80
    segment = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 1) + _BIAS) << segment) - _BIAS  # 14-bit magnitude
    pcm14 = np.where(sign != 0, -magnitude, magnitude)
    return (pcm14 << 2).astype(np.int16)


_DECODE_TABLE = _build_decode_table()


def ulaw_decode(data: bytes) -> npt.NDArray[np.int16]:
    """μ-law bytes → int16 PCM samples."""
    return _DECODE_TABLE.take(np.frombuffer(data, dtype=np.uint8))  # faster than indexing


def ulaw_encode(pcm: npt.NDArray[np.int16]) -> bytes:
    """int16 PCM samples → μ-law bytes (G.711, 14-bit input = sample >> 2)."""
    samples = np.asarray(pcm, dtype=np.int16).astype(np.int32) >> 2
    negative = samples < 0
    magnitude = np.minimum(np.abs(samples), _CLIP) + _BIAS
    segment = np.floor(np.log2(magnitude)).astype(np.int32) - 5
    code = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    code = np.where(segment > 7, 0x7F, code)
    code = np.where(negative, code ^ 0x7F, code ^ 0xFF)
    return code.astype(np.uint8).tobytes()


def resample(pcm: npt.NDArray[np.int16], src_rate: int, dst_rate: int) -> npt.NDArray[np.int16]:
    """Resample int16 PCM by linear interpolation (band-limited enough for telephone speech)."""
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {src_rate} → {dst_rate}")
    if src_rate == dst_rate or len(pcm) == 0:
        return np.asarray(pcm, dtype=np.int16)
    count = max(1, round(len(pcm) * dst_rate / src_rate))
    positions = np.arange(count, dtype=np.float64) * (src_rate / dst_rate)
    source = np.asarray(pcm, dtype=np.float64)
    if dst_rate < src_rate:
        source = _lowpass(source, src_rate / dst_rate)
    resampled = np.interp(positions, np.arange(len(source)), source)
    return np.clip(np.round(resampled), -32768, 32767).astype(np.int16)


def _lowpass(samples: npt.NDArray[np.float64], ratio: float) -> npt.NDArray[np.float64]:
    """A short windowed-sinc anti-aliasing filter before decimation."""
    taps = 31
    cutoff = 0.5 / ratio
    n = np.arange(taps) - (taps - 1) / 2
    kernel = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(taps)
    kernel /= kernel.sum()
    delay = (taps - 1) // 2
    return np.convolve(samples, kernel, mode="full")[delay : delay + len(samples)]


def frames(ulaw: bytes, size: int = FRAME_BYTES) -> Iterator[bytes]:
    """Split μ-law audio into ``size``-byte frames; the last is padded with silence."""
    for offset in range(0, len(ulaw), size):
        frame = ulaw[offset : offset + size]
        if len(frame) < size:
            frame += bytes([SILENCE_BYTE]) * (size - len(frame))
        yield frame


def duration_seconds(ulaw: bytes) -> float:
    """Playing time of μ-law 8 kHz audio."""
    return len(ulaw) / SAMPLE_RATE
