"""owner tokens and sessions: owners sign in to the dashboard; only hashes are stored

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "owner_tokens",
        sa.Column("id", _ID, nullable=False),
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256", name="uq_owner_tokens_token_sha256"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_owner_tokens_business", "owner_tokens", ["business_id"], unique=False)
    op.create_table(
        "owner_sessions",
        sa.Column("id", _ID, nullable=False),
        sa.Column("token_id", _ID, nullable=False),
        sa.Column("session_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["token_id"], ["owner_tokens.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_sha256", name="uq_owner_sessions_session_sha256"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_owner_sessions_token", "owner_sessions", ["token_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_owner_sessions_token", table_name="owner_sessions")
    op.drop_table("owner_sessions")
    op.drop_index("ix_owner_tokens_business", table_name="owner_tokens")
    op.drop_table("owner_tokens")
