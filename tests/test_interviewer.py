"""The scripted interviewer: it takes the message in four questions and never goes off script."""

from __future__ import annotations

import re

import pytest

from voice_agent.chat.interviewer import (
    MAX_NEED_CHARS,
    ScriptedInterviewer,
    classify_urgency,
    extract_name,
    find_phone_number,
    spoken_phone_number,
)
from voice_agent.chat.port import (
    AgentReply,
    CallContext,
    CallerMessage,
    ChatModel,
    MessageField,
    Urgency,
)

CALLER = "+15125550142"
CALLER_SPOKEN = "five one two, five five five, zero one four two"
ACME = CallContext(
    business_name="Acme Plumbing",
    services="leaks, clogged drains, water heaters and burst pipes",
    callback_time="within 30 minutes",
    caller_number=CALLER,
)
WITHHELD = CallContext(
    business_name="Acme Plumbing",
    services="leaks",
    callback_time="within 30 minutes",
    caller_number="+266696687",  # Twilio's caller ID for an anonymous caller
)


async def converse(
    answers: list[str], context: CallContext = ACME
) -> tuple[CallerMessage, list[AgentReply]]:
    """Run a call: the opening question, then one reply per answer."""
    model: ChatModel = ScriptedInterviewer()
    message = CallerMessage()
    replies = [await model.reply(context, message, None)]
    for answer in answers:
        replies.append(await model.reply(context, message, answer))
    return message, replies


# --- whole calls -----------------------------------------------------------------------------


async def test_happy_path_takes_the_whole_message_in_four_questions() -> None:
    message, replies = await converse(
        [
            "Hi, yeah, my name is Maria Lopez.",
            "My kitchen sink is leaking under the cabinet.",
            "Yes, that's the best number.",
            "Pretty urgent, I'd like someone today if possible.",
        ]
    )
    assert message.caller_name == "Maria Lopez"
    assert message.need == "My kitchen sink is leaking under the cabinet."
    assert message.callback_number == CALLER
    assert message.urgency is Urgency.URGENT
    assert message.notes == []
    assert message.missed_answers == []
    assert [reply.finished for reply in replies] == [False, False, False, False, True]
    assert "name" in replies[0].text
    assert replies[1].text.startswith("Thanks, Maria.")
    assert "Acme Plumbing" in replies[1].text
    assert CALLER_SPOKEN in replies[2].text
    assert "urgent" in replies[3].text
    assert replies[4].text.startswith("Thanks, Maria. I've got all that.")
    assert "within 30 minutes" in replies[4].text


async def test_happy_path_with_a_different_callback_number_and_an_emergency() -> None:
    message, replies = await converse(
        [
            "this is bob",
            "There's water coming through the ceiling.",
            "No, call my cell, it's five one two, five five five, zero one nine nine.",
            "It's flooding right now!",
        ]
    )
    assert message.caller_name == "Bob"
    assert message.callback_number == "+15125550199"
    assert message.urgency is Urgency.EMERGENCY
    assert "five one two, five five five, zero one nine nine" in replies[3].text
    assert replies[-1].finished
    assert "emergency" in replies[-1].text
    assert "911" in replies[-1].text


async def test_routine_call_closing_has_no_emergency_advice() -> None:
    _, replies = await converse(["Maria", "A dripping tap.", "yes", "Not urgent at all."])
    assert replies[-1].finished
    assert "911" not in replies[-1].text
    assert "emergency" not in replies[-1].text


async def test_every_reply_is_short_and_never_strays_into_consent_or_claims_to_be_human() -> None:
    calls = [
        ["Maria", "A leak.", "yes", "today"],
        ["", "", "", "", "", "", "", ""],
        ["🙂", "?!", "no", "..."],
        ["x" * 10_000, "y" * 10_000, "z" * 10_000, "w" * 10_000, "v" * 10_000, "u" * 10_000],
    ]
    for answers in calls:
        _, replies = await converse(answers)
        for reply in replies:
            spoken = reply.text.casefold()
            assert not re.search(r"\btext|\bsms\b|message and data|\bstop\b|consent", spoken)
            assert not re.search(r"\bhuman\b|\breal person\b|\bnot a (bot|robot)\b", spoken)
            sentences = [s for s in re.split(r"(?<=[.?!])\s+", reply.text) if s]
            assert all(len(sentence) <= 120 for sentence in sentences), reply.text


