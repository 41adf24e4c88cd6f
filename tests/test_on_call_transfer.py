"""Emergencies reach a person: a business names on-call phones and hours; a caller whose message
is an emergency is offered the on-call technician, and on a yes the media stream closes and
Twilio rings the on-call phones, screened like the owner's ("Emergency call for …: press 1 to
take it"). No one taking it leaves the caller with the message (marked an emergency) and the
callback; every offer, answer and attempt is recorded.

The whole call is played by the call simulator against the real server; the webhooks of the
transfer are also driven one by one, signed as Twilio signs them."""

from __future__ import annotations

import asyncio
import time as clock
from collections.abc import Iterator
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from call_simulator import OwnerLeg as SimulatedLeg
from call_simulator import Scenario, SimulatedCall
from call_simulator.scenarios import PressStep, SayStep, Step
from sms_sender import OutboxKind, OutboxMessage, OutboxStatus, list_outbox
from tests.cli_support import receptionist
from tests.conftest import PUBLIC_BASE_URL, serving_receptionist
from tests.owner_leg_support import CALL_SID, CALLER, Twilio, place
from voice_agent.records.businesses import Business, get_business, save_business
from voice_agent.records.call_progress import OwnerLeg
from voice_agent.records.call_transfers import CallTransfer, request_transfer, transfer_of
from voice_agent.records.calls import CallRecord, get_call
from voice_agent.records.owner_texts import record_owner_texts_choice
from voice_agent.settings import Settings

BRIGHT_SPARK = "+13035550140"  # answered by the assistant at once
ON_CALL = ("+13035550150", "+13035550151")
NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # 08:00 in Denver
ON_CALL_RINGS_FOR = 9  # the 20 s of ringing less the screening question (22 words) and 2 s


def _with_on_call(engine: Engine, **changes: object) -> Business:
    with engine.begin() as conn:
        business = get_business(conn, "bright-spark-electric")
        assert business is not None
        changed = Business.model_validate(
            {**business.model_dump(), "on_call_phones": list(ON_CALL), **changes}
        )
        save_business(conn, changed)
    return changed


# --- the business's on-call hours ------------------------------------------------------------


def _business(**values: object) -> Business:
    base = {
        "id": "b",
        "name": "B",
        "twilio_numbers": ["+13035550140"],
        "owner_phone": "+13035550149",
        "help_contact": "help@b.example",
        "time_zone": "America/Denver",
    }
    return Business.model_validate({**base, **values})


@pytest.mark.parametrize(
    ("hours", "at_local", "on_call"),
    [
        ({}, time(3, 0), True),  # no hours: always
        ({"on_call_start": "17:00", "on_call_end": "08:00"}, time(23, 30), True),
        ({"on_call_start": "17:00", "on_call_end": "08:00"}, time(7, 59), True),
        ({"on_call_start": "17:00", "on_call_end": "08:00"}, time(8, 0), False),
        ({"on_call_start": "17:00", "on_call_end": "08:00"}, time(12, 0), False),
        ({"on_call_start": "09:00", "on_call_end": "17:00"}, time(12, 0), True),
        ({"on_call_start": "09:00", "on_call_end": "17:00"}, time(17, 0), False),
    ],
)
def test_on_call_hours_on_the_business_clock(
    hours: dict[str, str], at_local: time, on_call: bool
) -> None:
    business = _business(on_call_phones=["(303) 555-0150"], **hours)
    assert business.on_call_phones == ("+13035550150",)
    denver = datetime(
        2026, 12, 7, at_local.hour, at_local.minute, tzinfo=ZoneInfo("America/Denver")
    )
    assert business.on_call_at(denver) is on_call
    assert _business().on_call_at(denver) is False  # no phones: nobody to put through


