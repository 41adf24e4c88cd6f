"""The scripted interviewer: it takes the message from ordinary speech, asks only for what is
missing, answers the caller's questions, and never goes off script."""

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
    message, replies = await converse(["oh man what a day"])
    assert replies[1].text == "Sorry, I didn't catch that. What's your name?"
    assert message.caller_name is None
    assert message.need is None


async def test_a_need_given_for_the_name_is_kept_and_the_name_asked_for() -> None:
    message, replies = await converse(["I'm calling about a leak."])
    assert message.need == "I'm calling about a leak."
    assert message.caller_name is None
    assert message.missed_answers == []
    assert replies[1].text == "Got it. And can I get your name?"


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
        ("Leak under the sink 🙂", "Leak under the sink"),
        ("um so yeah the uh toilet keeps running", "the toilet keeps running"),
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
        "call my cell",
        "this is my work phone",
        "no it's better to call a different number",
    ],
)
async def test_a_no_asks_for_the_number(said: str) -> None:
    message, replies = await converse(["Maria", "A leak.", said])
    assert message.callback_number is None
    assert replies[-1].text.endswith("What's the best number to reach you?")
    assert "five one two, five five five" not in replies[-1].text
    assert message.missed_answers == []


async def test_a_no_and_then_the_number() -> None:
    message, replies = await converse(
        ["Maria", "A leak.", "no", "sure it's five one two five five five oh one nine nine"]
    )
    assert message.callback_number == "+15125550199"
    assert "I've got five one two, five five five, zero one nine nine." in replies[-1].text
    assert message.notes == []


async def test_a_no_without_a_number_in_the_end_keeps_the_calling_number_and_notes_it() -> None:
    message, replies = await converse(["Maria", "A leak.", "No.", "uh", "hmm I forget"])
    assert replies[4].text == "Sorry, I didn't catch that. What's the best number to reach you?"
    assert message.callback_number == CALLER
    assert len(message.notes) == 1
    assert "another number is better" in message.notes[0]
    assert "“hmm I forget”" in message.notes[0]
    assert not replies[-1].finished
    assert "I'll note the number you're calling from" in replies[-1].text
    assert "urgent" in replies[-1].text


async def test_a_callback_answer_that_is_neither_yes_nor_no_is_asked_again_then_dropped() -> None:
    message, replies = await converse(["Maria", "A leak.", "Hmm, what?", "purple", "orange"])
    assert replies[3].text.startswith("Is the number you're calling from, five one two")
    assert replies[4].text.startswith("Sorry, I didn't catch that. Is five one two")
    assert message.callback_number == CALLER
    assert message.missed_answers == [MessageField.CALLBACK_NUMBER] * 2
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
        "We have no heat and it's freezing.",
        "my carbon monoxide alarm is going off",
        "uh there's like a burning smell from the outlet",
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
        "We have no heat.",
        "it is pretty urgent so today if possible",
        "kind of urgent yeah",
        "fairly soon please",
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
        "whenever",
        "not super urgent",
        "no hurry take your time",
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


# --- ordinary speech: several parts in one breath, in any order -------------------------------


async def test_several_parts_in_one_breath_are_all_kept_and_not_asked_again() -> None:
    message, replies = await converse(
        [
            "Hi, this is Jordan, my sink is leaking, you can call me on this number",
            "it is pretty urgent so today if possible",
        ]
    )
    assert message.caller_name == "Jordan"
    assert message.need == "my sink is leaking"
    assert message.callback_number == CALLER
    assert message.urgency is Urgency.URGENT
    assert message.preferred_time == "today if possible"
    assert message.topic == "leaking sink"
    assert replies[1].text == (
        "Thanks, Jordan. And how urgent is it? Is it an emergency, or can it wait a bit?"
    )
    assert replies[2].finished
    assert replies[2].text.startswith("Thanks, Jordan. I've got all that.")


