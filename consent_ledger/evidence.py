"""What one consent event proves: the evidence record, validated when it is built.

The classes here are the evidence record of ARCHITECTURE.md ("Evidence record"): who asked (the
business), whom (an E.164 number), on which call, what was read (the script, its version and sha256,
when it started and when its playback was confirmed), what the caller answered (transcript, word
timings, engine and confidence, UTC start and end, any keypad digit), how it was classified, and
what it permits.

Each class checks itself on construction and raises :class:`EvidenceError` (a ValueError) with a
clear message, so that a record that would not stand up in an audit is never written. ``to_dict``
gives the JSON-ready form stored in the ledger (its times are written without checking them again:
they were checked on construction), and ``from_dict`` reads it back with the same checks, so a
stored record that has been damaged fails to load instead of being trusted.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import phonenumbers

from consent_ledger.instants import format_checked_instant, parse_instant, require_utc

MAX_CONSENT_WINDOW = timedelta(hours=24)
"""The longest time a verbal consent may allow texts for, from the moment it was given."""

MAX_TEXTS_RANGE = range(1, 5)
"""How many follow-up texts one consent may allow: one to four."""

MAX_BUSINESS_ID_LENGTH = 64
MAX_MESSAGE_SID_LENGTH = 64
KEYPAD_DIGITS = frozenset("0123456789*#")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class EvidenceError(ValueError):
    """A consent record that is incomplete, inconsistent or malformed."""


class EventKind(StrEnum):
    """What happened: the outcome of a consent question, or a later change to the consent."""

    CONSENT_GRANTED = "consent_granted"
    CONSENT_DECLINED = "consent_declined"
    CONSENT_UNCLEAR = "consent_unclear"
    CONSENT_NOT_ASKED = "consent_not_asked"
    REVOKED = "revoked"
    RESUBSCRIBED = "resubscribed"
    OWNER_NOTIFICATIONS_OPT_IN = "owner_notifications_opt_in"
    OWNER_NOTIFICATIONS_OPT_OUT = "owner_notifications_opt_out"
    WEB_FORM_CONSENT = "web_form_consent"


class ConsentMethod(StrEnum):
    """How the person expressed the decision.

    ``verbal`` and ``keypad`` answer the consent question on a call; ``spoken`` is a revocation
    said on a call outside that question ("don't text me"); ``sms_keyword`` is STOP, START and
    their kin, ``sms_text`` a plain-language text ("please stop texting me"); ``web_form`` is a
    submitted form; ``owner`` is the business owner acting (a revocation on the caller's behalf,
    or the owner's own notification choice).
    """

    VERBAL = "verbal"
    KEYPAD = "keypad"
    WEB_FORM = "web_form"
    SMS_KEYWORD = "sms_keyword"
    SMS_TEXT = "sms_text"
    SPOKEN = "spoken"
    OWNER = "owner"


GRANTING_KINDS = frozenset(
    {EventKind.CONSENT_GRANTED, EventKind.WEB_FORM_CONSENT, EventKind.RESUBSCRIBED}
)
"""Kinds that carry a scope: they permit texts."""

CONSENT_GIVING_KINDS = frozenset({EventKind.CONSENT_GRANTED, EventKind.WEB_FORM_CONSENT})
"""Kinds that put a new consent in force, for at most :data:`MAX_CONSENT_WINDOW`."""

POINTING_KINDS = frozenset({EventKind.REVOKED, EventKind.RESUBSCRIBED})
"""Kinds that point (``revokes``) at the event whose effect they undo."""

OWNER_NOTIFICATION_KINDS = frozenset(
    {EventKind.OWNER_NOTIFICATIONS_OPT_IN, EventKind.OWNER_NOTIFICATIONS_OPT_OUT}
)
"""Kinds about the owner's own phone number: whether the owner gets notification texts. They
never bear on texts to callers."""

_ON_CALL = frozenset({ConsentMethod.VERBAL, ConsentMethod.KEYPAD})
_BY_TEXT = frozenset({ConsentMethod.SMS_KEYWORD, ConsentMethod.SMS_TEXT})

REVOCATION_METHODS = frozenset(
    {ConsentMethod.SPOKEN, ConsentMethod.KEYPAD, ConsentMethod.OWNER} | _BY_TEXT
)
"""The ways a consent can be revoked."""

METHODS_BY_KIND: dict[EventKind, frozenset[ConsentMethod]] = {
    EventKind.CONSENT_GRANTED: _ON_CALL,
    EventKind.CONSENT_DECLINED: _ON_CALL | _BY_TEXT | {ConsentMethod.WEB_FORM},
    EventKind.CONSENT_UNCLEAR: _ON_CALL,
    EventKind.CONSENT_NOT_ASKED: _ON_CALL,
    EventKind.REVOKED: REVOCATION_METHODS,
    EventKind.RESUBSCRIBED: _BY_TEXT | {ConsentMethod.WEB_FORM},
    EventKind.OWNER_NOTIFICATIONS_OPT_IN: _BY_TEXT | {ConsentMethod.WEB_FORM, ConsentMethod.OWNER},
    EventKind.OWNER_NOTIFICATIONS_OPT_OUT: _BY_TEXT | {ConsentMethod.WEB_FORM, ConsentMethod.OWNER},
    EventKind.WEB_FORM_CONSENT: frozenset({ConsentMethod.WEB_FORM}),
}
"""Which methods can produce each kind of event. Only the person concerned gives consent: the
owner may revoke a caller's consent but never grant or restore it."""

CALL_REVOCATION_METHODS = frozenset({ConsentMethod.SPOKEN, ConsentMethod.KEYPAD})
"""Revocations made on a call; their event names the call (``call_sid``)."""


@dataclass(frozen=True)
class ScriptEvidence:
    """The consent script as it was rendered and spoken.

    ``audio_sha256`` is the sha256 of the exact audio played for it (the μ-law 8 kHz bytes sent
    to the phone, in order), where the call recorded it: the voice renders each business's script
    once and replays those bytes, so an auditor can match the audio played with the text written.
    Records from before it was kept have none, and their stored form has no such key.
    """

    version: str
    text: str
    sha256: str
    started_at: datetime | None
    playback_confirmed_at: datetime | None
    audio_sha256: str | None = None

    def __post_init__(self) -> None:
        _require_text("script.version", self.version)
        _require_text("script.text", self.text)
        _require_sha256("script.sha256", self.sha256)
        if hashlib.sha256(self.text.encode("utf-8")).hexdigest() != self.sha256:
            raise EvidenceError("script.sha256 is not the sha256 of script.text")
        if self.audio_sha256 is not None:
            _require_sha256("script.audio_sha256", self.audio_sha256)
        _require_optional_utc("script.started_at", self.started_at)
        _require_optional_utc("script.playback_confirmed_at", self.playback_confirmed_at)
        if (
            self.started_at is not None
            and self.playback_confirmed_at is not None
            and self.playback_confirmed_at < self.started_at
        ):
            raise EvidenceError("script playback was confirmed before the script started")

    def to_dict(self) -> dict[str, Any]:
        written = {
            "version": self.version,
            "text": self.text,
            "sha256": self.sha256,
            "started_at": _optional_instant_text(self.started_at),
            "playback_confirmed_at": _optional_instant_text(self.playback_confirmed_at),
        }
        if self.audio_sha256 is not None:  # absent, the record reads as those written before
            written["audio_sha256"] = self.audio_sha256
        return written

    @classmethod
    def from_dict(cls, data: object) -> ScriptEvidence:
        fields = _fields(
            "script",
            data,
            ("version", "text", "sha256", "started_at", "playback_confirmed_at"),
            optional=("audio_sha256",),
        )
        return cls(
            version=fields["version"],
            text=fields["text"],
            sha256=fields["sha256"],
            started_at=_optional_instant(fields["started_at"]),
            playback_confirmed_at=_optional_instant(fields["playback_confirmed_at"]),
            audio_sha256=fields.get("audio_sha256"),
        )


@dataclass(frozen=True)
class WordEvidence:
    """One recognised word with its UTC timing and the recogniser's confidence."""

    word: str
    start: datetime
    end: datetime
    confidence: float

    def __post_init__(self) -> None:
        _require_text("word.word", self.word)
        _require_utc("word.start", self.start)
        _require_utc("word.end", self.end)
        if self.end < self.start:
            raise EvidenceError(f"word {self.word!r} ends before it starts")
        _require_unit_interval("word.confidence", self.confidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "word": self.word,
            "start": format_checked_instant(self.start),
            "end": format_checked_instant(self.end),
            "confidence": self.confidence,
        }

    @classmethod
    def from_dict(cls, data: object) -> WordEvidence:
        fields = _fields("word", data, ("word", "start", "end", "confidence"))
        return cls(
            word=fields["word"],
            start=parse_instant(fields["start"]),
            end=parse_instant(fields["end"]),
            confidence=fields["confidence"],
        )


@dataclass(frozen=True)
class AnswerEvidence:
    """What the caller said (or pressed) in reply to the script or to the re-ask."""

    transcript: str
    words: tuple[WordEvidence, ...]
    engine: str
    confidence: float
    started_at: datetime
    ended_at: datetime
    keypad_digit: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.transcript, str):
            raise EvidenceError("answer.transcript must be a string")
        _require_tuple_of("answer.words", self.words, WordEvidence)
        _require_text("answer.engine", self.engine)
        _require_unit_interval("answer.confidence", self.confidence)
        _require_utc("answer.started_at", self.started_at)
        _require_utc("answer.ended_at", self.ended_at)
        if self.ended_at < self.started_at:
            raise EvidenceError("answer ends before it starts")
        if self.keypad_digit is not None and (
            not isinstance(self.keypad_digit, str) or self.keypad_digit not in KEYPAD_DIGITS
        ):
            raise EvidenceError(
                f"answer.keypad_digit must be one of 0-9, * or #, got {self.keypad_digit!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "transcript": self.transcript,
            "words": [word.to_dict() for word in self.words],
            "engine": self.engine,
            "confidence": self.confidence,
            "started_at": format_checked_instant(self.started_at),
            "ended_at": format_checked_instant(self.ended_at),
            "keypad_digit": self.keypad_digit,
        }

    @classmethod
    def from_dict(cls, data: object) -> AnswerEvidence:
        fields = _fields(
            "answer",
            data,
            (
                "transcript",
                "words",
                "engine",
                "confidence",
                "started_at",
                "ended_at",
                "keypad_digit",
            ),
        )
        return cls(
            transcript=fields["transcript"],
            words=tuple(
                WordEvidence.from_dict(word) for word in _list("answer.words", fields["words"])
            ),
            engine=fields["engine"],
            confidence=fields["confidence"],
            started_at=parse_instant(fields["started_at"]),
            ended_at=parse_instant(fields["ended_at"]),
            keypad_digit=fields["keypad_digit"],
        )


