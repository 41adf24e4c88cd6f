"""The call simulator: plays Twilio and the caller against a running receptionist (signed
webhooks, TwiML, the media stream in real time) for the demo, the tests and the benches.
It speaks only the wire protocols and imports nothing of the receptionist."""

from call_simulator.scenarios import Scenario, ScenarioError, load_scenario, load_scenarios
from call_simulator.simulator import SimulatedCall, SimulationError, simulate_call

__all__ = [
    "Scenario",
    "ScenarioError",
    "SimulatedCall",
    "SimulationError",
    "load_scenario",
    "load_scenarios",
    "simulate_call",
]