async def test_lowercase_recogniser_output_with_fillers_and_everything_at_once() -> None:
    message, replies = await converse(
        [
            "um hi yeah so my name is uh priya patel and the breaker in my kitchen keeps "
            "tripping you can call me at five one two five five five oh one nine nine its "
            "pretty urgent",
            "yep",
        ]
    )
    assert message.caller_name == "Priya Patel"
    assert message.need == "the breaker in my kitchen keeps tripping"
    assert message.topic == "tripping breaker"
    assert message.callback_number == "+15125550199"
    assert message.urgency is Urgency.URGENT
    assert replies[1].text == (
        "Thanks, Priya. I've got five one two, five five five, zero one nine nine. Is that right?"
    )
    assert not replies[1].finished
    assert replies[2].finished
    assert replies[2].text.startswith("Thanks, Priya. I've got all that.")


async def test_the_need_first_and_the_name_after() -> None:
    message, replies = await converse(
        ["hi yeah my water heater is making a loud banging noise", "its kevin", "yes", "no rush"]
    )
    assert (message.caller_name, message.need) == (
        "Kevin",
        "my water heater is making a loud banging noise",
    )
    assert message.topic == "noisy water heater"
    assert replies[1].text == "Got it. And can I get your name?"
    assert replies[2].text.startswith("Thanks, Kevin. Is the number you're calling from")
    assert message.urgency is Urgency.ROUTINE
    assert replies[-1].finished
    assert message.missed_answers == []


async def test_a_name_is_not_read_from_chatter_or_from_the_need() -> None:
    message, _ = await converse(
        ["Maria", "this is happening again, the drain is clogged", "can you call me back"]
    )
    assert message.caller_name == "Maria"
    assert message.need == "this is happening again, the drain is clogged"
    message, replies = await converse(["can i talk to a real person"])
    assert message.caller_name is None
    assert replies[1].text.startswith("I'm an automated assistant for Acme Plumbing")
    assert replies[1].text.endswith("What's your name?")


async def test_a_name_can_be_corrected_later() -> None:
    message, replies = await converse(
        [
            "Hi, this is Jordan, my sink is leaking, you can call me on this number",
            "no wait its actually jordan smith",
            "whenever",
        ]
    )
    assert message.caller_name == "Jordan Smith"
    assert message.urgency is Urgency.ROUTINE
    assert replies[2].text.endswith("Is it an emergency, or can it wait a bit?")
    assert replies[3].finished


@pytest.mark.parametrize(
    "said",
    [
        "that's my cell",
        "yep this one works",
        "you can reach me at this number",
        "yeah you can call me back on this number",
        "this number is fine",
        "it's my cell",
        "same number",
        "um yeah that one's fine",
        "yes this is my cell phone",
        "the one i'm calling from",
        "uh huh",
        "this one",
        "i guess so",
        "no that's fine",
        "nah this is good",
    ],
)
async def test_the_many_ways_to_confirm_the_number(said: str) -> None:
    message, replies = await converse(["Maria", "A leak.", said])
    assert message.callback_number == CALLER
    assert message.notes == []
    assert replies[-1].text == (
        "Great. And how urgent is it? Is it an emergency, or can it wait a bit?"
    )


async def test_the_number_confirmed_before_it_is_asked_for_is_not_asked_for() -> None:
    message, replies = await converse(["Maria", "a clogged drain, and you can call me on this one"])
    assert message.callback_number == CALLER
    assert (
        replies[-1].text
        == "Got it. And how urgent is it? Is it an emergency, or can it wait a bit?"
    )


@pytest.mark.parametrize(
    ("said", "number", "read_back"),
    [
        (
            "no call me at three oh three five five five one two one two",
            "+13035551212",
            "three zero three, five five five, one two one two",
        ),
        (
            "five one two, five five five, oh one nine nine",
            "+15125550199",
            "five one two, five five five, zero one nine nine",
        ),
        (
            "my cell is five twelve, five fifty five, oh one ninety nine",
            "+15125550199",
            "five one two, five five five, zero one nine nine",
        ),
        (
            "um it's eight hundred five five five one two one two",
            "+18005551212",
            "eight zero zero, five five five, one two one two",
        ),
    ],
)
async def test_a_new_number_in_words_is_read_back_once_in_groups(
    said: str, number: str, read_back: str
) -> None:
    message, replies = await converse(["Maria", "A leak.", said, "pretty urgent"])
    assert message.callback_number == number
    assert replies[3].text == (
        f"I've got {read_back}. And how urgent is it? Is it an emergency, or can it wait a bit?"
    )
    assert read_back not in replies[4].text
    assert replies[4].finished
    assert message.urgency is Urgency.URGENT


