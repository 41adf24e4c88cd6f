"""Consent-answer benchmark: how the classifier does on a labelled set of answers.

    .venv/bin/python bench/consent_answers.py [--misses] [--hand-written-only]

The set is ``tests/data/consent_answers.yaml``: hand-written answers to the consent question,
each labelled ``affirmative``, ``declined`` or ``unclear`` (the file says how), in families
(plain, colloquial, backchannel, hedged, conditional, reversed, questions, negation-worded,
misrecognised, …), plus one generated variant of most lines (a filler in front, another
transcription style). Every answer is classified once, as the caller's first answer would be.

Figures:

- false accepts: answers classified ``affirmative`` whose label is not ``affirmative``. Target 0.
- explicit yeses accepted at the first answer: answers labelled ``affirmative`` that are
  classified ``affirmative``, over all answers labelled ``affirmative``. Target at least 90 %.
- explicit yeses lost as declined: labelled ``affirmative``, classified ``declined`` (a decline is
  final, so these callers are never asked again).
- declines recognised: labelled ``declined`` and classified ``declined``, over all so labelled.
- settled without a re-ask: answers labelled ``affirmative`` or ``declined`` that the classifier
  settles as such at the first answer, over all answers. An ``unclear`` answer is meant to be
  asked again, so it never counts as settled, and the best possible figure is the share of
  answers labelled ``affirmative`` or ``declined`` (printed as the ceiling). An answer
  classified ``declined`` while labelled ``unclear`` ends without a re-ask too, with no
  consent; it is counted separately, not as settled.

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voice_agent.consent.classifier import ConsentAnswer, classify_answer

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "consent_answers.yaml"
LABELS = tuple(answer.value for answer in ConsentAnswer)
MAX_FALSE_ACCEPTS = 0
MIN_YES_ACCEPTED = 0.90
_KEPT_PUNCTUATION = "'?¿？-"


@dataclass(frozen=True)
class LabelledAnswer:
    """One answer of the set: its family, its label, its text, and whether a person wrote it."""

    family: str
    label: ConsentAnswer
    text: str
    hand_written: bool


def load_answers(path: Path = DATA) -> list[LabelledAnswer]:
    """The hand-written answers, then one generated variant of each (where the file allows)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    hand_written = list(_hand_written(document["families"]))
    seen: dict[str, ConsentAnswer] = {}
    for answer in hand_written:
        if answer.text in seen:
            raise ValueError(f"answer listed twice: {answer.text!r}")
        seen[answer.text] = answer.label
    settings = document["variants"]
    exact = frozenset(settings["exact_families"])
    generated: list[LabelledAnswer] = []
    for index, answer in enumerate(hand_written):
        if answer.family in exact:
            continue
        text = variant(answer.text, index, settings["fillers"])
        if text not in seen:
            seen[text] = answer.label
            generated.append(LabelledAnswer(answer.family, answer.label, text, False))
    return hand_written + generated


def _hand_written(families: dict[str, dict[str, Any]]) -> Iterator[LabelledAnswer]:
    for family, by_label in families.items():
        for label, lines in by_label.items():
            if label not in LABELS:
                raise ValueError(f"{family}: unknown label {label!r}")
            texts = lines.splitlines() if isinstance(lines, str) else list(lines)
            for text in texts:
                if isinstance(lines, str) and not text.strip():
                    continue
                yield LabelledAnswer(family, ConsentAnswer(label), str(text), True)


