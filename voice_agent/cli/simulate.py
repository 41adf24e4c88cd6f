"""Runs scenario calls against a server and gathers what the server stored about each one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from call_simulator import (
    Scenario,
    ScenarioError,
    SimulatedCall,
    SimulationError,
    load_scenario,
    simulate_call,
)
from consent_ledger import RecordedEvent, event_by_hash
from sms_sender import OutboxMessage, OutboxStatus, list_outbox
from voice_agent.cli.reports import call_as_dict, render_call
from voice_agent.records.calls import CallRecord, get_call
from voice_agent.records.database import make_engine
from voice_agent.settings import Settings

STORE_TIMEOUT = 20.0  # seconds to wait for the server to store a finished call
SEND_TIMEOUT = 10.0  # seconds to wait for a queued text to reach the transport
PENDING = (OutboxStatus.SCHEDULED, OutboxStatus.CLAIMED)


@dataclass
class ScenarioOutcome:
    """One scenario: what the simulated Twilio saw and what the server stored."""

    name: str
    scenario: Scenario | None = None
    simulated: SimulatedCall | None = None
    call: CallRecord | None = None
    event: RecordedEvent | None = None
    texts: list[OutboxMessage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def caller_texts(self) -> list[OutboxMessage]:
        """The texts to the caller (the owner's summary of the call is not one of them)."""
        caller = self.scenario.caller if self.scenario else None
        return [text for text in self.texts if text.to_number == caller]

    @property
    def ok(self) -> bool:
        return not self.problems

    def check_expectations(self) -> None:
        expect = self.scenario.expect if self.scenario else None
        if expect is None:
            return
        # A call the owner answered never reaches the assistant: nothing asked, nothing stored.
        recorded = self.call.consent_outcome if self.call else "not_asked"
        if recorded != expect.consent:
            self.problems.append(f"expected consent {expect.consent}, recorded {recorded}")
        texts = len(self.caller_texts)
        if texts != expect.texts:
            self.problems.append(f"expected {expect.texts} text(s) to the caller, found {texts}")

    def render(self) -> str:
        header = f"━━ {self.name}" + (f": {self.scenario.description}" if self.scenario else "")
        lines = [header]
        if self.simulated is not None:
            lines.append(
                "  Twilio: "
                + " → ".join(
                    f"{heard.verb} {heard.detail}".strip() for heard in self.simulated.twiml
                )
                + f" · {self.simulated.marks_echoed} marks played"
                + f" · {self.simulated.clears_received} clears"
                + f" · closed by {self.simulated.closed_by}"
            )
        if self.call is not None:
            lines.append(render_call(self.call, self.event, self.texts))
        lines.extend(f"  PROBLEM: {problem}" for problem in self.problems)
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "ok": self.ok,
            "problems": self.problems,
            "twiml": [vars(heard) for heard in self.simulated.twiml] if self.simulated else [],
            "call": call_as_dict(self.call, self.event, self.texts) if self.call else None,
        }


async def run_scenarios(
    settings: Settings, paths: list[Path], server_url: str, speed: float
) -> list[ScenarioOutcome]:
    """Place each scenario's call in turn and collect the stored results."""
    engine = make_engine(settings.database_url)
    outcomes = []
    for path in paths:
        outcome = ScenarioOutcome(name=path.stem)
        try:
            outcome.scenario = load_scenario(path)
            outcome.simulated = await simulate_call(
                outcome.scenario,
                server_url=server_url,
                public_base_url=settings.public_base_url,
                account_sid=settings.twilio_account_sid,
                auth_token=settings.twilio_auth_token.get_secret_value(),
                speed=speed,
            )
            outcome.problems.extend(outcome.simulated.errors)
            if outcome.simulated.stream_sid is not None:
                await asyncio.to_thread(_collect, engine, outcome)
            outcome.check_expectations()
        except (ScenarioError, SimulationError, OSError) as error:
            outcome.problems.append(str(error))
        outcomes.append(outcome)
    engine.dispose()
    return outcomes


def _collect(engine: Engine, outcome: ScenarioOutcome) -> None:
    """Wait for the server to store the call, then for its texts to reach the transport."""
    assert outcome.simulated is not None
    call_sid = outcome.simulated.call_sid
    if not _poll(lambda: _load(engine, outcome, call_sid) is not None, STORE_TIMEOUT):
        outcome.problems.append(f"the server stored no record of call {call_sid}")
        return
    _poll(
        lambda: (
            _load(engine, outcome, call_sid) is not None
            and not any(text.status in PENDING for text in outcome.texts)
        ),
        SEND_TIMEOUT,
    )


def _poll(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _load(engine: Engine, outcome: ScenarioOutcome, call_sid: str) -> CallRecord | None:
    with engine.connect() as conn:
        outcome.call = get_call(conn, call_sid)
        if outcome.call is not None:
            outcome.texts = list_outbox(conn, call_sid=call_sid)
            if outcome.call.consent_event_hash:
                outcome.event = event_by_hash(conn, outcome.call.consent_event_hash)
    return outcome.call