@pytest.mark.parametrize(
    "values",
    [
        {"on_call_start": "17:00"},
        {"on_call_start": "17:00", "on_call_end": "17:00"},
        {"on_call_phones": ["not a phone"]},
        {"on_call_phones": [f"+1303555{n:04d}" for n in range(11)]},
    ],
)
def test_bad_on_call_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _business(**values)


# --- the transfer's webhooks, as Twilio calls them -------------------------------------------


@pytest.fixture
def twilio(settings: Settings, migrated_engine: Engine) -> Twilio:
    from fastapi.testclient import TestClient

    from voice_agent.services import build_services
    from voice_agent.web.app import create_app

    _with_on_call(migrated_engine)
    return Twilio(TestClient(create_app(build_services(settings))))


def _caller_leg(**extra: str) -> dict[str, str]:
    return {"CallSid": CALL_SID, "From": CALLER, "To": BRIGHT_SPARK, **extra}


def _transfer(engine: Engine) -> CallTransfer | None:
    with engine.connect() as conn:
        return transfer_of(conn, CALL_SID)


def test_a_stream_that_ends_without_a_transfer_ends_the_call(twilio: Twilio) -> None:
    ended = twilio.post(PUBLIC_BASE_URL + "/twilio/voice/stream-ended", _caller_leg())
    assert [verb.tag for verb in ended] == ["Hangup"]


def test_an_accepted_transfer_rings_the_on_call_phones_screened(
    twilio: Twilio, migrated_engine: Engine
) -> None:
    voice = twilio.post(PUBLIC_BASE_URL + "/twilio/voice", _caller_leg())
    connect = voice.find("Connect")
    assert connect is not None
    assert connect.get("action") == PUBLIC_BASE_URL + "/twilio/voice/stream-ended"
    with migrated_engine.begin() as conn:
        request_transfer(conn, CALL_SID, "bright-spark-electric", NOW)
    ended = twilio.post(connect.get("action", ""), _caller_leg())
    (dial,) = ended
    # The phones ring for the business's 20 s less the question and a wait for the key.
    assert dial.tag == "Dial" and 5 <= int(dial.get("timeout", "")) < 20
    assert dial.get("action") == PUBLIC_BASE_URL + "/twilio/voice/transfer-status"
    numbers = dial.findall("Number")
    assert tuple(number.text for number in numbers) == ON_CALL
    (screen_url,) = {number.get("url", "") for number in numbers}
    assert screen_url.startswith(
        PUBLIC_BASE_URL + "/twilio/voice/screen?business=bright-spark-electric&until="
    )
    assert screen_url.endswith("&on_call=1")
    leg = {"CallSid": "CA" + "9" * 32, "ParentCallSid": CALL_SID, "From": CALLER, "To": ON_CALL[1]}
    asked = twilio.post(screen_url, leg)
    assert asked.findtext("Gather/Say") == (
        "Emergency call for Bright Spark Electric from five one two, five five five, "
        "zero one four two: press 1 to take it."
    )
    gather = asked.find("Gather")
    assert gather is not None
    taken = twilio.post(gather.get("action", ""), leg | {"Digits": "1"})
    assert [verb.tag for verb in taken] == ["Say"]  # the screening ends: Twilio bridges
    after = twilio.post(
        dial.get("action", ""),
        _caller_leg(DialCallStatus="completed", DialBridged="true", DialCallDuration="300"),
    )
    assert [verb.tag for verb in after] == ["Hangup"]
    transfer = _transfer(migrated_engine)
    assert transfer is not None and transfer.outcome is OwnerLeg.TOOK_IT
    again = twilio.post(PUBLIC_BASE_URL + "/twilio/voice/stream-ended", _caller_leg())
    assert [verb.tag for verb in again] == ["Hangup"]  # an ended transfer is not rung again


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("no-answer", OwnerLeg.NO_ANSWER), ("busy", OwnerLeg.BUSY), ("completed", OwnerLeg.NOT_TAKEN)],
)
def test_a_transfer_no_one_takes_leaves_the_message(
    twilio: Twilio, migrated_engine: Engine, status: str, outcome: OwnerLeg
) -> None:
    with migrated_engine.begin() as conn:
        request_transfer(conn, CALL_SID, "bright-spark-electric", NOW)
    after = twilio.post(
        PUBLIC_BASE_URL + "/twilio/voice/transfer-status",
        _caller_leg(DialCallStatus=status, DialBridged="false"),
    )
    assert [verb.tag for verb in after] == ["Say", "Hangup"]
    assert after.findtext("Say") == (
        "I'm sorry, no one on call could pick up. Your message is marked as an emergency, and "
        "someone from Bright Spark Electric will call you back within the hour. Goodbye."
    )
    transfer = _transfer(migrated_engine)
    assert transfer is not None and transfer.outcome is outcome and transfer.ended_at is not None
    twilio.post(
        PUBLIC_BASE_URL + "/twilio/voice/transfer-status",
        _caller_leg(DialCallStatus="completed", DialBridged="true"),
    )
    assert _transfer(migrated_engine) == transfer  # the first report stands


