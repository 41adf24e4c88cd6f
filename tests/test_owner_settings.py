"""The settings page: an owner changes the callback promise, ring-first phone and seconds,
recording, texts and follow-ups, and the never-text list; each change is checked by the business
rules, recorded (who, when, old → new) and read by the next call; the consent script is shown,
never edited. A refused change stores nothing and keeps what was typed.

On the records of ``test_owner_dashboard``, through the app's router with ``TestClient``, on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.people import CONFIG_OWNER_LABEL, Person, Role, add_person, current_person
from dashboard.phone_sessions import SignInMethod, start_phone_session
from dashboard.tables import settings_changes
from tests.conftest import BACKENDS
from tests.test_owner_dashboard import (
    ACME,
    OUR_ORIGIN,
    SPARK,
    OwnerSite,
    _form,
    _page,
    _sign_in,
    owner_site,
)
from voice_agent.records.businesses import Business, get_business

SAVED = "Settings saved. They apply from the next call."


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OwnerSite]:
    with owner_site(request.param, tmp_path) as built:
        yield built


def _business(site: OwnerSite, business_id: str = ACME) -> Business:
    with site.engine.connect() as conn:
        found = get_business(conn, business_id)
    assert found is not None
    return found


def _shown_form(html: str) -> dict[str, str | list[str]]:
    """The settings form's values as the page shows them (checkboxes: "on" when checked; the
    open days ticked, as a list)."""
    values: dict[str, str | list[str]] = dict(
        re.findall(r'<input id="(\w+)" name="\w+"[^>]*? value="([^"]*)"', html)
    )
    values["open_days"] = re.findall(r'name="open_days" value="(\d)" checked', html)
    for box in ("ring_owner_first", "recording_enabled"):
        checked = re.search(rf'id="{box}" name="{box}" checked', html)
        values[box] = "on" if checked else ""
    values["excluded_numbers"] = re.findall(
        r'<textarea id="excluded_numbers"[^>]*>(.*?)</textarea>', html, re.DOTALL
    )[0]
    return values


def _save(site: OwnerSite, **changed: str | list[str]) -> tuple[int, str]:
    form = {**_shown_form(_page(site, "/owner/settings")), **changed}
    form = {name: value for name, value in form.items() if value}  # unchecked boxes are not sent
    response = site.client.post("/owner/settings", data={**_form(site), **form}, headers=OUR_ORIGIN)
    return response.status_code, response.text if response.status_code != 303 else ""


def test_the_page_shows_the_settings_and_the_consent_script_read_only(site: OwnerSite) -> None:
    _sign_in(site)
    html = _page(site, "/owner/settings")
    shown = _shown_form(html)
    business = _business(site)
    assert shown["callback_time"] == business.callback_time
    assert shown["owner_phone"] == business.owner_phone
    assert shown["ring_seconds"] == str(business.ring_seconds)
    assert shown["max_texts"] == str(business.max_texts)
    assert '<label for="ring_seconds">Ring for (seconds)</label>' in html
    script = html.split("<h2>The consent script</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<blockquote>" in script and "Acme Plumbing" in script
    assert "<textarea" not in script and "<input" not in script
    assert "No changes yet." in html and 'href="/owner/settings" aria-current="page"' in html


def test_a_change_is_stored_recorded_and_read_by_the_next_call(site: OwnerSite) -> None:
    _sign_in(site)
    before = _business(site)

    status, _ = _save(
        site,
        callback_time="within two hours",
        ring_seconds="35",
        recording_enabled="on",
        max_texts="4",
        excluded_numbers="(512) 555-0188\n+1 512 555 0189\n",
    )

    assert status == 303
    after = _business(site)
    assert after.callback_time == "within two hours" and after.ring_seconds == 35
    assert after.recording_enabled and after.max_texts == 4
    assert after.excluded_numbers == ("+15125550188", "+15125550189")
    assert after.twilio_numbers == before.twilio_numbers and after.name == before.name
    html = _page(site, "/owner/settings?done=settings")
    assert SAVED in html
    assert "one to four texts" in html.split("<h2>The consent script</h2>", 1)[1]
    with site.engine.connect() as conn:
        rows = conn.execute(select(settings_changes).order_by(settings_changes.c.id)).all()
    recorded = {row.setting: (row.old_value, row.new_value, row.changed_by) for row in rows}
    assert recorded == {
        "callback_time": (before.callback_time, "within two hours", "Acme owner"),
        "ring_seconds": (str(before.ring_seconds), "35", "Acme owner"),
        "recording_enabled": ("off", "on", "Acme owner"),
        "max_texts": (str(before.max_texts), "4", "Acme owner"),
        "excluded_numbers": ("none", "+15125550188, +15125550189", "Acme owner"),
    }
    assert {row.business_id for row in rows} == {ACME}
    changes = html.split("<h2>Changes</h2>", 1)[1]
    assert "2025-06-03 10:00:00 CDT" in changes and "Ring for (seconds)" in changes
    assert "+15125550188, +15125550189" in changes

    assert _save(site)[0] == 303  # saving again, unchanged, records nothing more
    with site.engine.connect() as conn:
        assert len(conn.execute(select(settings_changes)).all()) == len(rows)


def test_business_hours_decide_what_the_next_call_is_promised(site: OwnerSite) -> None:
    _sign_in(site)
    status, _ = _save(
        site,
        hours_start="08:00",
        hours_end="17:30",
        open_days=["0", "1", "2", "3", "4", "5"],
        after_hours_callback="first thing in the morning",
    )
    assert status == 303
    business = _business(site)
    assert (business.hours_start, business.hours_end) == (time(8, 0), time(17, 30))
    assert business.open_days == (0, 1, 2, 3, 4, 5)
    chicago = ZoneInfo("America/Chicago")
    promised = {
        at: business.answering_at(
            datetime(2025, 6, day, hour, minute, tzinfo=chicago)
        ).callback_time
        for at, (day, hour, minute) in {
            "Tuesday 10:00": (3, 10, 0),
            "Tuesday 17:29": (3, 17, 29),
            "Tuesday 17:30": (3, 17, 30),
            "Tuesday 23:00": (3, 23, 0),
            "Saturday 09:00": (7, 9, 0),
            "Sunday 12:00": (8, 12, 0),
        }.items()
    }
    assert promised == {
        "Tuesday 10:00": "within 30 minutes",
        "Tuesday 17:29": "within 30 minutes",
        "Tuesday 17:30": "first thing in the morning",
        "Tuesday 23:00": "first thing in the morning",
        "Saturday 09:00": "within 30 minutes",
        "Sunday 12:00": "first thing in the morning",
    }
    html = _page(site, "/owner/settings")
    assert _shown_form(html)["open_days"] == ["0", "1", "2", "3", "4", "5"]
    changes = html.split("<h2>Changes</h2>", 1)[1]
    assert "Mon, Tue, Wed, Thu, Fri, Sat" in changes and "17:30" in changes
    assert _save(site, hours_start="", hours_end="")[0] == 303  # always open again
    assert _business(site).answering_at(datetime(2025, 6, 3, 23, tzinfo=chicago)) == _business(site)


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        ({"ring_seconds": "2"}, "Ring for (seconds): Input should be greater than or equal to 5."),
        ({"ring_seconds": "twenty"}, "Ring for (seconds): must be a whole number."),
        ({"max_texts": "9"}, "Most texts a caller may agree to: Input should be less than or"),
        ({"no_reply_follow_up_hours": "12"}, "Nudge after no reply (hours): Input should be"),
        ({"callback_check_hours": "nan"}, "must be a number."),
        ({"excluded_numbers": "555\n+15125550188"}, "Never text these numbers:"),
        ({"owner_phone": "not a phone"}, "Ring first: your phone:"),
        ({"callback_time": "x" * 201}, "Callback promise: String should have at most 200"),
        ({"hours_start": "9am"}, "Open from: must be a time like 08:00."),
        ({"hours_start": "18:00", "hours_end": "08:00"}, "Business hours must open before they"),
        ({"hours_start": "08:00", "hours_end": ""}, "Business hours need both an opening"),
        ({"open_days": ["1", "9"]}, "Open on: must be days of the week."),
        ({"booking_url": "http://acme.example/book"}, "Booking link: must be an https:// web"),
        ({"booking_url": "https://acme.example/" + "b" * 81}, "Booking link: String should have"),
    ],
)
def test_a_refused_change_stores_nothing_and_keeps_what_was_typed(
    site: OwnerSite, changed: dict[str, str | list[str]], message: str
) -> None:
    _sign_in(site)
    before = _business(site)

    status, html = _save(site, **{"callback_time": "by noon tomorrow", **changed})

    assert status == 400 and message in html
    assert _business(site) == before
    with site.engine.connect() as conn:
        assert conn.execute(select(settings_changes)).all() == []
    assert _shown_form(html)["callback_time"] == changed.get("callback_time", "by noon tomorrow")


def test_each_owner_changes_only_their_own_business(site: OwnerSite) -> None:
    acme = _business(site)
    _sign_in(site, site.spark_token)
    html = _page(site, "/owner/settings")
    assert _shown_form(html)["owner_phone"] == _business(site, SPARK).owner_phone
    assert "Acme Plumbing" not in html

    assert _save(site, callback_time="Spark's own promise")[0] == 303

    assert _business(site, SPARK).callback_time == "Spark's own promise"
    assert _business(site) == acme
    with site.engine.connect() as conn:
        assert {row.business_id for row in conn.execute(select(settings_changes))} == {SPARK}


def test_settings_posts_need_our_origin_and_the_form_token(site: OwnerSite) -> None:
    _sign_in(site)
    form = _shown_form(_page(site, "/owner/settings")) | {"ring_seconds": "45"}
    for data, headers in (
        ({**form, **_form(site)}, {"Origin": "https://evil.example"}),
        (form, OUR_ORIGIN),
    ):
        assert site.client.post("/owner/settings", data=data, headers=headers).status_code == 403
    assert _business(site).ring_seconds != 45


def _sign_in_by_phone(site: OwnerSite, phone: str, role: Role) -> Person:
    """Sign ``phone`` in to Acme as ``role`` (added to Acme's people unless it is the owner's)."""
    with site.engine.begin() as conn:
        person = current_person(conn, ACME, phone) or add_person(
            conn, ACME, phone, role, "Sam, dispatcher", site.clock.now
        )
        started = start_phone_session(conn, person, SignInMethod.CODE, site.clock.now)
    site.client.cookies.set("owner_session", started.secret)
    return person


def test_staff_cannot_see_or_change_the_settings(site: OwnerSite) -> None:
    _sign_in_by_phone(site, "+15125550142", Role.STAFF)
    assert site.client.get("/owner/calls").status_code == 200
    page = site.client.get("/owner/settings")
    assert page.status_code == 403 and "Only the business&#39;s owners" in page.text
    before = _business(site)
    refused = site.client.post(
        "/owner/settings",
        data={**_form(site), "callback_time": "whenever", "ring_seconds": "30"},
        headers=OUR_ORIGIN,
    )
    assert refused.status_code == 403 and "Only the business&#39;s owners" in refused.text
    assert _business(site) == before
    with site.engine.connect() as conn:
        assert conn.execute(select(settings_changes)).all() == []


def test_an_owner_signed_in_by_phone_changes_the_booking_link_and_is_named(
    site: OwnerSite,
) -> None:
    owner = _business(site).owner_phone
    _sign_in_by_phone(site, owner, Role.OWNER)
    before = _business(site).booking_url
    link = "https://acme.example/book"

    assert _save(site, booking_url=link)[0] == 303

    assert _business(site).booking_url == link
    with site.engine.connect() as conn:
        (row,) = conn.execute(select(settings_changes)).all()
    by = f"{CONFIG_OWNER_LABEL}, +*******{owner[-4:]}"
    assert (row.setting, row.old_value, row.new_value, row.changed_by) == (
        "booking_url",
        before or "none",
        link,
        by,
    )
    html = _page(site, "/owner/settings")
    assert _shown_form(html)["booking_url"] == link and "Booking link" in html
    assert _save(site, booking_url="")[0] == 303  # empty: no link
    assert _business(site).booking_url is None


def test_a_new_owner_phone_is_the_business_s_owner_from_then_on(site: OwnerSite) -> None:
    old = _business(site).owner_phone
    _sign_in(site)

    assert _save(site, owner_phone="(512) 555-0177")[0] == 303

    with site.engine.connect() as conn:
        new_owner = current_person(conn, ACME, "+15125550177")
        assert new_owner is not None and new_owner.role is Role.OWNER and new_owner.from_config
        assert current_person(conn, ACME, old) is None