async def test_one_instance_serves_interleaved_calls_with_state_only_in_the_message() -> None:
    model = ScriptedInterviewer()
    first, second = CallerMessage(), CallerMessage()
    await model.reply(ACME, first, None)
    await model.reply(ACME, second, None)
    await model.reply(ACME, first, "Maria")
    reply = await model.reply(ACME, second, "It's Dan")
    assert reply.text.startswith("Thanks, Dan.")
    await model.reply(ACME, first, "A clogged drain.")
    assert (first.caller_name, first.need) == ("Maria", "A clogged drain.")
    assert (second.caller_name, second.need) == ("Dan", None)


async def test_no_caller_words_repeats_the_pending_question() -> None:
    model = ScriptedInterviewer()
    message = CallerMessage()
    await model.reply(ACME, message, None)
    asked = await model.reply(ACME, message, "Maria")
    again = await model.reply(ACME, message, None)
    assert again.text == asked.text.removeprefix("Thanks, Maria. ")
    assert message.need is None


async def test_a_finished_message_stays_finished() -> None:
    message, _ = await converse(["Maria", "A leak.", "yes", "whenever"])
    model = ScriptedInterviewer()
    after = await model.reply(ACME, message, "Oh, and one more thing")
    assert after.finished
    assert message.need == "A leak."
    assert (await model.reply(ACME, message, None)).finished


async def test_model_is_named_scripted() -> None:
    assert ScriptedInterviewer.name == "scripted"


# --- empty and unusable answers --------------------------------------------------------------


@pytest.mark.parametrize("silence", ["", "   ", "...", "?!", "🙂", "\x00\x01", "— –"])
async def test_an_empty_answer_is_asked_again_once_in_short_form(silence: str) -> None:
    message, replies = await converse([silence])
    assert replies[1].text == "Sorry, I didn't catch that. What's your name?"
    assert not replies[1].finished
    assert message.missed_answers == [MessageField.CALLER_NAME]
    assert message.caller_name is None


async def test_a_second_empty_answer_moves_on_and_notes_the_gap() -> None:
    message, replies = await converse(["", ""])
    assert replies[2].text.startswith("No problem.")
    assert "Acme Plumbing help you with" in replies[2].text
    assert message.notes == ["The caller didn't give a name."]
    assert message.caller_name is None


async def test_the_closing_leaves_out_a_name_never_given() -> None:
    _, replies = await converse(["", "", "A leak.", "yes", "today"])
    assert replies[-1].finished
    assert replies[-1].text.startswith("Thanks. I've got all that.")


async def test_each_question_gets_its_own_re_ask() -> None:
    message, replies = await converse(["Maria", "", "A leak.", "", "yes", "", "today"])
    assert replies[2].text == "Sorry, I didn't catch that. What do you need help with?"
    assert (
        replies[4].text
        == f"Sorry, I didn't catch that. Is {CALLER_SPOKEN} the best number to reach you?"
    )
    assert replies[6].text == "Sorry, I didn't catch that. How urgent is it?"
    assert replies[-1].finished
    assert message.notes == []
    assert message.missed_answers == [
        MessageField.NEED,
        MessageField.CALLBACK_NUMBER,
        MessageField.URGENCY,
    ]


async def test_silence_all_the_way_through_still_finishes_with_notes() -> None:
    message, replies = await converse([""] * 8)
    assert [reply.finished for reply in replies] == [False] * 8 + [True]
    assert message == CallerMessage(
        callback_number=CALLER,
        notes=[
            "The caller didn't give a name.",
            "The caller didn't say what they need.",
            "The callback number wasn't confirmed; using the number they called from.",
            "The caller didn't say how urgent it is.",
        ],
        missed_answers=[field for field in MessageField for _ in range(2)],
    )


async def test_an_answer_with_no_name_in_it_is_asked_again() -> None:
    message, replies = await converse(["I'm calling about a leak."])
    assert replies[1].text == "Sorry, I didn't catch that. What's your name?"
    assert message.caller_name is None