@dataclass(frozen=True)
class ConsentScope:
    """What a consent allows: texts for one purpose, at most ``max_texts``, until ``expires_at``."""

    purpose: str
    max_texts: int
    expires_at: datetime

    def __post_init__(self) -> None:
        _require_text("scope.purpose", self.purpose)
        if (
            not isinstance(self.max_texts, int)
            or isinstance(self.max_texts, bool)
            or self.max_texts not in MAX_TEXTS_RANGE
        ):
            raise EvidenceError(
                f"scope.max_texts must be an integer from 1 to 4, got {self.max_texts!r}"
            )
        _require_utc("scope.expires_at", self.expires_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "max_texts": self.max_texts,
            "expires_at": format_checked_instant(self.expires_at),
        }

    @classmethod
    def from_dict(cls, data: object) -> ConsentScope:
        fields = _fields("scope", data, ("purpose", "max_texts", "expires_at"))
        return cls(
            purpose=fields["purpose"],
            max_texts=fields["max_texts"],
            expires_at=parse_instant(fields["expires_at"]),
        )


@dataclass(frozen=True)
class WebFormEvidence:
    """Where a web form consent came from: the page it was sent from, the sender's IP address
    and the browser's user agent (as the request gave it, possibly empty)."""

    page_url: str
    ip_address: str
    user_agent: str

    def __post_init__(self) -> None:
        _require_text("web_form.page_url", self.page_url)
        _require_text("web_form.ip_address", self.ip_address)
        if not isinstance(self.user_agent, str):
            raise EvidenceError("web_form.user_agent must be a string")

    def to_dict(self) -> dict[str, Any]:
        return {
            "page_url": self.page_url,
            "ip_address": self.ip_address,
            "user_agent": self.user_agent,
        }

    @classmethod
    def from_dict(cls, data: object) -> WebFormEvidence:
        fields = _fields("web_form", data, ("page_url", "ip_address", "user_agent"))
        return cls(fields["page_url"], fields["ip_address"], fields["user_agent"])


