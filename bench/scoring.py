"""How the benches score what was heard against what was said, and summarise timings.

Words are compared after normalising both sides alike: lower case, no punctuation, every number
as single digits ("twenty three", "23" and "two three" are all "2 3"; "oh" is 0; "double five"
is "5 5"), so a recogniser writing digits where the speaker said words is not an error.
"""

from __future__ import annotations

import re

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEENS = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SAME = {"ok": "okay", "o'brien": "obrien", "yeah": "yeah", "alright": "all right"}


def normalise(text: str) -> list[str]:
    """Words for scoring: lower case, no punctuation, numbers as single digits."""
    text = text.lower().replace("-", " ").replace("'s", " is").replace("o'", "o")
    text = re.sub(r"(\d)", r" \1 ", text)
    raw = re.sub(r"[^a-z0-9' ]+", " ", text).split()
    words: list[str] = []
    index = 0
    while index < len(raw):
        word = _SAME.get(raw[index], raw[index])
        following = raw[index + 1] if index + 1 < len(raw) else ""
        if word == "double" and following in [*_UNITS, "oh"]:
            digit = "0" if following == "oh" else str(_UNITS.index(following))
            words += [digit, digit]
            index += 2
            continue
        if word in _TENS[2:]:
            tens = str(_TENS.index(word))
            if following in _UNITS[1:]:
                words += [tens, str(_UNITS.index(following))]
                index += 2
                continue
            words += [tens, "0"]
        elif word in _TEENS:
            words += ["1", str(_TEENS.index(word))]
        elif word in _UNITS:
            words.append(str(_UNITS.index(word)))
        elif word == "oh":
            words.append("0")
        else:
            words.append(word)
        index += 1
    return words


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            cost = 0 if ref_word == hyp_word else 1
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        previous = current
    return previous[-1]


def digits_of(words: list[str]) -> str:
    return "".join(w for w in words if w.isdigit())


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits from ``reference`` to ``hypothesis``, words in ``reference``), normalised."""
    said = normalise(reference)
    return edit_distance(said, normalise(hypothesis)), len(said)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.5 is the median of an odd count)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
