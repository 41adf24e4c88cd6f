"""``receptionist simulate``: place scenario calls exactly as Twilio would against a running
server, and gather what the server stored about each one (the demo, the tests and the benches
use :func:`run_scenarios` too; the demo also places a caller who listens, :func:`run_persona`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from voice_agent.cli.support import json_option, load_settings, print_json

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from call_simulator import ListeningCall, SimulatedCall
    from consent_ledger import RecordedEvent
    from sms_sender import OutboxMessage
    from voice_agent.records.calls import CallRecord
    from voice_agent.settings import Settings

STORE_TIMEOUT = 20.0  # seconds to wait for the server to store a finished call
SEND_TIMEOUT = 10.0  # seconds to wait for a queued text to reach the transport
SPEED = click.FloatRange(0.25, 20)
"""How much faster than real time a simulated caller talks."""


@click.command()
@click.argument(
    "scenarios",
    metavar="SCENARIO...",
    nargs=-1,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Scenario files (fixtures/calls/*.yaml).",
)
@click.option("--server", metavar="URL", help="The server's URL (default: http://HOST:PORT).")
@click.option(
    "--speed", type=SPEED, default=1.0, show_default=True, help="Time scale: 1 is real time."
)
@json_option("each call's outcome")
def simulate(scenarios: tuple[Path, ...], server: str | None, speed: float, as_json: bool) -> None:
    """Place simulated Twilio calls against a running server.

    Each call goes exactly as Twilio would place it (signed webhooks, TwiML, a signed websocket,
    real-time audio, marks, stop); exit 1 when a call did not go as its scenario expects."""
    import asyncio

    settings = load_settings()
    url = server or f"http://{settings.host}:{settings.port}"
    outcomes = asyncio.run(run_scenarios(settings, list(scenarios), url, speed))
    if as_json:
        print_json([outcome.as_dict() for outcome in outcomes])
    else:
        print("\n\n".join(outcome.render() for outcome in outcomes))
    if not all(outcome.ok for outcome in outcomes):
        raise click.exceptions.Exit(1)


@dataclass
class ScenarioOutcome:
    """One scenario: what the simulated Twilio saw and what the server stored."""

    name: str
    description: str = ""
    caller: str | None = None
    expected_consent: str | None = None  # None: the file could not be read, nothing to check
    expected_texts: int = 0
    said: tuple[str, ...] = ()  # the lines the caller spoke, in order
    conversation: tuple[str, ...] = ()  # a listening caller's side of the call, line by line
    simulated: SimulatedCall | None = None
    call: CallRecord | None = None
    event: RecordedEvent | None = None
    texts: list[OutboxMessage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    zone: str = "UTC"
    """The business's time zone, which the call's times are shown in."""

    @property
    def caller_texts(self) -> list[OutboxMessage]:
        """The texts to the caller (the owner's summary of the call is not one of them)."""
        return [text for text in self.texts if text.to_number == self.caller]

    @property
    def ok(self) -> bool:
        return not self.problems

    def check_expectations(self) -> None:
        if self.expected_consent is None:
            return
        # A call the owner answered never reaches the assistant: nothing asked, nothing stored.
        recorded = self.call.consent_outcome if self.call else "not_asked"
        if recorded != self.expected_consent:
            self.problems.append(f"expected consent {self.expected_consent}, recorded {recorded}")
        texts = len(self.caller_texts)
        if texts != self.expected_texts:
            self.problems.append(
                f"expected {self.expected_texts} text(s) to the caller, found {texts}"
            )

    def render(self) -> str:
        from voice_agent.cli.reports import render_call

        lines = [f"━━ {self.name}" + (f": {self.description}" if self.description else "")]
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
        if self.conversation:
            lines.append(
                "  The caller's side (it hears the assistant and answers after a pause; times in "
                "the call's own audio, which ran faster than real time):"
            )
            lines.extend(f"    {line}" for line in self.conversation)
        if self.call is not None:
            lines.append(render_call(self.call, self.event, self.texts, self.zone))
        lines.extend(f"  PROBLEM: {problem}" for problem in self.problems)
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        from voice_agent.cli.reports import call_as_dict

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
    import asyncio

    from call_simulator import ScenarioError, SimulationError, load_scenario, simulate_call
    from call_simulator.scenarios import SayStep
    from voice_agent.records.database import make_engine

    engine = make_engine(settings.database_url)
    outcomes = []
    for path in paths:
        outcome = ScenarioOutcome(name=path.stem)
        try:
            scenario = load_scenario(path)
            outcome.description = scenario.description
            outcome.caller = scenario.caller
            outcome.said = tuple(step.text for step in scenario.steps if isinstance(step, SayStep))
            if scenario.expect is not None:
                outcome.expected_consent = scenario.expect.consent
                outcome.expected_texts = scenario.expect.texts
            outcome.simulated = await simulate_call(
                scenario,
                server_url=server_url,
                public_base_url=settings.public_base_url,
                account_sid=settings.twilio_account_sid,
                auth_token=settings.twilio_auth_token.get_secret_value(),
                speed=speed,
                status_callback=True,  # our server's numbers are set up by `twilio connect`
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


async def run_persona(
    settings: Settings, path: Path, server_url: str, speed: float
) -> ScenarioOutcome:
    """Place the call of a caller who listens (``fixtures/personas/*.yaml``) and collect it."""
    import asyncio

    from call_simulator import PersonaError, SimulationError, call_as_persona, load_persona
    from voice_agent.records.database import make_engine

    outcome = ScenarioOutcome(name=path.stem)
    engine = make_engine(settings.database_url)
    try:
        persona = load_persona(path)
        outcome.description = persona.description
        outcome.caller = persona.caller
        outcome.expected_consent = persona.expect.consent
        outcome.expected_texts = persona.expect.texts
        call = await call_as_persona(
            persona,
            server_url=server_url,
            public_base_url=settings.public_base_url,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            speed=speed,
        )
        outcome.simulated = call.simulated
        outcome.said = tuple(line.text for line in call.lines if line.kind == "say")
        outcome.conversation = caller_side(call)
        outcome.problems.extend(call.simulated.errors)
        if call.simulated.stream_sid is not None:
            await asyncio.to_thread(_collect, engine, outcome)
        outcome.check_expectations()
    except (PersonaError, SimulationError, OSError) as error:
        outcome.problems.append(str(error))
    finally:
        engine.dispose()
    return outcome


def caller_side(call: ListeningCall) -> tuple[str, ...]:
    """What a listening caller heard and did, in stream seconds: each line with the pause it
    took after the assistant's last words."""
    events: list[tuple[float, str]] = [
        (heard.heard_to, f"heard   {heard.text.strip()!r}") for heard in call.heard
    ]
    for line in call.lines:
        heard_before = [heard.heard_to for heard in call.heard if heard.heard_to <= line.started_at]
        pause = line.started_at - max(heard_before) if heard_before else 0.0
        if line.kind == "say":
            breaths = f" in {len(line.breaths)} breaths" if len(line.breaths) > 1 else ""
            what = f"said    {line.text!r} after a {pause:.1f} s pause{breaths}"
        elif line.kind == "press":
            what = f"pressed {line.text} after a {pause:.1f} s pause"
        elif line.kind == "hang_up":
            what = "hung up"
        else:
            what = "kept quiet"
        events.append((line.started_at, what))
    return tuple(f"{at:5.1f} s  {what}" for at, what in sorted(events, key=lambda e: e[0]))


def _collect(engine: Engine, outcome: ScenarioOutcome) -> None:
    """Wait for the server to store the call, then for its texts to reach the transport."""
    from sms_sender import OutboxStatus

    pending = (OutboxStatus.SCHEDULED, OutboxStatus.CLAIMED)
    assert outcome.simulated is not None
    call_sid = outcome.simulated.call_sid
    if not _poll(lambda: _load(engine, outcome, call_sid) is not None, STORE_TIMEOUT):
        outcome.problems.append(f"the server stored no record of call {call_sid}")
        return
    _poll(
        lambda: (
            _load(engine, outcome, call_sid) is not None
            and not any(text.status in pending for text in outcome.texts)
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
    from consent_ledger import event_by_hash
    from sms_sender import list_outbox
    from voice_agent.records.businesses import business_time_zones
    from voice_agent.records.calls import get_call

    with engine.connect() as conn:
        outcome.call = get_call(conn, call_sid)
        if outcome.call is not None:
            outcome.zone = business_time_zones(conn).get(outcome.call.business_id, "UTC")
            outcome.texts = list_outbox(conn, call_sid=call_sid)
            if outcome.call.consent_event_hash:
                outcome.event = event_by_hash(conn, outcome.call.consent_event_hash)
    return outcome.call
