"""The SMS sender's tables: the outbox (one row per text we plan, send or refuse to send), the
inbound texts (one row per text received), the replies held as possible opt-outs, and the delivery
reports that arrived before the send they report on was recorded.

Times are stored in UTC. SQLite has no time-zone-aware timestamp, so ``UtcDateTime`` stores a
naive UTC value there (whose text sorts in time order) and hands back aware UTC datetimes on every
database; a naive datetime is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator

from consent_ledger import stored_instant

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as an aware UTC datetime."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"a naive datetime cannot be stored as UTC: {value!r}")
        in_utc = value.astimezone(UTC)
        return in_utc.replace(tzinfo=None) if dialect.name == "sqlite" else in_utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        return stored_instant(value)


outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("business_id", String(64), nullable=False),
    Column("call_sid", String(64), nullable=False),
    Column("to_number", String(16), nullable=False),
    Column("from_number", String(16), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("segments", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("consent_event_hash", String(128), nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("claimed_at", UtcDateTime, nullable=True),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("provider_message_id", String(64), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    UniqueConstraint("call_sid", "kind", name="uq_outbox_call_sid_kind"),
    Index("ix_outbox_status_due_at", "status", "due_at"),
    Index("ix_outbox_business_to_number", "business_id", "to_number"),
)

Index("ix_outbox_provider_message_id", outbox.c.provider_message_id)

sms_inbound = Table(
    "sms_inbound",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_sid", String(64), nullable=False),
    Column("business_id", String(64), nullable=False),
    Column("from_number", String(16), nullable=False),
    Column("to_number", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("intent", String(16), nullable=False),
    Column("opt_out_type", String(16), nullable=True),
    Column("num_media", Integer, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    UniqueConstraint("message_sid", name="uq_sms_inbound_message_sid"),
    Index("ix_sms_inbound_thread", "business_id", "from_number", "received_at"),
)
"""Texts people sent to a business's number, one row per Twilio MessageSid."""

sms_reply_holds = Table(
    "sms_reply_holds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_sid", String(64), nullable=False),
    Column("business_id", String(64), nullable=False),
    Column("from_number", String(16), nullable=False),
    Column("held_at", UtcDateTime, nullable=False),
    Column("decision", String(16), nullable=True),
    Column("decided_at", UtcDateTime, nullable=True),
    UniqueConstraint("message_sid", name="uq_sms_reply_holds_message_sid"),
    Index("ix_sms_reply_holds_number", "business_id", "from_number", "decision"),
)
"""Inbound texts that may be opt-outs, held for the owner: one row per such text. While a row of a
number has no ``decision``, the dispatcher pauses automated texts to it; the owner decides
``opt_out`` (revoked like STOP) or ``not_opt_out`` (texts go on); a later STOP or START from the
number decides it too (``superseded``)."""

early_delivery_reports = Table(
    "early_delivery_reports",
    metadata,
    Column(
        "outbox_id",
        Integer,
        ForeignKey("outbox.id", name="fk_early_delivery_reports_outbox"),
        primary_key=True,
    ),
    Column("message_sid", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("error_code", Integer, nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
)
"""A text's final delivery status, reported before the send's MessageSid was recorded (Twilio can
call back before the transaction that records the send commits, or after it rolled back). The
dispatcher applies the one naming the MessageSid it records; one per text and MessageSid, the first
one wins."""


def insert_once(
    dialect_name: str, table: Table, values: Mapping[str, Any], key: Sequence[str]
) -> Insert:
    """An INSERT of ``values`` that does nothing when ``table`` already holds a row with the same
    ``key`` (a unique constraint), so a retried webhook or handler never stores a thing twice."""
    if dialect_name == "postgresql":
        return postgresql.insert(table).values(values).on_conflict_do_nothing(index_elements=key)
    if dialect_name == "sqlite":
        return sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=key)
    raise ValueError(f"the SMS sender supports SQLite and PostgreSQL, not {dialect_name}")
