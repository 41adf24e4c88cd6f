"""A callback request sent from a business's public form, stored in one transaction.

The request is stored as a call-like record in the business's call list (``calls``: reference
``WF`` + 32 hex digits, no stream, end reason ``web_form``), so the owner sees it beside the
missed calls with no page of its own. When the visitor ticked the SMS box, a ``web_form_consent``
event goes to the consent ledger in the same transaction — the disclosure they were shown, its
version and sha256, when the form was served and when it was sent, the page, their IP address and
user agent — and the texts are planned exactly as after a spoken yes (``sms_sender.plan_texts``:
the same confirmation, the same maximum and window, the same shared budget per number).

A number that opted out is never re-subscribed by a ticked box: when its consent stands revoked
in the ledger, its latest opt-out or opt-in text was an opt-out, or an opt-out of it is still in
the journal, the request is stored with no consent and no text, and the outcome says so. Requests
per number are limited (:data:`MAX_REQUESTS_PER_NUMBER` per :data:`REQUEST_WINDOW`): one over
the limit stores nothing.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, Engine, func, select

from consent_ledger import (
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    ConsentStatus,
    EventKind,
    RecordedEvent,
    ScriptEvidence,
    WebFormEvidence,
    append_event,
    consent_state,
)
from sms_sender import lock_number, opted_out_by_text, plan_texts
from voice_agent.call.wrap_up import CONSENT_PURPOSE, CONSENT_WINDOW, confirmation_request
from voice_agent.consent.script import ConsentScript
from voice_agent.records.businesses import Business
from voice_agent.records.calls import CallRecord, save_call
from voice_agent.records.sms_policies import sms_policy
from voice_agent.records.tables import calls

logger = logging.getLogger(__name__)

WEB_FORM_END_REASON = "web_form"
MAX_REQUESTS_PER_NUMBER = 3
REQUEST_WINDOW = timedelta(hours=1)
FORM_NOTE = "Callback request sent from the web form."
OPTED_OUT_NOTE = (
    "The SMS box was ticked, but this number had opted out of texts: no consent was recorded "
    "and no text will be sent."
)


class RequestOutcome(StrEnum):
    """What a stored request led to."""

    CALLBACK_ONLY = "callback"
    """The SMS box was not ticked: a callback request, no consent, no text."""
    TEXTS = "texts"
    """Consent recorded and the confirmation queued."""
    CONSENT_WITHOUT_TEXT = "consent"
    """Consent recorded, but the plan queued no text (an excluded number, a spent budget)."""
    OPTED_OUT = "opted-out"
    """The box was ticked by a number that opted out: no consent, no text."""


class TooManyRequests(Exception):
    """The number sent :data:`MAX_REQUESTS_PER_NUMBER` requests within the window already."""


@dataclass(frozen=True)
class CallbackRequest:
    """One submitted form: who, what for, and — with the SMS box ticked — the disclosure they
    agreed to and where the request came from."""

    business: Business
    caller_name: str
    phone_number: str  # E.164
    need: str
    wants_texts: bool
    disclosure: ConsentScript
    page_url: str
    ip_address: str
    user_agent: str
    form_served_at: datetime


@dataclass(frozen=True)
class StoredRequest:
    reference: str
    outcome: RequestOutcome
    consent_event: RecordedEvent | None
    texts_queued: int


def store_callback_request(
    engine: Engine, request: CallbackRequest, now: datetime, pending_opt_outs: Collection[str]
) -> StoredRequest:
    """Store ``request`` at ``now`` (with its consent and texts, if any) in one transaction.
    ``pending_opt_outs`` are the numbers whose opt-out is still in the journal.
    TooManyRequests (nothing stored) when the number is over its limit."""
    business, number = request.business, request.phone_number
    reference = "WF" + secrets.token_hex(16)
    with engine.begin() as conn:
        lock_number(conn, business.id, number)  # before the ledger, as a call's wrap-up does
        if _recent_requests(conn, business.id, number, now) >= MAX_REQUESTS_PER_NUMBER:
            raise TooManyRequests(f"{MAX_REQUESTS_PER_NUMBER} requests within {REQUEST_WINDOW}")
        event, queued, outcome = None, 0, RequestOutcome.CALLBACK_ONLY
        if request.wants_texts and _opted_out(conn, business.id, number, pending_opt_outs):
            outcome = RequestOutcome.OPTED_OUT
        elif request.wants_texts:
            event = append_event(conn, web_form_evidence(request, reference, now), now)
            # no topic: the text says "your service request", never the visitor's words
            confirmation = confirmation_request(business, number, reference, None, event.hash)
            plan = plan_texts(conn, confirmation, sms_policy(business), now, now + CONSENT_WINDOW)
            queued = len(plan.queued)
            outcome = RequestOutcome.TEXTS if queued else RequestOutcome.CONSENT_WITHOUT_TEXT
        save_call(conn, _record(request, reference, now, outcome, event))
    logger.info(
        "callback request %s stored: %s, %d text(s) queued",
        reference,
        outcome.value,
        queued,
        extra={"business_id": business.id},
    )
    return StoredRequest(reference, outcome, event, queued)


def web_form_evidence(request: CallbackRequest, reference: str, now: datetime) -> ConsentEvidence:
    """The ledger evidence of a ticked SMS box on request ``reference``, sent at ``now``."""
    business, disclosure = request.business, request.disclosure
    return ConsentEvidence(
        business_id=business.id,
        business_name=business.name,
        phone_number=request.phone_number,
        call_sid=None,
        stream_sid=None,
        kind=EventKind.WEB_FORM_CONSENT,
        method=ConsentMethod.WEB_FORM,
        script=ScriptEvidence(
            version=disclosure.version,
            text=disclosure.text,
            sha256=disclosure.sha256,
            started_at=request.form_served_at,
            playback_confirmed_at=None,
        ),
        answers=(),
        classifier=None,
        classifier_version=None,
        reasked=False,
        scope=ConsentScope(CONSENT_PURPOSE, business.max_texts, now + CONSENT_WINDOW),
        occurred_at=now,
        note=f"SMS box ticked on callback request {reference}",
        web_form=WebFormEvidence(request.page_url, request.ip_address, request.user_agent),
    )


def _opted_out(
    conn: Connection, business_id: str, number: str, pending_opt_outs: Collection[str]
) -> bool:
    if number in pending_opt_outs or opted_out_by_text(conn, business_id, number):
        return True
    state = consent_state(conn, business_id, number)
    return state is not None and state.status is ConsentStatus.REVOKED


def _recent_requests(conn: Connection, business_id: str, number: str, now: datetime) -> int:
    query = (
        select(func.count())
        .select_from(calls)
        .where(
            calls.c.business_id == business_id,
            calls.c.caller_number == number,
            calls.c.end_reason == WEB_FORM_END_REASON,
            calls.c.started_at > now - REQUEST_WINDOW,
        )
    )
    return int(conn.execute(query).scalar_one())


def _record(
    request: CallbackRequest,
    reference: str,
    now: datetime,
    outcome: RequestOutcome,
    event: RecordedEvent | None,
) -> CallRecord:
    notes = (FORM_NOTE, OPTED_OUT_NOTE) if outcome is RequestOutcome.OPTED_OUT else (FORM_NOTE,)
    return CallRecord(
        call_sid=reference,
        stream_sid=None,
        business_id=request.business.id,
        caller_number=request.phone_number,
        started_at=now,
        ended_at=now,
        end_reason=WEB_FORM_END_REASON,
        caller_name=request.caller_name,
        need=request.need,
        callback_number=request.phone_number,
        urgency=None,
        notes=notes,
        consent_outcome="affirmative" if event is not None else "declined",
        consent_event_hash=None if event is None else event.hash,
    )
