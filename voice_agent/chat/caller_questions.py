"""Questions a caller asks the receptionist, and short truthful answers from the business's setup.

"Who is this?", "Are you a robot?", "How much will it cost?", "What kind of texts?", "When will
they call me back?", "Do you fix water heaters?" — a caller who asks gets a one- or two-sentence
answer before the call goes on. Every answer comes from what the business configured (its
name, services, callback time, how many texts it may send) or says plainly that the team will
cover it: nothing is guessed, no price or visit is promised, and the assistant never claims to be
a person. The consent script itself is read by the Conversation, never here.
"""

from __future__ import annotations

import re
from enum import StrEnum

from voice_agent.chat.caller_text import read
from voice_agent.chat.port import CallContext


class CallerQuestion(StrEnum):
    """What the caller asked about."""

    AUTOMATED = "automated"  # "are you a robot?", "is this a real person?"
    WHO = "who"  # "who is this?", "what company is this?"
    TEXTS = "texts"  # "what kind of texts?", "will you text me?"
    PRICE = "price"  # "how much will it cost?"
    CALLBACK_TIME = "callback_time"  # "when will they call?", "can someone come today?"
    SERVICES = "services"  # "do you fix water heaters?"
    HOURS_OR_PLACE = "hours_or_place"  # "what are your hours?", "where are you located?"
    REPEAT = "repeat"  # "sorry, what?", "can you say that again?"


_FLAGS = re.IGNORECASE | re.VERBOSE
_PATTERNS: tuple[tuple[CallerQuestion, re.Pattern[str]], ...] = (
    (
        CallerQuestion.AUTOMATED,
        re.compile(
            r"""\b(?:
                (?:are|r)\s+(?:you|u|ya)\s+(?:a\s+|an\s+)?(?:real|actual|live|human|person|robot|bot
                    |machine|computer|ai|a\s+i|recording|automated|artificial|answering|chat\s*bot
                    |voicemail|an\s+actual)
              | (?:is|was)\s+this\s+(?:a\s+|an\s+)?(?:real|live|actual|human|person|robot|bot
                    |machine
                    |computer|ai|a\s+i|recording|automated|recorded|voicemail|answering)
              | (?:am\s+i|are\s+we)\s+(?:talking|speaking|chatting)\s+(?:to|with)\s+(?:a\s+|an\s+)?
                    (?:real|live|actual|human|person|robot|bot|machine|computer|ai|a\s+i|recording)
              | is\s+(?:this|that)\s+(?:a\s+)?(?:real\s+)?(?:person|human)
              | (?:you|u)\s+(?:a|an)\s+(?:robot|bot|machine|computer|ai|real\s+person)
              | are\s+you\s+real
              | (?:can|could)\s+i\s+(?:talk|speak)\s+(?:to|with)\s+(?:a\s+)?(?:real\s+|live\s+)?
                    (?:person|human|someone|somebody|a\s+person)
            )\b""",
            _FLAGS,
        ),
    ),
    (
        CallerQuestion.WHO,
        re.compile(
            r"""\b(?:
                who(?:'s|\s+is|s)?\s+(?:this|that|speaking|calling|there)
              | who\s+(?:am\s+i|are\s+you|is\s+it)
              | who\s+(?:did|have)\s+i\s+(?:call|called|reach|reached|got)
              | what\s+(?:company|business|place|number)\s+(?:is\s+this|did\s+i\s+(?:call|reach))
              | (?:is\s+this|did\s+i\s+(?:call|reach|get))\s+(?:the\s+)?(?:right|correct)\s+
                    (?:number|place)
              | what(?:'s|\s+is)\s+your\s+name
              | did\s+i\s+(?:call|reach|get)\s+(?:the\s+)?(?:plumber|electrician|locksmith|company)
              | is\s+this\s+(?:the\s+)?(?:plumber|plumbing|electrician|electric|locksmith|company
                    |business)
            )\b""",
            _FLAGS,
        ),
    ),
    (
        CallerQuestion.TEXTS,
        re.compile(
            r"""(?:
                \b(?:what|which|how\s+many)\s+(?:kind\s+of\s+|kinds\s+of\s+|sort\s+of\s+|type\s+of\s+)?
                    (?:texts?|text\s+messages?|sms|messages)\b
              | \b(?:will|would|are|r|do|can|could|is)\s+(?:you|u|y'all|they|someone|it)\s+
                    (?:going\s+to\s+|gonna\s+)?(?:text|message|sms)\b
              | \bwhy\s+(?:would|will|are|do)\s+(?:you|they)\s+(?:be\s+)?(?:text|texting|message)
              | \b(?:texts?|texting)\b[^.!]*\?
            )""",
            _FLAGS,
        ),
    ),
    (
        CallerQuestion.PRICE,
        re.compile(
            r"""\b(?:
                how\s+much | what\s+(?:do|does|would|will|is|are|'s)\s+(?:it|you|that|this|the|they)
                    \s*(?:cost|charge|run|price|rate|fee)
              | what(?:'s|\s+is|\s+are)\s+(?:the|your)\s+(?:price|prices|pricing|rate|rates|fee|fees
                    |charge|charges|cost|costs|service\s+call\s+fee|trip\s+charge)
              | (?:is|are)\s+(?:it|there|the\s+estimates?|estimates?|quotes?)\s+
                    (?:free|a\s+fee|a\s+charge)
              | (?:do|can|could|will)\s+(?:you|u)\s+(?:give|do|offer|send)\s+(?:me\s+)?
                    (?:a\s+|an\s+|free\s+)?(?:quote|quotes|estimate|estimates|price|discount)
              | (?:ballpark|rough)\s+(?:figure|price|estimate|idea)
              | (?:expensive|cheap|affordable)\s*\?
              | (?:the|your|a|any)\s+(?:price|prices|pricing|rates) | prices | pricing
              | (?:service|call\s*out|trip)\s+(?:fee|charge)
            )""",
            _FLAGS,
        ),
    ),
    (
        CallerQuestion.CALLBACK_TIME,
        re.compile(
            r"""\b(?:
                when\s+(?:will|would|can|could|is|are|do|does|should)\s+(?:i\s+|someone|somebody
                    |they|you|anyone|anybody|he|she|the\s+\w+|a\s+\w+)
              | how\s+(?:long|soon|quickly|fast)\s+(?:will|would|until|till|before|can|could|does|do
                    |is|are|until|for|till)
              | (?:can|could|will|would)\s+(?:someone|somebody|you|they|anyone|anybody|a\s+\w+)\s+
                    (?:come|get\s+here|be\s+here|be\s+out|make\s+it|call\s+(?:me\s+)?back)
              | what\s+time\s+(?:will|would|can|do)
            )\b""",
            _FLAGS,
        ),
    ),
    (
        CallerQuestion.SERVICES,
        re.compile(
            r"""\b(?:
                (?:do|does|can|could|would)\s+(?:you|u|y'all|they|you\s+guys|your\s+guys|the\s+team
                    |your\s+company|anyone)\s+(?:do|fix|handle|repair|install|service|work\s+on
                    |take\s+care\s+of|deal\s+with|help\s+with|replace|unclog|come\s+out\s+for)
              | what\s+(?:services|kind\s+of\s+work|work)\s+(?:do|does)
              | what\s+do\s+(?:you|y'all|you\s+guys)\s+(?:do|fix|handle)
            )\b""",
            _FLAGS,
        ),
    ),
    (
        CallerQuestion.HOURS_OR_PLACE,
        re.compile(
            r"""\b(?:
                what\s+are\s+(?:your|the)\s+hours | (?:are|r)\s+(?:you|y'all)\s+open
              | when\s+(?:are|do)\s+(?:you|y'all)\s+(?:open|close)
              | where\s+(?:are|is)\s+(?:you|y'all|your\s+(?:office|shop|store|company))
              | what\s+(?:area|areas|cities|towns)\s+do\s+(?:you|y'all)
              | do\s+(?:you|y'all)\s+(?:serve|cover|come\s+out\s+to|service)\s+
                    (?:my\s+area|the\s+area)
            )\b""",
            _FLAGS,
        ),
    ),
    (
        CallerQuestion.REPEAT,
        re.compile(
            r"""^(?:\W*(?:sorry|pardon|excuse\s+me|hmm|huh|what|come\s+again|say\s+again)\W*)+$
              | \b(?:can|could|would)\s+you\s+(?:repeat|say)\s+(?:that|it|the\s+question
                    |the\s+number)
              | \bwhat\s+number\s+(?:do\s+you\s+have|is\s+that|did\s+you\s+say|was\s+that)
              | \bsay\s+(?:that|it)\s+again\b | \bwhat\s+did\s+you\s+(?:say|ask)\b
              | \bi\s+didn'?t\s+(?:hear|catch|get)\s+(?:that|you|it)\b""",
            _FLAGS,
        ),
    ),
)


