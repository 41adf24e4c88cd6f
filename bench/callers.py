"""The persona suite: callers that listen, through the real server, and what the record shows.

Serves the application on a loopback port (embedded engines: faster-whisper, the scripted
interviewer, espeak-ng) and places every persona's call in ``fixtures/personas/`` with the
listening caller (``call_simulator.call_as_persona``): it hears the assistant with its own
Whisper, answers by what it heard after a drawn human pause, sometimes in several breaths or
over the assistant. The callers run in worker processes of their own (``--concurrency`` at a
time), so their ears and voices do not share the server's interpreter or its Whisper lock.
After each call the stored record is read and judged against the persona's ``expect``.

Reported: personas passed; answers lost (a line the caller began in an answer window that is
missing from the stored transcript; must be 0); re-asks (the assistant asking a question
again); mean call length; caller turns per call; turn latency as the caller hears it (end of
its line to the assistant's next words) and as the server stored it; the caller's ear's word
error rate against what the server said (how well the test caller hears).

    .venv/bin/python bench/callers.py [--personas NAME ...] [--families FAMILY ...]
        [--speed 1] [--concurrency 2] [--seed 0] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import voice_agent
from bench.scoring import percentile, word_errors
from call_simulator import (
    ListeningCall,
    Persona,
    SimulationError,
    StoredCall,
    StoredTurn,
    Verdict,
    call_as_persona,
    judge,
    load_persona,
)
from consent_ledger import event_by_hash
from sms_sender import OutboxStatus, list_outbox
from voice_agent.records.businesses import import_businesses
from voice_agent.records.calls import CallRecord, get_call
from voice_agent.records.migrate import upgrade
from voice_agent.services import build_services
from voice_agent.settings import Settings
from voice_agent.web.local_server import free_port, serving

ROOT = Path(__file__).resolve().parent.parent
PERSONAS = ROOT / "fixtures" / "personas"
PUBLIC_BASE_URL = "https://receptionist.example.com"
AUTH_TOKEN = "bench-auth-token"
ACCOUNT_SID = "AC" + "0" * 32
STORE_TIMEOUT = 30.0  # seconds to wait for the server to store a finished call
SEND_TIMEOUT = 10.0  # seconds to wait for queued texts to reach the transport
PENDING = (OutboxStatus.SCHEDULED, OutboxStatus.CLAIMED)
HANDED_OVER = (OutboxStatus.SENT, OutboxStatus.DELIVERED, OutboxStatus.UNDELIVERED)
RE_ASK_MARKERS = ("didn't catch that", "press 1 for yes")  # any question asked again


@dataclass(frozen=True)
class Served:
    """The receptionist on a loopback port, and its database."""

    settings: Settings
    url: str
    engine: Engine


@dataclass(frozen=True)
class PersonaRun:
    """One persona's call: what the caller did, what the server stored, the verdict."""

    persona: Persona
    verdict: Verdict
    call: ListeningCall | None
    stored: StoredCall | None
    server_turn_ms: tuple[float, ...]


@contextlib.contextmanager
def served_receptionist() -> Iterator[Served]:
    """The whole application with its embedded engines on a fresh SQLite database."""
    with tempfile.TemporaryDirectory(prefix="receptionist-callers-") as folder:
        settings = Settings(
            database_url=f"sqlite:///{folder}/receptionist.db",
            audio_dir=Path(folder) / "audio",
            public_base_url=PUBLIC_BASE_URL,
            twilio_auth_token=SecretStr(AUTH_TOKEN),
            port=free_port(),
            _env_file=None,  # type: ignore[call-arg]
        )
        upgrade(settings.database_url)
        services = build_services(settings)
        with services.engine.begin() as conn:
            import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
        try:
            with serving(services) as url:
                yield Served(settings, url, services.engine)
        finally:
            services.engine.dispose()


async def place_persona_call(
    persona: Persona, server_url: str, *, speed: float = 1.0, run_seed: int = 0
) -> ListeningCall:
    """The persona's call to the served receptionist, with the default ear and voice."""
    return await call_as_persona(
        persona,
        server_url=server_url,
        public_base_url=PUBLIC_BASE_URL,
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        speed=speed,
        run_seed=run_seed,
    )


def stored_call(engine: Engine, call_sid: str, caller: str) -> tuple[StoredCall, CallRecord] | None:
    """What the server stored about ``call_sid``, once stored and its texts settled."""
    found: list[tuple[StoredCall, CallRecord]] = []

    def load() -> bool:
        loaded = _load(engine, call_sid, caller)
        found[:] = [] if loaded is None else [loaded]
        return loaded is not None

    if not _poll(load, STORE_TIMEOUT):
        return None
    deadline = time.monotonic() + SEND_TIMEOUT
    while time.monotonic() < deadline and _texts_pending(engine, call_sid):
        time.sleep(0.1)
    load()
    return found[0] if found else None


