"""``receptionist twilio connect|check`` through the real ``twilio`` SDK against the fake Twilio
REST server: connect finds the business's IncomingPhoneNumber, sets its voice URL, messaging URL
and call status callback to PUBLIC_BASE_URL's webhook paths (and removes a TwiML App that would
override them), and says what was there before; check compares and exits 1 with the fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.cli_support import receptionist
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, TwilioError, fake_twilio
from voice_agent.services import build_services
from voice_agent.settings import Settings
from voice_agent.web.app import create_app
from voice_agent.web.number_webhooks import expected_settings, public_url_problem

BASE_URL = "https://calls.acme.example"
ACME = "+15125550100"
BRIGHT_SPARK = "+13035550140"
OLD_VOICE = "https://demo.twilio.com/welcome/voice/"
APP_SID = "AP" + "4" * 32


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as running:
        yield running


def _settings(database_url: str, base_url: str = BASE_URL) -> Settings:
    return Settings(
        database_url=database_url,
        public_base_url=base_url,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,  # type: ignore[arg-type]
        _env_file=None,  # type: ignore[call-arg]
    )


def _run(settings: Settings, fake: FakeTwilio, *argv: str) -> tuple[int, str, str]:
    urls = ("--twilio-base-url", fake.base_url, "--twilio-messaging-base-url", fake.base_url)
    result = receptionist(*argv, *urls, settings=settings)
    return result.exit_code, result.stdout, result.stderr


def test_expected_urls_are_routes_of_the_app(demo_database: str) -> None:
    """Each URL we set on a number is a webhook the server has (signature-checked: an unsigned
    post gets 403, not 404), under PUBLIC_BASE_URL."""
    client = TestClient(create_app(build_services(_settings(demo_database))))
    urls = [s.expected for s in expected_settings(BASE_URL) if s.expected.startswith("https")]
    assert len(urls) == 3
    for url in urls:
        assert client.post(url.removeprefix(BASE_URL), data={"To": ACME}).status_code == 403


def test_connect_sets_the_webhooks_and_shows_what_was_there(
    demo_database: str, twilio: FakeTwilio
) -> None:
    number = twilio.state.add_number(
        ACME, voice_url=OLD_VOICE, voice_method="GET", voice_application_sid=APP_SID
    )
    twilio.state.add_number("+15125550101")  # another of the account's numbers: left alone
    status, out, err = _run(
        _settings(demo_database), twilio, "twilio", "connect", "--business", "acme-plumbing"
    )
    assert status == 0, err
    assert f"{ACME} ({number.sid}) of Acme Plumbing: changed" in out
    assert f"voice URL: {OLD_VOICE} -> {BASE_URL}/twilio/voice" in out
    assert "voice method: GET -> POST" in out
    assert f"voice application: {APP_SID} -> " in out
    assert f"messaging URL: (none) -> {BASE_URL}/twilio/sms" in out
    assert f"call status callback: (none) -> {BASE_URL}/twilio/voice/status" in out
    assert "messaging method" not in out  # it was POST already
    fields = number.fields
    assert fields["voice_url"] == f"{BASE_URL}/twilio/voice"
    assert fields["voice_method"] == "POST"
    assert fields["voice_application_sid"] is None
    assert fields["sms_url"] == f"{BASE_URL}/twilio/sms"
    assert fields["status_callback"] == f"{BASE_URL}/twilio/voice/status"
    (update,) = twilio.state.updates
    assert "SmsMethod" not in update  # only what differed is sent
    other = twilio.state.numbers[1]
    assert other.fields["voice_url"] == ""

    status, out, err = _run(
        _settings(demo_database), twilio, "twilio", "connect", "--business", "acme-plumbing"
    )
    assert status == 0, err
    assert "already connected, nothing changed" in out
    assert len(twilio.state.updates) == 1

    status, out, err = _run(_settings(demo_database), twilio, "twilio", "check")
    assert status == 1  # bright-spark's number is not in the account
    assert f"{ACME} of Acme Plumbing: ok" in out
    assert f"{BRIGHT_SPARK} of Bright Spark Electric: not a number of this Twilio account" in out


def test_check_reports_each_difference_with_the_fix(demo_database: str, twilio: FakeTwilio) -> None:
    twilio.state.add_number(ACME)
    twilio.state.add_number(BRIGHT_SPARK)
    assert (
        _run(_settings(demo_database), twilio, "twilio", "connect", "--business", "acme-plumbing")[
            0
        ]
        == 0
    )
    assert (
        _run(
            _settings(demo_database),
            twilio,
            "twilio",
            "connect",
            "--business",
            "bright-spark-electric",
        )[0]
        == 0
    )
    status, out, _ = _run(_settings(demo_database), twilio, "twilio", "check")
    assert status == 0
    assert out.count(": ok") == 2

    moved = _settings(demo_database, "https://new-host.example")  # PUBLIC_BASE_URL changed since
    status, out, _ = _run(moved, twilio, "twilio", "check", "--business", "acme-plumbing")
    assert status == 1
    assert f"{ACME} of Acme Plumbing: 3 setting(s) differ" in out
    assert (
        f"voice URL: Twilio has {BASE_URL}/twilio/voice, expected https://new-host.example/twilio/voice"
        in out
    )
    assert f"fix: receptionist twilio connect --business acme-plumbing --number {ACME}" in out
    assert BRIGHT_SPARK not in out


def test_connect_one_number_of_the_business_only(demo_database: str, twilio: FakeTwilio) -> None:
    twilio.state.add_number(BRIGHT_SPARK)

    def connect_acme(number: str) -> tuple[int, str, str]:
        argv = ("twilio", "connect", "--business", "acme-plumbing", "--number", number)
        return _run(_settings(demo_database), twilio, *argv)

    status, _, err = connect_acme(BRIGHT_SPARK)
    assert status == 1
    assert "+13035550140 is not a number of acme-plumbing" in err
    assert twilio.state.updates == []
    status, _, err = connect_acme("(512) 555-0100")
    assert status == 1  # the right number, written locally; but the account does not have it
    assert "+15125550100 of acme-plumbing is not a number of this Twilio account" in err


@pytest.mark.parametrize(
    "base_url",
    ["http://calls.acme.example", "https://127.0.0.1:8765", "https://localhost", "https://calls"],
)
def test_connect_refuses_a_public_url_twilio_cannot_reach(
    demo_database: str, twilio: FakeTwilio, base_url: str
) -> None:
    twilio.state.add_number(ACME)
    status, _, err = _run(
        _settings(demo_database, base_url),
        twilio,
        "twilio",
        "connect",
        "--business",
        "acme-plumbing",
    )
    assert status == 1
    assert "PUBLIC_BASE_URL" in err
    assert twilio.state.updates == []
    assert public_url_problem(BASE_URL) is None


def test_refusals_are_one_sentence(demo_database: str, twilio: FakeTwilio) -> None:
    twilio.state.add_number(ACME)
    twilio.state.script.append(TwilioError(400, 21402, "Invalid Url"))
    status, _, err = _run(
        _settings(demo_database), twilio, "twilio", "connect", "--business", "acme-plumbing"
    )
    assert status == 1
    refused = f"Error: Twilio refused the update of {ACME}: 21402 Unable to update record: "
    assert err == refused + "Invalid Url\n"

    no_account = Settings(database_url=demo_database, public_base_url=BASE_URL, _env_file=None)  # type: ignore[call-arg]
    status, _, err = _run(no_account, twilio, "twilio", "check")
    assert status == 2
    assert "set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in err

    status, _, err = _run(
        _settings(demo_database), twilio, "twilio", "connect", "--business", "acme"
    )
    assert status == 1
    assert "no business 'acme'; known: acme-plumbing, bright-spark-electric" in err

    wrong_token = _settings(demo_database).model_copy(
        update={"twilio_auth_token": SecretStr("0" * 32)}
    )
    status, _, err = _run(wrong_token, twilio, "twilio", "check")
    assert (status, err) == (
        1,
        "Error: Twilio refused the list of Messaging Services: HTTP 401 "
        "(check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)\n",
    )
    nowhere = ("--twilio-base-url", "http://127.0.0.1:9", "--twilio-messaging-base-url")
    unreachable = receptionist(
        "twilio", "check", *nowhere, "http://127.0.0.1:9", settings=_settings(demo_database)
    )
    assert unreachable.exit_code == 1
    assert unreachable.stderr.startswith("Error: Twilio could not be reached: ")


def test_a_messaging_service_that_keeps_the_texts(demo_database: str, twilio: FakeTwilio) -> None:
    """An A2P number sends from a Messaging Service, which takes its inbound texts to the
    service's own request URL unless it defers to the number's webhook."""
    acme = twilio.state.add_number(ACME)
    service = twilio.state.add_service(
        "Acme texts", [acme], inbound_request_url="https://old.example/sms"
    )
    status, out, _ = _run(
        _settings(demo_database), twilio, "twilio", "connect", "--business", "acme-plumbing"
    )
    assert status == 1  # the number is set, but its texts would still not reach us
    assert acme.fields["sms_url"] == f"{BASE_URL}/twilio/sms"
    assert (
        f"its Messaging Service Acme texts ({service.sid}) sends inbound texts to "
        "https://old.example/sms, not to the number's messaging URL" in out
    )
    assert "fix: in the Console, set the Messaging Service's Integration to 'Defer to" in out
    status, out, _ = _run(
        _settings(demo_database), twilio, "twilio", "check", "--business", "acme-plumbing"
    )
    assert status == 1
    assert out.startswith(f"{ACME} of Acme Plumbing: its Messaging Service differs\n")
    assert "sends inbound texts to https://old.example/sms" in out

    service.use_inbound_webhook_on_number = True  # "Defer to sender's webhook"
    status, out, _ = _run(
        _settings(demo_database), twilio, "twilio", "check", "--business", "acme-plumbing"
    )
    assert (status, out) == (0, f"{ACME} of Acme Plumbing: ok\n")
    service.use_inbound_webhook_on_number = False
    service.inbound_request_url = f"{BASE_URL}/twilio/sms"  # or the service's URL is ours
    status, out, _ = _run(
        _settings(demo_database), twilio, "twilio", "check", "--business", "acme-plumbing"
    )
    assert (status, out) == (0, f"{ACME} of Acme Plumbing: ok\n")
