"""N simultaneous calls on one server process: playout gaps, event-loop lag, CPU and memory.

For each N the application runs in a fresh process of its own (``bench/fake_server.py``, fake
engines at fixed latencies) and N emulated Twilio media streams run in separate caller
processes (``--calls-per-process`` each). A caller opens the signed websocket directly (the
webhooks are not part of the media path), sends ``connected`` and ``start``, then a 20 ms μ-law
frame every 20 ms in real time (silence, or a scenario line), and plays what the server sends
the way Twilio does: audio in real time from when it arrives, a ``mark`` echoed once the audio
before it has played. The calls connect over ``--ramp`` seconds and keep that phase.

Each call's timeline, from its own connection: the greeting is streamed and played; the caller
stays silent (idle) until ``--speak-after``; then it takes turns (a line, then waits for the
reply to play out and 0.6 s of quiet) until it hangs up ``--talk`` seconds later.

Measured, per N:

- playout lateness: for every chunk of a reply after its first, how long after the audio before
  it finished playing it arrived (negative: how early). A positive lateness is a gap the caller
  hears. A reply begins with the first chunk after the caller has spoken (or the first of the
  call). Target: p99 ≤ 20 ms;
- the server's event-loop lag (a 10 ms timer on its loop), idle and during speech: how long
  any inbound frame or outbound chunk can wait to be handled;
- the per-turn overhead the server stored for these calls (as ``bench/turn_overhead.py``);
- server CPU and memory (``/proc/<pid>/stat`` and ``status``): before the calls, with N idle
  calls, while talking; CPU per inbound frame (steadier than timings on a shared machine);
  memory per idle call = (RSS idle − RSS before) / N. Target ≤ 2 MiB;
- the callers' own CPU and how late their 20 ms frame timer fired, to show they kept up.

    .venv/bin/python bench/concurrency.py [--calls 10 50 100 200 300] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import multiprocessing
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

import httpx
import uvloop
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fake_providers import FakeLatencies
from bench.fake_server import FakeServerOptions, RunningServer, running_fake_server
from bench.scoring import percentile
from bench.turn_overhead import TurnOverhead, turn_overhead
from call_simulator.caller_voices import PIPER, caller_voice
from call_simulator.scenarios import SayStep, Scenario, load_scenario
from call_simulator.simulator import new_sid
from media_stream import (
    FRAME_BYTES,
    FRAME_SECONDS,
    SAMPLE_RATE,
    SILENCE_BYTE,
    Connected,
    Mark,
    Media,
    Start,
    Stop,
    encode_inbound,
    frames,
    parse_inbound,
)
from media_stream.protocol import TWILIO_MEDIA_FORMAT
from voice_agent.records.businesses import load_businesses
from voice_agent.records.calls import list_calls
from voice_agent.records.database import make_engine
from voice_agent.web.local_server import free_port
from voice_agent.web.stream_credentials import StreamCredentials

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIO = ROOT / "fixtures" / "calls" / "consent-yes.yaml"
SEND_SLOTS = 4  # each caller process sends its frames in this many phases per 20 ms
QUIET_SECONDS = 0.6  # assistant silence before the caller takes its turn
CALLER_START_TIMEOUT = 120.0  # seconds for a caller process to import and report ready
START_DELAY = 1.0  # seconds from handing the plan to the ready callers to the first call
BASELINE_SECONDS = 2.0
REPORT_TIMEOUT = 30.0  # seconds after the last hang-up for the callers to report
STORE_TIMEOUT = 60.0  # seconds to wait for the server to store the calls
LATENESS_TARGET_MS = 20.0
IDLE_MEMORY_TARGET_MIB = 2.0
OVERHEAD_TARGET_MS = 15.0
MIB = 1024 * 1024
OVERHEAD_STAGES = ("endpointing", "transcription", "agent", "synthesis")
_MEDIA = (
    '{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d",'
    '"timestamp":"%d","payload":"%s"},"streamSid":"%s"}'
)
_SILENT_FRAME = base64.b64encode(bytes([SILENCE_BYTE]) * FRAME_BYTES).decode("ascii")


# --- the plan every caller process follows ---------------------------------------------------


@dataclass(frozen=True)
class CallerPlan:
    """What the emulated callers of one run do; times are ``time.monotonic()`` (system-wide)."""

    stream_url: str
    signature: str
    account_sid: str
    parameters: dict[str, str]  # the <Stream>'s custom parameters: business and caller
    credentials: StreamCredentials  # what the voice webhook would issue each call
    lines: tuple[bytes, ...]  # the caller's lines, μ-law
    calls: int
    start_at: float
    ramp: float
    speak_after: float  # seconds after its connection a call says its first line
    talk: float  # seconds after that it hangs up

    def connect_at(self, index: int) -> float:
        return self.start_at + self.ramp * index / self.calls

    @property
    def idle_window(self) -> tuple[float, float]:
        """Every call connected, greeted (its greeting sent) and silent."""
        return self.start_at + self.ramp + self.speak_after / 2, self.start_at + self.speak_after

    @property
    def talk_window(self) -> tuple[float, float]:
        """Every call taking turns."""
        talk_from = self.start_at + self.ramp + self.speak_after
        return talk_from, self.start_at + self.speak_after + self.talk

    @property
    def ends_at(self) -> float:
        return self.start_at + self.ramp + self.speak_after + self.talk


@dataclass
class CallerReport:
    """What one caller process saw (times in seconds)."""

    lateness: list[float] = field(default_factory=list)
    replies: int = 0
    lines_spoken: int = 0
    lines_answered: int = 0
    failed_calls: int = 0
    errors: list[str] = field(default_factory=list)
    tick_lag: list[float] = field(default_factory=list)
    talk_cpu_seconds: float = 0.0

    def merge(self, other: CallerReport) -> None:
        self.lateness += other.lateness
        self.replies += other.replies
        self.lines_spoken += other.lines_spoken
        self.lines_answered += other.lines_answered
        self.failed_calls += other.failed_calls
        self.errors += other.errors
        self.tick_lag += other.tick_lag
        self.talk_cpu_seconds += other.talk_cpu_seconds


# --- one emulated Twilio media stream --------------------------------------------------------


def media_message(sequence: int, chunk: int, payload_base64: str, stream_sid: str) -> str:
    """A Twilio ``media`` message built from a template (cheap enough for thousands a second)."""
    timestamp_ms = (chunk - 1) * FRAME_BYTES * 1000 // SAMPLE_RATE
    return _MEDIA % (sequence, chunk, timestamp_ms, payload_base64, stream_sid)


def check_media_template() -> None:
    """The template must say exactly what ``encode_inbound`` would (fail fast if not)."""
    payload = bytes(range(FRAME_BYTES))
    expected = Media(7, "MZ" + "0" * 32, "inbound", 3, 40, payload)
    built = media_message(7, 3, base64.b64encode(payload).decode(), expected.stream_sid)
    if parse_inbound(built) != expected:
        raise RuntimeError("the media template drifted from the Media Streams protocol")


def decoded_length(payload_base64: str) -> int:
    return len(payload_base64) * 3 // 4 - payload_base64[-2:].count("=")


class EmulatedCall:
    """Twilio's side of one media stream: frames out, playout and marks in, turns taken."""

    def __init__(
        self, plan: CallerPlan, index: int, lines: list[list[str]], report: CallerReport
    ) -> None:
        self._plan = plan
        self._lines = lines
        self._report = report
        self.index = index
        self.stream_sid = new_sid("MZ")
        self._call_sid = new_sid("CA")
        self._websocket: ClientConnection | None = None
        self.live = False
        self._sequence = 0
        self._chunk = 0
        self._mouth: deque[str] = deque()
        self._line_sent: asyncio.Future[None] | None = None
        self._play_end = -math.inf
        self._spoke = True  # the first audio of the call starts a reply
        self._marks: deque[tuple[float, str]] = deque()

    async def run(self) -> None:
        connect_at = self._plan.connect_at(self.index)
        await _sleep_until(connect_at)
        try:
            self._websocket = await connect(
                self._plan.stream_url,
                additional_headers={"x-twilio-signature": self._plan.signature},
                compression=None,
                open_timeout=30,
            )
        except (OSError, InvalidHandshake, TimeoutError) as error:
            self._report.failed_calls += 1
            self._report.errors.append(f"call {self.index}: cannot connect: {error!r}")
            return
        async with self._websocket as websocket:
            await websocket.send(encode_inbound(Connected(protocol="Call", version="1.0.0")))
            await websocket.send(encode_inbound(self._start()))
            self.live = True
            receiver = asyncio.create_task(self._receive(websocket))
            try:
                await self._take_turns(connect_at)
                await self._hang_up(websocket)
            finally:
                self.live = False
                receiver.cancel()
                await asyncio.gather(receiver, return_exceptions=True)

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def _credential(self) -> str:
        """The call's stream credential, as the voice webhook puts it in the TwiML (the bench
        skips the webhooks, so it issues the credential with the deployment's key itself)."""
        parameters = self._plan.parameters
        return self._plan.credentials.issue(
            self._call_sid, parameters["business"], parameters["caller"], datetime.now(UTC)
        )

    def _start(self) -> Start:
        return Start(
            sequence_number=self._next_sequence(),
            stream_sid=self.stream_sid,
            account_sid=self._plan.account_sid,
            call_sid=self._call_sid,
            tracks=("inbound",),
            custom_parameters={**self._plan.parameters, "credential": self._credential()},
            media_format=TWILIO_MEDIA_FORMAT,
        )

    async def send_frame(self) -> None:
        """This call's next 20 ms frame, then the marks whose audio has played."""
        assert self._websocket is not None
        self._chunk += 1
        payload = self._mouth.popleft() if self._mouth else _SILENT_FRAME
        message = media_message(self._next_sequence(), self._chunk, payload, self.stream_sid)
        await self._websocket.send(message)
        if not self._mouth and self._line_sent is not None:
            self._line_sent.set_result(None)
            self._line_sent = None
        now = time.monotonic()
        while self._marks and self._marks[0][0] <= now:
            _due, name = self._marks.popleft()
            echo = Mark(self._next_sequence(), self.stream_sid, name)
            await self._websocket.send(encode_inbound(echo))

    async def _receive(self, websocket: ClientConnection) -> None:
        try:
            async for raw in websocket:
                self._heard(json.loads(raw), time.monotonic())
        except ConnectionClosed:
            pass
        finally:
            self.stop_talking()

    def stop_talking(self) -> None:
        """The stream is gone: no more frames, and a line being said ends here."""
        self.live = False
        if self._line_sent is not None and not self._line_sent.done():
            self._line_sent.set_result(None)
        self._line_sent = None

    def _heard(self, message: dict[str, Any], now: float) -> None:
        event = message.get("event")
        if event == "media":
            self._play(decoded_length(message["media"]["payload"]) / SAMPLE_RATE, now)
        elif event == "mark":
            self._marks.append((max(now, self._play_end), message["mark"]["name"]))
        elif event == "clear":
            self._play_end = min(self._play_end, now)
            self._marks = deque((now, name) for _due, name in self._marks)

    def _play(self, seconds: float, now: float) -> None:
        if self._spoke:
            self._spoke = False
            self._report.replies += 1
        else:
            self._report.lateness.append(now - self._play_end)
        self._play_end = max(now, self._play_end) + seconds

    async def _take_turns(self, connect_at: float) -> None:
        hang_up_at = connect_at + self._plan.speak_after + self._plan.talk
        await _sleep_until(connect_at + self._plan.speak_after)
        for line in self._lines:
            if time.monotonic() >= hang_up_at or not self.live:
                break
            await self._say(line)
            await self._reply_played(hang_up_at)
            if not self._spoke:  # a reply began after the line
                self._report.lines_answered += 1
        await _sleep_until(hang_up_at)

    async def _say(self, line: list[str]) -> None:
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._mouth.extend(line)
        self._line_sent = sent
        self._report.lines_spoken += 1
        await sent
        self._spoke = True

    async def _reply_played(self, deadline: float) -> None:
        """Wait until a reply has started and then stayed quiet, or until ``deadline``."""
        while time.monotonic() < deadline and self.live:
            if self._spoke:
                await asyncio.sleep(0.1)
                continue
            quiet_at = self._play_end + QUIET_SECONDS
            if time.monotonic() >= quiet_at:
                return
            await _sleep_until(min(quiet_at, deadline))

    async def _hang_up(self, websocket: ClientConnection) -> None:
        """``stop``, as Twilio sends when the caller hangs up (unless the server hung up)."""
        if not self.live:
            self._report.errors.append(f"call {self.index}: the server ended the stream early")
            return
        self.live = False
        stop = Stop(self._next_sequence(), self.stream_sid, self._plan.account_sid, self._call_sid)
        try:
            await websocket.send(encode_inbound(stop))
        except ConnectionClosed:
            self._report.errors.append(f"call {self.index}: the stream closed before stop")


