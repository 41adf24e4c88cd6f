"""The ledger's tables, and the SQL that makes the database itself refuse to change its events.

``consent_events`` holds one row per event; ``body`` is the canonical JSON that the event's hash
covers, and the other columns repeat what the body says so that the database can index them (the
verifier checks that they agree). ``consent_chain_heads`` holds each business's last sequence number
and hash: appends lock that row, and the verifier uses it to notice events missing from the end.
``consent_state`` is the current-state projection, one row per business and number, derived from
the events (see ``projection``); it is evidence of nothing and can always be rebuilt.

Migrations create the tables from :data:`metadata` and then run :func:`append_only_ddl`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from consent_ledger.evidence import MAX_BUSINESS_ID_LENGTH, EventKind

metadata = MetaData()

_KIND_VALUES = ", ".join(f"'{kind.value}'" for kind in EventKind)
_POSTGRESQL_PAGE_TUPLE_LIMIT = 8160
"""The largest ``toast_tuple_target``: the most a row can hold in an 8 kB page."""

consent_events = Table(
    "consent_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("business_id", String(MAX_BUSINESS_ID_LENGTH), nullable=False),
    Column("seq", BigInteger(), nullable=False),
    Column("phone_number", String(16), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("body", Text(), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("business_id", "seq", name="uq_consent_events_business_seq"),
    UniqueConstraint("hash", name="uq_consent_events_hash"),
    CheckConstraint("seq >= 1", name="ck_consent_events_seq_positive"),
    CheckConstraint(f"kind IN ({_KIND_VALUES})", name="ck_consent_events_kind"),
    Index("ix_consent_events_business_phone", "business_id", "phone_number", "seq"),
    sqlite_autoincrement=True,
    # PostgreSQL compresses rows over 2 kB, which a body with its answer's words is; reading each
    # body back then costs a decompression, most of the server's work in a verification. Rows up
    # to a page stay as written (larger ones are still compressed and moved out of line).
    postgresql_with={"toast_tuple_target": _POSTGRESQL_PAGE_TUPLE_LIMIT},
)

consent_chain_heads = Table(
    "consent_chain_heads",
    metadata,
    Column("business_id", String(MAX_BUSINESS_ID_LENGTH), primary_key=True),
    Column("seq", BigInteger(), nullable=False),
    Column("hash", String(64), nullable=False),
)

consent_states = Table(
    "consent_state",
    metadata,
    Column("business_id", String(MAX_BUSINESS_ID_LENGTH), primary_key=True),
    Column("phone_number", String(16), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("event_hash", String(64)),
    Column("event_seq", BigInteger()),
    Column("consent_hash", String(64)),
    Column("consent_seq", BigInteger()),
    Column("window_start", DateTime(timezone=True)),
    Column("window_end", DateTime(timezone=True)),
    Column("max_texts", Integer()),
    Column("last_seq", BigInteger(), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

_REFUSE_FUNCTION = "consent_events_refuse_change"
_SQLITE_TRIGGERS = {
    "UPDATE": "consent_events_refuse_update",
    "DELETE": "consent_events_refuse_delete",
}
_POSTGRESQL_TRIGGERS = {
    "consent_events_refuse_update_delete": "BEFORE UPDATE OR DELETE ON consent_events FOR EACH ROW",
    "consent_events_refuse_truncate": "BEFORE TRUNCATE ON consent_events FOR EACH STATEMENT",
}


def append_only_ddl(dialect_name: str) -> list[str]:
    """Statements that make the database refuse UPDATE and DELETE (and TRUNCATE) on consent_events.

    The statements hold no ``:`` or ``%``, so they can be run as they are through
    ``exec_driver_sql``, ``text()`` or Alembic's ``op.execute``.
    """
    if dialect_name == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {operation} ON consent_events "
            f"BEGIN SELECT RAISE(ABORT, 'consent_events is append-only, {operation} refused'); END"
            for operation, name in _SQLITE_TRIGGERS.items()
        ]
    if dialect_name == "postgresql":
        function = (
            f"CREATE OR REPLACE FUNCTION {_REFUSE_FUNCTION}() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION USING MESSAGE = "
            "'consent_events is append-only, ' || TG_OP || ' refused'; END $$"
        )
        triggers = [
            statement
            for name, timing in _POSTGRESQL_TRIGGERS.items()
            for statement in (
                f"DROP TRIGGER IF EXISTS {name} ON consent_events",
                f"CREATE TRIGGER {name} {timing} EXECUTE FUNCTION {_REFUSE_FUNCTION}()",
            )
        ]
        return [function, *triggers]
    raise ValueError(f"the consent ledger supports sqlite and postgresql, not {dialect_name!r}")


def drop_append_only_ddl(dialect_name: str) -> list[str]:
    """Statements that undo :func:`append_only_ddl` (for a migration's downgrade)."""
    if dialect_name == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {name}" for name in _SQLITE_TRIGGERS.values()]
    if dialect_name == "postgresql":
        drops = [
            f"DROP TRIGGER IF EXISTS {name} ON consent_events" for name in _POSTGRESQL_TRIGGERS
        ]
        return [*drops, f"DROP FUNCTION IF EXISTS {_REFUSE_FUNCTION}()"]
    raise ValueError(f"the consent ledger supports sqlite and postgresql, not {dialect_name!r}")


def create_ledger_schema(conn: Connection) -> None:
    """Create the ledger's tables and append-only triggers where they are missing (tests, demos)."""
    metadata.create_all(conn)
    for statement in append_only_ddl(conn.dialect.name):
        conn.exec_driver_sql(statement)
