"""initial schema: businesses, calls, consent ledger, outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-27 15:48:34.432537
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consent_ledger import append_only_ddl
from consent_ledger.tables import drop_append_only_ddl

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "businesses",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner_phone", sa.String(length=20), nullable=False),
        sa.Column("ring_owner_first", sa.Boolean(), nullable=False),
        sa.Column("ring_seconds", sa.Integer(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("services", sa.Text(), nullable=False),
        sa.Column("callback_time", sa.String(length=200), nullable=False),
        sa.Column("max_texts", sa.Integer(), nullable=False),
        sa.Column("help_contact", sa.String(length=200), nullable=False),
        sa.Column("consent_script_version", sa.String(length=32), nullable=False),
        sa.Column("recording_enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "calls",
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("stream_sid", sa.String(length=64), nullable=True),
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.Column("caller_number", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=64), nullable=True),
        sa.Column("caller_name", sa.String(length=200), nullable=True),
        sa.Column("need", sa.Text(), nullable=True),
        sa.Column("callback_number", sa.String(length=20), nullable=True),
        sa.Column("urgency", sa.String(length=20), nullable=True),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("consent_outcome", sa.String(length=32), nullable=True),
        sa.Column("consent_event_hash", sa.String(length=64), nullable=True),
        sa.Column("turn_metrics", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("call_sid"),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(
            "ix_calls_business_started", ["business_id", "started_at"], unique=False
        )

    op.create_table(
        "business_numbers",
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
        ),
        sa.PrimaryKeyConstraint("number"),
    )
    op.create_table(
        "call_turns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("end", sa.Float(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("words", sa.JSON(), nullable=False),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_sid"],
            ["calls.call_sid"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("call_turns", schema=None) as batch_op:
        batch_op.create_index("ix_call_turns_call", ["call_sid", "position"], unique=False)

    op.create_table(
        "consent_chain_heads",
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("business_id"),
    )
    op.create_table(
        "consent_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "kind IN ('consent_granted', 'consent_declined', 'consent_unclear', "
            "'consent_not_asked', 'revoked', 'resubscribed')",
            name="ck_consent_events_kind",
        ),
        sa.CheckConstraint("seq >= 1", name="ck_consent_events_seq_positive"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("business_id", "seq", name="uq_consent_events_business_seq"),
        sa.UniqueConstraint("hash", name="uq_consent_events_hash"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_events_business_phone", ["business_id", "phone_number", "seq"], unique=False
        )

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("to_number", sa.String(length=16), nullable=False),
        sa.Column("from_number", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("consent_event_hash", sa.String(length=128), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_message_id", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_sid", "kind", name="uq_outbox_call_sid_kind"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_business_to_number", ["business_id", "to_number"], unique=False
        )
        batch_op.create_index("ix_outbox_status_due_at", ["status", "due_at"], unique=False)

    for statement in append_only_ddl(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_append_only_ddl(op.get_bind().dialect.name):
        op.execute(statement)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status_due_at")
        batch_op.drop_index("ix_outbox_business_to_number")

    op.drop_table("outbox")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_events_business_phone")

    op.drop_table("consent_events")
    op.drop_table("consent_chain_heads")
    with op.batch_alter_table("call_turns", schema=None) as batch_op:
        batch_op.drop_index("ix_call_turns_call")

    op.drop_table("call_turns")
    op.drop_table("business_numbers")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_business_started")

    op.drop_table("calls")
    op.drop_table("businesses")
