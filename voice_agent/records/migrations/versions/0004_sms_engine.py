"""sms engine: inbound texts, business texting policy, call metrics

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 16:18:29.457068
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_inbound",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_sid", sa.String(length=64), nullable=False),
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.Column("from_number", sa.String(length=16), nullable=False),
        sa.Column("to_number", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(length=16), nullable=False),
        sa.Column("opt_out_type", sa.String(length=16), nullable=True),
        sa.Column("num_media", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_sid", name="uq_sms_inbound_message_sid"),
    )
    with op.batch_alter_table("sms_inbound", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sms_inbound_thread", ["business_id", "from_number", "received_at"], unique=False
        )

    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sms_send_window_start", sa.Time(), server_default="08:00:00", nullable=False)
        )
        batch_op.add_column(
            sa.Column("sms_send_window_end", sa.Time(), server_default="20:00:00", nullable=False)
        )
        batch_op.add_column(sa.Column("no_reply_follow_up_hours", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("callback_check_hours", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("excluded_numbers", sa.JSON(), server_default="[]", nullable=False)
        )
        batch_op.add_column(
            sa.Column("sms_state_caps", sa.Boolean(), server_default=sa.true(), nullable=False)
        )

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_provider_message_id", ["provider_message_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_provider_message_id")

    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.drop_column("sms_state_caps")
        batch_op.drop_column("excluded_numbers")
        batch_op.drop_column("callback_check_hours")
        batch_op.drop_column("no_reply_follow_up_hours")
        batch_op.drop_column("sms_send_window_end")
        batch_op.drop_column("sms_send_window_start")

    with op.batch_alter_table("sms_inbound", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_inbound_thread")

    op.drop_table("sms_inbound")
