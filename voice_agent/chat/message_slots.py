"""Reading the parts of a message from whatever the caller says, in any order.

"Hi, this is Jordan, my sink is leaking, you can call me on this number" gives a name, a need
and a confirmed callback number in one breath. :func:`read_slots` finds each part the words
carry — name, need (in the caller's own words), a phone number or a tail of one, whether the
number they call from will do, urgency, a preferred time, the job's address — and whether the
caller is correcting something ("no, it's …"). It does not decide what to keep: the interviewer
does, knowing what it asked.

A name needs an introduction ("my name is", "this is") unless the caller was just asked for
their name; a need given unasked must name a recognisable problem. Urgency words count unasked
only when they are plain ("pretty urgent", "no rush"); "today" alone counts as an answer to
"how urgent is it?".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voice_agent.chat.caller_questions import find_question
from voice_agent.chat.caller_text import (
    BOUNDARIES,
    FILLERS,
    Phrases,
    Utterance,
    Word,
    negated,
    read,
    word_set,
)
from voice_agent.chat.emergencies import emergency_kinds, no_heat
from voice_agent.chat.numbers_in_words import digit_runs, phone_number_run
from voice_agent.chat.port import MessageField, Urgency
from voice_agent.chat.topics import TRADE_WORDS, find_topic

MAX_NAME_WORDS = 4
MAX_NAME_WORD_CHARS = 40

_STRONG_INTROS = Phrases(
    """my name is | my name's | my names | my name | name is | name's | the name is | names
    | this is | this here is"""
)
_WEAK_INTROS = Phrases("it's | it is | its | i'm | i am | im | call me | it was")
_NAME_LEADING_SKIP = word_set(
    "yeah yes yep yup sure okay ok hi hello hey oh so well alright right hiya morning afternoon"
    " evening good"
)
_NAME_STOPS = word_set(
    """a an the and but or so because calling about from with at in on for of to here speaking
    i i'm im my me we you your it it's its is was not no just really having trying looking
    wondering going gonna need needing got have has sorry please thanks thank there that this
    what who why how when where leaking broken flooding yeah yes okay ok urgent urgently pretty
    very kind sort fairly quite super real actually still also again back home out locked stuck
    good fine great bad terrible awful sure glad afraid worried concerned hoping hi hello hey
    over up down outside inside upstairs downstairs away gone done sick tired new old busy free
    available interested curious confused lost trying going coming leaving getting can could
    would will should do does did may might must let lemme is are am was were has have had get
    want wanted wanna needs talk speak tell ask asking wait hold hang listen look excuse pardon
    huh
    man god gosh wow geez jeez oh well um uh hmm like right wrong correct one two three four
    five six seven eight nine zero oh double triple ten twenty number phone cell mobile
    monday tuesday wednesday thursday friday saturday sunday today tonight tomorrow morning
    afternoon evening night week weekend emergency asap someone somebody anyone nobody calling
    called call texting text sir maam ma'am the plumber electrician
    locksmith company business customer homeowner tenant landlord owner manager renter"""
)
TITLES = {
    "dr": "Dr.",
    "doctor": "Dr.",
    "mr": "Mr.",
    "mister": "Mr.",
    "mrs": "Mrs.",
    "missus": "Mrs.",
    "ms": "Ms.",
    "miss": "Miss",
}
"""Titles a caller may give with their name, as we write them."""
_NAME_CORRECTION = Phrases("sorry | i mean | actually | no | or rather | rather | i meant")
_NAME_ADVERBS = word_set("actually just really um uh")  # "it's actually Jordan Smith"
_NAME_FOLLOWERS = word_set(
    """here speaking calling from and my i i'm im it's its with at on the we our this that's
    there's you again again so but also"""
)
_CORRECTION_START = re.compile(
    r"^(?:no|nope|nah|sorry|actually|wait|oops|correction|i\s+mean|hold\s+on|scratch\s+that)\b"
)
_WRONG = re.compile(
    r"""\b(?:
        (?:that's|that\s+is|thats|it's|its|that\s+was)\s+(?:wrong|not\s+right|incorrect|not\s+it
            |not\s+correct|not\s+quite|not\s+my\s+number|a\s+mistake)
      | wrong\s+number | got\s+it\s+wrong | not\s+my\s+number | (?:that's|thats)\s+not\s+it
      | you\s+(?:got|have|heard)\s+(?:it|that)\s+wrong | (?:one|a)\s+digit\s+(?:is\s+)?(?:off|wrong)
    )\b""",
    re.VERBOSE,
)
_THIS_NUMBER = re.compile(
    r"""\b(?:
        (?:call|reach|text|contact|get|try|ring)\s+me\s+(?:back\s+)?(?:on|at|with|through|using)?\s*
            (?:this|that|the\s+same|same|this\s+same)\s+(?:number|one|phone|line|cell|mobile)
      | (?:this|that|the\s+same|same)\s+(?:number|one|phone\s+number|phone|line|cell|cell\s+phone
            |mobile)(?:'s|\s+is|\s+should\s+be|\s+will\s+be|\s+would\s+be)?\s+(?:is\s+)?
            (?:fine|good|great|best|the\s+best|ok|okay|perfect|works|work|right|correct|better
            |will\s+do)
      | (?:this|that|it)(?:'s|\s+is|s)\s+(?:my|the|a)\s+(?:cell|cell\s+phone|cellphone|mobile
            |phone|number|best\s+number|best\s+one|personal\s+(?:cell|phone|number)|own\s+phone)
      | (?:the\s+)?(?:number|one|phone)\s+(?:i'm|i\s+am|im)\s+(?:calling|on)\s*(?:from|on|with)?
      | (?:reach|call|get|text)\s+me\s+(?:here|on\s+here|right\s+here)
      | (?:use|call|try)\s+(?:this|that|the\s+same)\s+(?:number|one)
      | same\s+(?:number|one) | (?:yes|yeah|yep|yup)\s+(?:this|that)\s+(?:one|number)
      | this\s+(?:one|number)\s+(?:please|is\s+mine)
    )\b""",
    re.VERBOSE,
)
_OTHER_NUMBER = re.compile(
    r"""\b(?:
        (?:another|different|other|second|better|separate|alternate|alternative|new)\s+
            (?:number|phone|line|cell|one)
      | not\s+(?:this|that|the\s+same)\s+(?:one|number|phone)
      | (?:this|that)(?:'s|\s+is|s)\s+(?:my\s+|a\s+)?(?:work|office|wife's|husband's|friend's
            |mom's|dad's|son's|daughter's|business|landline|neighbor's|neighbour's)
      | (?:this|that|it)(?:'s|\s+is|s)?\s+(?:not|isn't|n't)\s+(?:my|the\s+best|a\s+good|good)
      | (?:this|that)\s+(?:one|number|phone)\s+(?:isn't|is\s+not|doesn't|won't|wont|is\s+bad)
      | instead
      | (?:call|try|use|reach\s+me\s+(?:at|on))\s+my\s+(?:cell|mobile|work|office|home|other
            |wife's|husband's|personal)
      | don't\s+(?:call|use)\s+(?:this|that)
    )\b""",
    re.VERBOSE,
)
_NOT_A_WISH = word_set("not no since started broke good last yesterday ago")
_CALLBACK_CUES = re.compile(
    r"""\b(?:
        (?:just|please|only)\s+call(?:\s+(?:instead|please|only))? | call\s+instead
      | (?:don't|do\s+not|dont|never|no)\s+(?:send\s+)?(?:me\s+)?(?:any\s+)?(?:texts?|texting
            |messages?)(?:\s+me)?
      | (?:(?:you\s+can|you\s+could|can\s+you|could\s+you|please|just)\s+)?
            (?:call|reach|text|contact|get\s+a\s+hold\s+of|ring)\s+me(?:\s+back)?
      | (?:my|the|this|that|a|best|good|better|other|another|different|same)\s+
            (?:number|cell|cell\s+phone|phone\s+number|mobile|phone|line)
      | call\s+(?:back|this|that)
    )\b""",
    re.VERBOSE,
)
_AGREES = re.compile(
    r"""\b(?:
        (?:this|that|it)(?:'s|\s+is|s)\s+(?:fine|good|great|ok|okay|perfect|right|correct|best
            |the\s+best|the\s+one|it)
      | (?:that|this|it)\s+works | i\s+guess\s+so | guess\s+so | i\s+think\s+so | uh\s+huh
      | sounds\s+good | works\s+for\s+me | that'll\s+do | will\s+do
    )\b
    | ^(?:yeah\s+|yes\s+|yep\s+|um\s+)?(?:this|that)\s+(?:one|number)\b""",
    re.VERBOSE,
)
_YES = word_set(
    """yes yeah yep yup sure correct right ok okay fine good works best perfect exactly
    absolutely definitely mhm uh-huh yea ya"""
)
_NO = word_set("no nope nah")

