"""Audit exports off the event loop that carries live calls: four concurrent exports of a whole
business run in worker processes (never in the server's), at most as many at once as there are
workers, while the event loop goes on serving — live calls included, which are heard to the end
and stored; past the bound a request gets 503; the report's lines never run off the page.

What must hold is checked, not how long anything took: the work's process ids, the bound, that
the loop kept running during the exports, and that every export is the same packet.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import os
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from sqlalchemy import Engine

from bench.faults import (
    CALL_TIME,
    ScriptedStream,
    admit_every_stream,
    ended_call,
    prepared_services,
)
from consent_ledger.audio_store import AudioStore
from consent_ledger.audit_pdf import _CHAR_WIDTHS, _FONT, _MONO, _wrapped
from consent_ledger.chain import append_event
from dashboard.audit_routes import AuditContext, audit_router
from dashboard.auditor_tokens import issue_token
from tests.ledger_support import answer_wav, audit_database, call_evidence
from voice_agent.call.journal_entry import CALL_ENDED, apply_call_entry, call_entry
from voice_agent.call.session import handle_call
from voice_agent.journal.applier import Backoff
from voice_agent.journal.store import JournalEntry
from voice_agent.records.calls import get_call
from voice_agent.records.database import make_engine

T0 = datetime(2025, 4, 11, 14, 0, tzinfo=UTC)
EXPORTED_AT = T0 + timedelta(days=30)
EVENTS = 120


@dataclass(frozen=True)
class Ledger:
    engine: Engine
    audio_root: Path
    token: str


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """A business's ledger of ``EVENTS`` calls over many numbers, a third with answer audio."""
    with audit_database(request.param, tmp_path) as engine:
        audio = AudioStore(tmp_path / "audio")
        with engine.begin() as conn:
            for i in range(EVENTS):
                sha = audio.put(answer_wav(0.2, tone=i % 7)) if i % 3 == 0 else None
                at = T0 + timedelta(minutes=i)
                evidence = call_evidence(number=f"+1555555{i % 40:04d}", at=at, audio_sha256=sha)
                append_event(conn, evidence, at + timedelta(seconds=30))
            token = issue_token(conn, "acme", "carrier", T0, timedelta(days=90)).secret
        yield Ledger(engine, tmp_path / "audio", token)


def audit_app(ledger: Ledger, **options: Any) -> tuple[FastAPI, AuditContext, Engine]:
    reader = make_engine(ledger.engine.url.render_as_string(hide_password=False), read_only=True)
    context = AuditContext(ledger.engine, reader, ledger.audio_root, lambda: EXPORTED_AT, **options)
    app = FastAPI()
    app.state.audit = context
    app.include_router(audit_router())
    return app, context, reader


async def test_four_exports_at_once_run_in_worker_processes_while_the_loop_serves(
    ledger: Ledger,
) -> None:
    app, context, reader = audit_app(
        ledger, export_processes=2, worker_engine=functools.partial(make_engine, read_only=True)
    )
    ticks = 0
    exporting = True

    async def live_call() -> None:  # stands for the calls this loop carries
        nonlocal ticks
        while exporting:
            await asyncio.sleep(0.005)
            ticks += 1

    headers = {"Authorization": f"Bearer {ledger.token}"}
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://audit") as client:
            call = asyncio.create_task(live_call())
            answers = await asyncio.gather(
                *(client.get("/audit/export?format=zip", headers=headers) for _ in range(4))
            )
            exporting = False
            await call
            number = await client.get("/audit/numbers/+15555550007", headers=headers)
    finally:
        context.close()
        reader.dispose()

    assert [answer.status_code for answer in answers] == [200] * 4
    packets = {answer.content for answer in answers}
    assert len(packets) == 1  # the same packet, whoever built it
    with zipfile.ZipFile(io.BytesIO(packets.pop())) as packet:
        assert {"events.jsonl", "report.pdf", "manifest.json", "verify.py"} <= set(
            packet.namelist()
        )
        assert len(packet.read("events.jsonl").splitlines()) == EVENTS
    assert number.status_code == 200 and number.json()["verification"]["ok"] is True
    workers = context.runner.worker_pids
    assert workers and os.getpid() not in workers
    assert len(workers) <= 2  # the bound: never more processes than that
    assert ticks > 0  # the loop kept serving while the exports ran


