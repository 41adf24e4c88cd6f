"""Readiness (``/readyz``) and the drain that lets live calls finish when SIGTERM comes."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from fastapi.testclient import TestClient

from tests.conftest import receptionist_settings
from voice_agent.records.migrate import upgrade
from voice_agent.services import build_services
from voice_agent.settings import Settings
from voice_agent.web.app import create_app
from voice_agent.web.draining import CallDrain


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings: Settings = receptionist_settings(f"sqlite:///{tmp_path}/receptionist.db")
    upgrade(settings.database_url)
    services = build_services(settings)
    with TestClient(create_app(services, export_processes=1)) as test_client:
        yield test_client
    services.engine.dispose()


def test_ready_when_started_migrated_and_not_shutting_down(client: TestClient) -> None:
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready", "problems": []})


def test_not_ready_while_draining(client: TestClient) -> None:
    drain: CallDrain = client.app.state.drain  # type: ignore[attr-defined]
    drain.draining = True
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["problems"] == ["shutting down: 0 live call(s) finishing"]
    assert client.get("/healthz").status_code == 200  # alive all the same


def test_not_ready_on_a_database_behind_the_newest_schema(client: TestClient) -> None:
    engine = client.app.state.services.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["problems"] == ["the database is not at the newest schema"]


def test_not_ready_before_the_speech_engine_is_loaded(tmp_path: Path) -> None:
    settings = receptionist_settings(f"sqlite:///{tmp_path}/receptionist.db")
    upgrade(settings.database_url)
    services = build_services(settings)
    client = TestClient(create_app(services, export_processes=1))  # no lifespan: nothing loaded
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "the speech engine is not loaded yet" in response.json()["problems"]
    services.engine.dispose()


async def _sigterm_while_a_call_is_live(server_stops: list[int]) -> list[str]:
    """SIGTERM with one live call, then the call ends; a second drain gets two SIGTERMs."""
    seen = []
    drain = CallDrain(drain_seconds=60, follow_up_seconds=0.3)
    drain.install()
    drain.stream_opened()
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.sleep(0.2)
    seen.append(f"draining={drain.draining} server stopped={len(server_stops)}")
    drain.stream_closed()
    await asyncio.sleep(0.1)  # Twilio's webhooks after the stream still reach this process
    seen.append(f"just after the call: server stopped={len(server_stops)}")
    await asyncio.sleep(0.4)
    seen.append(f"after the call: server stopped={len(server_stops)}")
    drain.uninstall()

    impatient = CallDrain(drain_seconds=60, follow_up_seconds=0.05)
    impatient.install()
    impatient.stream_opened()
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.sleep(0.1)
    os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM: stop now
    await asyncio.sleep(0.1)
    seen.append(f"second SIGTERM: server stopped={len(server_stops)}")
    impatient.uninstall()
    return seen


def test_sigterm_reaches_the_server_only_when_the_live_calls_have_ended() -> None:
    server_stops: list[int] = []

    def server_handler(signum: int, _frame: FrameType | None) -> None:
        server_stops.append(signum)

    original = signal.signal(signal.SIGTERM, server_handler)  # as uvicorn installs its own
    try:
        seen = asyncio.run(_sigterm_while_a_call_is_live(server_stops))
    finally:
        signal.signal(signal.SIGTERM, original)
    assert seen == [
        "draining=True server stopped=0",
        "just after the call: server stopped=0",
        "after the call: server stopped=1",
        "second SIGTERM: server stopped=2",
    ]
    assert server_stops == [signal.SIGTERM, signal.SIGTERM]


def test_without_live_calls_the_drain_ends_at_once_and_a_bounded_wait_ends_anyway() -> None:
    async def drained(drain: CallDrain, stops: list[int]) -> int:
        drain.install()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.3)
        drain.uninstall()
        return len(stops)

    stops: list[int] = []
    original = signal.signal(signal.SIGTERM, lambda signum, _frame: stops.append(signum))
    try:
        no_calls = CallDrain(drain_seconds=60, follow_up_seconds=0.05)
        assert asyncio.run(drained(no_calls, stops)) == 1
        held = CallDrain(drain_seconds=0.05)
        held.stream_opened()  # a call that never ends: given up after drain_seconds
        assert asyncio.run(drained(held, stops)) == 2
    finally:
        signal.signal(signal.SIGTERM, original)
