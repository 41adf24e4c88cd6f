"""The calls page's search form: what the owner typed and chose, checked and turned into a
:class:`~dashboard.call_log.CallFilter`, and back into the query string that pager links and the
CSV download carry. Dates are days on the business's clock; a bad value is a clear error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from consent_ledger import ConsentStatus
from dashboard.call_log import CallFilter
from dashboard.owner_pages import STANDINGS

MAX_WORDS = 100
URGENCIES = (("", "any"), ("emergency", "emergency"), ("urgent", "urgent"), ("routine", "routine"))
CONSENTS = (("", "any"), *((status.value, STANDINGS[status.value]) for status in ConsentStatus))
HANDLED_CHOICES = (("", "any"), ("no", "not handled yet"), ("yes", "handled"))
_HANDLED = {"": None, "no": False, "yes": True}


class SearchError(ValueError):
    """A search the form cannot run; the message says what to change."""


@dataclass(frozen=True)
class CallSearch:
    """The search form's values as sent (empty: any)."""

    words: str = ""
    from_date: str = ""
    to_date: str = ""
    urgency: str = ""
    consent: str = ""
    handled: str = ""

    def query(self) -> str:
        """The non-empty values as a query string (``q=…&from=…``), for links."""
        pairs = {
            "q": self.words,
            "from": self.from_date,
            "to": self.to_date,
            "urgency": self.urgency,
            "consent": self.consent,
            "handled": self.handled,
        }
        return urlencode({name: value for name, value in pairs.items() if value})

    def call_filter(self, zone: str) -> CallFilter:
        """The filter these values ask for, days taken on the clock of ``zone``."""
        words = self.words.strip()
        if len(words) > MAX_WORDS:
            raise SearchError(f"Search for at most {MAX_WORDS} characters.")
        _require_choice("urgency", self.urgency, URGENCIES)
        _require_choice("texts", self.consent, CONSENTS)
        _require_choice("handled", self.handled, HANDLED_CHOICES)
        since = _day_start(self.from_date, zone, "From")
        until = _day_start(self.to_date, zone, "To", next_day=True)
        if since is not None and until is not None and until <= since:
            raise SearchError("The From date must not be after the To date.")
        return CallFilter(
            words=words,
            since=since,
            until=until,
            urgency=self.urgency or None,
            consent=self.consent or None,
            handled=_HANDLED[self.handled],
        )


def _require_choice(name: str, value: str, choices: tuple[tuple[str, str], ...]) -> None:
    if value not in {choice for choice, _ in choices}:
        raise SearchError(f"There is no {name} choice {value!r}.")


def _day_start(raw: str, zone: str, name: str, *, next_day: bool = False) -> datetime | None:
    """Midnight starting the day ``raw`` (YYYY-MM-DD) — or the day after — on ``zone``'s clock."""
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise SearchError(f"{name} must be a date like 2025-06-30.") from None
    if next_day:
        if day == date.max:
            return None
        day += timedelta(days=1)
    try:
        return datetime.combine(day, time(0), ZoneInfo(zone)).astimezone(UTC)
    except OverflowError:
        raise SearchError(f"{name} is too far from today.") from None