async def test_the_number_given_is_the_calling_number_needs_no_read_back() -> None:
    message, replies = await converse(
        ["Maria", "A leak.", "five one two five five five oh one four two"]
    )
    assert message.callback_number == CALLER
    assert replies[-1].text.startswith("Great. And how urgent")


@pytest.mark.parametrize(
    ("correction", "number", "read_back"),
    [
        (
            "no, it's three oh three five five five one two one three",
            "+13035551213",
            "three zero three, five five five, one two one three",
        ),
        (
            "no its one two one three",
            "+13035551213",
            "three zero three, five five five, one two one three",
        ),
        (
            "sorry it's five five five one two one four",
            "+13035551214",
            "three zero three, five five five, one two one four",
        ),
        (
            "actually 303 555 0140",
            "+13035550140",
            "three zero three, five five five, zero one four zero",
        ),
    ],
)
async def test_a_correction_after_the_read_back_is_taken(
    correction: str, number: str, read_back: str
) -> None:
    message, replies = await converse(
        [
            "Maria",
            "A leak.",
            "no, call me at three oh three five five five one two one two",
            correction,
        ]
    )
    assert message.callback_number == number
    assert replies[4].text.startswith(f"Sorry about that. I've got {read_back}.")
    assert replies[4].text.endswith("Is it an emergency, or can it wait a bit?")
    assert message.urgency is None


async def test_that_s_wrong_after_the_read_back_asks_for_the_number_again() -> None:
    message, replies = await converse(
        [
            "Maria",
            "A leak.",
            "five one two five five five oh one nine eight",
            "that's wrong",
            "five one two five five five oh one nine seven",
            "whenever",
        ]
    )
    assert replies[4].text == "Sorry about that. What's the best number to reach you?"
    assert message.callback_number == "+15125550197"
    assert replies[-1].finished


async def test_a_read_back_as_the_last_thing_waits_for_a_yes_or_a_correction() -> None:
    first = "this is ana, a pipe leaks in the bathroom and it's pretty urgent"
    number = "call me at five one two five five five oh one nine nine"
    message, replies = await converse([first, number, "yes that's right"])
    assert replies[2].text == (
        "I've got five one two, five five five, zero one nine nine. Is that right?"
    )
    assert not replies[2].finished
    assert replies[3].finished
    assert replies[3].text.startswith("Thanks, Ana. I've got all that.")
    assert message.callback_number == "+15125550199"

    message, replies = await converse(
        [first, number, "no", "five one two five five five oh one nine eight", "yep"]
    )
    assert replies[3].text == "Sorry about that. What's the best number to reach you?"
    assert replies[4].text.endswith("zero one nine eight. Is that right?")
    assert replies[5].finished
    assert message.callback_number == "+15125550198"

    message, replies = await converse([first, number, ""])
    assert replies[3].finished  # silence lets the number stand
    assert message.callback_number == "+15125550199"


async def test_a_yes_to_the_read_back_is_not_taken_as_the_urgency() -> None:
    message, replies = await converse(
        ["Maria", "A leak.", "five one two five five five oh one nine nine", "yes that's right"]
    )
    assert message.urgency is None
    assert (
        replies[-1].text == "Great. And how urgent is it? Is it an emergency, or can it wait a bit?"
    )


# --- questions from the caller ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "answer_starts"),
    [
        ("who is this?", "This is the automated assistant for Acme Plumbing."),
        ("are you a robot", "I'm an automated assistant for Acme Plumbing"),
        ("is this a real person", "I'm an automated assistant for Acme Plumbing"),
        ("how much will it cost", "I can't give prices"),
        ("when will someone call me back", "I can't book a visit, but someone from Acme"),
        ("what kind of texts?", "Only texts about this request"),
        ("what are your hours", "I don't have that here"),
    ],
)
async def test_a_question_gets_a_short_answer_and_the_same_question_again(
    question: str, answer_starts: str
) -> None:
    message, replies = await converse(["Maria", question])
    assert replies[2].text.startswith(answer_starts)
    assert replies[2].text.endswith("What can Acme Plumbing help you with today?")
    assert message.missed_answers == []
    assert message.need is None