async def _sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


# --- one caller process ----------------------------------------------------------------------


async def _send_frames(
    calls: list[EmulatedCall], slot: int, plan: CallerPlan, lags: list[float]
) -> None:
    """Every 20 ms, the next frame of each live call in this phase slot (until cancelled)."""
    tick = plan.start_at + slot * FRAME_SECONDS / SEND_SLOTS
    while tick < time.monotonic():  # a process that started late does not catch up in a burst
        tick += FRAME_SECONDS
    mine = [call for call in calls if call.index % SEND_SLOTS == slot]
    while True:
        await _sleep_until(tick)
        lags.append(time.monotonic() - tick)
        for call in mine:
            if call.live:
                try:
                    await call.send_frame()
                except ConnectionClosed:
                    call.stop_talking()
        tick += FRAME_SECONDS


async def _cpu_during_talk(plan: CallerPlan, report: CallerReport) -> None:
    talk_from, talk_to = plan.talk_window
    await _sleep_until(talk_from)
    started = time.process_time()
    await _sleep_until(talk_to)
    report.talk_cpu_seconds = time.process_time() - started


async def _run_callers(plan: CallerPlan, indices: Sequence[int]) -> CallerReport:
    check_media_template()
    report = CallerReport()
    if (late := time.monotonic() - plan.start_at) > 0:
        report.errors.append(f"caller process started {late:.1f} s late")
    lines = [[base64.b64encode(f).decode("ascii") for f in frames(line)] for line in plan.lines]
    calls = [EmulatedCall(plan, index, lines, report) for index in indices]
    senders = [
        asyncio.create_task(_send_frames(calls, slot, plan, report.tick_lag))
        for slot in range(SEND_SLOTS)
    ]
    cpu = asyncio.create_task(_cpu_during_talk(plan, report))
    outcomes = await asyncio.gather(*(call.run() for call in calls), return_exceptions=True)
    report.errors += [f"{outcome!r}" for outcome in outcomes if isinstance(outcome, Exception)]
    for task in [*senders, cpu]:
        task.cancel()
    await asyncio.gather(*senders, cpu, return_exceptions=True)
    return report


