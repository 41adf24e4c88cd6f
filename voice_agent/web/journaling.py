"""How a webhook hands what Twilio told it to the journal before answering."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from voice_agent.journal.store import JournalEntry
from voice_agent.services import Services

logger = logging.getLogger(__name__)


async def journal_request(
    services: Services,
    kind: str,
    key: str,
    payload: dict[str, Any],
    apply: Callable[[Engine, JournalEntry], bool],
    *,
    opt_out: str | None = None,
) -> None:
    """Journal the request and wake the applier; should the journal fail (a full disk), apply
    it at once instead, as one attempt (a 500 if that fails too)."""
    try:
        await services.journal.append_async(kind, key, payload, opt_out=opt_out)
    except OSError:
        logger.exception("journaling %s %s failed; applying it directly", kind, key)
        entry = JournalEntry("(not journaled)", kind, key, time.time_ns(), payload)
        if await asyncio.to_thread(apply, services.engine, entry):
            services.dispatcher.wake()
        return
    services.journal_applier.wake()
