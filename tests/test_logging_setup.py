"""Log lines carry the call they belong to, a business named by the logger itself, and extras;
phone numbers in them are masked unless debug logging is on."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import pytest

from sms_sender import LocalSmsTransport, OutgoingSms
from voice_agent.logging_setup import (
    LOG_FORMAT,
    CallContextFilter,
    JsonFormatter,
    KeyValueFormatter,
    PhoneNumberMask,
    bind_call,
    configure_logging,
    mask_phone_numbers,
)


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


NUMBER = "+15125550142"


def test_phone_numbers_are_masked_to_their_last_four_digits() -> None:
    assert mask_phone_numbers(f"call from {NUMBER} to +447911123456") == (
        "call from +*******0142 to +********3456"
    )
    assert mask_phone_numbers("GET /audit/export?number=%2B15125550123&format=zip") == (
        "GET /audit/export?number=%2B*******0123&format=zip"
    )
    # Not numbers: call SIDs, counts, short codes, a sum.
    kept = "CA15125550142 seq=15125550142 +1234 1+15125550142x"
    assert mask_phone_numbers(kept) == kept


def test_lines_mask_numbers_everywhere_unless_debugging() -> None:
    record = _record("text to %s failed", NUMBER, to=NUMBER)
    CallContextFilter().filter(record)
    masked = KeyValueFormatter(LOG_FORMAT, mask_numbers=True).format(record)
    assert NUMBER not in masked
    assert masked.endswith("text to +*******0142 failed to=+*******0142")
    full = KeyValueFormatter(LOG_FORMAT).format(record)
    assert full.endswith(f"text to {NUMBER} failed to={NUMBER}")


async def _json_in_a_call(formatter: JsonFormatter) -> dict[str, object]:
    bind_call("CA" + "1" * 32, "acme-plumbing")
    record = _record("text to %s failed", NUMBER, to=NUMBER, attempt=2)
    CallContextFilter().filter(record)
    parsed: dict[str, object] = json.loads(formatter.format(record))
    return parsed


def test_json_lines_carry_the_same_fields_and_mask_numbers_unless_debugging() -> None:
    masked = asyncio.run(_json_in_a_call(JsonFormatter(mask_numbers=True)))
    assert masked["call_sid"] == "CA" + "1" * 32 and masked["business_id"] == "acme-plumbing"
    assert (masked["level"], masked["logger"]) == ("INFO", "tests.logging")
    assert masked["message"] == "text to +*******0142 failed"
    assert (masked["to"], masked["attempt"]) == ("+*******0142", 2)
    assert str(masked["time"]).endswith("+00:00")
    assert NUMBER not in json.dumps(masked)
    full = asyncio.run(_json_in_a_call(JsonFormatter()))
    assert full["message"] == f"text to {NUMBER} failed" and full["to"] == NUMBER


def test_a_json_line_carries_the_traceback_masked() -> None:
    try:
        raise ValueError(f"no route to {NUMBER}")
    except ValueError:
        record = logging.getLogger("tests.logging").makeRecord(
            "tests.logging", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    CallContextFilter().filter(record)
    parsed = json.loads(JsonFormatter(mask_numbers=True).format(record))
    assert "ValueError: no route to +*******0142" in parsed["exception"]
    assert "\n" not in JsonFormatter(mask_numbers=True).format(record)  # one line per record


def test_the_web_server_s_access_log_is_masked_with_its_arguments_intact() -> None:
    access = logging.getLogger("uvicorn.access")
    root = logging.getLogger()
    touched = [root, *(logging.getLogger(name) for name in ("alembic", "faster_whisper", "httpx"))]
    levels = [logger.level for logger in touched]
    handlers, filters = list(root.handlers), list(access.filters)
    try:
        configure_logging(verbose=False)
        record = access.makeRecord(
            access.name,
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "GET", f"/audit/numbers/{NUMBER}", "1.1", 200),
            None,
        )
        assert access.filter(record)
        assert isinstance(record.args, tuple) and len(record.args) == 5  # uvicorn unpacks them
        assert record.getMessage() == (
            '127.0.0.1:5000 - "GET /audit/numbers/+*******0142 HTTP/1.1" 200'
        )
        configure_logging(verbose=True)  # debugging shows numbers in full
        assert not any(isinstance(f, PhoneNumberMask) for f in access.filters)
    finally:
        access.filters[:] = filters
        root.handlers[:] = handlers
        for logger, level in zip(touched, levels, strict=True):
            logger.setLevel(level)


def test_the_local_sms_transport_logs_only_the_last_four_digits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sms = OutgoingSms(
        to_number=NUMBER,
        from_number="+15125550100",
        body=f"Call us back at {NUMBER}",
    )
    with caplog.at_level(logging.INFO, logger="sms_sender.local_transport"):
        LocalSmsTransport().send(sms)
    (line,) = caplog.messages
    assert "+*******0142" in line and "+*******0100" in line
    assert "5550142" not in line and "Call us back" not in line
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="sms_sender.local_transport"):
        LocalSmsTransport().send(sms)
    (line,) = caplog.messages
    assert NUMBER in line and "Call us back" in line
