"""The owner pages in a real browser (headless Chromium) at a phone's 390 px and a desk's 1280 px:
sign in, search, open a call, call back (the ``tel:`` link), text a reply, mark the call handled,
change a setting, watch the "on a call now" list update itself;
and at 360 px no owner page scrolls sideways, every control is at least 44 px square and no text is
too small to read without zooming. Screenshots are kept in ``var/screenshots/``.

The application runs under uvicorn on a loopback port, over the records of
``test_owner_dashboard`` plus a text the caller sent just now (so a reply may go) and a follow-up
waiting to be sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, insert

from dashboard import OWNER_TOKENS
from sms_sender import InboundSms, OutboxKind, PlannedText, handle_inbound, queue_text
from tests.browser_support import (
    NARROW_PHONE_WIDTH,
    PHONE_WIDTH,
    WIDTHS,
    chromium,
    keep_screenshot,
    page_at,
    sideways_overflow,
)
from tests.conftest import ROOT, receptionist_settings
from tests.test_owner_dashboard import (
    ACME,
    ACME_NUMBER,
    CALL_BROKEN,
    CALL_NO,
    CALL_YES,
    OTHER_CALLER,
    _record_history,
)
from voice_agent.records.businesses import import_businesses
from voice_agent.records.migrate import upgrade
from voice_agent.records.sms_policies import policy_for
from voice_agent.records.tables import stream_credential_uses
from voice_agent.services import build_services
from voice_agent.web.local_server import free_port, serving

MIN_TARGET = 44
MIN_FONT_PX = 14
_SMALL_TARGETS = """
() => [...document.querySelectorAll('a, button, input, select, textarea, summary')]
  .filter(el => el.type !== 'hidden' && el.getClientRects().length > 0)
  .filter(el => { const r = el.getBoundingClientRect(); return r.right > 0 && r.bottom > 0; })
  .map(el => { const r = el.getBoundingClientRect();
               return {what: el.outerHTML.slice(0, 80), width: r.width, height: r.height}; })
  .filter(box => box.width < MIN || box.height < MIN)
