"""What Twilio reports about each call is kept, so a call that never reached the assistant is
visible with its outcome: the owner's leg (from the ``<Dial action>``) and the call's final
status and duration (from the number's status callback, ``POST /twilio/voice/status``), both
signed, both journaled before they are answered and then applied as the server's applier
does; ``receptionist calls outcomes`` shows them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, insert, select, text

from tests.cli_support import receptionist
from tests.owner_leg_support import ACME, CALL_SID, CALLER, OwnerLeg, Twilio
from voice_agent.records.call_progress import (
    CallProgress,
    ProgressReport,
    list_progress,
    record_progress,
)
from voice_agent.records.call_progress import (
    OwnerLeg as RecordedLeg,
)
from voice_agent.records.tables import call_progress, calls
from voice_agent.services import Services, build_services
from voice_agent.settings import Settings
from voice_agent.web.app import create_app

STATUS_URL = "https://receptionist.example.com/twilio/voice/status"
NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


@pytest.fixture
def services(settings: Settings, migrated_engine: Engine) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.engine.dispose()


@pytest.fixture
def twilio(services: Services) -> Twilio:
    return Twilio(TestClient(create_app(services)))


def _completed(twilio: Twilio, services: Services, seconds: int, **extra: str) -> None:
    """Twilio's status callback for the caller's call, ended; then the journal applied."""
    form = {"CallSid": CALL_SID, "From": CALLER, "To": ACME, "Direction": "inbound"}
    twilio.post(
        STATUS_URL, form | {"CallStatus": "completed", "CallDuration": str(seconds)} | extra
    )
    services.journal_applier.drain()


def _outcomes(settings: Settings, *argv: str) -> str:
    result = receptionist("calls", "outcomes", *argv, settings=settings)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_a_call_the_owner_took_is_recorded_with_its_outcome(
    twilio: Twilio, services: Services, settings: Settings
) -> None:
    played = twilio.call(OwnerLeg.PRESSES_1)
    assert played.bridged
    _completed(twilio, services, 52)
    with services.engine.connect() as conn:
        (progress,) = list_progress(conn)
        assert conn.execute(select(calls)).first() is None  # the assistant never had it
    assert (progress.call_sid, progress.business_id, progress.caller_number) == (
        CALL_SID,
        "acme-plumbing",
        CALLER,
    )
    assert progress.owner_leg is RecordedLeg.TOOK_IT
    assert (progress.status, progress.duration_seconds) == ("completed", 52)
    assert progress.ended_at is not None
    assert progress.outcome == "the owner took the call"
    shown = _outcomes(settings)
    assert CALL_SID in shown and "acme-plumbing" in shown
    assert "the owner took the call · owner's phone: took-it · Twilio: completed, 52 s" in shown
    one = receptionist("calls", "show", CALL_SID, settings=settings)
    assert one.exit_code == 0, one.stderr
    assert one.stdout.startswith(f"Call {CALL_SID} · acme-plumbing · from {CALLER}\n")
    assert (
        "the owner took the call · owner's phone: took-it · Twilio: completed, 52 s" in one.stdout
    )
    as_json = json.loads(
        receptionist("calls", "show", CALL_SID, "--json", settings=settings).stdout
    )
    assert (as_json["outcome"], as_json["duration_seconds"]) == ("the owner took the call", 52)


def test_a_caller_who_hung_up_while_it_rang(
    twilio: Twilio, services: Services, settings: Settings
) -> None:
    twilio.post(
        "https://receptionist.example.com/twilio/voice",
        {"CallSid": CALL_SID, "From": CALLER, "To": ACME, "CallStatus": "ringing"},
    )
    _completed(twilio, services, 7)  # no Dial outcome: the caller was gone before it ended
    (row,) = json.loads(_outcomes(settings, "--json"))
    assert row["call_sid"] == CALL_SID
    assert row["outcome"] == "the caller hung up before anyone answered"
    assert (row["status"], row["duration_seconds"], row["owner_leg"]) == ("completed", 7, None)
    assert row["reached_assistant"] is False


@pytest.mark.parametrize(
    ("owner", "leg"),
    [
        (OwnerLeg.VOICEMAIL, "no-answer"),  # rung off before the voicemail picks up
        (OwnerLeg.PRESSES_NOTHING, "not-taken"),
        (OwnerLeg.BUSY, "busy"),
        (OwnerLeg.NO_ANSWER, "no-answer"),
        (OwnerLeg.FAILED, "failed"),
    ],
)
def test_the_owner_leg_of_a_call_the_assistant_answered(
    twilio: Twilio, services: Services, settings: Settings, owner: OwnerLeg, leg: str
) -> None:
    twilio.call(owner)
    with services.engine.begin() as conn:  # the assistant took the message (stored at its end)
        conn.execute(
            insert(calls).values(
                call_sid=CALL_SID,
                business_id="acme-plumbing",
                caller_number=CALLER,
                started_at=NOW,
                notes=[],
                turn_metrics=[],
            )
        )
    _completed(twilio, services, 95)
    (row,) = json.loads(_outcomes(settings, "--json", "--business", "acme-plumbing"))
    assert (row["outcome"], row["owner_leg"]) == ("the assistant answered", leg)
    assert row["reached_assistant"] is True
    one = receptionist("calls", "show", CALL_SID, settings=settings).stdout
    assert one.startswith(f"Call {CALL_SID} · acme-plumbing · from {CALLER}\n")
    assert (
        f"  Outcome: the assistant answered · owner's phone: {leg} · Twilio: completed, 95 s" in one
    )
    as_json = json.loads(
        receptionist("calls", "show", CALL_SID, "--json", settings=settings).stdout
    )
    assert as_json["call_sid"] == CALL_SID and as_json["twilio"]["owner_leg"] == leg
    assert json.loads(_outcomes(settings, "--json", "--business", "bright-spark-electric")) == []


def test_status_callbacks_are_signed_and_well_formed(twilio: Twilio, services: Services) -> None:
    form = {"CallSid": CALL_SID, "From": CALLER, "To": ACME, "CallStatus": "completed"}
    client = twilio.client
    assert client.post("/twilio/voice/status", data=form).status_code == 403
    forged = client.post("/twilio/voice/status", data=form, headers={"X-Twilio-Signature": "x"})
    assert forged.status_code == 403
    for bad in ({"CallStatus": "exploded"}, {"CallDuration": "-4"}, {"CallSid": "CA 1"}):
        assert twilio.send(STATUS_URL, form | bad).status_code == 400
    services.journal_applier.drain()
    with services.engine.connect() as conn:
        assert conn.execute(select(call_progress)).first() is None


def test_reports_merge_in_any_order(services: Services) -> None:
    """A report names only what it knows; a later one keeps what an earlier one said."""
    status = ProgressReport(CALL_SID, NOW, "acme-plumbing", CALLER, None, "completed", 30)
    leg = ProgressReport(CALL_SID, NOW, "acme-plumbing", CALLER, RecordedLeg.NOT_TAKEN)
    with services.engine.begin() as conn:
        record_progress(conn, status)
        record_progress(conn, leg)
        record_progress(conn, status)  # a repeat changes nothing
        (progress,) = list_progress(conn)
    assert (progress.owner_leg, progress.status, progress.duration_seconds) == (
        RecordedLeg.NOT_TAKEN,
        "completed",
        30,
    )


@pytest.mark.parametrize(
    ("leg", "status", "reached", "outcome"),
    [
        (RecordedLeg.TOOK_IT, "completed", False, "the owner took the call"),
        (RecordedLeg.NOT_TAKEN, "completed", True, "the assistant answered"),
        (None, None, False, "in progress"),
        (None, "ringing", False, "in progress"),
        (None, "busy", False, "not connected (busy)"),
        (RecordedLeg.CANCELED, "completed", False, "the caller hung up before anyone answered"),
    ],
)
def test_outcome(leg: RecordedLeg | None, status: str | None, reached: bool, outcome: str) -> None:
    progress = CallProgress(CALL_SID, "acme-plumbing", CALLER, leg, status, 3, NOW, None, reached)
    assert progress.outcome == outcome


def test_no_reports_yet(settings: Settings, migrated_engine: Engine) -> None:
    assert _outcomes(settings) == "No calls reported by Twilio yet.\n"
    settings_without_database = settings.model_copy(
        update={
            "database_url": settings.database_url + ".none",
            "twilio_auth_token": SecretStr("x"),
        }
    )
    assert _outcomes(settings_without_database) == "No calls reported by Twilio yet.\n"


def test_a_record_that_cannot_be_kept_never_keeps_the_caller_from_the_assistant(
    twilio: Twilio, services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal cannot write (a full disk) and the database cannot take the report either:
    the owner's leg goes unrecorded, and the caller still reaches the assistant."""

    async def disk_full(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(services.journal, "append_async", disk_full)
    with services.engine.begin() as conn:
        conn.execute(text("DROP TABLE call_progress"))
    played = twilio.call(OwnerLeg.BUSY)
    assert [verb.tag for verb in played.after_dial] == ["Connect", "Hangup"]
