"""The μ-law codec against the G.711 definition, checked exhaustively.

The reference encoders and decoder here are scalar and written straight from the G.711 μ-law
tables, independent of the vectorised code under test:

* the 14-bit form: G.711 μ-law quantises a 14-bit signed sample (the int16 sample shifted
  right by 2) in eight segments whose end points are the decision values 31, 95, 223, 479,
  991, 2015, 4063 and 8159, with quantisation steps 2, 4, 8, …, 256;
* the 16-bit form with bias 0x84 (the classic Sun ``linear2ulaw``), which works on the int16
  magnitude directly.

The two forms agree on every non-negative sample and on every negative multiple of 4. For the
other negative samples they round the 16→14-bit conversion differently (``sample >> 2``
floors, ``-sample`` then shifting truncates toward zero) and can differ by one quantisation
step. The codec implements the 14-bit form, as does CPython's ``audioop.lin2ulaw``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from media_stream.codec import (
    FRAME_BYTES,
    SILENCE_BYTE,
    duration_seconds,
    frames,
    resample,
    ulaw_decode,
    ulaw_encode,
)

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))
NEGATIVE_ZERO = 0x7F
POSITIVE_ZERO = 0xFF

# G.711 μ-law, 14-bit magnitudes: the upper decision value of each of the eight segments.
SEGMENT_ENDS = (31, 95, 223, 479, 991, 2015, 4063, 8159)


def reference_encode_14bit(sample: int) -> int:
    """G.711 μ-law of one int16 sample, from the 14-bit segment table."""
    value = sample >> 2  # the 14-bit sample
    magnitude = min(-value if value < 0 else value, SEGMENT_ENDS[-1] - 1)
    segment = next(s for s, end in enumerate(SEGMENT_ENDS) if magnitude < end)
    segment_start = SEGMENT_ENDS[segment - 1] if segment > 0 else -1
    step = 2 << segment
    interval = (magnitude - segment_start) // step
    code = (segment << 4) | interval
    return code ^ (0x7F if value < 0 else 0xFF)


def reference_encode_16bit_bias(sample: int) -> int:
    """G.711 μ-law of one int16 sample, in the 16-bit form with bias 0x84 and clip 32635."""
    magnitude = min(-sample if sample < 0 else sample, 32635) + 0x84
    segment = next(s for s in range(8) if magnitude <= (0x100 << s) - 1)
    code = (segment << 4) | ((magnitude >> (segment + 3)) & 0x0F)
    return code ^ (0x7F if sample < 0 else 0xFF)


def reference_decode(code: int) -> int:
    """The int16 value G.711 assigns to one μ-law code (16-bit form, bias 0x84)."""
    inverted = ~code & 0xFF
    segment = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << segment) - 0x84
    return -magnitude if inverted & 0x80 else magnitude


@pytest.fixture(scope="module")
def encoded_by_codec() -> npt.NDArray[np.uint8]:
    return np.frombuffer(ulaw_encode(ALL_SAMPLES), dtype=np.uint8)


def test_reference_segment_table_is_g711() -> None:
    # Segment s spans 16 intervals of 2**(s+1); segment 0 starts with the single value 0.
    starts = (-1, *SEGMENT_ENDS[:-1])
    for segment, (start, end) in enumerate(zip(starts, SEGMENT_ENDS, strict=True)):
        assert end - start == 16 * (2 << segment)


def test_encode_matches_g711_14bit_form_for_every_int16(
    encoded_by_codec: npt.NDArray[np.uint8],
) -> None:
    expected = np.array([reference_encode_14bit(int(s)) for s in ALL_SAMPLES], dtype=np.uint8)
    mismatches = np.flatnonzero(encoded_by_codec != expected)
    if mismatches.size:
        first = int(mismatches[0])
        pytest.fail(
            f"{mismatches.size} samples differ, first {int(ALL_SAMPLES[first])}: "
            f"codec {int(encoded_by_codec[first]):#04x}, G.711 {int(expected[first]):#04x}"
        )


def test_encode_agrees_with_16bit_bias_form_where_the_14bit_conversion_is_exact(
    encoded_by_codec: npt.NDArray[np.uint8],
) -> None:
    expected = np.array([reference_encode_16bit_bias(int(s)) for s in ALL_SAMPLES], dtype=np.uint8)
    exact = (ALL_SAMPLES >= 0) | (ALL_SAMPLES % 4 == 0)
    assert np.array_equal(encoded_by_codec[exact], expected[exact])
    # Elsewhere the two forms round differently by at most one quantisation step.
    differing = ~exact & (encoded_by_codec != expected)
    step = np.abs(encoded_by_codec[differing].astype(int) - expected[differing].astype(int))
    assert np.all(step == 1)


def test_encode_clips_full_scale() -> None:
    loudest = np.array([32767, 32635, 32124, -32768, -32636, -32125], dtype=np.int16)
    assert ulaw_encode(loudest) == bytes([0x80, 0x80, 0x80, 0x00, 0x00, 0x00])


def test_encode_of_silence_is_the_silence_byte() -> None:
    assert ulaw_encode(np.zeros(4, dtype=np.int16)) == bytes([SILENCE_BYTE]) * 4
    assert SILENCE_BYTE == POSITIVE_ZERO


def test_encode_is_monotonic_in_the_sample_value(
    encoded_by_codec: npt.NDArray[np.uint8],
) -> None:
    levels = ulaw_decode(encoded_by_codec.tobytes()).astype(np.int32)
    assert np.all(np.diff(levels) >= 0)


def test_encode_accepts_an_empty_signal() -> None:
    assert ulaw_encode(np.zeros(0, dtype=np.int16)) == b""


def test_decode_matches_g711_for_every_code() -> None:
    decoded = ulaw_decode(ALL_CODES)
    assert decoded.dtype == np.int16
    assert decoded.tolist() == [reference_decode(code) for code in range(256)]


def test_decode_spot_values() -> None:
    decoded = ulaw_decode(bytes([0x00, 0x80, 0x7F, 0xFF, 0x7E, 0xFE]))
    assert decoded.tolist() == [-32124, 32124, 0, 0, -8, 8]


def test_decode_is_symmetric_in_the_sign_bit() -> None:
    decoded = ulaw_decode(ALL_CODES).astype(np.int32)
    flipped = ulaw_decode(bytes(code ^ 0x80 for code in range(256))).astype(np.int32)
    assert np.array_equal(decoded, -flipped)


def test_encode_of_decode_is_identity_except_negative_zero() -> None:
    round_trip = ulaw_encode(ulaw_decode(ALL_CODES))
    expected = bytes(POSITIVE_ZERO if code == NEGATIVE_ZERO else code for code in range(256))
    assert round_trip == expected


def test_decode_of_encode_is_the_nearest_level_within_half_a_step() -> None:
    samples = ALL_SAMPLES[np.abs(ALL_SAMPLES.astype(np.int32)) < 32124]
    error = ulaw_decode(ulaw_encode(samples)).astype(np.int32) - samples.astype(np.int32)
    # The largest step is 256 in 14-bit units, 1024 in int16 units; rounding is to the middle.
    assert np.abs(error).max() <= 512 + 3


def _tone(frequency: float, rate: int, seconds: float = 1.0) -> npt.NDArray[np.int16]:
    t = np.arange(round(rate * seconds)) / rate
    return np.round(10_000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def _dominant(pcm: npt.NDArray[np.int16], rate: int) -> tuple[float, float]:
    """Frequency (Hz) and amplitude of the strongest component."""
    window = np.hanning(len(pcm))
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * window))
    peak = int(spectrum.argmax())
    return peak * rate / len(pcm), float(spectrum[peak] / (window.sum() / 2))


@pytest.mark.parametrize(
    ("src_rate", "dst_rate", "length", "expected"),
    [
        (8000, 16000, 160, 320),
        (16000, 8000, 320, 160),
        (24000, 8000, 480, 160),
        (22050, 8000, 22050, 8000),
        (22050, 8000, 441, 160),
        (8000, 8000, 123, 123),
        (24000, 8000, 0, 0),
    ],
)
def test_resample_length(src_rate: int, dst_rate: int, length: int, expected: int) -> None:
    resampled = resample(np.zeros(length, dtype=np.int16), src_rate, dst_rate)
    assert resampled.dtype == np.int16
    assert len(resampled) == expected


@pytest.mark.parametrize(("src_rate", "dst_rate"), [(0, 8000), (8000, 0), (-8000, 8000)])
def test_resample_rejects_non_positive_rates(src_rate: int, dst_rate: int) -> None:
    with pytest.raises(ValueError, match="sample rates must be positive"):
        resample(np.zeros(10, dtype=np.int16), src_rate, dst_rate)


def test_resample_same_rate_returns_the_samples() -> None:
    pcm = _tone(440, 8000, 0.1)
    assert np.array_equal(resample(pcm, 8000, 8000), pcm)


def test_resample_up_and_down_keeps_a_sine_wave() -> None:
    tone = _tone(1000, 8000)
    up = resample(tone, 8000, 16000)
    back = resample(up, 16000, 8000)
    for pcm, rate in ((up, 16000), (back, 8000)):
        frequency, amplitude = _dominant(pcm, rate)
        assert frequency == pytest.approx(1000, abs=2)
        assert amplitude == pytest.approx(10_000, rel=0.1)


def test_resample_down_from_24k_keeps_a_sine_wave() -> None:
    frequency, amplitude = _dominant(resample(_tone(1000, 24000), 24000, 8000), 8000)
    assert frequency == pytest.approx(1000, abs=2)
    assert amplitude == pytest.approx(10_000, rel=0.05)


def test_resample_down_suppresses_what_would_alias() -> None:
    # 6 kHz is above the 4 kHz Nyquist frequency of 8 kHz audio; unfiltered it folds to 2 kHz.
    resampled = resample(_tone(6000, 24000), 24000, 8000)
    assert np.abs(resampled[100:-100].astype(np.int32)).max() < 500


def test_resample_down_of_a_short_constant_signal_stays_near_the_constant() -> None:
    resampled = resample(np.full(9, 1000, dtype=np.int16), 24000, 8000)
    assert np.all(np.abs(resampled.astype(np.int32)) > 300)


def test_frames_split_exact_multiples_without_padding() -> None:
    audio = bytes(range(256)) * 5  # 1280 bytes = 8 frames of 160
    split = list(frames(audio))
    assert len(split) == 8
    assert all(len(frame) == FRAME_BYTES for frame in split)
    assert b"".join(split) == audio


def test_frames_pad_the_last_frame_with_silence() -> None:
    audio = b"\x00" * (FRAME_BYTES + 7)
    first, last = frames(audio)
    assert first == b"\x00" * FRAME_BYTES
    assert last == b"\x00" * 7 + bytes([SILENCE_BYTE]) * (FRAME_BYTES - 7)


def test_frames_of_nothing_is_no_frames() -> None:
    assert list(frames(b"")) == []


def test_frames_with_a_custom_size() -> None:
    assert list(frames(b"abcde", size=2)) == [b"ab", b"cd", b"e" + bytes([SILENCE_BYTE])]


def test_duration_seconds_at_8khz() -> None:
    assert duration_seconds(b"\xff" * 8000) == 1.0
    assert duration_seconds(b"\xff" * FRAME_BYTES) == pytest.approx(0.020)
    assert duration_seconds(b"") == 0.0
