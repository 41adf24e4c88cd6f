"""The current-state projection: kept by every append, equal to a rebuild from the events, read
fast; and migration 0002, which brings an existing ledger to the projection and the new kinds.

Runs on SQLite (a temporary file) and on PostgreSQL when it is reachable, each test in its own
schema. Random histories come from a seeded generator, so every failure can be replayed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from consent_ledger.chain import (
    BODY_SCHEMA,
    GENESIS_HASH,
    CorruptEventError,
    RecordedEvent,
    append_event,
    canonical_json,
    chain_hash,
)
from consent_ledger.evidence import (
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    EventKind,
    ScriptEvidence,
)
from consent_ledger.gate import GateReason, may_send, resubscribe, revoke
from consent_ledger.projection import ConsentStateRow, ConsentStatus, consent_state
from consent_ledger.queries import event_by_hash, events_for_number, rebuild_projection
from consent_ledger.tables import (
    consent_chain_heads,
    consent_events,
    consent_states,
)
from consent_ledger.verify import verify_ledger
from tests.conftest import BACKENDS, fresh_database
from tests.ledger_support import (
    answered_call,
    drop_append_only_triggers,
    ledger_engine,
    sha256_hex,
    without_call,
)
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import alembic_config, upgrade

T0 = datetime(2025, 4, 11, 14, 0, tzinfo=UTC)
NUMBERS = ("+15555550101", "+15555550102", "+15555550103")
BUSINESSES = ("acme", "bolt")
SCRIPT = "May Acme text you up to 2 times about this call? Reply STOP to opt out."
DISCLOSURE = "By ticking this box you agree that Acme may text you about your request."


# --- databases ---------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at the newest schema: a SQLite file, or a PostgreSQL database dropped
    afterwards."""
    with fresh_database(request.param, tmp_path, "projection") as url:
        yield url


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, for the migrations to start from."""
    with fresh_database(request.param, tmp_path, "projection", migrated=False) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh ledger schema (tables and append-only triggers)."""
    with ledger_engine(database_url) as database:
        yield database


# --- evidence ----------------------------------------------------------------------------------


def _call_outcome(business_id: str, number: str, kind: EventKind, at: datetime) -> ConsentEvidence:
    """A consent question answered on a call at ``at`` (the script played just before)."""
    scope = None
    if kind is EventKind.CONSENT_GRANTED:
        scope = ConsentScope("follow-up", 1 + (at.minute % 4), at + timedelta(hours=24))
    return answered_call(
        kind, at, business_id=business_id, number=number, script=("v1", SCRIPT), scope=scope
    )


def _web_form(business_id: str, number: str, at: datetime, max_texts: int = 3) -> ConsentEvidence:
    disclosure = ScriptEvidence("form/v1", DISCLOSURE, sha256_hex(DISCLOSURE), at, None)
    return without_call(
        EventKind.WEB_FORM_CONSENT,
        ConsentMethod.WEB_FORM,
        at,
        business_id=business_id,
        number=number,
        scope=ConsentScope("callback", max_texts, at + timedelta(hours=12)),
        script=disclosure,
    )


# --- random histories --------------------------------------------------------------------------


_REVOCATION_METHODS = (ConsentMethod.SMS_KEYWORD, ConsentMethod.SMS_TEXT, ConsentMethod.OWNER)


