"""What an inbound text asks for: to opt out, for help, to opt back in, maybe to opt out, or
nothing but a message.

A missed opt-out is a legal exposure and a paused follow-up costs little, so the classifier leans
one way: what is clearly an opt-out is acted on, what may be one is held for the owner (the
dispatcher pauses texts to the number until the owner decides), and only the rest is a message.

- Keywords count as the whole message (Twilio's rule) after case, accents, stray punctuation,
  emoji, letters spelled apart ("S T O P", "s.t.o.p") and a polite word or two ("stop please",
  "ALTO por favor", "STOP!!! 🛑") are set aside: Twilio's STOP family (STOP, STOPALL,
  UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT, "opt out"), their Spanish kin (ALTO, PARAR,
  PARE, DETENER, CANCELAR, BAJA, "dar de baja", "no mas", BASTA, FIN, TERMINAR, SALIR), common
  misspellings (STPO, SOTP, STOPP, STOOOP, UNSUSCRIBE, UNSUBCRIBE, CANCLE, …) and any word that
  begins "unsub".
- Plain-language revocations count too, as the FCC's 2024 rule asks, in English and Spanish, in
  phrasings that speak of texts, messages, lists or contact ("please stop texting me", "remove
  me from your list", "no me manden más mensajes", "dejen de escribirme").
- Held (``POSSIBLE_OPT_OUT``): a single word one letter off a STOP-family keyword ("step",
  "stip", "quite"), a short reply that starts with STOP or its kin ("Stop. Who is this?"), one
  that ends with it ("wrong number, stop"), "wrong number", "not interested", "no thanks",
  "spam", "who gave you my number", a curse, a message that speaks of texts and of stopping, a
  lone 🛑.
- Still messages: "Can you stop by tomorrow?", "the leak won't stop", "cancel my appointment",
  "end of the day works", "I quit smoking lol", "Help me, the basement is flooding".

HELP and INFO (AYUDA) ask for help; START and UNSTOP (COMENZAR, INICIAR, REANUDAR) opt back in. A
bare YES (or SÍ) is an opt-in only from a number that opted out, which the inbound handler
decides; here it is a message.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class ReplyIntent(StrEnum):
    """What an inbound text asks for."""

    OPT_OUT = "opt_out"
    HELP = "help"
    OPT_IN = "opt_in"
    MESSAGE = "message"
    POSSIBLE_OPT_OUT = "possible_opt_out"
    """Maybe an opt-out: held for the owner's decision, texts to the number paused meanwhile."""


OPT_OUT_KEYWORDS = frozenset(
    {
        # Twilio's defaults
        "stop",
        "stopall",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "revoke",
        "optout",
        "opt out",
        # their kin
        "remove",
        "remove me",
        "unsub",
        "stop all",
        "stop it",
        "stop texting",
        "stop messaging",
        "no more",
        "opt me out",
        # Spanish
        "alto",
        "parar",
        "pare",
        "para",
        "paren",
        "para ya",
        "detener",
        "detente",
        "detengan",
        "cancelar",
        "cancela",
        "cancelen",
        "baja",
        "darme de baja",
        "dar de baja",
        "de baja",
        "me doy de baja",
        "no mas",
        "no mas mensajes",
        "basta",
        "basta ya",
        "fin",
        "terminar",
        "salir",
        "eliminar",
        "borrar",
        "no mas textos",
        # misspellings seen in the wild
        "stpo",
        "st0p",
        "stopt",
        "sotp",
        "stopp",
        "sstop",
        "stp",
        "stoip",
        "stopo",
        "stoo",
        "srop",
        "dtop",
        "atop",
        "stpp",
        "sto",
        "stoop",
        "stoppp",
        "stoppall",
        "stopal",
        "quite texting",
        "qiut",
        "quti",
        "cancle",
        "cancell",
        "cancl",
        "cacnel",
        "canel",
        "revok",
        "optuot",
        "opout",
        "alot",
        "atlo",
        "alt0",
        "unstubscribe",
    }
)
HELP_KEYWORDS = frozenset(
    {"help", "help me", "info", "ayuda", "ayudame", "informacion", "hlep", "halp", "hepl"}
)
OPT_IN_KEYWORDS = frozenset(
    {"start", "unstop", "comenzar", "iniciar", "reanudar", "resubscribe", "subscribe"}
)
CONDITIONAL_OPT_IN_KEYWORDS = frozenset({"yes", "si"})

