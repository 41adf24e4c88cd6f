"""Structured logs: every line carries the call SID and business id of the call it belongs to,
and any fields a logger passes with ``extra=`` as ``key=value`` pairs."""

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


_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "call_sid",
    "business_id",
}


class CallContextFilter(logging.Filter):
    """Adds the current call's ``call_sid`` and ``business_id`` to each record, unless the logger
    passed its own (work outside a call, such as an inbound text, names its business itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call_sid"):
            record.call_sid = _call_sid.get()
        if not hasattr(record, "business_id"):
            record.business_id = _business_id.get()
        return True


class KeyValueFormatter(logging.Formatter):
    """The standard line, then each ``extra=`` field of the record as ``key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{key}={value}" for key, value in vars(record).items() if key not in _RECORD_FIELDS
        ]
        return " ".join([line, *extras])


def configure_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(CallContextFilter())
    handler.setFormatter(KeyValueFormatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for chatty in ("alembic", "faster_whisper", "httpx"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if verbose else logging.WARNING)