class HistoryWriter:
    """Appends a seeded random mix of every kind of event, including ones the fold must ignore."""

    def __init__(self, seed: int, businesses: tuple[str, ...] = BUSINESSES) -> None:
        self.random = random.Random(seed)
        self.businesses = businesses
        self.at = T0

    def step(self, conn: Connection) -> None:
        self.at += timedelta(minutes=self.random.choice((1, 7, 90, 600)))
        business_id = self.random.choice(self.businesses)
        number = self.random.choice(NUMBERS)
        choice = self.random.randrange(12)
        if choice < 4:
            kinds = (
                EventKind.CONSENT_GRANTED,
                EventKind.CONSENT_DECLINED,
                EventKind.CONSENT_UNCLEAR,
                EventKind.CONSENT_NOT_ASKED,
            )
            evidence = _call_outcome(business_id, number, kinds[choice], self.at)
        elif choice == 4:
            evidence = _web_form(business_id, number, self.at, self.random.randint(1, 4))
        elif choice in (5, 6):
            method = self.random.choice(_REVOCATION_METHODS)
            revoke(conn, business_id, "X", number, method, self.at, self.at)
            return
        elif choice in (7, 8):
            resubscribe(conn, business_id, "X", number, ConsentMethod.SMS_KEYWORD, self.at, self.at)
            return
        elif choice == 9:
            evidence = self._stray_pointer(conn, business_id, number)
        else:
            kind = self.random.choice(
                (EventKind.OWNER_NOTIFICATIONS_OPT_IN, EventKind.OWNER_NOTIFICATIONS_OPT_OUT)
            )
            evidence = without_call(
                kind, ConsentMethod.OWNER, self.at, business_id=business_id, number=number
            )
        append_event(conn, evidence, self.at)

    def _stray_pointer(self, conn: Connection, business_id: str, number: str) -> ConsentEvidence:
        """A revocation or resubscription pointing at any earlier event of the number (or none)."""
        earlier = [event.hash for event in events_for_number(conn, business_id, number)]
        target = self.random.choice(earlier) if earlier else "e" * 64
        if self.random.random() < 0.5:
            return without_call(
                EventKind.REVOKED,
                ConsentMethod.SMS_TEXT,
                self.at,
                business_id=business_id,
                number=number,
                revokes=target,
            )
        scope = ConsentScope("again", self.random.randint(1, 4), self.at + timedelta(hours=30))
        return without_call(
            EventKind.RESUBSCRIBED,
            ConsentMethod.SMS_KEYWORD,
            self.at,
            business_id=business_id,
            number=number,
            revokes=target,
            scope=scope,
        )


def _stored_rows(conn: Connection) -> list[tuple[Any, ...]]:
    """Every projection row exactly as the database holds it (SQLite: the stored text)."""
    result = conn.exec_driver_sql(
        "SELECT business_id, phone_number, status, event_hash, event_seq, consent_hash, "
        "consent_seq, window_start, window_end, max_texts, last_seq, updated_at "
        "FROM consent_state ORDER BY business_id, phone_number"
    )
    return [tuple(row) for row in result]


# --- the projection after random histories ------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_projection_equals_a_rebuild_after_a_random_history(engine: Engine, seed: int) -> None:
    writer = HistoryWriter(seed)
    for _ in range(40):
        with engine.begin() as conn:
            writer.step(conn)

    with engine.begin() as conn:
        kept = _stored_rows(conn)
        assert rebuild_projection(conn) == len(kept)
        assert _stored_rows(conn) == kept
        assert rebuild_projection(conn, "acme") == sum(row[0] == "acme" for row in kept)
        assert _stored_rows(conn) == kept
        assert verify_ledger(conn).ok
    assert kept, "the history must have recorded something"


@pytest.mark.parametrize("seed", range(6))
def test_projection_agrees_with_the_gate(engine: Engine, seed: int) -> None:
    writer = HistoryWriter(100 + seed)
    for _ in range(30):
        with engine.begin() as conn:
            writer.step(conn)

    with engine.begin() as conn:
        for business_id in BUSINESSES:
            for number in NUMBERS:
                state = consent_state(conn, business_id, number)
                at = writer.at
                if state is not None and state.window_start is not None:
                    at = state.window_start
                decision = may_send(conn, business_id, number, at, lambda since: 0)
                _assert_agree(conn, state, decision.reason, decision.event)


def _assert_agree(
    conn: Connection,
    state: ConsentStateRow | None,
    reason: GateReason,
    event: RecordedEvent | None,
) -> None:
    if state is None:
        assert (reason, event) == (GateReason.NO_CONSENT, None)
        return
    expected = {
        ConsentStatus.GRANTED: GateReason.ALLOWED,
        ConsentStatus.DECLINED: GateReason.DECLINED,
        ConsentStatus.REVOKED: GateReason.REVOKED,
    }.get(state.status, GateReason.NO_CONSENT)
    assert reason is expected
    rests_on = state.consent_hash if state.status is ConsentStatus.GRANTED else state.event_hash
    assert (event.hash if event else None) == rests_on
    if state.event_hash is not None:
        named = event_by_hash(conn, state.event_hash)
        assert named is not None and named.seq == state.event_seq


# --- named histories ---------------------------------------------------------------------------


