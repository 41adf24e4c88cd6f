"""The time our own code adds to a caller's turn, with every engine at a fixed, known latency.

The application runs in a process of its own (``bench/fake_server.py``) with fake engines: the
real endpointer on the caller's audio, then a canned transcript after a fixed delay, the
scripted interviewer after a fixed delay, and pre-rendered speech after a fixed first-byte
delay. Simulated Twilio calls (``call_simulator.simulator``, real time, each from a caller number
of its own) run in this process. For each caller turn the server stores its stages; what is
left of each beyond the fixed latency is ours:

    overhead = total − (endpointing silence − one frame + transcription + agent + first byte)

The endpointer decides on the frame that completes the silence, which starts one 20 ms frame
before the silence ends, so the inherent wait after the caller's last voiced frame is the
silence minus one frame. Target: overhead p95 ≤ 15 ms (ARCHITECTURE.md, "Time budgets").

    .venv/bin/python bench/turn_overhead.py [--calls 10] [--stagger 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fake_providers import FakeLatencies
from bench.fake_server import FakeServerOptions, running_fake_server
from bench.scoring import percentile
from media_stream import FRAME_SECONDS
from voice_agent.cli.simulate import ScenarioOutcome, run_scenarios
from voice_agent.records.calls import TurnMetrics
from voice_agent.web.local_server import free_port

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIO = ROOT / "fixtures" / "calls" / "consent-yes.yaml"
TARGET_P95_MS = 15.0
FIRST_CALLER_LINE = 2000  # callers are +1 512 555 2000, 2001, …
FRAME_MS = FRAME_SECONDS * 1000
# The bridge looks up the arrival of the caller's speech end by stream time; when the float
# end time lies a hair after its frame's timestamp it finds the next frame, one frame late.
LATE_ANCHOR_MS = FRAME_MS / 2


@dataclass(frozen=True)
class TurnOverhead:
    """One turn's time beyond the fixed latencies, in milliseconds, stage by stage."""

    endpointing: float
    transcription: float
    agent: float
    synthesis: float
    anchored_late: bool  # the speech end was looked up one frame late (corrected here)

    @property
    def total(self) -> float:
        return self.endpointing + self.transcription + self.agent + self.synthesis


def fixed_stage_ms(latencies: FakeLatencies) -> dict[str, float]:
    """What each stage takes by construction, in milliseconds."""
    return {
        "endpointing": latencies.endpointing_silence * 1000 - FRAME_MS,
        "transcription": latencies.transcription * 1000,
        "agent": latencies.agent * 1000,
        "synthesis": latencies.first_byte * 1000,
    }


def turn_overhead(turn: TurnMetrics, latencies: FakeLatencies) -> TurnOverhead | None:
    """The turn's overhead, or None when a stage could not be timed."""
    stages = (turn.endpointing_ms, turn.transcription_ms, turn.agent_ms, turn.synthesis_ms)
    if any(stage is None for stage in stages):
        return None
    endpointing, transcription, agent, synthesis = (float(s or 0.0) for s in stages)
    fixed = fixed_stage_ms(latencies)
    endpointing -= fixed["endpointing"]
    anchored_late = endpointing < -LATE_ANCHOR_MS
    return TurnOverhead(
        endpointing=endpointing + FRAME_MS if anchored_late else endpointing,
        transcription=transcription - fixed["transcription"],
        agent=agent - fixed["agent"],
        synthesis=synthesis - fixed["synthesis"],
        anchored_late=anchored_late,
    )


def caller_copies(scenario: Path, count: int, folder: Path) -> list[Path]:
    """``count`` copies of the scenario file, each from a caller number of its own.

    (The same number calling again would find its texts already sent and be texted less.)
    """
    document = yaml.safe_load(scenario.read_text(encoding="utf-8"))
    copies = []
    for index in range(count):
        document["caller"] = f"+1512555{FIRST_CALLER_LINE + index:04d}"
        copy = folder / f"call-{index + 1}" / scenario.name  # the name must match the file's
        copy.parent.mkdir()
        copy.write_text(yaml.safe_dump(document), encoding="utf-8")
        copies.append(copy)
    return copies


