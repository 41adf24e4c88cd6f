"""The receptionist: call flow, per-call conversation, wiring, the CLI and the call simulator."""

from voice_agent.app import create_app
from voice_agent.cli import main
from voice_agent.scenarios import Scenario, ScenarioError, load_scenario, load_scenarios
from voice_agent.services import Services, build_services
from voice_agent.settings import Settings
from voice_agent.simulator import SimulatedCall, SimulationError, simulate_call

__all__ = [
    "Scenario",
    "ScenarioError",
    "Services",
    "Settings",
    "SimulatedCall",
    "SimulationError",
    "build_services",
    "create_app",
    "load_scenario",
    "load_scenarios",
    "main",
    "simulate_call",
]