@dataclass(frozen=True)
class MessageEvidence:
    """The text that made a change by text (STOP, a plain-language opt-out, START): the person's
    own words exactly as received, and the provider's id of that message (Twilio's MessageSid),
    so an auditor can match the record with the carrier's own log."""

    sid: str
    body: str

    def __post_init__(self) -> None:
        _require_text("message.sid", self.sid)
        if len(self.sid) > MAX_MESSAGE_SID_LENGTH:
            raise EvidenceError(f"message.sid is longer than {MAX_MESSAGE_SID_LENGTH} characters")
        if not isinstance(self.body, str):
            raise EvidenceError("message.body must be a string")

    def to_dict(self) -> dict[str, Any]:
        return {"sid": self.sid, "body": self.body}

    @classmethod
    def from_dict(cls, data: object) -> MessageEvidence:
        fields = _fields("message", data, ("sid", "body"))
        return cls(sid=fields["sid"], body=fields["body"])


@dataclass(frozen=True)
class ConsentEvidence:
    """Everything one consent event records, as given to the ledger."""

    business_id: str
    business_name: str
    phone_number: str
    call_sid: str | None
    stream_sid: str | None
    kind: EventKind
    method: ConsentMethod
    script: ScriptEvidence | None
    answers: tuple[AnswerEvidence, ...]
    classifier: str | None
    classifier_version: str | None
    reasked: bool
    scope: ConsentScope | None
    occurred_at: datetime
    revokes: str | None = None
    audio_sha256: str | None = None
    note: str = ""
    """Why the outcome is what it is, where that needs saying ("the caller hung up")."""
    web_form: WebFormEvidence | None = None
    """The request a ``web_form_consent`` came with; records from before it was kept have none,
    and their stored form has no such key."""
    message: MessageEvidence | None = None
    """The text that made this change, for a change made by text (``sms_keyword``,
    ``sms_text``); records from before it was kept have none, and no such key."""

    def __post_init__(self) -> None:
        self._check_identity()
        self._check_call()
        self._check_answers()
        self._check_scope()
        self._check_pointer()
        self._check_method()

    def _check_identity(self) -> None:
        _require_text("business_id", self.business_id)
        if len(self.business_id) > MAX_BUSINESS_ID_LENGTH:
            raise EvidenceError(f"business_id is longer than {MAX_BUSINESS_ID_LENGTH} characters")
        _require_text("business_name", self.business_name)
        _require_e164(self.phone_number)
        if not isinstance(self.kind, EventKind):
            raise EvidenceError(f"kind must be an EventKind, got {self.kind!r}")
        if not isinstance(self.method, ConsentMethod):
            raise EvidenceError(f"method must be a ConsentMethod, got {self.method!r}")
        _require_utc("occurred_at", self.occurred_at)

    def _check_call(self) -> None:
        _require_optional_text("call_sid", self.call_sid)
        _require_optional_text("stream_sid", self.stream_sid)
        if self.script is not None and not isinstance(self.script, ScriptEvidence):
            raise EvidenceError("script must be a ScriptEvidence or None")
        if (self.classifier is None) != (self.classifier_version is None):
            raise EvidenceError("classifier and classifier_version go together")
        _require_optional_text("classifier", self.classifier)
        _require_optional_text("classifier_version", self.classifier_version)
        if self.audio_sha256 is not None:
            _require_sha256("audio_sha256", self.audio_sha256)
        if not isinstance(self.note, str):
            raise EvidenceError(f"note must be a string, got {self.note!r}")
        if self.message is not None:
            if not isinstance(self.message, MessageEvidence):
                raise EvidenceError("message must be a MessageEvidence or None")
            if self.method not in _BY_TEXT:
                raise EvidenceError(f"a change made by {self.method.value} carries no text message")

    def _check_answers(self) -> None:
        _require_tuple_of("answers", self.answers, AnswerEvidence)
        if not isinstance(self.reasked, bool):
            raise EvidenceError("reasked must be a bool")
        if len(self.answers) > (2 if self.reasked else 1):
            raise EvidenceError(
                "answers hold the first answer and, after a re-ask, the re-ask answer: got "
                f"{len(self.answers)} answers with reasked={self.reasked}"
            )
        confirmed = self.script.playback_confirmed_at if self.script else None
        if confirmed is not None and any(a.started_at < confirmed for a in self.answers):
            raise EvidenceError("an answer started before the script's playback was confirmed")
        spoken_grant = self.kind is EventKind.CONSENT_GRANTED and self.method in (
            ConsentMethod.VERBAL,
            ConsentMethod.KEYPAD,
        )
        if spoken_grant and (confirmed is None or not self.answers):
            raise EvidenceError(
                "a consent given on a call needs the script with its playback confirmed and the "
                "caller's answer"
            )

    def _check_scope(self) -> None:
        if self.kind in GRANTING_KINDS:
            if not isinstance(self.scope, ConsentScope):
                raise EvidenceError(f"a {self.kind.value} event needs a scope")
        elif self.scope is not None:
            raise EvidenceError(f"a {self.kind.value} event grants nothing and takes no scope")
        if self.kind in CONSENT_GIVING_KINDS and self.scope is not None:
            window = self.scope.expires_at - self.occurred_at
            if not timedelta(0) < window <= MAX_CONSENT_WINDOW:
                raise EvidenceError(
                    "scope.expires_at must be after occurred_at and at most 24 hours later"
                )

    def _check_pointer(self) -> None:
        if self.kind in POINTING_KINDS:
            _require_sha256("revokes", self.revokes)
        elif self.revokes is not None:
            raise EvidenceError(f"a {self.kind.value} event revokes nothing")

    def _check_method(self) -> None:
        if self.method not in METHODS_BY_KIND[self.kind]:
            allowed = ", ".join(sorted(method.value for method in METHODS_BY_KIND[self.kind]))
            raise EvidenceError(
                f"a {self.kind.value} event cannot be made by method {self.method.value}; "
                f"expected one of {allowed}"
            )
        if self.kind is EventKind.REVOKED and self.method in CALL_REVOCATION_METHODS:
            _require_text(f"call_sid of a {self.method.value} revocation", self.call_sid)
        if self.kind is EventKind.WEB_FORM_CONSENT:
            self._check_web_form()
        else:
            _require_absent(self.kind, "web_form", self.web_form is not None)
        if self.kind in OWNER_NOTIFICATION_KINDS | {EventKind.WEB_FORM_CONSENT}:
            _require_absent(self.kind, "answers", self.answers != ())
            _require_absent(self.kind, "classifier", self.classifier is not None)

    def _check_web_form(self) -> None:
        """A web form consent shows its disclosure (the script) and happens on no call."""
        if self.web_form is not None and not isinstance(self.web_form, WebFormEvidence):
            raise EvidenceError("web_form must be a WebFormEvidence or None")
        if self.script is None:
            raise EvidenceError("a web_form_consent event needs the form's disclosure as script")
        _require_absent(self.kind, "call_sid", self.call_sid is not None)
        _require_absent(self.kind, "stream_sid", self.stream_sid is not None)

    def to_dict(self) -> dict[str, Any]:
        written: dict[str, Any] = {
            "business_id": self.business_id,
            "business_name": self.business_name,
            "phone_number": self.phone_number,
            "call_sid": self.call_sid,
            "stream_sid": self.stream_sid,
            "kind": self.kind.value,
            "method": self.method.value,
            "script": self.script.to_dict() if self.script else None,
            "answers": [answer.to_dict() for answer in self.answers],
            "classifier": self.classifier,
            "classifier_version": self.classifier_version,
            "reasked": self.reasked,
            "scope": self.scope.to_dict() if self.scope else None,
            "occurred_at": format_checked_instant(self.occurred_at),
            "revokes": self.revokes,
            "audio_sha256": self.audio_sha256,
            "note": self.note,
        }
        # Absent, the record reads as those written before these were kept.
        if self.web_form is not None:
            written["web_form"] = self.web_form.to_dict()
        if self.message is not None:
            written["message"] = self.message.to_dict()
        return written

    @classmethod
    def from_dict(cls, data: object) -> ConsentEvidence:
        fields = _fields("evidence", data, _EVIDENCE_FIELDS, optional=("web_form", "message"))
        web_form = fields.get("web_form")
        message = fields.get("message")
        return cls(
            business_id=fields["business_id"],
            business_name=fields["business_name"],
            phone_number=fields["phone_number"],
            call_sid=fields["call_sid"],
            stream_sid=fields["stream_sid"],
            kind=EventKind(fields["kind"]),
            method=ConsentMethod(fields["method"]),
            script=None if fields["script"] is None else ScriptEvidence.from_dict(fields["script"]),
            answers=tuple(AnswerEvidence.from_dict(a) for a in _list("answers", fields["answers"])),
            classifier=fields["classifier"],
            classifier_version=fields["classifier_version"],
            reasked=fields["reasked"],
            scope=None if fields["scope"] is None else ConsentScope.from_dict(fields["scope"]),
            occurred_at=parse_instant(fields["occurred_at"]),
            revokes=fields["revokes"],
            audio_sha256=fields["audio_sha256"],
            note=fields["note"],
            web_form=None if web_form is None else WebFormEvidence.from_dict(web_form),
            message=None if message is None else MessageEvidence.from_dict(message),
        )


