"""The TwiML documents of the call flow: ring the owner or the on-call phones (screened), connect
the media stream, or apologise."""

from __future__ import annotations

from collections.abc import Sequence

from twilio.twiml.voice_response import Connect, Dial, Gather, VoiceResponse

from voice_agent.call.session import UNKNOWN_NUMBER_APOLOGY
from voice_agent.web.stream_credentials import CREDENTIAL_PARAMETER

OWNER_TAKES_IT = "1"


def ring(phones: Sequence[str], ring_seconds: int, action_url: str, screen_url: str) -> str:
    """Ring ``phones`` (the owner's, or the on-call phones, together), each leg screened: when
    it answers (a person, or a voicemail), Twilio runs ``screen_url``'s TwiML on it while the
    caller still hears ringing, and bridges the caller only if that TwiML ends without hanging
    up. Twilio posts the outcome (``DialCallStatus``, ``DialBridged``) to ``action_url``."""
    response = VoiceResponse()
    dial = Dial(timeout=ring_seconds, action=action_url, method="POST")
    for phone in phones:
        dial.number(phone, url=screen_url, method="POST")
    response.append(dial)
    return str(response)


def screening_question(business_name: str, caller: str, *, emergency: bool) -> str:
    """What whoever answers a screened leg hears ("Missed call for …", or "Emergency call for
    …" on an on-call phone)."""
    kind = "Emergency call" if emergency else "Missed call"
    return f"{kind} for {business_name} from {caller}: press {OWNER_TAKES_IT} to take it."


def screen(question: str, answer_url: str, seconds: int) -> str:
    """Ask whoever answered a screened leg ``question``; the key goes to ``answer_url``. No key
    in ``seconds`` after it was said (a voicemail greeting presses none) hangs the leg up,
    unbridged."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, timeout=seconds, action=answer_url, method="POST")
    gather.say(question)
    response.append(gather)
    response.hangup()
    return str(response)


def owner_answer(digits: str) -> str:
    """The owner's key: 1 ends the screening TwiML (Twilio then bridges the legs); anything
    else hangs the owner's leg up."""
    response = VoiceResponse()
    if digits == OWNER_TAKES_IT:
        response.say("Connecting.")
    else:
        response.hangup()
    return str(response)


def connect_stream(
    stream_url: str, business_id: str, caller_number: str, credential: str, action_url: str
) -> str:
    """Hand the call to our media stream; when we close the websocket, Twilio asks
    ``action_url`` what comes next (a transfer, or the end of the call).

    Twilio passes each ``<Parameter>`` back in the stream's ``start``; ``credential`` (see
    ``stream_credentials``) is what admits that stream, once.
    """
    response = VoiceResponse()
    connect = Connect(action=action_url, method="POST")
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


def transfer_not_taken(business_name: str, callback_time: str) -> str:
    """What the caller hears when no on-call phone took the call: the message stands."""
    response = VoiceResponse()
    response.say(
        "I'm sorry, no one on call could pick up. Your message is marked as an emergency, and "
        f"someone from {business_name} will call you back {callback_time}. Goodbye."
    )
    response.hangup()
    return str(response)


def nothing() -> str:
    """An empty answer (to a status callback, whose TwiML Twilio ignores)."""
    return str(VoiceResponse())


def hang_up() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)
