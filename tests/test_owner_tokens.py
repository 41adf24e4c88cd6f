"""Owner tokens and sessions: one token store for auditors and owners whose kinds never open each
other's doors; sessions that end on sign-out, on expiry and when their token is revoked; the
``receptionist owner token create|list|revoke`` commands; and the migration that makes the tables.

Storage tests run on SQLite and on PostgreSQL when it is reachable (a schema of their own).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import Result
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import DBAPIError

from dashboard import AUDITOR_TOKENS, OWNER_TOKENS, AccessToken
from dashboard.owner_queries import read_snapshot
from dashboard.owner_sessions import SESSION_LIFETIME, end_session, find_session, start_session
from dashboard.tables import metadata as dashboard_metadata
from dashboard.tables import owner_sessions, owner_tokens
from tests.cli_support import receptionist
from tests.conftest import BACKENDS, ROOT, fresh_database
from voice_agent.records.businesses import import_businesses
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade

T0 = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ACME = "acme-plumbing"
OWNER_TOKEN_SHAPE = re.compile(r"rcpt_owner_[A-Za-z0-9_-]{43}")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database migrated to head, with the demo businesses."""
    with fresh_database(request.param, tmp_path, "owner_tokens") as url:
        upgrade(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
        engine.dispose()
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _owner_token(engine: Engine, lifetime: timedelta = 90 * DAY) -> tuple[str, AccessToken]:
    with engine.begin() as conn:
        issued = OWNER_TOKENS.issue(conn, ACME, "Dana, owner", T0, lifetime)
    return issued.secret, issued.token


# --- one store, two kinds -------------------------------------------------------------------


def test_owner_and_auditor_tokens_never_open_each_others_doors(engine: Engine) -> None:
    owner_secret, owner = _owner_token(engine)
    with engine.begin() as conn:
        auditor_secret = AUDITOR_TOKENS.issue(conn, ACME, "carrier", T0, DAY).secret

    assert OWNER_TOKEN_SHAPE.fullmatch(owner_secret)
    assert auditor_secret.startswith("rcpt_audit_")
    with engine.begin() as conn:
        assert OWNER_TOKENS.authenticate(conn, auditor_secret, T0) is None
        assert AUDITOR_TOKENS.authenticate(conn, owner_secret, T0) is None
        swapped = "rcpt_audit_" + owner_secret.removeprefix("rcpt_owner_")
        assert AUDITOR_TOKENS.authenticate(conn, swapped, T0) is None
        found = OWNER_TOKENS.authenticate(conn, owner_secret, T0 + DAY)
    assert found is not None and (found.id, found.business_id) == (owner.id, ACME)
    with engine.connect() as conn:
        assert [token.label for token in OWNER_TOKENS.tokens(conn)] == ["Dana, owner"]
        assert [token.label for token in AUDITOR_TOKENS.tokens(conn)] == ["carrier"]
        (listed,) = OWNER_TOKENS.tokens(conn, ACME)
    assert listed.last_used_at == T0 + DAY


# --- sessions ---------------------------------------------------------------------------------


def test_a_session_is_stored_as_a_hash_and_works_until_it_expires(engine: Engine) -> None:
    _, token = _owner_token(engine)
    with engine.begin() as conn:
        started = start_session(conn, token, T0)
    expires_at = T0 + SESSION_LIFETIME

    with engine.connect() as conn:
        (row,) = conn.execute(select(owner_sessions)).all()
        just_before = find_session(conn, started.secret, expires_at - timedelta(microseconds=1))
        at_expiry = find_session(conn, started.secret, expires_at)
    assert row.session_sha256 == hashlib.sha256(started.secret.encode()).hexdigest()
    assert started.secret not in " ".join(str(value) for value in row)
    assert just_before is not None and just_before.business_id == ACME
    assert just_before.expires_at == expires_at
    assert at_expiry is None


def test_a_session_never_outlives_its_token(engine: Engine) -> None:
    _, token = _owner_token(engine, lifetime=timedelta(hours=2))
    with engine.begin() as conn:
        started = start_session(conn, token, T0)
    assert started.session.expires_at == T0 + timedelta(hours=2)

    with engine.connect() as conn:
        assert find_session(conn, started.secret, T0 + timedelta(hours=2)) is None

    _, other = _owner_token(engine)
    with engine.begin() as conn:
        second = start_session(conn, other, T0)
    with engine.connect() as conn:
        assert find_session(conn, second.secret, T0 + timedelta(hours=1)) is not None
    with engine.begin() as conn:
        OWNER_TOKENS.revoke(conn, other.id, T0 + timedelta(hours=1))
    with engine.connect() as conn:  # a revoked token opens nothing, whenever it is asked
        assert find_session(conn, second.secret, T0 + timedelta(hours=1)) is None
        assert find_session(conn, second.secret, T0 + timedelta(minutes=1)) is None


def test_signing_out_ends_only_that_session(engine: Engine) -> None:
    _, token = _owner_token(engine)
    with engine.begin() as conn:
        phone = start_session(conn, token, T0)
        laptop = start_session(conn, token, T0)
        end_session(conn, phone.secret, T0 + timedelta(minutes=5))
        end_session(conn, phone.secret, T0 + timedelta(minutes=6))  # again: nothing happens
    with engine.connect() as conn:
        assert find_session(conn, phone.secret, T0 + timedelta(minutes=5)) is None
        assert find_session(conn, laptop.secret, T0 + timedelta(minutes=5)) is not None
        ended = conn.execute(select(owner_sessions.c.ended_at).order_by(owner_sessions.c.id))
        assert [value is not None for value in ended.scalars()] == [True, False]


@pytest.mark.parametrize(
    "presented", ["", "x", "A" * 42, "A" * 44, "A" * 42 + "=", "' OR '1'='1", "A" * 100_000]
)
def test_malformed_session_secrets_find_nothing_and_end_nothing(
    engine: Engine, presented: str
) -> None:
    _, token = _owner_token(engine)
    with engine.begin() as conn:
        start_session(conn, token, T0)
        end_session(conn, presented, T0)
        assert find_session(conn, presented, T0) is None
        assert conn.execute(select(owner_sessions.c.ended_at)).scalar_one() is None


def test_session_times_must_be_utc(engine: Engine) -> None:
    _, token = _owner_token(engine)
    with engine.begin() as conn, pytest.raises(ValueError, match="UTC"):
        start_session(conn, token, datetime(2025, 6, 2, 15))


# --- the CLI ----------------------------------------------------------------------------------


def _receptionist(monkeypatch: pytest.MonkeyPatch, database_url: str, *argv: str) -> Result:
    monkeypatch.setenv("DATABASE_URL", database_url)
    return receptionist(*argv)


def test_owner_token_commands_issue_list_and_revoke(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    created = _receptionist(
        monkeypatch, database_url, "owner", "token", "create", "--business", ACME, "--label", "Dana"
    )
    secret = created.stdout.strip()
    assert created.exit_code == 0 and OWNER_TOKEN_SHAPE.fullmatch(secret)
    assert "owner token 1 for acme-plumbing" in created.stderr
    assert "not shown again" in created.stderr
    assert secret not in created.stderr

    listed_json = _receptionist(monkeypatch, database_url, "owner", "token", "list", "--json")
    assert listed_json.exit_code == 0
    (listed,) = json.loads(listed_json.stdout)
    assert (listed["business_id"], listed["label"], listed["status"]) == (ACME, "Dana", "active")
    issued = datetime.fromisoformat(listed["created_at"])
    assert datetime.fromisoformat(listed["expires_at"]) - issued == timedelta(days=90)
    auditors = _receptionist(monkeypatch, database_url, "auditor", "token", "list")
    assert auditors.exit_code == 0
    assert auditors.stdout.strip() == "no auditor tokens"

    revoked = _receptionist(monkeypatch, database_url, "owner", "token", "revoke", "1")
    assert revoked.exit_code == 0
    assert "revoked owner token 1 (acme-plumbing, Dana)" in revoked.stdout
    engine = make_engine(database_url)
    with engine.begin() as conn:
        assert OWNER_TOKENS.authenticate(conn, secret, datetime.now(UTC)) is None
    engine.dispose()
    table = _receptionist(monkeypatch, database_url, "owner", "token", "list")
    assert table.exit_code == 0
    assert "revoked" in table.stdout and secret not in table.stdout
    assert "rcpt_owner_" not in table.stdout


def test_owner_token_commands_refuse_what_does_not_exist(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    nobody = _receptionist(
        monkeypatch, database_url, "owner", "token", "create", "--business", "nobody"
    )
    assert nobody.exit_code == 1
    assert "Error: no business 'nobody'; known: acme-plumbing, bright-spark-electric" in (
        nobody.stderr
    )
    missing = _receptionist(monkeypatch, database_url, "owner", "token", "revoke", "7")
    assert missing.exit_code == 1
    assert "Error: no owner token 7" in missing.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ("owner", "token", "create"),
        ("owner", "token", "create", "--business", ACME, "--expires-days", "0"),
        ("owner", "token", "create", "--business", ACME, "--expires-days", "x"),
        ("owner", "token", "revoke", "one"),
        ("owner", "token"),
        ("owner",),
    ],
)
def test_bad_owner_token_arguments_are_usage_errors(argv: tuple[str, ...]) -> None:
    assert receptionist(*argv).exit_code == 2


# --- the schema -------------------------------------------------------------------------------


def test_the_migrations_make_the_dashboard_tables_as_declared(engine: Engine) -> None:
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), dashboard_metadata)
    ours = set(dashboard_metadata.tables)
    relevant = [
        difference
        for difference in differences
        if not (difference[0] == "remove_table" and difference[1].name not in ours)
        and not (difference[0] == "remove_index" and difference[1].table.name not in ours)
    ]
    assert relevant == []


def test_page_reads_on_postgresql_cannot_write(tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path, "owner_read") as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            with (
                pytest.raises(DBAPIError, match="read-only transaction"),
                read_snapshot(engine) as conn,
            ):
                conn.execute(
                    insert(owner_tokens).values(
                        business_id=ACME, label="", token_sha256="0" * 64,
                        created_at=T0, expires_at=T0 + DAY,
                    )
                )  # fmt: skip
        finally:
            engine.dispose()
