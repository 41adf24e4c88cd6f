"""The deterministic classifier for the caller's answer to the SMS consent question.

After the consent script ("…would it be okay if Acme Plumbing texts you…? Sound good?") the
caller's transcribed answer is classified as ``affirmative``, ``declined`` or ``unclear``. Only
``affirmative`` can create consent, so the classifier is deliberately conservative:

* An answer is affirmative only when **every** word of it is part of an explicit yes-word or
  yes-phrase ("yes", "sure", "go ahead", "that's fine", "text me"…) or a harmless courtesy word
  ("please", "thanks", "great"…). Any other word — a condition ("only email"), a question
  ("what texts?"), a stray negation, a topic change — makes a yes unclear. "right", "please" and
  a bare "that's" are never agreement on their own: phone-audio speech recognition turns "not
  right now" into "That's right, so." and "please don't" into "Please note it."
* A yes-word with a negation shortly before it ("I don't think that's fine") or "not" right after
  it ("absolutely not") counts as a refusal, never as agreement.
* Hedges and reversals ("maybe", "I guess", "I don't know", "wait", "actually") make the whole
  answer unclear, as does any mix of yes and no ("yeah no", "no wait yes").
* Idioms that mean yes in one mouth and no in another are unclear: "no problem", "no worries",
  "why not", "I don't mind" (they carry a negation that speech recognition may have produced or
  dropped), and "that's okay", "it's fine", "I'm good" (each also a polite way to decline).
  Unclear costs one re-ask with a keypad option; a wrong yes costs a text the caller never
  agreed to.
* An answer with a question mark, or longer than :data:`MAX_ANSWER_WORDS` words, is never
  affirmative.

Normalisation: Unicode NFKC, case folding, typographic apostrophes, control characters, emoji and
punctuation, filler words ("um", "uh", "well", "so"), repeated letters ("yesss", "nooo") and
common contractions ("do not" → "don't", "thats" → "that's"). Work is linear in the input length.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum, StrEnum

CLASSIFIER_NAME = "rules"
CLASSIFIER_VERSION = "1"

MAX_ANSWER_WORDS = 40
"""A longer answer is not a clear answer to a yes-or-no question, so it is never affirmative."""

MAX_WORD_CHARS = 24
"""A longer "word" is noise, not a stretched "yesss"; it is left as it is and matches nothing."""

NEGATION_WINDOW = 4
"""How many words before a yes-phrase a negation still reaches ("I don't think that's fine")."""


class ConsentAnswer(StrEnum):
    """The classified answer to the consent question."""

    AFFIRMATIVE = "affirmative"
    DECLINED = "declined"
    UNCLEAR = "unclear"


class _Meaning(Enum):
    """What a matched word or phrase contributes to the answer."""

    YES = "yes"
    NO = "no"
    HEDGE = "hedge"  # hesitation or a reversal: the whole answer is unclear
    AMBIGUOUS = "ambiguous"  # an idiom that may mean yes or no: never agreement
    COURTESY = "courtesy"  # harmless next to a yes, meaningless on its own
    OTHER = "other"  # anything else: blocks a yes, does not block a no


_YES_PHRASES = """
yes | yeah | yea | yeh | yep | yup | yas | yessir | yes sir | yes ma'am
sure | surely | sure thing | for sure | okay | ok | okey | okie | okey dokey | okie dokie
okay dokey | alright | all right | absolutely | definitely | certainly | of course | fine
agreed | i agree | i consent | affirmative | you bet | by all means | please do | do it
go ahead | go right ahead | go for it | feel free | you can | you may | that works
works for me | that works for me | sounds good | sounds great | sounds fine | sounds perfect
sounds good to me | sounds like a plan | sound good | that sounds good | that sounds great
that's fine | that's great | that's good | that's perfect | that's fine with me
that's okay with me | that's ok with me | that's all right with me | that's alright with me
okay with me | ok with me | fine with me | fine by me | okay by me | ok by me
okay with that | ok with that | fine with that | i'm okay with that | i'm ok with that
i'm fine with that | i'm good with that
that'd be great | that'd be fine | that'd be good | that'd be perfect | that'd be helpful
that'd be nice | i'd like that | i'd love that | text me | you can text me | send them
send me | send it | send them over
"""

_NO_PHRASES = """
no | nope | nah | naw | negative | never | no no | hell no | heck no | no way | no thanks
no thank you | don't | i don't | please don't | no i don't | don't text | don't text me
don't message me | don't send | don't send me | don't send anything | i don't want
don't want | i don't want texts | i don't think | no texts | no text | no texting
no text messages | no messages | not interested | i'm not interested | rather not
i'd rather not | prefer not | i'd prefer not | i'd rather you didn't | rather you didn't
i'd rather you not | not really | not now | not right now | not today
not for me | not necessary | no need | don't bother | pass | i'll pass | i decline | decline
i refuse | stop | unsubscribe | opt out | call me instead | call instead | just call
just call me | i'd rather you call | i'd prefer a call
"""

_HEDGE_PHRASES = """
maybe | perhaps | possibly | probably | might | could be | guess | suppose | i think
i don't know | don't know | dunno | idk
not sure | i'm not sure | unsure | not certain | kind of | kinda | sort of | sorta
depends | it depends | let me think | think about it | i'll think about it | let me check
wait | hold on | hang on | actually | on second thought | second thought | scratch that
never mind | nevermind
"""

_AMBIGUOUS_PHRASES = """
no problem | no problemo | no prob | not a problem | no worries | no doubt | no objection
no objections | why not | i don't see why not | i don't mind | don't mind | i don't really mind
don't really mind | i don't care | don't care | i don't really care | whatever
that's okay | that's ok | that's alright | that's all right | it's okay | it's ok
it's alright | it's all right | it's fine | i'm good | i'm okay | i'm ok | i'm fine | all good
if you want | if you must | not at all | mhm
"""

_COURTESY_WORDS = """
please pls thanks thank thankyou thx you very much that that's this it it's i me my we the a
to at on for and with by is be can could will do go then too also just really totally
great good perfect cool nice awesome excellent wonderful lovely text texts texting message
messages send number cell phone sir ma'am maam mam man guys buddy hey hi
"""

_FILLERS = "um umm uh uhm er erm ah oh hmm hm mm well so"
_NEGATIONS = "not don't never won't wouldn't can't isn't doesn't didn't shouldn't ain't"

_CONTRACTION_WORDS = {
    "dont": "don't",
    "doesnt": "doesn't",
    "didnt": "didn't",
    "wont": "won't",
    "wouldnt": "wouldn't",
    "cant": "can't",
    "cannot": "can't",
    "isnt": "isn't",
    "shouldnt": "shouldn't",
    "aint": "ain't",
    "thats": "that's",
    "its": "it's",
    "im": "i'm",
    "ive": "i've",
    "whats": "what's",
    "thatd": "that'd",
}

_CONTRACTION_PAIRS = {
    ("do", "not"): "don't",
    ("does", "not"): "doesn't",
    ("did", "not"): "didn't",
    ("will", "not"): "won't",
    ("would", "not"): "wouldn't",
    ("can", "not"): "can't",
    ("is", "not"): "isn't",
    ("should", "not"): "shouldn't",
    ("that", "is"): "that's",
    ("it", "is"): "it's",
    ("i", "am"): "i'm",
    ("i", "would"): "i'd",
    ("i", "will"): "i'll",
    ("that", "would"): "that'd",
}

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "′": "'"})
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_DOTTED_OK = re.compile(r"\bo\.\s?k\b\.?")
_REPEATED_LETTER = re.compile(r"(.)\1+")


def _phrase_table() -> dict[tuple[str, ...], _Meaning]:
    table: dict[tuple[str, ...], _Meaning] = {}
    for meaning, phrases in (
        (_Meaning.YES, _YES_PHRASES),
        (_Meaning.NO, _NO_PHRASES),
        (_Meaning.HEDGE, _HEDGE_PHRASES),
        (_Meaning.AMBIGUOUS, _AMBIGUOUS_PHRASES),
    ):
        for phrase in re.split(r"[|\n]", phrases.strip()):
            words = tuple(phrase.split())
            if words in table:
                raise ValueError(f"phrase listed twice: {phrase.strip()!r}")
            table[words] = meaning
    return table


_PHRASES = _phrase_table()
_LONGEST_PHRASE = max(len(words) for words in _PHRASES)
_COURTESY = frozenset(_COURTESY_WORDS.split())
_FILLER_WORDS = frozenset(_FILLERS.split())
_SCOPING_NEGATIONS = frozenset(_NEGATIONS.split())
_LEXICON = frozenset(word for words in _PHRASES for word in words) | _COURTESY | _FILLER_WORDS


def _squeeze(word: str) -> str:
    return _REPEATED_LETTER.sub(r"\1", word)


def _squeezed_lexicon() -> dict[str, str]:
    by_squeezed: dict[str, str] = {}
    for word in sorted(_LEXICON):
        by_squeezed.setdefault(_squeeze(word), word)
    return by_squeezed


_BY_SQUEEZED = _squeezed_lexicon()


@dataclass(frozen=True)
class _Match:
    """One word or phrase of the answer, ``start``/``end`` being word positions."""

    meaning: _Meaning
    start: int
    end: int


def classify_answer(text: str) -> ConsentAnswer:
    """Classify the caller's spoken answer to the consent question; never raises."""
    words = _normalised_words(text)
    if not words or len(words) > MAX_ANSWER_WORDS:
        return ConsentAnswer.UNCLEAR
    matches = _match_phrases(words)
    meanings = [_effective_meaning(match, matches, words) for match in matches]
    if _Meaning.HEDGE in meanings:
        return ConsentAnswer.UNCLEAR
    said_yes = _Meaning.YES in meanings
    said_no = _Meaning.NO in meanings
    if said_yes and said_no:
        return ConsentAnswer.UNCLEAR
    if said_no:
        return ConsentAnswer.DECLINED
    only_yes_and_courtesy = all(m in (_Meaning.YES, _Meaning.COURTESY) for m in meanings)
    if said_yes and only_yes_and_courtesy and not _is_question(text):
        return ConsentAnswer.AFFIRMATIVE
    return ConsentAnswer.UNCLEAR


