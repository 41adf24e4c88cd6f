"""How well, and how fast, the embedded ears hear our own callers: Whisper models and settings.

Every line of ``tests/data/caller_lines.yaml`` (names, street addresses, phone numbers said
several ways, trade words, yes/no answers) is voiced once, by one of espeak-ng at 140, 175 and
210 words a minute and Piper's bundled voice (when it loads), taking turns, through the phone
path (synthesized, μ-law 8 kHz, decoded), with the pre-roll and closing silence the endpointer
hands over. Each configuration (model, beam size, timestamps, Silero VAD filter, compute type)
then transcribes every clip with `WhisperTranscriber`, its filters included, prompted as on a
call for the question the line answers (`ANSWER_TO`; a problem with the keyterms of one demo
business or the other; a yes or no with no prompt; ``tiny.en-unasked``: no question asked, as
the ears were before), and reports:

- WER: word error rate over all lines (and over the trade lines), after normalising both sides
  alike: lower case, no punctuation, every number as single digits ("twenty three", "23" and
  "two three" are all "2 3"; "oh" is 0; "double five" is "5 5");
- names: share of name lines where the whole name was heard;
- digits: share of number and address lines whose digits (all ten of a phone number, the
  house number) were heard in order;
- numbers taken: share of phone number lines whose number the receptionist reads from what was
  heard (``find_phone_number``, sound-alikes and all) and gets right;
- yes/no: share of yes/no lines heard word for word;
- latency p50/p95: wall-clock seconds of one `transcribe` call (model loaded beforehand);
- load: the 1-minute load average before and after the configuration (the machine is shared).

    .venv/bin/python bench/ears.py [--configs tiny.en base-b1 ...] [--limit N]

Bounded: 210 clips per configuration, about 1.5 minutes each for tiny.en and 4 for base on two
shared cores.

``--turn-ends`` measures turn ends instead: `TURN_LINES` (finished answers, and answers with
pauses of 0.3–1.2 s inside them) are voiced, with silence around, and fed frame by frame to a
`WhisperSession` listening for what the line's question wants, with the word-aware turn end and
with the fixed 0.7 s of silence. Stream time
runs at the speed of a phone line whenever a transcription is under way (so what the words
decide comes as late as on a call) and jumps ahead otherwise. Reported: false cut-offs (a turn
reported before the caller's last words), and for finished answers the time from the end of
speech to the endpointing decision and to the transcript, p50/p95 (a finished answer is taken
when a transcript of it comes within the 3 s of silence after it). Each runs with energy
endpointing and with Silero VAD, on clean lines and again under babble-like noise.

    .venv/bin/python bench/ears.py --turn-ends [--configs tiny.en]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scoring import digits_of, edit_distance, normalise, percentile
from media_stream import AnswerKind, EspeakSynthesizer, PiperSynthesizer, WhisperTranscriber
from media_stream.answer_prompts import prompt_for
from media_stream.codec import FRAME_BYTES, FRAME_SECONDS, SAMPLE_RATE, ulaw_decode, ulaw_encode
from media_stream.ports import Utterance
from media_stream.whisper import WhisperSession
from voice_agent.call.keyterms import call_keyterms
from voice_agent.chat.numbers_in_words import find_phone_number
from voice_agent.records.businesses import load_businesses

ROOT = Path(__file__).resolve().parent.parent
LINES = ROOT / "tests" / "data" / "caller_lines.yaml"
BUSINESSES = ROOT / "fixtures" / "businesses.yaml"
PRE_ROLL = 0.2  # what the endpointer keeps before an onset
CLOSING_SILENCE = 0.7  # the silence that ended the turn, still in the clip

ANSWER_TO = {
    "name": AnswerKind.NAME,
    "address": AnswerKind.ADDRESS,
    "number": AnswerKind.PHONE_NUMBER,
    "trade": AnswerKind.PROBLEM,
    "yes-no": AnswerKind.ANY,
}
"""The question each kind of line answers on a call, and so Whisper's prompt for it."""
DEMO_KEYTERMS = [call_keyterms(business) for business in load_businesses(BUSINESSES)]

