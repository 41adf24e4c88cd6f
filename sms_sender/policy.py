"""A business's texting policy: follow-up delays, quiet hours, exclusions and owner notices.

The business configuration lives with the receptionist; it builds one ``SmsPolicy`` per business
and hands it to the planner, the inbound handler and the dispatcher. Everything here is checked
when the policy is built, so a policy that exists is one the SMS engine can obey.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sms_sender.templates import TemplateName, booking_link, shipped_template

MAX_TEXTS_PER_CONSENT = 4
NO_REPLY_DELAY_RANGE = (timedelta(hours=1), timedelta(hours=7))
DEFAULT_QUIET_HOURS_START = time(8, 0)
DEFAULT_QUIET_HOURS_END = time(20, 0)

FIXED_TEMPLATES = (
    TemplateName.HELP,
    TemplateName.OPT_OUT,
    TemplateName.OPT_IN,
    TemplateName.OWNER_OPT_OUT,
    TemplateName.OWNER_OPT_IN,
    TemplateName.NO_REPLY_FOLLOW_UP,
    TemplateName.CALLBACK_CHECK,
)
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class PolicyError(ValueError):
    """A texting policy that cannot be obeyed; the message names the setting."""


@dataclass(frozen=True)
class SmsPolicy:
    """What one business allows its follow-up texts to do.

    ``send_window_start``/``send_window_end`` bound, in the recipient's local time, when a
    follow-up after the confirmation may go out (8:00–20:00 by default).
    ``no_reply_follow_up_after`` (1–7 h) plans a nudge when the caller has not replied;
    ``callback_check_after`` plans a "did we reach you?" once the callback window has passed.
    ``excluded_numbers`` are never texted.
    ``owner_number`` receives call summaries and forwarded replies when the owner opted in.
    ``state_caps`` applies the 3-per-24-h limit of Florida, Oklahoma and Maryland.
    ``booking_url`` is shown in the confirmation and the follow-ups when set.
    """

    business_id: str
    business_name: str
    time_zone: str
    help_contact: str
    max_texts: int = 2
    send_window_start: time = DEFAULT_QUIET_HOURS_START
    send_window_end: time = DEFAULT_QUIET_HOURS_END
    no_reply_follow_up_after: timedelta | None = None
    callback_check_after: timedelta | None = None
    excluded_numbers: frozenset[str] = field(default_factory=frozenset)
    owner_number: str | None = None
    state_caps: bool = True
    booking_url: str | None = None

    def __post_init__(self) -> None:
        for name in ("business_id", "business_name", "help_contact"):
            if not getattr(self, name).strip():
                raise PolicyError(f"{name} must not be blank")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise PolicyError(f"unknown time zone {self.time_zone!r}") from None
        if not 1 <= self.max_texts <= MAX_TEXTS_PER_CONSENT:
            raise PolicyError(f"max_texts must be 1 to {MAX_TEXTS_PER_CONSENT}")
        if self.send_window_start >= self.send_window_end:
            raise PolicyError("send_window_start must be before send_window_end")
        if self.send_window_start.tzinfo or self.send_window_end.tzinfo:
            raise PolicyError("the send window is in the recipient's local time, not a zone")
        low, high = NO_REPLY_DELAY_RANGE
        delay = self.no_reply_follow_up_after
        if delay is not None and not low <= delay <= high:
            raise PolicyError("no_reply_follow_up_after must be between 1 and 7 hours")
        check = self.callback_check_after
        if check is not None and not timedelta(0) < check < timedelta(hours=24):
            raise PolicyError("callback_check_after must be more than 0 and under 24 hours")
        for number in (*self.excluded_numbers, *filter(None, [self.owner_number])):
            if not _E164.fullmatch(number):
                raise PolicyError(f"{number!r} is not an E.164 number")
        self._check_replies_fit()

    def _check_replies_fit(self) -> None:
        """The business name, help contact and booking link must leave every fixed reply within
        two segments."""
        fields = {
            "business_name": self.business_name,
            "help_contact": self.help_contact,
            "booking_link": booking_link(self.booking_url),
        }
        for name in FIXED_TEMPLATES:
            template = shipped_template(name)
            try:
                template.render(**{key: fields[key] for key in template.spec.fields})
            except ValueError as error:
                raise PolicyError(
                    f"business_name, help_contact or booking_url too long: {error}"
                ) from None

    @property
    def zone(self) -> ZoneInfo:
        """The business's own time zone."""
        return ZoneInfo(self.time_zone)

    def excludes(self, number: str) -> bool:
        """Whether ``number`` is on the business's never-text list."""
        return number in self.excluded_numbers
