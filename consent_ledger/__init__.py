"""Consent evidence: an append-only, hash-chained ledger per business, its verification, and
the send gate that every text must pass."""

from consent_ledger.chain import GENESIS_HASH, RecordedEvent, append_event, canonical_json
from consent_ledger.evidence import (
    AnswerEvidence,
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    EventKind,
    EvidenceError,
    ScriptEvidence,
    WordEvidence,
)
from consent_ledger.gate import GateDecision, GateReason, may_send, resubscribe, revoke
from consent_ledger.queries import event_by_hash, events_for_number, latest_events
from consent_ledger.tables import append_only_ddl, metadata
from consent_ledger.verify import BrokenEvent, VerificationReport, verify_ledger

__all__ = [
    "GENESIS_HASH",
    "AnswerEvidence",
    "BrokenEvent",
    "ConsentEvidence",
    "ConsentMethod",
    "ConsentScope",
    "EventKind",
    "EvidenceError",
    "GateDecision",
    "GateReason",
    "RecordedEvent",
    "ScriptEvidence",
    "VerificationReport",
    "WordEvidence",
    "append_event",
    "append_only_ddl",
    "canonical_json",
    "event_by_hash",
    "events_for_number",
    "latest_events",
    "may_send",
    "metadata",
    "resubscribe",
    "revoke",
    "verify_ledger",
]
