"""The migrations make what the code declares, also for storage options that metadata alone
would not apply to an existing database."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text

from tests.conftest import fresh_database, postgres_schema
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import alembic_config, schema_is_current, upgrade


def test_postgresql_keeps_consent_event_rows_uncompressed(tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path, "migrations", migrated=False) as url:
        upgrade(url)
        engine = make_engine(url)
        with engine.connect() as conn:
            options = conn.execute(
                text("SELECT reloptions FROM pg_class WHERE oid = to_regclass('consent_events')")
            ).scalar_one()
        engine.dispose()
    assert "toast_tuple_target=8160" in options


def test_the_migrations_form_one_line_that_sqlite_reaches_the_end_of(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'migrations.db'}"
    upgrade(url)
    upgrade(url)  # safe to run at every start
    engine = make_engine(url)
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    scripts = ScriptDirectory.from_config(alembic_config(url))
    assert scripts.get_heads() == [version]


def test_processes_starting_together_on_postgresql_migrate_one_after_the_other() -> None:
    """Web processes and workers started at once all migrate first: on PostgreSQL an advisory lock
    lets one migrate while the others wait, then find the schema current."""
    import multiprocessing

    with postgres_schema("migrate_together", migrated=False) as url:
        context = multiprocessing.get_context("fork")
        processes = [context.Process(target=upgrade, args=(url,)) for _ in range(3)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
        assert [process.exitcode for process in processes] == [0, 0, 0]
        engine = make_engine(url)
        assert schema_is_current(engine)
        engine.dispose()