def _texts_pending(engine: Engine, call_sid: str) -> bool:
    with engine.connect() as conn:
        return any(text.status in PENDING for text in list_outbox(conn, call_sid=call_sid))


def _poll(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _load(engine: Engine, call_sid: str, caller: str) -> tuple[StoredCall, CallRecord] | None:
    with engine.connect() as conn:
        record = get_call(conn, call_sid)
        if record is None:
            return None
        texts = [t for t in list_outbox(conn, call_sid=call_sid) if t.to_number == caller]
        event = (
            event_by_hash(conn, record.consent_event_hash) if record.consent_event_hash else None
        )
    evidence = event.evidence() if event is not None else None
    script = evidence.script if evidence is not None else None
    assistant = [turn.text.lower() for turn in record.turns if turn.speaker == "assistant"]
    stored = StoredCall(
        consent=record.consent_outcome or "not_asked",
        consent_asked=script is not None and script.playback_confirmed_at is not None,
        reasked=evidence.reasked if evidence is not None else False,
        caller_name=record.caller_name,
        callback_number=record.callback_number,
        urgency=record.urgency,
        need=record.need,
        texts_sent=sum(1 for text in texts if text.status in HANDED_OVER),
        re_asks=sum(text.count(marker) for text in assistant for marker in RE_ASK_MARKERS),
        turns=tuple(
            StoredTurn(turn.speaker, turn.kind, turn.text, turn.start, turn.end)
            for turn in record.turns
        ),
    )
    return stored, record


def judged(persona: Persona, call: ListeningCall, engine: Engine) -> PersonaRun:
    """Read the call's record and judge it."""
    loaded = stored_call(engine, call.simulated.call_sid, persona.caller)
    stored, record = loaded if loaded is not None else (None, None)
    server_turns = tuple(
        metrics.total_ms
        for metrics in (record.turn_metrics if record is not None else ())
        if metrics.total_ms is not None
    )
    return PersonaRun(persona, judge(persona, call, stored), call, stored, server_turns)


def failed_run(persona: Persona, problem: str) -> PersonaRun:
    verdict = Verdict(persona.name, persona.family, (problem,), (), 0, 0, 0.0, 0, ())
    return PersonaRun(persona, verdict, None, None, ())


# --- the caller processes ----------------------------------------------------------------------


def _call_in_worker(path: str, server_url: str, speed: float, run_seed: int) -> ListeningCall:
    """Runs in a caller process: one persona's call."""
    persona = load_persona(path)
    return asyncio.run(place_persona_call(persona, server_url, speed=speed, run_seed=run_seed))


def run_suite(
    paths: Sequence[Path], served: Served, *, speed: float, concurrency: int, run_seed: int
) -> list[PersonaRun]:
    """Every persona's call, ``concurrency`` at a time in caller processes, judged in order."""
    personas = {str(path): load_persona(path) for path in paths}
    runs: dict[str, PersonaRun] = {}
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(concurrency, mp_context=context) as pool:
        futures = {
            pool.submit(_call_in_worker, key, served.url, speed, run_seed): key for key in personas
        }
        for future in concurrent.futures.as_completed(futures):
            key = futures[future]
            persona = personas[key]
            try:
                run = judged(persona, future.result(), served.engine)
            except (SimulationError, OSError) as error:
                run = failed_run(persona, f"the call failed: {error}")
            runs[key] = run
            _progress(run, len(runs), len(personas))
    return [runs[key] for key in personas]


def _progress(run: PersonaRun, done: int, total: int) -> None:
    verdict = run.verdict
    status = "pass" if verdict.passed else "FAIL"
    print(f"[{done}/{total}] {status} {verdict.persona} ({verdict.duration:.0f} s)", flush=True)


# --- the report --------------------------------------------------------------------------------


def report(runs: Sequence[PersonaRun], *, speed: float, load_before: str) -> str:
    verdicts = [run.verdict for run in runs]
    passed = [v for v in verdicts if v.passed]
    lost = sum(len(v.lost) for v in verdicts)
    answers = sum(v.answer_lines for v in verdicts)
    gaps = [gap * 1000 for v in verdicts for gap in v.reply_gaps]
    server_ms = [ms for run in runs for ms in run.server_turn_ms]
    calls = [run.call for run in runs if run.call is not None]
    cut_offs = [line for call in calls for line in call.cut_offs()]
    split = sum(1 for call in calls for line in call.lines if len(line.breaths) > 1)
    lines = [
        f"commit {_commit()} (receptionist code from {Path(voice_agent.__file__).parent.parent}), "
        f"speed {speed:g}, load average before {load_before}, after {_load_average()}",
        "",
        f"personas passed        {len(passed)}/{len(verdicts)}",
        f"  failed, every line heard as said  {_count(verdicts, misheard=False)}",
        f"  failed, some line misheard        {_count(verdicts, misheard=True)}",
        f"answers lost           {lost} (of {answers} lines said in an answer window)",
        f"answers unheard        {sum(len(v.unheard) for v in verdicts)} "
        "(stored as speech without words: the recogniser made nothing of them)",
        f"false cut-offs         {len(cut_offs)} (of {split} lines said in several breaths; "
        "the assistant spoke between a line's first breath and its end)",
        f"re-asks                {sum(v.re_asks for v in verdicts)} "
        f"({_mean([v.re_asks for v in verdicts]):.2f} per call)",
        f"mean call length       {_mean([v.duration for v in verdicts if v.duration]):.1f} s",
        f"caller turns per call  {_mean([v.caller_turns for v in verdicts]):.1f}",
        f"turn latency (caller)  p50 {_pct(gaps, 0.5)} ms, p95 {_pct(gaps, 0.95)} ms "
        f"over {len(gaps)} turns (end of the caller's line → the assistant's next words)",
        f"turn latency (server)  p50 {_pct(server_ms, 0.5)} ms, p95 {_pct(server_ms, 0.95)} ms "
        f"over {len(server_ms)} turns (stored: last caller frame → first reply frame)",
        f"caller's ear WER       {_ear_error_rate(runs)} (its Whisper on the assistant's voice)",
        "",
        "by family:",
    ]
    families: dict[str, list[Verdict]] = {}
    for verdict in verdicts:
        families.setdefault(verdict.family, []).append(verdict)
    for family, members in families.items():
        ok = sum(1 for v in members if v.passed)
        lines.append(f"  {family:<18} {ok}/{len(members)}")
    lines += ["", "failures:"]
    for run in runs:
        if run.verdict.passed:
            continue
        lines.append(f"  {run.verdict.persona} ({run.verdict.family}):")
        lines.extend(f"    - {problem}" for problem in run.verdict.problems)
        lines.extend(
            f"    - misheard: said {said!r}, stored {stored!r}"
            for said, stored in run.verdict.misheard
        )
        if run.call is not None:
            lines.extend(_conversation(run))
    return "\n".join(lines)


def _count(verdicts: Sequence[Verdict], *, misheard: bool) -> int:
    return sum(1 for v in verdicts if not v.passed and bool(v.misheard) == misheard)


def _conversation(run: PersonaRun) -> list[str]:
    """The call as the caller lived it: what it heard and what it did."""
    assert run.call is not None
    out = ["    the call, as the caller heard it:"]
    events: list[tuple[float, str]] = []
    for heard in run.call.heard:
        events.append((heard.decided_at, f"heard {heard.text!r} → {heard.response}"))
    for line in run.call.lines:
        where = "in an answer window" if line.in_answer_window else "over the assistant"
        if line.kind == "say":
            events.append((line.started_at, f"said {line.text!r} ({where})"))
    for at, text in sorted(events, key=lambda event: event[0]):
        out.append(f"      {at:6.1f} s  {text}")
    if run.stored is not None:
        out.append("    the record's caller turns:")
        for turn in run.stored.turns:
            if turn.speaker == "caller":
                out.append(f"      {turn.start:6.1f} s  {turn.kind} {turn.text!r}")
    return out


def _ear_error_rate(runs: Sequence[PersonaRun]) -> str:
    errors = words = 0
    for run in runs:
        if run.call is None or run.stored is None:
            continue
        said = " ".join(t.text for t in run.stored.turns if t.speaker == "assistant")
        heard = " ".join(run.call.ear_transcripts)
        line_errors, line_words = word_errors(said, heard)
        errors, words = errors + line_errors, words + line_words
    return f"{errors / words:.1%} over {words} words" if words else "n/a"


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _pct(values: Sequence[float], fraction: float) -> str:
    return f"{percentile(list(values), fraction):,.0f}" if values else "n/a"


def _commit() -> str:
    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{head}{' (with uncommitted changes)' if dirty else ''}"


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--personas", nargs="+", help="persona names (default: all)")
    parser.add_argument("--families", nargs="+", help="only personas of these families")
    parser.add_argument("--speed", type=float, default=1.0, help="stream time per wall second")
    parser.add_argument("--concurrency", type=int, default=2, help="calls at a time")
    parser.add_argument("--seed", type=int, default=0, help="varies the callers' pauses")
    parser.add_argument("--json", type=Path, help="also write every verdict to this file")
    args = parser.parse_args()
    if args.concurrency < 1 or args.speed <= 0:
        parser.error("--concurrency must be at least 1 and --speed positive")
    paths = sorted(PERSONAS.glob("*.yaml"))
    if args.personas:
        paths = [PERSONAS / f"{name}.yaml" for name in args.personas]
    if args.families:
        paths = [path for path in paths if load_persona(path).family in args.families]
    if not paths:
        parser.error("no persona matches")
    load_before = _load_average()
    started = time.monotonic()
    with served_receptionist() as served:
        runs = run_suite(
            paths, served, speed=args.speed, concurrency=args.concurrency, run_seed=args.seed
        )
    print()
    print(report(runs, speed=args.speed, load_before=load_before))
    print(f"\n{len(runs)} calls in {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps([asdict(run) for run in runs], indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
