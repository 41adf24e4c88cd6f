"""A business's A2P 10DLC campaign brief: every field of Twilio's ``UsAppToPerson`` resource,
built from what the receptionist really says and sends.

Nothing here is written twice: the message flow quotes the consent script exactly as
:func:`render_consent_script` renders it for the business (its version, its name, its number of
texts), the message samples and the opt-in, opt-out and HELP messages are the shipped SMS
templates rendered by ``sms_sender``'s one engine (read afresh, so an edited template changes the
brief at once) with the business's own values and a bracketed description of each field that
changes from text to text, the keywords are those ``sms_sender.keywords`` honours, and
``has_embedded_links`` / ``has_embedded_phone`` are read from the texts themselves. The public
pages are ``PUBLIC_BASE_URL`` + ``/b/{business id}/sms|privacy|terms|callback``.

Carriers reject a verbal opt-in whose message flow lacks the exact script, who reads it and when,
the consumer's affirmative answer and how it is recorded (30979), or public proof of the opt-in
(30842); each is in :attr:`CampaignBrief.message_flow`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import phonenumbers

from sms_sender import (
    CONDITIONAL_OPT_IN_KEYWORDS,
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    TemplateName,
    booking_link,
    sample,
    text_count,
)
from voice_agent.consent.script import (
    REASK,
    ConsentScript,
    render_consent_script,
    text_count_phrase,
)
from voice_agent.records.businesses import Business

USE_CASE = "CUSTOMER_CARE"
"""Texts about the caller's own service request: a confirmation and follow-ups, no marketing."""

NEED_PLACEHOLDER = "[what the call was about, in our words]"
UNTIL_PLACEHOLDER = "[24 hours after the call]"
"""The confirmation's fields that change from text to text."""

CARRIER_KEYWORDS: dict[str, tuple[str, ...]] = {
    "opt_out": (
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
        "ALTO",
    ),
    "help": ("HELP", "INFO", "AYUDA"),
    "opt_in": ("START", "UNSTOP", "YES"),
}
"""The keywords a campaign registers: Twilio's and CTIA's standard ones and the Spanish STOP and
HELP, each listed only while ``sms_sender.keywords`` honours it. The classifier honours more
(Spanish words, misspellings, plain language), which carriers need not be told keyword by
keyword (and the field holds 255 characters)."""

# (field limits from Twilio's UsAppToPerson reference)
_LIMITS = {
    "description": (40, 4096),
    "message_flow": (40, 2048),
    "opt_in_message": (20, 320),
    "opt_out_message": (20, 320),
    "help_message": (20, 320),
}
_SAMPLE_LIMITS = (20, 1024)
_MAX_SAMPLES = 5
_KEYWORDS_MAX_CHARS = 255
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_LINK = re.compile(
    r"(?i)\b(?:https?://|www\.)\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:[a-z]{2,24})(?:/\S*)?\b"
)


class CampaignBriefError(ValueError):
    """A brief that Twilio would refuse (a field out of its documented bounds)."""


@dataclass(frozen=True)
class PublicPages:
    """The business's public pages a carrier reviewer opens."""

    sms_terms: str
    privacy: str
    terms: str
    callback: str


