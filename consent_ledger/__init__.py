"""Consent evidence: an append-only, hash-chained ledger per business, its verification, and
the send gate that every text must pass."""

from typing import TYPE_CHECKING

import lazy_loader

from consent_ledger.audio_store import AudioStatus, AudioStore
from consent_ledger.chain import (
    GENESIS_HASH,
    CorruptEventError,
    RecordedEvent,
    append_event,
    canonical_json,
)
from consent_ledger.evidence import (
    AnswerEvidence,
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    EventKind,
    EvidenceError,
    MessageEvidence,
    ScriptEvidence,
    WebFormEvidence,
    WordEvidence,
)
from consent_ledger.gate import (
    GateDecision,
    GateReason,
    may_send,
    owner_notifications_allowed,
    resubscribe,
    revoke,
    revoke_consent,
)
from consent_ledger.instants import require_utc, stored_instant
from consent_ledger.projection import ConsentStateRow, ConsentStatus, consent_state, status_of
from consent_ledger.queries import (
    AudioReference,
    audio_references,
    event_by_hash,
    events_for_number,
    latest_events,
    rebuild_projection,
)
from consent_ledger.tables import append_only_ddl, metadata
from consent_ledger.text_log import SentText, TextLog
from consent_ledger.verify import (
    BrokenEvent,
    VerificationReport,
    ledger_event_total,
    verify_ledger,
)
from consent_ledger.wording import DECISIONS, METHODS

if TYPE_CHECKING:
    from consent_ledger.export import (
        EventSummary,
        PacketRequest,
        PacketRequestError,
        build_audit_packet,
        summaries_to_csv,
        summaries_to_json,
        summarize_events,
    )
else:  # the audit packet needs the PDF library: it loads on first use
    __getattr__, _, _ = lazy_loader.attach(
        __name__,
        submod_attrs={
            "export": [
                "EventSummary",
                "PacketRequest",
                "PacketRequestError",
                "build_audit_packet",
                "summaries_to_csv",
                "summaries_to_json",
                "summarize_events",
            ],
        },
    )

__all__ = [
    "DECISIONS",
    "GENESIS_HASH",
    "METHODS",
    "AnswerEvidence",
    "AudioReference",
    "AudioStatus",
    "AudioStore",
    "BrokenEvent",
    "ConsentEvidence",
    "ConsentMethod",
    "ConsentScope",
    "ConsentStateRow",
    "ConsentStatus",
    "CorruptEventError",
    "EventKind",
    "EventSummary",
    "EvidenceError",
    "GateDecision",
    "GateReason",
    "MessageEvidence",
    "PacketRequest",
    "PacketRequestError",
    "RecordedEvent",
    "ScriptEvidence",
    "SentText",
    "TextLog",
    "VerificationReport",
    "WebFormEvidence",
    "WordEvidence",
    "append_event",
    "append_only_ddl",
    "audio_references",
    "build_audit_packet",
    "canonical_json",
    "consent_state",
    "event_by_hash",
    "events_for_number",
    "latest_events",
    "ledger_event_total",
    "may_send",
    "metadata",
    "owner_notifications_allowed",
    "rebuild_projection",
    "require_utc",
    "resubscribe",
    "revoke",
    "revoke_consent",
    "status_of",
    "stored_instant",
    "summaries_to_csv",
    "summaries_to_json",
    "summarize_events",
    "verify_ledger",
]
