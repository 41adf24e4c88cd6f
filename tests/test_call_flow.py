"""The voice webhooks and the websocket upgrade: signatures, TwiML with the call's stream
credential, unknown numbers. (Replayed and credential-less streams: test_stream_replay.py.)"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from starlette.websockets import WebSocketDisconnect
from twilio.request_validator import RequestValidator

from bench.faults import SqliteWriteLock
from media_stream import Connected, Start, Stop, encode_inbound
from media_stream.protocol import TWILIO_MEDIA_FORMAT
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL
from voice_agent.services import build_services
from voice_agent.settings import Settings
from voice_agent.signatures import TwilioSignatures
from voice_agent.web.app import create_app
from voice_agent.web.stream_credentials import StreamCredentials

ACME = "+15125550100"  # rings the owner first
BRIGHT_SPARK = "+13035550140"  # straight to the assistant
CALLER = "+15125550142"


@pytest.fixture
def client(settings: Settings, migrated_engine: Engine) -> TestClient:
    return TestClient(create_app(build_services(settings)))


def _post(
    client: TestClient, path: str, params: dict[str, str], sign: bool = True
) -> httpx.Response:
    headers = {}
    if sign:
        url = PUBLIC_BASE_URL + path
        headers["X-Twilio-Signature"] = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    return client.post(path, data=params, headers=headers)


def _call(to: str, **extra: str) -> dict[str, str]:
    return {
        "CallSid": "CA" + "1" * 32,
        "AccountSid": "AC" + "2" * 32,
        "From": CALLER,
        "To": to,
        **extra,
    }


def test_twilio_published_signature_vector() -> None:
    signatures = TwilioSignatures("12345", "https://mycompany.com")
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    assert signatures.webhook_is_signed(
        "/myapp.php", "foo=1&bar=2", params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )
    assert not signatures.webhook_is_signed("/myapp.php", "foo=1&bar=2", params, None)
    assert not signatures.webhook_is_signed(
        "/myapp.php", "foo=1&bar=3", params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )
    tampered = {**params, "Digits": "1235"}
    assert not signatures.webhook_is_signed(
        "/myapp.php", "foo=1&bar=2", tampered, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )


@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/voice/dial-status"])
def test_unsigned_and_forged_webhooks_get_403(client: TestClient, path: str) -> None:
    assert _post(client, path, _call(ACME), sign=False).status_code == 403
    forged = client.post(path, data=_call(ACME), headers={"X-Twilio-Signature": "AAAA"})
    assert forged.status_code == 403
    other_token = RequestValidator("not-our-token").compute_signature(
        PUBLIC_BASE_URL + path, _call(ACME)
    )
    signed_wrong = client.post(path, data=_call(ACME), headers={"X-Twilio-Signature": other_token})
    assert signed_wrong.status_code == 403


def test_ring_owner_first(client: TestClient) -> None:
    response = _post(client, "/twilio/voice", _call(ACME))
    root = ET.fromstring(response.text)
    dial = root.find("Dial")
    assert dial is not None
    # Acme rings for 20 s, screening included: the phone itself rings for less.
    assert 5 <= int(dial.get("timeout", "")) < 20
    assert dial.get("action") == PUBLIC_BASE_URL + "/twilio/voice/dial-status"
    assert dial.findtext("Number") == "+15125550199"
    number = dial.find("Number")
    assert number is not None
    assert number.get("url", "").startswith(
        PUBLIC_BASE_URL + "/twilio/voice/screen?business=acme-plumbing&until="
    )


def _stream_of(document: str) -> tuple[str, dict[str, str], list[str]]:
    root = ET.fromstring(document)
    stream = root.find("Connect/Stream")
    assert stream is not None
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return stream.get("url", ""), parameters, [child.tag for child in root]


def _credentials(settings: Settings) -> StreamCredentials:
    return StreamCredentials.from_settings(settings)


def test_business_without_ring_first_connects_the_stream(
    client: TestClient, settings: Settings
) -> None:
    response = _post(client, "/twilio/voice", _call(BRIGHT_SPARK))
    url, parameters, verbs = _stream_of(response.text)
    assert url == "wss://receptionist.example.com/twilio/media-stream"
    credential = parameters.pop("credential")
    assert parameters == {"business": "bright-spark-electric", "caller": CALLER}
    assert verbs == ["Connect", "Hangup"]
    grant = _credentials(settings).check(
        credential, "CA" + "1" * 32, "bright-spark-electric", CALLER, datetime.now(UTC)
    )
    assert grant.business_id == "bright-spark-electric"
    assert all(len(name) + len(value) < 500 for name, value in parameters.items())
    assert len("credential") + len(credential) < 500  # Twilio's limit for a <Parameter>


@pytest.mark.parametrize("status", ["no-answer", "busy", "failed", "canceled"])
def test_unanswered_dial_connects_the_stream(
    client: TestClient, settings: Settings, status: str
) -> None:
    response = _post(client, "/twilio/voice/dial-status", _call(ACME, DialCallStatus=status))
    _, parameters, _ = _stream_of(response.text)
    assert parameters["business"] == "acme-plumbing"
    _credentials(settings).check(
        parameters["credential"], "CA" + "1" * 32, "acme-plumbing", CALLER, datetime.now(UTC)
    )


def test_each_call_gets_its_own_credential(client: TestClient) -> None:
    first = _stream_of(_post(client, "/twilio/voice", _call(BRIGHT_SPARK)).text)[1]
    other_call = _call(BRIGHT_SPARK, CallSid="CA" + "3" * 32)
    second = _stream_of(_post(client, "/twilio/voice", other_call).text)[1]
    assert first["credential"] != second["credential"]


def test_a_signed_webhook_without_a_call_sid_gets_no_stream(client: TestClient) -> None:
    params = _call(BRIGHT_SPARK)
    del params["CallSid"]
    root = ET.fromstring(_post(client, "/twilio/voice", params).text)
    assert [child.tag for child in root] == ["Say", "Hangup"]


def test_bridged_dial_hangs_up(client: TestClient) -> None:
    params = _call(ACME, DialCallStatus="completed", DialBridged="true")
    root = ET.fromstring(_post(client, "/twilio/voice/dial-status", params).text)
    assert [child.tag for child in root] == ["Hangup"]


def test_answered_but_unbridged_dial_connects_the_stream(client: TestClient) -> None:
    """The owner's leg answered (a voicemail, or no key pressed) but was never bridged."""
    params = _call(ACME, DialCallStatus="completed", DialBridged="false")
    _, parameters, _ = _stream_of(_post(client, "/twilio/voice/dial-status", params).text)
    assert parameters["business"] == "acme-plumbing"


