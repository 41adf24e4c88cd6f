"""calls the owner marked handled, the owner's notes on calls, the record of the owner's
settings changes, business hours with the callback promise made outside them, and an index that
finds a business's calls in progress (the streams admitted lately)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "handled_calls",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("business_id", sa.String(64), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_handled_calls_business", "handled_calls", ["business_id", "call_sid"])
    op.create_table(
        "call_notes",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("business_id", sa.String(64), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("written_by", sa.String(200), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_call_notes_call", "call_notes", ["business_id", "call_sid", "id"])
    op.create_table(
        "settings_changes",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("business_id", sa.String(64), nullable=False),
        sa.Column("setting", sa.String(64), nullable=False),
        sa.Column("old_value", sa.Text, nullable=False),
        sa.Column("new_value", sa.Text, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_settings_changes_business", "settings_changes", ["business_id", "id"])
    with op.batch_alter_table("businesses") as table:
        table.add_column(sa.Column("hours_start", sa.Time))
        table.add_column(sa.Column("hours_end", sa.Time))
        table.add_column(
            sa.Column("open_days", sa.JSON, nullable=False, server_default="[0, 1, 2, 3, 4]")
        )
        table.add_column(
            sa.Column(
                "after_hours_callback",
                sa.String(200),
                nullable=False,
                server_default="on the next business day",
            )
        )
    op.create_index(
        "ix_stream_credential_uses_business_used",
        "stream_credential_uses",
        ["business_id", "used_at"],
    )


def downgrade() -> None:
    with op.batch_alter_table("businesses") as table:
        for column in ("after_hours_callback", "open_days", "hours_end", "hours_start"):
            table.drop_column(column)
    op.drop_index("ix_stream_credential_uses_business_used", table_name="stream_credential_uses")
    op.drop_index("ix_settings_changes_business", table_name="settings_changes")
    op.drop_table("settings_changes")
    op.drop_index("ix_call_notes_call", table_name="call_notes")
    op.drop_table("call_notes")
    op.drop_index("ix_handled_calls_business", table_name="handled_calls")
    op.drop_table("handled_calls")
