"""Retention: old transcripts go, consent audio goes only after its years, consent events never.

Runs on SQLite (a temporary file) and on PostgreSQL when it is reachable (a schema per test), on a
database brought up by the real migrations. Every run takes its ``now`` from the test.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, update

from consent_ledger import (
    AudioStatus,
    AudioStore,
    ConsentScope,
    EventKind,
    append_event,
    event_by_hash,
    verify_ledger,
)
from consent_ledger.tables import consent_events
from tests.cli_support import receptionist
from tests.conftest import BACKENDS, fresh_database
from tests.ledger_support import answer_wav, answered_call, drop_append_only_triggers
from voice_agent.records.businesses import Business, save_business
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade
from voice_agent.records.retention import apply_retention
from voice_agent.records.tables import businesses, call_turns, calls
from voice_agent.settings import Settings

NOW = datetime(2031, 6, 1, 12, 0, tzinfo=UTC)
CALLER = "+15555550123"
SCRIPT = "May Acme text you up to 2 times about this call? Reply STOP to opt out."


# --- database and store ------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database with businesses acme (defaults) and bolt (30 days, 7 years)."""
    with fresh_database(request.param, tmp_path, "retention") as url:
        _prepare(url)
        yield url


def _prepare(url: str) -> None:
    upgrade(url)
    database = make_engine(url)
    with database.begin() as conn:
        save_business(conn, _business("acme", "+15555550001"))
        save_business(
            conn,
            _business(
                "bolt", "+15555550002", transcript_retention_days=30, consent_retention_years=7
            ),
        )
    database.dispose()


def _business(business_id: str, number: str, **retention: int) -> Business:
    return Business(
        id=business_id,
        name=business_id.title(),
        twilio_numbers=(number,),
        owner_phone="+15555550100",
        help_contact="call us",
        **retention,  # type: ignore[arg-type]
    )


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    database = make_engine(database_url)
    yield database
    database.dispose()


@pytest.fixture
def store(tmp_path: Path) -> AudioStore:
    return AudioStore(tmp_path / "audio")


# --- calls and consent -------------------------------------------------------------------------


def _call(engine: Engine, business_id: str, started_at: datetime, turns: int = 3) -> str:
    call_sid = "CA" + uuid.uuid4().hex
    with engine.begin() as conn:
        conn.execute(
            calls.insert().values(
                call_sid=call_sid,
                business_id=business_id,
                caller_number=CALLER,
                started_at=started_at,
                ended_at=started_at + timedelta(minutes=2),
                need="leaking tap",
                notes=[],
                turn_metrics=[],
            )
        )
        if turns:
            conn.execute(
                call_turns.insert(),
                [
                    {
                        "call_sid": call_sid,
                        "position": i,
                        "speaker": "caller" if i % 2 else "assistant",
                        "kind": "speech",
                        "text": f"turn {i}",
                        "start": float(i),
                        "words": [],
                        "interrupted": False,
                    }
                    for i in range(turns)
                ],
            )
    return call_sid


def _consent_with_audio(
    engine: Engine, business_id: str, recorded_at: datetime, audio_sha256: str
) -> str:
    """Record a verbal grant whose answer audio is ``audio_sha256``; returns the event hash."""
    at = recorded_at - timedelta(seconds=1)
    evidence = answered_call(
        EventKind.CONSENT_GRANTED,
        at,
        business_id=business_id,
        number=CALLER,
        script=("v1", SCRIPT),
        confidence=0.9,
        scope=ConsentScope("follow-up", 2, at + timedelta(hours=24)),
        audio_sha256=audio_sha256,
    )
    with engine.begin() as conn:
        return append_event(conn, evidence, recorded_at).hash


