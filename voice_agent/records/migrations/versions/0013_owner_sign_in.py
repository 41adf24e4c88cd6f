"""owners and staff sign in with their phone: the people of a business, one-time codes, sign-in
links and phone sessions (only hashes stored); the owner's e-mail for call summaries

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-07 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("businesses", sa.Column("owner_email", sa.String(length=254), nullable=True))
    op.create_table(
        "business_people",
        sa.Column("id", _ID, nullable=False),
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("from_config", sa.Boolean(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("business_id", "phone_number", name="uq_business_people_phone"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_business_people_phone", "business_people", ["phone_number"])
    op.create_table(
        "sign_in_codes",
        sa.Column("id", _ID, nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=False),
        sa.Column("code_salt", sa.String(length=32), nullable=False),
        sa.Column("code_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_sign_in_codes_phone", "sign_in_codes", ["phone_number", "created_at"])
    op.create_table(
        "sign_in_links",
        sa.Column("id", _ID, nullable=False),
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("link_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("link_sha256", name="uq_sign_in_links_link_sha256"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_sign_in_links_phone", "sign_in_links", ["business_id", "phone_number"])
    op.create_table(
        "phone_sessions",
        sa.Column("id", _ID, nullable=False),
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("session_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_sha256", name="uq_phone_sessions_session_sha256"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_phone_sessions_business", "phone_sessions", ["business_id", "phone_number"])


def downgrade() -> None:
    op.drop_index("ix_phone_sessions_business", table_name="phone_sessions")
    op.drop_table("phone_sessions")
    op.drop_index("ix_sign_in_links_phone", table_name="sign_in_links")
    op.drop_table("sign_in_links")
    op.drop_index("ix_sign_in_codes_phone", table_name="sign_in_codes")
    op.drop_table("sign_in_codes")
    op.drop_index("ix_business_people_phone", table_name="business_people")
    op.drop_table("business_people")
    with op.batch_alter_table("businesses") as batch:
        batch.drop_column("owner_email")
