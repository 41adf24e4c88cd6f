"""Shared by the SMS tests (dispatch, inbound texts, the owner's opt-out, status callbacks, races,
the Twilio transport, the send plan): Acme Plumbing's caller, owner and policy, a fresh database
with the outbox and ledger tables, consent events and outbox rows, test transports, and what the
SMS webhooks use of the services."""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from twilio.request_validator import RequestValidator

from consent_ledger import AudioStore, owner_notifications_allowed
from consent_ledger.chain import append_event
from consent_ledger.evidence import (
    AnswerEvidence,
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    EventKind,
    ScriptEvidence,
)
from consent_ledger.tables import append_only_ddl
from consent_ledger.tables import metadata as ledger_metadata
from sms_sender.inbound import InboundSms
from sms_sender.local_transport import LocalSmsTransport
from sms_sender.outbox import (
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    list_outbox,
    queue_confirmation,
)
from sms_sender.owner import CallSummary, queue_owner_summary
from sms_sender.owner_choice import record_owner_choice
from sms_sender.policy import SmsPolicy
from sms_sender.send_rules import SendRules
from sms_sender.tables import metadata as outbox_metadata
from sms_sender.templates import ConfirmationRequest, ConfirmationTerms
from sms_sender.transport import OutgoingSms, SendReceipt
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL, fresh_database
from voice_agent.journal.applier import JournalApplier, PassReport
from voice_agent.journal.store import Journal
from voice_agent.records.database import make_engine
from voice_agent.services import journal_applier
from voice_agent.signatures import TwilioSignatures

BUSINESS = "acme-plumbing"
CALLER = "+15125550123"
CONSENTED_AT = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)
NOW = CONSENTED_AT + timedelta(minutes=1)
BUSINESS_NUMBER = "+15125550100"
OWNER = "+15125550199"
SCRIPT = "Would it be okay if Acme Plumbing texts you about your service request? Sound good?"
POLICY = SmsPolicy(
    business_id=BUSINESS,
    business_name="Acme Plumbing",
    time_zone="America/Chicago",
    help_contact="(512) 555-0199",
    owner_number=OWNER,
)
OPT_OUT_TEXT = (
    "You're unsubscribed from Acme Plumbing texts. No more messages will be sent. "
    "Questions: (512) 555-0199. Reply START to resubscribe."
)
HELP_TEXT = (
    "Acme Plumbing: for help with your service request contact (512) 555-0199. "
    "Msg & data rates may apply. Reply STOP to opt out."
)
OWNER_OPT_OUT_TEXT = (
    "Acme Plumbing: call summary texts to this phone are off. No more messages will be sent. "
    "Reply START to turn them back on."
)
RULES = SendRules(policies=lambda _conn, business_id: POLICY if business_id == BUSINESS else None)
OWNER_RULES = SendRules(
    policies=lambda _conn, business_id: POLICY if business_id == BUSINESS else None,
    owner_opted_in=owner_notifications_allowed,
)


# --- databases --------------------------------------------------------------------------------


def with_tables(engine: Engine) -> Engine:
    with engine.begin() as conn:
        outbox_metadata.create_all(conn)
        ledger_metadata.create_all(conn)
        for statement in append_only_ddl(conn.dialect.name):
            conn.exec_driver_sql(statement)
    return engine


@contextlib.contextmanager
def sms_engine(backend: str, tmp_path: Path, name: str) -> Iterator[Engine]:
    """An engine on a fresh database (see ``fresh_database``) with the outbox and ledger tables."""
    with fresh_database(backend, tmp_path, name) as url:
        database = with_tables(make_engine(url))
        try:
            yield database
        finally:
            database.dispose()


# --- consent events and outbox rows -----------------------------------------------------------


def grant(
    engine: Engine, number: str = CALLER, max_texts: int = 2, at: datetime = CONSENTED_AT
) -> str:
    """Record a clear spoken yes from ``number``; the event's hash."""
    return record(engine, spoken_yes(number, max_texts, at), at)


def spoken_yes(
    number: str = CALLER, max_texts: int = 2, at: datetime = CONSENTED_AT
) -> ConsentEvidence:
    """The evidence of a clear spoken yes from ``number`` at ``at``."""
    answered = at - timedelta(seconds=3)
    return ConsentEvidence(
        business_id=BUSINESS,
        business_name="Acme Plumbing",
        phone_number=number,
        call_sid="CA-consent",
        stream_sid="MZ-consent",
        kind=EventKind.CONSENT_GRANTED,
        method=ConsentMethod.VERBAL,
        script=ScriptEvidence(
            version="v1",
            text=SCRIPT,
            sha256=hashlib.sha256(SCRIPT.encode()).hexdigest(),
            started_at=at - timedelta(seconds=20),
            playback_confirmed_at=at - timedelta(seconds=4),
        ),
        answers=(
            AnswerEvidence(
                transcript="yes please",
                words=(),
                engine="test",
                confidence=0.97,
                started_at=answered,
                ended_at=answered + timedelta(seconds=1),
            ),
        ),
        classifier="yes-words",
        classifier_version="1",
        reasked=False,
        scope=ConsentScope("follow-up texts", max_texts, at + timedelta(hours=24)),
        occurred_at=at,
    )


def record(engine: Engine, evidence: ConsentEvidence, at: datetime) -> str:
    with engine.begin() as conn:
        return append_event(conn, evidence, at).hash


