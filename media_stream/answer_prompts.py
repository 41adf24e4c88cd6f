"""Whisper's prompt for each kind of answer: what the question just asked wants, said its way.

Whisper continues its prompt's style: prompted with numbers in words, it writes every digit
said ("five five five", where unprompted it writes "55"); prompted with the business's keyterms
(its name and services), it writes its trade words ("clogged", not "cloud"). The session prompts
for the kind of answer the question just asked wants (`AnswerKind`).

Names and addresses are heard with no prompt. A prompt of names heard the 40 names of
``tests/data/caller_lines.yaml`` better (whole names 22 → 32 %), but on the personas' own lines
no better (36 → 35 of 48), and there it wrote its own names into six answers ("Hi, this is
Ingrid" for "Hi, this is Chris Allen") and a "Good." after three: a name made up is worse than
a name misheard, which the caller can be asked again. A street in the prompt leaked the same
way ("eighty Birch Way" heard as "80 Birch Lane").

No prompt holds a yes or a no, and a question that wants one (`AnswerKind.ANY`, the consent
question above all) is never prompted, so nothing here can tilt how a consent answer is heard.
"""

from __future__ import annotations

from collections.abc import Sequence

from media_stream.ports import AnswerKind

NUMBER_PROMPT = (
    "My number is five one two, double five, five zero one nine nine. "
    "Call me back on four one five, five five five, two two three four."
)
"""Also the prompt when a phone number is heard again: numbers written out as said."""


def prompt_for(answer: AnswerKind, keyterms: Sequence[str] = ()) -> str | None:
    """Whisper's prompt for an answer of this kind, or None (hear it with no prompt)."""
    if answer is AnswerKind.PHONE_NUMBER:
        return NUMBER_PROMPT
    if answer is AnswerKind.PROBLEM and keyterms:
        return ", ".join(keyterms) + "."
    return None
