"""The owner pages' HTML: Jinja templates from ``dashboard/templates``, and the words and local
times they show (a consent decision and how it was made in the ledger's own words, the ones the
audit report uses).

Autoescaping is on for every template, whatever its name, so a transcript, a caller's name or a
text that holds markup is shown as text and never run. Times are stored in UTC and shown in the
business's time zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from consent_ledger import DECISIONS, METHODS

TEMPLATES = Path(__file__).resolve().parent / "templates"

OUTBOUND_STATES = {
    "scheduled": "queued",
    "claimed": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "undelivered": "not delivered",
    "failed": "failed",
    "cancelled": "cancelled",
    "blocked": "blocked",
}
INBOUND_INTENTS = {
    "opt_out": "opt-out (STOP)",
    "help": "asked for help (HELP)",
    "opt_in": "opted back in (START)",
    "possible_opt_out": "may be an opt-out: held for you to decide",
    "message": "reply",
}
TEXT_KINDS = {
    "confirmation": "confirmation",
    "no_reply_follow_up": "follow-up",
    "callback_check": "callback check",
    "help_reply": "answer to HELP",
    "opt_out_confirmation": "opt-out confirmation",
    "opt_in_confirmation": "opt-in confirmation",
    "owner_summary": "call summary to you",
    "owner_forward": "reply forwarded to you",
}
CONSENT_OUTCOMES = {
    "affirmative": "yes: may be texted",
    "declined": "no",
    "unclear": "unclear: no texts",
    "not_asked": "not asked",
}


def _label(labels: dict[str, str]) -> Any:
    """A filter that shows a stored value in words (an unknown value as it is)."""
    return lambda value: "—" if value is None else labels.get(str(value), str(value))


def local_time(value: datetime | None, zone: str) -> str:
    """``value`` on the business's clock, with the zone's abbreviation."""
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def call_clock(started_at: datetime, seconds: float, zone: str) -> str:
    """The time of day ``seconds`` into a call that started at ``started_at``."""
    at = started_at + timedelta(seconds=seconds)
    return at.astimezone(ZoneInfo(zone)).strftime("%H:%M:%S")


def page_environment(folder: Path) -> Environment:
    """Jinja for the HTML pages in ``folder``: autoescaped whatever the name, strict."""
    return Environment(
        loader=FileSystemLoader(folder),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _environment() -> Environment:
    environment = page_environment(TEMPLATES)
    environment.filters.update(
        outbound_state=_label(OUTBOUND_STATES),
        inbound_intent=_label(INBOUND_INTENTS),
        text_kind=_label(TEXT_KINDS),
        consent_outcome=_label(CONSENT_OUTCOMES),
        consent_decision=_label(DECISIONS),
        answer_method=_label(METHODS),
    )
    environment.globals.update(local_time=local_time, call_clock=call_clock)
    return environment


_PAGES = _environment()


def render(template: str, **values: Any) -> str:
    """The page ``template`` filled in with ``values``."""
    return _PAGES.get_template(template).render(**values)