_URGENT = Phrases(
    """urgent | urgently | pretty urgent | asap | a s a p | as soon as possible
    | soon as possible | as soon as you can | as quick as you can | as quickly as possible
    | quick as possible | right away | immediately | hurry | in a hurry | can't wait
    | cannot wait | cant wait | time sensitive | high priority | top priority | same day
    | right now | straight away | quickly"""
)
_URGENT_WHEN = Phrases(
    """today | tonight | this morning | this afternoon | this evening | soon | fairly soon
    | pretty soon | real soon | very soon | sooner | quick | fast | now | important | no water
    | getting worse | worse
    | no running water | without water"""
)
_ROUTINE = Phrases(
    """no rush | no big rush | no hurry | not in a hurry | not in a rush | whenever
    | whenever works | whenever you can | can wait | it can wait | take your time
    | no big deal | low priority | at your convenience | when you can | when you get a chance
    | when you have time | when you get time | not pressing | not a big deal | not a huge deal
    | no pressure | in no hurry | in no rush"""
)
_CHANGE_OF_MIND = Phrases(
    """actually | i mean | no wait | wait | on second thought | scratch that | or rather
    | come to think of it"""
)
_ROUTINE_WHEN = Phrases(
    """tomorrow | next week | this week | later this week | sometime | some time | anytime
    | any time | later | whenever | monday | tuesday | wednesday | thursday | friday | saturday
    | sunday | the weekend | this weekend | next weekend | next month | in a few days"""
)
_URGENCY_WORDS = word_set(
    """it's it is its pretty really very kind of sort fairly quite super somewhat a bit little
    urgent urgently emergency an asap as soon possible if you can today tonight tomorrow
    morning afternoon evening this next week weekend now right away immediately quickly quick
    no rush hurry not whenever anytime any time sometime some works fine good great wait would
    be nice ideal best please so i'd like i'm i we someone somebody come out by after before
    around at noon o'clock am pm the end day later earlier early late big deal matter much too
    that important priority low high definitely probably guess think don't know maybe yeah yes
    okay ok well could need want hoping hope possibly rather prefer preferably for me soon
    asap sooner fast in and but or there monday tuesday wednesday thursday friday saturday
    sunday one two three four five six seven eight nine ten eleven twelve thirty"""
)
_CHATTER = word_set(
    """hi hello hey hiya yeah yes yep yup ok okay so well oh and but also plus anyway alright
    right sure like thanks thank you please um uh good morning afternoon evening how are doing
    great fine guess sorry again listen look see anyways basically
    um yep mhm"""
)
_CLAUSE_CUES = Phrases(
    """and | but | so | also | plus | and also | my name | this is | it's | it is | its | i'm
    | i am | im | i | i've | we | we've | we're | you can | call me | reach me | my | our
    | there's | there is | the address | address is | if possible | please | anyway | oh and
    | because"""
)
_FILLER_WORDS = re.compile(
    r"(?<![\w'])(?:" + "|".join(sorted(FILLERS, key=len, reverse=True)) + r")(?![\w'])[,]?",
    re.IGNORECASE,
)
_NEED_CUES = Phrases(
    """i need | we need | i'm calling about | im calling about | calling about | calling because
    | calling for | i have a problem | we have a problem | having a problem | having problems
    | having trouble | having issues | having an issue | there's a problem | need someone
    | need somebody | need help | want someone | looking for someone | need a | need an
    | need to get | need my | need our | need the"""
)
_ALREADY_SAID = re.compile(r"\balready\s+(?:told|said|gave|mentioned|explained)\b")
_CONJUNCTIONS = word_set("and but so also plus because oh anyway")

