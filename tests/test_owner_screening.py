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

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from twilio.request_validator import RequestValidator

from call_simulator import OwnerLeg as SimulatedOwner
from call_simulator import Scenario, SimulatedCall
from call_simulator.scenarios import HangUpStep
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL, serving_receptionist
from tests.owner_leg_support import (
    ACME,
    CALL_SID,
    CALLER,
    OWNER,
    OWNER_LEG_SID,
    SPOKEN_CALLER,
    VOICEMAIL_ANSWERS_AFTER,
    CallClock,
    OwnerLeg,
    Twilio,
    place,
)
from voice_agent.records.call_progress import CallProgress, list_progress
from voice_agent.records.call_progress import OwnerLeg as RecordedLeg
from voice_agent.services import build_services
from voice_agent.settings import Settings
from voice_agent.web.app import create_app
from voice_agent.web.stream_credentials import StreamCredentials
from voice_agent.web.voice_webhooks import SCREEN_SECONDS


@pytest.fixture
def twilio(settings: Settings, migrated_engine: Engine) -> Twilio:
    clock = CallClock()
    return Twilio(TestClient(create_app(build_services(settings, clock=clock))), clock.advance)


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


@pytest.mark.parametrize("owner", [OwnerLeg.PRESSES_NOTHING, OwnerLeg.PRESSES_2])
def test_an_answer_without_the_key_goes_to_the_assistant(
    twilio: Twilio, settings: Settings, owner: OwnerLeg
) -> None:
    played = twilio.call(owner)
    assert played.screening_said is not None and "press 1" in played.screening_said
    assert not played.bridged
    _assert_handed_to_the_assistant(settings, played.after_dial)


def test_a_voicemail_does_not_keep_the_caller_past_the_ring_time(
    twilio: Twilio, settings: Settings
) -> None:
    """The business rings for 20 s; the owner's phone rings for what is left once the question
    and a short wait for the key are set aside, so a voicemail that answers 12 s in is never
    reached, and the caller is with the assistant well within the 20 s."""
    played = twilio.call(OwnerLeg.VOICEMAIL)
    assert not played.bridged and played.screening_said is None
    assert played.handed_on_at < VOICEMAIL_ANSWERS_AFTER
    _assert_handed_to_the_assistant(settings, played.after_dial)


@pytest.mark.parametrize("answers_after", [1.0, 3.0, 5.0, 7.0, 8.0, 8.9])
def test_the_wait_for_the_key_ends_with_the_ring_time(twilio: Twilio, answers_after: float) -> None:
    """Whenever the owner answers, asking and waiting for the key end within the 20 s; an
    owner who answers early has the whole wait."""
    twilio.answers_after = answers_after
    played = twilio.call(OwnerLeg.PRESSES_NOTHING)
    (key_wait,) = twilio.key_waits
    assert key_wait == SCREEN_SECONDS if answers_after <= 3 else 2 <= key_wait <= SCREEN_SECONDS
    assert answers_after < played.handed_on_at <= 20


def test_a_leg_whose_answer_reaches_us_too_late_to_ask_is_hung_up(twilio: Twilio) -> None:
    """The owner's leg answered, but its webhook came with no time left to ask: the leg is hung
    up unasked and the caller goes on to the assistant."""
    voice = twilio.post(
        PUBLIC_BASE_URL + "/twilio/voice",
        {"CallSid": CALL_SID, "From": CALLER, "To": ACME, "CallStatus": "ringing"},
    )
    screen_url = voice.find("Dial/Number").get("url", "")  # type: ignore[union-attr]
    twilio.advance(19)
    leg = {"CallSid": OWNER_LEG_SID, "From": CALLER, "To": OWNER, "CallStatus": "in-progress"}
    assert [verb.tag for verb in twilio.post(screen_url, leg)] == ["Hangup"]


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


Served = tuple[Settings, str, Engine]
OWNER_RINGS_FOR = 9  # Acme's 20 s of ringing less the screening question (21 words) and 2 s


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The real application under uvicorn on loopback, with the demo businesses."""
    database = tmp_path_factory.mktemp("screening") / "receptionist.db"
    with serving_receptionist(f"sqlite:///{database}") as serving:
        yield serving


def _progress(engine: Engine, call_sid: str) -> CallProgress:
    """The call's progress once the server's journal applier has stored its status callback."""
    for _ in range(100):
        with engine.connect() as conn:
            found = [p for p in list_progress(conn) if p.call_sid == call_sid]
        if found and found[0].status == "completed":
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"the status callback of {call_sid} was never stored")


def _simulate(served: Served, owner: SimulatedOwner) -> SimulatedCall:
    settings, server_url, _ = served
    scenario = Scenario(
        name=f"owner-{owner}",
        description="the caller hangs up once someone answers",
        business_number=ACME,
        caller=CALLER,
        steps=(HangUpStep(),),
        owner=owner,
    )
    return place(settings, server_url, scenario)


def test_simulated_owner_who_takes_the_call(served: Served) -> None:
    call = _simulate(served, "takes-it")
    assert call.errors == ()
    heard = [(t.verb, t.detail) for t in call.twiml]
    assert heard == [
        ("Screen", f"Missed call for Acme Plumbing from {SPOKEN_CALLER}: press 1 to take it."),
        ("Screen", "Connecting."),
        ("Dial", f"{OWNER} (timeout {OWNER_RINGS_FOR}s): completed, bridged: true"),
        ("Hangup", ""),
    ]
    assert call.stream_sid is None  # the assistant never joined
    progress = _progress(served[2], call.call_sid)
    assert progress.outcome == "the owner took the call"
    assert progress.owner_leg is RecordedLeg.TOOK_IT


@pytest.mark.parametrize(
    ("owner", "dial", "leg"),
    [
        ("presses-nothing", "completed, bridged: false", "not-taken"),
        ("voicemail", "no-answer, bridged: false", "no-answer"),  # rung off before 12 s
        ("no-answer", "no-answer, bridged: false", "no-answer"),
        ("busy", "busy, bridged: false", "busy"),
        ("failed", "failed, bridged: false", "failed"),
    ],
)
def test_simulated_owner_leg_that_does_not_take_it(
    served: Served, owner: SimulatedOwner, dial: str, leg: str
) -> None:
    call = _simulate(served, owner)
    assert call.errors == ()
    verbs = [t.verb for t in call.twiml]
    screened = owner == "presses-nothing"
    assert verbs == [*(["Screen"] if screened else []), "Dial", "Connect"]
    assert call.twiml[verbs.index("Dial")].detail == f"{OWNER} (timeout {OWNER_RINGS_FOR}s): {dial}"
    assert call.stream_sid is not None  # the assistant answered the caller
    assert call.closed_by == "caller"
    progress = _progress(served[2], call.call_sid)
    assert progress.duration_seconds is not None
    assert progress.owner_leg == RecordedLeg(leg)
