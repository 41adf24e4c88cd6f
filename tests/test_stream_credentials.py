"""Per-call media-stream credentials: what they vouch for, when they expire, and that each is
good once, in every process (the database keeps the uses)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import SecretStr
from sqlalchemy import Engine, MetaData, func, select

from tests.conftest import AUTH_TOKEN, BACKENDS, fresh_database, receptionist_settings
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade
from voice_agent.records.tables import stream_credential_uses
from voice_agent.web.stream_credentials import (
    CredentialRefused,
    StreamCredentials,
    StreamGrant,
    claim_stream,
)

NOW = datetime(2026, 3, 2, 15, 4, 5, tzinfo=UTC)
CALL = "CA" + "1" * 32
BUSINESS = "bright-spark-electric"
CALLER = "+13035550142"
LIFETIME = timedelta(minutes=5)


@pytest.fixture
def credentials() -> StreamCredentials:
    return StreamCredentials(b"a test key", LIFETIME)


def test_a_credential_admits_its_own_call_until_it_expires(
    credentials: StreamCredentials,
) -> None:
    credential = credentials.issue(CALL, BUSINESS, CALLER, NOW)
    grant = credentials.check(credential, CALL, BUSINESS, CALLER, NOW + LIFETIME / 2)
    assert grant == StreamGrant(CALL, BUSINESS, CALLER, NOW + LIFETIME)
    with pytest.raises(CredentialRefused, match="expired"):
        credentials.check(credential, CALL, BUSINESS, CALLER, NOW + LIFETIME)


@pytest.mark.parametrize(
    ("call_sid", "business_id", "caller"),
    [
        ("CA" + "2" * 32, BUSINESS, CALLER),  # another call
        (CALL, "acme-plumbing", CALLER),  # another business
        (CALL, BUSINESS, "+15125550199"),  # another caller: the number consent would be for
    ],
)
def test_a_credential_opens_nothing_but_what_it_was_issued_for(
    credentials: StreamCredentials, call_sid: str, business_id: str, caller: str
) -> None:
    credential = credentials.issue(CALL, BUSINESS, CALLER, NOW)
    with pytest.raises(CredentialRefused, match="not issued for this call"):
        credentials.check(credential, call_sid, business_id, caller, NOW)


def test_fields_cannot_be_shifted_from_one_to_another(credentials: StreamCredentials) -> None:
    credential = credentials.issue(CALL, "acme", "x+15125550142", NOW)
    with pytest.raises(CredentialRefused):
        credentials.check(credential, CALL, "acmex", "+15125550142", NOW)


def test_a_credential_with_a_changed_expiry_is_refused(credentials: StreamCredentials) -> None:
    version, expires, mac = credentials.issue(CALL, BUSINESS, CALLER, NOW).split(".")
    later = f"{version}.{int(expires) + 3600}.{mac}"
    with pytest.raises(CredentialRefused, match="not issued for this call"):
        credentials.check(later, CALL, BUSINESS, CALLER, NOW)


@pytest.mark.parametrize(
    ("presented", "reason"),
    [
        ("", "no credential"),
        ("v1", "malformed"),
        ("v1.1772463845.short", "malformed"),
        ("v2.1772463845." + "A" * 43, "malformed"),
        ("v1.99999999999999." + "A" * 43, "malformed"),
        ("v1.1772463845." + "A" * 43 + "\n", "malformed"),
        ("v1.1772463845." + "A" * 43, "not issued"),
    ],
)
def test_malformed_or_forged_credentials_are_refused(
    credentials: StreamCredentials, presented: str, reason: str
) -> None:
    with pytest.raises(CredentialRefused, match=reason):
        credentials.check(presented, CALL, BUSINESS, CALLER, NOW)


def test_another_deployment_s_credential_is_refused(credentials: StreamCredentials) -> None:
    theirs = StreamCredentials(b"another key", LIFETIME).issue(CALL, BUSINESS, CALLER, NOW)
    with pytest.raises(CredentialRefused):
        credentials.check(theirs, CALL, BUSINESS, CALLER, NOW)


def test_the_key_comes_from_the_auth_token_or_its_own_setting(tmp_path: Path) -> None:
    settings = receptionist_settings(f"sqlite:///{tmp_path / 'x.db'}")
    derived = StreamCredentials.from_settings(settings)
    credential = derived.issue(CALL, BUSINESS, CALLER, NOW)
    # Every process of the deployment builds the same key from the same settings.
    StreamCredentials.from_settings(settings).check(credential, CALL, BUSINESS, CALLER, NOW)
    assert AUTH_TOKEN not in credential
    separate = settings.model_copy(
        update={"stream_credential_secret": SecretStr("a separate secret")}
    )
    with pytest.raises(CredentialRefused):
        StreamCredentials.from_settings(separate).check(credential, CALL, BUSINESS, CALLER, NOW)
    assert derived.lifetime == timedelta(seconds=settings.stream_credential_seconds)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with fresh_database(request.param, tmp_path, "stream_credentials") as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


def _uses(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(stream_credential_uses)).scalar())


def test_a_credential_is_good_once(engine: Engine) -> None:
    grant = StreamGrant(CALL, BUSINESS, CALLER, NOW + LIFETIME)
    assert claim_stream(engine, grant, NOW)
    assert not claim_stream(engine, grant, NOW)
    # A fresh credential for the same call SID (any business) opens no second stream either.
    again = StreamGrant(CALL, "acme-plumbing", CALLER, NOW + 2 * LIFETIME)
    assert not claim_stream(engine, again, NOW + LIFETIME)
    assert claim_stream(engine, StreamGrant("CA" + "2" * 32, BUSINESS, CALLER, NOW), NOW)
    assert _uses(engine) == 2


def test_streams_racing_with_one_credential_admit_exactly_one(engine: Engine) -> None:
    grant = StreamGrant(CALL, BUSINESS, CALLER, NOW + LIFETIME)
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def claim() -> None:
        barrier.wait()
        results.append(claim_stream(engine, grant, NOW))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert _uses(engine) == 1


def test_the_migration_makes_the_table_as_declared(engine: Engine) -> None:
    declared = MetaData()
    stream_credential_uses.to_metadata(declared)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), declared)
    relevant = [
        difference
        for difference in differences
        if not (difference[0] == "remove_table" and difference[1].name != "stream_credential_uses")
        and not (
            difference[0] == "remove_index" and difference[1].table.name != "stream_credential_uses"
        )
    ]
    assert relevant == []
