"""What kind of answer the assistant's question wants, read from what it said.

The transcriber listens for that kind (`media_stream.AnswerKind`: the embedded Whisper is
prompted with answers of the kind). It is read from the words, so it works for the scripted
interviewer and the language model alike: the last question said decides. A question that
checks something ("Is that right?", "Is the number you're calling from the best one?") wants a
yes or a no, and anything not recognised wants `AnswerKind.ANY`: heard with nothing favoured.
"""

from __future__ import annotations

import re

from media_stream import AnswerKind, split_sentences
from voice_agent.chat.caller_text import clean

_CHECKING = frozenset(
    ["is", "are", "was", "were", "am", "do", "does", "did", "have", "has", "had", "shall", "should"]
)
"""A question opening with one of these wants a yes or a no ("Is that your name?"); one opening
with "can", "could", "may" or "would" is often a request ("Can I get your name?")."""

_WANTS = (
    (AnswerKind.NAME, re.compile(r"\bname\b")),
    (AnswerKind.PHONE_NUMBER, re.compile(r"\b(phone|number)\b")),
    (AnswerKind.ADDRESS, re.compile(r"\b(address|where are you located|where is the job)\b")),
    (
        AnswerKind.PROBLEM,
        re.compile(r"\b(help you with|going on|problem|issue|what happened|the trouble)\b"),
    ),
)


def answer_wanted(said: str) -> AnswerKind:
    """The kind of answer the last question in ``said`` wants."""
    questions = [s for s in split_sentences(said) if s.rstrip().endswith("?")]
    if not questions:
        return AnswerKind.ANY
    question = clean(questions[-1]).lower()
    words = re.findall(r"[a-z']+", question)
    if not words or words[0] in _CHECKING:
        return AnswerKind.ANY
    for kind, pattern in _WANTS:
        if pattern.search(question):
            return kind
    return AnswerKind.ANY
