"""Energy endpointing: line noise never speaks, bursts of voice are found where they are."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from media_stream.codec import SAMPLE_RATE, ulaw_decode
from media_stream.endpointing import Endpointer, SpeechBegan, SpeechEnded
from media_stream.espeak import EspeakSynthesizer

TOLERANCE = 0.06


def silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16)


def voiced(seconds: float, level: float = 3000.0) -> npt.NDArray[np.int16]:
    """A vowel-like buzz: 120 Hz harmonics with a syllable-rate swell, never fully quiet."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    buzz = sum(np.sin(2 * np.pi * 120 * h * t) / h for h in range(1, 12))
    swell = 0.7 + 0.3 * np.sin(2 * np.pi * 4 * t)
    return (level * buzz * swell / 2).astype(np.int16)


def tone(seconds: float, hz: float = 440.0, level: float = 3000.0) -> npt.NDArray[np.int16]:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def white_noise(seconds: float, rms: float, seed: int = 7) -> npt.NDArray[np.int16]:
    noise = np.random.default_rng(seed).normal(0, rms, round(seconds * SAMPLE_RATE))
    return np.clip(noise, -32768, 32767).astype(np.int16)


def feed(
    pcm: npt.NDArray[np.int16],
    piece: int = 160,
    start: float = 0.0,
    endpointer: Endpointer | None = None,
) -> list[SpeechBegan | SpeechEnded]:
    endpointer = endpointer or Endpointer()
    events: list[SpeechBegan | SpeechEnded] = []
    for offset in range(0, len(pcm), piece):
        events += endpointer.push(pcm[offset : offset + piece], start + offset / SAMPLE_RATE)
    return events + list(endpointer.flush())


def utterances(events: list[SpeechBegan | SpeechEnded]) -> list[SpeechEnded]:
    return [e for e in events if isinstance(e, SpeechEnded)]


def test_digital_silence_is_not_speech() -> None:
    assert feed(silence(5)) == []


@pytest.mark.parametrize("rms", [30, 300, 3000, 12000])
def test_steady_white_noise_is_not_speech_at_any_level(rms: float) -> None:
    assert feed(white_noise(5, rms)) == []


def test_mains_hum_is_not_speech() -> None:
    assert feed(tone(5, hz=60, level=8000)) == []


def test_quiet_burst_below_the_absolute_minimum_is_not_speech() -> None:
    assert feed(np.concatenate([silence(1), voiced(1, level=40), silence(1)])) == []


@pytest.mark.parametrize("piece", [160, 1, 77, 333, 4000])
def test_one_burst_between_silences_is_one_utterance(piece: int) -> None:
    events = feed(np.concatenate([silence(1), voiced(1.5), silence(1.5)]), piece=piece)
    assert [type(e) for e in events] == [SpeechBegan, SpeechEnded]
    began, ended = events
    assert isinstance(began, SpeechBegan) and isinstance(ended, SpeechEnded)
    assert began.at == pytest.approx(1.0, abs=TOLERANCE)
    assert ended.start == began.at
    assert ended.end == pytest.approx(2.5, abs=TOLERANCE)


def _described(events: list[SpeechBegan | SpeechEnded]) -> list[tuple[object, ...]]:
    return [
        (e.at,)
        if isinstance(e, SpeechBegan)
        else (e.start, e.end, e.audio_start, e.audio.tobytes())
        for e in events
    ]


def test_the_way_audio_is_cut_into_pieces_changes_nothing() -> None:
    pcm = np.concatenate([silence(1), voiced(1.5), silence(0.33), voiced(0.8), silence(1.5)])
    whole_frames = _described(feed(pcm, piece=160))
    assert whole_frames == _described(feed(pcm, piece=len(pcm)))
    assert whole_frames == _described(feed(pcm, piece=77))
    endpointer = Endpointer()  # a stray sample first: every 20 ms piece then joins a remainder
    events = endpointer.push(pcm[:1], 0.0)
    events += feed(pcm[1:], start=1 / SAMPLE_RATE, endpointer=endpointer)
    assert whole_frames == _described(events)