def _append(engine: Engine, evidence: ConsentEvidence, at: datetime) -> RecordedEvent:
    with engine.begin() as conn:
        return append_event(conn, evidence, at)


def _state(engine: Engine, business_id: str = "acme", number: str = NUMBERS[0]) -> ConsentStateRow:
    with engine.begin() as conn:
        state = consent_state(conn, business_id, number)
    assert state is not None
    return state


def test_a_grant_is_projected_with_its_window_and_cap(engine: Engine) -> None:
    evidence = _call_outcome("acme", NUMBERS[0], EventKind.CONSENT_GRANTED, T0)
    grant = _append(engine, evidence, T0 + timedelta(seconds=1))

    assert _state(engine) == ConsentStateRow(
        business_id="acme",
        phone_number=NUMBERS[0],
        status=ConsentStatus.GRANTED,
        event_hash=grant.hash,
        event_seq=1,
        consent_hash=grant.hash,
        consent_seq=1,
        window_start=T0 + timedelta(seconds=1),
        window_end=T0 + timedelta(hours=24),
        max_texts=1,
        last_seq=1,
        updated_at=T0 + timedelta(seconds=1),
    )
    with engine.begin() as conn:
        assert consent_state(conn, "acme", NUMBERS[1]) is None
        assert consent_state(conn, "bolt", NUMBERS[0]) is None


def test_revocation_keeps_the_consent_a_resubscription_restores(engine: Engine) -> None:
    grant = _append(engine, _web_form("acme", NUMBERS[0], T0, max_texts=4), T0)
    with engine.begin() as conn:
        revocation = revoke(
            conn, "acme", "Acme", NUMBERS[0], ConsentMethod.OWNER, _at(1), _at(1), note="asked"
        )
    assert revocation is not None

    revoked = _state(engine)
    assert (revoked.status, revoked.event_hash, revoked.consent_hash) == (
        ConsentStatus.REVOKED,
        revocation.hash,
        grant.hash,
    )
    with engine.begin() as conn:
        resubscribe(conn, "acme", "Acme", NUMBERS[0], ConsentMethod.SMS_KEYWORD, _at(2), _at(2))

    restored = _state(engine)
    assert (restored.status, restored.event_hash, restored.event_seq) == (
        ConsentStatus.GRANTED,
        grant.hash,
        1,
    )
    assert (restored.max_texts, restored.window_end, restored.last_seq) == (4, _at(12), 3)


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.mark.parametrize(
    ("kinds", "status"),
    [
        ((EventKind.CONSENT_UNCLEAR,), ConsentStatus.UNCLEAR),
        ((EventKind.CONSENT_NOT_ASKED,), ConsentStatus.NOT_ASKED),
        ((EventKind.CONSENT_UNCLEAR, EventKind.CONSENT_NOT_ASKED), ConsentStatus.NOT_ASKED),
        ((EventKind.CONSENT_DECLINED, EventKind.CONSENT_UNCLEAR), ConsentStatus.DECLINED),
        ((EventKind.CONSENT_GRANTED, EventKind.CONSENT_NOT_ASKED), ConsentStatus.GRANTED),
        ((EventKind.CONSENT_GRANTED, EventKind.CONSENT_DECLINED), ConsentStatus.DECLINED),
        ((EventKind.OWNER_NOTIFICATIONS_OPT_IN,), ConsentStatus.NONE),
    ],
    ids=["unclear", "not asked", "latest inconclusive", "decline stands", "grant stands",
         "declined later", "owner event only"],
)  # fmt: skip
def test_the_status_follows_the_rules(
    engine: Engine, kinds: tuple[EventKind, ...], status: ConsentStatus
) -> None:
    for hour, kind in enumerate(kinds):
        if kind is EventKind.OWNER_NOTIFICATIONS_OPT_IN:
            evidence = without_call(kind, ConsentMethod.OWNER, _at(hour), number=NUMBERS[0])
        else:
            evidence = _call_outcome("acme", NUMBERS[0], kind, _at(hour))
        _append(engine, evidence, _at(hour))

    state = _state(engine)
    assert state.status is status
    assert state.last_seq == len(kinds)
    if status in (ConsentStatus.DECLINED, ConsentStatus.NONE):
        assert (state.consent_hash, state.window_end, state.max_texts) == (None, None, None)


# --- concurrency and repair --------------------------------------------------------------------


