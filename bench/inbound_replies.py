"""Inbound replies: how ``sms_sender.keywords.classify_reply`` reads a labelled set of our own.

    .venv/bin/python bench/inbound_replies.py

Reads ``tests/data/inbound_replies.yaml`` (labels opt_out, help, opt_in, message; families) and
prints, overall and per family:

- opt-outs missed: an opt-out neither acted on nor held for the owner (must be 0; a held reply
  pauses texts to the number, so it is caught);
- opt-outs held: caught, but waiting for the owner's decision (``may_hold`` says where that is
  acceptable; an opt-out held without it is a "held, expected acted on");
- false opt-outs: ordinary messages (or help, opt-in) acted on as opt-outs;
- messages held for review: ordinary messages that pause texts until the owner decides;
- other mistakes: help or opt-in read as something else.

Exits 1 when an opt-out is missed.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sms_sender.keywords import ReplyIntent, classify_reply

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "inbound_replies.yaml"
LABELS = frozenset({"opt_out", "help", "opt_in", "message"})


@dataclass(frozen=True)
class Reply:
    text: str
    label: str
    family: str
    may_hold: bool


@dataclass
class Tally:
    total: int = 0
    missed: int = 0
    held_opt_outs: int = 0
    held_unexpected: int = 0
    false_opt_outs: int = 0
    held_messages: int = 0
    other_mistakes: int = 0


def load(path: Path = DATA) -> list[Reply]:
    """The labelled replies."""
    raw: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))
    replies = [
        Reply(str(item["text"]), item["label"], item["family"], bool(item.get("may_hold", False)))
        for item in raw
    ]
    unknown = {reply.label for reply in replies} - LABELS
    if unknown:
        raise ValueError(f"unknown labels {sorted(unknown)}")
    return replies


def score(replies: list[Reply]) -> tuple[Tally, dict[str, Tally], list[tuple[str, Reply, str]]]:
    """The overall tally, one per family, and each reply read wrongly (what, reply, intent)."""
    overall = Tally()
    families: dict[str, Tally] = defaultdict(Tally)
    wrong: list[tuple[str, Reply, str]] = []
    for reply in replies:
        intent = classify_reply(reply.text)
        for tally in (overall, families[reply.family]):
            tally.total += 1
        problem = _judge(reply, intent)
        if problem is None:
            continue
        for tally in (overall, families[reply.family]):
            setattr(tally, problem, getattr(tally, problem) + 1)
        if problem not in ("held_opt_outs", "held_messages"):
            wrong.append((problem, reply, intent.value))
    return overall, dict(families), wrong


def _judge(reply: Reply, intent: ReplyIntent) -> str | None:
    """Which count ``intent`` adds to for ``reply``, if any."""
    if reply.label == "opt_out":
        if intent is ReplyIntent.OPT_OUT:
            return None
        if intent is ReplyIntent.POSSIBLE_OPT_OUT:
            return "held_opt_outs" if reply.may_hold else "held_unexpected"
        return "missed"
    if intent is ReplyIntent.OPT_OUT:
        return "false_opt_outs"
    if intent is ReplyIntent.POSSIBLE_OPT_OUT:
        return "held_messages"
    return None if intent.value == reply.label else "other_mistakes"


def main() -> int:
    replies = load()
    overall, families, wrong = score(replies)
    labels = Counter(reply.label for reply in replies)
    print(
        f"{len(replies)} labelled replies: "
        + ", ".join(f"{n} {k}" for k, n in sorted(labels.items()))
    )
    header = f"{'family':<26}{'n':>5}{'missed':>8}{'held o/o':>10}{'held!':>7}{'false o/o':>11}"
    print(header + f"{'held msg':>10}{'other':>7}")
    for name, tally in [*sorted(families.items()), ("ALL", overall)]:
        print(
            f"{name:<26}{tally.total:>5}{tally.missed:>8}{tally.held_opt_outs:>10}"
            f"{tally.held_unexpected:>7}{tally.false_opt_outs:>11}{tally.held_messages:>10}"
            f"{tally.other_mistakes:>7}"
        )
    print(f"opt-outs missed: {overall.missed} (must be 0)")
    print(f"ordinary messages taken for opt-outs (acted on): {overall.false_opt_outs}")
    print(f"messages held for review: {overall.held_messages}")
    print(f"opt-outs held rather than acted on: {overall.held_opt_outs + overall.held_unexpected}")
    for problem, reply, intent in wrong:
        print(f"  {problem}: {reply.text!r} ({reply.family}, {reply.label}) read as {intent}")
    return 1 if overall.missed else 0


if __name__ == "__main__":
    sys.exit(main())
