"""Business hours: a call outside them is promised the after-hours callback — by the assistant
and in the confirmation text, which the journal carries with the settings the call used."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bench.faults import ACME, ended_call
from consent_ledger import AudioStore
from sms_sender import OutboxKind, list_outbox
from voice_agent.call.journal_entry import call_entry, call_from_entry, store_call
from voice_agent.records.businesses import Business

HOURS = ACME.model_copy(
    update={
        "hours_start": time(8, 0),
        "hours_end": time(17, 0),
        "after_hours_callback": "first thing in the morning",
    }
)
TUESDAY_NOON = datetime(2026, 3, 3, 18, 0, tzinfo=UTC)  # 12:00 in Chicago
TUESDAY_11_PM = datetime(2026, 3, 4, 5, 0, tzinfo=UTC)  # 23:00 in Chicago


def test_without_hours_a_business_is_always_open() -> None:
    assert ACME.hours_start is None
    assert ACME.answering_at(TUESDAY_11_PM) is ACME


@pytest.mark.parametrize(
    ("at", "promise"),
    [
        (TUESDAY_NOON, "within 30 minutes"),
        (TUESDAY_11_PM, "first thing in the morning"),
        (TUESDAY_NOON + timedelta(days=4), "first thing in the morning"),  # a Saturday
        (datetime(2026, 3, 3, 14, 0, tzinfo=UTC), "within 30 minutes"),  # 08:00 opens
        (datetime(2026, 3, 3, 23, 0, tzinfo=UTC), "first thing in the morning"),  # 17:00 closes
    ],
)
def test_outside_the_hours_the_promise_is_the_after_hours_one(at: datetime, promise: str) -> None:
    answering = HOURS.answering_at(at)
    assert answering.callback_time == promise
    assert answering.model_dump(exclude={"callback_time"}) == HOURS.model_dump(
        exclude={"callback_time"}
    )


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"hours_start": "08:00"}, "need both an opening and a closing time"),
        ({"hours_start": "18:00", "hours_end": "08:00"}, "must open before they close"),
        ({"open_days": [7]}, "days of the week"),
        ({"after_hours_callback": ""}, "at least 1 character"),
    ],
)
def test_hours_that_cannot_be_kept_are_refused(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Business.model_validate({**ACME.model_dump(), **changes})


def test_the_confirmation_text_of_a_late_call_carries_the_after_hours_promise(
    migrated_engine: Engine, tmp_path: Path
) -> None:
    late = HOURS.answering_at(TUESDAY_11_PM - timedelta(minutes=1))
    call = ended_call("CA" + "b7" * 16, business=late, ended_at=TUESDAY_11_PM)
    journaled = call_from_entry(json.loads(json.dumps(call_entry(call))))

    store_call(migrated_engine, AudioStore(tmp_path / "audio"), journaled)

    with migrated_engine.connect() as conn:
        (confirmation,) = [
            text for text in list_outbox(conn) if text.kind is OutboxKind.CONFIRMATION
        ]
    assert "We'll call you back first thing in the morning." in confirmation.body
