"""Playing Twilio's side of a ring-owner-first call with signed webhooks, as Twilio does: the
caller's call posts ``/twilio/voice``; its ``<Dial><Number url>`` rings the owner; when the
owner's leg answers (the owner, or a voicemail 12 s in) Twilio fetches the ``<Number url>`` on
that leg and runs it — the ``<Gather>`` says the screening question and posts the key, if any,
to its action; a ``<Hangup/>`` ends the leg unbridged — and then posts the ``<Dial action>``
with ``DialCallStatus`` and ``DialBridged``."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from urllib.parse import urlsplit

import httpx
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from call_simulator import Scenario, SimulatedCall, simulate_call
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL
from voice_agent.settings import Settings

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


class CallClock:
    """An app's clock, moved on by the seconds a played call takes."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Twilio:
    """Plays a ring-owner-first call against the app, posting signed webhooks. The app's clock
    is moved on (``advance``) as the call's seconds pass, so ringing takes the time it would."""

    def __init__(
        self, client: TestClient, advance: Callable[[float], None] = lambda seconds: None
    ) -> None:
        self.client = client
        self.advance = advance
        self.posted: list[str] = []
        self.answers_after: float | None = None  # when the owner picks up; 3 s unless set
        self.key_waits: list[int] = []  # each screening <Gather>'s timeout

    def send(self, url: str, params: dict[str, str]) -> httpx.Response:
        """POST the form to the public ``url``, signed as Twilio signs it."""
        assert url.startswith(PUBLIC_BASE_URL), url
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.posted.append(parts.path)
        return self.client.post(path, data=params, headers={"X-Twilio-Signature": signature})

    def post(self, url: str, params: dict[str, str]) -> ET.Element:
        """``send``, answered with TwiML."""
        response = self.send(url, params)
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
        answers_at = VOICEMAIL_ANSWERS_AFTER if owner is OwnerLeg.VOICEMAIL else 3.0
        answers_at = self.answers_after or answers_at
        if status is None and answers_at >= ring_seconds:
            status = "no-answer"  # the dial gives up before the leg answers
        if status is None:
            clock = answers_at
            self.advance(clock)
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
            self.key_waits.append(int(verb.get("timeout", "5")))
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


def place(settings: Settings, server_url: str, scenario: Scenario) -> SimulatedCall:
    """Place ``scenario``'s call through the call simulator against the real server at
    ``server_url`` (four times real time), its number's status callback posted at the end."""
    return asyncio.run(
        simulate_call(
            scenario,
            server_url=server_url,
            public_base_url=settings.public_base_url,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            speed=4.0,
            status_callback=True,
        )
    )
