"""inbound texts that may be opt-outs, held for the owner's decision (automated texts to the
number pause meanwhile)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_reply_holds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_sid", sa.String(64), nullable=False),
        sa.Column("business_id", sa.String(64), nullable=False),
        sa.Column("from_number", sa.String(16), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("message_sid", name="uq_sms_reply_holds_message_sid"),
    )
    op.create_index(
        "ix_sms_reply_holds_number",
        "sms_reply_holds",
        ["business_id", "from_number", "decision"],
    )


def downgrade() -> None:
    op.drop_index("ix_sms_reply_holds_number", table_name="sms_reply_holds")
    op.drop_table("sms_reply_holds")