async def test_a_question_that_names_the_problem_also_gives_the_need() -> None:
    message, replies = await converse(["Maria", "do you guys fix water heaters? mine is leaking"])
    assert replies[2].text.startswith("Acme Plumbing handles leaks, clogged drains, water heaters")
    assert replies[2].text.endswith("the best one to reach you?")
    assert message.topic is not None and "water heater" in message.topic


async def test_a_question_at_every_step_never_loses_the_place() -> None:
    message, replies = await converse(
        [
            "who is this",
            "oh ok its dana",
            "are you a robot",
            "the toilet is clogged",
            "how much is this going to cost me",
            "that's my cell",
            "sorry what",
            "no rush",
        ]
    )
    assert message.caller_name == "Dana"
    assert message.topic == "clogged toilet"
    assert message.callback_number == CALLER
    assert message.urgency is Urgency.ROUTINE
    assert message.missed_answers == []
    assert replies[-1].finished
    assert replies[7].text == "And how urgent is it? Is it an emergency, or can it wait a bit?"


async def test_the_texts_answer_uses_the_business_setting() -> None:
    two = CallContext("Acme Plumbing", "leaks", "within 30 minutes", CALLER, max_texts=2)
    _, replies = await converse(["what kind of texts"], two)
    assert "up to 2 texts" in replies[1].text
    assert "I'll ask you about that before we finish" in replies[1].text


async def test_off_topic_chatter_is_asked_again() -> None:
    message, replies = await converse(["hi there how are you doing today", "its kevin"])
    assert replies[1].text == "Sorry, I didn't catch that. What's your name?"
    assert message.caller_name == "Kevin"


# --- emergencies at any point -------------------------------------------------------------------


async def test_a_gas_smell_in_the_first_breath_is_an_emergency_with_advice_first() -> None:
    message, replies = await converse(["hey its bob i smell gas in the kitchen", "yes"])
    assert replies[1].text.startswith(
        "If you smell gas, please leave the building now and call the gas company or 911"
    )
    assert "Thanks, Bob." in replies[1].text
    assert message.urgency is Urgency.EMERGENCY
    assert message.topic == "gas smell"
    assert message.emergencies == ["gas"]
    assert any("gas" in note for note in message.notes)
    assert replies[2].finished  # urgency is never asked: it is known
    assert "marked it as an emergency" in replies[2].text


@pytest.mark.parametrize(
    ("answers", "kind", "advice"),
    [
        (["Maria", "my basement is flooding"], "flooding", "keep away from water"),
        (
            ["Maria", "A leak.", "yes, and oh god the outlet is sparking"],
            "electrical",
            "keep clear",
        ),
        (["Maria", "the carbon monoxide alarm is going off"], "carbon_monoxide", "fresh air"),
        (["no heat and it's freezing in here"], "no_heat_in_freeze", "at risk from the cold"),
        (["Maria", "A leak.", "yes", "it's an emergency"], "declared", "911 first"),
    ],
)
async def test_an_emergency_mentioned_anywhere_is_marked_and_advised_once(
    answers: list[str], kind: str, advice: str
) -> None:
    message, replies = await converse([*answers, *answers[-1:]])
    assert message.urgency is Urgency.EMERGENCY
    assert message.emergencies == [kind]
    assert advice in replies[len(answers)].text
    assert "911" in replies[len(answers)].text
    assert advice not in replies[-1].text  # said once, not every time it is mentioned


async def test_an_emergency_is_never_downgraded_by_a_later_answer() -> None:
    message, _ = await converse(["Maria", "water is pouring out of the ceiling", "yes", "no rush"])
    assert message.urgency is Urgency.EMERGENCY


async def test_no_heat_without_a_freeze_is_urgent_not_an_emergency() -> None:
    message, replies = await converse(["Maria", "the heat is out", "yes", "we have no heat at all"])
    assert message.urgency is Urgency.URGENT
    assert message.emergencies == []
    assert "911" not in " ".join(reply.text for reply in replies)


# --- address, preferred time and topic ----------------------------------------------------------


