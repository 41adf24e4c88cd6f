"""What happens when a call ends: the call, its consent evidence and any follow-up text are
stored together in one transaction, so a text can never exist without its consent record.

Storing a call is idempotent: the journal applies a call again after a crash between the commit
and the entry's removal, and a call already stored for its business is then left as it is.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import wave
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine

from consent_ledger import (
    AnswerEvidence,
    AudioStore,
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    EventKind,
    RecordedEvent,
    ScriptEvidence,
    WordEvidence,
    append_event,
    event_by_hash,
    revoke,
)
from media_stream import SAMPLE_RATE, ulaw_decode
from sms_sender import (
    CallSummary,
    ConfirmationRequest,
    cancel_pending,
    lock_number,
    plan_texts,
    queue_owner_summary,
)
from voice_agent.call.conversation import CallOutcome, ConsentAttempt, ConsentOutcome, TimedAnswer
from voice_agent.call.owner_notices import OwnerNotices
from voice_agent.chat.topics import subject_of_texts
from voice_agent.consent.classifier import CLASSIFIER_NAME, CLASSIFIER_VERSION
from voice_agent.records.businesses import Business
from voice_agent.records.calls import CallRecord, get_call, save_call
from voice_agent.records.sms_policies import sms_policy

logger = logging.getLogger(__name__)

CONSENT_WINDOW = timedelta(hours=24)
CONSENT_PURPOSE = "follow-up texts about the caller's service request"

_EVENT_KINDS = {
    ConsentOutcome.AFFIRMATIVE: EventKind.CONSENT_GRANTED,
    ConsentOutcome.DECLINED: EventKind.CONSENT_DECLINED,
    ConsentOutcome.UNCLEAR: EventKind.CONSENT_UNCLEAR,
    ConsentOutcome.NOT_ASKED: EventKind.CONSENT_NOT_ASKED,
}


@dataclass(frozen=True)
class CallIdentity:
    """Who the call was between, from Twilio's ``start`` message."""

    call_sid: str
    stream_sid: str
    caller_number: str
    started_at: datetime  # UTC instant the stream started
    started_monotonic: float  # time.monotonic() at that instant

    def instant(self, monotonic: float, *, not_after: datetime) -> datetime:
        """The UTC instant of a ``time.monotonic()`` reading taken during the call, kept
        between the call's start and ``not_after`` (the two clocks may drift by a hair)."""
        moment = self.started_at + timedelta(seconds=monotonic - self.started_monotonic)
        return min(max(moment, self.started_at), not_after)


@dataclass(frozen=True)
class CallWrapUp:
    """What was stored for the call."""

    record: CallRecord
    consent_event: RecordedEvent
    texts_queued: int


def record_call(
    engine: Engine,
    audio_store: AudioStore,
    business: Business,
    identity: CallIdentity,
    outcome: CallOutcome,
    end_reason: str,
    ended_at: datetime,
    notices: OwnerNotices | None = None,
) -> CallWrapUp:
    """Store the call and its consent event, plan the caller's texts if they said yes, revoke
    standing consent if they said "don't text me", and queue the owner's summary (with a
    sign-in link to the call, and by e-mail too, as ``notices`` provide).

    A call already stored for this business (the same call SID) is not stored again: what was
    stored is returned, with no texts queued. (Another business's call with that SID makes
    ``save_call`` refuse this one.)"""
    policy = sms_policy(business)
    consent = outcome.consent
    audio_sha256 = (
        audio_store.put(wav_from_ulaw(consent.answer_audio)) if consent.answer_audio else None
    )
    with engine.begin() as conn:
        lock_number(conn, business.id, identity.caller_number)  # before the ledger: see its doc
        stored = _stored_before(conn, business, identity)
        if stored is not None:
            logger.info("call %s was stored before; not stored again", identity.call_sid)
            return stored
        evidence = consent_evidence(business, identity, consent, ended_at, audio_sha256)
        event = append_event(conn, evidence, ended_at)
        queued = 0
        if consent.outcome is ConsentOutcome.AFFIRMATIVE:
            plan = plan_texts(
                conn,
                _confirmation(business, identity, outcome, event.hash),
                policy,
                ended_at,
                ended_at + CONSENT_WINDOW,
            )
            queued += len(plan.queued)
        if consent.refused_during_call:
            _revoke_spoken(conn, business, identity.caller_number, ended_at)
        record = _call_record(business, identity, outcome, end_reason, ended_at, event.hash)
        save_call(conn, record)
        notices = notices or OwnerNotices()
        summary = _owner_summary(
            business, record, notices.link(conn, business, record.call_sid, ended_at)
        )
        if queue_owner_summary(conn, summary, policy, ended_at):
            queued += 1
        emailed = None
        if notices.wants_email(business):
            link = notices.link(conn, business, record.call_sid, ended_at)
            emailed = dataclasses.replace(summary, sign_in_link=link)
    if emailed is not None:
        notices.email(business, emailed)
    logger.info(
        "call %s stored: consent %s, %d text(s) queued", identity.call_sid, consent.outcome, queued
    )
    return CallWrapUp(record, event, queued)


def _stored_before(
    conn: Connection, business: Business, identity: CallIdentity
) -> CallWrapUp | None:
    """What was stored for this call of this business, if it was stored already."""
    record = get_call(conn, identity.call_sid)
    if record is None or record.business_id != business.id or not record.consent_event_hash:
        return None
    event = event_by_hash(conn, record.consent_event_hash)
    return None if event is None else CallWrapUp(record, event, 0)


