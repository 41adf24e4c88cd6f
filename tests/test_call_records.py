"""Stored calls keep everything the receptionist wrote down, through the real migrations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from media_stream import Word
from tests.conftest import BACKENDS, fresh_database
from voice_agent.records.calls import (
    CallRecord,
    CallSidClash,
    Turn,
    get_call,
    list_calls,
    save_call,
)
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade

STARTED = datetime(2026, 3, 2, 15, 4, 5, 123456, tzinfo=UTC)


def _record(**fields: object) -> CallRecord:
    values: dict[str, object] = {
        "call_sid": "CA" + "1" * 32,
        "stream_sid": "MZ" + "1" * 32,
        "business_id": "acme-plumbing",
        "caller_number": "+15125550142",
        "started_at": STARTED,
        "ended_at": STARTED + timedelta(minutes=3),
        "end_reason": "caller hung up",
        "caller_name": "Dana Ruiz",
        "need": "a burst pipe under the sink",
        "callback_number": "+15125550199",
        "urgency": "urgent",
        "notes": ("deepgram failed: timed out",),
        "consent_outcome": "affirmative",
        "consent_event_hash": "ab" * 32,
        "address": "12 Elm Street, apartment 4 — 'round the back' \"gate\" ☃",
        "preferred_time": "tomorrow morning, before 10",
        "turns": (Turn("caller", "speech", "My pipe burst", 4.0, 6.5, 0.91),),
    }
    values.update(fields)
    return CallRecord(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_call_round_trips_with_address_and_preferred_time(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path, "call_records") as url:
        upgrade(url)
        engine = make_engine(url)
        stored = _record()
        bare = _record(call_sid="CA" + "2" * 32, address=None, preferred_time=None)
        with engine.begin() as conn:
            save_call(conn, stored)
            save_call(conn, bare)
        with engine.connect() as conn:
            assert get_call(conn, stored.call_sid) == stored
            assert get_call(conn, bare.call_sid) == bare
            listed = {call.call_sid: call for call in list_calls(conn, "acme-plumbing")}
        assert listed[stored.call_sid].address == stored.address
        assert listed[stored.call_sid].preferred_time == "tomorrow morning, before 10"
        assert listed[bare.call_sid].address is None
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_reused_call_sid_is_refused_and_never_overwrites(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with fresh_database(backend, tmp_path, "call_clash") as url:
        upgrade(url)
        engine = make_engine(url)
        stored = _record()
        with engine.begin() as conn:
            save_call(conn, stored)
        intruder = _record(
            business_id="bright-spark-electric",
            caller_number="+13035550177",
            consent_outcome="affirmative",
            turns=(Turn("caller", "keypad", "1", 2.0),),
        )
        for clash in (intruder, stored):  # another business's call, or the same one again
            with (
                caplog.at_level("WARNING", logger="voice_agent.records.calls"),
                pytest.raises(CallSidClash) as refused,
                engine.begin() as conn,
            ):
                save_call(conn, clash)
            assert refused.value.stored_business_id == "acme-plumbing"
            assert refused.value.business_id == clash.business_id
        with engine.connect() as conn:
            assert get_call(conn, stored.call_sid) == stored
            assert list_calls(conn, "bright-spark-electric") == []
        engine.dispose()
    refusals = [r for r in caplog.records if "is refused" in r.getMessage()]
    assert len(refusals) == 2


def _stored_turns(tmp_path: Path, turns: tuple[Turn, ...]) -> tuple[Turn, ...]:
    url = f"sqlite:///{tmp_path / 'times.db'}"
    upgrade(url)
    engine = make_engine(url)
    record = _record(turns=turns)  # a call of three minutes
    with engine.begin() as conn:
        save_call(conn, record)
    with engine.connect() as conn:
        stored = get_call(conn, record.call_sid)
    engine.dispose()
    assert stored is not None and stored.ended_at is not None
    for turn in stored.turns:  # what the owner's page does with them
        assert stored.started_at + timedelta(seconds=turn.start) <= stored.ended_at
    return stored.turns


def test_far_future_stream_times_are_kept_within_the_call(tmp_path: Path) -> None:
    """A stream that reports far-future media timestamps cannot push a stored call's times
    past its end (the owner's page adds them to the call's start: this was an OverflowError)."""
    far = 10.0**15
    first, second, third, fourth = _stored_turns(
        tmp_path,
        (
            Turn("caller", "keypad", "1", -5.0),
            Turn("assistant", "speech", "Thanks.", 20.0, float("nan")),
            Turn("caller", "speech", "hi", far, far + 1, 0.9, (Word("hi", far, far + 1, 0.9),)),
            Turn("assistant", "speech", "Bye.", float("inf")),
        ),
    )
    span = 180.0
    assert first.start == 0.0
    assert 0.0 <= second.start < 0.001 and second.end == 0.0
    assert third.start == pytest.approx(span) and third.end == span
    assert [(w.start, w.end) for w in third.words] == [(third.start, span)]
    assert fourth.start == span


def test_a_stream_clock_that_ran_fast_is_scaled_into_the_call(tmp_path: Path) -> None:
    """A simulator at 4x real time: 12 minutes of stream time in a 3-minute call."""
    turns = _stored_turns(
        tmp_path,
        (
            Turn("assistant", "speech", "Hello.", 0.4, 8.0),
            Turn("caller", "speech", "Dana", 10.0, 12.0, 0.9, (Word("Dana", 10.0, 12.0, 0.9),)),
            Turn("caller", "keypad", "1", 720.0),
        ),
    )
    assert [(t.start, t.end) for t in turns] == [(0.1, 2.0), (2.5, 3.0), (180.0, None)]
    assert [(w.start, w.end) for w in turns[1].words] == [(2.5, 3.0)]


def test_times_within_the_call_are_stored_as_they_are(tmp_path: Path) -> None:
    turns = (
        Turn("assistant", "speech", "Hello.", 0.4, 8.0),
        Turn("caller", "speech", "Dana", 10.0, 12.5, 0.9, (Word("Dana", 10.0, 12.5, 0.9),)),
    )
    assert _stored_turns(tmp_path, turns) == turns
