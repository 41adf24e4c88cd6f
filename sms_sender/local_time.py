"""Where a phone number lives: its time zones and state, and when texting it is allowed.

The zones come from the number's area code (``phonenumbers.timezone``); an area code that spans
two zones must be inside the send window in both. A number with no known zone (toll-free,
foreign) falls back to the business's zone. The state comes from ``phonenumbers.geocoder``; in
Florida, Oklahoma and Maryland the law caps solicitations at three per 24 hours.

Windows are computed on local wall-clock dates with ``zoneinfo``, so DST changes move the UTC
instants and never the local hours.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

CAPPED_STATES = frozenset({"Florida", "Oklahoma", "Maryland", "FL", "OK", "MD"})
STATE_CAP = 3
STATE_CAP_PERIOD = timedelta(hours=24)
_UNKNOWN_ZONE = "Etc/Unknown"
_MAX_DAYS_AHEAD = 3


@lru_cache(maxsize=4096)
def _parsed_zones(number: str) -> tuple[str, ...]:
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return ()
    zones = number_zones.time_zones_for_number(parsed)
    return tuple(zone for zone in zones if zone != _UNKNOWN_ZONE)


def recipient_zones(number: str, fallback_zone: str) -> tuple[ZoneInfo, ...]:
    """The zones ``number`` may be in; the fallback when its area code names none or many."""
    names = _parsed_zones(number)
    if not names or len(names) > 2:
        names = (fallback_zone,)
    zones = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return tuple(zones) or (ZoneInfo(fallback_zone),)


@lru_cache(maxsize=4096)
def recipient_state(number: str) -> str:
    """The US state (or Canadian province) the number's area code belongs to, in English; ''."""
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return ""
    from phonenumbers import geocoder  # its place-name tables take half a second: on first use

    description = geocoder.description_for_number(parsed, "en")
    return str(description).rsplit(", ", 1)[-1].strip()


def state_cap(number: str) -> int | None:
    """Texts allowed to ``number`` per 24 hours by its state's law, or None where none applies."""
    return STATE_CAP if recipient_state(number) in CAPPED_STATES else None


def in_send_window(at: datetime, zones: tuple[ZoneInfo, ...], start: time, end: time) -> bool:
    """Whether ``at`` falls inside ``[start, end)`` local time in every one of ``zones``."""
    return all(start <= at.astimezone(zone).time().replace(tzinfo=None) < end for zone in zones)


def next_send_time(at: datetime, zones: tuple[ZoneInfo, ...], start: time, end: time) -> datetime:
    """The first instant at or after ``at`` inside the send window in every zone (UTC)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("next_send_time needs an aware datetime")
    candidate = at.astimezone(UTC)
    for _ in range(len(zones) * _MAX_DAYS_AHEAD + 1):
        if in_send_window(candidate, zones, start, end):
            return candidate
        candidate = max(_window_opening(candidate, zone, start, end) for zone in zones)
    raise ValueError("the send windows of this number's zones never overlap")


def _window_opening(at: datetime, zone: ZoneInfo, start: time, end: time) -> datetime:
    """When the window next opens in ``zone`` (``at`` itself when it is already open there)."""
    local = at.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start <= clock < end:
        return at
    day = local.date() if clock < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