def wav_from_ulaw(ulaw: bytes) -> bytes:
    """A 16-bit PCM WAV (8 kHz mono) of μ-law audio, as stored in the evidence."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(ulaw_decode(ulaw).astype("<i2").tobytes())
    return buffer.getvalue()


def _confirmation(
    business: Business, identity: CallIdentity, outcome: CallOutcome, consent_hash: str
) -> ConfirmationRequest:
    return confirmation_request(
        business, identity.caller_number, identity.call_sid, outcome.message.topic, consent_hash
    )


def confirmation_request(
    business: Business, number: str, reference: str, topic: str | None, consent_hash: str
) -> ConfirmationRequest:
    """The confirmation to ``number`` of the consent ``consent_hash``, given on the call (or
    request) ``reference`` about ``topic``, from the business's first number."""
    return ConfirmationRequest(
        business_id=business.id,
        business_name=business.name,
        from_number=business.twilio_numbers[0],
        to_number=number,
        call_sid=reference,
        need=subject_of_texts(topic),  # our words, never the transcript
        callback_time=business.callback_time,
        consent_event_hash=consent_hash,
    )


def _revoke_spoken(conn: Connection, business: Business, number: str, at: datetime) -> None:
    """A spoken "don't text me" revokes any consent in force and cancels what is pending."""
    revoke(conn, business.id, business.name, number, ConsentMethod.SPOKEN, at, at)
    cancel_pending(conn, business.id, number, "the caller asked not to be texted on a call")


def _call_record(
    business: Business,
    identity: CallIdentity,
    outcome: CallOutcome,
    end_reason: str,
    ended_at: datetime,
    consent_hash: str,
) -> CallRecord:
    message = outcome.message
    return CallRecord(
        call_sid=identity.call_sid,
        stream_sid=identity.stream_sid,
        business_id=business.id,
        caller_number=identity.caller_number,
        started_at=identity.started_at,
        ended_at=ended_at,
        end_reason=end_reason,
        caller_name=message.caller_name,
        need=message.need,
        callback_number=message.callback_number,
        urgency=message.urgency.value if message.urgency else None,
        address=message.address,
        preferred_time=message.preferred_time,
        notes=tuple(message.notes),
        consent_outcome=outcome.consent.outcome.value,
        consent_event_hash=consent_hash,
        turn_metrics=outcome.turn_metrics,
        turns=outcome.transcript,
        notice_confirmed_at=None
        if outcome.notice_confirmed_at is None
        else identity.instant(outcome.notice_confirmed_at, not_after=ended_at),
    )


def _owner_summary(business: Business, record: CallRecord, sign_in_link: str) -> CallSummary:
    return CallSummary(
        call_sid=record.call_sid,
        business_number=business.twilio_numbers[0],
        caller_number=record.caller_number,
        caller_name=record.caller_name,
        need=record.need,
        callback_number=record.callback_number,
        urgency=record.urgency,
        consent_outcome=record.consent_outcome or "not_asked",
        sign_in_link=sign_in_link,
    )


def consent_evidence(
    business: Business,
    identity: CallIdentity,
    attempt: ConsentAttempt,
    now: datetime,
    audio_sha256: str | None,
) -> ConsentEvidence:
    """The evidence record of ARCHITECTURE.md for this call's consent question; its moments
    lie between the call's start and ``now`` (when it is recorded)."""

    def instant(monotonic: float) -> datetime:
        return identity.instant(monotonic, not_after=now)

    def optional_instant(monotonic: float | None) -> datetime | None:
        return None if monotonic is None else instant(monotonic)

    granted = attempt.outcome is ConsentOutcome.AFFIRMATIVE
    return ConsentEvidence(
        business_id=business.id,
        business_name=business.name,
        phone_number=identity.caller_number,
        call_sid=identity.call_sid,
        stream_sid=identity.stream_sid,
        kind=_EVENT_KINDS[attempt.outcome],
        method=ConsentMethod(attempt.method),
        script=ScriptEvidence(
            version=attempt.script.version,
            text=attempt.script.text,
            sha256=attempt.script.sha256,
            started_at=optional_instant(attempt.script_started_at),
            playback_confirmed_at=optional_instant(attempt.playback_confirmed_at),
            audio_sha256=attempt.script_audio_sha256,
        ),
        answers=tuple(_answer_evidence(answer, instant) for answer in attempt.answers),
        classifier=CLASSIFIER_NAME,
        classifier_version=CLASSIFIER_VERSION,
        reasked=attempt.reasked,
        scope=ConsentScope(CONSENT_PURPOSE, business.max_texts, now + CONSENT_WINDOW)
        if granted
        else None,
        occurred_at=now,
        audio_sha256=audio_sha256,
        note=attempt.note,
    )


def _answer_evidence(answer: TimedAnswer, instant: Callable[[float], datetime]) -> AnswerEvidence:
    heard = answer.heard
    if heard.digit is not None:
        return AnswerEvidence(
            transcript="",
            words=(),
            engine="keypad",
            confidence=1.0,
            started_at=instant(answer.started_at),
            ended_at=instant(answer.ended_at),
            keypad_digit=heard.digit,
        )
    assert heard.utterance is not None
    spoken = heard.utterance
    return AnswerEvidence(
        transcript=spoken.text,
        words=tuple(
            WordEvidence(word.text, instant(start), instant(end), word.confidence)
            for word, (start, end) in zip(spoken.words, answer.word_times, strict=True)
        ),
        engine=spoken.engine,
        confidence=spoken.confidence,
        started_at=instant(answer.started_at),
        ended_at=instant(answer.ended_at),
    )