@pytest.mark.parametrize("path", ["/twilio/voice/stream-ended", "/twilio/voice/transfer-status"])
def test_transfer_webhooks_need_twilio_signatures(twilio: Twilio, path: str) -> None:
    assert twilio.client.post(path, data=_caller_leg()).status_code == 403


# --- the whole call, through the call simulator against the real server --------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str, Engine]]:
    """The real server; Bright Spark Electric names two on-call phones, on call at any hour, and
    its owner takes a text summary after every call."""
    database = tmp_path_factory.mktemp("on-call") / "receptionist.db"
    with serving_receptionist(f"sqlite:///{database}") as serving:
        business = _with_on_call(serving[2])
        with serving[2].begin() as conn:
            record_owner_texts_choice(conn, business, True, datetime.now(UTC))
        yield serving


SMOKE = (  # lines the embedded ears hear in this voice; the danger said twice over
    SayStep("My name is Karen Davis."),
    SayStep("The outlet in my bedroom is sparking and smoking. It's an emergency."),
)
"""The transfer is offered as soon as the emergency is heard: the caller's next step answers it."""


def _emergency_call(
    served: tuple[Settings, str, Engine], caller: str, on_call: SimulatedLeg, *answers: Step
) -> tuple[SimulatedCall, CallRecord, CallTransfer | None]:
    settings, server_url, engine = served
    scenario = Scenario(
        name=f"emergency-on-call-{on_call}",
        description="a smoking outlet; the on-call technician is offered",
        business_number=BRIGHT_SPARK,
        caller=caller,
        steps=(*SMOKE, *answers),
        on_call=on_call,
    )
    call = place(settings, server_url, scenario)
    assert call.errors == (), call.errors
    for _ in range(100):  # the journal's applier stores the call once the stream has closed
        with engine.connect() as conn:
            record = get_call(conn, call.call_sid)
            if record is not None:
                return call, record, transfer_of(conn, call.call_sid)
        clock.sleep(0.05)
    raise AssertionError(f"call {call.call_sid} was never stored")


def _said(record: CallRecord) -> list[str]:
    return [turn.text for turn in record.turns if turn.speaker == "assistant"]