def variant(text: str, index: int, fillers: Sequence[str]) -> str:
    """The same answer as another recogniser might write it: a filler in front and, for plain
    ASCII without digits, lower case without punctuation (but "?", "-" and "'") or sentence case."""
    filler = fillers[index % len(fillers)]
    plain = text.isascii() and not any(char.isdigit() for char in text)
    if plain and (index // len(fillers)) % 2 == 0:
        bare = "".join(c if c.isalnum() or c in _KEPT_PUNCTUATION else " " for c in text.lower())
        return f"{filler} {' '.join(bare.split())}"
    stripped = text.strip()
    if plain:
        ends = stripped[-1:] in (".", "!", "?")
        return f"{filler.capitalize()}, {_lower_first_word(stripped)}{'' if ends else '.'}"
    return f"{filler.capitalize()}, {stripped}"


def _lower_first_word(text: str) -> str:
    """ "Yes, please" → "yes, please", but "I'd…", "OK" and "STOP" stay as they are."""
    first = text.split(maxsplit=1)[0] if text.split() else ""
    keep = first.rstrip(".,!?") == "I" or first.startswith("I'") or first.isupper()
    return text if keep else text[:1].lower() + text[1:]


@dataclass(frozen=True)
class Outcome:
    """One answer and what the classifier made of it."""

    answer: LabelledAnswer
    classified: ConsentAnswer


@dataclass(frozen=True)
class Figures:
    """The benchmark's figures over a set of outcomes."""

    outcomes: tuple[Outcome, ...]

    def count(self, label: ConsentAnswer | None, classified: ConsentAnswer | None) -> int:
        return sum(
            1
            for outcome in self.outcomes
            if (label is None or outcome.answer.label is label)
            and (classified is None or outcome.classified is classified)
        )

    @property
    def false_accepts(self) -> list[Outcome]:
        return [
            o
            for o in self.outcomes
            if o.classified is ConsentAnswer.AFFIRMATIVE
            and o.answer.label is not ConsentAnswer.AFFIRMATIVE
        ]

    @property
    def yes_accepted(self) -> float:
        return _share(self.count(_YES, _YES), self.count(_YES, None))

    @property
    def declines_recognised(self) -> float:
        return _share(self.count(_NO, _NO), self.count(_NO, None))

    @property
    def settled(self) -> float:
        return _share(self.count(_YES, _YES) + self.count(_NO, _NO), len(self.outcomes))

    @property
    def settled_ceiling(self) -> float:
        return _share(self.count(_YES, None) + self.count(_NO, None), len(self.outcomes))


_YES = ConsentAnswer.AFFIRMATIVE
_NO = ConsentAnswer.DECLINED
_UNCLEAR = ConsentAnswer.UNCLEAR


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def measure(
    answers: Sequence[LabelledAnswer], classify: Callable[[str], ConsentAnswer] = classify_answer
) -> Figures:
    """Classify every answer once."""
    return Figures(tuple(Outcome(answer, classify(answer.text)) for answer in answers))


def _report(title: str, figures: Figures) -> None:
    total = len(figures.outcomes)
    yeses = figures.count(_YES, None)
    declines = figures.count(_NO, None)
    print(f"== {title}: {total:,} answers")
    print(f"false accepts                         {len(figures.false_accepts):>6}   (target 0)")
    print(
        f"explicit yeses accepted, first answer {figures.yes_accepted:>6.1%}   "
        f"({figures.count(_YES, _YES):,} of {yeses:,}; target >= {MIN_YES_ACCEPTED:.0%})"
    )
    print(
        f"explicit yeses lost as declined       {figures.count(_YES, _NO):>6}   "
        f"({figures.count(_YES, _UNCLEAR):,} more asked again)"
    )
    print(
        f"declines recognised                   {figures.declines_recognised:>6.1%}   "
        f"({figures.count(_NO, _NO):,} of {declines:,})"
    )
    print(
        f"settled without a re-ask              {figures.settled:>6.1%}   "
        f"(ceiling {figures.settled_ceiling:.1%}: answers labelled affirmative or declined)"
    )
    print(
        f"unclear answers ended as declined     {figures.count(_UNCLEAR, _NO):>6}   "
        f"(of {figures.count(_UNCLEAR, None):,} labelled unclear; no re-ask, no consent)"
    )


def _family_table(figures: Figures) -> None:
    families = list(dict.fromkeys(o.answer.family for o in figures.outcomes))
    print(
        f"{'family':<16}{'answers':>8}{'hand':>6}{'yes':>6}{'taken':>7}"
        f"{'no':>5}{'taken':>7}{'unclear':>9}{'false acc':>11}"
    )
    for family in families:
        rows = Figures(tuple(o for o in figures.outcomes if o.answer.family == family))
        hand = sum(1 for o in rows.outcomes if o.answer.hand_written)
        print(
            f"{family:<16}{len(rows.outcomes):>8}{hand:>6}"
            f"{rows.count(_YES, None):>6}{rows.count(_YES, _YES):>7}"
            f"{rows.count(_NO, None):>5}{rows.count(_NO, _NO):>7}"
            f"{rows.count(_UNCLEAR, None):>9}{len(rows.false_accepts):>11}"
        )


def _misses(figures: Figures) -> None:
    print("== not as labelled (label -> classified)")
    for outcome in figures.outcomes:
        if outcome.classified is not outcome.answer.label and outcome.answer.hand_written:
            print(
                f"{outcome.answer.label.value:>11} -> {outcome.classified.value:<11} "
                f"{outcome.answer.family:<16} {outcome.answer.text!r}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--misses", action="store_true", help="list hand-written misses")
    parser.add_argument("--hand-written-only", action="store_true")
    args = parser.parse_args(argv)
    answers = load_answers()
    hand = [answer for answer in answers if answer.hand_written]
    figures = measure(hand if args.hand_written_only else answers)
    _report("all answers" if not args.hand_written_only else "hand-written answers", figures)
    if not args.hand_written_only:
        print()
        _report("hand-written answers only", measure(hand))
    print()
    _family_table(figures)
    for outcome in figures.false_accepts:
        print(f"FALSE ACCEPT ({outcome.answer.label.value}): {outcome.answer.text!r}")
    if args.misses:
        print()
        _misses(figures)
    met = len(figures.false_accepts) <= MAX_FALSE_ACCEPTS and (
        figures.yes_accepted >= MIN_YES_ACCEPTED
    )
    print()
    print("targets met" if met else "TARGET MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
