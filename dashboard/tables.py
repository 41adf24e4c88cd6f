"""The dashboard's own tables: access tokens for auditors and for owners, and owners' sessions.

Only the sha256 of a token or a session is stored, never the secret itself. Token rows are never
deleted: a revoked or expired token stays listed so that the operator can see who had access and
until when. Auditor and owner tokens live in tables of their own, so a token of one kind can never
be looked up as the other.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

_ID = BigInteger().with_variant(Integer(), "sqlite")


def _token_table(name: str) -> Table:
    """A table of tokens that each open one business's records."""
    return Table(
        name,
        metadata,
        Column("id", _ID, primary_key=True),
        Column("business_id", String(64), nullable=False),
        Column("label", String(200), nullable=False),
        Column("token_sha256", String(64), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("expires_at", DateTime(timezone=True), nullable=False),
        Column("revoked_at", DateTime(timezone=True), nullable=True),
        Column("last_used_at", DateTime(timezone=True), nullable=True),
        UniqueConstraint("token_sha256", name=f"uq_{name}_token_sha256"),
        Index(f"ix_{name}_business", "business_id"),
        sqlite_autoincrement=True,
    )


auditor_tokens = _token_table("auditor_tokens")
owner_tokens = _token_table("owner_tokens")

owner_sessions = Table(
    "owner_sessions",
    metadata,
    Column("id", _ID, primary_key=True),
    Column("token_id", _ID, ForeignKey("owner_tokens.id"), nullable=False),
    Column("session_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("session_sha256", name="uq_owner_sessions_session_sha256"),
    Index("ix_owner_sessions_token", "token_id"),
    sqlite_autoincrement=True,
)
"""A signed-in browser: the cookie holds a random secret, this row its hash. A session works
until it expires or is ended (signing out), and only while its owner token still works."""

handled_calls = Table(
    "handled_calls",
    metadata,
    Column("call_sid", String(64), primary_key=True),
    Column("business_id", String(64), nullable=False),
    Column("handled_at", DateTime(timezone=True), nullable=False),
    Column("handled_by", String(200), nullable=False),
    Index("ix_handled_calls_business", "business_id", "call_sid"),
)
"""Calls the owner marked handled (one row per call; the first mark stands): when and by whom
(the label of the owner token the session rests on)."""

call_notes = Table(
    "call_notes",
    metadata,
    Column("id", _ID, primary_key=True),
    Column("business_id", String(64), nullable=False),
    Column("call_sid", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("written_at", DateTime(timezone=True), nullable=False),
    Column("written_by", String(200), nullable=False),
    Index("ix_call_notes_call", "business_id", "call_sid", "id"),
    sqlite_autoincrement=True,
)
"""The owner's notes on a call, oldest first; never changed once written."""

settings_changes = Table(
    "settings_changes",
    metadata,
    Column("id", _ID, primary_key=True),
    Column("business_id", String(64), nullable=False),
    Column("setting", String(64), nullable=False),
    Column("old_value", Text, nullable=False),
    Column("new_value", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("changed_by", String(200), nullable=False),
    Index("ix_settings_changes_business", "business_id", "id"),
    sqlite_autoincrement=True,
)
"""Every change an owner made to a setting from the settings page: which, old → new (in words),
when and by whom. Never changed afterwards."""