def caller_process(indices: Sequence[int], connection: Connection) -> None:
    """Entry point of a caller process: say it is ready (imports done, which takes seconds on
    a busy machine), take the plan, run its calls, send back its report."""
    connection.send(READY)
    plan: CallerPlan = connection.recv()
    connection.send(uvloop.run(_run_callers(plan, indices)))
    connection.close()


# --- the server's side -----------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessUsage:
    """A process's CPU time so far and resident memory, read from /proc at ``at``."""

    at: float
    cpu_seconds: float
    rss_bytes: int

    @classmethod
    def of(cls, pid: int) -> ProcessUsage:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(stat[11]) + int(stat[12])  # utime and stime: fields 14 and 15
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        return cls(time.monotonic(), ticks / os.sysconf("SC_CLK_TCK"), rss_kib * 1024)

    def cpu_percent_since(self, earlier: ProcessUsage) -> float:
        return 100 * (self.cpu_seconds - earlier.cpu_seconds) / (self.at - earlier.at)

    def cpu_per_frame_since(self, earlier: ProcessUsage, calls: int) -> float:
        """CPU microseconds per inbound frame, with ``calls`` each sending one every 20 ms:
        less sensitive to other work on the machine than timings are."""
        frames = calls * (self.at - earlier.at) / FRAME_SECONDS
        return 1e6 * (self.cpu_seconds - earlier.cpu_seconds) / frames


