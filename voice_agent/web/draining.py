"""Graceful shutdown of a web process: live calls finish before it stops.

uvicorn, on SIGTERM, stops listening and at once closes every open websocket with code 1012
(``Server.shutdown`` calls each connection's ``shutdown``), which would cut every live call. So
the application puts its own SIGTERM handler in front of the server's while it runs
(:meth:`CallDrain.install`, from the lifespan, on the main thread where signals arrive): the
first SIGTERM turns the process not ready (``/readyz`` answers 503, so a proxy sends it no new
calls) while it keeps serving everything, including the calls already on it and any webhook a
proxy still sends; once no media stream is open, or after ``drain_seconds``, the SIGTERM is handed
to the server, which then shuts down as it always does. A second SIGTERM stops at once.

:class:`LiveStreams` is the ASGI middleware that counts the open media streams (every websocket
this application serves is one).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None

FOLLOW_UP_SECONDS = 5.0
"""How long a draining process keeps serving after its last media stream closed: Twilio then
posts the ``<Connect>`` action (``/twilio/voice/stream-ended``) and the call's status callback,
within a second or two, to this same process."""


class CallDrain:
    """This process's live media streams, and whether it is shutting down."""

    def __init__(self, drain_seconds: float, follow_up_seconds: float = FOLLOW_UP_SECONDS) -> None:
        self.drain_seconds = drain_seconds
        self.follow_up_seconds = follow_up_seconds
        self.live_streams = 0
        self.draining = False
        self._server_handler: SignalHandler = None
        self._installed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def stream_opened(self) -> None:
        self.live_streams += 1
        self._idle.clear()

    def stream_closed(self) -> None:
        self.live_streams -= 1
        if not self.live_streams:
            self._idle.set()

    def install(self) -> None:
        """Take SIGTERM ahead of the server (only on the main thread: a server run in a thread,
        as the tests do, gets no signals)."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._loop = asyncio.get_running_loop()
        self._server_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        self._installed = True

    def uninstall(self) -> None:
        """Give SIGTERM back to the server."""
        if self._installed and signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            signal.signal(signal.SIGTERM, self._server_handler)
        self._installed = False
        if self._waiting is not None:
            self._waiting.cancel()

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if self.draining:
            logger.warning("second SIGTERM: stopping now, %d live call(s)", self.live_streams)
            self._stop(signum, frame)
            return
        self.draining = True
        logger.info(
            "SIGTERM: not ready any more; waiting up to %.0f s for %d live call(s) to end",
            self.drain_seconds,
            self.live_streams,
        )
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._start_waiting)

    def _start_waiting(self) -> None:
        self._waiting = asyncio.get_running_loop().create_task(
            self._stop_when_idle(), name="call-drain"
        )

    async def _stop_when_idle(self) -> None:
        try:
            await asyncio.wait_for(self._idle_for_good(), self.drain_seconds)
            logger.info("no live calls: stopping")
        except TimeoutError:
            logger.warning(
                "%d call(s) still live after %.0f s: stopping",
                self.live_streams,
                self.drain_seconds,
            )
        self._stop(signal.SIGTERM, None)

    async def _idle_for_good(self) -> None:
        """Until no stream has been open for ``follow_up_seconds`` (Twilio's webhooks after a
        call's stream are served here too)."""
        while True:
            await self._idle.wait()
            await asyncio.sleep(self.follow_up_seconds)
            if self._idle.is_set():
                return

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        """Hand the signal to the server's handler (or, with none, to the default action)."""
        handler = self._server_handler
        if callable(handler):
            handler(signum, frame)
        elif handler in (signal.SIG_DFL, None):
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)


class LiveStreams:
    """ASGI middleware: counts each websocket in ``drain`` while it is open."""

    def __init__(self, app: ASGIApp, drain: CallDrain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        self.drain.stream_opened()
        try:
            await self.app(scope, receive, send)
        finally:
            self.drain.stream_closed()
