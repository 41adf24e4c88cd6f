"""Stored calls keep everything the receptionist wrote down, through the real migrations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, fresh_database
from voice_agent.records.calls import CallRecord, Turn, get_call, list_calls, save_call
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
