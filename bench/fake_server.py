"""The application with fake engines at fixed latencies, served in a process of its own.

Benchmarks start it with `running_fake_server`, so the server's CPU, memory and event loop are
measured apart from the callers'. It runs the production app exactly as ``receptionist serve``
does (same uvicorn settings, same logging), with the transcriber, voice and agent swapped for
the fakes of ``bench/fake_providers.py``, and adds bench-only probes on the same event loop:

- ``GET /bench/loop-lag``: since the last read, how late a 10 ms timer fired (event-loop lag)
  and how long the garbage collector's pauses were;
- ``POST /bench/profile/start`` and ``POST /bench/profile/stop``: a cProfile of the event-loop
  thread in between (deterministic, so it slows the server down while it runs; use it for
  where the time goes, not for how much there is). A sampling profiler from a thread was
  tried: it only gets the GIL where the loop releases it (in numpy, in epoll), so it saw
  little else.

    .venv/bin/python bench/fake_server.py --port 8790 --database-url sqlite:///…/bench.db \
        --scenario fixtures/calls/consent-yes.yaml
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import logging
import pstats
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fake_providers import FakeLatencies, with_fake_engines
from bench.scoring import percentile
from call_simulator.scenarios import SayStep, load_scenario
from voice_agent.logging_setup import configure_logging
from voice_agent.records.businesses import import_businesses
from voice_agent.records.migrate import upgrade
from voice_agent.services import build_services
from voice_agent.settings import Settings
from voice_agent.web.app import create_app

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
BUSINESSES_FILE = ROOT / "fixtures" / "businesses.yaml"
LAG_INTERVAL = 0.010  # seconds between the loop-lag probe's timers
LAG_SAMPLES_KEPT = 100_000
OLDEST_GENERATION = 2
STARTUP_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 20.0


@dataclass(frozen=True)
class FakeServerOptions:
    """What the bench server runs with; the same values drive the benchmark's arithmetic."""

    port: int
    database_url: str
    scenario: Path
    latencies: FakeLatencies = field(default_factory=FakeLatencies)
    auth_token: str = "bench-auth-token"
    public_base_url: str = "https://receptionist.bench.example"

    def settings(self) -> Settings:
        return Settings(
            database_url=self.database_url,
            public_base_url=self.public_base_url,
            twilio_auth_token=SecretStr(self.auth_token),
            port=self.port,
            _env_file=None,  # type: ignore[call-arg]
        )

    def command(self) -> list[str]:
        latencies = self.latencies
        return [
            sys.executable,
            str(Path(__file__).resolve()),
            f"--port={self.port}",
            f"--database-url={self.database_url}",
            f"--scenario={self.scenario}",
            f"--auth-token={self.auth_token}",
            f"--public-base-url={self.public_base_url}",
            f"--endpointing-silence={latencies.endpointing_silence}",
            f"--transcription={latencies.transcription}",
            f"--agent={latencies.agent}",
            f"--first-byte={latencies.first_byte}",
            f"--stream-speed={latencies.stream_speed}",
            f"--chunk-seconds={latencies.chunk_seconds}",
        ]


@dataclass(frozen=True)
class RunningServer:
    """A started bench server: where to reach it and which process to measure."""

    url: str
    pid: int
    options: FakeServerOptions


