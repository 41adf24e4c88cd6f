"""Ring-owner-first screens the owner's leg, played here as Twilio plays it: every webhook a
signed POST of the form Twilio sends, each TwiML document followed verb by verb.

The caller's call posts ``/twilio/voice``; its ``<Dial><Number url>`` rings the owner. When the
owner's leg answers — the owner, or a voicemail 12 s in — Twilio fetches the ``<Number url>``
on that leg and runs it: the ``<Gather>`` says the screening question and posts the key, if any,
to its action; a ``<Hangup/>`` on the leg ends it unbridged. Then Twilio posts the ``<Dial
action>`` with ``DialCallStatus`` and ``DialBridged``. Only the owner pressing 1 bridges the legs
(and the caller's call ends with the owner's); every other outcome hands the caller to the
assistant's media stream with the call's own stream credential.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from twilio.request_validator import RequestValidator

from call_simulator import OwnerLeg as SimulatedOwner
from call_simulator import Scenario, SimulatedCall, simulate_call
from call_simulator.scenarios import HangUpStep
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL, ROOT, receptionist_settings
from voice_agent.records.businesses import import_businesses
from voice_agent.records.migrate import upgrade
from voice_agent.services import build_services
from voice_agent.settings import Settings
from voice_agent.web.app import create_app
from voice_agent.web.local_server import free_port, serving
from voice_agent.web.stream_credentials import StreamCredentials

ACME = "+15125550100"  # rings its owner first, for 20 s
OWNER = "+15125550199"
CALLER = "+15125550142"
CALL_SID = "CA" + "1" * 32
OWNER_LEG_SID = "CA" + "3" * 32
SPOKEN_CALLER = "five one two, five five five, zero one four two"
SPEECH_WORDS_PER_SECOND = 2.5  # how fast Twilio's <Say> speaks, roughly
VOICEMAIL_ANSWERS_AFTER = 12.0


class OwnerLeg(Enum):
    """What happens on the owner's phone."""

    PRESSES_1 = "the owner answers and presses 1"
    PRESSES_2 = "the owner answers and presses 2"
    PRESSES_NOTHING = "the owner answers and presses nothing"
    VOICEMAIL = "the owner's voicemail answers after 12 s and plays its greeting"
    NO_ANSWER = "nobody answers within the dial's timeout"
    BUSY = "the owner's line is busy"
    FAILED = "the owner's number cannot be reached"


@dataclass
class PlayedCall:
    """What Twilio did and heard: the owner leg's screening question, whether the legs were
    bridged, the Dial action's answer, and when (seconds into the call) the caller was handed
    on."""

    screening_said: str | None = None
    bridged: bool = False
    after_dial: ET.Element = field(default_factory=lambda: ET.Element("Response"))
    handed_on_at: float = 0.0


class Twilio:
    """Plays a ring-owner-first call against the app, posting signed webhooks."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.posted: list[str] = []

    def post(self, url: str, params: dict[str, str]) -> ET.Element:
        assert url.startswith(PUBLIC_BASE_URL), url
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.posted.append(parts.path)
        response = self.client.post(path, data=params, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/xml")
        return ET.fromstring(response.text)

    def call(self, owner: OwnerLeg) -> PlayedCall:
        played = PlayedCall()
        caller_leg = {"CallSid": CALL_SID, "From": CALLER, "To": ACME, "Direction": "inbound"}
        voice = self.post(PUBLIC_BASE_URL + "/twilio/voice", caller_leg | {"CallStatus": "ringing"})
        (dial,) = voice
        assert dial.tag == "Dial"
        (number,) = dial
        assert number.tag == "Number" and number.text == OWNER
        assert dial.get("method", "POST") == number.get("method", "POST") == "POST"
        ring_seconds = float(dial.get("timeout", "30"))
        clock = 0.0
        status = {
            OwnerLeg.BUSY: "busy",
            OwnerLeg.FAILED: "failed",
            OwnerLeg.NO_ANSWER: "no-answer",
        }.get(owner)
        if status is None:
            clock = VOICEMAIL_ANSWERS_AFTER if owner is OwnerLeg.VOICEMAIL else 3.0
            assert clock < ring_seconds  # the leg answers before the dial gives up
            clock += self._screen(number.get("url", ""), owner, played)
            status = "completed"
        else:
            clock = ring_seconds if status == "no-answer" else 1.0
        action = dial.get("action", "")
        played.after_dial = self.post(
            action,
            caller_leg
            | {
                "CallStatus": "in-progress",
                "DialCallStatus": status,
                "DialCallSid": OWNER_LEG_SID,
                "DialCallDuration": "40" if played.bridged else "0",
                "DialBridged": "true" if played.bridged else "false",
            },
        )
        played.handed_on_at = clock
        return played

    def _screen(self, url: str, owner: OwnerLeg, played: PlayedCall) -> float:
        """Run the <Number url> TwiML on the owner's leg; the seconds it took."""
        owner_leg = {
            "CallSid": OWNER_LEG_SID,
            "ParentCallSid": CALL_SID,
            "From": CALLER,  # Twilio shows the caller's number to the dialled party
            "To": OWNER,
            "Direction": "outbound-dial",
            "CallStatus": "in-progress",
        }
        document = self.post(url, owner_leg)
        seconds = 0.0
        for verb in document:
            if verb.tag == "Hangup":
                return seconds  # the owner's leg ends, unbridged
            assert verb.tag == "Gather", verb.tag
            assert verb.get("numDigits") == "1"
            played.screening_said = verb.findtext("Say")
            seconds += len((played.screening_said or "").split()) / SPEECH_WORDS_PER_SECOND
            key = {OwnerLeg.PRESSES_1: "1", OwnerLeg.PRESSES_2: "2"}.get(owner)
            if key is None:  # the owner, or a voicemail greeting, presses nothing
                seconds += float(verb.get("timeout", "5"))
                continue  # Twilio goes on to the verb after the <Gather>
            answer = self.post(verb.get("action", ""), owner_leg | {"Digits": key})
            if [v.tag for v in answer][-1:] == ["Hangup"]:
                return seconds
            played.bridged = True  # the screening TwiML ended without a hangup
            return seconds
        played.bridged = True
        return seconds