# --- name ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "name"),
    [
        ("my name is Maria Lopez", "Maria Lopez"),
        ("My name's Maria.", "Maria"),
        ("this is Maria", "Maria"),
        ("Hi, this is Maria from Austin.", "Maria"),
        ("it's Maria Lopez", "Maria Lopez"),
        ("It’s Maria Lopez calling about a leak.", "Maria Lopez"),
        ("Yeah, it is Maria.", "Maria"),
        ("Maria", "Maria"),
        ("maria lopez", "Maria Lopez"),
        ("MARIA LOPEZ", "Maria Lopez"),
        ("Um, Maria.", "Maria"),
        ("uh, my name is, um, Maria, uh, Lopez", "Maria"),
        ("My name is uh Maria Lopez", "Maria Lopez"),
        ("I'm Dan.", "Dan"),
        ("I am Dan and I have a leak", "Dan"),
        ("Call me Dan.", "Dan"),
        ("Bob here.", "Bob"),
        ("Bob speaking", "Bob"),
        ("o'brien", "O'Brien"),
        ("mary-jane watson", "Mary-Jane Watson"),
        ("Connor McKay", "Connor McKay"),
        ("José García", "José García"),
        ("Maria Lopez. It's about my sink.", "Maria Lopez"),
        ("Maria de la Cruz Hernandez Smith", "Maria De La Cruz"),
        ("Hello, my name is Maria 🙂", "Maria"),
        ("🙂 maria 🙂", "Maria"),
    ],
)
def test_name_extraction(said: str, name: str) -> None:
    assert extract_name(said) == name


@pytest.mark.parametrize(
    "said",
    [
        "",
        "...",
        "I'm calling about a leak.",
        "It's about my water heater.",
        "Hello?",
        "Yes.",
        "12345",
        "x" * 10_000,
        "🙂🙂🙂",
    ],
)
def test_no_name_in_the_answer(said: str) -> None:
    assert extract_name(said) is None


def test_a_name_is_at_most_four_words() -> None:
    name = extract_name("my name is " + "ann " * 5_000)
    assert name == "Ann Ann Ann Ann"


# --- need ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "need"),
    [
        ("My water heater stopped working.", "My water heater stopped working."),
        ("  a   clogged\tdrain \n", "a clogged drain"),
        ("Leak under the sink 🙂", "Leak under the sink 🙂"),
        ("The toilet\x00 keeps running", "The toilet keeps running"),
    ],
)
async def test_need_is_the_callers_sentence_tidied(said: str, need: str) -> None:
    message, _ = await converse(["Maria", said])
    assert message.need == need


async def test_a_very_long_need_is_cut_at_a_word() -> None:
    message, replies = await converse(["Maria", "leak " * 5_000])
    assert message.need is not None
    assert len(message.need) <= MAX_NEED_CHARS + 1
    assert message.need.endswith("leak…")
    assert not replies[-1].finished


# --- callback number -------------------------------------------------------------------------


def test_number_read_back() -> None:
    assert spoken_phone_number("+15125550142") == CALLER_SPOKEN
    assert (
        spoken_phone_number("+13035550140")
        == "three zero three, five five five, zero one four zero"
    )
    assert (
        spoken_phone_number("+442079460958")
        == "zero two zero, seven nine four six, zero nine five eight"
    )


@pytest.mark.parametrize("caller_id", ["", "anonymous", "+266696687", "+1555", "x" * 10_000])
def test_no_read_back_for_a_number_that_is_not_valid(caller_id: str) -> None:
    assert spoken_phone_number(caller_id) is None


@pytest.mark.parametrize(
    "said",
    [
        "yes",
        "Yeah.",
        "Yep, that's right.",
        "Sure.",
        "That's correct.",
        "It's fine",
        "yes, that one",
    ],
)
async def test_a_yes_keeps_the_calling_number(said: str) -> None:
    message, replies = await converse(["Maria", "A leak.", said])
    assert message.callback_number == CALLER
    assert message.notes == []
    assert replies[-1].text.startswith("Great.")


@pytest.mark.parametrize(
    ("said", "number"),
    [
        ("No, call me at 512-555-0199.", "+15125550199"),
        ("no, it's (512) 555 0199", "+15125550199"),
        ("No, use 1 512 555 0199", "+15125550199"),
        ("No. Five one two, five five five, zero one nine nine.", "+15125550199"),
        ("nope, five one two five five five oh one nine nine", "+15125550199"),
        ("No, five one two, uh, five five five, zero one double nine", "+15125550199"),
        (
            "It's better to call three zero three, five five five, zero one four nine",
            "+13035550149",
        ),
        ("My cell: +44 20 7946 0958", "+442079460958"),
        ("5125550199", "+15125550199"),
    ],
)
async def test_another_number_is_parsed_to_e164(said: str, number: str) -> None:
    message, _ = await converse(["Maria", "A leak.", said])
    assert message.callback_number == number
    assert message.notes == []


