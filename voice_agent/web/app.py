"""The FastAPI application factory: webhooks, the media stream, the text dispatcher (unless
``RUN_DISPATCHER=false``: then ``receptionist worker`` processes send the texts), the journal's
applier (which also replays, at startup, what an earlier process journaled), liveness
(``/healthz``), readiness (``/readyz``) and the graceful shutdown that lets live calls finish."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from dashboard import AuditContext, OwnerContext, audit_router, owner_router, owner_sign_in_router
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import schema_is_current
from voice_agent.records.owner_call_log import ReceptionistCallLog
from voice_agent.services import Services
from voice_agent.web.callback_form import FormGuard
from voice_agent.web.callback_form import router as callback_form_router
from voice_agent.web.draining import CallDrain, LiveStreams
from voice_agent.web.owner_settings import ReceptionistSettings
from voice_agent.web.public_pages import router as public_pages_router
from voice_agent.web.sms_webhooks import router as sms_router
from voice_agent.web.stream_credentials import StreamClaims
from voice_agent.web.voice_webhooks import router as call_flow_router

logger = logging.getLogger(__name__)

STALE_BACKLOG_SECONDS = 10.0
"""A journal entry waiting longer than this means the database is not taking what comes."""
READY_DATABASE_SECONDS = 2.0
"""A database that does not say within this long whether it is migrated is not ready."""


def create_app(services: Services, *, export_processes: int | None = None) -> FastAPI:
    """The web application; the speech model loads, the businesses are read, and the dispatcher
    and the journal's applier start with it. Audit exports run in ``export_processes`` worker
    processes (by default one per two cores, at least one)."""

    drain = CallDrain(services.settings.drain_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(services.transcriber.load)
        await asyncio.to_thread(services.businesses.load_all)
        gc.freeze()  # what startup loaded is never garbage: keep it out of full collections
        tasks = [asyncio.create_task(services.journal_applier.run(), name="journal-applier")]
        if services.settings.run_dispatcher:
            tasks.append(asyncio.create_task(services.dispatcher.run(), name="text-dispatcher"))
        drain.install()
        app.state.speech_loaded = True
        try:
            yield
        finally:
            drain.uninstall()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            # What the last calls journaled goes to the database now, if it can.
            await asyncio.to_thread(services.journal_applier.apply_pending)
            app.state.audit.close()

    app = FastAPI(title="Voice receptionist", lifespan=lifespan)
    app.add_middleware(LiveStreams, drain=drain)
    app.state.services = services
    app.state.drain = drain
    app.state.speech_loaded = False
    app.state.stream_claims = StreamClaims(services.engine)
    read_engine = make_engine(services.settings.database_url, read_only=True)
    app.state.audit = AuditContext(
        engine=services.engine,
        read_engine=read_engine,
        audio_store_root=services.settings.audio_dir,
        clock=services.clock,
        export_processes=max(1, (os.cpu_count() or 2) // 2)
        if export_processes is None
        else export_processes,
        worker_engine=functools.partial(make_engine, read_only=True),
        call_log=ReceptionistCallLog(),
    )
    app.include_router(call_flow_router)
    app.include_router(sms_router)
    app.include_router(audit_router())
    app.state.owner = OwnerContext(
        engine=services.engine,
        read_engine=read_engine,
        call_log=ReceptionistCallLog(),
        clock=services.clock,
        public_base_url=services.settings.public_base_url,
        text_queued=services.dispatcher.wake,
        audio_root=services.settings.audio_dir,
        settings_store=ReceptionistSettings(),
    )
    app.include_router(owner_router())
    app.state.callback_form = FormGuard.for_settings(services.settings)
    app.include_router(public_pages_router)
    app.include_router(callback_form_router)
    app.include_router(owner_sign_in_router())

    @app.get("/healthz")
    async def health() -> dict[str, Any]:
        """``ok``, or ``degraded`` while the journal cannot apply its entries (the database is
        down or locked: an entry failed, or the oldest has waited ``STALE_BACKLOG_SECONDS``) or
        has set some aside; the journal's backlog either way. (It reads only the journal's
        directory listing: it answers while the database cannot.)"""
        journal = services.journal_applier.status()
        oldest = journal["oldest_seconds"]
        degraded = (
            journal["retrying_for_seconds"] is not None
            or journal["failed"] > 0
            or (oldest is not None and oldest > STALE_BACKLOG_SECONDS)
        )
        return {"status": "degraded" if degraded else "ok", "journal": journal}

    @app.get("/readyz")
    async def readiness() -> JSONResponse:
        """200 ``ready`` when this process should get calls: the speech engine is loaded, the
        database answers and is at the newest schema, and the process is not shutting down;
        else 503 with the ``problems``."""
        problems = []
        if not app.state.speech_loaded:
            problems.append("the speech engine is not loaded yet")
        if drain.draining:
            problems.append(f"shutting down: {drain.live_streams} live call(s) finishing")
        try:
            current = await asyncio.wait_for(
                asyncio.to_thread(schema_is_current, services.engine), READY_DATABASE_SECONDS
            )
        except Exception as error:
            problems.append(f"the database does not answer: {type(error).__name__}")
        else:
            if not current:
                problems.append("the database is not at the newest schema")
        return JSONResponse(
            {"status": "not ready" if problems else "ready", "problems": problems},
            status_code=503 if problems else 200,
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(services.metrics.render(), media_type=services.metrics.content_type)

    return app
