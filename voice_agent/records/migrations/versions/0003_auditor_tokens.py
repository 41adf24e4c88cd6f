"""auditor tokens: per-business read-only access to consent records, stored as hashes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auditor_tokens",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256", name="uq_auditor_tokens_token_sha256"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_auditor_tokens_business", "auditor_tokens", ["business_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_auditor_tokens_business", table_name="auditor_tokens")
    op.drop_table("auditor_tokens")