_TIME = re.compile(
    r"""(?<![\w'])(?:(?:any\s*time|sometime|some\s+time|early|late|later|first\s+thing)\s+)?(?:
        today | tonight | tomorrow(?:\s+(?:morning|afternoon|evening|night))?
      | this\s+(?:morning|afternoon|evening|week|weekend)
      | next\s+(?:week|weekend|monday|tuesday|wednesday|thursday|friday|saturday|sunday)
      | (?:on\s+)?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?
            (?:\s+(?:morning|afternoon|evening))?
      | (?:in\s+the\s+)?(?:mornings?|afternoons?|evenings?)
      | (?:after|before|around|by|between)\s+(?:\d{1,2}(?::\d{2})?|one|two|three|four|five|six
            |seven|eight|nine|ten|eleven|twelve|noon|lunch|lunchtime|midnight|work)
            (?:\s*(?:am|pm|a\.m\.|p\.m\.|a\s+m|p\s+m|o'clock))?
      | at\s+(?:\d{1,2}(?::\d{2})?|one|two|three|four|five|six|seven|eight|nine|ten|eleven
            |twelve|noon)(?:\s*(?:am|pm|a\.m\.|p\.m\.|a\s+m|p\s+m|o'clock))
      | any\s*time(?:\s+(?:today|tomorrow|this\s+week))? | the\s+weekend
      | end\s+of\s+(?:the|this)\s+week
    )(?:\s+(?:if\s+possible|if\s+you\s+can|if\s+that's\s+possible|if\s+at\s+all\s+possible))?
    (?![\w'])""",
    re.VERBOSE,
)
_TIME_WANTED = re.compile(
    r"""\b(?:come|coming|come\s+out|come\s+by|stop\s+by|be\s+here|get\s+here|available|works?
      |would\s+be|prefer|preferably|if\s+possible|if\s+you\s+can|best|good\s+for\s+me|free|someone
      |somebody|schedule|fine|great|ideal|okay|ok|call\s+me|i'm\s+home|i'll\s+be\s+home|around
      |possible)\b""",
    re.VERBOSE,
)
_STREET_KINDS = (
    r"street|st|avenue|ave|road|rd|drive|dr|lane|ln|boulevard|blvd|court|ct|way|place|pl|circle"
    r"|cir|parkway|pkwy|terrace|trail|highway|hwy|loop|square|row|pike|crescent"
)
_NOT_STREET = (
    r"(?:in|the|a|an|my|of|on|at|to|and|is|are|it|for|with|leaks?|times?|days?|hours?|years?"
    r"|minutes?|weeks?|cars?|kids?|people|of|or|but|so)"
)
_ADDRESS = re.compile(
    rf"""(?<![\w'])(?:
        (?P<number>\d{{1,6}}[a-z]?|(?:(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven
            |twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty
            |forty|fifty|sixty|seventy|eighty|ninety|hundred|oh|zero)\s+){{1,4}})
        \s*(?P<street>(?:(?:north|south|east|west|n|s|e|w)\s+)?
            (?:(?!{_NOT_STREET}\b)[a-z']+\s+){{1,3}}(?:{_STREET_KINDS}))\b
        (?P<unit>\s+(?:apartment|apt|unit|suite|number)\s+\w+)?
    )""",
    re.VERBOSE,
)
_ADDRESS_INTRO = re.compile(
    r"""\b(?:address\s+is|address's|the\s+address|i'm\s+at|i\s+am\s+at|we're\s+at|we\s+are\s+at
      |i\s+live\s+at|we\s+live\s+at|located\s+at|the\s+house\s+is\s+at|job\s+is\s+at
      |property\s+is\s+at)\s+(?P<address>[^.,!?;]{4,80})""",
    re.VERBOSE,
)