CONFIGS: dict[str, dict[str, Any]] = {  # each encodes `encoder_frames` unless "-full"
    "tiny.en": {"model": "tiny.en"},
    "tiny.en-unasked": {"model": "tiny.en", "asked": False},
    "tiny.en-full": {"model": "tiny.en", "full_window": True},
    "tiny.en-once": {"model": "tiny.en", "reread_numbers": False},
    "tiny.en-b5": {"model": "tiny.en", "beam_size": 5},
    "tiny.en-nots": {"model": "tiny.en", "without_timestamps": True},
    "tiny.en-novad": {"model": "tiny.en", "vad_filter": False},
    "tiny.en-f32": {"model": "tiny.en", "compute_type": "float32"},
    "base": {"model": "base"},
    "base-full": {"model": "base", "full_window": True},
    "base-b5": {"model": "base", "beam_size": 5},
    "base-novad": {"model": "base", "vad_filter": False},
}


@dataclass(frozen=True)
class Clip:
    text: str
    kind: str
    key: str
    voice: str
    pcm: npt.NDArray[np.int16]


@dataclass
class Score:
    errors: int = 0
    words: int = 0
    trade_errors: int = 0
    trade_words: int = 0
    names: list[bool] = field(default_factory=list)
    digits: list[bool] = field(default_factory=list)
    numbers_taken: list[bool] = field(default_factory=list)
    yes_no: list[bool] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    misheard: list[tuple[str, str]] = field(default_factory=list)
    by_voice: dict[str, tuple[int, int]] = field(default_factory=dict)  # voice → (edits, words)

    def add(self, clip: Clip, heard: str, seconds: float) -> None:
        reference, hypothesis = normalise(clip.text), normalise(heard)
        errors = edit_distance(reference, hypothesis)
        self.errors += errors
        self.words += len(reference)
        edits, words = self.by_voice.get(clip.voice, (0, 0))
        self.by_voice[clip.voice] = (edits + errors, words + len(reference))
        self.seconds.append(seconds)
        if clip.kind == "trade":
            self.trade_errors += errors
            self.trade_words += len(reference)
        elif clip.kind == "name":
            key = " ".join(normalise(clip.key))
            self.names.append(f" {key} " in f" {' '.join(hypothesis)} ")
        elif clip.kind in ("number", "address"):
            self.digits.append(clip.key in digits_of(hypothesis))
            if clip.kind == "number":
                self.numbers_taken.append(find_phone_number(heard) == "+1" + clip.key)
        elif clip.kind == "yes-no":
            self.yes_no.append(errors == 0)
        if errors:
            self.misheard.append((clip.text, heard))


def voices() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = [
        (f"espeak@{wpm}", EspeakSynthesizer("en-us", words_per_minute=wpm))
        for wpm in (140, 175, 210)
    ]
    piper = PiperSynthesizer()
    try:
        piper.load()
    except Exception as error:  # the bench goes on with espeak-ng alone
        print(f"Piper not used: {error}", file=sys.stderr)
    else:
        found.append(("piper", piper))
    return found