def classify_keypad(digit: str) -> ConsentAnswer:
    """Classify a keypad press during the re-ask: 1 is yes, 2 is no, anything else unclear."""
    if digit == "1":
        return ConsentAnswer.AFFIRMATIVE
    if digit == "2":
        return ConsentAnswer.DECLINED
    return ConsentAnswer.UNCLEAR


def _normalised_words(text: str) -> list[str]:
    cleaned = _strip_control_characters(unicodedata.normalize("NFKC", text))
    folded = _DOTTED_OK.sub(" ok ", cleaned.casefold().translate(_APOSTROPHES))
    raw_words = [_canonical_word(word) for word in _WORD.findall(folded)]
    return _contract_pairs(_drop_fillers(raw_words))


def _strip_control_characters(text: str) -> str:
    return "".join(_visible(char) for char in text)


def _visible(char: str) -> str:
    category = unicodedata.category(char)
    if category == "Cf":  # zero-width joiners and direction marks sit inside words
        return ""
    return " " if category.startswith("C") else char


def _canonical_word(word: str) -> str:
    word = _CONTRACTION_WORDS.get(word, word)
    if word in _LEXICON or len(word) > MAX_WORD_CHARS:
        return word
    return _BY_SQUEEZED.get(_squeeze(word), word)


def _drop_fillers(words: list[str]) -> list[str]:
    return [word for word in words if word not in _FILLER_WORDS]


