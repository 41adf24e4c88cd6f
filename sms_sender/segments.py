"""How many SMS segments a text costs, and how to keep caller-supplied text inside GSM-7.

A text made only of GSM 03.38 characters is sent in GSM-7: 160 septets in one segment, 153 per
segment when split; characters of the extension table (``€ [ ] { } \\ ~ ^ |`` and form feed) take
two septets and are never split across segments. Any other character switches the whole text to
UCS-2: 70 UTF-16 code units in one segment, 67 per segment when split; a character outside the
Basic Multilingual Plane (most emoji) takes two code units and its surrogate pair is never split.
Counting the unsplittable pairs whole can only over-estimate, never under-estimate, a carrier's
count.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_TYPOGRAPHIC_TO_GSM7 = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "′": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "‟": '"',
        "″": '"',
        "–": "-",
        "—": "-",
        "−": "-",
        "…": "...",
    }
)


@dataclass(frozen=True)
class SegmentLimits:
    """Capacity of one segment, in septets (GSM-7) or UTF-16 code units (UCS-2)."""

    single: int
    multipart: int


GSM7_LIMITS = SegmentLimits(single=160, multipart=153)
UCS2_LIMITS = SegmentLimits(single=70, multipart=67)


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` can be sent in GSM-7."""
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def segment_count(text: str) -> int:
    """Segments needed to send ``text``; an empty text still costs one segment."""
    if is_gsm7(text):
        units = [2 if char in GSM7_EXTENSION else 1 for char in text]
        limits = GSM7_LIMITS
    else:
        units = [2 if ord(char) > 0xFFFF else 1 for char in text]
        limits = UCS2_LIMITS
    if sum(units) <= limits.single:
        return 1
    return _pack(units, limits.multipart)


def _pack(units: list[int], capacity: int) -> int:
    """Segments needed when indivisible ``units`` are packed in order into ``capacity``."""
    segments, used = 1, 0
    for unit in units:
        if used + unit > capacity:
            segments += 1
            used = 0
        used += unit
    return segments


def to_gsm7(text: str) -> str:
    """``text`` with typographic punctuation and accents folded into GSM-7, the rest dropped."""
    folded = text.translate(_TYPOGRAPHIC_TO_GSM7)
    return "".join(_fold_char(char) for char in folded)


def _fold_char(char: str) -> str:
    if is_gsm7(char):
        return char
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(part for part in decomposed if is_gsm7(part))
