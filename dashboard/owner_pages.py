"""The owner pages' HTML: Jinja templates from ``dashboard/templates``, and the words and local
times they show.

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
CONSENT_DECISIONS = {
    "consent_granted": "Agreed to texts",
    "consent_declined": "Declined texts",
    "consent_unclear": "Unclear, so treated as no",
    "consent_not_asked": "Not asked",
    "revoked": "Asked not to be texted",
    "web_form_consent": "Agreed to texts on the callback form",
}
ANSWER_METHODS = {
    "verbal": "spoken answer",
    "keypad": "keypad",
    "spoken": "said on the call",
    "web_form": "ticked the SMS box on the callback form",
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
        consent_decision=_label(CONSENT_DECISIONS),
        answer_method=_label(ANSWER_METHODS),
    )
    environment.globals.update(local_time=local_time, call_clock=call_clock)
    return environment


_PAGES = _environment()


def render(template: str, **values: Any) -> str:
    """The page ``template`` filled in with ``values``."""
    return _PAGES.get_template(template).render(**values)
