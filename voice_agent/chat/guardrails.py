"""Guardrails: deterministic checks on everything a language model wants to say to a caller.

A model's reply is screened sentence by sentence before anything is spoken (so streaming speech
stays safe), and its bookkeeping is checked before it can end the message:

- it never claims or implies to be a person (a personal name, "I'm a real person", "I'm not a
  robot"): such a sentence is replaced by a plain statement that this is an automated assistant;
- it never quotes prices, discounts or free work, nor promises arrival, appointment or callback
  times the business did not configure: such a sentence is replaced by a deferral to the team;
- it never talks about text messages, SMS, consent or opting in or out: the Conversation reads the
  versioned consent script itself, verbatim, so any such sentence is dropped;
- it never says goodbye or ends the call: the Conversation does that after the consent question;
- when the caller describes a danger (gas, carbon monoxide, smoke or fire, sparks or a burning
  smell, flooding, no heat in a freeze — the scripted interviewer's own detector,
  :mod:`voice_agent.chat.emergencies`) the reply opens with that danger's fixed safety line
  (call 911 or the gas company first), once per kind of danger, and the message is flagged as an
  emergency, for good;
- a reply is at most ``MAX_REPLY_WORDS`` words, and the model can finish the message only once the
  caller's name, need and callback number are recorded.

The checks are plain patterns that err on the side of dropping a sentence: a dropped sentence costs
a little naturalness, a spoken one can cost the business a promise or the caller their trust.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from voice_agent.chat.emergencies import Emergency, detect_emergency
from voice_agent.chat.port import CallContext, CallerMessage, MessageField, Urgency

logger = logging.getLogger(__name__)

EMERGENCY_ADVICE = "If you're in danger, hang up and call 911 or your utility's emergency line."
MAX_REPLY_WORDS = 60
REQUIRED_FIELDS = (MessageField.CALLER_NAME, MessageField.NEED, MessageField.CALLBACK_NUMBER)

_FLAGS = re.IGNORECASE | re.VERBOSE

_TEXTING = re.compile(
    r"""\b(?:
        texts? | texting | texted | sms | consent\w* | opt(?:s|ed|ing)?[\s-]*(?:in|out)
      | (?:un)?subscri\w* | data\s+rates | rates\s+may\s+apply | reply\s+(?:stop|help|yes|y)
      | message\s+you | send\s+you\s+(?:a\s+|an\s+)?(?:message|confirmation|link|reminder|update)s?
    )\b""",
    _FLAGS,
)

_EMERGENCY_LINE = re.compile(r"\b(?:911|nine\s+one\s+one|emergency\s+(?:line|services))\b", _FLAGS)

_FAREWELL = re.compile(
    r"""\b(?:
        good\s*-?\s*bye | bye | farewell | take\s+care
      | have\s+a\s+(?:good|great|nice|wonderful|lovely|safe)\s+
            (?:day|night|evening|afternoon|one|weekend)
      | talk\s+(?:to\s+you\s+)?soon | hang(?:ing)?\s+up | end(?:ing)?\s+(?:the|this|our)\s+call
      | disconnect\w*
    )\b""",
    _FLAGS,
)

_HUMAN_CLAIM = re.compile(
    r"""
        \bi(?:'m|\s+am)\s+(?:a\s+|an\s+)?(?:real|actual|live|genuine)\b
      | \bi(?:'m|\s+am)\s+(?:a\s+)?(?:person|human|human\s+being)\b
      | \bi(?:'m|\s+am)\s+(?:not|no)\s+(?:a\s+|an\s+)?
            (?:robot|bot|machine|computer|ai|a\.i\.|program|recording|automated|virtual|artificial)
      | \b(?:not|no)\s+(?:a\s+|an\s+)?(?:robot|bot|machine|computer|recording)\b
      | (?<!not\s)(?<!n't\s)\b(?:talking|speaking)\s+(?:to|with)\s+(?:a\s+)?(?:real|live|actual)\s+
            (?:person|human)
      | \bmy\s+name(?:\s+is|'s)\b
      | \bi\s+(?:work|live)\s+(?:at|for|in|here|there)\b
      | \bi(?:'ll|\s+will)\s+(?:personally|come|drive|head)\b
    """,
    _FLAGS,
)
_PERSONA_NAME = re.compile(
    r"(?i:\b(?:this\s+is|i'm|i\s+am))\s+(?P<name>[A-Z][a-z]+)\b"
    r"|^(?P<signed>[A-Z][a-z]+)\s+(?i:here|speaking)\b"
)
_NOT_NAMES = frozenset(
    [
        "a",
        "an",
        "the",
        "your",
        "our",
        "just",
        "only",
        "here",
        "sorry",
        "happy",
        "glad",
        "afraid",
        "unable",
        "not",
        "automated",
        "sure",
        "calling",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ]
)

_PRICE = re.compile(
    r"""
        [$€£]\s*\d | \b\d[\d,.]*\s*(?:dollars?|bucks|usd|cents?)\b | \b(?:dollars?|bucks)\b
      | \bfor\s+free\b | \bfree\s+of\s+charge\b | \b(?:it's|it\s+is|that's|that\s+is|is)\s+free\b
      | \bfree\s+(?:\w+\s+)?(?:estimates?|quotes?|inspections?|service|consultations?|visits?|
            call-?outs?|diagnos\w*|labou?r|parts|repairs?|checks?)\b
      | \bdiscount\w* | \b\d+\s*(?:%|percent)\s+off\b | \bcoupons?\b
      | \b(?:no|zero)\s+(?:charge|cost|fee)\b | \bcharge\s+(?:you|for)\b
      | \bpric(?:e|es|ed|ing)\b | \bcosts?\b | \bfees?\b | \bquot(?:e|es|ed|ing)\b
      | \bestimates?\b | \bcheap\w* | \baffordable\b | \bspecials?\b | \bwarrant\w*
    """,
    _FLAGS,
)

_COMMITMENT = re.compile(
    r"""\b(?:
        be\s+(?:there|over|out|at\s+your|by\s+your)
      | (?:come|coming|get|getting)\s+(?:out|over|by|there|to\s+you)
      | arriv\w* | send(?:ing)?\s+(?:someone|somebody|a\s+\w+|an\s+\w+|out|over)
      | dispatch\w* | on\s+(?:the|their|his|her|my|our)\s+way | out\s+(?:there|to\s+you)
      | schedul\w* | book\w* | appointments? | slots? | visit\w* | fix\s+it
      | call(?:ing)?\s+you\s+back | get(?:ting)?\s+back\s+to\s+you | reach\s+out | hear\s+from
    )\b""",
    _FLAGS,
)
_WHEN = re.compile(
    r"""\b(?:
        \d{1,2}(?::\d{2})?\s*(?:a\.?m\.?|p\.?m\.?|o'clock)
      | (?:by|at|around|before|after|until)\s+
            (?:\d{1,2}|noon|midnight|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\b
      | (?:in|within)\s+(?:the\s+next\s+)?
            (?:an?|the|half\s+an|\d+|a\s+few|one|two|three|five|ten|fifteen|twenty|thirty|forty-five)\s+
            (?:minutes?|mins?|hours?|hrs?|days?)
      | today | tonight | tomorrow | this\s+(?:morning|afternoon|evening|week|weekend)
      | right\s+(?:away|now) | asap | shortly | immediately | first\s+thing
      | (?:mon|tues|wednes|thurs|fri|satur|sun)day
    )\b""",
    _FLAGS,
)
_BOOKED = re.compile(
    r"""\b(?:
        (?:i've|i\s+have|i'll|i\s+will|we've|we\s+have|we'll|we\s+will|you're|you\s+are|you've\s+been)
            \s+(?:\w+\s+)?(?:booked|scheduled|confirmed|book|schedule|reserved?)
      | appointments?\s+(?:is|are|for|at)
    )\b""",
    _FLAGS,
)

_MARKDOWN = re.compile(
    r"[*_#`~>|]+|\[(?=[^\]]*\]\()|\]\([^)]*\)|^\s*(?:[-•]|\d+[.)])\s+", re.MULTILINE
)
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'"})
_WORD = re.compile(r"\S+")


def mentions_danger(caller_said: str | None) -> bool:
    """Whether the caller described a possible danger (the scripted interviewer's detector)."""
    return detect_emergency(caller_said) is not None


def escalate_for_danger(message: CallerMessage, caller_said: str | None) -> Emergency | None:
    """Flag the message as an emergency when the caller described a danger (noting each kind
    once, for the owner); the danger, or None."""
    danger = detect_emergency(caller_said)
    if danger is None:
        return None
    if message.urgency is not Urgency.EMERGENCY:
        logger.info("caller described a danger (%s): message flagged as an emergency", danger.kind)
    message.urgency = Urgency.EMERGENCY
    if danger.kind.value not in message.emergencies:
        message.emergencies.append(danger.kind.value)
        message.notes.append(danger.note)
    return danger


def settled_urgency(current: Urgency | None, proposed: Urgency | None) -> Urgency | None:
    """The urgency after a model proposes one: an emergency, once flagged, is never downgraded."""
    if current is Urgency.EMERGENCY or proposed is None:
        return current
    return proposed


def missing_fields(message: CallerMessage) -> list[MessageField]:
    """The required parts of the message that are still empty."""
    return [part for part in REQUIRED_FIELDS if getattr(message, part.value) is None]


def may_finish(message: CallerMessage) -> bool:
    """Whether the message may end: name, need and callback number are all recorded."""
    return not missing_fields(message)


@dataclass
class ReplyGuard:
    """Screens one reply's sentences in order and remembers what it let through.

    ``opening`` gives what must come first (the safety line when the caller described a danger
    not in ``advised``, the kinds already advised earlier in the call), ``screen`` the speakable
    form of each sentence the model wrote, or None to drop it.
    """

    context: CallContext
    caller_said: str | None
    known_names: Iterable[str] = ()
    advised: Collection[str] = ()
    max_words: int = MAX_REPLY_WORDS
    spoken: list[str] = field(default_factory=list)
    full: bool = False
    _allowed_names: frozenset[str] = field(init=False)
    _advice_given: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._allowed_names = _NOT_NAMES | _name_words(
            [self.context.business_name, *self.known_names]
        )

    @property
    def words(self) -> int:
        return sum(len(_WORD.findall(sentence)) for sentence in self.spoken)

    def opening(self) -> list[str]:
        """The fixed sentences that open this reply (the danger's safety line, when called for)."""
        danger = detect_emergency(self.caller_said)
        if danger is None:
            return []
        self._advice_given = True  # the model's own "call 911" is dropped from here on
        if danger.kind.value in self.advised:
            return []
        return [self.admit(danger.advice)]

    def screen(self, sentence: str) -> str | None:
        """``sentence`` as it may be spoken, a safe replacement, or None to drop it."""
        if self.full:
            return None
        text = speakable(sentence)
        if not text:
            return None
        verdict, replacement = self._judge(text)
        if verdict != "ok":
            logger.warning("guardrail %s: %r", verdict, text[:200])
        if replacement is None or replacement in self.spoken:
            return None
        return self._fitted(replacement)

    def _judge(self, text: str) -> tuple[str, str | None]:
        plain = _plain(text)
        if _TEXTING.search(plain):
            return "texting or consent talk dropped", None
        if _EMERGENCY_LINE.search(plain):
            if self._advice_given:
                return "repeated emergency advice dropped", None
            self._advice_given = True
            return "emergency advice replaced", EMERGENCY_ADVICE
        if _FAREWELL.search(plain):
            return "goodbye dropped", None
        if self._claims_human(text, plain):
            return "claim to be human replaced", self._identity()
        if _PRICE.search(plain):
            return "price talk replaced", self._pricing_deferral()
        if self._promises_time(plain):
            return "time promise replaced", self._timing_deferral()
        return "ok", text

    def _claims_human(self, text: str, plain: str) -> bool:
        if _HUMAN_CLAIM.search(plain):
            return True
        for match in _PERSONA_NAME.finditer(text):
            name = match.group("name") or match.group("signed")
            if name.casefold() not in self._allowed_names:
                return True
        return False

    def _promises_time(self, plain: str) -> bool:
        if _BOOKED.search(plain):
            return True
        configured = _plain(self.context.callback_time).casefold()
        unconfigured = plain.casefold().replace(configured, " ") if configured else plain
        return bool(_COMMITMENT.search(unconfigured) and _WHEN.search(unconfigured))

    def _fitted(self, text: str) -> str | None:
        """``text`` if it fits in the word budget; the first sentence is cut to fit instead."""
        budget = self.max_words - self.words
        words = _WORD.findall(text)
        if len(words) <= budget:
            return self.admit(text)
        self.full = True
        if self.spoken:
            logger.warning("reply over %d words: the rest is dropped", self.max_words)
            return None
        logger.warning("sentence over %d words: cut", self.max_words)
        return self.admit(" ".join(words[:budget]).rstrip(",;:-") + ".")

    def admit(self, text: str) -> str:
        """Count ``text`` (our own words, not screened) as spoken in this reply."""
        self.spoken.append(text)
        return text

    def _identity(self) -> str:
        return f"Just so you know, I'm an automated assistant for {self.context.business_name}."

    def _pricing_deferral(self) -> str:
        return "The team can go over pricing when they call you back."

    def _timing_deferral(self) -> str:
        return (
            f"Someone from {self.context.business_name} will call you back "
            f"{self.context.callback_time}."
        )


def speakable(text: str) -> str:
    """``text`` ready for a voice: no markdown, links, emoji or control characters; one line."""
    normalised = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    without_links = _URL.sub(" ", _MARKDOWN.sub(" ", normalised))
    kept = "".join(
        " " if unicodedata.category(char)[0] in "CS" and char not in "$€£%" else char
        for char in without_links
    )
    return " ".join(kept.split())


def _plain(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).split())


def _name_words(names: Iterable[str]) -> frozenset[str]:
    return frozenset(
        word.casefold() for name in names for word in re.findall(r"[^\W\d_]+", name or "")
    )
