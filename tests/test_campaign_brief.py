"""``receptionist campaign brief``: the A2P 10DLC campaign (Twilio ``UsAppToPerson``) of a
business — the message flow quotes the exact rendered consent script, the samples are the real
templates, a change to the script version, the maximum or a template shows at once, the docs
are current, and ``--submit`` creates the campaign through the real SDK on the fake Twilio."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from sms_sender import ReplyIntent, classify_reply
from sms_sender.keywords import is_bare_yes
from tests.cli_support import receptionist
from tests.conftest import ROOT
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, TwilioError, fake_twilio
from tests.prompt_support import add_consent_script, edit_sms_templates
from voice_agent.consent.campaign_brief import (
    NEED_PLACEHOLDER,
    UNTIL_PLACEHOLDER,
    CampaignBrief,
    build_brief,
    has_link,
    has_phone_number,
)
from voice_agent.consent.script import render_consent_script
from voice_agent.records.businesses import (
    Business,
    BusinessConfigError,
    get_business,
    import_businesses,
    load_businesses,
    save_business,
)
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade
from voice_agent.settings import Settings

FIXTURES = ROOT / "fixtures" / "businesses.yaml"
DOCS = ROOT / "docs" / "campaign-briefs.md"
DOCS_BASE_URL = "https://receptionist.example.com"
BASE_URL = "https://calls.acme.example"
SERVICE_SID = "MG" + "2" * 32
BRAND_SID = "BN" + "3" * 32


def _business(business_id: str) -> Business:
    (found,) = [b for b in load_businesses(FIXTURES) if b.id == business_id]
    return found


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated database holding the demo businesses."""
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    url = f"sqlite:///{tmp_path / 'brief.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        import_businesses(conn, FIXTURES)
    engine.dispose()
    return url


def _settings(database_url: str, **values: str) -> Settings:
    return Settings(database_url=database_url, public_base_url=BASE_URL, **values)  # type: ignore[arg-type]


def _change(database_url: str, business_id: str, **changes: object) -> None:
    engine = make_engine(database_url)
    with engine.begin() as conn:
        business = get_business(conn, business_id)
        assert business is not None
        save_business(conn, Business.model_validate({**business.model_dump(), **changes}))
    engine.dispose()


def _brief_json(settings: Settings, business_id: str = "acme-plumbing") -> dict[str, object]:
    result = receptionist(
        "campaign", "brief", "--business", business_id, "--json", settings=settings
    )
    assert result.exit_code == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


# --- the brief ---------------------------------------------------------------------------------


@pytest.mark.parametrize("business_id", ["acme-plumbing", "bright-spark-electric"])
def test_the_message_flow_quotes_the_exact_rendered_script(business_id: str) -> None:
    business = _business(business_id)
    script = render_consent_script(
        business.consent_script_version, business.name, business.max_texts
    )
    brief = build_brief(business, BASE_URL)
    assert f'"{script.text}"' in brief.message_flow
    assert brief.script == script
    flow = brief.message_flow
    assert "automated voice assistant" in flow  # who reads it
    assert "Near the end of the call, after the message and before goodbye" in flow  # when
    assert "Only a clear spoken yes" in flow  # the affirmative answer
    assert "press 1 for yes" in flow
    assert "consent record kept 5 years" in flow  # how it is stored
    for page in ("sms", "privacy", "terms", "callback"):
        assert f"{BASE_URL}/b/{business_id}/{page}" in flow
    assert 40 <= len(flow) <= 2048


