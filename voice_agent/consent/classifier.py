"""The deterministic classifier for the caller's answer to the SMS consent question.

After the consent script ("…would it be okay if Acme Plumbing texts you…? Sound good?") the
caller's transcribed answer is classified as ``affirmative``, ``declined`` or ``unclear``. Only
``affirmative`` can create consent, so the classifier is deliberately conservative: a wrong yes
costs a text the caller never agreed to, an unclear answer costs one re-ask with a keypad option.

The answer is split, longest first, into known phrases and single words, each with a meaning:

* **yes** — an explicit yes-word or yes-phrase: "yes", "sure", "go ahead", "that's fine",
  "text me", "I accept", "you have my permission", "happy to", "count me in", "texts are fine",
  "no problem", "I don't mind" (an idiom whose negation is part of the yes), the misheard
  "yes her" ("yes sir", only as the answer's last words), "shore", "sí"…
* **no** — "no", "nope", "no thanks", "please don't", "I don't want texts", "I'd rather not",
  "not interested", "uh-uh", "call me instead", "opt me out"…; a "yeah" right before a no
  that starts with "no", "nah" or "nope" is part of it ("yeah, no", "yeah nah"), but not before
  a yes that does ("yeah, no problem").
* **hedge** — "maybe", "I guess", "I think", "probably", "not sure", "wait", "actually",
  "never mind"…: a hesitation or a reversal, the whole answer is unclear.
* **condition** — "only if", "as long as", "so long as", "provided", "on condition": the caller
  sets terms on the texts, the whole answer is unclear however it is worded ("only if you don't
  send me ads" says "don't" and is no refusal); the re-ask settles it.
* **ambiguous** — an idiom that is as often a polite no as a yes, or sarcasm: "I'm good",
  "I'm all set", "whatever", "if you want", "not at all", "yeah right", "just great",
  "go on", "you go ahead" (after talking over each other). Never part of a yes.
* **soft yes** — agreement idioms that only stand next to an explicit yes: "why not",
  "no worries", "no doubt" ("sure, why not" is a yes; "why not" alone may be a question whose
  "?" the recogniser dropped). Next to a no they make the answer unclear.
* **courtesy** — harmless next to a yes or a no, meaningless alone: "please", "thanks", "bye",
  "great", "perfect", "right", "correct", backchannels ("uh-huh", "mm-hmm"), "that's okay",
  "it's fine", "all good", "I mean", "text", "my cell", "this number"… "right", "please" and a
  bare "that's" are never agreement on their own: phone-audio speech recognition turns "not
  right now" into "That's right, so." and "please don't" into "Please note it."; "great" or
  "perfect" alone may be sarcasm ("oh, great").
* **other** — any other word: a condition ("only", "if", "but", "unless", "email"), a question
  word, a stray "not", a name, a number, "sorry", "can", "will", "is"… It blocks a yes and does
  not block a no.

The answer is then:

* ``unclear`` if it is empty or longer than :data:`MAX_ANSWER_WORDS` words, holds a hedge or
  a condition, or
  opens with a question word that is not part of a known phrase ("can you text me", "what
  texts", "how do I stop them", but not "can do" or "do it") — with or without a question mark;
* ``unclear`` if it says yes and no ("no wait yes", "sure, no"), or no next to a soft yes
  ("nah, no worries");
* ``declined`` if it says no and no yes (an ambiguous idiom or other words beside it do not
  matter: "nah, I'm good", "no, call me instead");
* ``affirmative`` if it says yes, every other part is a soft yes or courtesy, it holds no
  question mark and it does not end on a word that leaves the sentence open ("yes, thank you
  for", "sure, the": the recogniser cut the caller off, and the rest may have been "but…");
* ``unclear`` otherwise.

A yes-phrase with a negation shortly before it ("I don't think that's fine", "I'm not happy
to") or "not" right after it ("absolutely not") counts as no, never as yes.

Normalisation: Unicode NFKC (full-width and mathematical letters become plain ones; letters of
other scripts that look like Latin ones do not, so "уes" with a Cyrillic "у" is not a yes),
case folding, typographic apostrophes and hyphens, control and format characters, emoji and
punctuation, "%" as "percent", filler words ("um", "uh", "well", "so"), repeated letters
("yesss", "nooo"), backchannels written apart ("uh huh", "mm hmm"), hyphenated words (kept
whole when known, "uh-huh", else split) and common contractions ("do not" → "don't",
"thats" → "that's"). Work is linear in the input length.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum, StrEnum
from itertools import product

CLASSIFIER_NAME = "rules"
CLASSIFIER_VERSION = "3"

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
    CONDITION = "condition"  # terms set on the texts: the whole answer is unclear
    AMBIGUOUS = "ambiguous"  # an idiom that may mean yes or no, or sarcasm: never agreement
    SOFT_YES = "soft yes"  # agreement next to an explicit yes; unclear alone or next to a no
    COURTESY = "courtesy"  # harmless next to a yes or a no, meaningless on its own
    OTHER = "other"  # anything else: blocks a yes, does not block a no


_YES_PHRASES = """
yes | yeah | yea | yeh | yah | ya | yep | yup | yeap | yas | yessir | yes sir | yes ma'am | yes her
yes indeed | indeed | sure | surely | shore | shure | sure thing | shore thing | for sure | okay
ok | okey | okie | okey dokey | okie dokie | okay dokey | o k | alright | all right | all rite
alrighty | okie doke | okey doke | i'd like to | i'd love to
absolutely | definitely | most definitely | certainly | of course | of coarse | totally | fine
agreed | i agree | i consent | i accept | accept | affirmative | you bet | you betcha
by all means | please do | do it | can do | will do | let's do it | let's do that
go ahead | go a head | go right ahead | go for it | go on then | be my guest | feel free
fire away | you got it | right on | hell yes | hell yeah | heck yes | heck yeah
you can | you may | yes you can | yes you may | that works | it works | works for me
that works for me | works fine | texting works | works better
sounds good | sounds great | sounds fine | sounds perfect | sounds lovely | sounds awesome
sounds good to me | sounds like a plan | sound good | that sounds good | that sounds great
that's fine | that's great | that's good | that's perfect | that's fine with me
that's okay with me | that's ok with me | that's all right with me | that's alright with me
okay with me | ok with me | fine with me | fine by me | okay by me | ok by me | good with me
cool with me | fine with that | okay with that | ok with that | perfectly fine | totally fine
is fine | are fine | is good | are good | is great | is okay | is ok | is better | is perfect
that'll work | i'd like | i'd love | i'd like that | i'd love that | i'd appreciate that
i'd appreciate it | happy to | i'm happy to | i'd be happy to | more than happy to | glad to
i'd be glad to | i'm glad to | i'm all for it | i'm down | i'm in | count me in | sign me up
opt me in | opt in | i opt in | text me | you can text me | please text me | tex me | text away
shoot me a text | send them | send me | send it | send them over | send em | send em over
i give my permission | i give you permission | i give permission | you have my permission
you have permission | permission granted | a hundred percent | hundred percent
one hundred percent | 100 percent | no problem | no problemo | no prob | not a problem
that's no problem | no problem with that | have no problem | got no problem | no issue
no issues | no objection | no objections | i have no objection | no objections here
i don't mind | don't mind | i don't really mind | don't really mind | don't mind at all
i wouldn't mind | wouldn't mind | i don't see why not | don't see why not | i can't see why not
can't see why not | doesn't bother me | that doesn't bother me | it doesn't bother me
don't have a problem | i don't have a problem | don't see a problem | i don't see a problem
don't see any problem | i don't see any problem
i wouldn't say no | wouldn't say no | sorry yes | sorry yeah | sí | si | claro | claro que sí
por supuesto | oui | ja
"""

_NO_PHRASES = """
no | nope | nah | naw | negative | never | no no | hell no | heck no | no way | no thanks
no thank you | don't | i don't | please don't | no i don't | don't text | don't text me
don't message me | don't send | don't send me | don't send anything | i don't want
don't want | i don't want texts | i don't think | no texts | no text | no texting
no text messages | no messages | not interested | i'm not interested | rather not
i'd rather not | prefer not | i'd prefer not | i'd rather you didn't | rather you didn't
i'd rather you not | prefer you didn't | i'd prefer you didn't | not really | not now
not right now | not today | not at this time | not at the moment | not for me | not necessary
no need | no need to text | no need to text me | no need to send | don't bother | pass | i'll pass
i decline | decline | i refuse | stop | unsubscribe | opt out | opt me out | take me off
call me instead | call instead | just call | just call me | i'd rather you call
rather you called | rather you call | rather you just call | rather get a call
i'd prefer a call | prefer a call | prefer a phone call | not comfortable | wouldn't like
wouldn't want | won't need | won't be needing | won't be necessary | won't work
doesn't work | you can't | not a chance | fat chance | no chance | not a fan
uh-uh | nuh-uh | unh-unh | non | nein
"""

_HEDGE_PHRASES = """
maybe | perhaps | possibly | probably | might | could be | guess | suppose | reckon | i think
i believe | believe so | i'd say | i would think | i don't know | don't know | dunno | idk
not sure | i'm not sure | not really sure | not too sure | unsure | not certain | kind of | kinda
sort of | sorta
depends | it depends | let me think | think about it | i'll think about it | let me check
wait | hold on | hang on | actually | on second thought | second thought | scratch that
never mind | nevermind | doesn't matter | should be | i mean no | no entiendo | no hablo
no comprendo | leaning
"""

_CONDITION_PHRASES = """
only if | as long as | so long as | provided | providing | on condition | on one condition
"""

_AMBIGUOUS_PHRASES = """
i don't care | don't care | i don't really care | whatever | i'm good | i'm okay | i'm ok
i'm fine | i'm all set | all set | if you want | if you must | not at all | mm-mm
no i don't mind | nope i don't mind | no don't mind | nope don't mind | no i wouldn't mind
yeah right | yea right | yeh right | sure right | just great | just perfect
just wonderful | just lovely | just fantastic | just what i need | just what i needed
go on | you go ahead | you go first | suit yourself | knock yourself out
"""

_SOFT_YES_PHRASES = """
why not | no worries | no doubt | no complaints
"""

_COURTESY_PHRASES = """
that's okay | that's ok | that's alright | that's all right | it's okay | it's ok
it's alright | it's all right | it's fine | all good | that's all good | it's all good
está bien | por favor | uh-huh | mm-hmm | i mean | you know | at all | even better
thank you | thanks so much | thank you so much | have a good day | have a nice day
"""

_BLOCKING_PHRASES = """
right now | that's it | that's all | don't mind me
"""

_COURTESY_WORDS = """
please pls thanks thank thankyou thx you very much that that's this it it's i i'm i've me my
we the a to at on for and with by then too also just really totally perfectly even better
great good perfect cool nice awesome excellent wonderful lovely brilliant fantastic amazing
super helpful useful right correct text texts texting message messages update updates them
those these get getting receive receiving send number cell phone mobile whenever anytime
sir ma'am maam mam man guys buddy mate y'all hey hi bye goodbye cheers gracias mhm
"""

_EVALUATIVE = "great fine good perfect helpful nice lovely awesome brilliant wonderful excellent"
_EVALUATIVE += " amazing fantastic super useful okay ok alright"
_AT_EASE = "okay ok fine good cool happy alright comfortable"
_AT_EASE_WITH = ["that", "it", "this", "texts", "those", "them", "the texts", "you texting me"]

_QUESTION_WORDS = """
what what's how how's why who who's whom whose when where which can could will would do does did
is are was were should shall am may huh
"""

_DANGLING_WORDS = "the a to for and with at on by of my i i'm i've we just also get getting receive"
"""Words an answer does not end on unless the recogniser cut the caller off ("yes, thank you
for", "sure, the"): the rest, which might have been "but…", was never heard."""

_FILLERS = "um umm uh uhm er erm ah oh hmm hm mm well so"
_NEGATIONS = "not don't never won't wouldn't can't isn't doesn't didn't shouldn't ain't"

_YEAH = frozenset({("yeah",), ("yea",), ("yeh",), ("yah",), ("ya",)})
_NO_WORDS = frozenset({"no", "nah", "nope"})

_MISHEARD_ONLY_AT_END = frozenset({("yes", "her")})
"""Phrases that are a misheard yes only as the last words: "yes her" is "yes sir", but "yes,
her phone" is a different number."""

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
    "thatll": "that'll",
    "lets": "let's",
    "yall": "y'all",
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
    ("i", "have"): "i've",
    ("that", "would"): "that'd",
    ("that", "will"): "that'll",
}

