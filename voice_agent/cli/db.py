"""``receptionist db upgrade``: the database schema."""

from __future__ import annotations

import click

from voice_agent.cli.support import load_settings, migrate


@click.group()
def db() -> None:
    """The database schema."""


@db.command()
def upgrade() -> None:
    """Apply migrations (the server, the worker and the demo do it themselves)."""
    migrate(load_settings().database_url)
    print("database is up to date")
