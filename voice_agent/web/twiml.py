"""The TwiML documents of the call flow: ring the owner, connect the media stream, or apologise."""

from __future__ import annotations

from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

from voice_agent.call.session import UNKNOWN_NUMBER_APOLOGY
from voice_agent.web.stream_credentials import CREDENTIAL_PARAMETER


def ring_owner(owner_phone: str, ring_seconds: int, action_url: str) -> str:
    """Ring the owner first; Twilio posts the outcome to ``action_url``."""
    response = VoiceResponse()
    dial = Dial(timeout=ring_seconds, action=action_url, method="POST")
    dial.number(owner_phone)
    response.append(dial)
    return str(response)


def connect_stream(stream_url: str, business_id: str, caller_number: str, credential: str) -> str:
    """Hand the call to our media stream; <Hangup/> runs when we close the websocket.

    Twilio passes each ``<Parameter>`` back in the stream's ``start``; ``credential`` (see
    ``stream_credentials``) is what admits that stream, once.
    """
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url)
    stream.parameter(name="business", value=business_id)
    stream.parameter(name="caller", value=caller_number)
    stream.parameter(name=CREDENTIAL_PARAMETER, value=credential)
    response.append(connect)
    response.hangup()
    return str(response)


def apology() -> str:
    response = VoiceResponse()
    response.say(UNKNOWN_NUMBER_APOLOGY)
    response.hangup()
    return str(response)


def hang_up() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)
