"""What a speech recogniser heard, made easy to read: one clean line and its words.

Every reader of the caller's speech in this room (emergencies, topics, numbers in words, the
caller's questions, the message's slots) works on the same words: NFKC, control characters gone,
plain apostrophes, lower case, punctuation kept as clause boundaries, fillers ("um", "uh") left
out. Only the first ``MAX_READ_CHARS`` characters are read, so a hostile transcript costs no more
than an ordinary one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

MAX_READ_CHARS = 600

FILLERS = frozenset(
    {"um", "umm", "uh", "uhh", "uhm", "er", "erm", "ah", "ahh", "hmm", "hm", "mm", "mmm"}
)
BOUNDARIES = frozenset(".,!?;:")


def word_set(listing: str) -> frozenset[str]:
    """The words of ``listing`` (separated by white space), lower case."""
    return frozenset(listing.casefold().split())


NEGATIONS = word_set(
    """no not never nothing without don't doesn't didn't isn't aren't wasn't weren't ain't
    can't cannot won't haven't hasn't dont doesnt didnt isnt arent wasnt cant wont"""
)
# words that may stand between a negation and what it negates: "not really urgent", "no sparks"
_NEGATION_BRIDGES = word_set(
    "any a an the really much that too so very real super more longer of sign"
)

# "the sink's leaking" reads "the sink is leaking"; these stay whole words
_KEPT_CONTRACTIONS = word_set(
    "it's that's there's what's who's here's he's she's let's where's how's"
)
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'"})
_TOKEN = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)+|[^\W_]+(?:'[^\W_]+)*|[.,!?;:]")


@dataclass(frozen=True)
class Word:
    """One word (or boundary mark) of an utterance; ``start``/``end`` index its clean text."""

    text: str  # lower case
    start: int
    end: int


@dataclass(frozen=True)
class Utterance:
    """An utterance cleaned for reading: its text and its words, fillers left out."""

    text: str
    words: tuple[Word, ...]

    @cached_property
    def tokens(self) -> tuple[str, ...]:
        return tuple(word.text for word in self.words)

    def span(self, first: int, last: int) -> str:
        """The clean text from word ``first`` to word ``last`` (inclusive)."""
        return self.text[self.words[first].start : self.words[last].end]


def clean(text: str) -> str:
    """``text`` on one line: NFKC, control and format characters removed, plain apostrophes."""
    normalised = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    visible = "".join(
        " " if unicodedata.category(char).startswith("C") else char for char in normalised
    )
    return " ".join(visible.split())


@lru_cache(maxsize=256)
def read(text: str) -> Utterance:
    """The utterance's clean text (at most ``MAX_READ_CHARS``) and its words (read once: the
    same words are asked about by several readers in one turn)."""
    cleaned = clean(text[: MAX_READ_CHARS * 2])[:MAX_READ_CHARS]
    words: list[Word] = []
    for match in _TOKEN.finditer(cleaned):
        token, start, end = match.group().casefold(), match.start(), match.end()
        if token in FILLERS:
            continue
        if token.endswith("'s") and token not in _KEPT_CONTRACTIONS and len(token) > 3:
            words += [Word(token[:-2], start, end - 2), Word("is", end - 2, end)]
        else:
            words.append(Word(token, start, end))
    return Utterance(cleaned, tuple(words))


def has_words(text: str) -> bool:
    """Whether ``text`` holds anything a person could have said (a letter or a digit)."""
    return any(char.isalnum() for char in text)


class Phrases:
    """A set of word sequences ("gas smell", "smell of gas"), found fast in a word list."""

    def __init__(self, listing: str | Iterable[str]) -> None:
        items = re.split(r"[|\n]", listing) if isinstance(listing, str) else list(listing)
        self._by_first: dict[str, list[tuple[str, ...]]] = {}
        for item in items:
            phrase = tuple(item.casefold().split())
            if phrase:
                self._by_first.setdefault(phrase[0], []).append(phrase)
        self._last_tokens: Sequence[str] | None = None  # the last words searched, and what
        self._last_found: tuple[tuple[int, int], ...] = ()  # was found: readers share words
        for phrases in self._by_first.values():
            phrases.sort(key=len, reverse=True)  # the longest phrase at a place wins

    def at(self, tokens: Sequence[str], index: int) -> int:
        """The length of the longest phrase starting at ``tokens[index]``, 0 if none does."""
        for phrase in self._by_first.get(tokens[index], ()):
            if tuple(tokens[index : index + len(phrase)]) == phrase:
                return len(phrase)
        return 0

    def find(self, tokens: Sequence[str]) -> list[tuple[int, int]]:
        """Every (start, end) where a phrase occurs, in order, longest first at a place."""
        if tokens is self._last_tokens:
            return list(self._last_found)
        found: list[tuple[int, int]] = []
        by_first = self._by_first
        for index, token in enumerate(tokens):
            for phrase in by_first.get(token, ()):
                end = index + len(phrase)
                if len(phrase) == 1 or tuple(tokens[index:end]) == phrase:
                    found.append((index, end))
                    break
        self._last_tokens, self._last_found = tokens, tuple(found)
        return found

    def first(self, tokens: Sequence[str], *, plain: bool = False) -> tuple[int, int] | None:
        """The first occurrence (with ``plain``: the first one not negated)."""
        for start, end in self.find(tokens):
            if not plain or not negated(tokens, start):
                return start, end
        return None

    def occurs(self, tokens: Sequence[str], *, plain: bool = False) -> bool:
        return self.first(tokens, plain=plain) is not None


def negated(tokens: Sequence[str], start: int) -> bool:
    """Whether the words just before ``tokens[start]`` negate it: "no smoke", "isn't leaking",
    "not really urgent". Deliberately near-sighted: "I don't know, I smell gas" is not negated."""
    before = list(tokens[max(0, start - 3) : start])
    if before and before[-1] in NEGATIONS:
        return True
    if len(before) >= 2 and before[-1] in _NEGATION_BRIDGES and before[-2] in NEGATIONS:
        return True
    return (
        len(before) == 3
        and before[-1] in _NEGATION_BRIDGES
        and before[-2] in _NEGATION_BRIDGES
        and before[-3] in NEGATIONS
    )


def clauses(tokens: Sequence[str]) -> list[tuple[int, int]]:
    """The (start, end) of each run of words between boundary marks."""
    spans: list[tuple[int, int]] = []
    start = 0
    for index, token in enumerate(tokens):
        if token in BOUNDARIES:
            if index > start:
                spans.append((start, index))
            start = index + 1
    if start < len(tokens):
        spans.append((start, len(tokens)))
    return spans