def clips(limit: int | None) -> list[Clip]:
    lines = yaml.safe_load(LINES.read_text())
    if limit:
        lines = lines[:: max(1, len(lines) // limit)][:limit]
    speakers = voices()
    made = []
    for index, line in enumerate(lines):
        name, voice = speakers[index % len(speakers)]
        speech = ulaw_decode(voice.render_ulaw(line["text"]))
        before = np.zeros(round(PRE_ROLL * SAMPLE_RATE), np.int16)
        after = np.zeros(round(CLOSING_SILENCE * SAMPLE_RATE), np.int16)
        pcm = np.concatenate((before, speech, after))
        made.append(Clip(line["text"], line["kind"], str(line.get("key", "")), name, pcm))
    return made


def asked_prompt(clip: Clip, index: int) -> str | None:
    """The prompt a call gives Whisper for this line: that of the question it answers, with the
    keyterms of one demo business or the other, taking turns."""
    return prompt_for(ANSWER_TO[clip.kind], DEMO_KEYTERMS[index % len(DEMO_KEYTERMS)])


def run(name: str, options: dict[str, Any], made: list[Clip]) -> tuple[Score, float, float]:
    """Transcribe every clip; with ``"asked": False`` in ``options``, with no question asked."""
    asked = options.get("asked", True)
    transcriber = WhisperTranscriber(**{k: v for k, v in options.items() if k != "asked"})
    transcriber.load()
    transcriber.transcribe(made[0].pcm, 0.0, PRE_ROLL)  # warm-up, not counted
    load_before = os.getloadavg()[0]
    score = Score()
    for index, clip in enumerate(made):
        prompt = asked_prompt(clip, index) if asked else None
        started = time.perf_counter()
        heard = transcriber.transcribe(clip.pcm, 0.0, PRE_ROLL, prompt=prompt)
        score.add(clip, heard.text, time.perf_counter() - started)
    return score, load_before, os.getloadavg()[0]


TURN_LINES: list[tuple[AnswerKind, tuple[str, ...]]] = [  # with what the question asked wants
    # finished answers, said in one go
    (AnswerKind.ANY, ("Yes.",)),
    (AnswerKind.ANY, ("No.",)),
    (AnswerKind.ANY, ("Yes, please.",)),
    (AnswerKind.ANY, ("No, thank you.",)),
    (AnswerKind.ANY, ("Yeah, that's fine.",)),
    (AnswerKind.ANY, ("Sure, go ahead.",)),
    (AnswerKind.NAME, ("My name is Maria Lopez.",)),
    (AnswerKind.NAME, ("It's James Smith.",)),
    (AnswerKind.PHONE_NUMBER, ("Five one two, five five five, zero one four two.",)),
    (
        AnswerKind.PHONE_NUMBER,
        ("My number is three one two, five five five, eight four one nine.",),
    ),
    (AnswerKind.PROBLEM, ("My kitchen sink is leaking.",)),
    (AnswerKind.PROBLEM, ("The water heater stopped working this morning.",)),
    (AnswerKind.PROBLEM, ("I'm locked out of my house.",)),
    (AnswerKind.PROBLEM, ("The breaker keeps tripping in the kitchen.",)),
    (AnswerKind.ADDRESS, ("I'm at twenty three Oak Avenue.",)),
    (AnswerKind.ANY, ("It can wait until next week.",)),
    (AnswerKind.ANY, ("Please come as soon as you can.",)),
    (AnswerKind.ANY, ("That's right.",)),
    (AnswerKind.PROBLEM, ("There's no hot water upstairs.",)),
    (AnswerKind.PROBLEM, ("The toilet keeps running.",)),
    # answers with pauses inside them
    (AnswerKind.PROBLEM, ("My sink is", "leaking.")),
    (AnswerKind.PHONE_NUMBER, ("Five one two", "five five five", "zero one four two.")),
    (AnswerKind.NAME, ("My name is", "Maria Lopez.")),
    (AnswerKind.ADDRESS, ("I'm at", "twenty three Oak Avenue.")),
    (AnswerKind.PROBLEM, ("The water heater", "stopped working.")),
    (AnswerKind.PROBLEM, ("Um", "I think it's the breaker.")),
    (AnswerKind.PHONE_NUMBER, ("It's", "five one two, five five five, zero one four two.")),
    (
        AnswerKind.PHONE_NUMBER,
        ("The number is seven three seven", "five five five", "two two one eight."),
    ),
    (AnswerKind.PROBLEM, ("My kitchen sink and", "the dishwasher are both leaking.")),
    (AnswerKind.PROBLEM, ("I need someone to look at the", "furnace.")),
    (AnswerKind.PROBLEM, ("We have a leak in the", "basement.")),
    (
        AnswerKind.PHONE_NUMBER,
        ("Call me back on", "four one five, five five five, six six seven zero."),
    ),
    (AnswerKind.PROBLEM, ("It's the", "back door lock.")),
    (AnswerKind.PROBLEM, ("So", "the lights flicker when the dryer runs.")),
    (AnswerKind.ADDRESS, ("My address is", "forty two Elm Drive.")),
    (AnswerKind.ANY, ("Uh", "no, not right now.")),
    (AnswerKind.PROBLEM, ("The pipes are", "frozen.")),
    (AnswerKind.ANY, ("I was wondering if", "someone could come tomorrow.")),
    (AnswerKind.PROBLEM, ("It started leaking", "and now the floor is wet.")),
    (AnswerKind.ANY, ("Yes", "and please call my cell.")),
    (AnswerKind.NAME, ("My name is James", "James Smith.")),
    (AnswerKind.PROBLEM, ("The furnace won't start", "and it's cold.")),
]
TURN_PAUSES = (0.3, 0.5, 0.8, 1.2)
"""Pauses inside an answer, taken in turn: a breath, a search for a word, reading a number."""
LEAD_IN = 0.5
TRAILING = 3.0  # more than the longest hold and a transcription


class TimedTranscriber(WhisperTranscriber):
    """Counts transcriptions under way, so the bench's clock can wait for them."""

    busy = 0
    calls = 0

    def transcribe(
        self,
        pcm8k: npt.NDArray[np.int16],
        audio_start: float,
        speech_start: float,
        speech_end: float | None = None,
        prompt: str | None = None,
    ) -> Utterance:
        TimedTranscriber.busy += 1
        TimedTranscriber.calls += 1
        try:
            return super().transcribe(pcm8k, audio_start, speech_start, speech_end, prompt)
        finally:
            TimedTranscriber.busy -= 1


def speech_end(pcm: npt.NDArray[np.int16]) -> int:
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 300)
    return int(loud[-1]) + 1 if len(loud) else 0


def voiced_turn(
    parts: tuple[str, ...], pauses: list[float], voice: Any
) -> tuple[bytes, float, tuple[float, ...]]:
    """μ-law of a whole turn; the stream time the last part starts, and when each part's speech
    ends."""
    pieces = [np.zeros(round(LEAD_IN * SAMPLE_RATE), np.int16)]
    last_start = 0.0
    part_ends: list[float] = []
    for index, part in enumerate(parts):
        speech = ulaw_decode(voice.render_ulaw(part))
        speech = speech[: speech_end(speech)]
        if index:
            pieces.append(np.zeros(round(pauses[index - 1] * SAMPLE_RATE), np.int16))
        last_start = sum(len(p) for p in pieces) / SAMPLE_RATE
        part_ends.append(last_start + len(speech) / SAMPLE_RATE)
        pieces.append(speech)
    pieces.append(np.zeros(round(TRAILING * SAMPLE_RATE), np.int16))
    return ulaw_encode(np.concatenate(pieces)), last_start, tuple(part_ends)


async def one_turn(
    transcriber: WhisperTranscriber,
    turn: VoicedTurn,
    turn_end: bool,
    voice_activity: bool,
    asked: bool = True,
) -> list[tuple[Utterance, float, float]]:
    """(utterance, stream time reported, stream time endpointed) for each non-empty one; with
    ``asked``, the session listens for what the turn's question wants."""
    session = WhisperSession(
        transcriber, turn_end=turn_end, voice_activity=voice_activity, keyterms=turn.keyterms
    )
    if asked:
        session.expect(turn.wanted)
    ulaw = turn.ulaw
    clock: list[tuple[float, float]] = []  # (monotonic, stream time fed so far)
    reported: list[tuple[Utterance, float, float]] = []

    def stream_time_at(moment: float) -> float:
        return next((fed for when, fed in clock if when >= moment), clock[-1][1])

    async def listen() -> None:
        async for event in session.events():
            if isinstance(event, Utterance) and event.text:
                fed = clock[-1][1]
                decided = stream_time_at(event.endpointed_at or 0.0)
                reported.append((event, fed, decided))

    listener = asyncio.create_task(listen())
    for index in range(0, len(ulaw), FRAME_BYTES):
        at = index / SAMPLE_RATE
        session.send_audio(ulaw[index : index + FRAME_BYTES], at)
        clock.append((time.monotonic(), at + FRAME_SECONDS))
        await asyncio.sleep(0)
        if TimedTranscriber.busy:
            await asyncio.sleep(FRAME_SECONDS)  # a phone line's pace while words are decided
    await session.close()
    await listener
    return reported


TURN_MODES = {
    "fixed 0.7 s, energy": (False, False),
    "fixed 0.7 s, Silero VAD": (False, True),
    "words, energy": (True, False),
    "words, Silero VAD": (True, True),
}
NOISE_RMS = 250.0
"""Background noise for the noisy run: about 22 dB below the voices, its loudness swinging at
syllable rate like a room of people talking (what the energy test cannot tell from speech)."""


def with_noise(ulaw: bytes, seed: int) -> bytes:
    pcm = ulaw_decode(ulaw).astype(np.float64)
    rng = np.random.default_rng(seed)
    t = np.arange(len(pcm)) / SAMPLE_RATE
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)) * np.sin(
        2 * np.pi * 0.7 * t
    )
    noise = rng.normal(0, NOISE_RMS, len(pcm)) * envelope
    return ulaw_encode(np.clip(pcm + noise, -32768, 32767).astype(np.int16))