async def place_calls(
    options: FakeServerOptions, server_url: str, scenarios: list[Path], stagger: float
) -> list[ScenarioOutcome]:
    """One simulated call per scenario file, started ``stagger`` seconds apart."""

    async def one_call(index: int, scenario: Path) -> list[ScenarioOutcome]:
        await asyncio.sleep(index * stagger)
        return await run_scenarios(options.settings(), [scenario], server_url, 1.0)

    batches = await asyncio.gather(*(one_call(i, path) for i, path in enumerate(scenarios)))
    return [outcome for batch in batches for outcome in batch]


def report(outcomes: list[ScenarioOutcome], latencies: FakeLatencies) -> bool:
    """Print the table; whether the target was met and every call went as scripted."""
    turns = [t for o in outcomes if o.call is not None for t in o.call.turn_metrics]
    overheads = [o for t in turns if (o := turn_overhead(t, latencies)) is not None]
    fixed = fixed_stage_ms(latencies)
    print(
        f"{len(outcomes)} calls, {len(turns)} caller turns, {len(overheads)} fully timed; "
        f"fixed latencies: endpointing silence {latencies.endpointing_silence * 1000:.0f} ms, "
        f"transcription {fixed['transcription']:.0f} ms, agent {fixed['agent']:.0f} ms, "
        f"first byte {fixed['synthesis']:.0f} ms\n"
    )
    print(f"{'our overhead':<16}{'fixed ms':>10}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for stage, fixed_ms in [*fixed.items(), ("total", sum(fixed.values()))]:
        values = [getattr(overhead, stage) for overhead in overheads]
        if values:
            print(
                f"{stage:<16}{fixed_ms:>10.0f}{statistics.median(values):>10.1f}"
                f"{percentile(values, 0.95):>10.1f}{max(values):>10.1f}"
            )
    late = sum(overhead.anchored_late for overhead in overheads)
    print(f"\n{late} turn(s) had their speech end looked up one frame late; corrected by 20 ms")
    for outcome in outcomes:
        for problem in outcome.problems:
            print(f"PROBLEM in {outcome.name}: {problem}")
    p95 = percentile([o.total for o in overheads], 0.95) if overheads else float("inf")
    verdict = "meets" if p95 <= TARGET_P95_MS else "MISSES"
    print(f"total overhead p95 {p95:.1f} ms {verdict} the target of {TARGET_P95_MS:.0f} ms")
    return p95 <= TARGET_P95_MS and all(outcome.ok for outcome in outcomes)


def main() -> int:
    defaults = FakeLatencies()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10, choices=range(1, 1000), metavar="1-999")
    parser.add_argument("--stagger", type=float, default=1.0, help="seconds between call starts")
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    parser.add_argument("--transcription", type=float, default=defaults.transcription)
    parser.add_argument("--agent", type=float, default=defaults.agent)
    parser.add_argument("--first-byte", type=float, default=defaults.first_byte)
    parser.add_argument("--server-log", type=Path, help="keep the server's log here")
    args = parser.parse_args()
    latencies = FakeLatencies(
        transcription=args.transcription, agent=args.agent, first_byte=args.first_byte
    )
    with tempfile.TemporaryDirectory() as folder:
        options = FakeServerOptions(
            port=free_port(),
            database_url=f"sqlite:///{folder}/bench.db",
            scenario=args.scenario.resolve(),
            latencies=latencies,
        )
        log_path = args.server_log or Path(folder) / "server.log"
        with log_path.open("w") as log, running_fake_server(options, log) as server:
            scenarios = caller_copies(options.scenario, args.calls, Path(folder))
            outcomes = asyncio.run(place_calls(options, server.url, scenarios, args.stagger))
        ok = report(outcomes, latencies)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
