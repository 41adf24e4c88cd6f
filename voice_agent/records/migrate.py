"""Database migrations (Alembic, in ``voice_agent/records/migrations``, shipped in the package)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

MIGRATIONS_LOCATION = "voice_agent.records:migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_LOCATION)
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    """Bring the database to the newest schema; safe to run at every start."""
    command.upgrade(alembic_config(database_url), "head")
