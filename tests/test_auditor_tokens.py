"""Auditor tokens: shown once, stored only as a hash, scoped to one business, refused once expired
or revoked; and the ``receptionist auditor token create|list|revoke`` commands.

Storage tests run on SQLite and on PostgreSQL when it is reachable (a schema of their own).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import Engine, select

from dashboard.auditor_tokens import (
    TOKEN_PREFIX,
    AuditorToken,
    TokenError,
    TokenStatus,
    authenticate,
    issue_token,
    list_tokens,
    revoke_token,
)
from dashboard.tables import auditor_tokens
from dashboard.tables import metadata as dashboard_metadata
from tests.cli_support import receptionist
from tests.conftest import BACKENDS, ROOT, fresh_database, receptionist_settings
from tests.ledger_support import audit_database
from voice_agent.records.businesses import import_businesses
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade
from voice_agent.settings import Settings

T0 = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TOKEN_SHAPE = re.compile(rf"{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}")


# --- databases --------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with audit_database(request.param, tmp_path) as database:
        yield database


def _issue(
    engine: Engine, business_id: str = "acme-plumbing", lifetime: timedelta = DAY
) -> tuple[str, AuditorToken]:
    with engine.begin() as conn:
        issued = issue_token(conn, business_id, "carrier audit", T0, lifetime)
    return issued.secret, issued.token


def _authenticate(engine: Engine, presented: str, at: datetime) -> AuditorToken | None:
    with engine.begin() as conn:
        return authenticate(conn, presented, at)


# --- issuing ----------------------------------------------------------------------------------


def test_a_token_is_random_recognisable_and_only_its_hash_is_stored(engine: Engine) -> None:
    secret, token = _issue(engine)
    other_secret, _ = _issue(engine)

    assert TOKEN_SHAPE.fullmatch(secret)
    assert secret != other_secret
    with engine.connect() as conn:
        row = conn.execute(select(auditor_tokens).where(auditor_tokens.c.id == token.id)).one()
    assert row.token_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    stored = " ".join(str(value) for value in row)
    assert secret not in stored
    assert secret.removeprefix(TOKEN_PREFIX) not in stored
    assert "secret" not in {field.name for field in dataclasses.fields(AuditorToken)}
    assert (token.business_id, token.label, token.created_at) == (
        "acme-plumbing",
        "carrier audit",
        T0,
    )
    assert token.expires_at == T0 + DAY
    assert (token.revoked_at, token.last_used_at) == (None, None)


@pytest.mark.parametrize(
    ("business_id", "label", "lifetime", "message"),
    [
        ("", "x", DAY, "business id"),
        ("b" * 65, "x", DAY, "business id"),
        ("acme", "x" * 201, DAY, "at most 200"),
        ("acme", "carrier\naudit", DAY, "control characters"),
        ("acme", "carrier\x1b[31m", DAY, "control characters"),
        ("acme", "x", timedelta(0), "positive"),
        ("acme", "x", -DAY, "positive"),
    ],
)
def test_a_token_that_would_be_unclear_or_unbounded_is_refused(
    engine: Engine, business_id: str, label: str, lifetime: timedelta, message: str
) -> None:
    with engine.begin() as conn, pytest.raises(TokenError, match=message):
        issue_token(conn, business_id, label, T0, lifetime)
    with engine.connect() as conn:
        assert list_tokens(conn) == []


def test_times_must_be_utc(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(ValueError, match="UTC"):
        issue_token(conn, "acme", "x", datetime(2025, 6, 2, 15), DAY)


# --- presenting -------------------------------------------------------------------------------


def test_an_active_token_opens_its_business_and_its_use_is_recorded(engine: Engine) -> None:
    secret, token = _issue(engine)
    used_at = T0 + timedelta(hours=3)

    found = _authenticate(engine, secret, used_at)

    assert found is not None
    assert (found.id, found.business_id, found.last_used_at) == (token.id, "acme-plumbing", used_at)
    with engine.connect() as conn:
        (listed,) = list_tokens(conn)
    assert listed.last_used_at == used_at


def _one_character_changed(secret: str) -> str:
    last = secret[-1]
    return secret[:-1] + ("A" if last != "A" else "B")


@pytest.mark.parametrize(
    "presented",
    [
        "",
        TOKEN_PREFIX,
        "rcpt_audit_" + "A" * 42,
        "rcpt_audit_" + "A" * 44,
        "RCPT_AUDIT_" + "A" * 43,
        "other_prefix_" + "A" * 43,
        "rcpt_audit_" + "A" * 42 + "=",
        "rcpt_audit_" + "A" * 42 + "é",
        "rcpt_audit_" + "A" * 42 + "\x00",
        "' OR '1'='1",
        "rcpt_audit_" + "A" * 10_000,
    ],
)
def test_malformed_tokens_open_nothing(engine: Engine, presented: str) -> None:
    _issue(engine)
    assert _authenticate(engine, presented, T0) is None


def test_a_token_that_was_never_issued_or_was_altered_opens_nothing(engine: Engine) -> None:
    secret, _ = _issue(engine)
    assert _authenticate(engine, TOKEN_PREFIX + "A" * 43, T0) is None
    assert _authenticate(engine, _one_character_changed(secret), T0) is None
    assert _authenticate(engine, " " + secret, T0) is None
    with engine.connect() as conn:
        assert [token.last_used_at for token in list_tokens(conn)] == [None]


def test_a_token_expires_at_its_expiry_instant(engine: Engine) -> None:
    secret, token = _issue(engine)
    just_before = token.expires_at - timedelta(microseconds=1)

    assert _authenticate(engine, secret, just_before) is not None
    assert _authenticate(engine, secret, token.expires_at) is None
    assert token.status(token.expires_at) is TokenStatus.EXPIRED
    with engine.connect() as conn:
        (listed,) = list_tokens(conn)
    assert listed.last_used_at == just_before


def test_a_revoked_token_opens_nothing_and_keeps_its_first_revocation_time(engine: Engine) -> None:
    secret, token = _issue(engine)
    revoked_at = T0 + timedelta(hours=1)
    with engine.begin() as conn:
        revoked = revoke_token(conn, token.id, revoked_at)
    with engine.begin() as conn:
        again = revoke_token(conn, token.id, revoked_at + timedelta(hours=1))
        missing = revoke_token(conn, token.id + 1000, revoked_at)

    assert revoked is not None and revoked.revoked_at == revoked_at
    assert again is not None and again.revoked_at == revoked_at
    assert missing is None
    assert _authenticate(engine, secret, revoked_at) is None
    assert _authenticate(engine, secret, revoked_at - timedelta(minutes=1)) is None
    assert revoked.status(T0 + 2 * DAY) is TokenStatus.REVOKED


def test_revoking_one_token_leaves_the_others_working(engine: Engine) -> None:
    first, first_token = _issue(engine)
    second, _ = _issue(engine)
    with engine.begin() as conn:
        revoke_token(conn, first_token.id, T0)
    assert _authenticate(engine, first, T0) is None
    assert _authenticate(engine, second, T0) is not None


def test_listing_by_business_shows_only_that_business(engine: Engine) -> None:
    _issue(engine, "acme-plumbing")
    _issue(engine, "bright-spark-electric")
    _issue(engine, "acme-plumbing")
    with engine.connect() as conn:
        acme = list_tokens(conn, "acme-plumbing")
        everyone = list_tokens(conn)
        nobody = list_tokens(conn, "no-such-business")
    assert [token.business_id for token in acme] == ["acme-plumbing", "acme-plumbing"]
    assert [token.id for token in everyone] == sorted(token.id for token in everyone)
    assert len(everyone) == 3
    assert nobody == []


# --- the CLI ----------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def cli_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a migrated database with the demo businesses and the dashboard's tables."""
    with fresh_database(request.param, tmp_path, "audit_cli") as url:
        upgrade(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
            dashboard_metadata.create_all(conn)
        engine.dispose()
        yield receptionist_settings(url)


def _run(settings: Settings, *argv: str) -> Result:
    return receptionist(*argv, settings=settings)


def test_create_prints_the_token_once_and_it_works(cli_settings: Settings) -> None:
    result = _run(
        cli_settings, "auditor", "token", "create", "--business", "acme-plumbing",
        "--label", "T-Mobile audit", "--expires-days", "7",
    )  # fmt: skip
    err = result.stderr

    assert result.exit_code == 0
    secret = result.stdout.strip()
    assert TOKEN_SHAPE.fullmatch(secret)
    assert secret not in err and "not shown again" in err
    engine = make_engine(cli_settings.database_url)
    with engine.begin() as conn:
        (token,) = list_tokens(conn)
        found = authenticate(conn, secret, token.created_at)
    engine.dispose()
    assert found is not None and found.business_id == "acme-plumbing"
    assert token.label == "T-Mobile audit"
    assert token.expires_at - token.created_at == timedelta(days=7)


def test_list_never_shows_a_token(cli_settings: Settings) -> None:
    secrets = [
        _run(cli_settings, "auditor", "token", "create", "--business", "acme-plumbing",
             "--label", "a").stdout.strip(),
        _run(cli_settings, "auditor", "token", "create",
             "--business", "bright-spark-electric").stdout.strip(),
    ]  # fmt: skip

    table = _run(cli_settings, "auditor", "token", "list").stdout
    listed = json.loads(
        _run(
            cli_settings, "auditor", "token", "list", "--business", "acme-plumbing", "--json"
        ).stdout
    )

    assert all(secret not in table for secret in secrets)
    assert TOKEN_PREFIX not in table
    assert "acme-plumbing" in table and "bright-spark-electric" in table
    assert [(entry["business_id"], entry["label"], entry["status"]) for entry in listed] == [
        ("acme-plumbing", "a", "active")
    ]
    assert set(listed[0]) == {
        "id", "business_id", "label", "status", "created_at", "expires_at", "revoked_at",
        "last_used_at",
    }  # fmt: skip


def test_revoke_stops_a_token_and_says_so(cli_settings: Settings) -> None:
    secret = _run(
        cli_settings, "auditor", "token", "create", "--business", "acme-plumbing"
    ).stdout.strip()
    engine = make_engine(cli_settings.database_url)
    with engine.connect() as conn:
        (token,) = list_tokens(conn)

    revoked = _run(cli_settings, "auditor", "token", "revoke", str(token.id))
    assert revoked.exit_code == 0
    assert f"revoked auditor token {token.id}" in revoked.stdout
    again = _run(cli_settings, "auditor", "token", "revoke", str(token.id))
    assert again.exit_code == 0
    assert "already revoked" in again.stdout
    with engine.begin() as conn:
        assert authenticate(conn, secret, token.created_at) is None
    engine.dispose()
    listed = _run(cli_settings, "auditor", "token", "list", "--json")
    assert json.loads(listed.stdout)[0]["status"] == "revoked"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("create", "--business", "nobody"),
            "no business 'nobody'; known: acme-plumbing, bright-spark-electric",
        ),
        (("revoke", "999"), "no auditor token 999"),
        (
            ("create", "--business", "acme-plumbing", "--label", "bad\x07label"),
            "control characters",
        ),
        (("list", "--business", "nobody"), "no business 'nobody'"),
    ],
)
def test_commands_refuse_what_does_not_exist(
    cli_settings: Settings, argv: tuple[str, ...], message: str
) -> None:
    result = _run(cli_settings, "auditor", "token", *argv)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ("auditor", "token", "create"),
        ("auditor", "token", "create", "--business", "acme-plumbing", "--expires-days", "0"),
        ("auditor", "token", "create", "--business", "acme-plumbing", "--expires-days", "367"),
        ("auditor", "token", "create", "--business", "acme-plumbing", "--expires-days", "1.5"),
        ("auditor", "token", "revoke", "one"),
        ("auditor", "token"),
    ],
)
def test_bad_arguments_are_usage_errors(argv: tuple[str, ...]) -> None:
    assert receptionist(*argv).exit_code == 2