def test_an_emergency_caller_put_through_to_the_on_call_technician(
    served: tuple[Settings, str, Engine],
) -> None:
    call, record, transfer = _emergency_call(served, "+13035550171", "takes-it", PressStep("1"))
    said = _said(record)
    assert said[-2:] == [
        "I can connect you to the on-call technician now. Would you like that?",
        "Connecting you now. Please stay on the line.",
    ]
    assert record.urgency == "emergency"
    assert record.consent_outcome == "not_asked"  # no texts to a caller who was put through
    assert "an emergency: offered the on-call technician; accepted and put through" in record.notes
    heard = [(t.verb, t.detail) for t in call.twiml]
    assert heard[1:] == [
        (
            "Screen",
            "Emergency call for Bright Spark Electric from three zero three, five five five, "
            "zero one seven one: press 1 to take it.",
        ),
        ("Screen", "Connecting."),
        (
            "Dial",
            f"{ON_CALL[0]}, {ON_CALL[1]} (timeout {ON_CALL_RINGS_FOR}s): completed, bridged: true",
        ),
        ("Hangup", ""),
    ]
    assert transfer is not None and transfer.outcome is OwnerLeg.TOOK_IT
    shown = receptionist("calls", "show", call.call_sid, settings=served[0]).stdout
    assert "  Transfer to the on-call phones: asked at " in shown and " · took-it at " in shown
    assert "accepted and put through" in shown


def test_an_emergency_transfer_no_one_takes(served: tuple[Settings, str, Engine]) -> None:
    call, record, transfer = _emergency_call(served, "+13035550172", "no-answer", PressStep("1"))
    assert _said(record)[-1] == "Connecting you now. Please stay on the line."
    assert [t.verb for t in call.twiml] == ["Connect", "Dial", "Say", "Hangup"]
    assert call.twiml[2].detail.startswith("I'm sorry, no one on call could pick up.")
    assert transfer is not None and transfer.outcome is OwnerLeg.NO_ANSWER
    assert record.need is not None  # the message stands
    summary = _owner_text(served[2], call.call_sid)  # sent at once, marked urgent
    assert "Urgency: emergency" in summary.body and summary.to_number == "+13035550149"


def _owner_text(engine: Engine, call_sid: str) -> OutboxMessage:
    """The owner's summary of the call, once the dispatcher has sent it."""
    for _ in range(100):
        with engine.connect() as conn:
            sent = [
                text
                for text in list_outbox(conn, call_sid=call_sid)
                if text.kind is OutboxKind.OWNER_SUMMARY and text.status is OutboxStatus.SENT
            ]
        if sent:
            return sent[0]
        clock.sleep(0.05)
    raise AssertionError(f"no owner summary of {call_sid} was sent")


def test_an_emergency_caller_who_declines_goes_on_to_the_goodbye(
    served: tuple[Settings, str, Engine],
) -> None:
    call, record, transfer = _emergency_call(
        served,
        "+13035550173",
        "takes-it",
        PressStep("2"),
        SayStep("Yes, this number is fine."),
        SayStep("No."),
    )
    assert transfer is None
    assert "an emergency: offered the on-call technician; declined" in record.notes
    said = _said(record)
    offer = said.index("I can connect you to the on-call technician now. Would you like that?")
    assert said[offer + 1].startswith("Okay, I'll take your message. ")  # its question again
    assert said[offer + 1].endswith("?") and said[offer + 1].split(". ", 1)[1] in said[offer - 1]
    assert said.count(said[offer]) == 1  # offered once a call
    assert [t.verb for t in call.twiml] == ["Connect", "Hangup"]  # nobody else was rung
    assert record.consent_outcome == "declined"


def test_the_desk_is_open_only_in_on_call_hours(
    settings: Settings, migrated_engine: Engine
) -> None:
    from voice_agent.call.session import OnCallDesk
    from voice_agent.services import build_services

    services = build_services(settings, clock=lambda: NOW)  # 08:00 in Denver
    nights = _with_on_call(migrated_engine, on_call_start="17:00", on_call_end="08:00")
    days = _with_on_call(migrated_engine, on_call_start="08:00", on_call_end="17:00")
    assert not OnCallDesk(services, nights, CALL_SID).open_now()
    assert OnCallDesk(services, days, CALL_SID).open_now()
    assert asyncio.run(OnCallDesk(services, days, CALL_SID).request())
    with migrated_engine.connect() as conn:
        asked = transfer_of(conn, CALL_SID)
    assert asked is not None and asked.requested_at == NOW and asked.outcome is None