@pytest.mark.parametrize("to", ["+15550001111", "not a number", "", "+1" + "9" * 60])
def test_unknown_or_hostile_number_hears_an_apology(client: TestClient, to: str) -> None:
    response = _post(client, "/twilio/voice", _call(to))
    assert response.status_code == 200
    root = ET.fromstring(response.text)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert "isn't set up" in (root.findtext("Say") or "")


def test_withheld_caller_number_hears_an_apology(client: TestClient) -> None:
    params = {**_call(BRIGHT_SPARK), "From": "anonymous"}
    root = ET.fromstring(_post(client, "/twilio/voice", params).text)
    assert [child.tag for child in root] == ["Say", "Hangup"]


def test_too_many_form_fields_are_refused(client: TestClient) -> None:
    params = {f"Field{i}": "x" for i in range(500)}
    assert _post(client, "/twilio/voice", params).status_code == 400


def test_websocket_upgrade_requires_the_signature(client: TestClient) -> None:
    for headers in ({}, {"x-twilio-signature": "forged"}):
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect("/twilio/media-stream", headers=headers),
        ):
            pass
        assert closed.value.code == 1008


def test_a_call_is_answered_while_the_database_is_locked(
    settings: Settings, migrated_engine: Engine
) -> None:
    """Another connection holds SQLite's write lock: the voice webhook answers from the business
    cache and the stream's credential is taken on this process's word (see StreamClaims), so the
    caller hears the greeting instead of silence."""
    stream_url = settings.media_stream_url
    upgrade = {"x-twilio-signature": RequestValidator(AUTH_TOKEN).compute_signature(stream_url, {})}
    call_sid, stream_sid = "CA" + "4" * 32, "MZ" + "4" * 32
    database = make_url(settings.database_url).database
    assert database is not None
    outage = SqliteWriteLock(Path(database))
    with TestClient(create_app(build_services(settings))) as client:
        outage.begin()
        try:
            response = _post(client, "/twilio/voice", _call(BRIGHT_SPARK, CallSid=call_sid))
            _, parameters, _ = _stream_of(response.text)
            with client.websocket_connect("/twilio/media-stream", headers=upgrade) as stream:
                stream.send_text(encode_inbound(Connected("Call", "1.0.0")))
                start = Start(
                    1,
                    stream_sid,
                    "AC" + "2" * 32,
                    call_sid,
                    ("inbound",),
                    parameters,
                    TWILIO_MEDIA_FORMAT,
                )
                stream.send_text(encode_inbound(start))
                first = stream.receive_json()
                assert first["event"] == "media"  # the greeting, not a 1008 close
                stream.send_text(encode_inbound(Stop(2, stream_sid, "AC" + "2" * 32, call_sid)))
        finally:
            outage.end()