@dataclass
class SlotReading:
    """What one utterance says about the message's parts."""

    name: str | None = None
    name_introduced: bool = False  # "my name is …": given on purpose, may correct an earlier one
    need: str | None = None  # the caller's own words
    need_is_news: bool = False  # the need names a recognisable problem or a danger
    number: str | None = None  # a whole phone number said, E.164
    number_tail: str | None = None  # 4 or 7 digits said alone: the end of a number
    this_number: bool = False  # the number they are calling from will do
    agrees: bool = False  # "that's fine", "this is good": agreement with what was asked
    other_number: bool = False  # another number is better
    yes: bool = False
    no: bool = False
    correction: bool = False  # "no, it's …", "actually …"
    says_wrong: bool = False  # "that's wrong", "wrong number"
    urgency: Urgency | None = None  # plain urgency words (emergencies are found elsewhere)
    urgency_when: Urgency | None = None  # "today", "tomorrow": an answer to "how urgent?"
    preferred_time: str | None = None
    address: str | None = None


def read_slots(
    said: str | Utterance, asking: MessageField | None, business_name: str = ""
) -> SlotReading:
    """Every part of the message that ``said`` carries; ``asking`` is the pending question."""
    utterance = read(said) if isinstance(said, str) else said
    tokens = utterance.tokens
    reading = SlotReading()
    if not tokens:
        return reading
    lowered = utterance.text.casefold()
    roles: list[str | None] = [None] * len(tokens)

    _read_address(utterance, lowered, roles, reading)
    _read_numbers(utterance, lowered, roles, reading)
    _read_name(utterance, asking, business_name, roles, reading)
    _read_urgency(utterance, reading)
    _read_time(utterance, lowered, asking, roles, reading)
    _read_need(utterance, asking, business_name, roles, reading)
    return reading