_JOINED_BACKCHANNELS = {
    ("uh", "huh"): "uh-huh",
    ("mm", "hmm"): "mm-hmm",
    ("mm", "hm"): "mm-hmm",
    ("nuh", "uh"): "nuh-uh",
}

_APOSTROPHES = str.maketrans(
    {"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "′": "'", "‐": "-", "‑": "-"}
)
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
_DOTTED_OK = re.compile(r"\bo\.\s?k\b\.?")
_REPEATED_LETTER = re.compile(r"(.)\1+")


def _phrases(text: str) -> Iterator[str]:
    for phrase in re.split(r"[|\n]", text.strip()):
        if phrase.strip():
            yield phrase


def _generated_yes_phrases() -> Iterator[str]:
    """ "that'd be great", "that'll be fine", "that'd be really helpful", "I'm okay with it"…"""
    for lead, adjective in product(("that'd be", "that'll be"), _EVALUATIVE.split()):
        yield f"{lead} {adjective}"
        yield f"{lead} really {adjective}"
    for adjective, thing in product(_AT_EASE.split(), _AT_EASE_WITH):
        yield f"i'm {adjective} with {thing}"
        yield f"{adjective} with {thing}"


def _phrase_table() -> dict[tuple[str, ...], _Meaning]:
    table: dict[tuple[str, ...], _Meaning] = {}

    def add(meaning: _Meaning, phrases: Iterable[str], *, generated: bool = False) -> None:
        for phrase in phrases:
            words = tuple(phrase.split())
            if words in table and not (generated and table[words] is meaning):
                raise ValueError(f"phrase listed twice: {phrase.strip()!r}")
            table[words] = meaning

    add(_Meaning.YES, _phrases(_YES_PHRASES))
    add(_Meaning.NO, _phrases(_NO_PHRASES))
    add(_Meaning.HEDGE, _phrases(_HEDGE_PHRASES))
    add(_Meaning.CONDITION, _phrases(_CONDITION_PHRASES))
    add(_Meaning.AMBIGUOUS, _phrases(_AMBIGUOUS_PHRASES))
    add(_Meaning.SOFT_YES, _phrases(_SOFT_YES_PHRASES))
    add(_Meaning.COURTESY, _phrases(_COURTESY_PHRASES))
    add(_Meaning.OTHER, _phrases(_BLOCKING_PHRASES))
    add(_Meaning.YES, _generated_yes_phrases(), generated=True)
    return table


_PHRASES = _phrase_table()
_LONGEST_PHRASE = max(len(words) for words in _PHRASES)
_COURTESY = frozenset(_COURTESY_WORDS.split())
_FILLER_WORDS = frozenset(_FILLERS.split())
_SCOPING_NEGATIONS = frozenset(_NEGATIONS.split())
_QUESTION_OPENERS = frozenset(_QUESTION_WORDS.split())
_DANGLING = frozenset(_DANGLING_WORDS.split())
_QUESTION_MARKS = frozenset("?¿‽⸮؟")  # after NFKC, which also makes "？" and "﹖" a "?"
_LEXICON = (
    frozenset(word for words in _PHRASES for word in words)
    | _COURTESY
    | _FILLER_WORDS
    | frozenset(word for pair in _JOINED_BACKCHANNELS for word in pair)
)


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
    if _opens_like_a_question(matches[0], words):
        return ConsentAnswer.UNCLEAR
    meanings = [_effective_meaning(match, matches, words) for match in matches]
    if _Meaning.HEDGE in meanings or _Meaning.CONDITION in meanings:
        return ConsentAnswer.UNCLEAR
    said_yes = _Meaning.YES in meanings
    said_no = _Meaning.NO in meanings
    if said_no and (said_yes or _Meaning.SOFT_YES in meanings):
        return ConsentAnswer.UNCLEAR
    if said_no:
        return ConsentAnswer.DECLINED
    agreeing = (_Meaning.YES, _Meaning.SOFT_YES, _Meaning.COURTESY)
    whole = not _is_question(text) and not _cut_off(matches[-1], words)
    if said_yes and whole and all(m in agreeing for m in meanings):
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
    folded = cleaned.casefold().translate(_APOSTROPHES).replace("%", " percent ")
    folded = _DOTTED_OK.sub(" ok ", folded)
    raw_words = [part for token in _WORD.findall(folded) for part in _canonical_parts(token)]
    return _contract_pairs(_drop_fillers(_join_backchannels(raw_words)))


def _strip_control_characters(text: str) -> str:
    return "".join(_visible(char) for char in text)


def _visible(char: str) -> str:
    category = unicodedata.category(char)
    if category == "Cf":  # zero-width joiners and direction marks sit inside words
        return ""
    return " " if category.startswith("C") else char


def _canonical_parts(token: str) -> list[str]:
    """A known word as it is ("uh-huh"), else each part of a hyphenated one ("bye-bye")."""
    word = _canonical_word(token)
    if word in _LEXICON or "-" not in token:
        return [word]
    return [_canonical_word(part) for part in token.split("-")]


def _canonical_word(word: str) -> str:
    word = _CONTRACTION_WORDS.get(word, word)
    if word in _LEXICON or len(word) > MAX_WORD_CHARS:
        return word
    return _BY_SQUEEZED.get(_squeeze(word), word)


def _join_backchannels(words: list[str]) -> list[str]:
    """ "uh huh" written apart is the backchannel "uh-huh", not two fillers."""
    joined: list[str] = []
    for word in words:
        pair = (joined[-1], word) if joined else None
        if pair in _JOINED_BACKCHANNELS:
            joined[-1] = _JOINED_BACKCHANNELS[pair]
        else:
            joined.append(word)
    return joined


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


def _opens_like_a_question(first: _Match, words: list[str]) -> bool:
    """ "can you text me", "what texts", "is it free": a question, whatever the punctuation."""
    return first.meaning is _Meaning.OTHER and words[first.start] in _QUESTION_OPENERS


def _cut_off(last: _Match, words: list[str]) -> bool:
    """The answer ends on a word no sentence ends on: the recogniser cut the caller off."""
    single_word = last.end - last.start == 1
    return single_word and last.meaning is _Meaning.COURTESY and words[last.start] in _DANGLING


def _effective_meaning(match: _Match, matches: list[_Match], words: list[str]) -> _Meaning:
    """A yes-phrase within reach of a negation is a refusal; a misheard yes must end it."""
    if match.meaning is not _Meaning.YES:
        return match.meaning
    phrase = tuple(words[match.start : match.end])
    if phrase in _MISHEARD_ONLY_AT_END and match.end < len(words):
        return _Meaning.OTHER
    if phrase in _YEAH and _no_follows(match, matches, words):
        return _Meaning.NO  # "yeah, no" / "yeah nah": a no
    followed_by_not = match.end < len(words) and words[match.end] == "not"
    if followed_by_not or _negation_before(match, matches, words):
        return _Meaning.NO
    return _Meaning.YES


def _no_follows(match: _Match, matches: list[_Match], words: list[str]) -> bool:
    """The next part of the answer is a no that starts with "no", "nah" or "nope"."""
    following = next((other for other in matches if other.start == match.end), None)
    return (
        following is not None
        and following.meaning is _Meaning.NO
        and words[following.start] in _NO_WORDS
    )


def _negation_before(match: _Match, matches: list[_Match], words: list[str]) -> bool:
    """A negation shortly before ``match`` in a no or an unknown word (not inside an idiom
    such as "I don't mind" or "why not")."""
    window_start = max(0, match.start - NEGATION_WINDOW)
    for other in matches:
        if other.end <= window_start or other.start >= match.start:
            continue
        if other.meaning not in (_Meaning.NO, _Meaning.OTHER):
            continue
        reach = words[max(other.start, window_start) : other.end]
        if any(word in _SCOPING_NEGATIONS for word in reach):
            return True
    return False


def _is_question(text: str) -> bool:
    return any(mark in _QUESTION_MARKS for mark in unicodedata.normalize("NFKC", text))
