"""The settings an owner changes from the settings page, and the record of every change.

The business's profile belongs to the receptionist (``voice_agent``); the dashboard states here,
as the small :class:`SettingsStore` protocol, what it reads and writes of it, and the receptionist
supplies the implementation (which checks a change with the same rules as a business file). Each
change is a row of ``settings_changes``: which setting, its old and new value in words, when, and
who (the owner token's label, or the signed-in person's label and last four digits). A change is
read by the next call: the receptionist reads the business afresh for every call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, time
from typing import Protocol

from sqlalchemy import Connection, insert, select

from consent_ledger import stored_instant
from dashboard.tables import settings_changes

SETTING_LABELS = {
    "callback_time": "Callback promise",
    "owner_phone": "Ring first: your phone",
    "ring_owner_first": "Ring your phone first",
    "ring_seconds": "Ring for (seconds)",
    "recording_enabled": "Record calls",
    "max_texts": "Most texts a caller may agree to",
    "no_reply_follow_up_hours": "Nudge after no reply (hours)",
    "callback_check_hours": "Ask 'did we reach you?' after (hours)",
    "excluded_numbers": "Never text these numbers",
    "hours_start": "Open from",
    "hours_end": "Open until",
    "open_days": "Open on",
    "after_hours_callback": "Callback promise outside your hours",
    "booking_url": "Booking link",
}
"""Each setting's name on the page and in the record of changes."""
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class SettingsError(ValueError):
    """A change the rules refuse; the message says which setting and why, in words."""


@dataclass(frozen=True)
class OwnerSettings:
    """The business's settings an owner may change."""

    callback_time: str
    owner_phone: str
    ring_owner_first: bool
    ring_seconds: int
    recording_enabled: bool
    max_texts: int
    no_reply_follow_up_hours: float | None
    callback_check_hours: float | None
    excluded_numbers: tuple[str, ...]
    hours_start: time | None
    hours_end: time | None
    open_days: tuple[int, ...]
    after_hours_callback: str
    booking_url: str | None


@dataclass(frozen=True)
class ConsentScriptText:
    """The consent script as callers hear it now: read-only, from its versioned file."""

    version: str
    text: str


@dataclass(frozen=True)
class SettingsChange:
    setting: str
    old: str
    new: str
    at: datetime
    by: str


class SettingsStore(Protocol):
    """The business's changeable settings; every method runs on the caller's ``conn``."""

    def settings(self, conn: Connection, business_id: str) -> OwnerSettings | None:
        """The business's settings now; None when there is no such business."""
        ...

    def change(
        self, conn: Connection, business_id: str, wanted: OwnerSettings, now: datetime
    ) -> OwnerSettings:
        """Store ``wanted`` at ``now`` as checked by the business rules (numbers made E.164);
        SettingsError when a rule refuses it."""
        ...

    def consent_script(self, conn: Connection, business_id: str) -> ConsentScriptText | None:
        """The consent script the business's callers hear now."""
        ...


def shown(setting: str, value: object) -> str:
    """A setting's value in words, as the record of changes keeps it."""
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if setting == "open_days" and isinstance(value, tuple):
        return ", ".join(DAY_NAMES[day] for day in value)
    if isinstance(value, tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


def record_changes(
    conn: Connection,
    business_id: str,
    old: OwnerSettings,
    new: OwnerSettings,
    by: str,
    now: datetime,
) -> list[SettingsChange]:
    """Keep a row for every setting whose value changed from ``old`` to ``new``."""
    changes = [
        SettingsChange(item.name, shown(item.name, before), shown(item.name, after), now, by)
        for item in fields(OwnerSettings)
        if (before := getattr(old, item.name)) != (after := getattr(new, item.name))
    ]
    if changes:
        conn.execute(
            insert(settings_changes),
            [
                {
                    "business_id": business_id,
                    "setting": change.setting,
                    "old_value": change.old,
                    "new_value": change.new,
                    "changed_at": now,
                    "changed_by": by,
                }
                for change in changes
            ],
        )
    return changes


def recent_changes(conn: Connection, business_id: str, limit: int) -> list[SettingsChange]:
    """The business's latest ``limit`` setting changes, newest first."""
    rows = conn.execute(
        select(settings_changes)
        .where(settings_changes.c.business_id == business_id)
        .order_by(settings_changes.c.id.desc())
        .limit(limit)
    )
    return [
        SettingsChange(
            row.setting,
            row.old_value,
            row.new_value,
            stored_instant(row.changed_at),
            row.changed_by,
        )
        for row in rows
    ]


def form_values(settings: OwnerSettings) -> dict[str, object]:
    """The settings as the form shows them (numbers a line each, no value as empty)."""
    values: dict[str, object] = {
        item.name: getattr(settings, item.name) for item in fields(OwnerSettings)
    }
    values["excluded_numbers"] = "\n".join(settings.excluded_numbers)
    values["open_days"] = [str(day) for day in settings.open_days]
    values["booking_url"] = settings.booking_url or ""
    for name in ("hours_start", "hours_end"):
        at = values[name]
        values[name] = at.strftime("%H:%M") if isinstance(at, time) else ""
    for name in ("no_reply_follow_up_hours", "callback_check_hours"):
        hours = values[name]
        values[name] = "" if hours is None else f"{hours:g}"
    return values


def settings_from_form(form: Mapping[str, str], days: Sequence[str]) -> OwnerSettings:
    """The settings the form asks for (``days``: the open days ticked, 0 = Monday); SettingsError
    naming the setting a value cannot be."""
    if not all(day in {"0", "1", "2", "3", "4", "5", "6"} for day in days):
        raise SettingsError(f"{SETTING_LABELS['open_days']}: must be days of the week.")
    return OwnerSettings(
        callback_time=form.get("callback_time", "").strip(),
        owner_phone=form.get("owner_phone", "").strip(),
        ring_owner_first=form.get("ring_owner_first") == "on",
        ring_seconds=int(_number(form, "ring_seconds", whole=True) or 0),
        recording_enabled=form.get("recording_enabled") == "on",
        max_texts=int(_number(form, "max_texts", whole=True) or 0),
        no_reply_follow_up_hours=_number(form, "no_reply_follow_up_hours"),
        callback_check_hours=_number(form, "callback_check_hours"),
        excluded_numbers=tuple(
            line.strip() for line in form.get("excluded_numbers", "").splitlines() if line.strip()
        ),
        hours_start=_time_of_day(form, "hours_start"),
        hours_end=_time_of_day(form, "hours_end"),
        open_days=tuple(sorted({int(day) for day in days})),
        after_hours_callback=form.get("after_hours_callback", "").strip(),
        booking_url=form.get("booking_url", "").strip() or None,
    )


def _time_of_day(form: Mapping[str, str], name: str) -> time | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        return time.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"{SETTING_LABELS[name]}: must be a time like 08:00.") from None


def _number(form: Mapping[str, str], name: str, *, whole: bool = False) -> float | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise SettingsError(f"{SETTING_LABELS[name]}: must be {kind}.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SettingsError(f"{SETTING_LABELS[name]}: must be a number.")
    return value
