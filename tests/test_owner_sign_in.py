"""Owners and staff sign in with their phone: a code texted through the outbox, a 30-day sliding
session, a call summary's one-time link; limits on codes and guesses; no telling whose number is
whose; staff kept out of settings; every session revocable. And the owner told at once: consent
to summaries recorded at import, turned off and on from the owner pages, and each summary naming
an emergency first with a link to its call.

Everything runs through the product's own code on a database migrated to head (SQLite, and
PostgreSQL when it is reachable); the pages through the app's routers with ``TestClient``; texts
through the outbox and the dispatcher into the local transport, where the test reads the code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from bench.faults import ended_call
from consent_ledger import (
    AudioStore,
    ConsentMethod,
    EventKind,
    events_for_number,
    owner_notifications_allowed,
)
from dashboard import OwnerContext, owner_router, owner_sign_in_router
from dashboard.owner_routes import form_token
from dashboard.people import Role, add_person, people_of, remove_person
from dashboard.phone_sessions import phone_sessions_of, revoke_phone_session
from dashboard.sign_in_codes import (
    CODES_PER_PHONE_PER_DAY,
    MAX_WRONG_TRIES,
    CodeRefused,
    IssuedCode,
    issue_code,
)
from dashboard.sign_in_links import CallLinks
from dashboard.tables import phone_sessions, sign_in_codes
from sms_sender import (
    InboundSms,
    LocalSmsTransport,
    OutboxKind,
    OutboxStatus,
    dispatch_due,
    handle_inbound,
    list_outbox,
)
from sms_sender.outbox_notices import listen_for_queued_texts
from tests.cli_support import receptionist
from tests.clock_support import SteppingClock
from tests.conftest import BACKENDS, PUBLIC_BASE_URL, ROOT, fresh_database, receptionist_settings
from voice_agent.call.journal_entry import store_call
from voice_agent.call.owner_notices import OwnerNotices
from voice_agent.chat.port import CallerMessage, Urgency
from voice_agent.records.businesses import (
    BusinessConfigError,
    get_business,
    import_businesses,
    load_businesses,
)
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade
from voice_agent.records.owner_call_log import ReceptionistCallLog
from voice_agent.records.sms_policies import send_rules, sms_policy

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
ACME = "acme-plumbing"
SPARK = "bright-spark-electric"
ACME_NUMBER = "+15125550100"
OWNER = "+15125550199"
SPARK_OWNER = "+13035550149"
STAFF = "+15125550142"
STRANGER = "+15125550111"
OUR_ORIGIN = {"Origin": PUBLIC_BASE_URL}
CODE = re.compile(r"sign-in code is ([0-9]{6})\.")
THIRTY_DAYS = 30 * 24 * 3600


@dataclass
class Site:
    client: TestClient
    engine: Engine
    clock: SteppingClock
    transport: LocalSmsTransport
    audio: AudioStore

    def dispatch(self) -> None:
        dispatch_due(self.engine, self.transport, self.clock.now, rules=send_rules())


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    with fresh_database(request.param, tmp_path, "sign_in") as url:
        upgrade(url)
        engine = make_engine(url)
        read_engine = make_engine(url, read_only=True)
        with engine.begin() as conn:
            import_businesses(conn, ROOT / "fixtures" / "businesses.yaml", T0)
            add_person(conn, ACME, STAFF, Role.STAFF, "Sam, dispatcher", T0)
        clock = SteppingClock(T0 + timedelta(hours=1))
        app = FastAPI()
        app.state.owner = OwnerContext(
            engine=engine,
            read_engine=read_engine,
            call_log=ReceptionistCallLog(),
            clock=clock,
            public_base_url=PUBLIC_BASE_URL,
        )
        app.include_router(owner_router())
        app.include_router(owner_sign_in_router())
        client = TestClient(app, base_url=PUBLIC_BASE_URL, follow_redirects=False)
        try:
            yield Site(client, engine, clock, LocalSmsTransport(), AudioStore(tmp_path / "audio"))
        finally:
            client.close()
            read_engine.dispose()
            engine.dispose()


def _ask_for_code(site: Site, phone: str, status: int = 200) -> str:
    response = site.client.post("/owner/sign-in/phone", data={"phone": phone}, headers=OUR_ORIGIN)
    assert response.status_code == status, response.text
    return response.text


def _form(site: Site) -> dict[str, str]:
    """The form token the signed-in pages put in their forms."""
    return {"csrf": form_token(site.client.cookies["owner_session"])}


def _texted_code(site: Site, phone: str) -> str:
    """The newest sign-in code the outbox delivered to ``phone``."""
    site.dispatch()
    bodies = [sms.body for sms in site.transport.delivered if sms.to_number == phone]
    found = CODE.search(bodies[-1])
    assert found is not None, bodies
    return found.group(1)


def _enter_code(site: Site, phone: str, code: str, status: int = 303) -> str:
    response = site.client.post(
        "/owner/sign-in/code", data={"phone": phone, "code": code}, headers=OUR_ORIGIN
    )
    assert response.status_code == status, response.text
    if status == 303:
        assert response.headers["location"] == "/owner/calls"
        return response.headers["set-cookie"]
    return response.text


def _sign_in(site: Site, phone: str = OWNER) -> str:
    _ask_for_code(site, phone)
    return _enter_code(site, phone, _texted_code(site, phone))


def _status(site: Site, path: str) -> int:
    return site.client.get(path).status_code


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


# --- signing in by code -----------------------------------------------------------------------


def test_sign_in_by_code_end_to_end(site: Site) -> None:
    page = _ask_for_code(site, "(512) 555-0199")
    assert '<form method="post" action="/owner/sign-in/code">' in page
    assert 'autocomplete="one-time-code"' in page and "+*******0199" in page
    assert page.count(OWNER) == 1 and f'name="phone" value="{OWNER}"' in page  # the form's only

    site.dispatch()
    (text,) = site.transport.delivered
    assert (text.to_number, text.from_number) == (OWNER, ACME_NUMBER)
    assert text.body.startswith("Acme Plumbing: your sign-in code is ")
    code = CODE.search(text.body)
    assert code is not None
    with site.engine.connect() as conn:
        (row,) = conn.execute(select(sign_in_codes)).all()
    assert code.group(1) not in " ".join(str(value) for value in row)  # only a salted hash

    cookie = _enter_code(site, OWNER, code.group(1))
    for attribute in (
        "HttpOnly",
        "Secure",
        "SameSite=lax",
        "Path=/owner",
        f"Max-Age={THIRTY_DAYS}",
    ):
        assert attribute.lower() in cookie.lower()
    secret = cookie.split(";", 1)[0].split("=", 1)[1]
    with site.engine.connect() as conn:
        (session,) = conn.execute(select(phone_sessions)).all()
    assert session.session_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert (session.business_id, session.role, session.method) == (ACME, "owner", "code")
    calls = site.client.get("/owner/calls")
    assert calls.status_code == 200 and "<h1>Calls</h1>" in calls.text
    # the code is used up, and the texts page never lists codes
    _enter_code(site, OWNER, code.group(1), status=401)
    assert "sign-in code" not in site.client.get("/owner/texts").text


def test_a_code_request_wakes_text_workers_in_other_processes(site: Site) -> None:
    """With ``serve --no-dispatcher`` the code is sent by a worker process: on PostgreSQL the
    request announces it (NOTIFY), so a listening worker sends it at once, not at its poll."""
    if site.engine.dialect.name != "postgresql":
        pytest.skip("NOTIFY is PostgreSQL's; on SQLite the web process sends its own texts")
    woken, stop = threading.Event(), threading.Event()
    listening = threading.Thread(
        target=listen_for_queued_texts, args=(site.engine, woken.set, stop), daemon=True
    )
    listening.start()
    try:
        for _ in range(50):  # the listener connects first: ask (a new code each time) until heard
            _ask_for_code(site, OWNER)
            if woken.wait(0.2):
                break
            site.clock.now += timedelta(minutes=15)  # past the per-phone limit of 3 codes
    finally:
        stop.set()
        listening.join(timeout=10)
    assert woken.is_set()


def test_a_session_slides_for_30_days_from_its_last_use(site: Site) -> None:
    _sign_in(site)
    started = site.clock.now

    site.clock.now = started + timedelta(minutes=10)
    within_the_hour = site.client.get("/owner/calls")
    assert within_the_hour.status_code == 200 and "set-cookie" not in within_the_hour.headers

    site.clock.now = started + timedelta(days=29)
    renewed = site.client.get("/owner/calls")
    assert renewed.status_code == 200
    assert f"max-age={THIRTY_DAYS}" in renewed.headers["set-cookie"].lower()

    site.clock.now = started + timedelta(days=58)  # 29 days after its last use
    assert _status(site, "/owner/calls") == 200

    site.clock.now = started + timedelta(days=58 + 30)  # 30 days unused
    expired = site.client.get("/owner/calls")
    assert (expired.status_code, expired.headers["location"]) == (303, "/owner/sign-in")


def test_an_unknown_number_gets_the_same_answer_and_no_text(site: Site) -> None:
    known = _ask_for_code(site, OWNER)
    unknown = _ask_for_code(site, STRANGER)

    assert unknown.replace(STRANGER[-4:], "####") == known.replace(OWNER[-4:], "####")
    site.dispatch()
    assert [sms.to_number for sms in site.transport.delivered] == [OWNER]
    _enter_code(site, STRANGER, "123456", status=401)
    for _ in range(2):  # the per-phone limit treats both alike
        _ask_for_code(site, OWNER)
        _ask_for_code(site, STRANGER)
    assert _ask_for_code(site, OWNER, 429) == _ask_for_code(site, STRANGER, 429)


def test_a_code_dies_after_five_wrong_tries(site: Site) -> None:
    _ask_for_code(site, OWNER)
    code = _texted_code(site, OWNER)
    for _ in range(MAX_WRONG_TRIES):
        assert "That code did not work" in _enter_code(site, OWNER, _wrong(code), status=401)

    _enter_code(site, OWNER, code, status=401)
    assert _status(site, "/owner/calls") == 303


def test_guessing_from_one_address_is_refused_after_ten_wrong_codes(site: Site) -> None:
    for phone in (OWNER, STAFF, STRANGER):
        _ask_for_code(site, phone)
    codes = {phone: _texted_code(site, phone) for phone in (OWNER, STAFF)}
    guesses = [(OWNER, _wrong(codes[OWNER]))] * 4 + [(STAFF, _wrong(codes[STAFF]))] * 4
    guesses += [(STRANGER, "000000")] * 2
    for phone, guess in guesses:
        _enter_code(site, phone, guess, status=401)

    response = site.client.post(
        "/owner/sign-in/code", data={"phone": STAFF, "code": codes[STAFF]}, headers=OUR_ORIGIN
    )
    assert response.status_code == 429 and int(response.headers["retry-after"]) > 0
    assert "set-cookie" not in response.headers


def test_one_address_may_ask_for_ten_codes_in_fifteen_minutes(site: Site) -> None:
    for index in range(10):
        _ask_for_code(site, f"+1512555{index:04d}")
    refused = site.client.post("/owner/sign-in/phone", data={"phone": OWNER}, headers=OUR_ORIGIN)
    assert refused.status_code == 429 and "Too many codes" in refused.text
    site.dispatch()
    assert site.transport.delivered == []


def test_a_code_works_for_ten_minutes_and_only_the_newest_works(site: Site) -> None:
    _ask_for_code(site, OWNER)
    first = _texted_code(site, OWNER)
    _ask_for_code(site, OWNER)
    second = _texted_code(site, OWNER)
    if first == second:
        pytest.skip("the two random codes happened to be the same")
    _enter_code(site, OWNER, first, status=401)

    site.clock.now += timedelta(minutes=10)
    _enter_code(site, OWNER, second, status=401)


def test_a_code_that_could_only_arrive_late_is_not_sent(site: Site) -> None:
    _ask_for_code(site, OWNER)
    site.clock.now += timedelta(minutes=10)
    site.dispatch()
    assert site.transport.delivered == []
    with site.engine.connect() as conn:
        (text,) = list_outbox(conn)
    assert (text.kind, text.status, text.reason) == (
        OutboxKind.SIGN_IN_CODE,
        OutboxStatus.BLOCKED,
        "sign_in_code_expired",
    )


def test_forms_from_elsewhere_are_refused(site: Site) -> None:
    for path, data in (
        ("/owner/sign-in/phone", {"phone": OWNER}),
        ("/owner/sign-in/code", {"phone": OWNER, "code": "123456"}),
    ):
        response = site.client.post(path, data=data, headers={"Origin": "https://evil.example"})
        assert response.status_code == 403
    assert _ask_for_code(site, "not a phone", 422).count("not a phone number we can text") == 1


# --- roles, signing out and revoking ----------------------------------------------------------


def test_staff_read_calls_but_cannot_reach_settings(site: Site) -> None:
    _sign_in(site, STAFF)
    assert _status(site, "/owner/calls") == 200
    assert _status(site, "/owner/texts") == 200
    settings = site.client.get("/owner/notifications")
    assert settings.status_code == 403 and "Only the business&#39;s owners" in settings.text
    change = site.client.post(
        "/owner/notifications", data={"choice": "off", **_form(site)}, headers=OUR_ORIGIN
    )
    assert change.status_code == 403 and "Only the business&#39;s owners" in change.text
    with site.engine.connect() as conn:
        assert owner_notifications_allowed(conn, ACME, OWNER)


def test_signing_out_and_revoking_end_a_phone_session(site: Site) -> None:
    _sign_in(site)
    out = site.client.post("/owner/sign-out", data=_form(site), headers=OUR_ORIGIN)
    assert (out.status_code, out.headers["location"]) == (303, "/owner/sign-in")
    site.client.cookies.clear()

    cookie = _sign_in(site)
    site.client.cookies.set("owner_session", cookie.split(";", 1)[0].split("=", 1)[1])
    assert _status(site, "/owner/calls") == 200
    with site.engine.begin() as conn:
        signed_out, active = phone_sessions_of(conn, ACME)
        assert signed_out.ended_by is not None and signed_out.ended_by.value == "signed_out"
        revoke_phone_session(conn, active.id, site.clock.now)
    assert _status(site, "/owner/calls") == 303


def test_removing_a_person_signs_them_out_at_once(site: Site) -> None:
    _sign_in(site, STAFF)
    with site.engine.begin() as conn:
        (sam,) = [p for p in people_of(conn, ACME) if p.phone_number == STAFF]
        remove_person(conn, sam.id, site.clock.now)
    assert _status(site, "/owner/calls") == 303


# --- told at once ------------------------------------------------------------------------------


def test_setting_up_a_business_records_the_owners_yes_once(site: Site) -> None:
    with site.engine.begin() as conn:
        (event,) = events_for_number(conn, ACME, OWNER)
        assert event.kind is EventKind.OWNER_NOTIFICATIONS_OPT_IN
        assert event.evidence().method is ConsentMethod.OWNER
        assert "set up" in event.evidence().note
        assert owner_notifications_allowed(conn, SPARK, SPARK_OWNER)
        acme = get_business(conn, ACME)
        assert acme is not None
        handle_inbound(
            conn, InboundSms("SM" + "1" * 32, OWNER, ACME_NUMBER, "STOP"), sms_policy(acme), T0
        )
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml", T0 + timedelta(days=1))
        assert not owner_notifications_allowed(conn, ACME, OWNER)  # a re-import undoes nothing
        assert len(events_for_number(conn, ACME, OWNER)) == 2


def test_the_owner_turns_summaries_off_and_on_from_the_page(site: Site) -> None:
    _sign_in(site)
    page = site.client.get("/owner/notifications")
    assert page.status_code == 200 and "Texts to the owner phone are on." in page.text
    assert 'name="choice" value="off"' in page.text

    off = site.client.post(
        "/owner/notifications", data={"choice": "off", **_form(site)}, headers=OUR_ORIGIN
    )
    assert (off.status_code, off.headers["location"]) == (303, "/owner/notifications")
    assert "Texts to the owner phone are off." in site.client.get("/owner/notifications").text
    with site.engine.connect() as conn:
        latest = events_for_number(conn, ACME, OWNER)[-1]
    assert latest.kind is EventKind.OWNER_NOTIFICATIONS_OPT_OUT
    assert latest.evidence().method is ConsentMethod.WEB_FORM
    assert OWNER not in latest.evidence().note and OWNER[-4:] in latest.evidence().note

    site.client.post(
        "/owner/notifications", data={"choice": "on", **_form(site)}, headers=OUR_ORIGIN
    )
    with site.engine.connect() as conn:
        assert owner_notifications_allowed(conn, ACME, OWNER)
    foreign = site.client.post(
        "/owner/notifications",
        data={"choice": "off", **_form(site)},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403


def _emergency_call(site: Site, call_sid: str) -> str:
    """Store an emergency call at Acme through the wrap-up; the summary text it queued."""
    call = ended_call(call_sid, ended_at=site.clock.now)
    message = CallerMessage(
        caller_name="Dana Reyes",
        need="water pouring through the kitchen ceiling",
        callback_number="+15125550124",
        urgency=Urgency.EMERGENCY,
    )
    call = dataclasses.replace(call, outcome=dataclasses.replace(call.outcome, message=message))
    notices = OwnerNotices(CallLinks(PUBLIC_BASE_URL))
    store_call(site.engine, site.audio, call, notices)
    with site.engine.connect() as conn:
        (summary,) = [m for m in list_outbox(conn) if m.kind is OutboxKind.OWNER_SUMMARY]
    return summary.body


def test_a_summary_says_emergency_first_and_links_the_call_signed_in(site: Site) -> None:
    call_sid = "CA" + "e" * 32
    body = _emergency_call(site, call_sid)
    assert body.startswith("EMERGENCY: Acme Plumbing missed call from ")
    assert 'Dana Reyes said "water pouring through the kitchen ceiling"' in body
    link = re.search(rf"{re.escape(PUBLIC_BASE_URL)}(/owner/l/[A-Za-z0-9_-]+)$", body)
    assert link is not None, body
    site.dispatch()
    to_owner = [sms.body for sms in site.transport.delivered if sms.to_number == OWNER]
    assert to_owner == [body]  # the owner said yes when the business was set up

    button = site.client.get(link.group(1))
    assert button.status_code == 200 and f'action="{link.group(1)}"' in button.text
    assert _status(site, link.group(1)) == 200  # looking does not use it up
    opened = site.client.post(link.group(1), headers=OUR_ORIGIN)
    assert (opened.status_code, opened.headers["location"]) == (303, f"/owner/calls/{call_sid}")
    assert f"max-age={THIRTY_DAYS}" in opened.headers["set-cookie"].lower()
    call_page = site.client.get(f"/owner/calls/{call_sid}")
    assert call_page.status_code == 200 and "Dana Reyes" in call_page.text
    with site.engine.connect() as conn:
        (session,) = phone_sessions_of(conn, ACME)
    assert (session.phone_number, session.role, session.method.value) == (OWNER, Role.OWNER, "link")

    again = site.client.get(link.group(1))  # signed in here already: straight to the call
    assert again.headers["location"] == f"/owner/calls/{call_sid}"
    site.client.cookies.clear()
    assert site.client.post(link.group(1), headers=OUR_ORIGIN).status_code == 410
    texts = _texts_page_signed_in(site)
    assert "/owner/l/(link hidden)" in texts and link.group(1) not in texts


def _texts_page_signed_in(site: Site) -> str:
    _sign_in(site)
    return site.client.get("/owner/texts").text


def test_the_command_line_lists_and_revokes_phone_sessions(site: Site, tmp_path: Path) -> None:
    settings = receptionist_settings(str(site.engine.url.render_as_string(hide_password=False)))
    added = receptionist(
        "owner", "people", "add", "--business", ACME, "--phone", "(512) 555-0177", "--label", "Jo",
        settings=settings,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = receptionist("owner", "people", "list", "--business", ACME, settings=settings)
    assert "+15125550177" in listed.output and "staff" in listed.output
    assert "owner (business settings)" in listed.output
    _sign_in(site)
    sessions = receptionist("owner", "sessions", "list", "--json", settings=settings)
    assert f'"phone_number": "{OWNER}"' in sessions.output and '"method": "code"' in sessions.output
    revoked = receptionist("owner", "sessions", "revoke", "--phone", OWNER, settings=settings)
    assert revoked.exit_code == 0 and "1 session(s) ended" in revoked.output
    assert _status(site, "/owner/calls") == 303


def test_a_new_owner_phone_in_the_business_file_replaces_the_old_one(
    site: Site, tmp_path: Path
) -> None:
    moved = tmp_path / "businesses.yaml"
    text = (ROOT / "fixtures" / "businesses.yaml").read_text(encoding="utf-8")
    moved.write_text(text.replace('owner_phone: "+15125550199"', 'owner_phone: "+15125550188"'))
    _sign_in(site)
    with site.engine.begin() as conn:
        import_businesses(conn, moved, site.clock.now)
        owners = {p.phone_number: p.removed_at for p in people_of(conn, ACME) if p.from_config}
        assert owners == {OWNER: site.clock.now, "+15125550188": None}
        assert owner_notifications_allowed(conn, ACME, "+15125550188")  # its own yes, recorded
    assert _status(site, "/owner/calls") == 303  # the old owner phone is signed out


def test_an_answer_about_summary_texts_that_is_not_yes_or_no_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "businesses.yaml"
    text = (ROOT / "fixtures" / "businesses.yaml").read_text(encoding="utf-8")
    bad.write_text(text.replace("owner_summary_texts: true", 'owner_summary_texts: "sure"', 1))
    with pytest.raises(BusinessConfigError, match="business #1: owner_summary_texts: must be true"):
        load_businesses(bad)


def test_an_owner_signs_out_a_lost_phone_from_the_page(site: Site) -> None:
    staff = TestClient(site.client.app, base_url=PUBLIC_BASE_URL, follow_redirects=False)
    staff_site = dataclasses.replace(site, client=staff)
    _sign_in(staff_site, STAFF)
    assert _status(staff_site, "/owner/sessions") == 403
    _sign_in(site, SPARK_OWNER)
    with site.engine.connect() as conn:
        (spark_session,) = phone_sessions_of(conn, SPARK)
    site.client.cookies.clear()
    _sign_in(site)

    page = site.client.get("/owner/sessions")
    assert page.status_code == 200
    assert STAFF in page.text and f"{OWNER}</strong> (this phone)" in page.text
    assert SPARK_OWNER not in page.text
    with site.engine.connect() as conn:
        sam = next(s for s in phone_sessions_of(conn, ACME) if s.phone_number == STAFF)
    foreign = site.client.post(
        f"/owner/sessions/{spark_session.id}/sign-out", data=_form(site), headers=OUR_ORIGIN
    )
    assert foreign.status_code == 404
    forged = site.client.post(
        f"/owner/sessions/{sam.id}/sign-out",
        data=_form(site),
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403 and _status(staff_site, "/owner/calls") == 200
    tokenless = site.client.post(f"/owner/sessions/{sam.id}/sign-out", headers=OUR_ORIGIN)
    assert tokenless.status_code == 403 and _status(staff_site, "/owner/calls") == 200

    out = site.client.post(
        f"/owner/sessions/{sam.id}/sign-out", data=_form(site), headers=OUR_ORIGIN
    )
    assert (out.status_code, out.headers["location"]) == (303, "/owner/sessions")
    assert _status(staff_site, "/owner/calls") == 303
    assert STAFF not in site.client.get("/owner/sessions").text
    assert _status(site, "/owner/calls") == 200


def test_a_phone_gets_at_most_ten_codes_a_day(site: Site) -> None:
    at = site.clock.now
    with site.engine.begin() as conn:
        for index in range(CODES_PER_PHONE_PER_DAY):
            asked = at + timedelta(minutes=16 * (index // 3), seconds=index)
            assert isinstance(issue_code(conn, OWNER, asked), IssuedCode)
        refused = issue_code(conn, OWNER, at + timedelta(hours=2))
        assert isinstance(refused, CodeRefused)
        assert refused.retry_after == int(timedelta(hours=22).total_seconds())
        assert isinstance(issue_code(conn, OWNER, at + timedelta(days=1, seconds=1)), IssuedCode)