@contextlib.contextmanager
def running_fake_server(options: FakeServerOptions, log: IO[str]) -> Iterator[RunningServer]:
    """Start the bench server in a child process (its output to ``log``); stop it afterwards."""
    process = subprocess.Popen(options.command(), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{options.port}"
    try:
        _wait_until_healthy(process, url)
        yield RunningServer(url, process.pid, options)
    finally:
        process.terminate()
        try:
            process.wait(SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the bench server exited with status {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the bench server did not answer at {url}")


class LoopProbe:
    """Event-loop lag (a timer every ``LAG_INTERVAL``, how late it fires) and GC pauses."""

    def __init__(self) -> None:
        self._lags: deque[float] = deque(maxlen=LAG_SAMPLES_KEPT)
        self._gc_pauses: deque[tuple[int, float]] = deque(maxlen=LAG_SAMPLES_KEPT)
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")
            gc.callbacks.append(self._on_gc)

    async def _run(self) -> None:
        while True:
            expected = time.monotonic() + LAG_INTERVAL
            await asyncio.sleep(LAG_INTERVAL)
            self._lags.append(time.monotonic() - expected)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self._gc_pauses.append((info["generation"], time.perf_counter() - self._gc_started))

    def read_and_reset(self) -> dict[str, float]:
        """Since the last read, in milliseconds: loop lag p50, p99, max; GC pauses."""
        lags, pauses = list(self._lags), list(self._gc_pauses)
        self._lags.clear()
        self._gc_pauses.clear()
        reading: dict[str, float] = {"samples": len(lags), "gc_collections": len(pauses)}
        if lags:
            reading |= {
                "p50_ms": statistics.median(lags) * 1000,
                "p99_ms": percentile(lags, 0.99) * 1000,
                "max_ms": max(lags) * 1000,
            }
        if pauses:
            oldest = [seconds for generation, seconds in pauses if generation == OLDEST_GENERATION]
            reading |= {
                "gc_max_ms": max(seconds for _generation, seconds in pauses) * 1000,
                "gc_total_ms": sum(seconds for _generation, seconds in pauses) * 1000,
                "gc_full_collections": len(oldest),
                "gc_full_max_ms": max(oldest, default=0.0) * 1000,
            }
        return reading


class LoopProfile:
    """A deterministic profile (cProfile) of the event-loop thread between start and stop."""

    def __init__(self) -> None:
        self._profile = cProfile.Profile()

    def start(self) -> None:
        self._profile.enable()  # profiles the calling thread: the event loop's

    def stop(self, top: int) -> dict[str, Any]:
        """The ``top`` functions by their own time, with their share of all profiled time."""
        self._profile.disable()
        stats = pstats.Stats(self._profile)
        table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
        total = sum(entry[2] for entry in table.values()) or 1.0
        ranked = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:top]
        return {
            "profiled_seconds": total,
            "own": [
                [_describe_code(path, line, name), own / total, calls, cumulative / total]
                for (path, line, name), (calls, _prim, own, cumulative, _callers) in ranked
            ],
        }


def _describe_code(path: str, line: int, name: str) -> str:
    where = Path(path)
    return f"{where.parent.name}/{where.name}:{line} {name}"


def add_bench_routes(app: FastAPI) -> None:
    """The probes, on the app's own event loop (started by the first request)."""
    probe = LoopProbe()
    profiles: dict[str, LoopProfile] = {}

    @app.get("/bench/loop-lag")
    async def loop_lag() -> dict[str, float]:
        probe.ensure_running()
        return probe.read_and_reset()

    @app.post("/bench/profile/start")
    async def start_profile() -> dict[str, str]:
        profile = profiles.setdefault("current", LoopProfile())
        profile.start()
        return {"status": "profiling"}

    @app.post("/bench/profile/stop")
    async def stop_profile(top: int = 30) -> dict[str, Any]:
        profile = profiles.pop("current", None)
        return profile.stop(top) if profile is not None else {"own": []}


def _parser() -> argparse.ArgumentParser:
    defaults = FakeLatencies()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--scenario", type=Path, required=True, help="its lines are transcripts")
    parser.add_argument("--auth-token", default="bench-auth-token")
    parser.add_argument("--public-base-url", default="https://receptionist.bench.example")
    for name in ("endpointing_silence", "transcription", "agent", "first_byte"):
        option = f"--{name.replace('_', '-')}"
        parser.add_argument(option, type=float, default=getattr(defaults, name))
    parser.add_argument("--stream-speed", type=float, default=defaults.stream_speed)
    parser.add_argument("--chunk-seconds", type=float, default=defaults.chunk_seconds)
    return parser


def _options(args: argparse.Namespace) -> FakeServerOptions:
    latencies = FakeLatencies(
        endpointing_silence=args.endpointing_silence,
        transcription=args.transcription,
        agent=args.agent,
        first_byte=args.first_byte,
        stream_speed=args.stream_speed,
        chunk_seconds=args.chunk_seconds,
    )
    return FakeServerOptions(
        port=args.port,
        database_url=args.database_url,
        scenario=args.scenario,
        latencies=latencies,
        auth_token=args.auth_token,
        public_base_url=args.public_base_url,
    )


def serve(options: FakeServerOptions) -> None:
    """Migrate, import the demo businesses, and serve the app with fakes until terminated."""
    settings = options.settings()
    upgrade(settings.database_url)
    services = build_services(settings)
    with services.engine.begin() as conn:
        import_businesses(conn, BUSINESSES_FILE)
    scenario = load_scenario(options.scenario)
    transcripts = [step.text for step in scenario.steps if isinstance(step, SayStep)]
    app = create_app(with_fake_engines(services, options.latencies, transcripts))
    add_bench_routes(app)
    logger.info("bench server with fake engines: %s", options.latencies)
    uvicorn.run(app, host="127.0.0.1", port=options.port, log_level="info", ws_max_size=65536)


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    serve(_options(_parser().parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
