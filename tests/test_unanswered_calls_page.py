"""The owner's calls page, in a real browser, lists the calls the assistant never answered (the
owner took it; the caller hung up while it rang) under the calls it answered, readable on a
360 px phone without sideways scrolling."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dashboard import OWNER_TOKENS
from tests.browser_support import (
    DESKTOP_WIDTH,
    NARROW_PHONE_WIDTH,
    chromium,
    keep_screenshot,
    page_at,
    sideways_overflow,
)
from tests.conftest import serving_receptionist
from voice_agent.records.call_progress import OwnerLeg, ProgressReport, record_progress

ACME = "acme-plumbing"
AT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def test_unanswered_calls_are_listed_and_fit_a_phone() -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        serving_receptionist(f"sqlite:///{Path(folder) / 'r.db'}") as (_, server_url, engine),
    ):
        with engine.begin() as conn:
            token = OWNER_TOKENS.issue(conn, ACME, "", AT, timedelta(days=1)).secret
            for index in range(3):
                call_sid = f"CA{index:032d}"
                at = AT + timedelta(minutes=index)
                leg = OwnerLeg.TOOK_IT if index == 2 else None
                record_progress(conn, ProgressReport(call_sid, at, ACME, "+15125550142", leg))
                record_progress(
                    conn, ProgressReport(call_sid, at, status="completed", duration_seconds=41)
                )
        with chromium() as browser:
            for width in (NARROW_PHONE_WIDTH, DESKTOP_WIDTH):
                with page_at(browser, width) as page:
                    page.goto(f"{server_url}/owner/sign-in")
                    page.get_by_text("Sign in with an access token").click()
                    page.get_by_label("Access token").fill(token)
                    page.get_by_role("button", name="Sign in").click()
                    heading = page.get_by_role("heading", name="Calls the assistant did not answer")
                    heading.wait_for()
                    table = page.get_by_role("table").last
                    rows = table.get_by_role("row")
                    assert rows.count() == 4  # the header and three calls
                    assert "the owner took the call" in rows.nth(1).inner_text()
                    assert "41 s" in rows.nth(3).inner_text()
                    assert sideways_overflow(page) == 0
                    keep_screenshot(page, f"unanswered-calls-{width}")
