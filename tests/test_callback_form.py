"""The public callback form over HTTP (``/b/{id}/callback``), on SQLite and on PostgreSQL when it
is reachable: an unticked SMS box is a callback request only (no consent event, no text); a
ticked one is exactly one ``web_form_consent`` event carrying its evidence and one confirmation,
the same text a spoken yes gets, which the send gate lets through; a number that opted out is
never re-subscribed by the box; bots (the honeypot), forged origins, missing or forged tokens and
floods are refused with a clear 4xx and nothing stored; bad input is shown again, nothing lost."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from consent_ledger import (
    ConsentStatus,
    EventKind,
    RecordedEvent,
    consent_state,
    events_for_number,
    ledger_event_total,
)
from dashboard import OWNER_TOKENS, CallFilter
from sms_sender import (
    ConfirmationRequest,
    ConfirmationTerms,
    InboundSms,
    LocalSmsTransport,
    OutboxKind,
    OutboxMessage,
    dispatch_due,
    handle_inbound,
    list_outbox,
    render_confirmation,
)
from tests.cli_support import receptionist
from tests.conftest import BACKENDS, PUBLIC_BASE_URL, fresh_database
from tests.public_site_support import ACME, OUR_PAGES, SPARK, T0, PublicSite, public_site
from voice_agent.consent.script import FORM_DISCLOSURE_VERSION, render_form_disclosure
from voice_agent.records.businesses import Business, get_business, save_business
from voice_agent.records.calls import CallRecord, get_call
from voice_agent.records.owner_call_log import ReceptionistCallLog
from voice_agent.records.sms_policies import policy_for, send_rules
from voice_agent.records.tables import calls
from voice_agent.web.callback_requests import OPTED_OUT_NOTE

ANN = "+15125550123"
ACME_NUMBER = "+15125550100"
ACME_BOOKING_URL = "https://acme-plumbing.example/book"
BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PublicSite]:
    with (
        fresh_database(request.param, tmp_path, "callback_form") as url,
        public_site(url, tmp_path) as built,
    ):
        yield built


@dataclass(frozen=True)
class Stored:
    """Everything the form can store."""

    calls: int
    events: int
    outbox: int


def _stored(site: PublicSite) -> Stored:
    with site.engine.connect() as conn:
        call_count = conn.execute(select(func.count()).select_from(calls)).scalar_one()
        events = ledger_event_total(conn) - site.events_at_start
        return Stored(call_count, events, len(list_outbox(conn)))


def _post(
    site: PublicSite,
    *,
    business_id: str = ACME,
    headers: dict[str, str] | None = None,
    **fields: str,
) -> Any:
    form = {"name": "Ann Lee", "phone": "(512) 555-0123", "need": "Kitchen sink leaks"}
    form.update(site.form_fields(business_id) if "token" not in fields else {})
    form.update(fields)
    sent_headers = {**OUR_PAGES, "user-agent": BROWSER, **(headers or {})}
    return site.client.post(
        f"/b/{business_id}/callback", data=form, headers=sent_headers, follow_redirects=False
    )


def _sent(site: PublicSite, response: Any, outcome: str) -> str:
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/b/{ACME}/callback/sent?outcome={outcome}"
    page = site.client.get(response.headers["location"])
    assert page.status_code == 200
    assert "Thank you: your request was sent" in page.text
    return str(page.text)


def _requests(site: PublicSite) -> list[CallRecord]:
    with site.engine.connect() as conn:
        sids = conn.execute(select(calls.c.call_sid).order_by(calls.c.started_at)).scalars()
        return [record for sid in list(sids) if (record := get_call(conn, sid)) is not None]


def _events(site: PublicSite, number: str = ANN) -> list[RecordedEvent]:
    with site.engine.connect() as conn:
        return events_for_number(conn, ACME, number)


def _texts_to(site: PublicSite, number: str = ANN) -> list[OutboxMessage]:
    with site.engine.connect() as conn:
        return [text for text in list_outbox(conn, ACME) if text.to_number == number]


def _stop(site: PublicSite, number: str, sid: str) -> None:
    with site.engine.begin() as conn:
        policy = policy_for(conn, ACME)
        assert policy is not None
        handle_inbound(conn, InboundSms(sid, number, ACME_NUMBER, "STOP"), policy, T0)


def test_the_form_has_an_unchecked_box_with_its_disclosure_beside_it(site: PublicSite) -> None:
    page = site.client.get(f"/b/{ACME}/callback")
    assert page.status_code == 200
    html = page.text
    disclosure = render_form_disclosure("Acme Plumbing", 2)
    assert '<input type="checkbox" id="sms_consent" name="sms_consent" value="yes">' in html
    assert 'value="yes" checked' not in html
    assert f'<span id="disclosure">{escape(disclosure.text)}</span>' in html
    for field in ("name", "phone", "need"):
        assert f'<label for="{field}">' in html
    assert 'name="website" tabindex="-1"' in html  # the honeypot, hidden from people
    assert page.headers["cache-control"] == "no-store"


def test_without_the_box_it_is_a_callback_request_only(site: PublicSite) -> None:
    page = _sent(site, _post(site), "callback")
    assert "You did not tick the text-message box, so we will not text you." in page
    (request,) = _requests(site)
    assert request.call_sid.startswith("WF") and request.end_reason == "web_form"
    assert (request.caller_name, request.need) == ("Ann Lee", "Kitchen sink leaks")
    assert request.caller_number == request.callback_number == ANN  # normalised to E.164
    assert request.consent_outcome == "declined" and request.consent_event_hash is None
    assert _events(site) == [] and _texts_to(site) == []
    assert _stored(site) == Stored(calls=1, events=0, outbox=0)
    with site.engine.connect() as conn:  # the owner's call list shows it
        (listed,) = ReceptionistCallLog().calls(conn, ACME, CallFilter(), 0, 10)
    assert listed.call_sid == request.call_sid and listed.need == "Kitchen sink leaks"


def test_with_the_box_one_consent_event_and_one_confirmation_like_a_spoken_yes(
    site: PublicSite,
) -> None:
    served_at = T0
    fields = site.form_fields()
    site.clock.now = T0 + timedelta(minutes=3)
    page = _sent(site, _post(site, sms_consent="yes", **fields), "texts")
    assert "a confirmation text is on its way" in page and "at most 2 texts" in page

    (request,) = _requests(site)
    (event,) = _events(site)
    assert event.kind is EventKind.WEB_FORM_CONSENT and request.consent_event_hash == event.hash
    evidence = event.evidence()
    disclosure = render_form_disclosure("Acme Plumbing", 2)
    assert evidence.script is not None
    assert (evidence.script.version, evidence.script.text, evidence.script.sha256) == (
        FORM_DISCLOSURE_VERSION,
        disclosure.text,
        disclosure.sha256,
    )
    assert evidence.script.started_at == served_at  # when the form was shown
    assert evidence.occurred_at == site.clock.now and evidence.method.value == "web_form"
    assert evidence.web_form is not None
    assert evidence.web_form.page_url == f"{PUBLIC_BASE_URL}/b/{ACME}/callback"
    assert evidence.web_form.user_agent == BROWSER and evidence.web_form.ip_address
    assert evidence.scope is not None and evidence.scope.max_texts == 2
    assert evidence.scope.expires_at == site.clock.now + timedelta(hours=24)
    assert request.call_sid in evidence.note

    (text,) = _texts_to(site)
    assert text.kind is OutboxKind.CONFIRMATION and text.consent_event_hash == event.hash
    spoken_yes = ConfirmationRequest(
        ACME, "Acme Plumbing", ACME_NUMBER, ANN, "CA1", "your service request",
        "within 30 minutes", event.hash,
    )  # fmt: skip
    terms = ConfirmationTerms(
        2, site.clock.now + timedelta(hours=24), "America/Chicago", ACME_BOOKING_URL
    )
    assert text.body == render_confirmation(spoken_yes, terms)
    assert _stored(site) == Stored(calls=1, events=1, outbox=1)

    transport = LocalSmsTransport()
    report = dispatch_due(site.engine, transport, site.clock.now, rules=send_rules())
    assert report.sent == 1 and [sms.body for sms in transport.delivered] == [text.body]


def test_a_number_that_opted_out_is_not_resubscribed_by_the_box(site: PublicSite) -> None:
    _sent(site, _post(site, sms_consent="yes"), "texts")  # consent in force ...
    _stop(site, ANN, "SM" + "1" * 32)  # ... then STOP
    with site.engine.connect() as conn:
        state = consent_state(conn, ACME, ANN)
    assert state is not None and state.status is ConsentStatus.REVOKED
    events, texts = len(_events(site)), len(_texts_to(site))

    page = _sent(site, _post(site, sms_consent="yes"), "opted-out")
    assert "did not sign it up again: we will not text you" in page
    assert len(_events(site)) == events and len(_texts_to(site)) == texts
    with site.engine.connect() as conn:
        state = consent_state(conn, ACME, ANN)
    assert state is not None and state.status is ConsentStatus.REVOKED
    latest = _requests(site)[-1]
    assert latest.consent_event_hash is None and OPTED_OUT_NOTE in latest.notes


def test_a_stop_with_no_consent_in_force_also_keeps_the_box_from_subscribing(
    site: PublicSite,
) -> None:
    _stop(site, ANN, "SM" + "2" * 32)  # no ledger event: nothing was in force
    assert _events(site) == []
    opt_out_confirmations = len(_texts_to(site))
    _sent(site, _post(site, sms_consent="yes"), "opted-out")
    assert _events(site) == [] and len(_texts_to(site)) == opt_out_confirmations


def test_a_filled_honeypot_is_refused_and_nothing_stored(site: PublicSite) -> None:
    response = _post(site, sms_consent="yes", website="http://spam.example")
    assert response.status_code == 400
    assert "looks automated" in response.text
    assert _stored(site) == Stored(0, 0, 0)


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"origin": "", "referer": "https://evil.example/b/acme-plumbing/callback"},
        {"origin": ""},
    ],
    ids=["forged origin", "null origin", "forged referer", "no origin"],
)
def test_a_post_from_another_site_is_refused_and_nothing_stored(
    site: PublicSite, headers: dict[str, str]
) -> None:
    response = _post(site, sms_consent="yes", headers=headers)
    assert response.status_code == 403
    assert "can only be sent from its own page" in response.text
    assert _stored(site) == Stored(0, 0, 0)


def test_missing_forged_foreign_or_stale_tokens_are_refused_and_nothing_stored(
    site: PublicSite,
) -> None:
    good = site.form_fields()
    issued, nonce, mac = good["token"].split(".")
    other = site.form_fields(SPARK)["token"]
    forged = {
        "missing": "",
        "garbage": "not-a-token",
        "forged mac": f"{issued}.{nonce}.{'A' * 43}",
        "moved time": f"{int(issued) + 3600}.{nonce}.{mac}",
        "another business's": other,
    }
    for label, token in forged.items():
        response = _post(site, sms_consent="yes", token=token)
        assert response.status_code == 403, label
        assert "did not come from our page" in response.text
    site.clock.now = T0 + timedelta(hours=2, minutes=1)
    assert _post(site, sms_consent="yes", token=good["token"]).status_code == 403
    assert _stored(site) == Stored(0, 0, 0)


def test_a_flood_from_one_number_is_refused_and_nothing_more_stored(site: PublicSite) -> None:
    for _ in range(3):
        assert _post(site).status_code == 303
    response = _post(site, sms_consent="yes")
    assert response.status_code == 429
    assert "sent several requests already" in response.text
    assert _stored(site) == Stored(calls=3, events=0, outbox=0)
    site.clock.now = T0 + timedelta(hours=1, seconds=1)  # an hour on, the number may ask again
    assert _post(site).status_code == 303


def test_a_flood_from_one_address_is_refused_and_nothing_more_stored(site: PublicSite) -> None:
    for number in range(5):
        assert _post(site, phone=f"(512) 555-01{number:02d}").status_code == 303
    response = _post(site, phone="(512) 555-0199", sms_consent="yes")
    assert response.status_code == 429
    assert "Too many requests were sent from your network" in response.text
    assert _stored(site) == Stored(calls=5, events=0, outbox=0)


def test_bad_input_is_shown_again_with_each_problem_and_nothing_stored(site: PublicSite) -> None:
    response = _post(
        site, name="  ", phone="555", need="Water heater <b>out</b>", sms_consent="yes"
    )
    assert response.status_code == 422
    html = response.text
    assert "Please give your name." in html
    assert "Please give a phone number we can call" in html
    assert 'id="phone" name="phone"' in html and 'value="555"' in html  # what was typed stays
    assert "Water heater &lt;b&gt;out&lt;/b&gt;</textarea>" in html
    assert 'value="yes" checked' in html
    assert _stored(site) == Stored(0, 0, 0)


def test_a_box_ticked_on_terms_that_changed_since_is_shown_again(site: PublicSite) -> None:
    fields = site.form_fields()
    with site.engine.begin() as conn:
        business = get_business(conn, ACME)
        assert business is not None
        save_business(conn, Business.model_validate({**business.model_dump(), "max_texts": 4}))
    response = _post(site, sms_consent="yes", **fields)
    assert response.status_code == 409
    assert "terms below changed while this page was open" in response.text
    assert "one to four texts" in response.text
    assert _stored(site) == Stored(0, 0, 0)


def test_the_owner_sees_the_request_and_the_ticked_boxs_evidence(site: PublicSite) -> None:
    _sent(site, _post(site, sms_consent="yes"), "texts")
    (request,) = _requests(site)
    with site.engine.begin() as conn:
        token = OWNER_TOKENS.issue(conn, ACME, "owner", T0, timedelta(days=30)).secret
    signed_in = site.client.post("/owner/sign-in", data={"token": token}, headers=OUR_PAGES)
    assert signed_in.status_code == 200, signed_in.text  # followed to the call list
    assert request.call_sid in signed_in.text and "Kitchen sink leaks" in signed_in.text
    html = site.client.get(f"/owner/calls/{request.call_sid}").text
    assert "Agreed to texts on the callback form" in html
    assert "ticked the SMS box on the callback form" in html
    assert "The words beside the ticked SMS box" in html
    assert str(escape(render_form_disclosure("Acme Plumbing", 2).text)) in html
    assert f"sent from {PUBLIC_BASE_URL}/b/{ACME}/callback" in html and BROWSER in html


def test_a_request_that_cannot_be_stored_says_so_and_gives_the_number_to_call(
    site: PublicSite,
) -> None:
    fields = site.form_fields()
    with site.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE calls RENAME TO calls_away")
    response = _post(site, sms_consent="yes", **fields)
    assert response.status_code == 503
    assert "We could not take your request just now. Please call us at (512) 555-0100." in (
        response.text
    )
    with site.engine.connect() as conn:
        assert ledger_event_total(conn) == site.events_at_start and list_outbox(conn) == []


def test_a_caller_who_asks_is_forgotten_but_the_consent_evidence_stays(site: PublicSite) -> None:
    _sent(site, _post(site, sms_consent="yes"), "texts")
    _sent(site, _post(site, phone="(512) 555-0177"), "callback")
    settings = site.services.settings
    result = receptionist("calls", "forget", "--business", ACME, "512-555-0123", settings=settings)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Deleted 1 call of +15125550123 with acme-plumbing,")
    assert [request.caller_number for request in _requests(site)] == ["+15125550177"]
    assert len(_events(site)) == 1 and len(_texts_to(site)) == 1  # the evidence stays
    refused = receptionist("calls", "forget", "--business", ACME, "555", settings=settings)
    assert refused.exit_code == 1 and "not a possible phone number" in refused.stderr
