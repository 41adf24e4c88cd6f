"""The FastAPI application factory: webhooks, the media stream, and the text dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import Response

from dashboard import AuditContext, OwnerContext, audit_router, owner_router
from voice_agent.records.database import make_engine
from voice_agent.records.owner_call_log import ReceptionistCallLog
from voice_agent.services import Services
from voice_agent.web.sms_webhooks import router as sms_router
from voice_agent.web.voice_webhooks import router as call_flow_router

logger = logging.getLogger(__name__)


def create_app(services: Services, *, export_processes: int | None = None) -> FastAPI:
    """The web application; the speech model loads and the dispatcher starts with it. Audit
    exports run in ``export_processes`` worker processes (by default one per two cores, at least
    one)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(services.transcriber.load)
        gc.freeze()  # what startup loaded is never garbage: keep it out of full collections
        dispatcher = asyncio.create_task(services.dispatcher.run(), name="text-dispatcher")
        try:
            yield
        finally:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher
            app.state.audit.close()

    app = FastAPI(title="Voice receptionist", lifespan=lifespan)
    app.state.services = services
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
    )
    app.include_router(owner_router())

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(services.metrics.render(), media_type=services.metrics.content_type)

    return app