@pytest.fixture
def twilio(settings: Settings, migrated_engine: Engine) -> Twilio:
    return Twilio(TestClient(create_app(build_services(settings))))


def _assert_handed_to_the_assistant(settings: Settings, after_dial: ET.Element) -> None:
    assert [verb.tag for verb in after_dial] == ["Connect", "Hangup"]
    stream = after_dial.find("Connect/Stream")
    assert stream is not None
    assert stream.get("url") == "wss://receptionist.example.com/twilio/media-stream"
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    grant = StreamCredentials.from_settings(settings).check(
        parameters["credential"] or "", CALL_SID, "acme-plumbing", CALLER, datetime.now(UTC)
    )
    assert (grant.business_id, grant.caller) == ("acme-plumbing", CALLER)


def test_the_owner_presses_1_and_takes_the_call(twilio: Twilio) -> None:
    played = twilio.call(OwnerLeg.PRESSES_1)
    assert played.screening_said == (
        f"Missed call for Acme Plumbing from {SPOKEN_CALLER}: press 1 to take it."
    )
    assert played.bridged
    assert [verb.tag for verb in played.after_dial] == ["Hangup"]  # no stream: the owner has it
    assert twilio.posted == [
        "/twilio/voice",
        "/twilio/voice/screen",
        "/twilio/voice/screen/answer",
        "/twilio/voice/dial-status",
    ]


@pytest.mark.parametrize(
    "owner", [OwnerLeg.PRESSES_NOTHING, OwnerLeg.PRESSES_2, OwnerLeg.VOICEMAIL]
)
def test_an_answer_without_the_key_goes_to_the_assistant(
    twilio: Twilio, settings: Settings, owner: OwnerLeg
) -> None:
    played = twilio.call(owner)
    assert played.screening_said is not None and "press 1" in played.screening_said
    assert not played.bridged
    _assert_handed_to_the_assistant(settings, played.after_dial)


def test_a_voicemail_does_not_keep_the_caller_long(twilio: Twilio, settings: Settings) -> None:
    """The voicemail answered 12 s in; the question and the wait for a key that never comes
    hand the caller on within the 20 s of ringing plus 15 s."""
    played = twilio.call(OwnerLeg.VOICEMAIL)
    assert not played.bridged
    assert VOICEMAIL_ANSWERS_AFTER < played.handed_on_at <= 20 + 15
    _assert_handed_to_the_assistant(settings, played.after_dial)


@pytest.mark.parametrize("owner", [OwnerLeg.NO_ANSWER, OwnerLeg.BUSY, OwnerLeg.FAILED])
def test_an_unanswered_owner_goes_to_the_assistant(
    twilio: Twilio, settings: Settings, owner: OwnerLeg
) -> None:
    played = twilio.call(owner)
    assert played.screening_said is None  # the leg never answered: nothing to screen
    assert twilio.posted == ["/twilio/voice", "/twilio/voice/dial-status"]
    _assert_handed_to_the_assistant(settings, played.after_dial)


