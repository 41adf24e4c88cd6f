"""Whisper's prompt for each kind of answer: answers of that kind, written out as they are said.

Whisper continues its prompt's style, so a prompt of names makes it write names, and a prompt of
numbers in words makes it write every digit said ("five five five", where unprompted it writes
"55"). The session prompts with the kind of answer the question just asked wants
(`AnswerKind`); a problem is prompted with the business's keyterms (its name and services).

No prompt holds a yes or a no, and a question that wants one (`AnswerKind.ANY`, the consent
question above all) is never prompted, so nothing here can tilt how a consent answer is heard.
The prompts' names, numbers and streets are none of those in ``tests/data/caller_lines.yaml``,
where they are measured (``bench/ears.py``), nor the personas'. No prompt writes words into
silence, line noise, babble, breaths or knocks (``tests/test_whisper.py``; 0 of 40 noises
each, measured).
"""

from __future__ import annotations

from collections.abc import Sequence

from media_stream.ports import AnswerKind

NUMBER_PROMPT = (
    "My number is five one two, double five, five zero one nine nine. "
    "Call me back on four one five, five five five, two two three four."
)
"""Also the prompt when a phone number is heard again: numbers written out as said."""

NAME_PROMPT = (
    "My name is Declan Ellis. It's Anika Sharma. This is Wei Zhang calling. Kofi Boateng. "
    "It's Ingrid, Ingrid Olsen. Mateo Rossi. It's Siobhan Gallagher. Hi, this is Arjun Mehta."
)
"""Eight names as callers give them (three heard no better than one; eight than five)."""

ADDRESS_PROMPT = "I'm at 1420 Maple Street. It's 87 Birch Lane, apartment 4."


def prompt_for(answer: AnswerKind, keyterms: Sequence[str] = ()) -> str | None:
    """Whisper's prompt for an answer of this kind, or None (hear it with no prompt)."""
    if answer is AnswerKind.NAME:
        return NAME_PROMPT
    if answer is AnswerKind.PHONE_NUMBER:
        return NUMBER_PROMPT
    if answer is AnswerKind.ADDRESS:
        return ADDRESS_PROMPT
    if answer is AnswerKind.PROBLEM and keyterms:
        return ", ".join(keyterms) + "."
    return None