# --- address -----------------------------------------------------------------------------------


def _read_address(
    utterance: Utterance, lowered: str, roles: list[str | None], reading: SlotReading
) -> None:
    street = _ADDRESS.search(lowered)
    if street is not None:
        digits = "".join(run.digits for run in digit_runs(read(street.group("number"))))
        number = digits or street.group("number").strip()
        parts = [number, _title(street.group("street"))]
        if street.group("unit"):
            parts.append(_title(street.group("unit").strip()))
        reading.address = " ".join(parts)
        _mark(utterance, roles, street.start(), street.end(), "address")
        return
    introduced = _ADDRESS_INTRO.search(lowered)
    if introduced is not None:
        start, end = introduced.span("address")
        words = utterance.text[start:end].strip()
        said_address = introduced.group().startswith(("address", "the address"))
        if any(char.isdigit() for char in words) or (said_address and len(words.split()) >= 2):
            reading.address = words
            _mark(utterance, roles, introduced.start(), end, "address")


def _title(words: str) -> str:
    return " ".join(word if word.isupper() else word.capitalize() for word in words.split())


# --- callback number ---------------------------------------------------------------------------


def _read_numbers(
    utterance: Utterance, lowered: str, roles: list[str | None], reading: SlotReading
) -> None:
    tokens = utterance.tokens
    found = phone_number_run(_without(utterance, roles))
    if found is not None:
        reading.number, first, last = found
        for index in range(first, last + 1):
            roles[index] = "number"
    else:
        for run in digit_runs(_without(utterance, roles)):
            tails = [digits for digits in run.readings() if len(digits) in (4, 7)]
            if tails and reading.number_tail is None:
                reading.number_tail = tails[-1]
            if len(run.digits) >= 3:  # digits said as a number, not part of the need
                for index in range(run.first, run.last + 1):
                    roles[index] = roles[index] or "number"
    reading.this_number = _THIS_NUMBER.search(lowered) is not None
    reading.other_number = _OTHER_NUMBER.search(lowered) is not None
    if reading.this_number and reading.other_number:
        reading.other_number = False  # "no, this one is fine": the explicit choice wins
    for pattern in (_THIS_NUMBER, _OTHER_NUMBER, _CALLBACK_CUES):
        for match in pattern.finditer(lowered):
            _mark(utterance, roles, match.start(), match.end(), "number")
    first_clause = [token for token in tokens[:6] if token not in BOUNDARIES]
    reading.agrees = _AGREES.search(lowered) is not None
    reading.yes = any(token in _YES for token in first_clause) or reading.agrees
    reading.no = any(token in _NO for token in first_clause[:3]) or lowered.startswith("not ")
    reading.correction = _CORRECTION_START.search(lowered) is not None
    reading.says_wrong = _WRONG.search(lowered) is not None
    reading.correction = reading.correction or reading.says_wrong


