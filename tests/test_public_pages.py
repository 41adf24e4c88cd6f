"""The public pages of a business (``/b/{id}/sms``, ``/privacy``, ``/terms``), read over HTTP
with no sign-in: each states what the system does now — the consent script rendered for the
business with its version, the samples and replies rendered from the shipped templates, the
maximum of texts, the retention settings, the business's name and contact — and a change to the
script version, the maximum or a template shows on the pages and in the campaign brief at once,
with no restart. An unknown business is a 404 page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import escape

from sms_sender import TemplateName, sample
from tests.conftest import PUBLIC_BASE_URL
from tests.prompt_support import add_consent_script, edit_sms_templates
from tests.public_site_support import ACME, SPARK, PublicSite, public_site
from voice_agent.consent.campaign_brief import build_brief
from voice_agent.consent.script import render_consent_script, render_form_disclosure
from voice_agent.records.businesses import Business, get_business, save_business

PAGES = ("sms", "privacy", "terms")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[PublicSite]:
    with public_site(f"sqlite:///{tmp_path / 'public.db'}", tmp_path) as built:
        yield built


def _business(site: PublicSite, business_id: str) -> Business:
    with site.engine.connect() as conn:
        business = get_business(conn, business_id)
    assert business is not None
    return business


def _change(site: PublicSite, business_id: str, **changes: object) -> None:
    business = _business(site, business_id)
    with site.engine.begin() as conn:
        save_business(conn, Business.model_validate({**business.model_dump(), **changes}))


def _text(site: PublicSite, business_id: str, page: str) -> str:
    response = site.client.get(f"/b/{business_id}/{page}")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def _shown(text: str) -> str:
    """``text`` as the HTML shows it (escaped)."""
    return str(escape(text))


@pytest.mark.parametrize("business_id", [ACME, SPARK])
def test_the_sms_page_states_the_exact_script_the_samples_and_the_keywords(
    site: PublicSite, business_id: str
) -> None:
    business = _business(site, business_id)
    html = _text(site, business_id, "sms")
    script = render_consent_script(
        business.consent_script_version, business.name, business.max_texts
    )
    brief = build_brief(business, PUBLIC_BASE_URL)
    assert "<h1>SMS opt-in: how it works</h1>" in html
    assert f'<blockquote id="consent-script">{_shown(script.text)}</blockquote>' in html
    assert f"version {script.version}" in html and script.sha256 in html
    assert "Only a clear yes opts you in" in html
    assert _shown(render_form_disclosure(business.name, business.max_texts).text) in html
    assert f"at most {business.max_texts} texts</strong>, all within 24 hours" in html
    for text in brief.message_samples:
        assert f'<p class="sms">{_shown(text)}</p>' in html
    contact = {"business_name": business.name, "help_contact": business.help_contact}
    for reply in (
        sample(TemplateName.OPT_OUT, contact),
        sample(TemplateName.HELP, contact),
        sample(TemplateName.OPT_IN, {"business_name": business.name}),
    ):
        assert _shown(reply) in html
    assert "STOP, STOPALL, UNSUBSCRIBE" in html and "ALTO" in html and "AYUDA" in html
    assert "Message and data rates may apply" in html
    assert "never sell, rent or share your phone number or your consent" in html
    assert f"{business.consent_retention_years} years" in html


@pytest.mark.parametrize("business_id", [ACME, SPARK])
def test_every_page_names_the_business_its_address_and_contact(
    site: PublicSite, business_id: str
) -> None:
    business = _business(site, business_id)
    assert business.address and business.contact_email
    for page in PAGES:
        html = _text(site, business_id, page)
        for fact in (business.name, business.address, business.contact_email):
            assert _shown(fact) in html, (page, fact)
        assert _shown(business.help_contact) in html
        assert "@media print" in html  # a print stylesheet
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_the_privacy_page_states_the_real_retention_and_who_sees_the_data(
    site: PublicSite,
) -> None:
    html = _text(site, SPARK, "privacy")
    assert 'id="transcript-retention">90 days after the call, then deleted</td>' in html
    assert 'id="consent-retention">5 years; never changed</td>' in html
    assert "and the recording of your answer" in html  # Bright Spark records its calls
    assert "Twilio connects the phone calls" in html
    assert "Deepgram" not in html and "OpenAI" not in html  # the embedded engines run here
    assert "we delete your call details and transcripts" in html

    _change(site, SPARK, transcript_retention_days=30, consent_retention_years=7)
    html = _text(site, SPARK, "privacy")
    assert 'id="transcript-retention">30 days after the call, then deleted</td>' in html
    assert 'id="consent-retention">7 years; never changed</td>' in html


def test_the_terms_carry_the_sms_terms_carriers_expect(site: PublicSite) -> None:
    html = _text(site, ACME, "terms")
    for expected in (
        "<h2>SMS terms</h2>",
        "At most 2 texts per request, all within 24 hours.",
        "Message and data rates may apply. Carriers are not liable",
        "Reply STOP, STOPALL",
        "Reply HELP, INFO, AYUDA, or contact (512) 555-0199.",
        "Texting is never a condition of service.",
        'href="/b/acme-plumbing/privacy"',
    ):
        assert expected in html, expected


@pytest.mark.parametrize("path", [*PAGES, "callback", "callback/sent?outcome=texts"])
def test_an_unknown_business_is_a_404_page(site: PublicSite, path: str) -> None:
    for business_id in ("no-such-business", "ACME", "acme_plumbing", "a" * 65):
        response = site.client.get(f"/b/{business_id}/{path}")
        assert response.status_code == 404
        assert "There is no business at this address." in response.text
        assert "Acme" not in response.text


def test_changing_the_script_version_max_texts_or_templates_changes_pages_and_brief_at_once(
    site: PublicSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {page: _text(site, ACME, page) for page in (*PAGES, "callback")}
    assert "one or two texts" in before["sms"]

    _change(site, ACME, max_texts=4)
    sms = _text(site, ACME, "sms")
    assert "one to four texts" in sms and "one or two texts" not in sms
    assert "at most 4 texts</strong>" in sms
    assert "At most 4 texts per request" in _text(site, ACME, "terms")
    assert "one to four texts" in _text(site, ACME, "callback")  # the form's disclosure
    assert "one to four texts" in build_brief(_business(site, ACME), PUBLIC_BASE_URL).message_flow

    v2 = (
        "Hi, automated assistant here: may {business_name} send you {text_count} about this? "
        "Msg and data rates may apply. Reply STOP to opt out, HELP for help. Okay?"
    )
    add_consent_script(tmp_path, monkeypatch, "v2", v2)
    _change(site, ACME, consent_script_version="v2")
    rendered = v2.format(business_name="Acme Plumbing", text_count="one to four texts")
    sms = _text(site, ACME, "sms")
    assert f'<blockquote id="consent-script">{_shown(rendered)}</blockquote>' in sms
    assert "version v2" in sms and render_consent_script("v2", "Acme Plumbing", 4).sha256 in sms
    assert "(script version v2)" in _text(site, ACME, "terms")
    brief = build_brief(_business(site, ACME), PUBLIC_BASE_URL)
    assert f'"{rendered}"' in brief.message_flow

    edit_sms_templates(
        tmp_path, monkeypatch, ("confirmation", "help"), "{business_name}:", "{business_name} here:"
    )
    sms = _text(site, ACME, "sms")
    assert "Acme Plumbing here: thanks for calling about [" in sms
    assert "Acme Plumbing here: for help with your service request" in sms
    brief = build_brief(_business(site, ACME), PUBLIC_BASE_URL)
    assert brief.message_samples[0].startswith("Acme Plumbing here: thanks for calling")
    assert _shown(brief.message_samples[0]) in sms
