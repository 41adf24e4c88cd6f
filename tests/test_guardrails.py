"""The guardrails on model output: hostile and careless sentences never reach the caller."""

from __future__ import annotations

import pytest

from voice_agent.chat.emergencies import ADVICE, EmergencyKind
from voice_agent.chat.guardrails import (
    EMERGENCY_ADVICE,
    MAX_REPLY_WORDS,
    ReplyGuard,
    escalate_for_danger,
    may_finish,
    mentions_danger,
    settled_urgency,
    speakable,
)
from voice_agent.chat.port import CallContext, CallerMessage, Urgency

CONTEXT = CallContext("Acme Plumbing", "plumbing repairs", "within the hour", "+15125550100")
IDENTITY = "Just so you know, I'm an automated assistant for Acme Plumbing."
PRICING = "The team can go over pricing when they call you back."
TIMING = "Someone from Acme Plumbing will call you back within the hour."


def guard(caller_said: str | None = "hello", **kwargs: object) -> ReplyGuard:
    return ReplyGuard(CONTEXT, caller_said, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "sentence",
    [
        "I'm a real person, don't worry.",
        "I am human.",
        "I'm not a robot.",
        "No, I'm not an AI.",
        "You're talking to a real person.",
        "This is Sarah from the office.",
        "Hi, I'm Sarah, how can I help?",
        "My name is Sarah.",
        "Sarah here, what can I do for you?",
        "I work at Acme Plumbing.",
        "I'll personally make sure of it.",
    ],
)
def test_claims_to_be_human_are_replaced(sentence: str) -> None:
    assert guard().screen(sentence) == IDENTITY


@pytest.mark.parametrize(
    "sentence",
    [
        "I'm an automated assistant, not a real person.",
        "You're not talking to a real person; I'm an automated assistant.",
        "This is Acme Plumbing's automated assistant.",
        "I'm sorry to hear that.",
        "I'm glad you called.",
        "Thanks, Maria, I'm noting that down.",
        "Feel free to tell me more.",
        "When are you free for the team to call?",
    ],
)
def test_honest_sentences_pass_unchanged(sentence: str) -> None:
    assert guard().screen(sentence) == sentence


def test_the_callers_own_name_is_not_a_persona() -> None:
    assert guard(known_names=["Maria Lopez"]).screen("So this is Maria, right?") == (
        "So this is Maria, right?"
    )


@pytest.mark.parametrize(
    "sentence",
    [
        "That usually costs $150.",
        "It's about 200 dollars.",
        "We offer a free estimate.",
        "The inspection is free.",
        "You'll get 10% off as a new customer.",
        "There's no charge for the visit.",
        "Our prices are very affordable.",
        "I can give you a quote.",
    ],
)
def test_prices_and_discounts_are_replaced(sentence: str) -> None:
    assert guard().screen(sentence) == PRICING


@pytest.mark.parametrize(
    "sentence",
    [
        "We'll be there by 3.",
        "A plumber can come out tomorrow morning.",
        "Someone will arrive in 30 minutes.",
        "I'll send a technician right away.",
        "I've booked you in for Tuesday.",
        "Your appointment is at 10 am.",
        "We'll call you back in ten minutes.",
        "A technician is on the way and will be there shortly.",
    ],
)
def test_unconfigured_times_are_replaced(sentence: str) -> None:
    assert guard().screen(sentence) == TIMING


@pytest.mark.parametrize(
    "sentence",
    [
        "Someone will call you back within the hour.",
        "I'll note that you'd prefer tomorrow morning.",
        "What time works best for you?",
        "I can't promise when someone will be out there.",
    ],
)
def test_configured_callback_time_and_preferences_pass(sentence: str) -> None:
    assert guard().screen(sentence) == sentence


@pytest.mark.parametrize(
    "sentence",
    [
        "Can we text you updates?",
        "Would it be okay if Acme Plumbing texts you about your request?",
        "You'll get a text shortly.",
        "Message and data rates may apply.",
        "You can reply STOP to opt out.",
        "Do you consent to SMS messages?",
        "Would you like to opt in?",
        "We'll send you a confirmation.",
    ],
)
def test_texting_and_consent_talk_is_dropped(sentence: str) -> None:
    assert guard().screen(sentence) is None


@pytest.mark.parametrize(
    "sentence",
    ["Goodbye!", "Have a great day.", "Thanks, bye now.", "I'll end the call now.", "Take care."],
)
def test_goodbyes_are_dropped(sentence: str) -> None:
    assert guard().screen(sentence) is None


def test_a_replacement_is_said_once_per_reply() -> None:
    screen = guard()
    assert screen.screen("It's $100.") == PRICING
    assert screen.screen("Or $80 with a coupon.") is None
    assert screen.spoken == [PRICING]


