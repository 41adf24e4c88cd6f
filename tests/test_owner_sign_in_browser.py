"""In headless Chromium, at 390 and 1280 px: the owner opens a call from the link in its text
summary (one tap signs the phone in), and signs in with a code read from the outbox; the pages of
signing in and of call summaries fit the screen. Screenshots are kept in var/screenshots/.

The whole application runs under uvicorn on loopback (``local_server.serving``) with its own
dispatcher; the call is stored through the wrap-up with the server's own owner notices.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import Engine

from bench.faults import ended_call
from consent_ledger import AudioStore
from sms_sender import OutboxKind, list_outbox
from tests.browser_support import WIDTHS, chromium, keep_screenshot, page_at, sideways_overflow
from tests.conftest import ROOT, receptionist_settings
from voice_agent.call.journal_entry import store_call
from voice_agent.chat.port import CallerMessage, Urgency
from voice_agent.clock import system_clock
from voice_agent.records.businesses import import_businesses
from voice_agent.records.migrate import upgrade
from voice_agent.services import Services, build_services
from voice_agent.web.local_server import free_port, serving

OWNER = "+15125550199"
CODE = re.compile(r"sign-in code is ([0-9]{6})\.")
LINK = re.compile(r"https?://\S+/owner/l/[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Server:
    url: str
    services: Services

    @property
    def engine(self) -> Engine:
        return self.services.engine


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("owner-browser")
    port = free_port()
    settings = receptionist_settings(
        f"sqlite:///{folder / 'receptionist.db'}", port=port, audio_dir=folder / "audio"
    ).model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    upgrade(settings.database_url)
    services = build_services(settings)
    with services.engine.begin() as conn:
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
    try:
        with serving(services) as url:
            yield Server(url, services)
    finally:
        services.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _emergency_call(server: Server, call_sid: str) -> str:
    """An emergency call at Acme stored through the wrap-up; the link in its summary text."""
    call = ended_call(call_sid, ended_at=system_clock() - timedelta(minutes=5))
    message = CallerMessage(
        caller_name="Dana Reyes",
        need="water pouring through the kitchen ceiling",
        callback_number="+15125550124",
        urgency=Urgency.EMERGENCY,
    )
    call = dataclasses.replace(call, outcome=dataclasses.replace(call.outcome, message=message))
    with tempfile.TemporaryDirectory() as audio:
        store_call(server.engine, AudioStore(Path(audio)), call, server.services.owner_notices)
    with server.engine.connect() as conn:
        (summary,) = [
            m for m in list_outbox(conn, call_sid=call_sid) if m.kind is OutboxKind.OWNER_SUMMARY
        ]
    assert summary.body.startswith("EMERGENCY: Acme Plumbing missed call from")
    found = LINK.search(summary.body)
    assert found is not None and found.group(0).startswith(server.url), summary.body
    return found.group(0)


def _newest_code(server: Server) -> str:
    with server.engine.connect() as conn:
        texts = [m for m in list_outbox(conn) if m.kind is OutboxKind.SIGN_IN_CODE]
    found = CODE.search(texts[-1].body)
    assert found is not None and texts[-1].to_number == OWNER
    return found.group(1)


def _fits(page: Page, width: int, name: str) -> None:
    keep_screenshot(page, f"owner-sign-in-{name}-{width}")
    assert sideways_overflow(page) == 0, f"{name} scrolls sideways at {width} px"


@pytest.mark.parametrize("width", WIDTHS)
def test_a_summary_link_opens_the_call_signed_in(
    server: Server, browser: Browser, width: int
) -> None:
    call_sid = f"CA{width:032d}"
    link = _emergency_call(server, call_sid)
    with page_at(browser, width) as page:
        page.goto(link)
        _fits(page, width, "link")
        button = page.get_by_role("button", name="Open the call")
        assert button.bounding_box() is not None and button.bounding_box()["height"] >= 44  # type: ignore[index]
        button.click()
        page.wait_for_url(f"**/owner/calls/{call_sid}")
        assert page.get_by_text("Dana Reyes").count() >= 1
        keep_screenshot(page, f"owner-sign-in-call-from-link-{width}")
        cookie = next(c for c in page.context.cookies() if c["name"] == "owner_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

        page.goto(f"{server.url}/owner/notifications")
        assert page.get_by_text("Texts to the owner phone are on.").count() == 1
        _fits(page, width, "notifications")

        page.goto(f"{server.url}/owner/sessions")
        assert page.get_by_text("(this phone)").count() == 1
        _fits(page, width, "phones")


@pytest.mark.parametrize("width", WIDTHS)
def test_signing_in_with_a_code_from_the_outbox(
    server: Server, browser: Browser, width: int
) -> None:
    with page_at(browser, width) as page:
        page.goto(f"{server.url}/owner/calls")
        page.wait_for_url("**/owner/sign-in")
        _fits(page, width, "phone")
        page.get_by_label("Your mobile number").fill("(512) 555-0199")
        page.get_by_role("button", name="Text me a sign-in code").click()
        page.wait_for_url("**/owner/sign-in/phone")
        _fits(page, width, "code")
        page.get_by_label("Sign-in code").fill(_newest_code(server))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/owner/calls")
        assert page.get_by_role("heading", name="Calls").count() == 1
        keep_screenshot(page, f"owner-sign-in-calls-{width}")

        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/owner/sign-in")
        page.goto(f"{server.url}/owner/calls")
        page.wait_for_url("**/owner/sign-in")