MAX_CLASSIFIED_CHARS = 2000
_POLITE_WORDS = frozenset(
    {
        "please",
        "pls",
        "plz",
        "now",
        "thanks",
        "thank",
        "you",
        "ty",
        "all",
        "por",
        "favor",
        "porfa",
        "porfavor",
        "gracias",
        "ya",
        "ahora",
        "and",
        "again",
        "y",
    }
)
_SPACES = re.compile(r"\s+")
_RUNS = re.compile(r"(.)\1+")
_TEXTS = (
    r"(?:texts?|texting|txts?|txting|messages?|messaging|msgs?|sms|alerts?|notifications?"
    r"|reminders?)"
)
_ES_TEXTS = r"(?:mensajes?|mensajitos?|textos?|sms|recordatorios?|notificaciones?)"
_ES_SEND = (
    r"(?:manden|mande|mandes|envien|envie|envies|escriban|escribas|escriba|textees|texteen"
    r"|contacten|contactes|contacte|molesten|molestes)"
)
_PLAIN_LANGUAGE_OPT_OUTS = tuple(
    re.compile(pattern)
    for pattern in (
        # English
        r"\b(?:stop|quit|cease|end)\s+(?:\w+\s+){0,2}?(?:sending|texting|messaging|contacting"
        r"|txting|spamming|bugging|bothering|harassing|harrassing)\b",
        rf"\b(?:stop|quit)\s+(?:receiving|getting)\s+(?:these\s+|your\s+|the\s+)?{_TEXTS}",
        rf"\b(?:stop|end|no more|cancel)\s+(?:the\s+|these\s+|your\s+|all\s+|my\s+)?{_TEXTS}\b",
        rf"\bstop (?:it )?with (?:the |these |your |all |ur )?{_TEXTS}",
        rf"\b(?:dont|do not|don t|never|stop|quit)\s+send(?:ing)?\s+(?:me\s+|us\s+)?(?:any\s+)?"
        rf"(?:more\s+)?(?:of\s+)?(?:these\s+|your\s+|the\s+)?{_TEXTS}",
        r"\bremoved? from (?:your|the|this|ur) (?:list|texts?|messages?|mailing)",
        r"\b(?:don ?t|do not|never|dont|no)\s+(?:ever\s+)?(?:\w+\s+)?(?:text|txt|message|sms"
        r"|contact)\s+(?:me|this number|us|my number|again)\b",
        rf"\b(?:don ?t|do not|dont|no longer|never)\s+(?:want|need|wish)\s+(?:to\s+(?:get|receive)"
        rf"\s+)?(?:any\s+)?(?:more\s+)?(?:of\s+)?(?:these\s+|your\s+|the\s+|any\s+)?{_TEXTS}",
        rf"\b(?:no|not)\s+(?:more|further|any more|anymore)\s+(?:\w+\s+)?{_TEXTS}\b",
        r"\bremove (?:me|my number|this number|my phone)\b",
        r"\btake (?:me|my number|this number) off\b",
        r"\bun ?su(?:b|s|bs)\w*",
        r"\bopt (?:me )?out\b",
        r"\bopt(?:ing)? out\b",
        r"\boptout\b",
        r"\b(?:leave me alone|lose my number|delete my number)\b",
        rf"\b{_TEXTS} (?:to|at) this number (?:must|need to|have to) stop\b",
        # Spanish
        rf"\bno (?:me |nos )?(?:\w+ )?{_ES_SEND}\b",
        r"\b(?:dejen|deja|dejar|dejan|dejes|deje) de (?:mandar|enviar|escribir|textear"
        r"|contactar|molestar)",
        rf"\bno (?:quiero|deseo|necesito) (?:recibir |mas |que me \w+ )*(?:mas )?{_ES_TEXTS}",
        rf"\bno (?:quiero|deseo) (?:recibir )?(?:sus |tus |estos |mas )*{_ES_TEXTS}",
        rf"\bya no (?:quiero|me|deseo)\b.*\b{_ES_TEXTS}",
        r"\b(?:dar|darme|doy|den|denme|dame|de|deme|darse|dan) de baja\b",
        r"\b(?:borr|quit|elimin|sac|saq)\w*(?: \w+){0,2} de (?:su|la|tu|esta|sus) lista",
        rf"\bno mas {_ES_TEXTS}",
        r"\b(?:cancelar|cancela|cancelen) (?:la |mi |)suscripcion\b",
        r"\bcancel (?:my |the |this )?subscription\b",
    )
)
_POSSIBLE_OPT_OUTS = tuple(
    re.compile(pattern)
    for pattern in (
        r"\bwrong (?:number|person|#)\b",
        r"\bnumero equivocado\b",
        r"\bnot interested\b",
        r"\bno (?:me )?interesa\b",
        r"^no (?:thanks?|thank you|gracias|ty)\b",
        r"\bspam\w*\b",
        r"\breport(?:ed|ing)? (?:you|this|u)\b",
        r"\bblock(?:ed|ing)? (?:you|this|u|your)\b",
        r"\bwho gave you (?:my|this) number\b",
        r"\bhow did you get (?:my|this) number\b",
        r"\bnever (?:signed up|gave you|agreed|consented|asked)\b",
        r"\b(?:fuck|f off|screw you|go away|piss off|get lost)\b",
        r"\b(?:enough|callate|dejame en paz|dejenme en paz|no molesten)\b",
        r"\bwhy (?:do|are|did) you (?:keep )?(?:texting|messaging|text|message|sending)\b",
        r"\b(?:too many|so many|enough) " + _TEXTS,
        r"\bno (?:more|mas)\b$",
    )
)
_STOP_WORDS_FOR_HOLDS = frozenset(
    {
        "stop",
        "stopall",
        "unsubscribe",
        "quit",
        "revoke",
        "optout",
        "alto",
        "basta",
        "detener",
        "parar",
        "cancel",
        "cancelar",
        "end",
        "baja",
    }
)
_AFTER_STOP_IN_A_MESSAGE = frozenset(
    {
        # "stop by", "stop the leak", "cancel my appointment", "end of the day", …
        "by",
        "in",
        "over",
        "at",
        "round",
        "around",
        "for",
        "on",
        "the",
        "my",
        "our",
        "a",
        "an",
        "that",
        "this",
        "of",
        "when",
        "if",
        "and",
        "to",
        "before",
        "after",
        "here",
        "there",
        "la",
        "el",
        "mi",
        "de",
        "mis",
        "los",
        "las",
        "appointment",
        "appt",
        "order",
        "visit",
        "job",
        "tomorrow",
        "today",
        "tonight",
        "running",
        "leaking",
        "dripping",
        "working",
        "water",
        "cita",
    }
)
_BEFORE_STOP_IN_A_MESSAGE = frozenset(
    {
        "wont",
        "cant",
        "doesnt",
        "didnt",
        "dont",
        "never",
        "not",
        "to",
        "will",
        "would",
        "could",
        "should",
        "cannot",
        "isnt",
        "just",
        "gonna",
        "wouldnt",
        "couldnt",
        "it",
        "the",
        "a",
        "bus",
        "no",
        "weekend",
        "day",
        "month",
        "week",
        "year",
        "and",
        "at",
        "of",
        "la",
        "el",
        "para",
    }
)
_STOP_SIGN_EMOJI = frozenset({"\U0001f6d1", "\u26d4", "\U0001f6ab", "\u270b", "\U0001f645"})
_MAX_HELD_KEYWORD_WORDS = 6
_FUZZY_TARGETS = (
    "stop",
    "stopall",
    "cancel",
    "quit",
    "revoke",
    "optout",
    "alto",
    "parar",
    "detener",
    "cancelar",
    "basta",
)