def _without(utterance: Utterance, roles: list[str | None]) -> Utterance:
    """``utterance`` with the words already given a role (an address) left out."""
    if not any(roles):
        return utterance
    kept = [
        word if role is None else Word("address", word.start, word.end)
        for word, role in zip(utterance.words, roles, strict=True)
    ]
    return Utterance(utterance.text, tuple(kept))


# --- name --------------------------------------------------------------------------------------


def _read_name(
    utterance: Utterance,
    asking: MessageField | None,
    business_name: str,
    roles: list[str | None],
    reading: SlotReading,
) -> None:
    found = find_name(utterance, asked=asking is MessageField.CALLER_NAME, business=business_name)
    if found is None:
        return
    reading.name, first, last, reading.name_introduced = found
    for index in range(first, last + 1):
        if roles[index] is None:
            roles[index] = "name"


def find_name(
    said: str | Utterance, *, asked: bool = True, business: str = ""
) -> tuple[str, int, int, bool] | None:
    """The caller's name, with the words it took (first, last) and whether it was introduced.

    With ``asked`` (the caller was just asked their name) "it's Maria", "I'm Dan" and a bare
    "Maria Lopez" count; otherwise only "my name is …" or "this is …" do.
    """
    utterance = read(said) if isinstance(said, str) else said
    tokens = utterance.tokens
    excluded = word_set(re.sub(r"[^\w\s']", " ", business))
    correcting = _CORRECTION_START.search(utterance.text.casefold()) is not None
    intros = [_STRONG_INTROS, _WEAK_INTROS] if asked or correcting else [_STRONG_INTROS]
    for intros_kind in intros:
        for start, end in intros_kind.find(tokens):
            if start > 0 and tokens[start - 1] in ("not", "isn't", "wasn't"):
                continue
            name = _name_at(utterance, end, excluded, bare=not asked or intros_kind is _WEAK_INTROS)
            if name is not None:
                chosen = _corrected_name(utterance, name[1], excluded) or name
                return chosen[0], start, chosen[1], True
    if not asked:
        return None
    start = 0
    while start < len(tokens) and (tokens[start] in _NAME_LEADING_SKIP or tokens[start] in ","):
        start += 1
    name = _name_at(utterance, start, excluded, bare=True)
    if name is None:
        return None
    return name[0], start, name[1], False


def _corrected_name(
    utterance: Utterance, after: int, excluded: frozenset[str]
) -> tuple[str, int] | None:
    """ "My name is Katie, sorry, Kate Morgan": the name said after a correction, if any."""
    tokens = utterance.tokens
    corrected: tuple[str, int] | None = None
    for start, end in _NAME_CORRECTION.find(tokens[after + 1 :]):
        if start > 2:
            break
        name = _name_at(utterance, after + 1 + end, excluded, bare=True)
        if name is not None:
            corrected = name
    return corrected