""".replace("MIN", str(MIN_TARGET))
_SMALL_TEXT = """
() => [...document.querySelectorAll('body *')]
  .filter(el => [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
  .filter(el => el.getClientRects().length > 0)
  .map(el => ({what: el.outerHTML.slice(0, 80), size: parseFloat(getComputedStyle(el).fontSize)}))
  .filter(text => text.size < MIN)
""".replace("MIN", str(MIN_FONT_PX))


@dataclass(frozen=True)
class Site:
    url: str
    token: str
    engine: Engine


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("owner-browser")
    settings = receptionist_settings(
        f"sqlite:///{folder / 'receptionist.db'}", port=free_port(), audio_dir=folder / "audio"
    )
    upgrade(settings.database_url)
    services = build_services(settings)
    engine = services.engine
    now = datetime.now(UTC)
    with engine.begin() as conn:
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
    _record_history(engine)
    with engine.begin() as conn:
        policy = policy_for(conn, ACME)
        assert policy is not None
        handle_inbound(
            conn, InboundSms("SM" + "a" * 32, OTHER_CALLER, ACME_NUMBER, "Can you come today?"),
            policy, now - timedelta(minutes=20),
        )  # fmt: skip
        queue_text(
            conn,
            PlannedText(
                ACME, CALL_NO, OTHER_CALLER, ACME_NUMBER, OutboxKind.CALLBACK_CHECK,
                "Did we reach you?", "", now + timedelta(hours=6),
            ),
        )  # fmt: skip
        token = OWNER_TOKENS.issue(conn, ACME, "Acme owner", now, timedelta(days=1)).secret
    try:
        with serving(services) as url:
            yield Site(url, token, engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _sign_in(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/owner/sign-in")
    page.get_by_text("Sign in with an access token").click()
    page.get_by_label("Access token").fill(site.token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{site.url}/owner/calls")


def _fits(page: Page) -> None:
    """The page needs no sideways scrolling, no tiny targets and no tiny text."""
    assert sideways_overflow(page) == 0, page.url
    assert page.evaluate(_SMALL_TARGETS) == [], page.url
    assert page.evaluate(_SMALL_TEXT) == [], page.url


@pytest.mark.parametrize(("width", "call_sid"), [(WIDTHS[0], CALL_NO), (WIDTHS[1], CALL_BROKEN)])
def test_an_owner_finds_a_call_calls_back_replies_and_marks_it_handled(
    browser: Browser, site: Site, width: int, call_sid: str
) -> None:
    with page_at(browser, width) as page:
        _sign_in(page, site)
        keep_screenshot(page, f"owner-calls-{width}")

        page.get_by_label("Search names, numbers and words").fill("555-0177")
        page.get_by_role("button", name="Search").click()
        assert "q=555-0177" in page.url
        links = page.locator("table a[href^='/owner/calls/CA']")
        assert links.count() == 2  # the two calls from that number, nothing else
        keep_screenshot(page, f"owner-search-{width}")
        page.locator(f"a[href='/owner/calls/{call_sid}']").click()
        page.wait_for_url(f"{site.url}/owner/calls/{call_sid}")

        call_back = page.get_by_role("link", name=f"Call back {OTHER_CALLER}")
        assert call_back.get_attribute("href") == f"tel:{OTHER_CALLER}"
        box = call_back.bounding_box()
        assert box is not None and box["height"] >= MIN_TARGET
        assert box["x"] >= 0 and box["x"] + box["width"] <= width  # on screen, not off to the side
        assert page.locator(f"main a[href='tel:{OTHER_CALLER}']").count() >= 3
        keep_screenshot(page, f"owner-call-{width}")

        page.get_by_label("Your text").fill(f"On our way ({width})")
        page.get_by_role("button", name="Send text").click()
        assert page.get_by_role("status").inner_text().startswith("Your text is on its way")
        assert page.locator("ol.thread li.outbound", has_text=f"On our way ({width})").count() == 1

        page.get_by_role("button", name="Mark handled").click()
        assert "Marked handled" in page.get_by_role("status").inner_text()
        assert page.get_by_text("by Acme owner").count() == 1
        assert page.get_by_role("button", name="Mark handled").count() == 0
        keep_screenshot(page, f"owner-call-handled-{width}")
        _fits(page)


@pytest.mark.parametrize("width", WIDTHS)
def test_an_owner_changes_a_setting_and_sees_it_recorded(
    browser: Browser, site: Site, width: int
) -> None:
    with page_at(browser, width) as page:
        _sign_in(page, site)
        page.get_by_role("link", name="Settings").click()
        page.get_by_label("Ring for (seconds)").fill(str(width // 10))
        page.get_by_label("Callback promise", exact=True).fill(f"within {width} minutes")
        page.get_by_role("button", name="Save settings").click()
        expect(page.get_by_role("status")).to_have_text(
            "Settings saved. They apply from the next call."
        )
        expect(page.get_by_label("Ring for (seconds)")).to_have_value(str(width // 10))
        newest = page.locator("table tbody tr").first
        expect(newest).to_contain_text("Acme owner")
        assert page.locator("table tbody tr", has_text=f"within {width} minutes").count() == 1
        _fits(page)
        keep_screenshot(page, f"owner-settings-{width}")


def test_an_opted_out_caller_s_page_offers_a_call_not_a_text(browser: Browser, site: Site) -> None:
    with page_at(browser, PHONE_WIDTH) as page:
        _sign_in(page, site)
        page.goto(f"{site.url}/owner/calls/{CALL_YES}")
        assert page.get_by_text("Opted out on 2025-06-02 10:40:00 CDT, by texting STOP.").count()
        assert page.get_by_label("Your text").count() == 0
        assert page.get_by_text("This number opted out of texts").count() == 1
        emergency = page.locator("p.notice .emergency")
        box = emergency.bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE_WIDTH
        keep_screenshot(page, f"owner-call-opted-out-{PHONE_WIDTH}")


def test_the_on_a_call_now_list_updates_without_a_reload(browser: Browser, site: Site) -> None:
    with page_at(browser, PHONE_WIDTH) as page:
        _sign_in(page, site)
        page.get_by_role("link", name="On a call now").click()
        calls = page.locator("#live-calls li")
        expect(calls).to_have_text(["No calls right now."])
        expect(page.locator("#live-note")).to_have_text("This list updates by itself.")
        now = datetime.now(UTC)
        with site.engine.begin() as conn:
            conn.execute(
                insert(stream_credential_uses).values(
                    call_sid="CA" + "75" * 16, business_id=ACME, used_at=now, expires_at=now
                )
            )
        expect(calls.first).to_contain_text("The assistant is on a call that started at")
        assert page.url == f"{site.url}/owner/live"  # no reload, no navigation
        keep_screenshot(page, f"owner-live-{PHONE_WIDTH}")


def test_no_owner_page_scrolls_sideways_at_360_px(browser: Browser, site: Site) -> None:
    pages = {
        "calls": "/owner/calls",
        "search": "/owner/calls?q=burst&urgency=emergency",
        "bad-search": "/owner/calls?from=nonsense",
        "call-opted-out": f"/owner/calls/{CALL_YES}",
        "call": f"/owner/calls/{CALL_NO}",
        "call-unreadable-consent": f"/owner/calls/{CALL_BROKEN}",
        "no-such-call": "/owner/calls/CA-no-such-call",
        "texts": "/owner/texts",
        "thread-opted-out": "/owner/texts/%2B15125550123",
        "thread": "/owner/texts/%2B15125550177",
        "live": "/owner/live",
        "settings": "/owner/settings",
    }
    with page_at(browser, NARROW_PHONE_WIDTH) as page:
        page.goto(f"{site.url}/owner/sign-in")
        _fits(page)
        keep_screenshot(page, f"owner-{NARROW_PHONE_WIDTH}-sign-in")
        _sign_in(page, site)
        for name, path in pages.items():
            page.goto(f"{site.url}{path}")
            _fits(page)
            keep_screenshot(page, f"owner-{NARROW_PHONE_WIDTH}-{name}")


def test_screenshots_are_kept(site: Site) -> None:
    kept = Path(ROOT / "var" / "screenshots")
    assert (kept / f"owner-call-{PHONE_WIDTH}.png").stat().st_size > 0