def _turn_counts(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        rows = conn.execute(
            select(call_turns.c.call_sid, func.count()).group_by(call_turns.c.call_sid)
        )
        return {call_sid: count for call_sid, count in rows}


def _purged_at(engine: Engine, call_sid: str) -> datetime | None:
    with engine.begin() as conn:
        value = conn.execute(
            select(calls.c.transcript_purged_at).where(calls.c.call_sid == call_sid)
        ).scalar_one()
    return None if value is None else value.replace(tzinfo=UTC)


# --- transcripts -------------------------------------------------------------------------------


def test_transcripts_past_each_business_retention_are_deleted(
    engine: Engine, store: AudioStore
) -> None:
    acme_old = _call(engine, "acme", NOW - timedelta(days=90, microseconds=1))
    acme_edge = _call(engine, "acme", NOW - timedelta(days=90))
    bolt_old = _call(engine, "bolt", NOW - timedelta(days=31), turns=5)
    bolt_new = _call(engine, "bolt", NOW - timedelta(days=29))
    gone_business = _call(engine, "closed-shop", NOW - timedelta(days=91))

    report = apply_retention(engine, store, NOW)

    assert [(r.call_sid, r.turns) for r in report.transcripts] == [
        (acme_old, 3),
        (bolt_old, 5),
        (gone_business, 3),
    ]
    assert report.transcripts[0].started_at == NOW - timedelta(days=90, microseconds=1)
    assert _turn_counts(engine) == {acme_edge: 3, bolt_new: 3}
    for call_sid in (acme_old, bolt_old, gone_business):
        assert _purged_at(engine, call_sid) == NOW
    for call_sid in (acme_edge, bolt_new):
        assert _purged_at(engine, call_sid) is None
    with engine.begin() as conn:
        summaries = conn.execute(select(calls.c.call_sid, calls.c.need)).all()
    assert len(summaries) == 5
    assert {need for _, need in summaries} == {"leaking tap"}


def test_a_dry_run_reports_the_same_removals_and_removes_nothing(
    engine: Engine, store: AudioStore
) -> None:
    old = _call(engine, "acme", NOW - timedelta(days=400))
    audio = store.put(answer_wav(0.1, 1))
    _consent_with_audio(engine, "acme", NOW - timedelta(days=366 * 6), audio)

    dry = apply_retention(engine, store, NOW, dry_run=True)

    assert dry.dry_run
    assert [r.call_sid for r in dry.transcripts] == [old]
    assert [r.audio_sha256 for r in dry.audio] == [audio]
    assert _turn_counts(engine) == {old: 3}
    assert _purged_at(engine, old) is None
    assert store.status(audio) is AudioStatus.PRESENT

    real = apply_retention(engine, store, NOW)
    assert (real.transcripts, real.audio) == (dry.transcripts, dry.audio)
    assert not real.dry_run


def test_a_second_run_finds_nothing_more(engine: Engine, store: AudioStore) -> None:
    _call(engine, "acme", NOW - timedelta(days=100))
    store_audio = store.put(answer_wav(0.1, 2))
    _consent_with_audio(engine, "acme", NOW - timedelta(days=366 * 6), store_audio)
    apply_retention(engine, store, NOW)

    again = apply_retention(engine, store, NOW + timedelta(days=1))

    assert (again.transcripts, again.audio) == ((), ())


def test_a_call_without_a_transcript_is_left_unmarked(engine: Engine, store: AudioStore) -> None:
    call_sid = _call(engine, "acme", NOW - timedelta(days=200), turns=0)
    assert apply_retention(engine, store, NOW).transcripts == ()
    assert _purged_at(engine, call_sid) is None


def test_retention_needs_an_aware_utc_now(engine: Engine, store: AudioStore) -> None:
    with pytest.raises(ValueError, match="UTC"):
        apply_retention(engine, store, datetime(2031, 6, 1, 12))


# --- consent audio -----------------------------------------------------------------------------


def test_consent_audio_is_kept_for_its_years_then_purged_leaving_its_hash(
    engine: Engine, store: AudioStore
) -> None:
    recorded = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
    audio = store.put(answer_wav(0.1, 3))
    event_hash = _consent_with_audio(engine, "acme", recorded, audio)
    five_years = datetime(2031, 3, 10, 9, 30, tzinfo=UTC)

    assert apply_retention(engine, store, five_years - timedelta(microseconds=1)).audio == ()
    assert store.status(audio) is AudioStatus.PRESENT

    report = apply_retention(engine, store, five_years)

    (removal,) = report.audio
    assert (removal.audio_sha256, removal.business_id, removal.event_seq) == (audio, "acme", 1)
    assert removal.kept_until == five_years
    assert "5 years" in removal.reason
    assert store.status(audio) is AudioStatus.PURGED
    with engine.begin() as conn:
        event = event_by_hash(conn, event_hash)
        assert event is not None and event.evidence().audio_sha256 == audio
        assert verify_ledger(conn).ok
        assert conn.execute(select(func.count()).select_from(consent_events)).scalar_one() == 1


def test_a_longer_business_setting_keeps_audio_longer(engine: Engine, store: AudioStore) -> None:
    recorded = datetime(2024, 1, 15, tzinfo=UTC)
    audio = store.put(answer_wav(0.1, 4))
    _consent_with_audio(engine, "bolt", recorded, audio)

    assert apply_retention(engine, store, datetime(2030, 6, 1, tzinfo=UTC)).audio == ()
    report = apply_retention(engine, store, datetime(2031, 1, 15, tzinfo=UTC))
    assert [r.audio_sha256 for r in report.audio] == [audio]
    assert "7 years" in report.audio[0].reason


def test_audio_shared_by_events_stays_until_the_newest_expires(
    engine: Engine, store: AudioStore
) -> None:
    audio = store.put(answer_wav(0.1, 5))
    _consent_with_audio(engine, "acme", datetime(2020, 1, 1, tzinfo=UTC), audio)
    _consent_with_audio(engine, "bolt", datetime(2023, 1, 1, tzinfo=UTC), audio)

    assert apply_retention(engine, store, datetime(2029, 12, 31, tzinfo=UTC)).audio == ()
    report = apply_retention(engine, store, datetime(2030, 1, 1, tzinfo=UTC))
    assert [(r.business_id, r.kept_until.year) for r in report.audio] == [("bolt", 2030)]


def test_audio_recorded_on_29_february_is_kept_until_1_march(
    engine: Engine, store: AudioStore
) -> None:
    audio = store.put(answer_wav(0.1, 6))
    _consent_with_audio(engine, "acme", datetime(2028, 2, 29, 12, tzinfo=UTC), audio)

    assert apply_retention(engine, store, datetime(2033, 2, 28, 23, tzinfo=UTC)).audio == ()
    report = apply_retention(engine, store, datetime(2033, 3, 1, 12, tzinfo=UTC))
    assert report.audio[0].kept_until == datetime(2033, 3, 1, 12, tzinfo=UTC)


def test_missing_audio_is_not_marked_purged_but_corrupt_audio_is_removed(
    engine: Engine, store: AudioStore
) -> None:
    missing = hashlib.sha256(b"never stored").hexdigest()
    corrupt = store.put(answer_wav(0.1, 7))
    store.path(corrupt).write_bytes(b"RIFF....WAVEdamaged")
    long_ago = datetime(2019, 5, 5, tzinfo=UTC)
    _consent_with_audio(engine, "acme", long_ago, missing)
    _consent_with_audio(engine, "acme", long_ago + timedelta(seconds=5), corrupt)

    report = apply_retention(engine, store, NOW)

    assert [r.audio_sha256 for r in report.audio] == [corrupt]
    assert store.status(missing) is AudioStatus.MISSING
    assert store.status(corrupt) is AudioStatus.PURGED


def test_a_damaged_ledger_blocks_audio_purges_but_not_transcripts(
    engine: Engine, store: AudioStore
) -> None:
    old_call = _call(engine, "acme", NOW - timedelta(days=120))
    audio = store.put(answer_wav(0.1, 8))
    _consent_with_audio(engine, "acme", datetime(2019, 1, 1, tzinfo=UTC), audio)
    with engine.begin() as conn:
        drop_append_only_triggers(conn)
        conn.execute(update(consent_events).values(phone_number="+15555550999"))

    report = apply_retention(engine, store, NOW)

    assert report.audio_blocked is not None and "damaged" in report.audio_blocked
    assert report.audio == ()
    assert [r.call_sid for r in report.transcripts] == [old_call]
    assert store.status(audio) is AudioStatus.PRESENT


def test_the_business_settings_come_from_the_businesses_table(
    engine: Engine, store: AudioStore
) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(businesses).where(businesses.c.id == "acme").values(transcript_retention_days=10)
        )
    call_sid = _call(engine, "acme", NOW - timedelta(days=11))
    assert [r.call_sid for r in apply_retention(engine, store, NOW).transcripts] == [call_sid]


