"""Businesses we answer for: their profile, YAML import, and lookup by the number called."""

from __future__ import annotations

from datetime import UTC, datetime, time
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import Connection, delete, insert, select

from dashboard.people import sync_config_owner
from sms_sender import record_setup_choice
from voice_agent.phone import InvalidPhoneNumber, to_e164
from voice_agent.records.tables import business_numbers, businesses

PROMPTS_DIR = files("prompts")


class BusinessConfigError(ValueError):
    """A business file that cannot be loaded; the message names the file and the field."""


class Business(BaseModel):
    """One business's profile, as configured by its owner."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    twilio_numbers: tuple[str, ...] = Field(min_length=1)
    owner_phone: str
    ring_owner_first: bool = True
    ring_seconds: int = Field(20, ge=5, le=600)
    time_zone: str = "America/New_York"
    services: str = Field("", max_length=500)
    callback_time: str = Field("as soon as we can", min_length=1, max_length=200)
    max_texts: int = Field(2, ge=1, le=4)
    help_contact: str = Field(min_length=1, max_length=200)
    consent_script_version: str = Field("v1", pattern=r"^v[0-9]{1,4}$")
    recording_enabled: bool = False
    transcript_retention_days: int = Field(90, ge=1, le=3650)
    consent_retention_years: int = Field(5, ge=5, le=20)
    sms_send_window_start: time = time(8, 0)
    sms_send_window_end: time = time(20, 0)
    no_reply_follow_up_hours: float | None = Field(None, ge=1, le=7)
    callback_check_hours: float | None = Field(None, gt=0, lt=24)
    excluded_numbers: tuple[str, ...] = ()
    sms_state_caps: bool = True
    on_call_phones: tuple[str, ...] = Field((), max_length=10)  # rung together (Twilio's limit)
    on_call_start: time | None = None  # on-call hours, in the business's time zone; neither set:
    on_call_end: time | None = None  # at any hour. A start after the end spans midnight.
    address: str = Field("", max_length=300)
    contact_email: str = Field("", max_length=200)
    owner_email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    booking_url: str | None = Field(None, max_length=100)
    hours_start: time | None = None
    hours_end: time | None = None
    open_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    after_hours_callback: str = Field("on the next business day", min_length=1, max_length=200)
    """Business hours (on ``time_zone``'s clock, Monday = 0): a call outside them is promised
    ``after_hours_callback`` instead of ``callback_time``. No hours: always open."""

    def answering_at(self, at: datetime) -> Business:
        """The business as a call that starts at ``at`` sees it: outside its hours, its callback
        promise is the after-hours one."""
        if self.is_open(at):
            return self
        return self.model_copy(update={"callback_time": self.after_hours_callback})

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` falls in the business hours (always, when none are set)."""
        if self.hours_start is None or self.hours_end is None:
            return True
        local = at.astimezone(ZoneInfo(self.time_zone))
        return local.weekday() in self.open_days and (
            self.hours_start <= local.time().replace(tzinfo=None) < self.hours_end
        )

    @field_validator("twilio_numbers", mode="before")
    @classmethod
    def _numbers_e164(cls, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list | tuple):
            raise ValueError("must be a list of phone numbers")
        return tuple(_e164(number) for number in value)

    @field_validator("excluded_numbers", "on_call_phones", mode="before")
    @classmethod
    def _listed_e164(cls, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list | tuple):
            raise ValueError("must be a list of phone numbers")
        return tuple(_e164(number) for number in value)

    @field_validator("owner_phone", mode="before")
    @classmethod
    def _owner_e164(cls, value: Any) -> str:
        return _e164(value)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("booking_url")
    @classmethod
    def _web_link(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if (
            parts.scheme != "https"
            or not parts.hostname
            or not value.isascii()
            or not value.isprintable()
            or " " in value
        ):
            raise ValueError("must be an https:// web address without spaces")
        return value

    @field_validator("consent_script_version")
    @classmethod
    def _script_exists(cls, value: str) -> str:
        if not (PROMPTS_DIR / "consent" / f"{value}.txt").is_file():
            raise ValueError(f"no consent script prompts/consent/{value}.txt")
        return value

    @model_validator(mode="after")
    def _send_window_is_a_daytime_span(self) -> Business:
        if self.sms_send_window_start >= self.sms_send_window_end:
            raise ValueError("sms_send_window_start must be before sms_send_window_end")
        return self

    @model_validator(mode="after")
    def _on_call_hours_are_a_span(self) -> Business:
        if (self.on_call_start is None) != (self.on_call_end is None):
            raise ValueError("give both on_call_start and on_call_end, or neither")
        if self.on_call_start is not None and self.on_call_start == self.on_call_end:
            raise ValueError("on_call_start and on_call_end must differ (leave both out: always)")
        return self

    def on_call_at(self, instant: datetime) -> bool:
        """Whether an on-call phone may be rung at ``instant``: the business names some, and
        it is within the on-call hours on the business's clock."""
        if not self.on_call_phones:
            return False
        if self.on_call_start is None or self.on_call_end is None:
            return True
        local = instant.astimezone(ZoneInfo(self.time_zone)).time()
        if self.on_call_start < self.on_call_end:
            return self.on_call_start <= local < self.on_call_end
        return local >= self.on_call_start or local < self.on_call_end  # across midnight

    @field_validator("open_days", mode="before")
    @classmethod
    def _week_days(cls, value: Any) -> tuple[int, ...]:
        if not isinstance(value, list | tuple) or not all(
            isinstance(day, int) and 0 <= day <= 6 for day in value
        ):
            raise ValueError("must be days of the week, 0 (Monday) to 6 (Sunday)")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _hours_are_a_daytime_span(self) -> Business:
        if (self.hours_start is None) != (self.hours_end is None):
            raise ValueError("business hours need both an opening and a closing time")
        start, end = self.hours_start, self.hours_end
        if start is not None and end is not None and start >= end:
            raise ValueError("business hours must open before they close")
        return self


def _e164(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"phone numbers must be strings, got {value!r}")
    try:
        return to_e164(value)
    except InvalidPhoneNumber as error:
        raise ValueError(str(error)) from None


OWNER_SUMMARY_TEXTS = "owner_summary_texts"
"""A business entry's answer, when it is set up, to a text summary to the owner after every call
(true or false): recorded as a ledger event at import, not kept in the profile (the ledger is its
record, and the owner may change it later)."""


def load_businesses(path: Path) -> list[Business]:
    """Parse and validate a businesses YAML file (``businesses: [...]``)."""
    return [business for business, _answer in _load(path)]


def _load(path: Path) -> list[tuple[Business, bool | None]]:
    """Each business of the file at ``path`` with its owner's answer about summary texts,
    refusing a business whose texts could not be written (a name, contact or booking link too
    long for them)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise BusinessConfigError(f"{path}: cannot read: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("businesses"), list):
        raise BusinessConfigError(f"{path}: expected a mapping with a 'businesses' list")
    from sms_sender import PolicyError
    from voice_agent.records.sms_policies import sms_policy  # it imports this module

    loaded: list[tuple[Business, bool | None]] = []
    for index, entry in enumerate(document["businesses"]):
        answer = entry.get(OWNER_SUMMARY_TEXTS) if isinstance(entry, dict) else None
        if answer is not None and not isinstance(answer, bool):
            raise BusinessConfigError(
                f"{path}: business #{index + 1}: {OWNER_SUMMARY_TEXTS}: must be true or false"
            )
        if isinstance(entry, dict):
            entry = {key: value for key, value in entry.items() if key != OWNER_SUMMARY_TEXTS}
        try:
            business = Business.model_validate(entry)
            sms_policy(business)  # its texts can be written: name, contact and link fit
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in issue['loc'])}: {issue['msg']}"
                for issue in error.errors()
            )
            raise BusinessConfigError(f"{path}: business #{index + 1}: {problems}") from None
        except PolicyError as error:
            raise BusinessConfigError(f"{path}: business #{index + 1}: {error}") from None
        loaded.append((business, answer))
    _refuse_duplicates(path, [business for business, _answer in loaded])
    return loaded


def _refuse_duplicates(path: Path, loaded: list[Business]) -> None:
    ids = [business.id for business in loaded]
    numbers = [number for business in loaded for number in business.twilio_numbers]
    for label, values in (("id", ids), ("Twilio number", numbers)):
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise BusinessConfigError(f"{path}: duplicate {label}: {', '.join(repeated)}")


def save_business(conn: Connection, business: Business) -> None:
    """Insert or replace a business and its numbers."""
    row = business.model_dump(exclude={"twilio_numbers"})
    row["excluded_numbers"] = list(business.excluded_numbers)
    row["on_call_phones"] = list(business.on_call_phones)
    row["open_days"] = list(business.open_days)
    conn.execute(delete(business_numbers).where(business_numbers.c.business_id == business.id))
    conn.execute(
        delete(business_numbers).where(business_numbers.c.number.in_(business.twilio_numbers))
    )
    conn.execute(delete(businesses).where(businesses.c.id == business.id))
    conn.execute(insert(businesses).values(**row))
    conn.execute(
        insert(business_numbers),
        [{"number": number, "business_id": business.id} for number in business.twilio_numbers],
    )


def import_businesses(conn: Connection, path: Path, at: datetime | None = None) -> list[Business]:
    """Validate the businesses file at ``path``, then store each business (nothing on error),
    set up its owner phone as its first owner, and record the owner's answer about summary texts
    (``owner_summary_texts``) as a ledger event when the phone has made no choice yet."""
    loaded = _load(path)
    now = at or datetime.now(UTC)
    for business, answer in loaded:
        save_business(conn, business)
        sync_config_owner(conn, business.id, business.owner_phone, now)
        if answer is not None:
            record_setup_choice(conn, business.id, business.name, business.owner_phone, answer, now)
    return [business for business, _answer in loaded]


def business_for_number(conn: Connection, number: str) -> Business | None:
    """The business that owns the Twilio number that was called, if any."""
    business_id = conn.execute(
        select(business_numbers.c.business_id).where(business_numbers.c.number == number)
    ).scalar_one_or_none()
    return None if business_id is None else get_business(conn, business_id)


def get_business(conn: Connection, business_id: str) -> Business | None:
    row = conn.execute(select(businesses).where(businesses.c.id == business_id)).mappings().first()
    if row is None:
        return None
    numbers = conn.execute(
        select(business_numbers.c.number)
        .where(business_numbers.c.business_id == business_id)
        .order_by(business_numbers.c.number)
    ).scalars()
    return Business.model_validate({**row, "twilio_numbers": list(numbers)})


def business_time_zones(conn: Connection) -> dict[str, str]:
    """Each business's time zone, by business id (what the CLI shows times in)."""
    rows = conn.execute(select(businesses.c.id, businesses.c.time_zone))
    return {business_id: zone for business_id, zone in rows}


def list_businesses(conn: Connection) -> list[Business]:
    ids = conn.execute(select(businesses.c.id).order_by(businesses.c.id)).scalars().all()
    return [business for business in (get_business(conn, i) for i in ids) if business]