def normalise(text: str) -> str:
    """``text`` lower-cased, without accents, on one line, with only letters, digits and spaces.

    Apostrophes are dropped (so "don't" reads "dont"), hyphens become spaces ("opt-out") and
    letters spelled apart are joined ("S T O P" reads "stop").
    """
    folded = unicodedata.normalize("NFKC", text[:MAX_CLASSIFIED_CHARS]).casefold()
    kept = []
    for char in unicodedata.normalize("NFKD", folded):
        category = unicodedata.category(char)
        if category == "Mn":
            continue
        if category[0] in "LN":
            kept.append(char)
        elif char in "'’`":
            continue
        else:
            kept.append(" ")
    words = _SPACES.sub(" ", "".join(kept)).strip()
    if " " in words and all(len(word) == 1 for word in words.split(" ")):
        return words.replace(" ", "")
    return words


def _keyword(normalised: str) -> str:
    """The message with polite words set aside: "stop please" reads "stop"."""
    words = normalised.split(" ")
    core = [word for word in words if word not in _POLITE_WORDS]
    if not core:
        return normalised
    deduplicated = list(dict.fromkeys(core))
    return " ".join(deduplicated)


def classify_reply(text: str) -> ReplyIntent:
    """What the inbound ``text`` asks for."""
    if not isinstance(text, str):
        raise TypeError("classify_reply needs a str")
    normalised = normalise(text)
    keyword = _keyword(normalised)
    if _is_opt_out_keyword(keyword):
        return ReplyIntent.OPT_OUT
    if keyword in HELP_KEYWORDS:
        return ReplyIntent.HELP
    if keyword in OPT_IN_KEYWORDS:
        return ReplyIntent.OPT_IN
    if any(pattern.search(normalised) for pattern in _PLAIN_LANGUAGE_OPT_OUTS):
        return ReplyIntent.OPT_OUT
    if _may_be_opt_out(text, normalised, keyword):
        return ReplyIntent.POSSIBLE_OPT_OUT
    return ReplyIntent.MESSAGE


