"""The dashboard's own tables: the tokens that let an auditor read one business's consent records.

Only the sha256 of a token is stored, never the token itself. Rows are never deleted: a revoked or
expired token stays listed so that the operator can see who had access and until when.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()

auditor_tokens = Table(
    "auditor_tokens",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("business_id", String(64), nullable=False),
    Column("label", String(200), nullable=False),
    Column("token_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("token_sha256", name="uq_auditor_tokens_token_sha256"),
    Index("ix_auditor_tokens_business", "business_id"),
    sqlite_autoincrement=True,
)
