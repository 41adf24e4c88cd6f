"""Whisper's answer prompts favour no yes or no; only numbers and problems are prompted."""

from __future__ import annotations

from media_stream import AnswerKind
from media_stream.answer_prompts import NUMBER_PROMPT, prompt_for
from voice_agent.consent.classifier import ConsentAnswer, classify_answer


def test_no_run_of_the_number_prompts_words_is_a_yes_or_a_no() -> None:
    words = NUMBER_PROMPT.split()
    for start in range(len(words)):
        for end in range(start + 1, len(words) + 1):
            assert classify_answer(" ".join(words[start:end])) is ConsentAnswer.UNCLEAR


def test_a_phone_number_and_a_problem_are_prompted() -> None:
    keyterms = ("Acme Plumbing", "water heaters")
    assert prompt_for(AnswerKind.PHONE_NUMBER, keyterms) == NUMBER_PROMPT
    assert prompt_for(AnswerKind.PROBLEM, keyterms) == "Acme Plumbing, water heaters."


def test_names_addresses_yes_or_no_and_a_problem_with_no_keyterms_are_heard_unprompted() -> None:
    keyterms = ("Acme Plumbing",)
    for kind in (AnswerKind.NAME, AnswerKind.ADDRESS, AnswerKind.ANY):
        assert prompt_for(kind, keyterms) is None
    assert prompt_for(AnswerKind.PROBLEM, ()) is None