def find_question(said: str, business_name: str = "") -> CallerQuestion | None:
    """The caller's question in ``said`` (the first kind, in the order above), or None.

    With ``business_name``, "is this Acme Plumbing?" asks who this is.
    """
    text = read(said).text
    if not text:
        return None
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            return kind
    if _asks_for_the_business(text, business_name):
        return CallerQuestion.WHO
    return None


def _asks_for_the_business(text: str, business_name: str) -> bool:
    name_words = re.findall(r"[^\W\d_]+", business_name.casefold())
    if not name_words:
        return False
    asked = re.search(
        r"\b(?:is\s+this|is\s+that|did\s+i\s+(?:call|reach|get))\s+(?:the\s+)?(\w+)",
        text,
        re.IGNORECASE,
    )
    return asked is not None and asked.group(1).casefold() == name_words[0]


def answer(question: CallerQuestion, context: CallContext) -> str:
    """A short, truthful answer from the business's setup (empty for a request to repeat)."""
    business = context.business_name
    if question is CallerQuestion.AUTOMATED:
        return f"I'm an automated assistant for {business}, taking a message for the team."
    if question is CallerQuestion.WHO:
        return (
            f"This is the automated assistant for {business}. "
            "The team couldn't get to the phone, so I'm taking a message."
        )
    if question is CallerQuestion.TEXTS:
        return _about_texts(context)
    if question is CallerQuestion.PRICE:
        return "I can't give prices, but the team can go over that when they call you back."
    if question is CallerQuestion.CALLBACK_TIME:
        return (
            f"I can't book a visit, but someone from {business} will call you back "
            f"{_when(context)}."
        )
    if question is CallerQuestion.SERVICES:
        if context.services.strip():
            services = context.services.strip().rstrip(".")
            return f"{business} handles {services}. The team can tell you more."
        return "The team can tell you what they handle when they call you back."
    if question is CallerQuestion.HOURS_OR_PLACE:
        return "I don't have that here, but the team can tell you when they call back."
    return ""


def _when(context: CallContext) -> str:
    return context.callback_time.strip().rstrip(".") or "as soon as they can"


def _about_texts(context: CallContext) -> str:
    if context.max_texts:
        count = "one text" if context.max_texts == 1 else f"up to {context.max_texts} texts"
        return (
            f"Only texts about this request, {count}, like a callback confirmation. "
            "I'll ask you about that before we finish, and it's your choice."
        )
    return (
        "Only texts about this request, like a callback confirmation. "
        "I'll ask you about that before we finish, and it's your choice."
    )
