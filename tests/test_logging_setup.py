"""Log lines carry the call they belong to, a business named by the logger itself, and extras."""

from __future__ import annotations

import asyncio
import logging

from voice_agent.logging_setup import LOG_FORMAT, CallContextFilter, KeyValueFormatter, bind_call


def _line(record: logging.LogRecord) -> str:
    CallContextFilter().filter(record)
    return KeyValueFormatter(LOG_FORMAT).format(record)


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("tests.logging")
    return logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, message, args, None, extra=extra
    )


async def _in_a_call() -> str:
    bind_call("CA" + "1" * 32, "acme-plumbing")
    return _line(_record("greeting sent"))


def test_a_line_in_a_call_names_the_call_and_its_business() -> None:
    line = asyncio.run(_in_a_call())
    assert f"call_sid=CA{'1' * 32} business_id=acme-plumbing greeting sent" in line


def test_a_business_named_by_the_logger_wins_and_extras_are_key_values() -> None:
    line = _line(
        _record("consent event appended", business_id="bright-spark", seq=7, kind="revoked")
    )
    assert "call_sid=- business_id=bright-spark consent event appended" in line
    assert line.endswith(" seq=7 kind=revoked")


def test_a_plain_line_has_no_trailing_fields() -> None:
    line = _line(_record("dispatcher woke, %d due", 3))
    assert line.endswith("business_id=- dispatcher woke, 3 due")