def test_audio_changed_by_the_caller_after_pushing_changes_no_utterance() -> None:
    endpointer = Endpointer()
    pcm = np.concatenate([silence(1), voiced(1)])
    kept = pcm.copy()
    events: list[SpeechBegan | SpeechEnded] = []
    for offset in range(0, len(pcm), 160):
        piece = pcm[offset : offset + 160]
        events += endpointer.push(piece, offset / SAMPLE_RATE)
        piece[:] = 0  # a caller reusing its buffer
    events += endpointer.flush()
    (ended,) = utterances(events)
    first = round(ended.audio_start * SAMPLE_RATE)
    assert np.array_equal(ended.audio, kept[first : first + len(ended.audio)])


def test_utterance_audio_has_pre_roll_and_lines_up_with_the_clock() -> None:
    pcm = np.concatenate([silence(1), voiced(1.5), silence(1.5)])
    (ended,) = utterances(feed(pcm, start=10.0))
    assert ended.start - ended.audio_start == pytest.approx(0.2, abs=0.021)
    first = round((ended.audio_start - 10.0) * SAMPLE_RATE)
    assert np.array_equal(ended.audio, pcm[first : first + len(ended.audio)])


def test_a_voiced_burst_in_line_noise_is_found() -> None:
    pcm = white_noise(4, 200)
    pcm[SAMPLE_RATE : 2 * SAMPLE_RATE] += voiced(1)
    events = feed(pcm)
    assert [type(e) for e in events] == [SpeechBegan, SpeechEnded]
    ended = events[1]
    assert isinstance(ended, SpeechEnded)
    assert (ended.start, ended.end) == pytest.approx((1.0, 2.0), abs=TOLERANCE)


def test_line_noise_that_gets_louder_is_soon_the_new_floor() -> None:
    pcm = np.concatenate([white_noise(3, 60), white_noise(6, 1500, seed=8)])
    found = utterances(feed(pcm))
    assert all(u.end - u.start < 1.0 and u.end < 4.0 for u in found)


def test_a_steady_tone_is_treated_as_noise_after_a_moment() -> None:
    found = utterances(feed(np.concatenate([silence(1), tone(5), silence(1)])))
    assert len(found) == 1
    assert found[0].start == pytest.approx(1.0, abs=TOLERANCE)
    assert found[0].end - found[0].start < 1.5


def test_two_bursts_a_second_apart_are_two_utterances() -> None:
    pcm = np.concatenate([silence(1), voiced(1), silence(1), voiced(0.8), silence(1)])
    found = utterances(feed(pcm))
    assert [(u.start, u.end) for u in found] == [
        pytest.approx((1.0, 2.0), abs=TOLERANCE),
        pytest.approx((3.0, 3.8), abs=TOLERANCE),
    ]


def test_a_short_pause_does_not_split_an_utterance() -> None:
    pcm = np.concatenate([silence(1), voiced(1), silence(0.4), voiced(1), silence(1)])
    assert len(utterances(feed(pcm))) == 1


def test_a_click_shorter_than_min_speech_is_dropped() -> None:
    pcm = np.concatenate([silence(1), voiced(0.06), silence(2)])
    assert feed(pcm) == []


def test_a_long_burst_is_split_at_max_utterance() -> None:
    events = feed(np.concatenate([silence(1), voiced(20), silence(1)]))
    assert [type(e) for e in events] == [SpeechBegan, SpeechEnded, SpeechBegan, SpeechEnded]
    first, second = utterances(events)
    assert first.end - first.start == pytest.approx(15.0, abs=0.021)
    assert second.start == pytest.approx(first.end, abs=0.021)
    assert second.end == pytest.approx(21.0, abs=TOLERANCE)


