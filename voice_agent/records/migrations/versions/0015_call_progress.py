"""what Twilio reports about each call, including those that never reached the assistant: the
owner's leg and the call's final status and duration; each business's on-call phones and hours,
and the transfers of emergency callers to them

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 10:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_progress",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("business_id", sa.String(64), nullable=True),
        sa.Column("caller_number", sa.String(20), nullable=True),
        sa.Column("owner_leg", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("duration_seconds", sa.Integer, nullable=True),
        sa.Column("first_reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_call_progress_business_reported", "call_progress", ["business_id", "first_reported_at"]
    )

    with op.batch_alter_table("businesses") as batch_op:
        batch_op.add_column(
            sa.Column("on_call_phones", sa.JSON(), server_default="[]", nullable=False)
        )
        batch_op.add_column(sa.Column("on_call_start", sa.Time(), nullable=True))
        batch_op.add_column(sa.Column("on_call_end", sa.Time(), nullable=True))
    op.create_table(
        "call_transfers",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("business_id", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("call_transfers")
    with op.batch_alter_table("businesses") as batch_op:
        batch_op.drop_column("on_call_end")
        batch_op.drop_column("on_call_start")
        batch_op.drop_column("on_call_phones")
    op.drop_index("ix_call_progress_business_reported", table_name="call_progress")
    op.drop_table("call_progress")
