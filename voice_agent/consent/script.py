"""The SMS consent script: rendered from a versioned file in ``prompts/consent/``.

The language model never writes or paraphrases it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

CONSENT_DIR = files("prompts") / "consent"

FORM_DISCLOSURE_VERSION = "web-form-v1"
"""The disclosure beside the SMS box of the public callback form (``prompts/consent/``)."""

REASK = "Is that a yes? You can also press 1 for yes or 2 for no."

_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


@dataclass(frozen=True)
class ConsentScript:
    """The exact words the caller hears, with the version they came from and their sha256."""

    version: str
    text: str
    sha256: str


def text_count_phrase(max_texts: int) -> str:
    """ "one text", "one or two texts", "one to four texts"."""
    if max_texts not in _COUNT_WORDS:
        raise ValueError(f"max texts must be 1–4, got {max_texts}")
    if max_texts == 1:
        return "one text"
    joiner = "or" if max_texts == 2 else "to"
    return f"one {joiner} {_COUNT_WORDS[max_texts]} texts"


def render_consent_script(version: str, business_name: str, max_texts: int) -> ConsentScript:
    """Fill the versioned template with the business name and the number of texts."""
    return _rendered(version, business_name, max_texts)


def render_form_disclosure(business_name: str, max_texts: int) -> ConsentScript:
    """The words beside the callback form's SMS box, rendered like the spoken script."""
    return _rendered(FORM_DISCLOSURE_VERSION, business_name, max_texts)


def _rendered(version: str, business_name: str, max_texts: int) -> ConsentScript:
    template = (CONSENT_DIR / f"{version}.txt").read_text(encoding="utf-8").strip()
    text = template.format(business_name=business_name, text_count=text_count_phrase(max_texts))
    return ConsentScript(version, text, hashlib.sha256(text.encode("utf-8")).hexdigest())