def _contract_pairs(words: list[str]) -> list[str]:
    contracted: list[str] = []
    for word in words:
        pair = (contracted[-1], word) if contracted else None
        if pair in _CONTRACTION_PAIRS:
            contracted[-1] = _CONTRACTION_PAIRS[pair]
        else:
            contracted.append(word)
    return contracted


def _match_phrases(words: list[str]) -> list[_Match]:
    """Split the answer into known phrases, longest first, and single words."""
    matches: list[_Match] = []
    position = 0
    while position < len(words):
        match = _longest_phrase_at(words, position)
        matches.append(match)
        position = match.end
    return matches


def _longest_phrase_at(words: list[str], start: int) -> _Match:
    for length in range(min(_LONGEST_PHRASE, len(words) - start), 0, -1):
        meaning = _PHRASES.get(tuple(words[start : start + length]))
        if meaning is not None:
            return _Match(meaning, start, start + length)
    single = _Meaning.COURTESY if words[start] in _COURTESY else _Meaning.OTHER
    return _Match(single, start, start + 1)


def _effective_meaning(match: _Match, matches: list[_Match], words: list[str]) -> _Meaning:
    """A yes-phrase within reach of a negation is a refusal."""
    if match.meaning is not _Meaning.YES:
        return match.meaning
    followed_by_not = match.end < len(words) and words[match.end] == "not"
    if followed_by_not or _negation_before(match, matches, words):
        return _Meaning.NO
    return _Meaning.YES


def _negation_before(match: _Match, matches: list[_Match], words: list[str]) -> bool:
    """A negation shortly before ``match`` that is not inside a hedge or an idiom."""
    window_start = max(0, match.start - NEGATION_WINDOW)
    for other in matches:
        if other.end <= window_start or other.start >= match.start:
            continue
        if other.meaning in (_Meaning.HEDGE, _Meaning.AMBIGUOUS):
            continue
        reach = words[max(other.start, window_start) : other.end]
        if any(word in _SCOPING_NEGATIONS for word in reach):
            return True
    return False


def _is_question(text: str) -> bool:
    return "?" in text or "？" in text or "¿" in text
