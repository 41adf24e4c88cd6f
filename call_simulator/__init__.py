"""The call simulator: plays Twilio and the caller against a running receptionist (signed
webhooks, TwiML, the media stream in real time) for the demo, the tests and the benches: a
scripted caller (``simulate_call``) and one that listens and answers by what it hears
(``call_as_persona``). It speaks only the wire protocols and imports nothing of the
receptionist."""

from call_simulator.listening_caller import (
    CallerLine,
    HeardTurn,
    Hearing,
    ListeningCall,
    call_as_persona,
)
from call_simulator.personas import Persona, PersonaError, load_persona, load_personas
from call_simulator.scenarios import (
    OwnerLeg,
    Scenario,
    ScenarioError,
    load_scenario,
    load_scenarios,
)
from call_simulator.simulator import (
    CallParties,
    SimulatedCall,
    SimulationError,
    place_call,
    simulate_call,
)
from call_simulator.verdict import StoredCall, StoredTurn, Verdict, judge

__all__ = [
    "CallParties",
    "CallerLine",
    "HeardTurn",
    "Hearing",
    "ListeningCall",
    "OwnerLeg",
    "Persona",
    "PersonaError",
    "Scenario",
    "ScenarioError",
    "SimulatedCall",
    "SimulationError",
    "StoredCall",
    "StoredTurn",
    "Verdict",
    "call_as_persona",
    "judge",
    "load_persona",
    "load_personas",
    "load_scenario",
    "load_scenarios",
    "place_call",
    "simulate_call",
]
