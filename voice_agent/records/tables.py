"""The receptionist's own tables: businesses, their numbers, calls, call transcripts, and the
per-call media-stream credentials already used."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Time,
)
from sqlalchemy import true as sa_true

metadata = MetaData()

businesses = Table(
    "businesses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("owner_phone", String(20), nullable=False),
    Column("ring_owner_first", Boolean, nullable=False),
    Column("ring_seconds", Integer, nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("services", Text, nullable=False),
    Column("callback_time", String(200), nullable=False),
    Column("max_texts", Integer, nullable=False),
    Column("help_contact", String(200), nullable=False),
    Column("consent_script_version", String(32), nullable=False),
    Column("recording_enabled", Boolean, nullable=False, default=False),
    Column("transcript_retention_days", Integer, nullable=False, server_default="90"),
    Column("consent_retention_years", Integer, nullable=False, server_default="5"),
    Column("sms_send_window_start", Time, nullable=False, server_default="08:00:00"),
    Column("sms_send_window_end", Time, nullable=False, server_default="20:00:00"),
    Column("no_reply_follow_up_hours", Float),
    Column("callback_check_hours", Float),
    Column("excluded_numbers", JSON, nullable=False, server_default="[]"),
    Column("sms_state_caps", Boolean, nullable=False, server_default=sa_true()),
    Column("on_call_phones", JSON, nullable=False, server_default="[]"),
    Column("on_call_start", Time),
    Column("on_call_end", Time),
    Column("address", Text, nullable=False, server_default=""),
    Column("contact_email", String(200), nullable=False, server_default=""),
    Column("owner_email", String(254)),
    Column("booking_url", String(100)),
    Column("hours_start", Time),
    Column("hours_end", Time),
    Column("open_days", JSON, nullable=False, server_default="[0, 1, 2, 3, 4]"),
    Column(
        "after_hours_callback",
        String(200),
        nullable=False,
        server_default="on the next business day",
    ),
)

business_numbers = Table(
    "business_numbers",
    metadata,
    Column("number", String(20), primary_key=True),
    Column("business_id", String(64), ForeignKey("businesses.id"), nullable=False),
)

calls = Table(
    "calls",
    metadata,
    Column("call_sid", String(64), primary_key=True),
    Column("stream_sid", String(64)),
    Column("business_id", String(64), nullable=False),
    Column("caller_number", String(20), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("end_reason", String(64)),
    Column("caller_name", String(200)),
    Column("need", Text),
    Column("callback_number", String(20)),
    Column("urgency", String(20)),
    Column("address", Text),
    Column("preferred_time", Text),
    Column("notes", JSON, nullable=False),
    Column("consent_outcome", String(32)),
    Column("consent_event_hash", String(64)),
    Column("turn_metrics", JSON, nullable=False),
    Column("transcript_purged_at", DateTime(timezone=True)),
    Column("notice_confirmed_at", DateTime(timezone=True)),
    Index("ix_calls_business_started", "business_id", "started_at"),
)

call_turns = Table(
    "call_turns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_sid", String(64), ForeignKey("calls.call_sid"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("speaker", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("start", Float, nullable=False),
    Column("end", Float),
    Column("confidence", Float),
    Column("words", JSON, nullable=False),
    Column("interrupted", Boolean, nullable=False, default=False),
    Index("ix_call_turns_call", "call_sid", "position"),
)

stream_credential_uses = Table(
    "stream_credential_uses",
    metadata,
    # One row per call whose media stream was admitted: a credential is good once, and a call
    # SID opens one stream only, whichever process it reaches (the insert is the check).
    Column("call_sid", String(64), primary_key=True),
    Column("business_id", String(64), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_stream_credential_uses_business_used", "business_id", "used_at"),
)

call_progress = Table(
    "call_progress",
    metadata,
    # What Twilio reported about a call (the owner's leg, the final status and duration), for
    # every call, including those that never reached the media stream.
    Column("call_sid", String(64), primary_key=True),
    Column("business_id", String(64)),
    Column("caller_number", String(20)),
    Column("owner_leg", String(16)),
    Column("status", String(16)),
    Column("duration_seconds", Integer),
    Column("first_reported_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Index("ix_call_progress_business_reported", "business_id", "first_reported_at"),
)

call_transfers = Table(
    "call_transfers",
    metadata,
    # An emergency caller who accepted the transfer to the on-call phones: asked for before the
    # media stream closes, read when Twilio asks what comes after it, and how it ended.
    Column("call_sid", String(64), primary_key=True),
    Column("business_id", String(64), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(16)),
    Column("ended_at", DateTime(timezone=True)),
)