@dataclass(frozen=True)
class CampaignBrief:
    """One business's 10DLC campaign: the ``UsAppToPerson`` fields and where they came from."""

    business_id: str
    business_name: str
    script: ConsentScript
    pages: PublicPages
    description: str
    message_flow: str
    message_samples: tuple[str, ...]
    has_embedded_links: bool
    has_embedded_phone: bool
    opt_in_message: str
    opt_out_message: str
    help_message: str
    opt_in_keywords: tuple[str, ...]
    opt_out_keywords: tuple[str, ...]
    help_keywords: tuple[str, ...]
    us_app_to_person_usecase: str = USE_CASE
    subscriber_opt_in: bool = True
    age_gated: bool = False
    direct_lending: bool = False

    def usa2p_fields(self) -> dict[str, Any]:
        """The keyword arguments of ``client.messaging.v1.services(MG…).us_app_to_person
        .create(...)``, all but ``brand_registration_sid``."""
        return {
            "description": self.description,
            "message_flow": self.message_flow,
            "message_samples": list(self.message_samples),
            "us_app_to_person_usecase": self.us_app_to_person_usecase,
            "has_embedded_links": self.has_embedded_links,
            "has_embedded_phone": self.has_embedded_phone,
            "opt_in_message": self.opt_in_message,
            "opt_out_message": self.opt_out_message,
            "help_message": self.help_message,
            "opt_in_keywords": list(self.opt_in_keywords),
            "opt_out_keywords": list(self.opt_out_keywords),
            "help_keywords": list(self.help_keywords),
            "subscriber_opt_in": self.subscriber_opt_in,
            "age_gated": self.age_gated,
            "direct_lending": self.direct_lending,
            "privacy_policy_url": self.pages.privacy,
            "terms_and_conditions_url": self.pages.terms,
        }

    def as_dict(self) -> dict[str, Any]:
        """The brief as JSON: the business, the script it quotes, its pages and the fields."""
        return {
            "business": {"id": self.business_id, "name": self.business_name},
            "consent_script": {
                "version": self.script.version,
                "sha256": self.script.sha256,
                "text": self.script.text,
            },
            "public_pages": {
                "sms_terms": self.pages.sms_terms,
                "privacy": self.pages.privacy,
                "terms": self.pages.terms,
                "callback": self.pages.callback,
            },
            "us_app_to_person": self.usa2p_fields(),
        }

    def labelled_fields(self) -> list[tuple[str, str, str]]:
        """(label, Twilio field, value to paste) for every field, in the Console's order."""
        fields = [
            ("Use case", "us_app_to_person_usecase", self.us_app_to_person_usecase),
            ("Campaign description", "description", self.description),
            ("How do end users consent to receive messages?", "message_flow", self.message_flow),
        ]
        fields += [
            (f"Sample message {number}", "message_samples", text)
            for number, text in enumerate(self.message_samples, 1)
        ]
        links, phone = _yes_no(self.has_embedded_links), _yes_no(self.has_embedded_phone)
        fields += [
            ("Messages will include embedded links", "has_embedded_links", links),
            ("Messages will include phone numbers", "has_embedded_phone", phone),
            ("Opt-in keywords", "opt_in_keywords", ", ".join(self.opt_in_keywords)),
            ("Opt-in message", "opt_in_message", self.opt_in_message),
            ("Opt-out keywords", "opt_out_keywords", ", ".join(self.opt_out_keywords)),
            ("Opt-out message", "opt_out_message", self.opt_out_message),
            ("Help keywords", "help_keywords", ", ".join(self.help_keywords)),
            ("Help message", "help_message", self.help_message),
            ("Subscriber opt-in", "subscriber_opt_in", _yes_no(self.subscriber_opt_in)),
            ("Age-gated content", "age_gated", _yes_no(self.age_gated)),
            ("Direct lending or loan arrangement", "direct_lending", _yes_no(self.direct_lending)),
            ("Privacy policy URL", "privacy_policy_url", self.pages.privacy),
            ("Terms and conditions URL", "terms_and_conditions_url", self.pages.terms),
        ]  # fmt: skip
        return fields


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def public_pages(public_base_url: str, business_id: str) -> PublicPages:
    """The business's public pages under ``public_base_url``."""
    base = f"{public_base_url.rstrip('/')}/b/{business_id}"
    return PublicPages(f"{base}/sms", f"{base}/privacy", f"{base}/terms", f"{base}/callback")


def build_brief(business: Business, public_base_url: str) -> CampaignBrief:
    """The campaign brief of ``business`` as it is configured now (nothing is cached: a new
    script version, maximum or template shows at once). CampaignBriefError when a field would
    fall outside Twilio's bounds."""
    script = render_consent_script(
        business.consent_script_version, business.name, business.max_texts
    )
    pages = public_pages(public_base_url, business.id)
    samples = message_samples(business)
    opt_in = sample(TemplateName.OPT_IN, {"business_name": business.name})
    contact = {"business_name": business.name, "help_contact": business.help_contact}
    opt_out = sample(TemplateName.OPT_OUT, contact)
    help_ = sample(TemplateName.HELP, contact)
    sent = [*samples, opt_in, opt_out, help_]
    brief = CampaignBrief(
        business_id=business.id,
        business_name=business.name,
        script=script,
        pages=pages,
        description=_description(business),
        message_flow=_message_flow(business, script, pages),
        message_samples=samples,
        has_embedded_links=any(has_link(text) for text in sent),
        has_embedded_phone=any(has_phone_number(text) for text in sent),
        opt_in_message=opt_in,
        opt_out_message=opt_out,
        help_message=help_,
        opt_in_keywords=registered_keywords("opt_in"),
        opt_out_keywords=registered_keywords("opt_out"),
        help_keywords=registered_keywords("help"),
    )
    _check(brief)
    return brief


def message_samples(business: Business) -> tuple[str, ...]:
    """What a caller who said yes can receive: the confirmation, then each follow-up the business
    has turned on and its maximum leaves room for; the HELP reply when that makes fewer than two
    (Twilio asks for at least two)."""
    name, link = business.name, booking_link(business.booking_url)
    samples = [
        sample(
            TemplateName.CONFIRMATION,
            {
                "business_name": name,
                "need": NEED_PLACEHOLDER,
                "callback_time": business.callback_time,
                "text_count": text_count(business.max_texts),
                "until": UNTIL_PLACEHOLDER,
                "booking_link": link,
            },
        )
    ]
    if business.no_reply_follow_up_hours is not None:
        samples.append(
            sample(
                TemplateName.NO_REPLY_FOLLOW_UP,
                {
                    "business_name": name,
                    "help_contact": business.help_contact,
                    "booking_link": link,
                },
            )
        )
    if business.callback_check_hours is not None:
        samples.append(
            sample(TemplateName.CALLBACK_CHECK, {"business_name": name, "booking_link": link})
        )
    samples = samples[: business.max_texts]
    if len(samples) < 2:
        samples.append(
            sample(
                TemplateName.HELP, {"business_name": name, "help_contact": business.help_contact}
            )
        )
    return tuple(samples)


