"""How well, and how fast, the embedded ears hear our own callers: Whisper models and settings.

Every line of ``tests/data/caller_lines.yaml`` (names, street addresses, phone numbers said
several ways, trade words, yes/no answers) is voiced once, by one of espeak-ng at 140, 175 and
210 words a minute and Piper's bundled voice (when it loads), taking turns, through the phone
path (synthesized, μ-law 8 kHz, decoded), with the pre-roll and closing silence the endpointer
hands over. Each configuration (model, beam size, timestamps, Silero VAD filter, compute type)
then transcribes every clip with `WhisperTranscriber`, its filters included, and reports:

- WER: word error rate over all lines (and over the trade lines), after normalising both sides
  alike: lower case, no punctuation, every number as single digits ("twenty three", "23" and
  "two three" are all "2 3"; "oh" is 0; "double five" is "5 5");
- names: share of name lines where the whole name was heard;
- digits: share of number and address lines whose digits (all ten of a phone number, the
  house number) were heard in order;
- yes/no: share of yes/no lines heard word for word;
- latency p50/p95: wall-clock seconds of one `transcribe` call (model loaded beforehand);
- load: the 1-minute load average before and after the configuration (the machine is shared).

    .venv/bin/python bench/ears.py [--configs tiny.en base-b1 ...] [--limit N]

Bounded: 210 clips per configuration, about 1.5 minutes each for tiny.en and 4 for base on two
shared cores.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.turn_latency import percentile
from media_stream import EspeakSynthesizer, PiperSynthesizer, WhisperTranscriber
from media_stream.codec import SAMPLE_RATE, ulaw_decode

ROOT = Path(__file__).resolve().parent.parent
LINES = ROOT / "tests" / "data" / "caller_lines.yaml"
PRE_ROLL = 0.2  # what the endpointer keeps before an onset
CLOSING_SILENCE = 0.7  # the silence that ended the turn, still in the clip

CONFIGS: dict[str, dict[str, Any]] = {
    "tiny.en": {"model": "tiny.en"},
    "tiny.en-b5": {"model": "tiny.en", "beam_size": 5},
    "tiny.en-nots": {"model": "tiny.en", "without_timestamps": True},
    "tiny.en-novad": {"model": "tiny.en", "vad_filter": False},
    "tiny.en-f32": {"model": "tiny.en", "compute_type": "float32"},
    "base": {"model": "base"},
    "base-b5": {"model": "base", "beam_size": 5},
    "base-novad": {"model": "base", "vad_filter": False},
}

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEENS = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SAME = {"ok": "okay", "o'brien": "obrien", "yeah": "yeah", "alright": "all right"}


def normalise(text: str) -> list[str]:
    """Words for scoring: lower case, no punctuation, numbers as single digits."""
    text = text.lower().replace("-", " ").replace("'s", " is").replace("o'", "o")
    text = re.sub(r"(\d)", r" \1 ", text)
    raw = re.sub(r"[^a-z0-9' ]+", " ", text).split()
    words: list[str] = []
    index = 0
    while index < len(raw):
        word = _SAME.get(raw[index], raw[index])
        following = raw[index + 1] if index + 1 < len(raw) else ""
        if word == "double" and following in [*_UNITS, "oh"]:
            digit = "0" if following == "oh" else str(_UNITS.index(following))
            words += [digit, digit]
            index += 2
            continue
        if word in _TENS[2:]:
            tens = str(_TENS.index(word))
            if following in _UNITS[1:]:
                words += [tens, str(_UNITS.index(following))]
                index += 2
                continue
            words += [tens, "0"]
        elif word in _TEENS:
            words += ["1", str(_TEENS.index(word))]
        elif word in _UNITS:
            words.append(str(_UNITS.index(word)))
        elif word == "oh":
            words.append("0")
        else:
            words.append(word)
        index += 1
    return words


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            cost = 0 if ref_word == hyp_word else 1
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        previous = current
    return previous[-1]


def digits_of(words: list[str]) -> str:
    return "".join(w for w in words if w.isdigit())


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
    yes_no: list[bool] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    misheard: list[tuple[str, str]] = field(default_factory=list)

    def add(self, clip: Clip, heard: str, seconds: float) -> None:
        reference, hypothesis = normalise(clip.text), normalise(heard)
        errors = edit_distance(reference, hypothesis)
        self.errors += errors
        self.words += len(reference)
        self.seconds.append(seconds)
        if clip.kind == "trade":
            self.trade_errors += errors
            self.trade_words += len(reference)
        elif clip.kind == "name":
            key = " ".join(normalise(clip.key))
            self.names.append(f" {key} " in f" {' '.join(hypothesis)} ")
        elif clip.kind in ("number", "address"):
            self.digits.append(clip.key in digits_of(hypothesis))
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


def run(name: str, options: dict[str, Any], made: list[Clip]) -> tuple[Score, float, float]:
    transcriber = WhisperTranscriber(**options)
    transcriber.load()
    transcriber.transcribe(made[0].pcm, 0.0, PRE_ROLL)  # warm-up, not counted
    load_before = os.getloadavg()[0]
    score = Score()
    for clip in made:
        started = time.perf_counter()
        heard = transcriber.transcribe(clip.pcm, 0.0, PRE_ROLL)
        score.add(clip, heard.text, time.perf_counter() - started)
    return score, load_before, os.getloadavg()[0]


def share(values: list[bool]) -> str:
    return f"{100 * sum(values) / len(values):.0f} %" if values else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--limit", type=int, default=None, help="use about this many lines")
    parser.add_argument("--misheard", action="store_true", help="list each misheard line")
    args = parser.parse_args()
    made = clips(args.limit)
    kinds = {kind: sum(c.kind == kind for c in made) for kind in sorted({c.kind for c in made})}
    print(f"{len(made)} clips ({kinds}); voices: {sorted({c.voice for c in made})}")
    print(
        "| config | WER | WER trade | names | digits | yes/no | p50 s | p95 s | load before→after |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.configs:
        score, before, after = run(name, CONFIGS[name], made)
        print(
            f"| {name} | {100 * score.errors / score.words:.1f} % "
            f"| {100 * score.trade_errors / max(1, score.trade_words):.1f} % "
            f"| {share(score.names)} | {share(score.digits)} | {share(score.yes_no)} "
            f"| {percentile(score.seconds, 0.5):.2f} | {percentile(score.seconds, 0.95):.2f} "
            f"| {before:.1f}→{after:.1f} |",
            flush=True,
        )
        if args.misheard:
            for said, heard in score.misheard:
                print(f"    {said!r} → {heard!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
