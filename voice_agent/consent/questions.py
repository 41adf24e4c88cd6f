"""Questions a caller asks instead of answering the consent question, and their answers.

"What kind of texts?", "How many?", "Who will text me?", "Will it cost me?", "Can I stop them?"
are questions about the texts, not answers. Each is answered with the facts the caller was just
read, as they stand in the rendered script (its sentences word for word, or the business's
name), never with a paraphrase that could change what they agree to; the conversation then asks
once more for a clear yes or no, and only the classifier's reading of that answer decides.

A question the classifier read as a refusal ("Can I stop them?" holds "stop") is still a question
when nothing else in it refuses; "No. How many texts?" stays a refusal.
"""

from __future__ import annotations

import re
from enum import Enum

from voice_agent.consent.classifier import ConsentAnswer, classify_answer
from voice_agent.consent.refusal import asks_not_to_be_texted
from voice_agent.consent.script import ConsentScript, text_count_phrase

ASK_YES_OR_NO = "So, is that a yes or a no? You can also press 1 for yes or 2 for no."
"""Said after the facts: the one re-ask of the consent question (ARCHITECTURE.md invariant 5)."""


class Topic(Enum):
    """What a question about the texts asks; each is answered by one fact of the script."""

    SENDER = "sender"  # who will text, from which number
    WHAT = "what"  # what kind, how many, how often, when, why
    COST = "cost"  # will it cost, is it free, rates
    STOPPING = "stopping"  # can I stop them, opt out, unsubscribe


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_QUESTION_OPENERS = _word_set(
    """what what's whats which who who's whos whom how how's when why where will would can
    could do does did is are am was should may might"""
)
_FILLERS = _word_set("hmm hm um uh er oh ah and but so well wait sorry okay ok")
_TEXT_WORDS = re.compile(r"\b(texts?|texting|texted|messages?|sms|send|sends|sending)\b")
_CALL_WORDS = re.compile(r"\b(call|calls|calling|callback|phone me|ring)\b")
_TOPIC_PATTERNS: tuple[tuple[Topic, re.Pattern[str]], ...] = (
    (
        Topic.COST,
        re.compile(
            r"\b(cost|costs|charge|charged|charges|pay|paying|fee|fees|free|price|rates?|money"
            r"|bill|billed|expensive)\b"
        ),
    ),
    (
        Topic.STOPPING,
        re.compile(
            r"\b(stop|stopping|opt ?out|opting out|unsubscribe|cancel|quit|turn (them |it )?off"
            r"|get out of)\b"
        ),
    ),
    (Topic.SENDER, re.compile(r"\b((what|which) (phone )?number|from who|from whom)\b")),
    (
        Topic.WHAT,
        re.compile(
            r"\b((what|which) (kinds?|sorts?|types?)|how (many|often|long|soon)|when|why"
            r"|about what|what (for|about)|what texts?|what messages?"
            r"|what (will|would|do|does|are|is) (you|they|it|those|these|the texts?) \w+)\b"
        ),
    ),
)
_WHO = re.compile(r"\b(who|whom|who's|whos)\b")
_STOP_WORDS = re.compile(r"\b(stop|stopping|opt ?out|opting out|unsubscribe|cancel|quit)\b")


def _normalised(said: str) -> str:
    text = said.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"[^a-z0-9'? ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _is_question(text: str) -> bool:
    if "?" in text:
        return True
    words = [word for word in text.replace("?", " ").split() if word not in _FILLERS]
    return bool(words) and words[0] in _QUESTION_OPENERS


def question_topics(said: str) -> frozenset[Topic]:
    """What ``said`` asks about the texts; empty when it is not a question about them."""
    text = _normalised(said)
    if not _is_question(text):
        return frozenset()
    about_texts = _TEXT_WORDS.search(text) is not None
    if _CALL_WORDS.search(text) and not about_texts:
        return frozenset()  # about the callback, not the texts
    topics = {topic for topic, pattern in _TOPIC_PATTERNS if pattern.search(text)}
    if _WHO.search(text) and (about_texts or re.search(r"\bfrom\b", text)):
        topics.add(Topic.SENDER)  # "who will text me?", "who are they from?"; not "who is this?"
    if not topics and about_texts:
        topics.add(Topic.WHAT)
    return frozenset(topics)


def _refuses_besides_asking(said: str) -> bool:
    """Whether ``said`` refuses once its words about stopping the texts are left out."""
    rest = _STOP_WORDS.sub(" ", _normalised(said))
    return classify_answer(rest) is ConsentAnswer.DECLINED


def _script_sentences(script: ConsentScript) -> list[str]:
    return [part for part in re.split(r"(?<=[.!?])\s+", script.text.strip()) if part]


def _fact_sentence(
    topic: Topic, sentences: list[str], business_name: str, max_texts: int
) -> str | None:
    """The script's own sentence for ``topic`` (a statement, not its question), or None."""
    statements = [sentence for sentence in sentences if not sentence.endswith("?")]
    if topic is Topic.SENDER:
        in_script = any(business_name in sentence for sentence in sentences)
        return f"The texts would come from {business_name}." if in_script else None
    if topic is Topic.WHAT:
        count = text_count_phrase(max_texts)
        return next((s for s in statements if count in s), None)
    marker = "rates" if topic is Topic.COST else "STOP"
    return next((s for s in statements if marker in s), None)


def answer_to_question(
    said: str,
    decided: ConsentAnswer,
    script: ConsentScript,
    business_name: str,
    max_texts: int,
) -> str | None:
    """The facts that answer ``said`` when it is a question about the texts, else None.

    ``decided`` is the classifier's reading of ``said``: never a question once it agrees, and
    one it read as a refusal only when nothing but asking about stopping made it one. The
    facts keep the script's order; the business's name is the only fact not quoted whole.
    """
    if decided is ConsentAnswer.AFFIRMATIVE or asks_not_to_be_texted(said):
        return None
    topics = question_topics(said)
    if not topics:
        return None
    if decided is ConsentAnswer.DECLINED and (
        Topic.STOPPING not in topics or _refuses_besides_asking(said)
    ):
        return None
    sentences = _script_sentences(script)
    facts: list[str] = []
    for topic in Topic:  # in the script's order: who, what, cost, stopping
        if topic in topics:
            fact = _fact_sentence(topic, sentences, business_name, max_texts)
            if fact is not None and fact not in facts:
                facts.append(fact)
    return " ".join(facts) or None
