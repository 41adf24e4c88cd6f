"""Structured logs: every line carries the call SID and business id of the call it belongs to."""

from __future__ import annotations

import logging
from contextvars import ContextVar

_call_sid: ContextVar[str] = ContextVar("call_sid", default="-")
_business_id: ContextVar[str] = ContextVar("business_id", default="-")

LOG_FORMAT = (
    "%(asctime)s level=%(levelname)s logger=%(name)s call_sid=%(call_sid)s "
    "business_id=%(business_id)s %(message)s"
)


def bind_call(call_sid: str, business_id: str) -> None:
    """Tag every log line of the current task (and tasks it starts) with this call."""
    _call_sid.set(call_sid)
    _business_id.set(business_id)


class CallContextFilter(logging.Filter):
    """Adds ``call_sid`` and ``business_id`` to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.call_sid = _call_sid.get()
        record.business_id = _business_id.get()
        return True


def configure_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(CallContextFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for chatty in ("alembic", "faster_whisper", "httpx"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if verbose else logging.WARNING)
