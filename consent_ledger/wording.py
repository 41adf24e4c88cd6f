"""The consent records in plain words, for people who read them without us: what each kind of
event means, how the person expressed it, and when it happened on the business's clock with the
UTC instant beside it (to the second: the exact instants are in the stored events)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from consent_ledger.evidence import ConsentMethod, EventKind

DECISIONS: dict[str, str] = {
    EventKind.CONSENT_GRANTED: "Agreed to texts",
    EventKind.CONSENT_DECLINED: "Declined texts",
    EventKind.CONSENT_UNCLEAR: "Unclear, so treated as no",
    EventKind.CONSENT_NOT_ASKED: "Not asked",
    EventKind.REVOKED: "Asked not to be texted",
    EventKind.RESUBSCRIBED: "Opted back in to texts",
    EventKind.OWNER_NOTIFICATIONS_OPT_IN: "Owner turned call summary texts on",
    EventKind.OWNER_NOTIFICATIONS_OPT_OUT: "Owner turned call summary texts off",
    EventKind.WEB_FORM_CONSENT: "Agreed to texts on the callback form",
}
"""Each kind of event (the stored value) in words."""

METHODS: dict[str, str] = {
    ConsentMethod.VERBAL: "spoken answer",
    ConsentMethod.KEYPAD: "keypad",
    ConsentMethod.WEB_FORM: "ticked the SMS box on the callback form",
    ConsentMethod.SMS_KEYWORD: "text keyword",
    ConsentMethod.SMS_TEXT: "text in their own words",
    ConsentMethod.SPOKEN: "said on the call",
    ConsentMethod.OWNER: "the business owner",
}
"""Each way of expressing a decision (the stored value) in words."""

_LOCAL = "%Y-%m-%d %H:%M:%S %Z"
_UTC = "%H:%M:%S UTC"
_UTC_OTHER_DAY = "%Y-%m-%d %H:%M:%S UTC"


def decision(kind: str) -> str:
    """The event kind ``kind`` in words (an unknown one as stored)."""
    return DECISIONS.get(kind, kind)


def method(value: str) -> str:
    """The method ``value`` in words (an unknown one as stored)."""
    return METHODS.get(value, value)


def zone_or_utc(name: str | None) -> ZoneInfo:
    """The time zone ``name``; UTC when there is none or it is unknown."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def local_and_utc(instant: datetime, zone: ZoneInfo) -> str:
    """``2025-04-11 09:00:30 CDT (14:00:30 UTC)``: the business's clock, UTC beside it (with its
    date when that differs); just UTC when the zone is UTC."""
    in_utc = instant.astimezone(UTC)
    if zone.key == "UTC":
        return in_utc.strftime(_UTC_OTHER_DAY)
    local = instant.astimezone(zone)
    utc_format = _UTC if local.date() == in_utc.date() else _UTC_OTHER_DAY
    return f"{local.strftime(_LOCAL)} ({in_utc.strftime(utc_format)})"
