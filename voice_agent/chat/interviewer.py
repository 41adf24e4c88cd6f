"""The scripted interviewer: the embedded, deterministic ChatModel that takes a caller's message.

It wants the caller's name, what they need, the best callback number and how urgent it is (and
keeps the job's address and a preferred time when the caller gives them). It takes whatever the
caller says, in any order and several parts in one breath ("Hi, this is Jordan, my sink is
leaking, you can call me on this number"), and asks only for what it does not have yet: the
next question is always the first part of the message still empty. A new callback number is
read back once, in groups, and a correction ("no, it's …") is taken. A question from the caller
("who is this?", "how much will it cost?") gets a short truthful answer first; a danger they
describe at any point (gas, flooding, sparks, carbon monoxide …) marks the message an emergency
and the caller hears what to do first (call 911 or the gas company). Then it reports the message
finished and the Conversation reads the consent script: the interviewer never speaks it.

All per-call state lives in the :class:`CallerMessage`. An answer with nothing usable in it is
asked again once in a short "Sorry, I didn't catch that" form; after a second miss the
interviewer notes the gap and moves on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from voice_agent.chat.caller_questions import answer, find_question
from voice_agent.chat.caller_text import Utterance, clean, has_words, read
from voice_agent.chat.emergencies import detect_emergency
from voice_agent.chat.message_slots import (
    TITLES,
    SlotReading,
    find_name,
    plain_urgency,
    read_slots,
)
from voice_agent.chat.numbers_in_words import (
    e164_or_none,
    find_phone_number,
    spoken_phone_number,
)
from voice_agent.chat.port import (
    AgentReply,
    CallContext,
    CallerMessage,
    FollowUp,
    MessageField,
    Urgency,
    WholeReply,
)
from voice_agent.chat.topics import find_topic

__all__ = [
    "MAX_NEED_CHARS",
    "ScriptedInterviewer",
    "classify_urgency",
    "extract_name",
    "find_phone_number",
    "spoken_phone_number",
]

logger = logging.getLogger(__name__)

QUESTION_ORDER = (
    MessageField.CALLER_NAME,
    MessageField.NEED,
    MessageField.CALLBACK_NUMBER,
    MessageField.URGENCY,
)
MAX_MISSES_PER_QUESTION = 2
MAX_NEED_CHARS = 500
MAX_QUOTE_CHARS = 200

_SORRY = "Sorry, I didn't catch that."
_SORRY_NUMBER = "Sorry about that."


class ScriptedInterviewer:
    """A ChatModel that takes the message deterministically, asking only for what is missing."""

    name = "scripted"

    def reply_stream(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> WholeReply:
        """The scripted reply is ready at once: one piece."""
        return WholeReply(self.reply(context, message, caller_said))

    async def reply(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> AgentReply:
        """Record what ``caller_said`` gives of the message and ask for what is still missing."""
        pending = _pending_field(message)
        checking_number = message.follow_up is FollowUp.NUMBER_READ_BACK
        if pending is None and not (checking_number and caller_said is not None):
            return AgentReply(_closing(context, message), finished=True)
        if caller_said is None:
            assert pending is not None
            return AgentReply(_question(pending, context, message), finished=False)
        return _Turn(context, message, pending, read(caller_said)).reply()


def _pending_field(message: CallerMessage) -> MessageField | None:
    for message_field in QUESTION_ORDER:
        answered = getattr(message, message_field.value) is not None
        if not answered and message.times_missed(message_field) < MAX_MISSES_PER_QUESTION:
            return message_field
    return None


@dataclass
class _Turn:
    """One caller turn: what it records, and what the interviewer says back."""

    context: CallContext
    message: CallerMessage
    pending: MessageField | None  # None: only "is that right?" about a number read back
    said: Utterance
    safety: list[str] = field(default_factory=list)  # said first, before anything else
    reply_to_question: str = ""
    thanks: str = ""
    acknowledgement: str = ""
    read_back: str = ""
    progress: bool = False

    def reply(self) -> AgentReply:
        follow_up, self.message.follow_up = self.message.follow_up, None
        if not has_words(self.said.text):
            return self._missed(follow_up)
        self._check_for_danger()
        question = find_question(self.said.text, self.context.business_name)
        if question is not None:
            self.reply_to_question = answer(question, self.context)
        reading = read_slots(self.said, self.pending, self.context.business_name)
        self._record_name(reading)
        self._record_need(reading)
        self._record_number(reading, follow_up)
        self._record_address(reading)
        self._record_urgency(reading, asked_a_question=question is not None)
        self._record_time(reading)
        if not (self.progress or self.safety or question is not None):
            return self._missed(follow_up)
        return self._answer_and_ask()

    # --- what the caller said -----------------------------------------------------------

    def _check_for_danger(self) -> None:
        danger = detect_emergency(self.said)
        if danger is None:
            return
        if self.message.urgency is not Urgency.EMERGENCY:
            logger.info("caller described a danger (%s): marked an emergency", danger.kind)
        self.message.urgency = Urgency.EMERGENCY
        self.progress = True
        if danger.kind.value not in self.message.emergencies:
            self.message.emergencies.append(danger.kind.value)
            self.message.notes.append(danger.note)
            self.safety.append(danger.advice)

    def _record_name(self, reading: SlotReading) -> None:
        if reading.name is None:
            return
        known = self.message.caller_name
        if known is None or (reading.name_introduced and reading.name != known):
            self.message.caller_name = reading.name
            self.thanks = f"Thanks, {_first_name(self.message)}."
            self.progress = True

    def _record_need(self, reading: SlotReading) -> None:
        if reading.need is None:
            return
        need = self.message.need
        if need is None:
            self.message.need = _truncated(reading.need, MAX_NEED_CHARS)
            self.acknowledgement = self.acknowledgement or "Got it."
        elif reading.need_is_news and reading.need not in need:
            joined = need if need.endswith((".", "!", "?", "…")) else f"{need}."
            self.message.need = _truncated(f"{joined} {reading.need}", MAX_NEED_CHARS)
        else:
            return
        self.progress = True
        self.message.topic = find_topic(self.message.need) or self.message.topic

    def _record_number(self, reading: SlotReading, follow_up: FollowUp | None) -> None:
        message = self.message
        calling = e164_or_none(self.context.caller_number)
        corrected = follow_up is FollowUp.NUMBER_READ_BACK and reading.correction
        if reading.number is not None:
            self._take_number(reading.number, calling, corrected=corrected)
        elif corrected and reading.number_tail and message.callback_number:
            self._take_tail(reading.number_tail, calling)
        elif follow_up is FollowUp.NUMBER_READ_BACK and (
            reading.says_wrong or (self.pending is None and reading.no)
        ):
            message.callback_number = None
            message.follow_up = FollowUp.OTHER_NUMBER
            self.read_back = _SORRY_NUMBER
            self.progress = True
        elif follow_up is FollowUp.NUMBER_READ_BACK and _only_agrees(reading):
            self.acknowledgement = "Great."  # "yes, that's right" to the number read back
            self.progress = True
        elif self.pending is MessageField.CALLBACK_NUMBER:
            self._answer_about_the_number(reading, follow_up, calling)
        elif reading.this_number and message.callback_number is None and calling is not None:
            message.callback_number = calling  # "you can call me on this number", unasked
            self.progress = True

    def _take_number(self, number: str, calling: str | None, *, corrected: bool) -> None:
        self.progress = True
        if number == self.message.callback_number:
            return
        self.message.callback_number = number
        if number == calling:
            self.acknowledgement = "Great."
            return
        spoken = spoken_phone_number(number)
        sorry = f"{_SORRY_NUMBER} " if corrected else ""
        self.read_back = f"{sorry}I've got {spoken}."
        self.message.follow_up = FollowUp.NUMBER_READ_BACK

    def _take_tail(self, tail: str, calling: str | None) -> None:
        """ "No, it's oh one nine eight": the end of the number just read back, corrected."""
        known = (self.message.callback_number or "").lstrip("+")
        candidate = e164_or_none("+" + known[: len(known) - len(tail)] + tail)
        if candidate is not None:
            self._take_number(candidate, calling, corrected=True)
        else:
            self.message.follow_up = FollowUp.NUMBER_READ_BACK

    def _answer_about_the_number(
        self, reading: SlotReading, follow_up: FollowUp | None, calling: str | None
    ) -> None:
        message = self.message
        if follow_up is FollowUp.OTHER_NUMBER:
            if reading.this_number and calling is not None:
                message.callback_number = calling  # they changed their mind
                self.acknowledgement = "Great."
                self.progress = True
            else:
                message.follow_up = FollowUp.OTHER_NUMBER  # still waiting for the number
            return
        if calling is None:
            return  # a withheld number: only a number said will do
        if reading.other_number or (reading.no and not (reading.this_number or reading.agrees)):
            message.follow_up = FollowUp.OTHER_NUMBER
            self.acknowledgement = "Sure."
            self.progress = True
        elif reading.this_number or reading.yes:
            message.callback_number = calling
            self.acknowledgement = "Great."
            self.progress = True

    def _record_urgency(self, reading: SlotReading, *, asked_a_question: bool) -> None:
        message = self.message
        if message.urgency is Urgency.EMERGENCY:
            return
        asked = self.pending is MessageField.URGENCY
        wish = asked or reading.preferred_time is not None  # "can someone come out today"
        urgency = reading.urgency or (reading.urgency_when if wish else None)
        if urgency is None and asked and not (self.progress or asked_a_question):
            urgency = Urgency.ROUTINE  # "I don't know", "yes": nothing says it's pressing
        if urgency is None:
            return
        message.urgency = urgency
        if asked:
            self.acknowledgement = self.acknowledgement or "Okay."
        self.progress = True

    def _record_address(self, reading: SlotReading) -> None:
        if reading.address is not None:
            self.message.address = reading.address
            self.progress = True

    def _record_time(self, reading: SlotReading) -> None:
        if reading.preferred_time is not None:
            self.message.preferred_time = reading.preferred_time
            self.progress = True

    # --- what the interviewer says --------------------------------------------------------

    def _answer_and_ask(self) -> AgentReply:
        parts = [*self.safety, self.reply_to_question]
        following = _pending_field(self.message)
        if following is None and self.read_back:  # the last word on the number is theirs
            parts += [self.thanks, self.read_back, "Is that right?"]
            return AgentReply(_joined(parts), finished=False)
        if following is None:  # the closing thanks the caller itself
            closing = _closing(self.context, self.message, advised_now=bool(self.safety))
            return AgentReply(_joined([*parts, closing]), finished=True)
        if self.thanks:
            parts.append(self.thanks)
        elif self.acknowledgement and not self.safety and not self.read_back:
            parts.append(self.acknowledgement)
        parts += [self.read_back, _question(following, self.context, self.message)]
        return AgentReply(_joined(parts), finished=False)

    def _missed(self, follow_up: FollowUp | None) -> AgentReply:
        """No usable answer: ask again once, then note the gap and move on."""
        pending, message = self.pending, self.message
        if pending is None:  # nothing said against the number read back: it stands
            return AgentReply(_closing(self.context, message), finished=True)
        message.follow_up = _kept(follow_up)
        message.missed_answers.append(pending)
        if message.times_missed(pending) < MAX_MISSES_PER_QUESTION:
            return AgentReply(_re_ask(pending, self.context, message), finished=False)
        logger.info("moving on without an answer", extra={"message_field": pending.value})
        acknowledgement = _give_up(pending, self.context, message, self.said)
        following = _pending_field(message)
        if following is None:
            return AgentReply(_closing(self.context, message), finished=True)
        question = _question(following, self.context, message)
        return AgentReply(f"{acknowledgement} {question}", finished=False)


def _only_agrees(reading: SlotReading) -> bool:
    """ "Yes, that's right": agreement and nothing else a question could have asked for."""
    said_more = reading.urgency or reading.urgency_when or reading.need or reading.name
    return (reading.yes or reading.this_number) and not reading.no and not said_more


def _kept(follow_up: FollowUp | None) -> FollowUp | None:
    """A question still open after a turn that did not answer it (a read-back is not)."""
    return follow_up if follow_up is FollowUp.OTHER_NUMBER else None


def _joined(parts: list[str]) -> str:
    return " ".join(part for part in parts if part)


def _question(message_field: MessageField, context: CallContext, message: CallerMessage) -> str:
    if message_field is MessageField.CALLER_NAME:
        if _nothing_recorded(message):
            return "What's your name?"
        return "And can I get your name?"
    if message_field is MessageField.NEED:
        return f"What can {context.business_name} help you with today?"
    if message_field is MessageField.CALLBACK_NUMBER:
        spoken = spoken_phone_number(context.caller_number)
        if spoken is None or message.follow_up is FollowUp.OTHER_NUMBER:
            return "What's the best number to reach you?"
        return f"Is the number you're calling from, {spoken}, the best one to reach you?"
    return "And how urgent is it? Is it an emergency, or can it wait a bit?"


def _nothing_recorded(message: CallerMessage) -> bool:
    return all(getattr(message, part.value) is None for part in QUESTION_ORDER)


def _re_ask(message_field: MessageField, context: CallContext, message: CallerMessage) -> str:
    if message_field is MessageField.CALLER_NAME:
        return f"{_SORRY} What's your name?"
    if message_field is MessageField.NEED:
        return f"{_SORRY} What do you need help with?"
    if message_field is MessageField.CALLBACK_NUMBER:
        spoken = spoken_phone_number(context.caller_number)
        if spoken is None or message.follow_up is FollowUp.OTHER_NUMBER:
            return f"{_SORRY} What's the best number to reach you?"
        return f"{_SORRY} Is {spoken} the best number to reach you?"
    return f"{_SORRY} How urgent is it?"


def _closing(context: CallContext, message: CallerMessage, *, advised_now: bool = False) -> str:
    thanks = f"Thanks, {_first_name(message)}." if message.caller_name else "Thanks."
    callback = f"Someone from {context.business_name} will call you back {context.callback_time}."
    if message.urgency is Urgency.EMERGENCY:
        danger = "" if advised_now else " If anyone is in danger, please call 911."
        return f"{thanks} I've got all that, and I've marked it as an emergency. {callback}{danger}"
    return f"{thanks} I've got all that. {callback}"


def _first_name(message: CallerMessage) -> str:
    """ "Maria" for Maria Lopez; "Dr. Smith" for Dr. Jane Smith."""
    words = (message.caller_name or "").split(" ")
    if words[0] in TITLES.values() and len(words) > 1:
        return f"{words[0]} {words[-1]}"
    return words[0]


def _give_up(
    message_field: MessageField, context: CallContext, message: CallerMessage, said: Utterance
) -> str:
    """Note that a question went unanswered; the acknowledgement to say before moving on."""
    if message_field is MessageField.CALLER_NAME:
        message.notes.append("The caller didn't give a name.")
    elif message_field is MessageField.NEED:
        message.notes.append("The caller didn't say what they need.")
    elif message_field is MessageField.CALLBACK_NUMBER:
        return _give_up_callback(context, message, said)
    else:
        message.notes.append("The caller didn't say how urgent it is.")
    return "No problem."


def _give_up_callback(context: CallContext, message: CallerMessage, said: Utterance) -> str:
    calling_number = e164_or_none(context.caller_number)
    wanted_another = message.follow_up is FollowUp.OTHER_NUMBER
    message.follow_up = None
    if calling_number is None:
        message.notes.append("The caller gave no callback number.")
        return "No problem."
    message.callback_number = calling_number
    if wanted_another:
        words = f" Their last words: {_quoted(said.text)}." if has_words(said.text) else ""
        message.notes.append(
            "The caller said another number is better but gave none we could use; using the "
            f"number they called from.{words}"
        )
        return "No problem. I'll note the number you're calling from for now."
    message.notes.append("The callback number wasn't confirmed; using the number they called from.")
    return "No problem. I'll use the number you're calling from."


# --- for other brains and the tests -----------------------------------------------------------


def extract_name(text: str) -> str | None:
    """The caller's name from an answer like "my name is Maria Lopez" or just "Maria".

    At most four words, title-cased, fillers dropped; None when no name-like words are found.
    """
    found = find_name(text, asked=True)
    return found[0] if found else None


def classify_urgency(text: str) -> Urgency:
    """The urgency of an answer to "how urgent is it?": a danger is an emergency; then plain
    words ("pretty urgent", "no rush", "not urgent"); then "today" or "next week"; else routine."""
    utterance = read(text)
    if detect_emergency(utterance) is not None:
        return Urgency.EMERGENCY
    plain = plain_urgency(utterance.tokens)
    if plain is not None:
        return plain
    reading = read_slots(utterance, MessageField.URGENCY)
    return reading.urgency_when or Urgency.ROUTINE


# --- text hygiene --------------------------------------------------------------------------


def _truncated(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


def _quoted(text: str) -> str:
    return f"“{_truncated(clean(text), MAX_QUOTE_CHARS)}”"