def test_every_campaign_field_is_filled_from_what_is_really_sent() -> None:
    brief = build_brief(_business("acme-plumbing"), BASE_URL)
    fields = brief.usa2p_fields()
    assert set(fields) == {
        "description", "message_flow", "message_samples", "us_app_to_person_usecase",
        "has_embedded_links", "has_embedded_phone", "opt_in_message", "opt_out_message",
        "help_message", "opt_in_keywords", "opt_out_keywords", "help_keywords",
        "subscriber_opt_in", "age_gated", "direct_lending", "privacy_policy_url",
        "terms_and_conditions_url",
    }  # fmt: skip
    assert fields["us_app_to_person_usecase"] == "CUSTOMER_CARE"
    assert 40 <= len(brief.description) <= 4096
    assert "one or two texts" in brief.description
    first, *others = brief.message_samples
    assert len(brief.message_samples) >= 2
    assert first == (
        f"Acme Plumbing: thanks for calling about {NEED_PLACEHOLDER}. We'll call you back within "
        f"30 minutes. Up to 2 texts about this request until {UNTIL_PLACEHOLDER}. Book online: "
        "https://acme-plumbing.example/book Msg & data rates may apply. Reply HELP for help, "
        "STOP to opt out."
    )
    assert NEED_PLACEHOLDER.startswith("[") and NEED_PLACEHOLDER.endswith("]")
    assert UNTIL_PLACEHOLDER.startswith("[") and UNTIL_PLACEHOLDER.endswith("]")
    assert others[0] == brief.help_message
    assert "(512) 555-0199" in brief.help_message
    assert brief.opt_out_message.startswith("You're unsubscribed from Acme Plumbing texts.")
    assert "resubscribed" in brief.opt_in_message
    assert brief.has_embedded_phone and brief.has_embedded_links  # its booking link
    assert (
        brief.pages.privacy == fields["privacy_policy_url"] == f"{BASE_URL}/b/acme-plumbing/privacy"
    )
    assert brief.opt_out_keywords[0] == "STOP" and "OPTOUT" in brief.opt_out_keywords
    assert brief.help_keywords[:2] == ("HELP", "INFO")
    assert brief.opt_in_keywords[:2] == ("START", "UNSTOP")


def test_the_embedded_phone_and_link_flags_follow_the_texts() -> None:
    electric = build_brief(_business("bright-spark-electric"), BASE_URL)
    assert "help@brightspark.example" in electric.help_message
    assert not electric.has_embedded_phone and not electric.has_embedded_links
    with_site = _business("bright-spark-electric").model_copy(
        update={"help_contact": "https://brightspark.example/help"}
    )
    assert build_brief(with_site, BASE_URL).has_embedded_links
    assert has_phone_number("call 512-555-0199 now") and has_phone_number("(303) 555 0149")
    assert not has_phone_number(f"about {NEED_PLACEHOLDER}, within 30 minutes")
    assert has_link("see www.example.com") and has_link("brightspark.example/help")
    assert not has_link("mail help@brightspark.example. Reply STOP")


def test_every_registered_keyword_is_honoured_by_the_inbound_classifier() -> None:
    brief = build_brief(_business("acme-plumbing"), BASE_URL)
    for word in brief.opt_out_keywords:
        assert classify_reply(word) is ReplyIntent.OPT_OUT, word
    for word in brief.help_keywords:
        assert classify_reply(word) is ReplyIntent.HELP, word
    for word in brief.opt_in_keywords:
        assert classify_reply(word) is ReplyIntent.OPT_IN or is_bare_yes(word), word
    for words in (brief.opt_out_keywords, brief.help_keywords, brief.opt_in_keywords):
        assert all(word.isascii() and word.isalnum() for word in words)


def test_the_follow_ups_a_business_turns_on_become_samples() -> None:
    business = _business("bright-spark-electric").model_copy(
        update={"no_reply_follow_up_hours": 3, "callback_check_hours": 5}
    )
    samples = build_brief(business, BASE_URL).message_samples
    assert len(samples) == 3
    assert "we haven't heard back" in samples[1] and "did we reach you?" in samples[2]
    one_text = business.model_copy(update={"max_texts": 1})
    assert (
        "for help with your service request" in build_brief(one_text, BASE_URL).message_samples[1]
    )


