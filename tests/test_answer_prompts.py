"""Whisper's answer prompts never favour a yes or a no, and only the wanted kind is prompted."""

from __future__ import annotations

import pytest

from media_stream import AnswerKind
from media_stream.answer_prompts import ADDRESS_PROMPT, NAME_PROMPT, NUMBER_PROMPT, prompt_for
from voice_agent.consent.classifier import ConsentAnswer, classify_answer


@pytest.mark.parametrize("prompt", [NAME_PROMPT, NUMBER_PROMPT, ADDRESS_PROMPT])
def test_no_run_of_a_prompts_words_is_a_yes_or_a_no(prompt: str) -> None:
    words = prompt.split()
    for start in range(len(words)):
        for end in range(start + 1, len(words) + 1):
            assert classify_answer(" ".join(words[start:end])) is ConsentAnswer.UNCLEAR


def test_each_kind_of_answer_has_its_prompt() -> None:
    keyterms = ("Acme Plumbing", "water heaters")
    assert prompt_for(AnswerKind.NAME, keyterms) == NAME_PROMPT
    assert prompt_for(AnswerKind.PHONE_NUMBER, keyterms) == NUMBER_PROMPT
    assert prompt_for(AnswerKind.ADDRESS, keyterms) == ADDRESS_PROMPT
    assert prompt_for(AnswerKind.PROBLEM, keyterms) == "Acme Plumbing, water heaters."


def test_a_yes_or_no_question_and_a_problem_with_no_keyterms_are_heard_unprompted() -> None:
    assert prompt_for(AnswerKind.ANY, ("Acme Plumbing",)) is None
    assert prompt_for(AnswerKind.PROBLEM, ()) is None