# --- the command -------------------------------------------------------------------------------


def _run_command(database_url: str, audio_dir: Path, *argv: str) -> Result:
    settings = Settings(
        database_url=database_url,
        audio_dir=audio_dir,
        twilio_auth_token=SecretStr("test"),
        _env_file=None,  # type: ignore[call-arg]
    )
    return receptionist(*argv, settings=settings)


def test_the_command_shows_then_applies_the_removals(
    database_url: str, engine: Engine, store: AudioStore
) -> None:
    call_sid = _call(engine, "acme", datetime(2001, 1, 1, tzinfo=UTC))
    audio = store.put(answer_wav(0.1, 9))
    _consent_with_audio(engine, "acme", datetime(2001, 1, 1, tzinfo=UTC), audio)

    dry = _run_command(database_url, store.root, "retention", "apply", "--dry-run")
    assert dry.exit_code == 0
    shown = dry.stdout
    assert f"would remove transcript of call {call_sid} (acme, started 2001-01-01" in shown
    assert f"would purge consent audio {audio}" in shown
    assert shown.endswith("1 transcripts and 1 consent audio files would be removed\n")
    assert store.status(audio) is AudioStatus.PRESENT

    applied = _run_command(database_url, store.root, "retention", "apply", "--json")
    assert applied.exit_code == 0
    done = json.loads(applied.stdout)
    assert done["dry_run"] is False and done["audio_blocked"] is None
    assert [item["call_sid"] for item in done["transcripts"]] == [call_sid]
    assert [item["audio_sha256"] for item in done["audio"]] == [audio]
    assert store.status(audio) is AudioStatus.PURGED


def test_the_command_fails_when_the_ledger_is_damaged(
    database_url: str, engine: Engine, store: AudioStore
) -> None:
    _consent_with_audio(
        engine, "acme", datetime(2001, 1, 1, tzinfo=UTC), store.put(answer_wav(0.1, 10))
    )
    with engine.begin() as conn:
        drop_append_only_triggers(conn)
        conn.execute(update(consent_events).values(seq=5))

    result = _run_command(database_url, store.root, "retention", "apply")
    assert result.exit_code == 1
    assert "consent audio left alone, the ledger is damaged" in result.stdout