# --- the command -------------------------------------------------------------------------------


def test_the_text_to_paste_holds_the_exact_script_and_every_field(database: str) -> None:
    settings = _settings(database)
    result = receptionist("campaign", "brief", "--business", "acme-plumbing", settings=settings)
    assert result.exit_code == 0, result.stderr
    brief = build_brief(_business("acme-plumbing"), BASE_URL)
    assert brief.script.text in result.stdout
    for _label, field, value in brief.labelled_fields():
        assert f"({field}):\n{value}\n" in result.stdout + "\n", field
    assert result.stderr == ""  # an https base URL: no warning


def test_json_is_the_brief(database: str) -> None:
    document = _brief_json(_settings(database))
    expected = build_brief(_business("acme-plumbing"), BASE_URL).as_dict()
    assert document == expected
    script = document["consent_script"]
    assert isinstance(script, dict)
    fields = document["us_app_to_person"]
    assert isinstance(fields, dict)
    assert script["text"] in fields["message_flow"]


def test_changing_the_script_version_max_texts_or_templates_changes_the_brief_at_once(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(database)
    before = _brief_json(settings)

    _change(database, "acme-plumbing", max_texts=4)
    more = _brief_json(settings)
    assert "one to four texts" in json.dumps(more) and "one or two texts" not in json.dumps(more)

    v2 = (
        "Hi, automated assistant here: may {business_name} send you {text_count} about this? "
        "Msg and data rates may apply. Reply STOP to opt out, HELP for help. Okay?"
    )
    add_consent_script(tmp_path, monkeypatch, "v2", v2)
    _change(database, "acme-plumbing", consent_script_version="v2")
    second = _brief_json(settings)
    rendered = v2.format(business_name="Acme Plumbing", text_count="one to four texts")
    assert second["consent_script"] == {
        "version": "v2",
        "sha256": render_consent_script("v2", "Acme Plumbing", 4).sha256,
        "text": rendered,
    }
    fields = second["us_app_to_person"]
    assert isinstance(fields, dict)
    assert f'"{rendered}"' in fields["message_flow"] and "(version v2)" in fields["message_flow"]

    edit_sms_templates(
        tmp_path, monkeypatch, ("confirmation",), "thanks for calling", "thank you for calling"
    )
    edited = _brief_json(settings)["us_app_to_person"]
    assert isinstance(edited, dict)
    assert edited["message_samples"][0].startswith("Acme Plumbing: thank you for calling about [")
    assert before != more != second != edited


def test_an_unknown_business_is_an_error_naming_the_known_ones(database: str) -> None:
    result = receptionist("campaign", "brief", "--business", "acme", settings=_settings(database))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: no business 'acme'; known: acme-plumbing, bright-spark-electric"
    )


def test_a_local_base_url_is_warned_about(database: str) -> None:
    settings = Settings(database_url=database)  # PUBLIC_BASE_URL left at http://127.0.0.1:8765
    result = receptionist("campaign", "brief", "--business", "acme-plumbing", settings=settings)
    assert result.exit_code == 0
    assert "http://127.0.0.1:8765/b/acme-plumbing/sms" in result.stdout
    assert result.stderr.startswith("warning: PUBLIC_BASE_URL is http://127.0.0.1:8765;")