def _name_at(
    utterance: Utterance, start: int, excluded: frozenset[str], *, bare: bool
) -> tuple[str, int] | None:
    """The name whose words begin at word ``start`` (punctuation skipped), and its last word."""
    tokens = utterance.tokens
    index = start
    while index < len(tokens) and (tokens[index] in BOUNDARIES or tokens[index] in _NAME_ADVERBS):
        index += 1
    words: list[str] = []
    if index < len(tokens) and tokens[index] in TITLES:  # "dr smith", "it's mister lee"
        words.append(TITLES[tokens[index]])
        index += 1
        if index < len(tokens) and tokens[index] == ".":
            index += 1
    last = index
    while index < len(tokens) and len(words) < MAX_NAME_WORDS:
        token = tokens[index]
        if token in BOUNDARIES or not _is_name_word(token, excluded, bare=bare):
            break
        word = utterance.words[index]
        words.append(_title_case(utterance.text[word.start : word.end]))
        last = index
        index += 1
    if not words or words[-1] in TITLES.values():
        return None
    if bare and len(words) < MAX_NAME_WORDS and index < len(tokens):
        following = tokens[index]
        if following not in BOUNDARIES and following not in _NAME_FOLLOWERS:
            return None  # "oh man what a day": not a name
    return " ".join(words), last


def _is_name_word(token: str, excluded: frozenset[str], *, bare: bool) -> bool:
    if len(token) > MAX_NAME_WORD_CHARS or token in _NAME_STOPS or token in excluded:
        return False
    if not all(part.isalpha() for part in re.split(r"['-]", token)):
        return False
    if token.endswith("ing") and len(token) >= 7:
        return False  # "this is happening again", "i'm calling"
    return not (bare and token in TRADE_WORDS)


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


# --- urgency and time --------------------------------------------------------------------------


def _read_urgency(utterance: Utterance, reading: SlotReading) -> None:
    """Urgency from the words; after a change of mind ("it can wait. actually no, today
    please") only the words after it count, when they say anything about urgency."""
    tokens = utterance.tokens
    changes = _CHANGE_OF_MIND.find(tokens)
    if changes:
        after = tokens[changes[-1][1] :]
        plain, when = plain_urgency(after), _urgency_when(after, utterance)
        if plain or when:
            reading.urgency, reading.urgency_when = plain, None if plain else when
            return
    reading.urgency = plain_urgency(tokens)
    if reading.urgency is None:
        reading.urgency_when = _urgency_when(tokens, utterance)


def _urgency_when(tokens: tuple[str, ...], utterance: Utterance) -> Urgency | None:
    if _URGENT_WHEN.occurs(tokens, plain=True) or no_heat(utterance):
        return Urgency.URGENT
    if _ROUTINE_WHEN.occurs(tokens):
        return Urgency.ROUTINE
    return None


def plain_urgency(tokens: tuple[str, ...]) -> Urgency | None:
    """URGENT or ROUTINE when the words say so plainly ("pretty urgent", "no rush", "not
    urgent"); None otherwise. A negated urgency ("not urgent, but today would be nice") wins."""
    negated_urgency = any(negated(tokens, start) for start, _ in _URGENT.find(tokens))
    routine = any(
        not negated(tokens, start) or tokens[start] in ("not", "no")
        for start, _ in _ROUTINE.find(tokens)
    )
    if negated_urgency or routine:
        return Urgency.ROUTINE
    if _URGENT.occurs(tokens, plain=True):
        return Urgency.URGENT
    return None


def _read_time(
    utterance: Utterance,
    lowered: str,
    asking: MessageField | None,
    roles: list[str | None],
    reading: SlotReading,
) -> None:
    wanted = asking is MessageField.URGENCY or _TIME_WANTED.search(lowered) is not None
    for match in _TIME.finditer(lowered):
        previous = lowered[: match.start()].split()[-1:]
        if previous and previous[0].strip(",.") in _NOT_A_WISH:
            continue
        if wanted:
            reading.preferred_time = utterance.text[match.start() : match.end()]
        return


