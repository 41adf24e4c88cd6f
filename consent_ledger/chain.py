"""The hash chain: how a consent event is written down, hashed, appended, and checked when read.

Each business has its own chain. An event's ``body`` is the canonical JSON of ``{"schema", "seq",
"recorded_at", "evidence"}`` (sorted keys, UTF-8, no spaces, times as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``), and its hash is ``sha256(prev_hash + body)`` in lower-case hex,
where ``prev_hash`` is the previous event's hash in the same chain, or 64 zeros for the first.
Anyone holding the rows can recompute every hash without parsing any JSON: the body is stored as the
exact text that was hashed.

The columns ``business_id``, ``seq``, ``phone_number``, ``kind`` and ``recorded_at`` repeat what the
hashed body says; a row whose columns disagree with its body counts as damaged.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from consent_ledger.driver_sql import DriverStatement, instant_to_store, run
from consent_ledger.evidence import ConsentEvidence, EventKind
from consent_ledger.instants import (
    format_checked_instant,
    format_instant,
    require_utc,
    stored_instant,
)
from consent_ledger.projection import ChainedEvidence, project

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first event in every chain."""

BODY_SCHEMA = "consent-event/1"
"""Names the layout of ``body``; a new layout gets a new name."""

_BODY_FIELDS = frozenset({"schema", "seq", "recorded_at", "evidence"})


class CorruptEventError(ValueError):
    """A stored event whose body, hash and columns disagree: the row was changed after writing."""


