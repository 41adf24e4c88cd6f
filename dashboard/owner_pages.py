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
    "owner_reply": "your reply",
}
CONSENT_OUTCOMES = {
    "affirmative": "said yes on this call",
    "declined": "said no on this call",
    "unclear": "unclear on this call, treated as no",
    "not_asked": "not asked on this call",
}
STANDINGS = {
    "granted": "agreed to texts",
    "revoked": "opted out",
    "declined": "said no to texts",
    "unclear": "unclear, treated as no",
    "not_asked": "never asked",
    "none": "nothing on record",
}
"""A number's consent standing now, in a few words (the calls list and its filter)."""
STANDING_METHODS = {
    "verbal": "by saying so on a call",
    "keypad": "on the phone's keypad during a call",
    "web_form": "on the web form",
    "sms_keyword": "by texting STOP",
    "sms_text": "by a text asking for no more texts",
    "spoken": "by saying so on a call",
    "owner": "by you, on their behalf",
}
"""How the event a standing rests on came about."""
SEND_REASONS = {
    "owner_not_opted_in": (
        "Not sent: call summaries to your phone are turned off; "
        "ask your operator to turn them on or text START from your phone."
    ),
    "not_the_owner": "Not sent: this is not the owner's phone number on file.",
    "no_consent": "Not sent: the caller never agreed to texts.",
    "declined": "Not sent: the caller said no to texts.",
    "revoked": "Not sent: the caller opted out of texts.",
    "opted_out": "Not sent: the caller opted out of texts.",
    "expired": "Not sent: the time the caller allowed for texts had ended.",
    "cap_reached": "Not sent: the caller agreed to fewer texts than that.",
    "invalid_record": "Not sent: the consent record could not be read, so no text went out.",
    "consent_unreadable": "Not sent: the consent record could not be read, so no text went out.",
    "excluded": "Not sent: this number is on your do-not-text list.",
    "no_policy": "Not sent: the business's texting settings could not be found.",
    "unknown_kind": "Not sent: this kind of text is not allowed.",
    "opt_out_confirmation_too_late": "Not sent: more than 5 minutes had passed since the opt-out.",
    "rolling_cap_reached": "Not sent: this number already had the most texts allowed in 24 hours.",
    "state_cap_reached": "Not sent: the state's limit of 3 texts in 24 hours was reached.",
    "expired_before_send_window": (
        "Not sent: the time allowed for texts ended before the caller's daytime hours began."
    ),
    "quiet_hours": "Waiting for the caller's daytime hours.",
    "no_permission": (
        "Not sent: the number had neither texted you in the last 24 hours nor agreed to texts."
    ),
    "held_for_review": (
        "Waiting: a text from this number may mean stop; decide it on the Texts page."
    ),
    "claim expired": "Retrying after an interrupted send.",
}
"""Why a text was not sent (or not yet), in words; a reason not listed is shown as written."""
REPLY_REFUSALS = {
    "opted_out": "This number opted out of texts, so you cannot text it. Call them instead.",
    "excluded": "This number is on your do-not-text list, so you cannot text it.",
    "held_for_review": (
        "This number sent a text that may mean stop. Decide it on the Texts page before replying."
    ),
    "no_permission": (
        "You can text only someone who texted you in the last 24 hours or agreed to texts "
        "on the call. Call them instead."
    ),
    "consent_unreadable": (
        "The consent record of this number cannot be read, so no text can be sent; "
        "your operator can check it."
    ),
    "no_texting_number": "Your business has no number to text from; ask your operator.",
}
"""Why the owner may not text a reply to a number, in words."""


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


def live_call_line(started_at: datetime, zone: str, now: datetime) -> str:
    """A call in progress in words: since when, on the business's clock, and for how long."""
    minutes = max(0, int((now - started_at).total_seconds() // 60))
    since = started_at.astimezone(ZoneInfo(zone)).strftime("%H:%M:%S %Z")
    return f"The assistant is on a call that started at {since} ({minutes} min ago)."


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
        standing=_label(STANDINGS),
        standing_method=_label(STANDING_METHODS),
        send_reason=_label(SEND_REASONS),
        reply_refusal=_label(REPLY_REFUSALS),
    )
    environment.globals.update(
        local_time=local_time, call_clock=call_clock, live_call_line=live_call_line
    )
    return environment


_PAGES = _environment()


def render(template: str, **values: Any) -> str:
    """The page ``template`` filled in with ``values``."""
    return _PAGES.get_template(template).render(**values)