async def test_address_and_preferred_time_are_kept_when_given() -> None:
    message, _ = await converse(
        [
            "my name's Carlos Ruiz I'm at 1420 elm street and my toilet is overflowing",
            "yes",
            "no rush, tomorrow morning would be great",
        ]
    )
    assert message.caller_name == "Carlos Ruiz"
    assert message.address == "1420 Elm Street"
    assert message.need == "my toilet is overflowing"
    assert message.topic == "overflowing toilet"
    assert message.preferred_time == "tomorrow morning"
    assert message.urgency is Urgency.ROUTINE


async def test_an_address_in_words_and_said_late() -> None:
    message, replies = await converse(
        ["Maria", "A leak.", "yes", "the address is twelve oak street apartment 4", "today"]
    )
    assert message.address == "12 Oak Street Apartment 4"
    assert message.urgency is Urgency.URGENT
    assert replies[4].text == "And how urgent is it? Is it an emergency, or can it wait a bit?"


async def test_a_wish_for_today_given_unasked_answers_the_urgency() -> None:
    message, replies = await converse(
        ["hi im wondering if someone can come out today my ac stopped working", "kim", "yes"]
    )
    assert message.preferred_time == "today"
    assert message.urgency is Urgency.URGENT
    assert message.topic == "AC not cooling"
    assert replies[-1].finished


@pytest.mark.parametrize(
    ("need", "topic"),
    [
        ("My kitchen sink is leaking under the cabinet.", "leaking kitchen sink"),
        ("my kitchen thing can leak in under the cabinet", "kitchen leak"),
        ("The drain in my shower is completely clogged.", "clogged shower drain"),
        ("the sink is fine but the drain is clogged", "clogged drain"),
        ("the toilet keeps running", "running toilet"),
        ("a pipe burst in the basement", "burst pipe"),
        ("my pipes froze", "frozen pipes"),
        ("there's no hot water", "hot water"),
        ("my water heater is making a loud banging noise", "noisy water heater"),
        ("the breaker keeps tripping", "tripping breaker"),
        ("we lost power in half the house", "power outage"),
        ("Half the outlets in my garage stopped working.", "dead outlets"),
        ("I need an outlet installed for my electric car charger.", "EV charger"),
        ("My porch light stopped working.", "porch light"),
        ("the lights keep flickering", "flickering lights"),
        ("i locked myself out of my house", "lockout"),
        ("i locked my keys in the car", "car lockout"),
        ("the key broke off in the front door lock", "broken lock"),
        ("i want to get my locks changed", "lock change"),
        ("the furnace stopped working", "furnace"),
        ("the heat's out", "heating"),
        ("my ac is blowing warm air", "AC not cooling"),
        ("i smell gas by the stove", "gas smell"),
        ("the outlet in the bedroom is sparking", "sparking outlet"),
        ("water is coming through the ceiling", "ceiling leak"),
        ("the basement is flooded", "flooded basement"),
        ("it's about the thing we talked about last week", None),
        ("i have a question about my bill", None),
        ("my gas stove has a leak", None),
        ("the sink isn't leaking anymore", None),
    ],
)
async def test_the_topic_in_our_words(need: str, topic: str | None) -> None:
    message, _ = await converse(["Maria", need])
    assert message.need is not None
    assert message.topic == topic


async def test_a_later_mention_fills_in_a_missing_topic() -> None:
    message, _ = await converse(
        ["Maria", "it's about my house", "yes, oh and the toilet is clogged"]
    )
    assert message.topic == "clogged toilet"
    assert message.need == "it's about my house. the toilet is clogged"


# --- the demo calls still take four turns ---------------------------------------------------------


