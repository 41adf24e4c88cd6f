"""Runs the SMS dispatcher in the background: right after a call queues a text, and every
few seconds for texts that come due later. The server runs one; ``receptionist worker`` too,
woken on PostgreSQL by the notices of the processes that queue texts (``outbox_notices``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from sms_sender.dispatch import DispatchReport, PendingOptOuts, dispatch_due
from sms_sender.outbox_notices import listen_for_queued_texts
from sms_sender.send_rules import SendRules
from sms_sender.transport import SmsTransport

logger = logging.getLogger(__name__)

BATCH = 50
"""Texts one pass takes; a full pass is followed by the next at once (a backlog drains without
waiting for the poll)."""


class TextDispatcher:
    """Wakes the dispatcher on demand and on a timer. ``pending_opt_outs`` names the numbers
    whose opt-out is received but not stored yet: nothing is sent to them meanwhile."""

    def __init__(
        self,
        engine: Engine,
        transport: SmsTransport,
        clock: Callable[[], datetime],
        rules: SendRules,
        poll_seconds: float = 5.0,
        pending_opt_outs: PendingOptOuts | None = None,
    ) -> None:
        self._engine = engine
        self._pending_opt_outs = pending_opt_outs
        self._rules = rules
        self._transport = transport
        self._clock = clock
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Dispatch now (a call just queued a text)."""
        self._wake.set()

    async def run_once(self) -> DispatchReport:
        return await asyncio.to_thread(
            dispatch_due,
            self._engine,
            self._transport,
            self._clock(),
            limit=BATCH,
            rules=self._rules,
            pending_opt_outs=self._pending_opt_outs,
        )

    async def run(self, *, listen: bool = False) -> None:
        """Dispatch until cancelled; an error is logged and the loop goes on. With ``listen``,
        other processes' notices that texts were queued wake it too."""
        stop = threading.Event()
        if listen:
            loop = asyncio.get_running_loop()
            threading.Thread(
                target=listen_for_queued_texts,
                args=(self._engine, lambda: loop.call_soon_threadsafe(self.wake), stop),
                name="outbox-notices",
                daemon=True,
            ).start()
        try:
            await self._dispatch_until_cancelled()
        finally:
            stop.set()

    async def _dispatch_until_cancelled(self) -> None:
        while True:
            try:
                report = await self.run_once()
                if report.sent or report.blocked or report.failed:
                    logger.info(
                        "texts: %d sent, %d blocked, %d failed",
                        report.sent,
                        report.blocked,
                        report.failed,
                    )
                if report.sent + report.blocked + report.failed >= BATCH:
                    continue  # more may be due now
            except Exception:
                logger.exception("dispatching texts failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            self._wake.clear()