def machine_busy_seconds() -> float:
    """CPU seconds all processes on this machine have used (``/proc/stat``, all CPUs)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class ServerReadings:
    """The server's usage at the edges of each window, and its loop lag within them."""

    before: tuple[ProcessUsage, ProcessUsage] | None = None
    idle: tuple[ProcessUsage, ProcessUsage] | None = None
    talk: tuple[ProcessUsage, ProcessUsage] | None = None
    idle_lag: dict[str, float] = field(default_factory=dict)
    talk_lag: dict[str, float] = field(default_factory=dict)
    machine_busy_seconds: float = 0.0  # the whole machine's, while talking
    profile: dict[str, Any] | None = None


class ServerWatch:
    """Reads the server's /proc figures and loop-lag probe on the plan's schedule."""

    def __init__(self, server: RunningServer, profile: bool) -> None:
        self._server = server
        self._profile = profile
        self._http = httpx.Client(base_url=server.url, timeout=30.0)

    def _lag(self) -> dict[str, float]:
        lag: dict[str, float] = self._http.get("/bench/loop-lag").json()
        return lag

    def baseline(self) -> tuple[ProcessUsage, ProcessUsage]:
        self._lag()  # starts the probe
        first = ProcessUsage.of(self._server.pid)
        time.sleep(BASELINE_SECONDS)
        return first, ProcessUsage.of(self._server.pid)

    def follow(self, plan: CallerPlan, readings: ServerReadings) -> None:
        idle_from, idle_to = plan.idle_window
        talk_from, talk_to = plan.talk_window
        _sleep_until_blocking(idle_from)
        self._lag()
        idle_first = ProcessUsage.of(self._server.pid)
        _sleep_until_blocking(idle_to)
        readings.idle = idle_first, ProcessUsage.of(self._server.pid)
        readings.idle_lag = self._lag()
        _sleep_until_blocking(talk_from)
        self._lag()
        if self._profile:
            self._http.post("/bench/profile/start")
        talk_first = ProcessUsage.of(self._server.pid)
        machine_first = machine_busy_seconds()
        _sleep_until_blocking(talk_to)
        readings.talk = talk_first, ProcessUsage.of(self._server.pid)
        readings.machine_busy_seconds = machine_busy_seconds() - machine_first
        readings.talk_lag = self._lag()
        if self._profile:
            readings.profile = self._http.post("/bench/profile/stop", params={"top": 30}).json()

    def close(self) -> None:
        self._http.close()


