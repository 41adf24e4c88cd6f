"""Questions callers ask the receptionist, and short truthful answers from the business's setup."""

from __future__ import annotations

import re

import pytest

from voice_agent.chat.caller_questions import CallerQuestion, answer, find_question
from voice_agent.chat.port import CallContext

ACME = CallContext(
    business_name="Acme Plumbing",
    services="leaks, clogged drains, water heaters and burst pipes",
    callback_time="within 30 minutes",
    caller_number="+15125550142",
    max_texts=2,
)


@pytest.mark.parametrize(
    ("said", "question"),
    [
        ("are you a robot", CallerQuestion.AUTOMATED),
        ("wait r u a bot", CallerQuestion.AUTOMATED),
        ("is this a real person", CallerQuestion.AUTOMATED),
        ("am i talking to a machine", CallerQuestion.AUTOMATED),
        ("is this a recording?", CallerQuestion.AUTOMATED),
        ("are you an ai", CallerQuestion.AUTOMATED),
        ("can i talk to a real person", CallerQuestion.AUTOMATED),
        ("who is this", CallerQuestion.WHO),
        ("um whos this", CallerQuestion.WHO),
        ("sorry who am i talking to", CallerQuestion.WHO),
        ("what company is this", CallerQuestion.WHO),
        ("is this the plumber", CallerQuestion.WHO),
        ("did i call the right number", CallerQuestion.WHO),
        ("what kind of texts?", CallerQuestion.TEXTS),
        ("hmm what kind of texts", CallerQuestion.TEXTS),
        ("are you going to text me", CallerQuestion.TEXTS),
        ("how many texts", CallerQuestion.TEXTS),
        ("how much will it cost", CallerQuestion.PRICE),
        ("how much do you charge for a water heater", CallerQuestion.PRICE),
        ("what's your service call fee", CallerQuestion.PRICE),
        ("do you give free estimates", CallerQuestion.PRICE),
        ("what are your prices like", CallerQuestion.PRICE),
        ("when will someone call me back", CallerQuestion.CALLBACK_TIME),
        ("how long will it take for someone to call", CallerQuestion.CALLBACK_TIME),
        ("can someone come out today", CallerQuestion.CALLBACK_TIME),
        ("how soon can you get here", CallerQuestion.CALLBACK_TIME),
        ("do you guys fix water heaters", CallerQuestion.SERVICES),
        ("can you unclog a drain", CallerQuestion.SERVICES),
        ("what services do you offer", CallerQuestion.SERVICES),
        ("what are your hours", CallerQuestion.HOURS_OR_PLACE),
        ("are you open on sundays", CallerQuestion.HOURS_OR_PLACE),
        ("where are you located", CallerQuestion.HOURS_OR_PLACE),
        ("sorry what", CallerQuestion.REPEAT),
        ("Hmm, what?", CallerQuestion.REPEAT),
        ("can you repeat that", CallerQuestion.REPEAT),
        ("i didn't catch that", CallerQuestion.REPEAT),
    ],
)
def test_questions_callers_ask(said: str, question: CallerQuestion) -> None:
    assert find_question(said) is question


@pytest.mark.parametrize(
    "said",
    [
        "my name is maria",
        "my kitchen sink is leaking",
        "yes this number is fine",
        "it's pretty urgent",
        "i don't know how long it's been leaking",
        "please don't text me, just call",
        "i'm calling about my water heater",
        "it's an emergency",
        "",
        "🙂",
    ],
)
def test_statements_are_not_questions(said: str) -> None:
    assert find_question(said) is None


def test_asking_for_the_business_by_name() -> None:
    assert find_question("hello is this acme plumbing", "Acme Plumbing") is CallerQuestion.WHO
    assert find_question("hello is this acme plumbing") is None
    assert find_question("is this bright spark", "Acme Plumbing") is None


def test_answers_are_short_true_and_from_the_configuration() -> None:
    for question in CallerQuestion:
        said = answer(question, ACME)
        for sentence in re.split(r"(?<=[.?!])\s+", said):
            assert len(sentence) <= 120, sentence
        spoken = said.casefold()
        assert not re.search(r"\bhuman\b|\breal person\b|\bnot a (bot|robot)\b", spoken)
        assert not re.search(r"\$|\bdollars?\b|\bfree\b|\bdiscount", spoken)
    assert "automated assistant for Acme Plumbing" in answer(CallerQuestion.AUTOMATED, ACME)
    assert "Acme Plumbing" in answer(CallerQuestion.WHO, ACME)
    assert "automated" in answer(CallerQuestion.WHO, ACME)
    assert "within 30 minutes" in answer(CallerQuestion.CALLBACK_TIME, ACME)
    assert "water heaters" in answer(CallerQuestion.SERVICES, ACME)
    assert "can't give prices" in answer(CallerQuestion.PRICE, ACME)
    assert answer(CallerQuestion.REPEAT, ACME) == ""


def test_the_texts_answer_says_how_many_and_that_it_is_the_callers_choice() -> None:
    said = answer(CallerQuestion.TEXTS, ACME)
    assert "up to 2 texts" in said
    assert "your choice" in said
    one = answer(CallerQuestion.TEXTS, CallContext("Acme", "", "soon", "+15125550142", 1))
    assert "one text" in one
    unknown = answer(CallerQuestion.TEXTS, CallContext("Acme", "", "soon", "+15125550142"))
    assert "texts" in unknown and not re.search(r"\d", unknown)


def test_no_services_configured_promises_nothing() -> None:
    bare = CallContext("Acme Plumbing", "", "within the hour", "+15125550142")
    assert answer(CallerQuestion.SERVICES, bare) == (
        "The team can tell you what they handle when they call you back."
    )
