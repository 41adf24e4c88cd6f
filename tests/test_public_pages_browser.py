"""The public pages and the callback form in headless Chromium, served by the real app on a
loopback port: readable at 390 px (a phone) and 1280 px (a desktop), with screenshots kept in
``var/screenshots/public-*.png``; no sideways scroll even at 360 px; touch targets at least 44 px
tall; the navigation left out when printed; and the form sent as a person would send it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, Page

from consent_ledger import EventKind, events_for_number
from tests.browser_support import (
    NARROW_PHONE_WIDTH,
    PHONE_WIDTH,
    WIDTHS,
    chromium,
    keep_screenshot,
    page_at,
    sideways_overflow,
)
from tests.clock_support import SteppingClock
from tests.public_site_support import ACME, close_services, site_services
from voice_agent.services import Services
from voice_agent.web.local_server import free_port, serving

PAGES = ("sms", "privacy", "terms", "callback")
MIN_TOUCH = 44
_TOUCH_TARGETS = (
    "nav a, input:not([type=hidden]):not([type=checkbox]):not([tabindex='-1']), textarea, "
    "button, .consent label"
)  # the box's whole label is its target


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, str]]:
    folder = tmp_path_factory.mktemp("public_browser")
    # now, to the second: the page's token and the stored times come from this clock
    clock = SteppingClock(datetime.now(UTC).replace(microsecond=0))
    services = site_services(f"sqlite:///{folder / 'public.db'}", folder, clock, free_port())
    try:
        with serving(services) as base_url:
            yield services, base_url
    finally:
        close_services(services)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _short_touch_targets(page: Page) -> list[str]:
    heights: list[list[str | float]] = page.eval_on_selector_all(
        _TOUCH_TARGETS,
        "els => els.map(e => [e.outerHTML.slice(0, 60), e.getBoundingClientRect().height])",
    )
    return [str(html) for html, height in heights if float(height) < MIN_TOUCH]


def test_every_page_reads_on_a_phone_and_a_desktop_and_prints_without_navigation(
    served: tuple[Services, str], browser: Browser
) -> None:
    _, base_url = served
    for width in (NARROW_PHONE_WIDTH, *WIDTHS):
        with page_at(browser, width) as page:
            for name in PAGES:
                response = page.goto(f"{base_url}/b/{ACME}/{name}")
                assert response is not None and response.status == 200
                assert page.locator("h1").first.is_visible()
                assert page.locator("main#main").count() == 1
                assert sideways_overflow(page) == 0, (name, width)
                assert _short_touch_targets(page) == [], (name, width)
                if width in WIDTHS:
                    assert keep_screenshot(page, f"public-{name}-{width}").stat().st_size > 0
            page.emulate_media(media="print")
            assert not page.locator("nav").is_visible()
            assert page.locator("footer").is_visible()


def test_a_person_sends_the_form_with_the_box_ticked(
    served: tuple[Services, str], browser: Browser
) -> None:
    services, base_url = served
    with page_at(browser, PHONE_WIDTH) as page:
        page.goto(f"{base_url}/b/{ACME}/callback")
        box = page.get_by_label("Yes, Acme Plumbing may text me", exact=False)
        assert not box.is_checked()  # unticked until the person ticks it
        assert not page.locator("#website").is_visible() or _offscreen(page, "#website")
        page.get_by_label("Your name").fill("Ann Lee")
        page.get_by_label("Phone number to call back").fill("(512) 555-0144")
        page.get_by_label("What do you need?").fill("The water heater is leaking")
        box.check()
        page.get_by_role("button", name="Send my request").click()
        page.wait_for_url("**/callback/sent?outcome=texts")
        assert "a confirmation text is on its way" in page.content()
        assert sideways_overflow(page) == 0
        keep_screenshot(page, f"public-callback-sent-{PHONE_WIDTH}")
    with services.engine.connect() as conn:
        (event,) = events_for_number(conn, ACME, "+15125550144")
    assert event.kind is EventKind.WEB_FORM_CONSENT
    web_form = event.evidence().web_form
    assert web_form is not None and "HeadlessChrome" in web_form.user_agent


def _offscreen(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is None or box["x"] + box["width"] <= 0