async def test_the_same_export_in_a_thread_and_in_a_process_is_the_same_packet(
    ledger: Ledger,
) -> None:
    headers = {"Authorization": f"Bearer {ledger.token}"}
    packets = []
    for processes in (0, 1):
        app, context, reader = audit_app(ledger, export_processes=processes)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://audit") as client:
                for query in ("format=zip", "format=csv&number=%2B15555550003"):
                    answer = await client.get(f"/audit/export?{query}", headers=headers)
                    assert answer.status_code == 200
                    packets.append(answer.content)
                missing = await client.get("/audit/export?number=%2B15555559999", headers=headers)
                assert missing.status_code == 404
        finally:
            context.close()
            reader.dispose()
    assert packets[:2] == packets[2:]


async def test_past_the_bound_a_request_gets_503_and_the_admitted_ones_finish(
    ledger: Ledger,
) -> None:
    _app, context, reader = audit_app(ledger, export_processes=0, max_waiting_exports=1)
    release = threading.Event()
    started = threading.Event()

    def slow_job(_source: object, label: str) -> str:
        started.set()
        release.wait(timeout=30)
        return label

    try:
        first = asyncio.create_task(context.runner.run(context, slow_job, "first"))
        second = asyncio.create_task(context.runner.run(context, slow_job, "second"))
        for _ in range(2000):  # bounded: until the first has started
            if started.is_set():
                break
            await asyncio.sleep(0.005)
        with pytest.raises(HTTPException) as refused:
            await context.runner.run(context, slow_job, "third")
        release.set()
        assert await asyncio.gather(first, second) == ["first", "second"]
    finally:
        release.set()
        context.close()
        reader.dispose()
    assert refused.value.status_code == 503
    assert refused.value.headers == {"Retry-After": "5"}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "short",
        "word " * 200,
        "x" * 900,
        "a " + "y" * 400 + " b c",
        "line one\nline two " + "z" * 300,
    ],
)
@pytest.mark.parametrize("font", [(_FONT, ""), (_FONT, "B"), (_MONO, "")])
def test_the_report_wraps_every_line_inside_the_page(text: str, font: tuple[str, str]) -> None:
    widths = _CHAR_WIDTHS[font]
    room = 40_000.0

    lines = _wrapped(text, widths, room)

    assert all(sum(widths[c] for c in line) <= room for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace("\n", "").replace(" ", "")
    assert len(lines) >= text.count("\n") + 1


async def test_four_exports_during_live_calls_leave_the_calls_whole(tmp_path: Path) -> None:
    """Two callers on the line while four whole-business exports run: both are greeted and
    heard to the end, and both calls are stored once; the exports are the same packet."""
    url = f"sqlite:///{tmp_path / 'receptionist.db'}"
    services = prepared_services(url, tmp_path, Backoff(first=0.05, longest=0.5))
    audio = AudioStore(services.settings.audio_dir)
    for i in range(60):  # a business with history to export
        call = ended_call(f"CAhistory{i:023d}", caller=f"+1512555{i:04d}")
        payload = json.loads(json.dumps(call_entry(call)))
        entry = JournalEntry("(direct)", CALL_ENDED, call.identity.call_sid, 0, payload)
        apply_call_entry(services.engine, audio, entry)
    with services.engine.begin() as conn:
        token = issue_token(conn, "acme-plumbing", "carrier", CALL_TIME, timedelta(days=1)).secret
    reader = make_engine(url, read_only=True)
    context = AuditContext(
        services.engine,
        reader,
        services.settings.audio_dir,
        lambda: CALL_TIME,
        export_processes=2,
        worker_engine=functools.partial(make_engine, read_only=True),
    )
    app = FastAPI()
    app.state.audit = context
    app.include_router(audit_router())
    streams = [
        ScriptedStream(f"CAlive{i:026d}", "acme-plumbing", f"+1512555{900 + i:04d}", seconds=1.5)
        for i in range(2)
    ]
    headers = {"Authorization": f"Bearer {token}"}
    applier = asyncio.create_task(services.journal_applier.run())
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://audit"
        ) as client:
            results = await asyncio.gather(
                *(handle_call(services, stream, admit_every_stream) for stream in streams),
                *(client.get("/audit/export?format=zip", headers=headers) for _ in range(4)),
            )
        for _ in range(2000):  # bounded: until both calls are stored
            if not services.journal.pending():
                break
            await asyncio.sleep(0.01)
    finally:
        applier.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await applier
        context.close()
        reader.dispose()
        services.journal_applier.close()
        services.businesses.close()
        services.engine.dispose()

    exports = results[2:]
    assert [answer.status_code for answer in exports] == [200] * 4
    assert len({answer.content for answer in exports}) == 1
    assert all(stream.media_sent > 0 and stream.closed for stream in streams)
    assert services.journal.pending() == []
    with make_engine(url).connect() as conn:
        for stream in streams:
            stored = get_call(conn, stream.call_sid)
            assert stored is not None and stored.business_id == "acme-plumbing"
    assert os.getpid() not in context.runner.worker_pids
