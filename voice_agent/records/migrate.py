"""Database migrations (Alembic, in ``voice_agent/records/migrations``, shipped in the package)."""

from __future__ import annotations

import functools

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_LOCATION = "voice_agent.records:migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_LOCATION)
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    """Bring the database to the newest schema; safe to run at every start."""
    command.upgrade(alembic_config(database_url), "head")


def schema_is_current(engine: Engine) -> bool:
    """Whether ``engine``'s database is at the newest schema (readiness; raises when the
    database cannot be reached)."""
    with engine.connect() as conn:
        applied = frozenset(MigrationContext.configure(conn).get_current_heads())
    return applied == _newest()


@functools.cache
def _newest() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())