def test_concurrent_appends_keep_the_projection_consistent(engine: Engine) -> None:
    def write(worker: int) -> None:
        writer = HistoryWriter(1000 + worker)
        for _ in range(25):
            with engine.begin() as conn:
                writer.step(conn)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(8)))

    with engine.begin() as conn:
        kept = _stored_rows(conn)
        last_seqs = {
            (row.business_id, row.phone_number): row.last
            for row in conn.execute(
                select(
                    consent_events.c.business_id,
                    consent_events.c.phone_number,
                    consent_events.c.seq.label("last"),
                ).order_by(consent_events.c.seq)
            )
        }
        rebuild_projection(conn)
        assert _stored_rows(conn) == kept
        assert verify_ledger(conn).ok
    assert {(row[0], row[1]): row[10] for row in kept} == last_seqs


def test_a_rebuild_repairs_a_damaged_or_lost_projection(engine: Engine) -> None:
    writer = HistoryWriter(7)
    for _ in range(30):
        with engine.begin() as conn:
            writer.step(conn)
    with engine.begin() as conn:
        kept = _stored_rows(conn)
        conn.execute(update(consent_states).values(status="granted", max_texts=4))
        conn.execute(consent_states.delete().where(consent_states.c.phone_number == NUMBERS[0]))
        assert _stored_rows(conn) != kept
        rebuild_projection(conn)
        assert _stored_rows(conn) == kept


def test_a_rebuild_refuses_a_damaged_ledger_and_keeps_the_projection(engine: Engine) -> None:
    grant = _append(engine, _call_outcome("acme", NUMBERS[0], EventKind.CONSENT_GRANTED, T0), T0)
    with engine.begin() as conn:
        kept = _stored_rows(conn)
        drop_append_only_triggers(conn)
        conn.execute(
            update(consent_events)
            .where(consent_events.c.hash == grant.hash)
            .values(body=grant_body_with_cap(conn, grant.hash, 4))
        )

    with pytest.raises(CorruptEventError, match="hash mismatch"), engine.begin() as conn:
        rebuild_projection(conn)
    with engine.begin() as conn:
        assert _stored_rows(conn) == kept


def grant_body_with_cap(conn: Connection, event_hash: str, cap: int) -> str:
    body = conn.execute(
        select(consent_events.c.body).where(consent_events.c.hash == event_hash)
    ).scalar_one()
    return str(body).replace('"max_texts":1', f'"max_texts":{cap}')


def test_projection_rows_belong_to_the_events_transaction(engine: Engine) -> None:
    evidence = _call_outcome("acme", NUMBERS[0], EventKind.CONSENT_GRANTED, T0)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        append_event(conn, evidence, T0)
        assert consent_state(conn, "acme", NUMBERS[0]) is not None
        raise RuntimeError("the caller fails after appending")
    with engine.begin() as conn:
        assert consent_state(conn, "acme", NUMBERS[0]) is None
        assert events_for_number(conn, "acme", NUMBERS[0]) == []


# --- migration 0002 ----------------------------------------------------------------------------


def _legacy_append(conn: Connection, evidence: ConsentEvidence, seq: int, prev: str) -> str:
    """Append the way revision 0001's code did: event and chain head, no projection."""
    body = canonical_json(
        {"schema": BODY_SCHEMA, "seq": seq, "recorded_at": evidence.occurred_at,
         "evidence": evidence.to_dict()}
    )  # fmt: skip
    digest = chain_hash(prev, body)
    conn.execute(
        insert(consent_events).values(
            business_id=evidence.business_id,
            seq=seq,
            phone_number=evidence.phone_number,
            kind=evidence.kind.value,
            recorded_at=evidence.occurred_at,
            body=body,
            prev_hash=prev,
            hash=digest,
        )
    )
    head = {"business_id": evidence.business_id, "seq": seq, "hash": digest}
    if seq == 1:
        conn.execute(insert(consent_chain_heads).values(head))
    else:
        conn.execute(
            update(consent_chain_heads)
            .where(consent_chain_heads.c.business_id == evidence.business_id)
            .values(head)
        )
    return digest