# --- need --------------------------------------------------------------------------------------


def _read_need(
    utterance: Utterance,
    asking: MessageField | None,
    business_name: str,
    roles: list[str | None],
    reading: SlotReading,
) -> None:
    pieces = _need_pieces(utterance, roles, business_name)
    if not pieces:
        return
    texts = [
        _piece_text(utterance, first, last, lead=index == 0)
        for index, (first, last) in enumerate(pieces)
    ]
    need = " ".join(text for text in texts if text)
    if not need or not any(char.isalnum() for char in need):
        return
    news = find_topic(need) is not None or bool(emergency_kinds(need))
    if asking is not MessageField.NEED and not (news or _NEED_CUES.occurs(read(need).tokens)):
        return  # unasked, only a recognisable problem counts as the need
    reading.need, reading.need_is_news = need, news


def _need_pieces(
    utterance: Utterance, roles: list[str | None], business_name: str
) -> list[tuple[int, int]]:
    """The stretches of words that say what the caller needs: from the first clause about it to
    the last, over any small talk between them, but never over a name, number or time."""
    pieces: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    previous_end: int | None = None
    for first, last in _segments(utterance.tokens, roles):
        adjacent = previous_end is not None and not any(roles[previous_end + 1 : first])
        if current is not None and not adjacent:
            pieces.append(current)
            current = None
        if _is_need(utterance, first, last, business_name):
            current = (current[0], last) if current else (first, last)
        previous_end = last
    if current is not None:
        pieces.append(current)
    return pieces


def _segments(tokens: tuple[str, ...], roles: list[str | None]) -> list[tuple[int, int]]:
    """Runs of words with no role, cut at punctuation and where a new clause starts."""
    segments: list[tuple[int, int]] = []
    start: int | None = None
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if roles[index] is not None or token in BOUNDARIES:
            if start is not None:
                segments.append((start, index - 1))
            start = None
            index += 1
            continue
        cue = _CLAUSE_CUES.at(tokens, index)
        if cue and start is not None and start < index:
            segments.append((start, index - 1))
            start = index
        if start is None:
            start = index
        index += max(cue, 1)
    if start is not None:
        segments.append((start, len(tokens) - 1))
    return segments


def _is_need(utterance: Utterance, first: int, last: int, business_name: str) -> bool:
    tokens = utterance.tokens[first : last + 1]
    content = [token for token in tokens if token not in _CHATTER]
    if not content:
        return False
    if all(token in _URGENCY_WORDS for token in tokens):
        return False
    piece = utterance.span(first, last)
    if _ALREADY_SAID.search(piece.casefold()):
        return False  # "I already told you": about the conversation, not the job
    return find_question(piece, business_name) is None or find_topic(piece) is not None


def _piece_text(utterance: Utterance, first: int, last: int, *, lead: bool) -> str:
    tokens = utterance.tokens
    if lead:
        while first <= last and (tokens[first] in _CHATTER or tokens[first] in _CONJUNCTIONS):
            first += 1
    while last >= first and tokens[last] in ("so", "and", "but", "please", "um", "like"):
        last -= 1
    if first > last:
        return ""
    end = utterance.words[last].end
    text = utterance.text
    while end < len(text) and text[end] in ".!?":
        end += 1
    piece = _FILLER_WORDS.sub("", text[utterance.words[first].start : end])
    return " ".join(piece.split()).strip(" ,;:")


def _mark(utterance: Utterance, roles: list[str | None], start: int, end: int, role: str) -> None:
    """Give ``role`` to every word between characters ``start`` and ``end`` without one."""
    for index, word in enumerate(utterance.words):
        if word.start >= start and word.end <= end and roles[index] is None:
            roles[index] = role
