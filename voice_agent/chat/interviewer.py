"""The scripted interviewer: the embedded, deterministic ChatModel that takes a caller's message.

It asks, in order, for the caller's name, what they need, whether the number they are calling
from is the best callback number (read back digit by digit), and how urgent it is; then it
reports the message finished and the Conversation reads the consent script. It never speaks about
texting or consent.

All per-call state lives in the :class:`CallerMessage`: the next question is the first part of
the message still empty, and ``missed_answers`` counts the answers that did not fit. A question
whose answer was empty or unusable is asked again once in a short "Sorry, I didn't catch that"
form; after a second miss the interviewer notes the gap and moves on.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator

import phonenumbers

from voice_agent.chat.port import (
    AgentReply,
    CallContext,
    CallerMessage,
    MessageField,
    Urgency,
    WholeReply,
)

logger = logging.getLogger(__name__)

QUESTION_ORDER = (
    MessageField.CALLER_NAME,
    MessageField.NEED,
    MessageField.CALLBACK_NUMBER,
    MessageField.URGENCY,
)
MAX_MISSES_PER_QUESTION = 2
MAX_NAME_WORDS = 4
MAX_NAME_WORD_CHARS = 40
MAX_NEED_CHARS = 500
MAX_QUOTE_CHARS = 200
MAX_DIALLED_DIGITS = 18  # E.164 allows 15 digits; "011" or "1" dialling prefixes add a few
DEFAULT_REGION = "US"

_SORRY = "Sorry, I didn't catch that."

_SPOKEN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGIT_WORDS = {word: str(digit) for digit, word in enumerate(_SPOKEN_DIGITS)}
_REPEATS = {"double": 2, "triple": 3}
_ZERO_LETTERS = frozenset({"oh", "o"})
_FILLERS = frozenset({"um", "umm", "uh", "uhh", "uhm", "er", "erm", "ah", "hmm", "mm", "well"})

_CALLBACK_YES = "yes yeah yep yup sure correct right ok okay fine good works best perfect exactly"
_CALLBACK_NO = "no nope nah not don't isn't different another other"

_NAME_INTRO = re.compile(
    r"\b(?:my name is|my name's|name is|name's|this is|it is|it's|i am|i'm|call me)\b[\s,:]*",
    re.IGNORECASE,
)
_NAME_TOKEN = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*|\d+|[^\w\s]")
_NAME_LEADING_SKIP = "yeah yes yep sure okay ok hi hello hey oh so uh um"
_NAME_STOPS = """
a an the and but or so because calling about from with at in on for of to here speaking i i'm im
my me we you your it it's is was not no just really having trying looking wondering going gonna
need needing got have has sorry please thanks thank there that this what who why how when where
leaking broken flooding yeah yes okay ok
"""
_CLAUSE_END = frozenset(".,!?;:")

_EMERGENCY_PHRASES = """
emergency | flood | floods | flooding | flooded | water everywhere | gas smell | smell gas
smell of gas | smells like gas | smelling gas | gas leak | leaking gas | carbon monoxide
spark | sparks | sparking | smoke | smoking | fire | burning | burst | no heat | no power
sewage
"""
_URGENT_PHRASES = """
urgent | urgently | asap | as soon as possible | as soon as you can | right away
right now | immediately | today | tonight | this morning | this afternoon | this evening
quickly | hurry
"""
_ROUTINE_PHRASES = """
no rush | no big rush | no hurry | not in a hurry | whenever | can wait | not pressing
"""
_URGENCY_NEGATIONS = "not no isn't don't doesn't never nothing without ain't wasn't"
_CLAUSE_BOUNDARIES = frozenset({".", ",", "!", "?", ";", "but"})
_NEGATION_REACH = 3
_WORD_OR_PUNCTUATION = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[.,!?;]")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'"})


def _phrases(listing: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(phrase.split()) for phrase in re.split(r"[|\n]", listing) if phrase.strip())


_YES_WORDS = frozenset(_CALLBACK_YES.split())
_NO_WORDS = frozenset(_CALLBACK_NO.split())
_LEADING_SKIP = frozenset(_NAME_LEADING_SKIP.split())
_NAME_STOP_WORDS = frozenset(_NAME_STOPS.split())
_NEGATIONS = frozenset(_URGENCY_NEGATIONS.split())
_EMERGENCY = _phrases(_EMERGENCY_PHRASES)
_URGENT = _phrases(_URGENT_PHRASES)
_ROUTINE = _phrases(_ROUTINE_PHRASES)


class ScriptedInterviewer:
    """A ChatModel that asks four fixed questions and fills in the message deterministically."""

    name = "scripted"

    def reply_stream(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> WholeReply:
        """The scripted reply is ready at once: one piece."""
        return WholeReply(self.reply(context, message, caller_said))

    async def reply(
        self, context: CallContext, message: CallerMessage, caller_said: str | None
    ) -> AgentReply:
        """Record ``caller_said`` as the answer to the pending question and ask the next one."""
        pending = _pending_field(message)
        if pending is None:
            return AgentReply(_closing(context, message), finished=True)
        if caller_said is None:
            return AgentReply(_question(pending, context), finished=False)
        acknowledgement = _record_answer(pending, context, message, caller_said)
        if acknowledgement is None:
            message.missed_answers.append(pending)
            if message.times_missed(pending) < MAX_MISSES_PER_QUESTION:
                return AgentReply(_re_ask(pending, context), finished=False)
            logger.info("moving on without an answer", extra={"message_field": pending.value})
            acknowledgement = _give_up(pending, context, message)
        following = _pending_field(message)
        if following is None:
            return AgentReply(_closing(context, message), finished=True)
        return AgentReply(f"{acknowledgement} {_question(following, context)}", finished=False)


def _pending_field(message: CallerMessage) -> MessageField | None:
    for message_field in QUESTION_ORDER:
        answered = getattr(message, message_field.value) is not None
        if not answered and message.times_missed(message_field) < MAX_MISSES_PER_QUESTION:
            return message_field
    return None


# --- what the interviewer says -------------------------------------------------------------


def _question(message_field: MessageField, context: CallContext) -> str:
    if message_field is MessageField.CALLER_NAME:
        return "To start, can I get your name?"
    if message_field is MessageField.NEED:
        return f"What can {context.business_name} help you with today?"
    if message_field is MessageField.CALLBACK_NUMBER:
        spoken = spoken_phone_number(context.caller_number)
        if spoken is None:
            return "What's the best number to reach you?"
        return f"Is the number you're calling from, {spoken}, the best one to reach you?"
    return "And how urgent is it? Is it an emergency, or can it wait a bit?"


def _re_ask(message_field: MessageField, context: CallContext) -> str:
    if message_field is MessageField.CALLER_NAME:
        return f"{_SORRY} What's your name?"
    if message_field is MessageField.NEED:
        return f"{_SORRY} What do you need help with?"
    if message_field is MessageField.CALLBACK_NUMBER:
        spoken = spoken_phone_number(context.caller_number)
        if spoken is None:
            return f"{_SORRY} What's the best number to reach you?"
        return f"{_SORRY} Is {spoken} the best number to reach you?"
    return f"{_SORRY} How urgent is it?"


def _closing(context: CallContext, message: CallerMessage) -> str:
    thanks = f"Thanks, {_first_name(message)}." if message.caller_name else "Thanks."
    callback = f"Someone from {context.business_name} will call you back {context.callback_time}."
    if message.urgency is Urgency.EMERGENCY:
        return (
            f"{thanks} I've got all that, and I've marked it as an emergency. {callback} "
            "If anyone is in danger, please call 911."
        )
    return f"{thanks} I've got all that. {callback}"


def _first_name(message: CallerMessage) -> str:
    return (message.caller_name or "").split(" ")[0]


def spoken_phone_number(e164: str) -> str | None:
    """The number as a receptionist reads it back: "five one two, five five five, zero one…".

    None when ``e164`` is not a valid phone number (a withheld or malformed caller ID).
    """
    number = _parsed_number(e164)
    if number is None:
        return None
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    groups = re.findall(r"\d+", national)
    return ", ".join(" ".join(_SPOKEN_DIGITS[int(digit)] for digit in group) for group in groups)


# --- recording answers ---------------------------------------------------------------------


def _record_answer(
    message_field: MessageField, context: CallContext, message: CallerMessage, said: str
) -> str | None:
    """Store the answer and return a short acknowledgement, or None when it is unusable."""
    text = _clean(said)
    if not any(char.isalnum() for char in text):
        return None
    if message_field is MessageField.CALLER_NAME:
        return _record_name(message, text)
    if message_field is MessageField.NEED:
        message.need = _truncated(text, MAX_NEED_CHARS)
        return "Got it."
    if message_field is MessageField.CALLBACK_NUMBER:
        return _record_callback(context, message, text)
    message.urgency = classify_urgency(text)
    return "Okay."


def _give_up(message_field: MessageField, context: CallContext, message: CallerMessage) -> str:
    """Note that a question went unanswered; the acknowledgement to say before moving on."""
    if message_field is MessageField.CALLER_NAME:
        message.notes.append("The caller didn't give a name.")
    elif message_field is MessageField.NEED:
        message.notes.append("The caller didn't say what they need.")
    elif message_field is MessageField.CALLBACK_NUMBER:
        return _give_up_callback(context, message)
    else:
        message.notes.append("The caller didn't say how urgent it is.")
    return "No problem."


def _record_name(message: CallerMessage, text: str) -> str | None:
    name = extract_name(text)
    if name is None:
        return None
    message.caller_name = name
    return f"Thanks, {_first_name(message)}."


def _record_callback(context: CallContext, message: CallerMessage, text: str) -> str | None:
    spoken_number = find_phone_number(text)
    if spoken_number is not None:
        message.callback_number = spoken_number
        return f"Thanks, I've got {spoken_phone_number(spoken_number)}."
    calling_number = _e164_or_none(context.caller_number)
    if calling_number is None:
        return None
    words = set(_words(text))
    if words & _NO_WORDS:
        message.callback_number = calling_number
        message.notes.append(
            "The caller said another number is better but gave none we could use; they said: "
            f"{_quoted(text)}. Using the number they called from."
        )
        return "Okay. I'll note the number you're calling from for now."
    if words & _YES_WORDS:
        message.callback_number = calling_number
        return "Great."
    return None


def _give_up_callback(context: CallContext, message: CallerMessage) -> str:
    calling_number = _e164_or_none(context.caller_number)
    if calling_number is None:
        message.notes.append("The caller gave no callback number.")
        return "No problem."
    message.callback_number = calling_number
    message.notes.append("The callback number wasn't confirmed; using the number they called from.")
    return "No problem. I'll use the number you're calling from."


# --- extraction ----------------------------------------------------------------------------


def extract_name(text: str) -> str | None:
    """The caller's name from an answer like "my name is Maria Lopez" or just "Maria".

    At most four words, title-cased, fillers dropped; None when no name-like words are found.
    """
    cleaned = _clean(text)
    intro = _NAME_INTRO.search(cleaned)
    after_intro = _name_at_start(cleaned[intro.end() :]) if intro else None
    return after_intro or _name_at_start(cleaned)


def _name_at_start(text: str) -> str | None:
    words: list[str] = []
    for token in _NAME_TOKEN.findall(text):
        lowered = token.casefold()
        if token in _CLAUSE_END:
            if words:
                break
            continue
        if not token[0].isalnum() or lowered in _FILLERS:
            continue
        if not words and lowered in _LEADING_SKIP:
            continue
        if lowered in _NAME_STOP_WORDS or not _is_name_word(token):
            break
        words.append(_title_case(token))
        if len(words) == MAX_NAME_WORDS:
            break
    return " ".join(words) or None


def _is_name_word(token: str) -> bool:
    parts = re.split(r"['-]", token)
    return len(token) <= MAX_NAME_WORD_CHARS and all(part.isalpha() for part in parts)


def _title_case(word: str) -> str:
    """Title-case an all-lower or all-upper name word: "o'brien" → "O'Brien"; "McKay" stays."""
    if not (word.islower() or word.isupper()):
        return word
    return "-".join(_title_case_part(part) for part in word.split("-"))


def _title_case_part(part: str) -> str:
    prefix, apostrophe, rest = part.partition("'")
    if apostrophe and len(prefix) == 1:
        return f"{prefix.upper()}'{rest.capitalize()}"
    return part.capitalize()


def find_phone_number(text: str) -> str | None:
    """The first valid phone number in ``text`` as E.164, from digits or spoken digit words.

    "five one two, five five five, zero one nine nine", "512-555-0199" and "double five" all
    count; numbers without a country code are read as US numbers.
    """
    runs = list(_digit_runs(text))
    for candidate in [*runs, "".join(runs)]:
        number = _e164_or_none(candidate)
        if number is not None:
            return number
    return None


def _digit_runs(text: str) -> Iterator[str]:
    """Stretches of digits, spoken or written; words other than digits and fillers end a run."""
    run = ""
    repeat = 1
    for token in re.findall(r"\+?\d+|[^\W\d_]+", _clean(text).casefold()):
        digits = _token_digits(token, run)
        if digits is not None:
            run += digits[0] * repeat + digits[1:]
            repeat = 1
        elif token in _REPEATS:
            repeat = _REPEATS[token]
        elif token not in _FILLERS:
            if run:
                yield run
            run, repeat = "", 1
    if run:
        yield run


def _token_digits(token: str, run: str) -> str | None:
    if token.lstrip("+").isdigit():
        return token
    if token in _DIGIT_WORDS:
        return _DIGIT_WORDS[token]
    if token in _ZERO_LETTERS and run:
        return "0"
    return None


def _e164_or_none(candidate: str) -> str | None:
    number = _parsed_number(candidate)
    if number is None:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parsed_number(candidate: str) -> phonenumbers.PhoneNumber | None:
    if not candidate or len(candidate) > MAX_DIALLED_DIGITS + 1:
        return None
    try:
        number = phonenumbers.parse(candidate, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def classify_urgency(text: str) -> Urgency:
    """Emergency words win; then an explicit "no rush"/"not urgent"; then urgency words."""
    tokens = _words(text)
    if any(_mentions(tokens, phrase, negated=False) for phrase in _EMERGENCY):
        return Urgency.EMERGENCY
    plainly_routine = any(_mentions(tokens, phrase, negated=None) for phrase in _ROUTINE)
    if plainly_routine or any(_mentions(tokens, phrase, negated=True) for phrase in _URGENT):
        return Urgency.ROUTINE
    if any(_mentions(tokens, phrase, negated=False) for phrase in _URGENT):
        return Urgency.URGENT
    return Urgency.ROUTINE


def _mentions(tokens: list[str], phrase: tuple[str, ...], negated: bool | None) -> bool:
    """Whether ``phrase`` occurs; ``negated`` True/False asks for a negated/plain occurrence."""
    length = len(phrase)
    for start in range(len(tokens) - length + 1):
        if tuple(tokens[start : start + length]) != phrase:
            continue
        if negated is None or _is_negated(tokens, start) == negated:
            return True
    return False


def _is_negated(tokens: list[str], start: int) -> bool:
    for token in reversed(tokens[max(0, start - _NEGATION_REACH) : start]):
        if token in _CLAUSE_BOUNDARIES:
            return False
        if token in _NEGATIONS:
            return True
    return False


def _words(text: str) -> list[str]:
    return _WORD_OR_PUNCTUATION.findall(_clean(text).casefold().translate(_APOSTROPHES))


# --- text hygiene --------------------------------------------------------------------------


def _clean(text: str) -> str:
    """NFKC, control characters removed, whitespace collapsed, apostrophes made plain."""
    normalised = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    visible = "".join(
        " " if unicodedata.category(char).startswith("C") else char for char in normalised
    )
    return " ".join(visible.split())


def _truncated(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


def _quoted(text: str) -> str:
    return f"“{_truncated(text, MAX_QUOTE_CHARS)}”"