def is_opt_out_keyword(text: str) -> bool:
    """Whether ``text`` opts out with a keyword (STOP and its kin) rather than in plain language
    ("please stop texting me"); the ledger records the two as different methods."""
    return _is_opt_out_keyword(_keyword(normalise(text)))


def _is_opt_out_keyword(keyword: str) -> bool:
    if keyword in OPT_OUT_KEYWORDS or keyword.replace(" ", "") in OPT_OUT_KEYWORDS:
        return True
    words = keyword.split(" ")
    if len(words) == 1 and (keyword.startswith("unsu") or keyword.startswith("unsb")):
        return True
    collapsed = _RUNS.sub(r"\1", keyword)
    return collapsed in _COLLAPSED_OPT_OUT_KEYWORDS


_COLLAPSED_OPT_OUT_KEYWORDS = frozenset(
    _RUNS.sub(r"\1", keyword) for keyword in OPT_OUT_KEYWORDS if len(keyword) >= 4
)


def _may_be_opt_out(text: str, normalised: str, keyword: str) -> bool:
    """Whether a text that is not clearly an opt-out may be one (held for the owner)."""
    if not normalised:
        return any(char in _STOP_SIGN_EMOJI for char in text[:MAX_CLASSIFIED_CHARS])
    words = keyword.split(" ")
    if len(words) == 1 and any(_one_edit_apart(words[0], target) for target in _FUZZY_TARGETS):
        return True
    if any(pattern.search(normalised) for pattern in _POSSIBLE_OPT_OUTS):
        return True
    all_words = normalised.split(" ")
    if len(all_words) <= _MAX_HELD_KEYWORD_WORDS:
        first, last = all_words[0], all_words[-1]
        first_stops = first in _STOP_WORDS_FOR_HOLDS or _one_edit_apart(first, "stop")
        if first_stops and (len(all_words) == 1 or all_words[1] not in _AFTER_STOP_IN_A_MESSAGE):
            return True
        if last in _STOP_WORDS_FOR_HOLDS and all_words[-2] not in _BEFORE_STOP_IN_A_MESSAGE:
            return True
    if re.search(r"\bSTOP\b", text[:MAX_CLASSIFIED_CHARS]) and not text.isupper():
        return True
    stops = re.search(r"\b(?:stop|quit|end|cancel|parar|dejar|dejen|remove|block)\b", normalised)
    return stops is not None and re.search(rf"\b(?:{_TEXTS}|{_ES_TEXTS})\b", normalised) is not None


def _one_edit_apart(word: str, target: str) -> bool:
    """Whether ``word`` is ``target`` with one letter changed, added, dropped or two swapped."""
    if word == target or abs(len(word) - len(target)) > 1 or len(word) < 3:
        return False
    if len(word) == len(target):
        diffs = [index for index, (a, b) in enumerate(zip(word, target, strict=True)) if a != b]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and word[diffs[0]] == target[diffs[1]]
            and word[diffs[1]] == target[diffs[0]]
        )
    shorter, longer = (word, target) if len(word) < len(target) else (target, word)
    return any(longer[:index] + longer[index + 1 :] == shorter for index in range(len(longer)))


def is_bare_yes(text: str) -> bool:
    """Whether ``text`` is just YES or SÍ (an opt-in from a number that opted out)."""
    return _keyword(normalise(text)) in CONDITIONAL_OPT_IN_KEYWORDS
