"""Structured logs: every line carries the call SID and business id of the call it belongs to,
and any fields a logger passes with ``extra=`` as ``key=value`` pairs — or, with
``LOG_FORMAT=json``, the same fields as one JSON object per line.

Phone numbers are masked to their last four digits (``+*******0123``, also ``%2B…`` in a URL)
in every line, the web server's access log included, unless debug logging is on."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime

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


# A number in E.164 (7-15 digits after "+"), or with its "+" URL-encoded; not inside a word.
_PHONE_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\+|%2[Bb])([0-9]{3,11})([0-9]{4})(?![0-9])")
_SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")  # they log through handlers of their own


def mask_phone_numbers(text: str) -> str:
    """``text`` with every phone number in it reduced to its last four digits."""
    return _PHONE_NUMBER.sub(lambda m: m[1] + "*" * len(m[2]) + m[3], text)


class KeyValueFormatter(logging.Formatter):
    """The standard line, then each ``extra=`` field of the record as ``key=value``; with
    ``mask_numbers``, phone numbers anywhere in the line are masked."""

    def __init__(self, fmt: str | None = None, *, mask_numbers: bool = False) -> None:
        super().__init__(fmt)
        self.mask_numbers = mask_numbers

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{key}={value}" for key, value in vars(record).items() if key not in _RECORD_FIELDS
        ]
        line = " ".join([line, *extras])
        return mask_phone_numbers(line) if self.mask_numbers else line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``call_sid``, ``business_id``, ``message``, each ``extra=`` field, and ``exception`` when
    there is one; with ``mask_numbers``, phone numbers anywhere in it are masked."""

    _LEFT_OUT = _RECORD_FIELDS | {"color_message"}  # uvicorn's coloured twin of the message

    def __init__(self, *, mask_numbers: bool = False) -> None:
        super().__init__()
        self.mask_numbers = mask_numbers

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "call_sid": getattr(record, "call_sid", "-"),
            "business_id": getattr(record, "business_id", "-"),
            "message": record.getMessage(),
        }
        document.update(
            (key, value) for key, value in vars(record).items() if key not in self._LEFT_OUT
        )
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        line = json.dumps(document, ensure_ascii=False, default=str)
        return mask_phone_numbers(line) if self.mask_numbers else line


class PhoneNumberMask(logging.Filter):
    """Masks phone numbers in a record's message and its text arguments, keeping their shape
    (the web server's access-log formatter unpacks its arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_phone_numbers(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: _masked(arg) for key, arg in record.args.items()}
        return True


def _masked(value: object) -> object:
    return mask_phone_numbers(value) if isinstance(value, str) else value


def configure_logging(verbose: bool = False, *, json_lines: bool = False) -> None:
    """One handler on the root logger, writing ``key=value`` lines or, with ``json_lines``, JSON
    objects; ``verbose`` turns debug logging on, and with it shows phone numbers in full."""
    handler = logging.StreamHandler()
    handler.addFilter(CallContextFilter())
    handler.setFormatter(
        JsonFormatter(mask_numbers=not verbose)
        if json_lines
        else KeyValueFormatter(LOG_FORMAT, mask_numbers=not verbose)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for chatty in ("alembic", "faster_whisper", "httpx"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if verbose else logging.WARNING)
    for name in _SERVER_LOGGERS:  # uvicorn's logging set-up keeps a logger's filters
        server_logger = logging.getLogger(name)
        for old in [f for f in server_logger.filters if isinstance(f, PhoneNumberMask)]:
            server_logger.removeFilter(old)
        if not verbose:
            server_logger.addFilter(PhoneNumberMask())
