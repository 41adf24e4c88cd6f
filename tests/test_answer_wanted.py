"""The kind of answer a question wants, read from what the assistant said."""

from __future__ import annotations

import pytest

from media_stream import AnswerKind
from voice_agent.call.answer_wanted import answer_wanted
from voice_agent.consent.script import render_consent_script


@pytest.mark.parametrize(
    ("said", "wanted"),
    [
        # the scripted interviewer's questions
        ("Thanks for calling Acme Plumbing. What's your name?", AnswerKind.NAME),
        ("Got it. And can I get your name?", AnswerKind.NAME),
        ("Thanks, Maria. What can Acme Plumbing help you with today?", AnswerKind.PROBLEM),
        ("What's the best number to reach you?", AnswerKind.PHONE_NUMBER),
        ("And how urgent is it? Is it an emergency, or can it wait a bit?", AnswerKind.ANY),
        # a language model's wording
        ("Sorry to hear that. Could I get a good phone number for the technician?", "phone number"),
        ("May I have your full name, please?", AnswerKind.NAME),
        ("Okay. What's the address for the job?", AnswerKind.ADDRESS),
        ("Where are you located?", AnswerKind.ADDRESS),
        ("Okay. Is that the number you’re calling from?", AnswerKind.ANY),  # a curly apostrophe
        ("Hi there! What's going on with the furnace?", AnswerKind.PROBLEM),
        ("When would be a good time for us to come by?", AnswerKind.ANY),
        # questions that check something want a yes or a no
        ("Is the number you're calling from, 5 1 2, 5 5 5, 0 1 4 2, the best one?", "any"),
        ("So that's Maria Lopez. Is that your name?", AnswerKind.ANY),
        ("I have 5 1 2 5 5 5 0 1 4 2. Is that right?", AnswerKind.ANY),
        ("Does your name have any other spelling?", AnswerKind.ANY),
        # no question: nothing favoured
        ("Thanks for calling. Goodbye.", AnswerKind.ANY),
        ("", AnswerKind.ANY),
        # the question decides, not an earlier one
        ("What's your name? Actually, first: is anyone hurt?", AnswerKind.ANY),
        ("I have your number. What's your name?", AnswerKind.NAME),
    ],
)
def test_the_last_question_decides_what_answer_is_wanted(said: str, wanted: AnswerKind) -> None:
    assert answer_wanted(said) == wanted


def test_the_consent_script_wants_a_yes_or_a_no() -> None:
    script = render_consent_script("v1", "Acme Plumbing", 2)
    assert answer_wanted(script.text) is AnswerKind.ANY