_EVIDENCE_FIELDS = (
    "business_id",
    "business_name",
    "phone_number",
    "call_sid",
    "stream_sid",
    "kind",
    "method",
    "script",
    "answers",
    "classifier",
    "classifier_version",
    "reasked",
    "scope",
    "occurred_at",
    "revokes",
    "audio_sha256",
    "note",
)


def _require_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise EvidenceError(f"{name} must be a non-empty string, got {value!r}")


def _require_absent(kind: EventKind, name: str, present: bool) -> None:
    if present:
        raise EvidenceError(f"a {kind.value} event has no {name}")


def _require_optional_text(name: str, value: object) -> None:
    if value is not None:
        _require_text(name, value)


def _require_sha256(name: str, value: object) -> None:
    if not isinstance(value, str) or not _SHA256_HEX.fullmatch(value):
        raise EvidenceError(f"{name} must be 64 lower-case hex digits, got {value!r}")


def _require_unit_interval(name: str, value: object) -> None:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or math.isnan(value)
        or not 0.0 <= value <= 1.0
    ):
        raise EvidenceError(f"{name} must be a number from 0 to 1, got {value!r}")


def _require_optional_utc(name: str, value: object) -> None:
    if value is not None:
        _require_utc(name, value)


def _require_utc(name: str, value: object) -> None:
    try:
        require_utc(name, value)
    except ValueError as error:
        raise EvidenceError(str(error)) from None