@dataclass(frozen=True)
class VoicedTurn:
    """One of `TURN_LINES` voiced with its pauses: the μ-law, when its last part begins and
    when each part's speech ends (stream seconds); what its question wants, and the keyterms of
    the business it calls."""

    parts: tuple[str, ...]
    ulaw: bytes
    last_start: float
    part_ends: tuple[float, ...]
    wanted: AnswerKind
    keyterms: tuple[str, ...]

    @property
    def end(self) -> float:
        """When the turn's speech ends."""
        return self.part_ends[-1]


@dataclass
class TurnEndFigures:
    """How one way of ending turns did on the voiced turns."""

    cut_offs: int = 0  # turns with pauses inside reported before their last part
    paused: int = 0
    finished: int = 0  # turns said in one go
    decided: list[float] = field(default_factory=list)  # end of speech → end decided, s
    heard: list[float] = field(default_factory=list)  # end of speech → transcript, s
    transcriptions: int = 0


def voiced_turns(noisy: bool) -> list[VoicedTurn]:
    speakers = voices()
    turns = []
    for index, (wanted, parts) in enumerate(TURN_LINES):
        pauses = [TURN_PAUSES[(index + k) % len(TURN_PAUSES)] for k in range(len(parts) - 1)]
        _name, voice = speakers[index % len(speakers)]
        ulaw, last_start, part_ends = voiced_turn(parts, pauses, voice)
        heard = with_noise(ulaw, index) if noisy else ulaw
        keyterms = DEMO_KEYTERMS[index % len(DEMO_KEYTERMS)]
        turns.append(VoicedTurn(parts, heard, last_start, part_ends, wanted, keyterms))
    return turns


