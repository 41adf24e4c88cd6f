"""UTC instants in the ledger: checking them, writing them as text and reading them back.

Every time in a consent record is an aware UTC instant, written as ISO-8601 with microseconds and a
``Z`` suffix (``2025-04-11T14:03:07.250000Z``), so that the same instant always has the same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime

_INSTANT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_INSTANT_FIELDS = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"


def require_utc(name: str, value: object) -> datetime:
    """``value`` when it is an aware datetime at UTC offset zero; else a ValueError naming it."""
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {type(value).__name__}")
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"{name} must be timezone-aware UTC, got a naive datetime")
    if offset:
        raise ValueError(f"{name} must be in UTC, got offset {offset}")
    return value


def format_instant(value: datetime) -> str:
    """The canonical text of a UTC instant: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

    The fields are formatted directly: half the cost of ``strftime`` (an append writes some 25
    instants), and years before 1000 get their four digits, which :func:`parse_instant` needs.
    """
    require_utc("instant", value)
    return _INSTANT_FIELDS % (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def parse_instant(text: object) -> datetime:
    """The UTC instant written by :func:`format_instant`; any other form is a ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"an instant must be a string, got {type(text).__name__}")
    try:
        instant = datetime.strptime(text, _INSTANT_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"not a canonical UTC instant: {text!r}") from None
    if format_instant(instant) != text:
        raise ValueError(f"not a canonical UTC instant: {text!r}")
    return instant


def stored_instant(value: datetime) -> datetime:
    """A datetime read from a database column, as an aware UTC instant.

    SQLite keeps no time zone, so a naive value is the UTC instant that was written.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