def test_the_docs_are_current(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'none.db'}", public_base_url=DOCS_BASE_URL
    )
    result = receptionist(
        "campaign", "brief", "--businesses-file", "fixtures/businesses.yaml",
        "--business", "acme-plumbing", "--business", "bright-spark-electric", "--markdown",
        settings=settings,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert DOCS.read_text(encoding="utf-8") == result.stdout, (
        "docs/campaign-briefs.md is out of date: regenerate it with the command it names"
    )
    for business_id in ("acme-plumbing", "bright-spark-electric"):
        brief = build_brief(_business(business_id), DOCS_BASE_URL)
        assert brief.script.text in result.stdout
        assert brief.message_flow in result.stdout
    assert not (tmp_path / "none.db").exists()


# --- --submit ----------------------------------------------------------------------------------


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as running:
        yield running


def _submit(settings: Settings, fake: FakeTwilio, *extra: str) -> tuple[int, str, str]:
    result = receptionist(
        "campaign", "brief", "--business", "acme-plumbing", "--submit",
        "--twilio-base-url", fake.base_url, *extra, settings=settings,
    )  # fmt: skip
    return result.exit_code, result.stdout, result.stderr


def test_submit_creates_the_campaign_through_the_twilio_sdk(
    database: str, twilio: FakeTwilio
) -> None:
    settings = _settings(database, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN)
    status, out, err = _submit(
        settings, twilio, "--messaging-service", SERVICE_SID, "--brand-registration", BRAND_SID,
        "--json",
    )  # fmt: skip
    assert status == 0, err
    (created,) = twilio.state.campaigns
    assert created.messaging_service_sid == SERVICE_SID
    brief: CampaignBrief = build_brief(_business("acme-plumbing"), BASE_URL)
    form = created.form
    assert form["BrandRegistrationSid"] == [BRAND_SID]
    assert form["Description"] == [brief.description]
    assert form["MessageFlow"] == [brief.message_flow]
    assert brief.script.text in form["MessageFlow"][0]
    assert form["MessageSamples"] == list(brief.message_samples)
    assert form["UsAppToPersonUsecase"] == ["CUSTOMER_CARE"]
    assert form["HasEmbeddedLinks"] == ["true"] and form["HasEmbeddedPhone"] == ["true"]
    assert form["OptOutKeywords"] == list(brief.opt_out_keywords)
    assert form["HelpKeywords"] == list(brief.help_keywords)
    assert form["OptInKeywords"] == list(brief.opt_in_keywords)
    assert form["HelpMessage"] == [brief.help_message]
    assert form["OptOutMessage"] == [brief.opt_out_message]
    assert form["OptInMessage"] == [brief.opt_in_message]
    assert form["PrivacyPolicyUrl"] == [brief.pages.privacy]
    assert form["TermsAndConditionsUrl"] == [brief.pages.terms]
    document = json.loads(out)
    assert document["submitted"] == {
        "sid": created.sid,
        "messaging_service_sid": SERVICE_SID,
        "brand_registration_sid": BRAND_SID,
        "campaign_status": "PENDING",
    }
    assert created.sid.startswith("QE") and len(created.sid) == 34


def test_submit_takes_the_sids_from_the_environment_and_says_what_it_created(
    database: str, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_MESSAGING_SERVICE_SID", SERVICE_SID)
    monkeypatch.setenv("TWILIO_BRAND_REGISTRATION_SID", BRAND_SID)
    settings = _settings(database, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN)
    status, out, err = _submit(settings, twilio)
    assert status == 0, err
    (created,) = twilio.state.campaigns
    assert out.rstrip().endswith(
        f"created campaign {created.sid} for Acme Plumbing on {SERVICE_SID}: PENDING"
    )


def test_submit_without_an_account_or_sids_is_one_sentence(
    database: str, twilio: FakeTwilio
) -> None:
    unset = _settings(database)
    status, _, err = _submit(
        unset, twilio, "--messaging-service", SERVICE_SID, "--brand-registration", BRAND_SID
    )
    assert status == 2
    assert err.strip() == (
        "Error: --submit needs your Twilio account: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
    )
    account = _settings(database, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN)
    status, _, err = _submit(account, twilio, "--brand-registration", BRAND_SID)
    assert status == 2
    assert "--submit needs --messaging-service MG… (or TWILIO_MESSAGING_SERVICE_SID)" in err
    status, _, err = _submit(account, twilio, "--messaging-service", SERVICE_SID)
    assert status == 2
    assert "--submit needs --brand-registration BN… (or TWILIO_BRAND_REGISTRATION_SID)" in err
    assert twilio.state.campaigns == [] and twilio.state.creates == 0


def test_a_refused_campaign_is_one_sentence_and_exit_1(database: str, twilio: FakeTwilio) -> None:
    twilio.state.script.append(TwilioError(400, 21720, "A2P Use Case is Invalid"))
    settings = _settings(database, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN)
    status, _, err = _submit(
        settings, twilio, "--messaging-service", SERVICE_SID, "--brand-registration", BRAND_SID
    )
    assert status == 1
    assert err.startswith("Error: Twilio refused the campaign of acme-plumbing: 21720 ")
    assert err.strip().endswith("A2P Use Case is Invalid") and err.count("\n") == 1
    assert "Traceback" not in err
    wrong = _settings(database, twilio_account_sid=ACCOUNT_SID, twilio_auth_token="wrong")
    status, _, err = _submit(
        wrong, twilio, "--messaging-service", SERVICE_SID, "--brand-registration", BRAND_SID
    )
    assert status == 1 and "20003" in err
    assert twilio.state.campaigns == []


# --- the booking link -------------------------------------------------------------------------


def test_has_embedded_links_follows_the_booking_link(database: str) -> None:
    """Stored and read back through the migrated database: setting a booking link puts it in the
    samples and turns has_embedded_links on; removing it turns it off."""
    _change(database, "bright-spark-electric", booking_url="https://brightspark.example/book")
    _change(database, "acme-plumbing", booking_url=None)
    engine = make_engine(database)
    with engine.begin() as conn:
        spark, acme = (
            get_business(conn, "bright-spark-electric"),
            get_business(conn, "acme-plumbing"),
        )
    engine.dispose()
    assert spark is not None and acme is not None
    assert spark.booking_url == "https://brightspark.example/book" and acme.booking_url is None
    with_link, without = build_brief(spark, BASE_URL), build_brief(acme, BASE_URL)
    assert with_link.has_embedded_links and not without.has_embedded_links
    assert "Book online: https://brightspark.example/book" in with_link.message_samples[0]
    assert "online booking link (https://brightspark.example/book)" in with_link.description
    assert "booking link" not in without.description
    assert not any("Book online" in text for text in without.message_samples)
    for brief in (with_link, without):  # never in the replies to STOP, HELP and START
        assert "Book online" not in brief.help_message + brief.opt_out_message
        assert "Book online" not in brief.opt_in_message


@pytest.mark.parametrize(
    "url",
    [
        "http://acme.example/book",
        "acme.example/book",
        "https://",
        "https://acme.example/book now",
        "https://acmé.example/book",
        "javascript:alert(1)",
        "https://acme.example/" + "b" * 100,
    ],
)
def test_a_booking_link_must_be_a_short_https_address(url: str) -> None:
    business = _business("acme-plumbing").model_dump()
    with pytest.raises(ValidationError, match="booking_url"):
        Business.model_validate({**business, "booking_url": url})


def test_a_business_whose_texts_cannot_be_written_is_refused_at_import(tmp_path: Path) -> None:
    """A long name with a long booking link leaves a follow-up no room: refused when the file is
    loaded, not when a call ends."""
    entry = _business("acme-plumbing").model_dump(mode="json")
    entry.update(
        name="Acme " * 30,
        no_reply_follow_up_hours=2,
        booking_url="https://acme-plumbing.example/" + "b" * 60,
    )
    path = tmp_path / "businesses.yaml"
    path.write_text(yaml.safe_dump({"businesses": [entry]}), encoding="utf-8")
    with pytest.raises(BusinessConfigError, match=r"business #1: .*booking_url too long"):
        load_businesses(path)
    entry.update(booking_url=None)
    path.write_text(yaml.safe_dump({"businesses": [entry]}), encoding="utf-8")
    assert load_businesses(path)[0].name == "Acme " * 30
