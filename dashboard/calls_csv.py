"""The calls the owner searched for, as a CSV file for a spreadsheet: one row per call, times on
the business's clock, the consent standing in words.

A cell a spreadsheet would run as a formula (text from a caller that starts with ``=``, ``+``,
``-`` or ``@``) is written with a leading apostrophe, so opening the file runs nothing; phone
numbers, which are E.164 and start with ``+``, are plain digits after it and stay as they are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from dashboard.call_log import BusinessProfile, CallListing
from dashboard.owner_pages import STANDINGS, local_time

HEADER = (
    "started",
    "caller name",
    "caller number",
    "need",
    "urgency",
    "texts now",
    "handled",
    "call page",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def calls_csv(business: BusinessProfile, listings: Iterable[CallListing], base_url: str) -> str:
    """The CSV text of ``listings``; ``base_url`` makes each call's page link absolute."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    zone = business.time_zone
    for call in listings:
        writer.writerow(
            (
                local_time(call.started_at, zone),
                _text(call.caller_name),
                call.caller_number,
                _text(call.need),
                call.urgency or "",
                STANDINGS.get(call.consent_status or "none", call.consent_status or ""),
                "" if call.handled_at is None else local_time(call.handled_at, zone),
                f"{base_url.rstrip('/')}/owner/calls/{call.call_sid}",
            )
        )
    return out.getvalue()


def _text(value: str | None) -> str:
    """Free text from a caller, made safe to open in a spreadsheet."""
    if not value:
        return ""
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value