def _unsigned(client: TestClient, path: str, params: dict[str, str]) -> httpx.Response:
    return client.post(path, data=params)


@pytest.mark.parametrize(
    "path", ["/twilio/voice/screen?business=acme-plumbing", "/twilio/voice/screen/answer"]
)
def test_screening_webhooks_need_twilio_signatures(twilio: Twilio, path: str) -> None:
    params = {"CallSid": OWNER_LEG_SID, "From": CALLER, "To": OWNER, "Digits": "1"}
    assert _unsigned(twilio.client, path, params).status_code == 403
    forged = twilio.client.post(path, data=params, headers={"X-Twilio-Signature": "AAAA"})
    assert forged.status_code == 403


def test_the_screening_query_is_signed_too(twilio: Twilio) -> None:
    """A signature for one business's screening URL does not admit another business's."""
    params = {"CallSid": OWNER_LEG_SID, "From": CALLER, "To": OWNER}
    signed_for = PUBLIC_BASE_URL + "/twilio/voice/screen?business=acme-plumbing"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(signed_for, params)
    moved = twilio.client.post(
        "/twilio/voice/screen?business=bright-spark-electric",
        data=params,
        headers={"X-Twilio-Signature": signature},
    )
    assert moved.status_code == 403


def test_an_unknown_business_or_withheld_caller(twilio: Twilio) -> None:
    leg = {"CallSid": OWNER_LEG_SID, "To": OWNER}
    unknown = twilio.post(PUBLIC_BASE_URL + "/twilio/voice/screen?business=nobody", leg)
    assert [verb.tag for verb in unknown] == ["Hangup"]
    withheld = twilio.post(
        PUBLIC_BASE_URL + "/twilio/voice/screen?business=acme-plumbing",
        leg | {"From": "anonymous"},
    )
    assert withheld.findtext("Gather/Say") == (
        "Missed call for Acme Plumbing from a withheld number: press 1 to take it."
    )


# --- the same outcomes through the call simulator, against the real server ---------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    """The real application under uvicorn on loopback, with the demo businesses."""
    directory = tmp_path_factory.mktemp("screening")
    settings = receptionist_settings(
        f"sqlite:///{directory / 'receptionist.db'}", port=free_port(), audio_dir=directory
    )
    upgrade(settings.database_url)
    services = build_services(settings)
    with services.engine.begin() as conn:
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
    try:
        with serving(services) as server_url:
            yield settings, server_url
    finally:
        services.engine.dispose()


def _simulate(served: tuple[Settings, str], owner: SimulatedOwner) -> SimulatedCall:
    settings, server_url = served
    scenario = Scenario(
        name=f"owner-{owner}",
        description="the caller hangs up once someone answers",
        business_number=ACME,
        caller=CALLER,
        steps=(HangUpStep(),),
        owner=owner,
    )
    return asyncio.run(
        simulate_call(
            scenario,
            server_url=server_url,
            public_base_url=settings.public_base_url,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            speed=4.0,
        )
    )


def test_simulated_owner_who_takes_the_call(served: tuple[Settings, str]) -> None:
    call = _simulate(served, "takes-it")
    assert call.errors == ()
    heard = [(t.verb, t.detail) for t in call.twiml]
    assert heard == [
        ("Screen", f"Missed call for Acme Plumbing from {SPOKEN_CALLER}: press 1 to take it."),
        ("Screen", "Connecting."),
        ("Dial", f"{OWNER} (timeout 20s): completed, bridged: true"),
        ("Hangup", ""),
    ]
    assert call.stream_sid is None  # the assistant never joined


@pytest.mark.parametrize(
    ("owner", "dial"),
    [
        ("presses-nothing", "completed, bridged: false"),
        ("voicemail", "completed, bridged: false"),
        ("no-answer", "no-answer, bridged: false"),
        ("busy", "busy, bridged: false"),
        ("failed", "failed, bridged: false"),
    ],
)
def test_simulated_owner_leg_that_does_not_take_it(
    served: tuple[Settings, str], owner: SimulatedOwner, dial: str
) -> None:
    call = _simulate(served, owner)
    assert call.errors == ()
    verbs = [t.verb for t in call.twiml]
    screened = owner in ("presses-nothing", "voicemail")
    assert verbs == [*(["Screen"] if screened else []), "Dial", "Connect"]
    assert call.twiml[verbs.index("Dial")].detail == f"{OWNER} (timeout 20s): {dial}"
    assert call.stream_sid is not None  # the assistant answered the caller
    assert call.closed_by == "caller"
