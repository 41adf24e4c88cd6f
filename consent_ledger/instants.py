"""UTC instants in the ledger: checking them, writing them as text and reading them back.

Every time in a consent record is an aware UTC instant, written as ISO-8601 with microseconds and a
``Z`` suffix (``2025-04-11T14:03:07.250000Z``), so that the same instant always has the same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime

_INSTANT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_TWO_DIGITS = tuple(f"{number:02d}" for number in range(100))
_THREE_DIGITS = tuple(f"{number:03d}" for number in range(1000))


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

    A ValueError when ``value`` is not an aware UTC datetime (see :func:`require_utc`).
    """
    return format_checked_instant(require_utc("instant", value))


def format_checked_instant(value: datetime) -> str:
    """:func:`format_instant` for a datetime that :func:`require_utc` has already accepted.

    Safe without checking again because a datetime is immutable: once accepted, it stays an aware
    instant at offset zero, whose fields are its UTC fields. The evidence classes check every time
    they hold when they are built and are frozen, so their ``to_dict`` writes their instants (some
    25 per append, where the check would cost as much as the formatting) through this.

    The digits are looked up, two or three at a time, instead of ``%``-formatted: CPython turns
    every ``%02d`` into a new string and then pads it, which made formatting the largest single
    cost of an append. ``strftime`` is slower still, and gives years before 1000 fewer than the
    four digits that :func:`parse_instant` needs.
    """
    year, microsecond = value.year, value.microsecond
    return (
        f"{_TWO_DIGITS[year // 100]}{_TWO_DIGITS[year % 100]}"
        f"-{_TWO_DIGITS[value.month]}-{_TWO_DIGITS[value.day]}"
        f"T{_TWO_DIGITS[value.hour]}:{_TWO_DIGITS[value.minute]}:{_TWO_DIGITS[value.second]}"
        f".{_THREE_DIGITS[microsecond // 1000]}{_THREE_DIGITS[microsecond % 1000]}Z"
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
