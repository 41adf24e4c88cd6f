"""Hearing "don't text me" anywhere in the call: a spoken refusal (or revocation) of texts.

Deliberately narrow: it needs a negation or "stop"/"no more" aimed at texting, so "text me
back" or "I'll text you a photo" never count, and an ambiguous remark simply does not trigger.
"""

from __future__ import annotations

import re

_TEXTING = r"(?:text(?:s|ing)?|text messages?|sms|messages?)"
_PATTERNS = (
    rf"\b(?:don'?t|do not|never) (?:send )?(?:me )?(?:any )?{_TEXTING}\b",
    rf"\bno (?:more )?{_TEXTING}\b",
    rf"\bstop {_TEXTING}\b",
    rf"\b(?:don'?t|do not) want (?:any )?{_TEXTING}\b",
    r"\b(?:not|never) by text\b",
)
_REFUSAL = re.compile("|".join(_PATTERNS))
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'"})
MAX_CHARS = 2000


def asks_not_to_be_texted(said: str) -> bool:
    """Whether the caller asked not to be texted ("don't text me", "no texts please")."""
    normalised = " ".join(said[:MAX_CHARS].translate(_APOSTROPHES).lower().split())
    return bool(_REFUSAL.search(normalised))
