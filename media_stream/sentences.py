"""Sentences: where speech is cut into pieces that are synthesized, marked and played one by one.

One rule for everything that speaks: a sentence ends at ``.``, ``!``, ``?`` or ``…`` (with any
closing quotes or brackets) followed by white space, or at a line break; a common abbreviation
("Dr.", "St.", "a.m.") does not end one, nor does a decimal point ("1.5").
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n")
_ABBREVIATIONS = frozenset(
    ["mr.", "mrs.", "ms.", "dr.", "st.", "no.", "e.g.", "i.e.", "approx.", "vs.", "a.m.", "p.m."]
)


class SentenceSplitter:
    """Cuts streamed text into whole sentences as soon as each one is complete."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, piece: str) -> list[str]:
        """The sentences completed by ``piece``, in order."""
        self._pending += piece
        sentences: list[str] = []
        start = 0
        for end in _SENTENCE_END.finditer(self._pending):
            candidate = self._pending[start : end.end()].strip()
            if not candidate:
                start = end.end()
                continue
            if candidate.split()[-1].casefold() in _ABBREVIATIONS:
                continue
            sentences.append(candidate)
            start = end.end()
        self._pending = self._pending[start:]
        return sentences

    def flush(self) -> str | None:
        """Whatever is left once the stream ends."""
        rest, self._pending = self._pending.strip(), ""
        return rest or None


def split_sentences(text: str) -> list[str]:
    """The sentences of a whole text, in order."""
    splitter = SentenceSplitter()
    sentences = splitter.feed(text)
    rest = splitter.flush()
    return [*sentences, rest] if rest else sentences
