"""What an inbound text asks for: to opt out, for help, to opt back in, or nothing but a message.

Keywords count only as the whole message (Twilio's rule), after case, stray punctuation, emoji
and a polite word or two ("stop please", "STOP!!! 🛑") are set aside. Plain-language revocations
("please stop texting me", "remove me from your list") count too, as the FCC's 2024 rule asks,
but only in phrasings that speak of texts or lists: "Can you stop by tomorrow?", "the leak won't
stop" and "cancel my appointment and rebook" stay messages, and so does "Help me, the basement is
flooding". A bare YES is an opt-in only from a number that opted out, which the inbound handler
decides; here it is a message.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class ReplyIntent(StrEnum):
    """What an inbound text asks for."""

    OPT_OUT = "opt_out"
    HELP = "help"
    OPT_IN = "opt_in"
    MESSAGE = "message"


OPT_OUT_KEYWORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "opt out"}
)
HELP_KEYWORDS = frozenset({"help", "info"})
OPT_IN_KEYWORDS = frozenset({"start", "unstop"})
CONDITIONAL_OPT_IN_KEYWORDS = frozenset({"yes"})

MAX_CLASSIFIED_CHARS = 2000
_POLITE_WORDS = frozenset({"please", "pls", "plz", "now", "thanks", "thank", "you", "ty", "all"})
_SPACES = re.compile(r"\s+")
_TEXTS = r"(?:texts?|texting|txts?|txting|messages?|messaging|msgs?|sms|alerts?|notifications?)"
_PLAIN_LANGUAGE_OPT_OUTS = tuple(
    re.compile(pattern)
    for pattern in (
        r"\b(?:stop|quit|cease|end)\s+(?:sending|texting|messaging|contacting|txting)\b",
        rf"\b(?:stop|quit)\s+(?:receiving|getting)\s+(?:these\s+|your\s+|the\s+)?{_TEXTS}",
        rf"\b(?:stop|end|no more)\s+(?:the\s+|these\s+|your\s+|all\s+)?{_TEXTS}\b",
        r"\b(?:don ?t|do not|never|dont)\s+(?:ever\s+)?(?:text|txt|message|sms|contact)\s+"
        r"(?:me|this number|us)\b",
        r"\bremove (?:me|my number|this number)\b",
        r"\btake (?:me|my number|this number) off\b",
        r"\bunsubscribe\b",
        r"\bopt (?:me )?out\b",
        r"\boptout\b",
        r"\b(?:leave me alone|lose my number)\b",
    )
)


def normalise(text: str) -> str:
    """``text`` lower-cased, on one line, with only letters, digits, spaces and apostrophes.

    Apostrophes are dropped too (so "don't" reads "dont") and hyphens become spaces ("opt-out").
    """
    folded = unicodedata.normalize("NFKC", text[:MAX_CLASSIFIED_CHARS]).casefold()
    kept = []
    for char in folded:
        category = unicodedata.category(char)
        if category[0] in "LN":
            kept.append(char)
        elif char in "-_/" or category[0] == "Z" or char in "\n\r\t":
            kept.append(" ")
        elif char in "'’`":
            continue
        else:
            kept.append(" ")
    return _SPACES.sub(" ", "".join(kept)).strip()


def _keyword(normalised: str) -> str:
    """The message with polite words set aside: "stop please" reads "stop"."""
    words = normalised.split(" ")
    core = [word for word in words if word not in _POLITE_WORDS]
    if not core:
        return normalised
    deduplicated = list(dict.fromkeys(core))
    return " ".join(deduplicated)


def classify_reply(text: str) -> ReplyIntent:
    """What the inbound ``text`` asks for."""
    if not isinstance(text, str):
        raise TypeError("classify_reply needs a str")
    normalised = normalise(text)
    keyword = _keyword(normalised)
    if _is_opt_out_keyword(keyword):
        return ReplyIntent.OPT_OUT
    if keyword in HELP_KEYWORDS:
        return ReplyIntent.HELP
    if keyword in OPT_IN_KEYWORDS:
        return ReplyIntent.OPT_IN
    if any(pattern.search(normalised) for pattern in _PLAIN_LANGUAGE_OPT_OUTS):
        return ReplyIntent.OPT_OUT
    return ReplyIntent.MESSAGE


def is_opt_out_keyword(text: str) -> bool:
    """Whether ``text`` opts out with a keyword (STOP and its kin) rather than in plain language
    ("please stop texting me"); the ledger records the two as different methods."""
    return _is_opt_out_keyword(_keyword(normalise(text)))


def _is_opt_out_keyword(keyword: str) -> bool:
    return keyword in OPT_OUT_KEYWORDS or keyword.replace(" ", "") in OPT_OUT_KEYWORDS


def is_bare_yes(text: str) -> bool:
    """Whether ``text`` is just YES (an opt-in from a number that opted out)."""
    return _keyword(normalise(text)) in CONDITIONAL_OPT_IN_KEYWORDS