def test_espeak_sentence_is_one_utterance() -> None:
    speech = ulaw_decode(EspeakSynthesizer().render_ulaw("Yes please, that sounds good."))
    events = feed(np.concatenate([silence(1), speech, silence(1.5)]))
    assert [type(e) for e in events] == [SpeechBegan, SpeechEnded]
    ended = events[1]
    assert isinstance(ended, SpeechEnded)
    assert ended.start == pytest.approx(1.0, abs=TOLERANCE)
    assert 1.0 + 1.5 < ended.end <= 1.0 + len(speech) / SAMPLE_RATE


def test_missing_frames_inside_speech_are_bridged_and_keep_the_clock() -> None:
    endpointer = Endpointer()
    speech = voiced(1)
    events = endpointer.push(silence(1), 0.0)
    events += endpointer.push(speech[:4000], 1.0)
    events += endpointer.push(speech[4800:], 1.6)  # 100 ms lost
    events += endpointer.push(silence(1.5), 2.0)
    events += endpointer.flush()
    (ended,) = utterances(events)
    assert (ended.start, ended.end) == pytest.approx((1.0, 2.0), abs=TOLERANCE)
    assert len(ended.audio) / SAMPLE_RATE == pytest.approx(2.0 + 0.7 - ended.audio_start, abs=0.021)


def test_a_long_gap_ends_the_utterance_at_the_last_voice() -> None:
    endpointer = Endpointer()
    events = endpointer.push(silence(1), 0.0) + endpointer.push(voiced(0.5), 1.0)
    events += endpointer.push(voiced(0.5), 30.0)  # the stream skipped 28.5 s
    events += endpointer.flush()
    found = utterances(events)
    assert [(u.start, u.end) for u in found] == [
        pytest.approx((1.0, 1.5), abs=TOLERANCE),
        pytest.approx((30.0, 30.5), abs=TOLERANCE),
    ]


def test_timestamps_running_backwards_never_move_the_clock_back() -> None:
    endpointer = Endpointer()
    events = endpointer.push(silence(1), 5.0)
    events += endpointer.push(voiced(1), 0.0)  # a replayed or bogus timestamp
    events += endpointer.push(silence(1), 0.0)
    events += endpointer.flush()
    (ended,) = utterances(events)
    assert ended.start == pytest.approx(6.0, abs=TOLERANCE)
    assert ended.end >= ended.start


def test_flush_closes_open_speech_and_drops_an_unconfirmed_blip() -> None:
    endpointer = Endpointer()
    endpointer.push(np.concatenate([silence(1), voiced(1)]), 0.0)
    (ended,) = endpointer.flush()
    assert (ended.start, ended.end) == pytest.approx((1.0, 2.0), abs=TOLERANCE)
    assert endpointer.flush() == []
    endpointer.push(np.concatenate([silence(1), voiced(0.04)]), 0.0)
    assert endpointer.flush() == []


def test_empty_pieces_are_harmless() -> None:
    endpointer = Endpointer()
    assert endpointer.push(np.zeros(0, dtype=np.int16), 0.0) == []
    assert endpointer.flush() == []


@pytest.mark.parametrize(
    ("pcm", "at"),
    [
        (np.zeros((2, 160), dtype=np.int16), 0.0),
        (np.zeros(160, dtype=np.float32), 0.0),
        (np.zeros(160, dtype=np.int16), float("nan")),
        (np.zeros(160, dtype=np.int16), float("inf")),
        (np.zeros(160, dtype=np.int16), -1.0),
    ],
)
def test_malformed_input_is_refused(pcm: npt.NDArray[np.int16], at: float) -> None:
    with pytest.raises(ValueError):
        Endpointer().push(pcm, at)


@pytest.mark.parametrize(
    "settings",
    [
        {"silence_to_end": 0.0},
        {"min_speech": -1.0},
        {"max_utterance": 0.1},
        {"max_utterance": 600.0},
    ],
)
def test_nonsense_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Endpointer(**settings)