def _require_tuple_of(name: str, value: object, item_type: type) -> None:
    if not isinstance(value, tuple) or not all(isinstance(item, item_type) for item in value):
        raise EvidenceError(f"{name} must be a tuple of {item_type.__name__}")


def _require_e164(number: object) -> None:
    if not isinstance(number, str) or not number.startswith("+"):
        raise EvidenceError(f"phone_number must be in E.164 form (+ and digits), got {number!r}")
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        raise EvidenceError(f"phone_number is not a phone number: {number!r}") from None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if e164 != number or not phonenumbers.is_possible_number(parsed):
        raise EvidenceError(f"phone_number must be in E.164 form (+ and digits), got {number!r}")


def _fields(
    name: str, data: object, expected: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``data`` when it is an object with exactly the ``expected`` fields and perhaps some of
    the ``optional`` ones (a field added later, absent from older records)."""
    if not isinstance(data, dict):
        raise EvidenceError(f"{name} must be an object")
    if not set(expected) <= set(data) <= set(expected) | set(optional):
        also = f" and perhaps {sorted(optional)}" if optional else ""
        raise EvidenceError(f"{name} has fields {sorted(data)}, expected {sorted(expected)}{also}")
    return data


def _list(name: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise EvidenceError(f"{name} must be a list")
    return value


def _optional_instant(value: object) -> datetime | None:
    return None if value is None else parse_instant(value)


def _optional_instant_text(value: datetime | None) -> str | None:
    return None if value is None else format_checked_instant(value)