def registered_keywords(kind: str) -> tuple[str, ...]:
    """The keywords of ``kind`` (``opt_out``, ``help`` or ``opt_in``) registered for a campaign:
    :data:`CARRIER_KEYWORDS` that ``sms_sender.keywords`` honours, upper-case."""
    honoured = {
        "opt_out": OPT_OUT_KEYWORDS,
        "help": HELP_KEYWORDS,
        "opt_in": OPT_IN_KEYWORDS | CONDITIONAL_OPT_IN_KEYWORDS,
    }[kind]
    return tuple(word for word in CARRIER_KEYWORDS[kind] if word.lower() in honoured)


def has_phone_number(text: str) -> bool:
    """Whether ``text`` shows a phone number (US numbers in any common format)."""
    matcher = phonenumbers.PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.POSSIBLE)
    return matcher.has_next()


def has_link(text: str) -> bool:
    """Whether ``text`` holds a web link (a URL or a bare domain; an e-mail address is not)."""
    return _LINK.search(_EMAIL.sub(" ", text)) is not None


def _description(business: Business) -> str:
    trade = f" ({business.services})" if business.services.strip() else ""
    follow_ups = {
        "no-reply follow-up": business.no_reply_follow_up_hours is not None,
        "did-we-reach-you check": business.callback_check_hours is not None,
    }
    turned_on = [name for name, on in follow_ups.items() if on][: business.max_texts - 1]
    extra = f", then {' and '.join('a ' + name for name in turned_on)}" if turned_on else ""
    name, count = business.name, text_count_phrase(business.max_texts)
    booking = (
        f" These texts carry {name}'s online booking link ({business.booking_url})."
        if business.booking_url
        else ""
    )
    return (
        f"{name}{trade} uses an automated phone assistant to answer the calls its staff cannot "
        f"take. The assistant takes the caller's message and, on the call, asks whether {name} "
        f"may text the caller about that service request. A caller who says yes gets {count} "
        "at most, within 24 hours: a confirmation that names the business, when to expect "
        f"the callback and how many texts may follow until when{extra}.{booking} Replies reach "
        "the business. Texts are only about the caller's "
        "own request: no marketing, no promotions, nothing sent to anyone who did not say yes. "
        'STOP, HELP and START work at any time, and a plain request such as "please stop '
        'texting me" also opts out.'
    )


def _message_flow(business: Business, script: ConsentScript, pages: PublicPages) -> str:
    recorded = " and that the call is recorded" if business.recording_enabled else ""
    audio = " The caller's answer is also kept as audio." if business.recording_enabled else ""
    numbers = ", ".join(business.twilio_numbers)
    when = (
        f"When no one at {business.name} answers within {business.ring_seconds} seconds, its"
        if business.ring_owner_first
        else f"{business.name}'s"
    )
    return (
        f"Verbal opt-in on a phone call. Consumers call {business.name} at {numbers}. {when} "
        "automated voice assistant answers, says first that it is an automated "
        f"assistant{recorded}, and takes the caller's message. Near the end of "
        "the call, after the message and before goodbye, the assistant reads this script word "
        f'for word (version {script.version}); it cannot be interrupted: "{script.text}" '
        'Only a clear spoken yes (such as "yes" or "sure, that\'s fine") opts in. An unclear '
        f'answer gets one re-ask, "{REASK}", where keypad 1 is yes; anything else, silence or '
        "a hang-up means no texts. Texting is never a condition of service. The answer is "
        "transcribed, timestamped in UTC and stored with the exact script, its version and "
        "SHA-256, the caller's number and the call ID as a tamper-evident (hash-chained) "
        f"consent record kept {business.consent_retention_years} years.{audio} A confirmation "
        f"text follows the yes. The script and SMS terms are public at {pages.sms_terms}; "
        f"privacy policy: {pages.privacy}; terms: {pages.terms}; callback request page: "
        f"{pages.callback}."
    )


def _check(brief: CampaignBrief) -> None:
    """Refuse a brief with a field Twilio would refuse."""
    for name, (low, high) in _LIMITS.items():
        value: str = getattr(brief, name)
        if not low <= len(value) <= high:
            raise CampaignBriefError(
                f"the {name} of {brief.business_id} is {len(value)} characters; "
                f"Twilio takes {low} to {high}"
            )
    low, high = _SAMPLE_LIMITS
    if not 2 <= len(brief.message_samples) <= _MAX_SAMPLES or not all(
        low <= len(text) <= high for text in brief.message_samples
    ):
        raise CampaignBriefError(
            f"the message samples of {brief.business_id} must be 2 to {_MAX_SAMPLES} texts "
            f"of {low} to {high} characters"
        )
    for words in (brief.opt_in_keywords, brief.opt_out_keywords, brief.help_keywords):
        if len(",".join(words)) > _KEYWORDS_MAX_CHARS:
            raise CampaignBriefError(f"keywords over {_KEYWORDS_MAX_CHARS} characters: {words}")
