"""The dashboard's own tables: access tokens for auditors and for owners, owners' sessions, the
people of a business who sign in with their phone, their one-time codes, sign-in links and
phone sessions.

Only the sha256 of a token or a session is stored, never the secret itself. Token rows are never
deleted: a revoked or expired token stays listed so that the operator can see who had access and
until when. Auditor and owner tokens live in tables of their own, so a token of one kind can never
be looked up as the other.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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
(the owner token's label, or the signed-in person's label and last four digits)."""

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

business_people = Table(
    "business_people",
    metadata,
    Column("id", _ID, primary_key=True),
    Column("business_id", String(64), nullable=False),
    Column("phone_number", String(16), nullable=False),
    Column("role", String(16), nullable=False),
    Column("label", String(200), nullable=False),
    Column("from_config", Boolean, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
    Column("removed_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("business_id", "phone_number", name="uq_business_people_phone"),
    Index("ix_business_people_phone", "phone_number"),
    sqlite_autoincrement=True,
)
"""Who may sign in to a business with their phone, as ``owner`` or ``staff``. The business's
configured owner phone is a row ``from_config``; removing a person keeps the row
(``removed_at``)."""

sign_in_codes = Table(
    "sign_in_codes",
    metadata,
    Column("id", _ID, primary_key=True),
    Column("phone_number", String(16), nullable=False),
    Column("code_salt", String(32), nullable=False),
    Column("code_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_sign_in_codes_phone", "phone_number", "created_at"),
    sqlite_autoincrement=True,
)
"""One-time sign-in codes texted to a phone: a salted hash, the count of wrong tries, and when it
expires, was used or was revoked. A row is kept for any number asked for (a code goes out only to a
person's phone), so known and unknown numbers are limited alike."""

sign_in_links = Table(
    "sign_in_links",
    metadata,
    Column("id", _ID, primary_key=True),
    Column("business_id", String(64), nullable=False),
    Column("phone_number", String(16), nullable=False),
    Column("call_sid", String(64), nullable=False),
    Column("link_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("link_sha256", name="uq_sign_in_links_link_sha256"),
    Index("ix_sign_in_links_phone", "business_id", "phone_number"),
    sqlite_autoincrement=True,
)
"""One-time links in a call summary: they sign the owner's phone in and open that call."""

phone_sessions = Table(
    "phone_sessions",
    metadata,
    Column("id", _ID, primary_key=True),
    Column("business_id", String(64), nullable=False),
    Column("phone_number", String(16), nullable=False),
    Column("role", String(16), nullable=False),
    Column("method", String(16), nullable=False),
    Column("session_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("renewed_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("ended_by", String(16), nullable=True),
    UniqueConstraint("session_sha256", name="uq_phone_sessions_session_sha256"),
    Index("ix_phone_sessions_business", "business_id", "phone_number"),
    sqlite_autoincrement=True,
)
"""A phone signed in by code or link: the cookie holds a random secret, this row its hash. It works
for 30 days from its last renewal (each use renews it, at most hourly) until signed out or
revoked."""