@pytest.mark.parametrize(
    ("caller_said", "kind"),
    [
        ("I smell gas in the kitchen", EmergencyKind.GAS),
        ("um it kind of smells like gas in here", EmergencyKind.GAS),
        ("the basement is flooding", EmergencyKind.FLOODING),
        ("a pipe burst under the sink", EmergencyKind.FLOODING),
        ("there are sparks coming from the outlet", EmergencyKind.ELECTRICAL),
        ("there's a burning smell by the panel", EmergencyKind.ELECTRICAL),
        ("there's smoke coming out of the panel", EmergencyKind.FIRE),
        ("my carbon monoxide alarm is going off", EmergencyKind.CARBON_MONOXIDE),
        ("the water heater caught fire", EmergencyKind.FIRE),
        ("the furnace quit and it's freezing in here", EmergencyKind.NO_HEAT_IN_FREEZE),
    ],
)
def test_danger_opens_the_reply_with_its_safety_line_and_flags_an_emergency(
    caller_said: str, kind: EmergencyKind
) -> None:
    screen = guard(caller_said)
    assert screen.opening() == [ADVICE[kind]]
    assert "911" in screen.opening()[0] or "911" in ADVICE[kind]
    assert screen.screen("Please hang up and call 911 right now.") is None  # no repeat
    message = CallerMessage(urgency=Urgency.ROUTINE)
    found = escalate_for_danger(message, caller_said)
    assert found is not None and found.kind is kind
    assert message.urgency is Urgency.EMERGENCY
    assert message.emergencies == [kind.value]
    assert len(message.notes) == 1 and message.notes[0].startswith("Possible emergency")
    escalate_for_danger(message, caller_said)
    assert len(message.notes) == 1


def test_the_gas_line_names_the_gas_company() -> None:
    (line,) = guard("i think there's a gas leak").opening()
    assert "gas company or 911" in line


def test_a_danger_already_advised_on_this_call_is_not_advised_again() -> None:
    screen = guard("the basement is still flooding", advised=["flooding"])
    assert screen.opening() == []
    assert screen.screen("Please call 911 if anyone is in danger.") is None
    other = guard("and now I smell gas", advised=["flooding"])
    assert other.opening() == [ADVICE[EmergencyKind.GAS]]


@pytest.mark.parametrize(
    "caller_said",
    ["there's no gas smell", "no flooding, just a slow drip", "it's not an emergency"],
)
def test_a_plainly_negated_danger_is_not_one(caller_said: str) -> None:
    assert guard(caller_said).opening() == []
    assert not mentions_danger(caller_said)


def test_no_danger_no_advice() -> None:
    screen = guard("my kitchen faucet drips")
    assert screen.opening() == []
    assert not mentions_danger("my kitchen faucet drips")
    assert not mentions_danger(None)
    message = CallerMessage()
    assert not escalate_for_danger(message, "my kitchen faucet drips")
    assert message.urgency is None


def test_model_emergency_advice_becomes_the_fixed_wording() -> None:
    assert guard("a drip").screen("If it's serious, hang up and dial 911.") == EMERGENCY_ADVICE


def test_an_emergency_is_never_downgraded() -> None:
    assert settled_urgency(Urgency.EMERGENCY, Urgency.ROUTINE) is Urgency.EMERGENCY
    assert settled_urgency(Urgency.URGENT, Urgency.ROUTINE) is Urgency.ROUTINE
    assert settled_urgency(None, Urgency.URGENT) is Urgency.URGENT
    assert settled_urgency(Urgency.URGENT, None) is Urgency.URGENT


def test_finishing_needs_name_need_and_callback_number() -> None:
    assert not may_finish(CallerMessage())
    assert not may_finish(CallerMessage(caller_name="Maria", need="a leak"))
    assert not may_finish(CallerMessage(need="a leak", callback_number="+15125550100"))
    assert may_finish(CallerMessage("Maria", "a leak", "+15125550100"))


def test_the_reply_is_capped_in_words() -> None:
    screen = guard()
    sentences = [f"Sentence {n} has exactly ten words in it, you see." for n in range(8)]
    spoken = [screen.screen(sentence) for sentence in sentences]
    assert spoken == [*sentences[:6], None, None]
    assert screen.words == MAX_REPLY_WORDS


def test_a_repeated_sentence_is_said_once() -> None:
    screen = guard()
    assert screen.screen("What's your name?") == "What's your name?"
    assert screen.screen("What's your name?") is None


def test_one_overlong_sentence_is_cut() -> None:
    cut = guard().screen(" ".join(["word"] * 100) + ".")
    assert cut is not None
    assert len(cut.split()) == MAX_REPLY_WORDS
    assert cut.endswith("word.")


def test_the_advice_counts_toward_the_cap() -> None:
    screen = guard("there's smoke")
    screen.opening()
    long_sentence = " ".join(["word"] * 50) + "."
    assert screen.screen(long_sentence) is None
    assert screen.full


def test_speakable_strips_markdown_links_and_emoji() -> None:
    assert speakable("**Great!** See [our site](https://acme.example) 😀\n- ok") == (
        "Great! See our site ok"
    )
    assert speakable("Call\x00 us") == "Call us"
    assert guard().screen("  **  ") is None