@pytest.mark.parametrize(
    "said",
    [
        "No.",
        "No, use my other number.",
        "Nope, my cell is five five five, zero one",
        "not this one",
    ],
)
async def test_a_no_without_a_usable_number_keeps_the_calling_number_and_notes_it(
    said: str,
) -> None:
    message, replies = await converse(["Maria", "A leak.", said])
    assert message.callback_number == CALLER
    assert len(message.notes) == 1
    assert "another number is better" in message.notes[0]
    assert not replies[-1].finished
    assert "urgent" in replies[-1].text


async def test_a_callback_answer_that_is_neither_yes_nor_no_is_asked_again_then_dropped() -> None:
    message, replies = await converse(["Maria", "A leak.", "Hmm, what?", "purple"])
    assert replies[3].text.startswith("Sorry, I didn't catch that. Is five one two")
    assert message.callback_number == CALLER
    assert message.notes == [
        "The callback number wasn't confirmed; using the number they called from."
    ]


async def test_a_withheld_caller_id_is_asked_for_a_number() -> None:
    message, replies = await converse(["Maria", "A leak.", "It's 512 555 0199"], WITHHELD)
    assert replies[2].text.endswith("What's the best number to reach you?")
    assert message.callback_number == "+15125550199"


async def test_a_withheld_caller_id_and_no_number_leaves_no_callback_number() -> None:
    message, replies = await converse(["Maria", "A leak.", "yes", "no"], WITHHELD)
    assert replies[3].text == "Sorry, I didn't catch that. What's the best number to reach you?"
    assert message.callback_number is None
    assert message.notes == ["The caller gave no callback number."]


@pytest.mark.parametrize(
    "said", ["", "yes", "555 0199", "9" * 5_000, "one " * 5_000, "+" * 100, "double triple"]
)
def test_no_phone_number_in_the_answer(said: str) -> None:
    assert find_phone_number(said) is None


# --- urgency ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "said",
    [
        "It's an emergency!",
        "The basement is flooding.",
        "There's a flood in the kitchen.",
        "I smell gas.",
        "There's a gas smell in the basement",
        "It smells like gas",
        "Sparks are coming out of the outlet",
        "There's smoke coming from the panel",
        "Fire!",
        "A burst pipe.",
        "The pipe burst.",
        "We have no heat.",
        "Not urgent, but the basement is flooding",
        "water everywhere",
        "I think it's a gas leak",
    ],
)
def test_emergency_words(said: str) -> None:
    assert classify_urgency(said) is Urgency.EMERGENCY


@pytest.mark.parametrize(
    "said",
    [
        "It's urgent.",
        "Pretty urgent.",
        "ASAP please.",
        "As soon as possible.",
        "As soon as you can.",
        "Today if you can.",
        "Right away.",
        "I need it fixed right now.",
        "Immediately",
        "Tonight would be good.",
        "It's not an emergency, but I need it today.",
        "No, today please.",
    ],
)
def test_urgent_words(said: str) -> None:
    assert classify_urgency(said) is Urgency.URGENT


@pytest.mark.parametrize(
    "said",
    [
        "not urgent",
        "It's not urgent.",
        "Not really urgent.",
        "It's not an emergency.",
        "No flooding, just a slow drip.",
        "There's no smoke or anything.",
        "No rush.",
        "Whenever works.",
        "It can wait.",
        "Not today, next week is fine.",
        "Not urgent, but today would be nice.",
        "Tomorrow is fine.",
        "yes",
        "I don't know.",
        "🙂" * 1_000,
        "z" * 10_000,
    ],
)
def test_routine_otherwise(said: str) -> None:
    assert classify_urgency(said) is Urgency.ROUTINE


# --- hostile input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    [
        "a" * 10_000,
        "my name is " + "a" * 10_000,
        "🙂" * 10_000,
        "!?.,;:" * 2_000,
        "\x00\x1b[31m\x7f" * 1_000,
        "\u202e\u200b" * 1_000,
        "five " * 3_000,
        "\ud800",
    ],
)
async def test_hostile_answers_never_crash_and_the_call_still_finishes(hostile: str) -> None:
    message, replies = await converse([hostile] * 8)
    assert replies[-1].finished
    assert message.caller_name is None or len(message.caller_name) < 200
    assert message.need is None or len(message.need) <= MAX_NEED_CHARS + 1
    assert all(len(reply.text) < 400 for reply in replies)
