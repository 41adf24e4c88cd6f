"""When has the caller finished? A word-aware end-of-turn decision on top of the endpointer.

A fixed 0.7 s of silence is most of the wait between a caller's last word and our reply, and
still cuts off a caller who pauses longer mid-sentence. Whisper's words come only after a
transcription, so the decision works in steps of silence (each a named constant below):

- after `QUICK_SILENCE` the utterance so far is transcribed; if its words are a finished answer
  (`judge` says `COMPLETE`: a short yes/no, a whole phone number), the turn ends there;
- after `USUAL_SILENCE` (the old fixed wait) it ends unless the words lead on (`INCOMPLETE`:
  a trailing "and", "um", "my", a comma, half a phone number) …
- … which end only after `HOLD_SILENCE`.

The words of the last check are the utterance's transcript when no voice came back, so ending
early costs no second transcription. These are rules, and rising pitch is not used. The one
trained end-of-turn model that ships its weights, Smart Turn v3.2 (inside ``pipecat-ai``), was
measured on the same voiced answers (``bench/smart_turn.py``): at a 0.5 threshold it took 29 of
42 finished answers, but also 17 of 24 pauses inside answers for the end. Our synthetic callers
close every fragment with a falling pitch, as if finished, which is what that model listens
to; it cannot be judged fairly on them, and it is not used.

Measured by ``bench/ears.py --turn-ends`` (42 turns, 22 with pauses of 0.3–1.2 s inside;
tiny.en, load average 1–4 on two cores): false cut-offs 11/22 with the fixed 0.7 s, 3/22 by
words on energy, 4/22 by words with Silero VAD (pauses past 0.7 s after words that do not
lead on); a yes/no or whole phone number is decided after 0.27 s of silence, other finished
answers after 0.7 s, but their transcript, begun at 0.25 s, is ready 0.73–0.82 s after the
last word (p50) instead of 1.11–1.20 s. Under babble-like noise energy alone ends 3 of 20
finished turns within 3 s; with Silero VAD, 19 of 20.
"""

from __future__ import annotations

import re
from enum import StrEnum

from media_stream.spoken_digits import DIGIT_WORDS

QUICK_SILENCE = 0.25
"""Seconds of silence before the words are checked: longer than the gaps inside a phrase (stop
closures and breaths, 0.1–0.2 s), short enough that with a transcription a finished answer is
taken about as soon as the old 0.7 s of silence alone."""

USUAL_SILENCE = 0.7
"""Seconds of silence that end a turn whose words neither finish nor lead on: the endpointer's
old fixed wait, so such a turn ends exactly as it did before."""

HOLD_SILENCE = 1.5
"""Seconds of silence that end a turn whose words lead on ("my sink is …", "five one two …"):
callers searching for a word or reading out a number pause up to about a second."""

PHONE_DIGITS = (7, 10, 11)
"""A run of this many digits is a whole phone number (local, national, with the leading 1)."""


class Verdict(StrEnum):
    COMPLETE = "complete"  # end the turn now
    UNSURE = "unsure"  # end it after USUAL_SILENCE
    INCOMPLETE = "incomplete"  # end it only after HOLD_SILENCE


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_LEADING_ON = _word_set(
    """and or but so because um umm uh uhh er erm hmm like the a an my our your his her their
    its this that these those is are was were am be to of for at on in with from by about as
    if then when which who where what it's i'm we're i i'd i'll we he she they
    can could would will should just also plus apartment number"""
)
"""Words a caller does not finish on: conjunctions, fillers, articles and possessives,
prepositions, auxiliaries, bare pronouns, and the words that announce a number."""

_YES_NO = _word_set(
    """yes yeah yep yup sure okay ok right correct absolutely definitely no nope nah not
    please thanks thank you that's fine good sounds great of course go ahead don't i'd rather
    agree do"""
)
_MAX_YES_NO_WORDS = 5


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def _trailing_digits(words: list[str]) -> str:
    """The digits said at the end of the words ("five one two" or "512-555"), in order."""
    digits: list[str] = []
    for word in reversed(words):
        if word.isdigit():
            digits.insert(0, word)
        elif word in DIGIT_WORDS:
            digits.insert(0, DIGIT_WORDS[word])
        elif word == "double" and digits:
            digits.insert(0, digits[0][0])
        else:
            break
    return "".join(digits)


def judge(text: str) -> Verdict:
    """Whether ``text``, all a caller said so far, is a finished answer."""
    stripped = text.strip()
    words = _words(stripped)
    if not words:
        return Verdict.UNSURE  # nothing heard: neither finished nor leading on
    if stripped.endswith((",", "...", "…", "-", ";", ":")):
        return Verdict.INCOMPLETE
    if words[-1] in _LEADING_ON:
        return Verdict.INCOMPLETE
    digits = _trailing_digits(words)
    if digits:
        return Verdict.COMPLETE if len(digits) in PHONE_DIGITS else Verdict.INCOMPLETE
    if len(words) <= _MAX_YES_NO_WORDS and all(w in _YES_NO for w in words):
        return Verdict.COMPLETE
    # A finished sentence is not taken early: callers go on after one ("It's not urgent.
    # Sometime this week is fine."), and the scenario calls lost step when it was.
    return Verdict.UNSURE


def silence_needed(verdict: Verdict) -> float:
    """Seconds of silence after which a turn with these words ends."""
    return {
        Verdict.COMPLETE: QUICK_SILENCE,
        Verdict.UNSURE: USUAL_SILENCE,
        Verdict.INCOMPLETE: HOLD_SILENCE,
    }[verdict]