def _legacy_ledger(conn: Connection) -> None:
    """acme: a grant then a revocation for one number, a decline for another."""
    grant = _call_outcome("acme", NUMBERS[0], EventKind.CONSENT_GRANTED, T0)
    first = _legacy_append(conn, grant, 1, GENESIS_HASH)
    revocation = without_call(
        EventKind.REVOKED, ConsentMethod.SMS_KEYWORD, _at(1), number=NUMBERS[0], revokes=first
    )
    second = _legacy_append(conn, revocation, 2, first)
    decline = _call_outcome("acme", NUMBERS[1], EventKind.CONSENT_DECLINED, _at(2))
    _legacy_append(conn, decline, 3, second)


def test_migrations_create_everything_from_empty(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    database = make_engine(empty_database_url)
    try:
        _append(database, _web_form("acme", NUMBERS[0], T0), T0)
        _append(
            database,
            without_call(
                EventKind.OWNER_NOTIFICATIONS_OPT_OUT, ConsentMethod.OWNER, T0, number=NUMBERS[2]
            ),
            T0,
        )
        assert _state(database).status is ConsentStatus.GRANTED
        _assert_ledger_still_guarded(database)
    finally:
        database.dispose()


def test_migrating_a_0001_ledger_projects_its_events(empty_database_url: str) -> None:
    command.upgrade(alembic_config(empty_database_url), "0001")
    database = make_engine(empty_database_url)
    try:
        with database.begin() as conn:
            _legacy_ledger(conn)

        upgrade(empty_database_url)

        with database.begin() as conn:
            migrated = _stored_rows(conn)
            assert [row[2] for row in migrated] == ["revoked", "declined"]
            rebuild_projection(conn)
            assert _stored_rows(conn) == migrated
            assert verify_ledger(conn).ok
            retention = conn.exec_driver_sql(
                "SELECT transcript_retention_days, consent_retention_years FROM businesses"
            ).all()
            assert retention == []
        with database.begin() as conn:
            resubscribe(conn, "acme", "Acme", NUMBERS[0], ConsentMethod.SMS_KEYWORD, _at(3), _at(3))
        assert _state(database).status is ConsentStatus.GRANTED
        _assert_ledger_still_guarded(database)
    finally:
        database.dispose()


def test_migrating_gives_existing_businesses_the_default_retention(empty_database_url: str) -> None:
    command.upgrade(alembic_config(empty_database_url), "0001")
    database = make_engine(empty_database_url)
    try:
        with database.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO businesses (id, name, owner_phone, ring_owner_first, ring_seconds, "
                "time_zone, services, callback_time, max_texts, help_contact, "
                "consent_script_version, recording_enabled) VALUES ('acme', 'Acme', "
                "'+15555550100', true, 20, 'UTC', '', 'soon', 2, 'x', 'v1', false)"
            )
        upgrade(empty_database_url)
        with database.begin() as conn:
            retention = conn.exec_driver_sql(
                "SELECT transcript_retention_days, consent_retention_years FROM businesses"
            ).one()
        assert tuple(retention) == (90, 5)
    finally:
        database.dispose()


def test_migrating_a_damaged_0001_ledger_still_upgrades(empty_database_url: str) -> None:
    command.upgrade(alembic_config(empty_database_url), "0001")
    database = make_engine(empty_database_url)
    try:
        with database.begin() as conn:
            _legacy_ledger(conn)
            drop_append_only_triggers(conn)
            conn.execute(update(consent_events).where(consent_events.c.seq == 2).values(seq=9))

        upgrade(empty_database_url)

        with database.begin() as conn:
            assert _stored_rows(conn) == []
    finally:
        database.dispose()


def _assert_ledger_still_guarded(database: Engine) -> None:
    """After the migration the events table still refuses changes and unknown kinds."""
    with pytest.raises(DBAPIError, match="append-only"), database.begin() as conn:
        conn.execute(update(consent_events).values(phone_number=NUMBERS[2]))
    with pytest.raises(IntegrityError), database.begin() as conn:
        conn.execute(
            insert(consent_events).values(
                business_id="acme",
                seq=99,
                phone_number=NUMBERS[0],
                kind="consent_maybe",
                recorded_at=T0,
                body="{}",
                prev_hash="0" * 64,
                hash="9" * 64,
            )
        )
    if database.dialect.name == "sqlite":
        with database.connect() as conn:
            definition = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'consent_events'"
            ).scalar_one()
        assert "AUTOINCREMENT" in definition