@pytest.mark.parametrize(
    "answers",
    [
        [
            "Hi, my name is Maria Lopez.",
            "My kitchen sink is leaking under the cabinet.",
            "Yes, this number is fine.",
            "It's not an emergency, but today would be great.",
        ],
        [
            "This is David Chen.",
            "Half the outlets in my garage stopped working.",
            "Yes, you can call me back on this number.",
            "It's not urgent. Sometime this week is fine.",
        ],
        [
            "Hi, my name is Sam Lee.",
            "My porch light stopped working. Please don't text me, just call.",
            "Yes, this number is fine.",
            "It's not urgent.",
        ],
        [
            "My name is Tom Baker.",
            "The drain in my shower is completely clogged.",
            "Yes, this number works.",
            "Tomorrow morning would be fine.",
        ],
        [
            "Hello, it's Priya Patel.",
            "My water heater is making a loud banging noise.",
            "Yes, this is my cell phone.",
            "Fairly soon please, there's no hot water.",
        ],
        [
            "Hi, this is Alex Kim.",
            "I need an outlet installed for my electric car charger.",
            "Yes, this number is good.",
            "No rush, anytime this week.",
        ],
    ],
)
async def test_the_scenario_calls_finish_on_their_fourth_answer(answers: list[str]) -> None:
    message, replies = await converse(answers)
    assert [reply.finished for reply in replies] == [False, False, False, False, True]
    assert message.callback_number == CALLER
    assert message.notes == []
    assert message.topic is not None
    assert "text" not in message.need.casefold()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("said", "name", "thanks"),
    [
        ("dr smith", "Dr. Smith", "Thanks, Dr. Smith."),
        ("it's mister lee", "Mr. Lee", "Thanks, Mr. Lee."),
        ("this is dr. jane smith", "Dr. Jane Smith", "Thanks, Dr. Smith."),
        ("mrs garcia", "Mrs. Garcia", "Thanks, Mrs. Garcia."),
    ],
)
async def test_a_title_is_kept_with_the_name(said: str, name: str, thanks: str) -> None:
    message, replies = await converse([said])
    assert message.caller_name == name
    assert replies[1].text.startswith(thanks)


@pytest.mark.parametrize("said", ["mister", "miss", "it's for my mom", "my wife told me to call"])
async def test_no_name_in_a_title_alone_or_in_who_the_call_is_for(said: str) -> None:
    message, _ = await converse([said])
    assert message.caller_name is None


@pytest.mark.parametrize("said", ["can you repeat the number", "what number do you have"])
async def test_asking_for_the_number_again_reads_it_again_without_a_miss(said: str) -> None:
    message, replies = await converse(["Maria", "A leak.", said])
    assert replies[-1].text == (
        f"Is the number you're calling from, {CALLER_SPOKEN}, the best one to reach you?"
    )
    assert message.missed_answers == []


async def test_no_water_is_urgent() -> None:
    message, _ = await converse(["Maria", "A leak.", "yes", "i have a baby and no water"])
    assert message.urgency is Urgency.URGENT


# --- changes of mind and other things people do --------------------------------------------------


async def test_a_name_corrected_in_the_same_breath() -> None:
    message, replies = await converse(["My name is Katie, sorry, Kate Morgan."])
    assert message.caller_name == "Kate Morgan"
    assert replies[1].text.startswith("Thanks, Kate.")


async def test_an_urgency_changed_in_the_same_breath() -> None:
    message, _ = await converse(
        ["Gary", "a leak", "yes", "It can wait. Actually no, it's getting worse. Today, please."]
    )
    assert message.urgency is Urgency.URGENT
    message, _ = await converse(["Gary", "a leak", "yes", "today, actually no, it can wait"])
    assert message.urgency is Urgency.ROUTINE


async def test_a_surname_is_not_a_question() -> None:
    message, replies = await converse(["This is Gary Price."])
    assert message.caller_name == "Gary Price"
    assert replies[1].text == "Thanks, Gary. What can Acme Plumbing help you with today?"


async def test_an_interjection_is_not_a_name() -> None:
    message, replies = await converse(["Wait, are you a robot?", "Jordan Lee"])
    assert replies[1].text.startswith("I'm an automated assistant for Acme Plumbing")
    assert message.caller_name == "Jordan Lee"


async def test_a_need_said_unasked_with_i_need_is_kept() -> None:
    message, replies = await converse(
        [
            "This is Omar Haddad. I need an outlet fixed in my kitchen, call me back on this "
            "number, it's not urgent.",
        ]
    )
    assert message.need == "I need an outlet fixed in my kitchen"
    assert message.topic == "outlet repair"
    assert message.callback_number == CALLER
    assert message.urgency is Urgency.ROUTINE
    assert replies[1].finished


async def test_i_already_told_you_is_not_the_need() -> None:
    message, replies = await converse(["Omar", "I already told you."])
    assert message.need is None
    assert replies[2].text == "Sorry, I didn't catch that. What do you need help with?"