def _sleep_until_blocking(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def stored_overheads(database_url: str, calls: int, latencies: FakeLatencies) -> list[TurnOverhead]:
    """The overhead of every turn the server stored, once all calls are in."""
    engine = make_engine(database_url)
    deadline = time.monotonic() + STORE_TIMEOUT
    try:
        while True:
            with engine.connect() as conn:
                records = list_calls(conn, limit=calls + 1)
            if len(records) >= calls or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        engine.dispose()
    turns = [turn for record in records for turn in record.turn_metrics]
    return [o for t in turns if (o := turn_overhead(t, latencies)) is not None]


# --- one run per N ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSettings:
    scenario: Scenario
    scenario_path: Path
    business_id: str
    lines: tuple[bytes, ...]
    latencies: FakeLatencies
    ramp: float
    speak_after: float
    talk: float
    calls_per_process: int
    profile: bool


@dataclass
class RunResult:
    calls: int
    callers: CallerReport
    server: ServerReadings
    overheads: list[TurnOverhead]
    caller_processes: int

    def overhead_p95(self, stage: str) -> float:
        values = [getattr(overhead, stage) for overhead in self.overheads]
        return percentile(values, 0.95) if values else math.nan


def run_once(calls: int, run: RunSettings, log: IO[str]) -> RunResult:
    """N calls at once against a fresh server; everything measured on the way."""
    with tempfile.TemporaryDirectory() as folder:
        options = FakeServerOptions(
            port=free_port(),
            database_url=f"sqlite:///{folder}/bench.db",
            scenario=run.scenario_path,
            latencies=run.latencies,
        )
        with running_fake_server(options, log) as server:
            watch = ServerWatch(server, run.profile)
            readings = ServerReadings(before=watch.baseline())
            groups = [
                range(first, min(calls, first + run.calls_per_process))
                for first in range(0, calls, run.calls_per_process)
            ]
            callers = _start_callers(groups)
            plan = _plan(options, run, calls)
            for _process, connection in callers:
                connection.send(plan)
            try:
                watch.follow(plan, readings)
            finally:
                report = _gather_callers(callers, plan)
                watch.close()
            overheads = stored_overheads(options.database_url, calls, run.latencies)
    return RunResult(calls, report, readings, overheads, len(groups))


def _plan(options: FakeServerOptions, run: RunSettings, calls: int) -> CallerPlan:
    settings = options.settings()
    stream_url = settings.media_stream_url
    return CallerPlan(
        stream_url=f"ws://127.0.0.1:{options.port}/twilio/media-stream",
        signature=RequestValidator(options.auth_token).compute_signature(stream_url, {}),
        account_sid=settings.twilio_account_sid,
        parameters={"business": run.business_id, "caller": run.scenario.caller},
        credentials=StreamCredentials.from_settings(settings),
        lines=run.lines,
        calls=calls,
        start_at=time.monotonic() + START_DELAY,
        ramp=run.ramp,
        speak_after=run.speak_after,
        talk=run.talk,
    )


_Caller = tuple[multiprocessing.process.BaseProcess, Connection]
READY = "ready"


def _start_callers(groups: list[range]) -> list[_Caller]:
    """One caller process per group of calls, each started and ready for its plan."""
    context = multiprocessing.get_context("spawn")
    callers: list[_Caller] = []
    for group in groups:
        ours, theirs = context.Pipe()
        process = context.Process(target=caller_process, args=(group, theirs))
        process.start()
        theirs.close()
        callers.append((process, ours))
    deadline = time.monotonic() + CALLER_START_TIMEOUT
    for caller, connection in callers:
        if not connection.poll(max(0.0, deadline - time.monotonic())) or connection.recv() != READY:
            for started, _connection in callers:
                started.terminate()
            raise RuntimeError(f"caller process {caller.pid} did not start")
    return callers


def _gather_callers(callers: list[_Caller], plan: CallerPlan) -> CallerReport:
    """Every caller process's report; a process that does not report in time is stopped."""
    merged = CallerReport()
    for process, receiving in callers:
        wait = plan.ends_at + REPORT_TIMEOUT - time.monotonic()
        try:
            if not receiving.poll(max(0.0, wait)):
                raise EOFError
            merged.merge(receiving.recv())
        except EOFError:
            merged.errors.append(f"caller process {process.pid} gave no report")
            process.terminate()
        process.join()
    return merged


# --- report ----------------------------------------------------------------------------------


def _ms(values: list[float], share: float) -> float:
    return percentile(values, share) * 1000 if values else math.nan


def describe(result: RunResult) -> tuple[str, list[str]]:
    """One table row, and the targets this run missed."""
    callers, server = result.callers, result.server
    assert server.before and server.idle and server.talk
    late = [value for value in callers.lateness if value > 0]
    lateness_p99 = _ms(callers.lateness, 0.99)
    rss_before = server.before[1].rss_bytes
    per_idle_call = (server.idle[1].rss_bytes - rss_before) / result.calls / MIB
    overhead_p95 = result.overhead_p95("total")
    talk_seconds = server.talk[1].at - server.talk[0].at
    client_cpu = 100 * callers.talk_cpu_seconds / talk_seconds
    server_cpu = server.talk[1].cpu_percent_since(server.talk[0])
    other_cpu = 100 * server.machine_busy_seconds / talk_seconds - server_cpu - client_cpu
    row = (
        f"{result.calls:>5}{callers.lines_answered:>6}/{callers.lines_spoken:<5}"
        f"{lateness_p99:>8.1f}{len(late):>6}{max(late, default=0) * 1000:>7.0f}"
        f"{server.idle_lag.get('p99_ms', math.nan):>7.1f}"
        f"{server.talk_lag.get('p99_ms', math.nan):>7.1f}{server.talk_lag.get('max_ms', 0):>7.0f}"
        f"{overhead_p95:>8.1f}"
        f"{server.before[1].cpu_percent_since(server.before[0]):>6.0f}"
        f"{server.idle[1].cpu_percent_since(server.idle[0]):>6.0f}"
        f"{server_cpu:>6.0f}"
        f"{server.idle[1].cpu_per_frame_since(server.idle[0], result.calls):>6.0f}"
        f"{server.talk[1].cpu_per_frame_since(server.talk[0], result.calls):>6.0f}"
        f"{rss_before / MIB:>7.0f}{server.idle[1].rss_bytes / MIB:>7.0f}"
        f"{server.talk[1].rss_bytes / MIB:>7.0f}{per_idle_call:>7.2f}"
        f"{client_cpu:>6.0f}{_ms(callers.tick_lag, 0.99):>7.1f}{other_cpu:>6.0f}"
    )
    missed = []
    if not lateness_p99 <= LATENESS_TARGET_MS:
        missed.append(f"playout lateness p99 {lateness_p99:.1f} ms > {LATENESS_TARGET_MS:.0f}")
    if not per_idle_call <= IDLE_MEMORY_TARGET_MIB:
        missed.append(f"{per_idle_call:.2f} MiB per idle call > {IDLE_MEMORY_TARGET_MIB:.0f}")
    if not overhead_p95 <= OVERHEAD_TARGET_MS:
        missed.append(f"turn overhead p95 {overhead_p95:.1f} ms > {OVERHEAD_TARGET_MS:.0f}")
    if callers.failed_calls or callers.lines_answered < callers.lines_spoken:
        missed.append(
            f"{callers.failed_calls} calls failed, "
            f"{callers.lines_spoken - callers.lines_answered} lines unanswered"
        )
    return row, missed


HEADER = (
    "    N  answered  late99  gaps  gapmx  lagI99 lagT99 lagTmx  ovh95  cpu0  cpuI  cpuT"
    "   usI   usT  rss0M  rssIM  rssTM MiB/ic  cliC  tick99 other"
)
LEGEND = """\
answered: caller lines answered / spoken · late99: playout lateness p99 (ms; negative = early)
gaps: chunks that arrived after the audio before them had played · gapmx: longest gap (ms)
lagI99, lagT99, lagTmx: server event-loop lag p99 idle, p99 and max talking (ms)
ovh95: per-turn overhead p95 (ms) · cpu0/cpuI/cpuT: server CPU % before, idle, talking
usI/usT: server CPU µs per inbound 20 ms frame, idle and talking (talking includes replies)
rss0M/rssIM/rssTM: server RSS (MiB) before, idle, talking · MiB/ic: MiB per idle call
cliC: all callers' CPU % while talking · tick99: callers' 20 ms timer lateness p99 (ms)
other: CPU % used by everything else on the machine while talking (should be near 0)"""


def print_profile(profile: dict[str, Any]) -> None:
    print(f"\n  cProfile of the event loop while talking: {profile['profiled_seconds']:.1f} s")
    print(f"  {'own %':>7}{'calls':>10}{'incl %':>8}  function")
    for name, own, calls, inclusive in profile["own"]:
        print(f"  {100 * own:>7.1f}{calls:>10}{100 * inclusive:>8.1f}  {name}")


def print_details(result: RunResult) -> None:
    """The lines under a row: overhead by stage, garbage collection, caller errors, profile."""
    stages = ", ".join(f"{s} {result.overhead_p95(s):.1f}" for s in OVERHEAD_STAGES)
    print(f"      turn overhead p95 by stage (ms): {stages}")
    for window, lag in (("idle", result.server.idle_lag), ("talking", result.server.talk_lag)):
        print(
            f"      GC {window}: {lag.get('gc_collections', 0):.0f} collections, "
            f"longest {lag.get('gc_max_ms', 0):.1f} ms, total {lag.get('gc_total_ms', 0):.0f} ms; "
            f"{lag.get('gc_full_collections', 0):.0f} full, "
            f"longest {lag.get('gc_full_max_ms', 0):.1f} ms"
        )
    for error in result.callers.errors[:5]:
        print(f"      caller error: {error}")
    if result.server.profile is not None:
        print_profile(result.server.profile)


def _caller_lines(scenario: Scenario) -> tuple[bytes, ...]:
    voice = caller_voice(scenario.caller_voice or PIPER)
    return tuple(voice.render_ulaw(s.text) for s in scenario.steps if isinstance(s, SayStep))


def _business_id(scenario: Scenario) -> str:
    for business in load_businesses(ROOT / "fixtures" / "businesses.yaml"):
        if scenario.business_number in business.twilio_numbers:
            return business.id
    raise SystemExit(f"no demo business owns {scenario.business_number}")


def main() -> int:
    defaults = FakeLatencies()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 50, 100, 200, 300])
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    parser.add_argument("--ramp", type=float, default=2.0, help="seconds to connect all calls")
    parser.add_argument("--speak-after", type=float, default=16.0)
    parser.add_argument("--talk", type=float, default=32.0)
    parser.add_argument("--calls-per-process", type=int, default=100)
    parser.add_argument("--stream-speed", type=float, default=defaults.stream_speed)
    parser.add_argument("--profile", action="store_true", help="sample the server while talking")
    parser.add_argument("--server-log", type=Path, default=Path(os.devnull))
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    run = RunSettings(
        scenario=scenario,
        scenario_path=args.scenario.resolve(),
        business_id=_business_id(scenario),
        lines=_caller_lines(scenario),
        latencies=FakeLatencies(stream_speed=args.stream_speed),
        ramp=args.ramp,
        speak_after=args.speak_after,
        talk=args.talk,
        calls_per_process=args.calls_per_process,
        profile=args.profile,
    )
    print(f"fake engines: {run.latencies}; {os.cpu_count()} CPUs\n{LEGEND}\n\n{HEADER}")
    breaks: list[tuple[int, list[str]]] = []
    with args.server_log.open("w") as log:
        for calls in args.calls:
            result = run_once(calls, run, log)
            row, missed = describe(result)
            print(row)
            print_details(result)
            if missed:
                breaks.append((calls, missed))
    for calls, missed in breaks:
        print(f"N={calls} misses: {'; '.join(missed)}")
    return 1 if breaks else 0


if __name__ == "__main__":
    raise SystemExit(main())
