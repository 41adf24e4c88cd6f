"""The append path's shortcuts give exactly what the general, checked steps gave.

An append formats its evidence's instants without checking them again and with looked-up digits,
skips reading the standing that a grant or decline replaces, and begins SQLite transactions in the
engine's dialect. Stored bodies must keep their bytes (existing ledgers' hashes depend on them),
bad input its errors, and a busy database must still be an error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from consent_ledger.chain import GENESIS_HASH, RecordedEvent, append_event
from consent_ledger.evidence import (
    AnswerEvidence,
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    EventKind,
    WordEvidence,
)
from consent_ledger.instants import format_checked_instant, format_instant, parse_instant
from consent_ledger.projection import (
    STANDING_REPLACING_KINDS,
    ChainedEvidence,
    ConsentStateRow,
    advance,
    consent_state,
)
from consent_ledger.tables import create_ledger_schema
from tests.ledger_support import answered_call, without_call
from voice_agent.records.database import make_engine

T0 = datetime(2025, 4, 11, 14, 0, tzinfo=UTC)


PERCENT_FORMAT = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"


def percent_formatted(instant: datetime) -> str:
    """How instants were written before their digits were looked up."""
    return PERCENT_FORMAT % (
        instant.year,
        instant.month,
        instant.day,
        instant.hour,
        instant.minute,
        instant.second,
        instant.microsecond,
    )


# --- instants ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "instant",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9, 2, 3, 4, 5, 6, 7, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1000, 1, 1, 0, 0, 0, 1000, tzinfo=UTC),
        datetime(2025, 4, 11, 14, 3, 7, 250000, tzinfo=UTC),
        datetime(2025, 4, 11, 14, 3, 7, 999, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2025, 4, 11, 14, 3, 7, 1, tzinfo=timezone(timedelta(0))),
    ],
)
def test_an_instant_is_written_as_it_was(instant: datetime) -> None:
    written = percent_formatted(instant)
    assert format_checked_instant(instant) == written
    assert format_instant(instant) == written
    assert parse_instant(written) == instant


def test_every_year_and_every_microsecond_digit_group_is_written_as_it_was() -> None:
    for year in range(1, 10000):
        instant = datetime(year, 1 + year % 12, 1 + year % 28, year % 24, year % 60, tzinfo=UTC)
        assert format_checked_instant(instant) == percent_formatted(instant)
    for thousands in range(1000):  # each three-digit group in both halves of the microseconds
        instant = T0.replace(microsecond=thousands * 1000 + 999 - thousands)
        assert format_checked_instant(instant) == percent_formatted(instant)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (datetime(2025, 4, 11, 14), "instant must be timezone-aware UTC, got a naive datetime"),
        (
            datetime(2025, 4, 11, 14, tzinfo=timezone(timedelta(hours=1))),
            "instant must be in UTC, got offset 1:00:00",
        ),
        ("2025-04-11T14:00:00.000000Z", "instant must be a datetime, got str"),
    ],
)
def test_format_instant_still_refuses_what_is_not_utc(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        format_instant(value)  # type: ignore[arg-type]


# --- stored bodies -----------------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    database = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    with database.begin() as conn:
        create_ledger_schema(conn)
    yield database
    database.dispose()


def worded_grant() -> ConsentEvidence:
    """A grant whose answer has word timings, some instants on whole seconds, a non-ASCII name."""
    call = answered_call(
        EventKind.CONSENT_GRANTED, T0, scope=ConsentScope("follow-up", 2, T0 + timedelta(hours=24))
    )
    started = call.answers[0].started_at
    middle = started + timedelta(milliseconds=333)
    words = (
        WordEvidence("yes", started, middle, 0.9),
        WordEvidence("please", middle, T0, 0.875),
    )
    return replace(
        call,
        business_name="Café Ünïcode ☕",
        call_sid="CA" + "1" * 32,
        stream_sid="MZ" + "2" * 32,
        answers=(AnswerEvidence("yes please", words, "whisper/tiny.en", 0.75, started, T0),),
    )


def test_stored_bodies_keep_their_bytes(engine: Engine) -> None:
    """The hashes were computed by the code before this change, on the same evidence."""
    decline = without_call(
        EventKind.CONSENT_DECLINED,
        ConsentMethod.SMS_KEYWORD,
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
        note="STOP — «non» ✋",
    )
    with engine.begin() as conn:
        grant = append_event(conn, worded_grant(), T0 + timedelta(microseconds=7))
    with engine.begin() as conn:
        declined = append_event(conn, decline, T0 + timedelta(seconds=1))
    with engine.connect() as conn:
        bodies = conn.execute(text("SELECT body FROM consent_events ORDER BY seq")).scalars().all()
    assert [hashlib.sha256(body.encode()).hexdigest() for body in bodies] == [
        "4b4fd859eef6a28ad4289ee56bb9378ab312aeba343da8dd07674f8232683a8b",
        "4f8389dd69d69d1039b69e5eb310410f6b75167395d5a90791a6d6b9f55df486",
    ]
    assert grant.prev_hash == GENESIS_HASH
    assert (grant.hash, declined.hash) == (
        "d4b41fe4c26ae67afb38e48979b10ecf177bfafece0c24f9b5ecd708a5a3ba3c",
        "e481a7c28c2d63d9dbee01f0f41c2420a48aaff265921fced8bce757e185b1e6",
    )


# --- the standing ------------------------------------------------------------------------------


def _events_of_every_kind(number: str) -> list[ConsentEvidence]:
    grant_scope = ConsentScope("follow-up", 2, T0 + timedelta(hours=2))
    return [
        answered_call(EventKind.CONSENT_GRANTED, T0, number=number, scope=grant_scope),
        answered_call(EventKind.CONSENT_UNCLEAR, T0, number=number),
        answered_call(EventKind.CONSENT_NOT_ASKED, T0, number=number),
        without_call(
            EventKind.REVOKED, ConsentMethod.SMS_KEYWORD, T0, number=number, revokes="a" * 64
        ),
        answered_call(EventKind.CONSENT_DECLINED, T0, number=number),
    ]


def _standings_before(number: str) -> list[ConsentStateRow | None]:
    """Nothing on record, and the standing after each kind of event, alone and after the ones
    before it (which passes through a grant that a revocation keeps for a resubscription)."""
    standings: list[ConsentStateRow | None] = [None]
    history: ConsentStateRow | None = None
    for seq, evidence in enumerate(_events_of_every_kind(number), start=1):
        chained = ChainedEvidence(seq=seq, hash="a" * 64, recorded_at=T0, evidence=evidence)
        history = advance(history, chained)
        standings += [history, advance(None, chained)]
    return standings


def _replacing_event(kind: EventKind, number: str) -> ChainedEvidence:
    scope = ConsentScope("callback", 3, T0 + timedelta(hours=5))
    if kind is EventKind.CONSENT_DECLINED:
        evidence = without_call(kind, ConsentMethod.WEB_FORM, T0, number=number)
    elif kind is EventKind.WEB_FORM_CONSENT:
        form = answered_call(EventKind.CONSENT_DECLINED, T0).script
        evidence = without_call(
            kind, ConsentMethod.WEB_FORM, T0, number=number, scope=scope, script=form
        )
    else:
        evidence = answered_call(kind, T0, number=number, scope=scope)
    return ChainedEvidence(
        seq=99, hash="b" * 64, recorded_at=T0 + timedelta(minutes=1), evidence=evidence
    )


@pytest.mark.parametrize("kind", sorted(STANDING_REPLACING_KINDS))
def test_a_replacing_event_leaves_the_same_standing_whatever_stood_before(kind: EventKind) -> None:
    number = "+15555550123"
    event = _replacing_event(kind, number)
    fresh = advance(None, event)
    for before in _standings_before(number):
        assert advance(before, event) == fresh


def test_a_decline_overwrites_a_stored_standing_it_did_not_read(engine: Engine) -> None:
    number = "+15555550123"
    grant_scope = ConsentScope("follow-up", 1, T0 + timedelta(hours=1))
    with engine.begin() as conn:
        granted = answered_call(EventKind.CONSENT_GRANTED, T0, number=number, scope=grant_scope)
        grant = _append(conn, granted)
        revocation = without_call(
            EventKind.REVOKED, ConsentMethod.SMS_KEYWORD, T0, number=number, revokes=grant.hash
        )
        _append(conn, revocation)
    with engine.begin() as conn:
        decline = _append(conn, _replacing_event(EventKind.CONSENT_DECLINED, number).evidence)
        stored = consent_state(conn, "acme", number)
    assert stored == advance(None, decline.chained())
    assert stored is not None and stored.consent_hash is None and stored.last_seq == 3


def _append(conn: Connection, evidence: ConsentEvidence) -> RecordedEvent:
    return append_event(conn, evidence, T0 + timedelta(minutes=1))


# --- SQLite transactions -----------------------------------------------------------------------


def _short_busy_timeout(conn: Connection) -> None:
    """Wait at most 50 ms for a lock on this connection, instead of the engine's 30 s."""
    driver = conn.connection.dbapi_connection
    assert driver is not None
    driver.execute("PRAGMA busy_timeout=50")


def test_a_transaction_holds_the_write_lock_from_its_begin(engine: Engine) -> None:
    other = make_engine(str(engine.url))
    try:
        with engine.begin(), other.connect() as conn:  # an empty transaction holds the lock
            _short_busy_timeout(conn)
            with pytest.raises(OperationalError, match="database is locked"):
                conn.begin()
            assert not conn.in_transaction()
        with other.begin() as conn:  # once the lock is free, the same connection begins
            conn.execute(text("SELECT 1"))
    finally:
        other.dispose()


def test_a_read_only_engine_reads_while_the_write_lock_is_held(engine: Engine) -> None:
    reader = make_engine(str(engine.url), read_only=True)
    try:
        with engine.begin(), reader.connect() as conn:
            _short_busy_timeout(conn)
            with conn.begin():
                assert conn.execute(text("SELECT count(*) FROM consent_events")).scalar_one() == 0
    finally:
        reader.dispose()
