"""The words a call's transcriber is told to expect: the business's name and its services.

Keyterms help a speech engine get names and trade words right ("Acme Plumbing", "water
heaters"); a keyterm is a name or a short phrase, so longer pieces of the services text are
left out. They must never tilt how the caller's consent answer is heard, so a term holding
anything the consent classifier reads as a yes or a no ("Sure Fix Plumbing", "No Leak
Guarantee") is left out too, whatever the owner typed.
"""

from __future__ import annotations

import re

from voice_agent.consent.classifier import ConsentAnswer, classify_answer
from voice_agent.records.businesses import Business

_SERVICE_SEPARATORS = re.compile(r"[,;/&+.\n]|\band\b|\bor\b", re.IGNORECASE)
MAX_KEYTERM_WORDS = 6


def call_keyterms(business: Business) -> tuple[str, ...]:
    """The business's name and each service it lists, in order, without answer words."""
    services = (" ".join(part.split()) for part in _SERVICE_SEPARATORS.split(business.services))
    terms = (" ".join(business.name.split()), *services)
    return tuple(term for term in dict.fromkeys(terms) if _is_keyterm(term))


def _is_keyterm(term: str) -> bool:
    """A short phrase no run of whose words would, said alone, be a yes or a no."""
    words = term.split()
    return 0 < len(words) <= MAX_KEYTERM_WORDS and all(
        classify_answer(" ".join(words[start:end])) is ConsentAnswer.UNCLEAR
        for start in range(len(words))
        for end in range(start + 1, len(words) + 1)
    )
