"""Shared fixtures: settings on a temporary SQLite database with the demo businesses loaded, and
fresh databases on SQLite or on PostgreSQL (a schema of their own) for the storage tests."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from voice_agent.records.businesses import import_businesses
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade
from voice_agent.settings import Settings, SynthesizerChoice

ROOT = Path(__file__).resolve().parent.parent
AUTH_TOKEN = "test-auth-token"
PUBLIC_BASE_URL = "https://receptionist.example.com"


def receptionist_settings(
    database_url: str, port: int = 8765, audio_dir: Path = Path("var/audio")
) -> Settings:
    return Settings(
        database_url=database_url,
        audio_dir=audio_dir,
        public_base_url=PUBLIC_BASE_URL,
        twilio_auth_token=SecretStr(AUTH_TOKEN),
        port=port,
        # espeak-ng: fast and the same on every run; Piper, the default voice, is tested in
        # test_piper.py and end to end from the installed wheel (test_wheel.py).
        synthesizer=SynthesizerChoice.ESPEAK,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return receptionist_settings(f"sqlite:///{tmp_path / 'receptionist.db'}")


@pytest.fixture
def migrated_engine(settings: Settings) -> Iterator[Engine]:
    """The settings' database, migrated, with the demo businesses imported."""
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
    yield engine
    engine.dispose()


@pytest.fixture
def demo_database(
    settings: Settings, migrated_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The settings' database URL, migrated, with the demo businesses; the test runs in a folder
    of its own (no stray .env is read)."""
    monkeypatch.chdir(tmp_path)
    return settings.database_url


POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"  # the same, for psycopg and pg_dump


@functools.cache
def postgres_unreachable() -> str | None:
    """Why PostgreSQL at 127.0.0.1:5432 cannot be used, or None when it can."""
    try:
        psycopg.connect(_POSTGRES_DSN, connect_timeout=2).close()
    except psycopg.Error as error:
        return str(error).strip() or type(error).__name__
    return None


def _schema_url(schema: str) -> str:
    # Commits need not wait for the disk: nothing here outlives the test.
    url = make_url(POSTGRES_URL).set(
        query={"options": f"-csearch_path={schema} -csynchronous_commit=off"}
    )
    return url.render_as_string(hide_password=False)


def _postgres_admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(_POSTGRES_DSN, autocommit=True)


@functools.cache
def _migrated_schema_script() -> tuple[str, str] | None:
    """The DDL of a schema at the newest version, and the name it uses for the schema: a
    schema migrated once per test process and dumped with ``pg_dump`` (one round trip makes a
    copy in 0.07 s, against 0.2–0.4 s to migrate). None when pg_dump is missing or cannot
    dump this server: each schema is then migrated."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        return None
    template = f"receptionist_template_{os.getpid()}"
    with _postgres_admin() as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {template} CASCADE")  # type: ignore[arg-type]
        conn.execute(f"CREATE SCHEMA {template}")  # type: ignore[arg-type]
        try:
            upgrade(_schema_url(template))
            version = conn.execute(
                f"SELECT version_num FROM {template}.alembic_version"  # type: ignore[arg-type]
            ).fetchone()
            dumped = subprocess.run(
                [
                    pg_dump,
                    f"--dbname={_POSTGRES_DSN}",
                    f"--schema={template}",
                    "--schema-only",
                    "--no-owner",
                    "--no-privileges",
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            conn.execute(f"DROP SCHEMA {template} CASCADE")  # type: ignore[arg-type]
    if dumped.returncode != 0 or version is None:
        return None
    # psql's own commands (\restrict) are not SQL
    lines = [line for line in dumped.stdout.splitlines() if not line.startswith("\\")]
    lines.append(f"INSERT INTO {template}.alembic_version VALUES ('{version[0]}');")
    return "\n".join(lines), template


@contextlib.contextmanager
def postgres_schema(prefix: str, *, migrated: bool = True) -> Iterator[str]:
    """A database URL whose connections use a schema of their own, dropped afterwards (or a
    skip): at the newest version, or with ``migrated=False`` empty."""
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable: {reason}")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    script = _migrated_schema_script() if migrated else None
    with _postgres_admin() as conn, conn.transaction():
        if script is None:
            conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
        else:
            ddl, template = script
            conn.execute(ddl.replace(template, schema))  # type: ignore[arg-type]
    url = _schema_url(schema)
    if migrated and script is None:
        upgrade(url)
    try:
        yield url
    finally:
        with _postgres_admin() as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[arg-type]


@functools.cache
def _migrated_sqlite_template(folder: Path) -> Path:
    path = folder / f"receptionist-template-{os.getpid()}.db"
    path.unlink(missing_ok=True)
    upgrade(f"sqlite:///{path}")
    return path


BACKENDS = ("sqlite", "postgresql")


@contextlib.contextmanager
def fresh_database(
    backend: str, tmp_path: Path, name: str, *, migrated: bool = True
) -> Iterator[str]:
    """The URL of a database of the test's own: a SQLite file ``name``.db, or a PostgreSQL
    schema named after ``name`` (dropped afterwards; a skip when PostgreSQL is unreachable);
    at the newest version (a copy of one migrated once), or with ``migrated=False`` empty."""
    if backend == "sqlite":
        path = tmp_path / f"{name}.db"
        if migrated:
            shutil.copyfile(_migrated_sqlite_template(tmp_path.parent), path)
        yield f"sqlite:///{path}"
        return
    with postgres_schema(f"{name}_test", migrated=migrated) as url:
        yield url


@contextlib.contextmanager
def serving_receptionist(database_url: str) -> Iterator[tuple[Settings, str, Engine]]:
    """The real application under uvicorn on a free loopback port, on ``database_url`` (migrated,
    with the demo businesses): its settings, its URL and its engine."""
    import tempfile

    from voice_agent.services import build_services
    from voice_agent.web.local_server import free_port, serving

    with tempfile.TemporaryDirectory(prefix="receptionist-audio-") as audio_dir:
        settings = receptionist_settings(database_url, port=free_port(), audio_dir=Path(audio_dir))
        upgrade(settings.database_url)
        services = build_services(settings)
        with services.engine.begin() as conn:
            import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
        try:
            with serving(services) as server_url:
                yield settings, server_url, services.engine
        finally:
            services.engine.dispose()
