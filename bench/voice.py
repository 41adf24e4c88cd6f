"""The embedded voice before and after issue #13, measured in one run on this machine.

*Before* is where the embedded engines started: espeak-ng speaks for the assistant, Whisper
tiny.en encodes its whole 30 s window, and a fixed 0.7 s of silence ends every caller turn.
*After* is today's defaults: the Piper voice, the short encoder window, and turn ends decided
by the caller's words. Each part measures both on the same inputs, then one table sets them
beside the issue's goals:

- **the assistant, heard** (`bench.assistant_voice`): word error rate of our own prompts and
  consent script through the phone path, as the embedded Whisper hears them, and time to
  first audio;
- **the caller, heard** (`bench.ears`): the 210 caller lines of ``tests/data/caller_lines.yaml``
  voiced by espeak-ng at three speeds and by Piper: word error rate (per voice too), names,
  digits, yes/no, and the time one transcription takes;
- **turn ends** (`bench.ears`): false cut-offs on the answers with pauses inside them, and how
  soon a finished answer is decided;
- **turns through the server** (`bench.turn_latency`): the five scenario calls in real time
  through the real server and websocket: the caller's last word → our first audio, p50/p95,
  and the word error rate of the callers' lines.

    .venv/bin/python bench/voice.py [--parts assistant callers turn-ends calls] [--lines N]

Bounded: about 25 minutes on two cores (the calls are real time: about 8 minutes each way).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import assistant_voice, ears, turn_latency
from bench.scoring import percentile, word_errors
from media_stream import EspeakSynthesizer, PiperSynthesizer, WhisperTranscriber
from voice_agent.cli.simulate import ScenarioOutcome
from voice_agent.records.businesses import load_businesses
from voice_agent.services import Services
from voice_agent.settings import SynthesizerChoice, TurnEndChoice

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("assistant", "callers", "turn-ends", "calls")
BEFORE_WHISPER: dict[str, Any] = {
    "model": "tiny.en",
    "full_window": True,
    "turn_end": False,
    "reread_numbers": False,
}
AFTER_WHISPER: dict[str, Any] = {"model": "tiny.en"}


@dataclass(frozen=True)
class Row:
    """One line of the summary: a measure, before, after, and the goal (if the issue set one)."""

    measure: str
    before: str
    after: str
    goal: str = ""


def _rate(edits: int, words: int) -> str:
    return f"{100 * edits / max(words, 1):.1f} %"


def _ms(values: Sequence[float]) -> str:
    if not values:
        return "–"
    return f"{statistics.median(values):,.0f} / {percentile(list(values), 0.95):,.0f} ms"


def _seconds(values: Sequence[float]) -> str:
    return _ms([1000 * value for value in values])


def assistant_rows() -> list[Row]:
    said = assistant_voice.prompts(load_businesses(ROOT / "fixtures" / "businesses.yaml"))
    listener = WhisperTranscriber()
    listener.load()
    before = assistant_voice.measure(EspeakSynthesizer(), said, listener, repeats=1)
    after = assistant_voice.measure(PiperSynthesizer(), said, listener, repeats=1)

    def errors(figures: assistant_voice.VoiceFigures, kind: str | None) -> str:
        kept = [e for k, e in figures.errors.items() if kind in (None, k)]
        return _rate(sum(e for e, _ in kept), sum(w for _, w in kept))

    return [
        Row("our prompts heard: WER", errors(before, None), errors(after, None), "≤ 10 %"),
        Row(
            "  … the consent script",
            errors(before, "consent script"),
            errors(after, "consent script"),
        ),
        Row("  … the greeting", errors(before, "greeting"), errors(after, "greeting")),
        Row(
            "time to first audio p50 / p95",
            _seconds(before.first_audio),
            _seconds(after.first_audio),
        ),
    ]


def caller_rows(lines: int | None) -> list[Row]:
    made = ears.clips(lines)
    before, _, _ = ears.run("before", {**BEFORE_WHISPER, "asked": False}, made)
    after, _, _ = ears.run("after", AFTER_WHISPER, made)
    rows = [
        Row(
            f"caller lines heard ({len(made)}): WER",
            _rate(before.errors, before.words),
            _rate(after.errors, after.words),
            f"≤ {_rate(before.errors, 2 * before.words)} (half)",
        )
    ]
    for voice in sorted(before.by_voice):
        rows.append(
            Row(
                f"  … voiced by {voice}",
                _rate(*before.by_voice[voice]),
                _rate(*after.by_voice[voice]),
            )
        )
    rows += [
        Row("  names heard whole", ears.share(before.names), ears.share(after.names)),
        Row(
            "  phone and house digits in order", ears.share(before.digits), ears.share(after.digits)
        ),
        Row(
            "  phone numbers taken right",
            ears.share(before.numbers_taken),
            ears.share(after.numbers_taken),
        ),
        Row("  yes/no word for word", ears.share(before.yes_no), ears.share(after.yes_no)),
        Row("one transcription p50 / p95", _seconds(before.seconds), _seconds(after.seconds)),
    ]
    return rows


def turn_end_rows() -> list[Row]:
    transcriber = ears.TimedTranscriber()
    transcriber.load()
    turns = ears.voiced_turns(noisy=False)
    before = ears.measure_turn_ends(
        transcriber, turns, turn_end=False, voice_activity=False, asked=False
    )
    after = ears.measure_turn_ends(transcriber, turns, turn_end=True, voice_activity=False)
    return [
        Row(
            f"false cut-offs ({before.paused} answers with pauses inside)",
            str(before.cut_offs),
            str(after.cut_offs),
            "not more",
        ),
        Row(
            "finished answer: end decided p50 / p95",
            _seconds(before.decided),
            _seconds(after.decided),
        ),
        Row(
            "finished answer: transcript ready p50 / p95",
            _seconds(before.heard),
            _seconds(after.heard),
        ),
    ]


def _whole_window(services: Services) -> Services:
    whisper = WhisperTranscriber(**BEFORE_WHISPER)
    return dataclasses.replace(services, transcriber=whisper, embedded_transcriber=whisper)


def call_rows() -> list[Row]:
    placement = turn_latency.Placement(turn_latency.scenario_paths(turn_latency.DEFAULT_CALLS))
    before_settings = {"synthesizer": SynthesizerChoice.ESPEAK, "turn_end": TurnEndChoice.SILENCE}
    placed: dict[str, list[ScenarioOutcome]] = {
        "before": turn_latency.place_calls(placement, before_settings, _whole_window),
        "after": turn_latency.place_calls(placement),
    }
    totals, errors, kept = {}, {}, {}
    for name, outcomes in placed.items():
        calls = [o.call for o in outcomes if o.call is not None]
        totals[name] = [t.total_ms for c in calls for t in c.turn_metrics if t.total_ms is not None]
        scored = [
            word_errors(said, heard)
            for o in outcomes
            if o.call
            for said, heard in turn_latency.caller_lines(o)
        ]
        errors[name] = _rate(sum(e for e, _ in scored), sum(w for _, w in scored))
        kept[name] = f"{sum(o.ok for o in outcomes)} of {len(outcomes)}"
    return [
        Row(
            "turn latency p50 / p95 (5 calls, real time)",
            _ms(totals["before"]),
            _ms(totals["after"]),
            "≤ 800 / ≤ 1,200 ms",
        ),
        Row("  calls that went as scripted", kept["before"], kept["after"]),
        Row("  the callers' lines heard: WER", errors["before"], errors["after"]),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--lines", type=int, default=None, help="use about this many caller lines")
    arguments = parser.parse_args(argv)
    measures: dict[str, Callable[[], list[Row]]] = {
        "assistant": assistant_rows,
        "callers": lambda: caller_rows(arguments.lines),
        "turn-ends": turn_end_rows,
        "calls": call_rows,
    }
    rows: list[Row] = []
    for part in arguments.parts:
        print(f"measuring {part} …", file=sys.stderr, flush=True)
        rows += measures[part]()
    print("| measure | before | after | goal |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row.measure} | {row.before} | {row.after} | {row.goal} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
