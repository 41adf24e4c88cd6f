"""Every scenario in fixtures/calls, through the real server and websocket, end to end.

The simulated Twilio signs its webhooks and the websocket upgrade, follows the TwiML, speaks
the caller's lines as μ-law frames (faster than real time), answers marks, and hangs up; the
test then reads what the server stored: the call, its consent event, and the outbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from call_simulator import load_scenario
from consent_ledger import AudioStatus, AudioStore, RecordedEvent, verify_ledger
from tests.conftest import ROOT, postgres_schema, serving_receptionist
from voice_agent.cli.simulate import ScenarioOutcome, run_scenarios
from voice_agent.consent.script import render_consent_script
from voice_agent.records.calls import CallRecord
from voice_agent.settings import Settings

SCENARIOS = sorted((ROOT / "fixtures" / "calls").glob("*.yaml"))
SPEED = 6.0  # faster than real time; the caller still waits 0.6 s of wall time to answer
POSTGRES_SCENARIOS = ("consent-yes", "keypad-on-reask", "hangup-before-question")
DEMO_BUSINESSES = {
    "acme-plumbing": ("Acme Plumbing", 2),
    "bright-spark-electric": ("Bright Spark Electric", 4),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str, Engine]]:
    database = tmp_path_factory.mktemp("e2e") / "receptionist.db"
    with serving_receptionist(f"sqlite:///{database}") as serving:
        yield serving


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[tuple[Settings, str, Engine]]:
    with postgres_schema("e2e") as database_url, serving_receptionist(database_url) as serving:
        yield serving


def _run(settings: Settings, server_url: str, path: Path) -> ScenarioOutcome:
    (outcome,) = asyncio.run(run_scenarios(settings, [path], server_url, SPEED))
    return outcome


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_scenario_end_to_end(server: tuple[Settings, str, Engine], path: Path) -> None:
    _check_scenario(server, path)


@pytest.mark.parametrize("name", POSTGRES_SCENARIOS)
def test_scenario_end_to_end_on_postgresql(
    postgres_server: tuple[Settings, str, Engine], name: str
) -> None:
    _check_scenario(postgres_server, ROOT / "fixtures" / "calls" / f"{name}.yaml")


def _check_scenario(serving: tuple[Settings, str, Engine], path: Path) -> None:
    settings, server_url, engine = serving
    outcome = _run(settings, server_url, path)
    assert outcome.ok, outcome.render()
    assert outcome.expected_consent is not None
    if outcome.simulated is not None and outcome.simulated.stream_sid is None:
        assert outcome.call is None  # the owner answered: the assistant never joined
        return
    call, event = outcome.call, outcome.event
    assert call is not None and event is not None
    assert event.phone_number == outcome.caller
    evidence = event.body["evidence"]
    script = evidence["script"]
    business_name, max_texts = DEMO_BUSINESSES[call.business_id]
    expected_script = render_consent_script("v1", business_name, max_texts)
    assert script["text"] == expected_script.text
    assert script["sha256"] == expected_script.sha256
    barged_in = any(step.interrupt_after is not None for step in load_scenario(path).steps)
    if barged_in:
        assert outcome.simulated is not None and outcome.simulated.clears_received >= 1
        assert any(turn.interrupted for turn in call.turns if turn.speaker == "assistant")
    spoken = [turn.text for turn in call.turns if turn.speaker == "assistant"]
    assert spoken[0].startswith(f"This is {business_name}")
    assert "automated assistant" in spoken[0]
    refused_on_call = evidence["note"] == "the caller asked not to be texted during the call"
    if outcome.expected_consent == "not_asked" or refused_on_call:
        assert expected_script.text not in spoken
        assert script["playback_confirmed_at"] is None
    else:
        assert expected_script.text in spoken
        assert script["playback_confirmed_at"] is not None
        assert evidence["answers"], "an answered question stores the caller's answer"
    if outcome.expected_consent == "affirmative":
        (text,) = outcome.caller_texts
        assert text.status.value == "sent"
        assert business_name in text.body
        assert text.body.endswith("Reply HELP for help, STOP to opt out.")
        assert text.consent_event_hash == event.hash
    else:
        assert outcome.caller_texts == []
    owner_texts = [text for text in outcome.texts if text.kind.value == "owner_summary"]
    (summary,) = owner_texts  # the owner said yes to summaries when the business was set up
    assert summary.status.value not in ("blocked", "cancelled"), summary.reason
    assert f"{settings.public_base_url}/owner/l/" in summary.body  # opens the call signed in
    recorded = call.business_id == "bright-spark-electric"  # the demo business that records
    assert ("This call is recorded." in spoken[0]) == recorded
    spoken_answers = [a for a in evidence["answers"] if not a.get("keypad_digit")]
    if recorded and spoken_answers:
        audio = AudioStore(settings.audio_dir)
        assert audio.status(evidence["audio_sha256"]) is AudioStatus.PRESENT
    else:
        assert evidence["audio_sha256"] is None
    _check_evidence_times(call, event)
    with engine.connect() as conn:
        report = verify_ledger(conn, audio_store=AudioStore(settings.audio_dir))
        assert report.ok


def _check_evidence_times(call: CallRecord, event: RecordedEvent) -> None:
    """The evidence's moments are when things reached the server, not stream times (which
    the simulator runs faster than real time): they lie within the call, in order."""
    evidence = event.evidence()
    script = evidence.script
    moments = [call.started_at]
    if script is not None:
        moments += [m for m in (script.started_at, script.playback_confirmed_at) if m is not None]
    for answer in evidence.answers:
        words = [moment for word in answer.words for moment in (word.start, word.end)]
        moments += [answer.started_at, *words, answer.ended_at]
    moments.append(event.recorded_at)
    assert moments == sorted(moments), [moment.isoformat() for moment in moments]
