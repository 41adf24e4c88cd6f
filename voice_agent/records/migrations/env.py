"""Alembic environment: one migration history over every package's own tables."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData

from consent_ledger import metadata as ledger_metadata
from dashboard import metadata as dashboard_metadata
from sms_sender import metadata as sms_metadata
from voice_agent.records.database import make_engine
from voice_agent.records.tables import metadata as receptionist_metadata

MIGRATION_LOCK = 0x7265636570_0001
"""The PostgreSQL advisory lock a migration holds."""

target_metadata: list[MetaData] = [
    receptionist_metadata,
    ledger_metadata,
    sms_metadata,
    dashboard_metadata,
]


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Processes starting together migrate one after the other; the later ones find
                # the schema current. (The lock ends with the transaction.)
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            context.run_migrations()
    engine.dispose()


run_migrations_online()