def queue(
    engine: Engine,
    call_sid: str = "CA0001",
    number: str = CALLER,
    due_at: datetime = CONSENTED_AT,
    consent: str = "c" * 64,
) -> OutboxMessage:
    with engine.begin() as conn:
        terms = ConfirmationTerms(2, due_at + timedelta(hours=24), "America/Chicago")
        return queue_confirmation(conn, confirmation(call_sid, number, consent), due_at, terms)


def confirmation(
    call_sid: str = "CA0001", number: str = CALLER, consent: str = "c" * 64
) -> ConfirmationRequest:
    """The confirmation request of a call from ``number``."""
    return ConfirmationRequest(
        business_id=BUSINESS,
        business_name="Acme Plumbing",
        from_number="+15125550100",
        to_number=number,
        call_sid=call_sid,
        need="your leaking kitchen sink",
        callback_time="within 30 minutes",
        consent_event_hash=consent,
    )


def outbox_rows(engine: Engine) -> dict[str, OutboxMessage]:
    with engine.begin() as conn:
        return {message.call_sid: message for message in list_outbox(conn)}


def owner_opts_in(engine: Engine, at: datetime = CONSENTED_AT) -> None:
    with engine.begin() as conn:
        record_owner_choice(conn, POLICY, True, ConsentMethod.OWNER, at)


def summary(engine: Engine, call_sid: str, at: datetime = NOW) -> OutboxMessage:
    """Queue the owner's summary of the call ``call_sid``."""
    call = CallSummary(
        call_sid, BUSINESS_NUMBER, CALLER, "Dana", "a leak", CALLER, "high", "declined"
    )
    with engine.begin() as conn:
        queued = queue_owner_summary(conn, call, POLICY, at)
    assert queued is not None
    return queued


# --- inbound texts ----------------------------------------------------------------------------


_sids = iter(range(1, 1_000_000))


def text(body: str, number: str = CALLER, opt_out_type: str | None = None) -> InboundSms:
    return InboundSms(
        message_sid=f"SM{next(_sids):032d}",
        from_number=number,
        to_number=BUSINESS_NUMBER,
        body=body,
        opt_out_type=opt_out_type,
    )


def kinds_and_statuses(engine: Engine) -> list[tuple[OutboxKind, OutboxStatus]]:
    with engine.begin() as conn:
        return [(m.kind, m.status) for m in list_outbox(conn)]


# --- transports and threads ------------------------------------------------------------------


class OverLocalTransport:
    """A test transport that hands what it sends to a local transport and asks it for receipts."""

    def __init__(self) -> None:
        self.local = LocalSmsTransport()

    def find_accepted(self, sms: OutgoingSms, since: datetime) -> SendReceipt | None:
        return self.local.find_accepted(sms, since)


class FailingTransport(OverLocalTransport):
    """Fails every send with the failures given, in order, then sends through a local one."""

    name = "failing"

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        super().__init__()
        self.tried = 0

    def send(self, sms: OutgoingSms) -> SendReceipt:
        self.tried += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.local.send(sms)


def run_in_threads(*dispatchers: threading.Thread) -> None:
    for dispatcher in dispatchers:
        dispatcher.start()
    for dispatcher in dispatchers:
        dispatcher.join(timeout=30)
        assert not dispatcher.is_alive()


# --- the webhooks -----------------------------------------------------------------------------


@dataclass
class WakeCounter:
    wakes: int = 0

    def wake(self) -> None:
        self.wakes += 1


@dataclass
class AppliedAtOnce:
    """An applier that applies the journal as soon as it is woken, in the waking thread: the
    webhook then answers once its request is stored, as a server's would a moment later."""

    applier: JournalApplier

    def wake(self) -> None:
        self.applier.drain()


@dataclass
class WebhookServices:
    """What the SMS webhooks use of the services: the database, the journal in ``directory`` (a
    temporary one by default), its applier, a dispatcher that counts its wakes.

    With ``apply_at_once`` the journal is applied as each webhook wakes the applier; without,
    only by :meth:`settle`, so a test can look at what is journaled and not yet stored."""

    engine: Engine
    directory: Path | None = None
    signatures: TwilioSignatures = field(
        default_factory=lambda: TwilioSignatures(AUTH_TOKEN, PUBLIC_BASE_URL)
    )
    dispatcher: WakeCounter = field(default_factory=WakeCounter)
    apply_at_once: bool = True
    journal: Journal = field(init=False)
    journal_applier: JournalApplier | AppliedAtOnce = field(init=False)

    def __post_init__(self) -> None:
        if self.directory is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="webhook-journal-")
            self.directory = Path(self._temporary.name)
        self.journal = Journal(self.directory / "journal")
        audio = AudioStore(self.directory / "audio")
        self._applier = journal_applier(self.journal, self.engine, audio, self.dispatcher.wake)
        self.journal_applier = AppliedAtOnce(self._applier) if self.apply_at_once else self._applier

    def clock(self) -> datetime:
        return NOW

    def settle(self) -> PassReport:
        """Apply what the webhooks journaled; all of it must go in."""
        report = self._applier.drain()
        assert not report.stopped
        assert self.journal.pending() == []
        return report


def post_signed(client: TestClient, path: str, params: dict[str, str]) -> int:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE_URL + path, params)
    response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    if response.status_code == 200:
        assert response.text.endswith("<Response/>")
    return response.status_code


def inbound_params(body: str, sid: str = "SM" + "a" * 32) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": CALLER,
        "To": BUSINESS_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
    }