def measure_turn_ends(
    transcriber: WhisperTranscriber,
    turns: list[VoicedTurn],
    turn_end: bool,
    voice_activity: bool,
    asked: bool = True,
) -> TurnEndFigures:
    figures = TurnEndFigures()
    TimedTranscriber.calls = 0
    for turn in turns:
        reported = asyncio.run(one_turn(transcriber, turn, turn_end, voice_activity, asked))
        if len(turn.parts) > 1:
            figures.paused += 1
        else:
            figures.finished += 1
        if any(utterance.end < turn.last_start for utterance, *_ in reported):
            figures.cut_offs += 1
            said = [u.text for u, *_ in reported]
            print(f"    cut off {turn.parts} → {said}", file=sys.stderr)
        elif len(turn.parts) == 1 and reported and reported[-1][2] < len(turn.ulaw) / SAMPLE_RATE:
            _utterance, at, at_decided = reported[-1]  # taken before the call closed
            figures.heard.append(at - turn.end)
            figures.decided.append(at_decided - turn.end)
    figures.transcriptions = TimedTranscriber.calls
    return figures


def turn_ends(model: str, noisy: bool) -> None:
    transcriber = TimedTranscriber(model=model)
    transcriber.load()
    turns = voiced_turns(noisy)
    paused = sum(len(turn.parts) > 1 for turn in turns)
    noise = f", with noise (RMS {NOISE_RMS:g})" if noisy else ", clean"
    print(f"{len(turns)} turns ({paused} with pauses inside), model {model}{noise}")
    print(
        "| turn end | false cut-offs | finished answers taken | end decided p50/p95 s "
        "| transcript p50/p95 s | transcriptions a turn | load |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, (turn_end, voice_activity) in TURN_MODES.items():
        load_before = os.getloadavg()[0]
        figures = measure_turn_ends(transcriber, turns, turn_end, voice_activity)
        print(
            f"| {name} | {figures.cut_offs}/{figures.paused} "
            f"| {len(figures.heard)}/{figures.finished} "
            f"| {spread(figures.decided)} | {spread(figures.heard)} "
            f"| {figures.transcriptions / len(turns):.1f} "
            f"| {load_before:.1f}→{os.getloadavg()[0]:.1f} |",
            flush=True,
        )


def spread(values: list[float]) -> str:
    """p50 / p95 of seconds, or – when there are none."""
    if not values:
        return "–"
    return f"{percentile(values, 0.5):.2f} / {percentile(values, 0.95):.2f}"


def share(values: list[bool]) -> str:
    return f"{100 * sum(values) / len(values):.0f} %" if values else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--limit", type=int, default=None, help="use about this many lines")
    parser.add_argument("--misheard", action="store_true", help="list each misheard line")
    parser.add_argument("--turn-ends", action="store_true", help="measure turn ends instead")
    args = parser.parse_args()
    if args.turn_ends:
        for name in args.configs if args.configs != list(CONFIGS) else ["tiny.en"]:
            for noisy in (False, True):
                turn_ends(CONFIGS[name]["model"], noisy)
        return
    made = clips(args.limit)
    kinds = {kind: sum(c.kind == kind for c in made) for kind in sorted({c.kind for c in made})}
    print(f"{len(made)} clips ({kinds}); voices: {sorted({c.voice for c in made})}")
    print(
        "| config | WER | WER trade | names | digits | numbers taken | yes/no | p50 s | p95 s "
        "| load before→after |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.configs:
        score, before, after = run(name, CONFIGS[name], made)
        print(
            f"| {name} | {100 * score.errors / score.words:.1f} % "
            f"| {100 * score.trade_errors / max(1, score.trade_words):.1f} % "
            f"| {share(score.names)} | {share(score.digits)} | {share(score.numbers_taken)} "
            f"| {share(score.yes_no)} "
            f"| {percentile(score.seconds, 0.5):.2f} | {percentile(score.seconds, 0.95):.2f} "
            f"| {before:.1f}→{after:.1f} |",
            flush=True,
        )
        if args.misheard:
            for said, heard in score.misheard:
                print(f"    {said!r} → {heard!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
