"""Per-turn latency and word error rate of the embedded voice pipeline, through the real server.

Places the scenario calls in real time (speed 1, as on a phone line) against the application
served on a loopback port, then reads the per-turn metrics each call stored: caller's last
frame of speech → endpointing → transcription → agent → synthesis → our first frame out.
Also scores the offline transcription of every caller line (word error rate).

``--at-once 1 2 4 8`` measures how many calls the embedded engines carry at once instead: for
each number, that many ``consent-yes`` calls are placed together (started a second apart, as
calls arrive), and the turn latency of all their turns is reported, p50/p95 against the 1.5 s
that a caller starts to notice.

    .venv/bin/python bench/turn_latency.py [--calls consent-yes consent-no …] [--speed 1]
    .venv/bin/python bench/turn_latency.py --at-once 1 2 4 6 8 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scoring import percentile, word_errors
from voice_agent.cli.simulate import ScenarioOutcome, run_scenarios
from voice_agent.records.businesses import import_businesses
from voice_agent.records.calls import CallRecord
from voice_agent.records.migrate import upgrade
from voice_agent.services import Services, build_services
from voice_agent.settings import Settings
from voice_agent.web.local_server import free_port, serving

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CALLS = ("consent-yes", "consent-no", "unclear-then-yes", "keypad-on-reask", "talk-over")
STAGES = ("endpointing", "transcription", "agent", "synthesis", "total")


def caller_lines(outcome: ScenarioOutcome) -> list[tuple[str, str]]:
    """(what the caller said, what we heard) for each spoken line answered in turn."""
    assert outcome.call is not None
    heard = [t.text for t in outcome.call.turns if t.speaker == "caller" and t.kind == "speech"]
    return list(zip(outcome.said, heard, strict=False))


AT_ONCE_CALL = "consent-yes"
STAGGER_SECONDS = 1.0
NOTICEABLE_MS = 1500


async def calls_at_once(
    settings: Settings, server_url: str, calls: int, speed: float
) -> list[ScenarioOutcome]:
    """``calls`` copies of one scenario call, started a second apart, all live together."""
    path = ROOT / "fixtures" / "calls" / f"{AT_ONCE_CALL}.yaml"

    async def one(index: int) -> list[ScenarioOutcome]:
        await asyncio.sleep(index * STAGGER_SECONDS)
        return await run_scenarios(settings, [path], server_url, speed)

    placed = await asyncio.gather(*(one(index) for index in range(calls)))
    return [outcome for outcomes in placed for outcome in outcomes]


def report_at_once(levels: dict[int, list[ScenarioOutcome]], loads: dict[int, float]) -> None:
    print("| calls at once | turns | turn latency p50 ms | p95 ms | load |")
    print("|---|---|---|---|---|")
    carried, exceeded = 0, False  # the most calls before the first level past the mark
    for calls, outcomes in levels.items():
        totals = [
            turn.total_ms
            for outcome in outcomes
            if outcome.call is not None
            for turn in outcome.call.turn_metrics
            if turn.total_ms is not None
        ]
        if not totals:
            print(f"| {calls} | 0 | – | – | {loads[calls]:.1f} |")
            exceeded = True
            continue
        p95 = percentile(totals, 0.95)
        exceeded = exceeded or p95 > NOTICEABLE_MS
        carried = carried if exceeded else calls
        print(
            f"| {calls} | {len(totals)} | {statistics.median(totals):.0f} | {p95:.0f} "
            f"| {loads[calls]:.1f} |"
        )
    print(f"\nmost calls at once with turn latency p95 ≤ {NOTICEABLE_MS} ms: {carried}")
    print("(the copies share one caller number, so only their timing is compared)")


@dataclass(frozen=True)
class Placement:
    """What to place: scenario calls in turn, or ``at_once`` copies of one live together."""

    paths: Sequence[Path] = ()
    at_once: int = 0
    speed: float = 1.0


def place_calls(
    placement: Placement,
    overrides: Mapping[str, object] | None = None,
    adjust: Callable[[Services], Services] = lambda services: services,
) -> list[ScenarioOutcome]:
    """Serve the application (embedded engines, a fresh SQLite database, ``overrides`` over the
    default settings, ``adjust`` applied to its services) on a loopback port and place the
    calls against it."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database_url=f"sqlite:///{folder}/bench.db",
            twilio_auth_token=SecretStr("bench-token"),
            port=free_port(),
            _env_file=None,  # type: ignore[call-arg]
        ).model_copy(update=overrides)
        upgrade(settings.database_url)
        services = adjust(build_services(settings))
        with services.engine.begin() as conn:
            import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
        with serving(services) as server_url:
            if placement.at_once:
                placed = calls_at_once(settings, server_url, placement.at_once, placement.speed)
            else:
                placed = run_scenarios(settings, list(placement.paths), server_url, placement.speed)
            outcomes = asyncio.run(placed)
        services.engine.dispose()
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", nargs="+", default=list(DEFAULT_CALLS))
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--at-once", nargs="+", type=int, metavar="N", help="calls at once")
    args = parser.parse_args()
    if args.at_once:
        levels: dict[int, list[ScenarioOutcome]] = {}
        loads: dict[int, float] = {}
        for calls in args.at_once:
            levels[calls] = place_calls(Placement(at_once=calls, speed=args.speed))
            loads[calls] = os.getloadavg()[0]
        report_at_once(levels, loads)
        return 0
    outcomes = place_calls(Placement(scenario_paths(args.calls), speed=args.speed))
    report(outcomes)
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def scenario_paths(names: Sequence[str]) -> list[Path]:
    return [ROOT / "fixtures" / "calls" / f"{name}.yaml" for name in names]


def report(outcomes: list[ScenarioOutcome]) -> None:
    calls: list[CallRecord] = [o.call for o in outcomes if o.call is not None]
    turns = [turn for call in calls for turn in call.turn_metrics]
    print(f"{len(calls)} calls, {len(turns)} caller turns (embedded engines, real time)\n")
    print(f"{'stage':<14}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for stage in STAGES:
        values = [v for turn in turns if (v := getattr(turn, f"{stage}_ms")) is not None]
        if values:
            print(
                f"{stage:<14}{statistics.median(values):>10.0f}"
                f"{percentile(values, 0.95):>10.0f}{max(values):>10.0f}"
            )
    errors = words = 0
    print("\nword error rate per caller line (the caller's voice → μ-law → faster-whisper):")
    for outcome in outcomes:
        if outcome.call is None:
            continue
        for said, heard in caller_lines(outcome):
            line_errors, line_words = word_errors(said, heard)
            errors, words = errors + line_errors, words + line_words
            print(f"  {line_errors:>2}/{line_words:<2} {said!r} → {heard!r}")
    if words:
        print(f"\nword error rate: {errors / words:.1%} over {words} words")
    for outcome in outcomes:
        for problem in outcome.problems:
            print(f"PROBLEM in {outcome.name}: {problem}")


if __name__ == "__main__":
    raise SystemExit(main())