@dataclass(frozen=True)
class RecordedEvent:
    """A consent event as it stands in the ledger."""

    seq: int
    business_id: str
    phone_number: str
    kind: EventKind
    recorded_at: datetime
    body: dict[str, Any]
    prev_hash: str
    hash: str

    def evidence(self) -> ConsentEvidence:
        """The evidence this event records, checked again as it was when it was written.

        Raises ValueError when the stored evidence does not make a valid record.
        """
        return ConsentEvidence.from_dict(self.body["evidence"])

    def chained(self) -> ChainedEvidence:
        """The event as the consent fold sees it; ValueError when its evidence does not validate."""
        return ChainedEvidence(
            seq=self.seq, hash=self.hash, recorded_at=self.recorded_at, evidence=self.evidence()
        )


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no spaces, UTF-8, datetimes as UTC instants."""
    return _CANONICAL_ENCODER.encode(value)


def chain_hash(prev_hash: str, body: str) -> str:
    """The hash of an event: lower-case hex sha256 of ``prev_hash + body`` in UTF-8."""
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def append_event(
    conn: Connection, evidence: ConsentEvidence, recorded_at: datetime
) -> RecordedEvent:
    """Append ``evidence`` to its business's chain, inside the caller's transaction.

    The business's chain-head row is locked first (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite
    transactions from the receptionist's engine already hold the write lock), so concurrent
    appends to one chain queue up and each gets the next sequence number. The number's row in the
    current-state projection is updated in the same transaction. The caller commits.
    """
    if not isinstance(evidence, ConsentEvidence):
        raise ValueError("append_event needs a ConsentEvidence")
    require_utc("recorded_at", recorded_at)
    head_seq, prev_hash = _lock_chain_head(conn, evidence.business_id)
    seq = head_seq + 1
    body_fields = {
        "schema": BODY_SCHEMA,
        "seq": seq,
        "recorded_at": format_checked_instant(recorded_at),
        "evidence": evidence.to_dict(),
    }
    body = canonical_json(body_fields)
    digest = chain_hash(prev_hash, body)
    run(
        conn,
        _INSERT_EVENT,
        (
            evidence.business_id,
            seq,
            evidence.phone_number,
            evidence.kind.value,
            instant_to_store(conn.dialect)(recorded_at),
            body,
            prev_hash,
            digest,
        ),
    )
    run(conn, _ADVANCE_HEAD, (seq, digest, evidence.business_id))
    project(conn, ChainedEvidence(seq=seq, hash=digest, recorded_at=recorded_at, evidence=evidence))
    logger.info(
        "consent event appended",
        extra={"business_id": evidence.business_id, "seq": seq, "kind": evidence.kind.value},
    )
    return RecordedEvent(
        seq=seq,
        business_id=evidence.business_id,
        phone_number=evidence.phone_number,
        kind=evidence.kind,
        recorded_at=recorded_at,
        body=body_fields,  # holds only JSON values, so it equals json.loads(body)
        prev_hash=prev_hash,
        hash=digest,
    )


def row_defect(row: Row[Any]) -> str | None:
    """Why a stored ``consent_events`` row cannot be trusted on its own, or None when it can.

    Checks that the hash covers ``prev_hash`` and ``body``, and that the columns say what the body
    says. Whether the row fits its chain (sequence, link to the previous event) is for the verifier.
    """
    if not isinstance(row.body, str) or chain_hash(row.prev_hash, row.body) != row.hash:
        return "hash mismatch"
    try:
        body = json.loads(row.body)
    except ValueError:
        return "body is not valid JSON"
    if not _is_event_body(body):
        return "body is not a consent event"
    evidence = body["evidence"]
    hashed = {
        "business_id": evidence["business_id"],
        "seq": body["seq"],
        "phone_number": evidence["phone_number"],
        "kind": evidence["kind"],
        "recorded_at": body["recorded_at"],
    }
    stored = {
        "business_id": row.business_id,
        "seq": row.seq,
        "phone_number": row.phone_number,
        "kind": row.kind,
        "recorded_at": format_instant(stored_instant(row.recorded_at)),
    }
    for column, value in stored.items():
        if value != hashed[column] or type(value) is not type(hashed[column]):
            return f"{column} column does not match the hashed body"
    return None


def event_from_row(row: Row[Any]) -> RecordedEvent:
    """The event a ``consent_events`` row holds; CorruptEventError when the row is damaged."""
    defect = row_defect(row)
    if defect is not None:
        raise CorruptEventError(
            f"consent event {row.business_id!r} #{row.seq} is damaged: {defect}"
        )
    try:
        kind = EventKind(row.kind)
    except ValueError:
        raise CorruptEventError(
            f"consent event {row.business_id!r} #{row.seq} has unknown kind {row.kind!r}"
        ) from None
    return RecordedEvent(
        seq=row.seq,
        business_id=row.business_id,
        phone_number=row.phone_number,
        kind=kind,
        recorded_at=stored_instant(row.recorded_at),
        body=json.loads(row.body),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


# The append path runs on the driver's cursor (see ``driver_sql``): it is the ledger's hot path.
_SELECT_HEAD = DriverStatement.portable(
    "SELECT seq, hash FROM consent_chain_heads WHERE business_id = ?", lock_rows=True
)
_CREATE_HEAD = DriverStatement.portable(
    "INSERT INTO consent_chain_heads (business_id, seq, hash) VALUES (?, 0, ?) "
    "ON CONFLICT (business_id) DO NOTHING"
)
_INSERT_EVENT = DriverStatement.portable(
    "INSERT INTO consent_events "
    "(business_id, seq, phone_number, kind, recorded_at, body, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_ADVANCE_HEAD = DriverStatement.portable(
    "UPDATE consent_chain_heads SET seq = ?, hash = ? WHERE business_id = ?"
)


def _lock_chain_head(conn: Connection, business_id: str) -> tuple[int, str]:
    """The chain's (seq, hash), its head row locked; a missing head is created race-free first.

    A concurrent creation of the same head is not an error: ``ON CONFLICT DO NOTHING``.
    """
    heads = run(conn, _SELECT_HEAD, (business_id,))
    if not heads:
        run(conn, _CREATE_HEAD, (business_id, GENESIS_HASH))
        heads = run(conn, _SELECT_HEAD, (business_id,))
    seq, digest = heads[0]
    return int(seq), str(digest)


def _is_event_body(body: object) -> bool:
    if not isinstance(body, dict) or set(body) != _BODY_FIELDS:
        return False
    evidence = body["evidence"]
    return isinstance(evidence, dict) and {"business_id", "phone_number", "kind"} <= set(evidence)


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return format_instant(value)
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


_CANONICAL_ENCODER = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=_json_default,
)
"""Made once: ``json.dumps`` with these options would build an encoder for every body. It keeps
no state between calls, so threads can share it."""
