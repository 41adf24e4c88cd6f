"""``receptionist demo``: start the server, place three scripted calls and one from a caller who
listens and answers naturally, show what was stored."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from voice_agent.cli.simulate import SPEED, run_persona, run_scenarios
from voice_agent.cli.support import CommandError, load_settings, migrate

if TYPE_CHECKING:
    from voice_agent.settings import Settings

FIXTURES = Path("fixtures")  # the demo runs from a checkout: its businesses and calls
DEMO_SCENARIOS = ("consent-yes", "consent-no", "unclear-then-yes")
DEMO_DATABASE = Path("var") / "demo.db"
DEMO_JOURNAL = DEMO_DATABASE.with_name(DEMO_DATABASE.name + ".journal")
"""The demo's own SQLite database and journal, emptied at every run: its callers' texts of an
earlier run would count against their daily limit and hold this run's texts back."""
NATURAL_CALLER = "slots-all-in-one-breath"
"""A persona (fixtures/personas/): hears the assistant through its own Whisper, answers after a
human pause, gives its name, need and urgency in one breath."""
NATURAL_CALLER_SPEED = 2.0
"""At most this much faster than real time: the caller's ear must keep up with what it hears."""
STARTUP_TIMEOUT = 60.0
DASHBOARD_BUSINESS = "acme-plumbing"  # the demo points to this owner's dashboard


@click.command()
@click.option(
    "--speed", type=SPEED, default=4.0, show_default=True, help="Time scale: 1 is real time."
)
def demo(speed: float) -> None:
    """Serve, place four simulated calls, show what happened.

    Starts the server, places the yes, no and unclear-then-yes calls and one from a caller who
    listens and answers naturally, shows the results and stops; exit 1 when a call did not go as
    expected. Run it from a checkout (it reads
    fixtures/)."""
    if run_demo(load_settings(), speed) != 0:
        raise click.exceptions.Exit(1)


def run_demo(settings: Settings, speed: float) -> int:
    """Exit status 0 when every demo call ended as its scenario expects."""
    import asyncio

    from voice_agent.clock import system_clock
    from voice_agent.records.businesses import BusinessConfigError, import_businesses
    from voice_agent.records.database import make_engine

    businesses = FIXTURES / "businesses.yaml"
    if not businesses.is_file():
        raise CommandError(
            f"the demo runs from a checkout of the project: there is no {businesses} in "
            f"{Path.cwd()}"
        )
    settings = _fresh_demo_database(settings)
    migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as conn:  # the owners' yes to call summaries is in the file
            import_businesses(conn, businesses, system_clock())
    except BusinessConfigError as error:
        raise CommandError(str(error)) from None
    finally:
        engine.dispose()
    server_url = f"http://{settings.host}:{settings.port}"
    print(f"Starting the receptionist at {server_url} …", flush=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "voice_agent", "serve"],
        env={
            **os.environ,
            "HOST": settings.host,
            "PORT": str(settings.port),
            "DATABASE_URL": settings.database_url,
            "JOURNAL_DIR": str(DEMO_JOURNAL),
        },
    )
    try:
        _wait_until_up(server, server_url)
        paths = [FIXTURES / "calls" / f"{name}.yaml" for name in DEMO_SCENARIOS]
        print(f"Placing {len(paths)} simulated calls at {speed}× real time …", flush=True)
        outcomes = asyncio.run(run_scenarios(settings, paths, server_url, speed))
        natural_speed = min(speed, NATURAL_CALLER_SPEED)
        print(
            f"Placing a call from a caller who listens, at {natural_speed}× real time …",
            flush=True,
        )
        persona = FIXTURES / "personas" / f"{NATURAL_CALLER}.yaml"
        outcomes.append(asyncio.run(run_persona(settings, persona, server_url, natural_speed)))
    finally:
        server.terminate()
        server.wait(timeout=15)
    print()
    print("\n\n".join(outcome.render() for outcome in outcomes))
    failed = [outcome.name for outcome in outcomes if not outcome.ok]
    print()
    print(f"Demo finished: {len(outcomes) - len(failed)} of {len(outcomes)} calls as expected.")
    print(
        f"Look again with: export DATABASE_URL={settings.database_url} "
        f"JOURNAL_DIR={DEMO_JOURNAL}, then receptionist calls list · receptionist calls show "
        "CALL_SID · receptionist outbox list"
    )
    print(
        f"Or in the owner dashboard: run `receptionist serve`, open {server_url}/owner and sign "
        f"in with a token from `receptionist owner token create --business {DASHBOARD_BUSINESS}`"
    )
    return 1 if failed else 0


def _fresh_demo_database(settings: Settings) -> Settings:
    """``settings`` on `DEMO_DATABASE`, emptied, with its journal."""
    from voice_agent.settings import Settings

    DEMO_DATABASE.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):  # a killed run leaves its write-ahead log behind
        DEMO_DATABASE.with_name(DEMO_DATABASE.name + suffix).unlink(missing_ok=True)
    shutil.rmtree(DEMO_JOURNAL, ignore_errors=True)
    fields = {
        **settings.model_dump(),
        "database_url": f"sqlite:///./{DEMO_DATABASE}",
        "journal_dir": DEMO_JOURNAL,
    }
    return Settings(**fields, _env_file=None)  # type: ignore[call-arg]


def _wait_until_up(server: subprocess.Popen[bytes], server_url: str) -> None:
    import httpx

    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CommandError(f"the server exited with status {server.returncode} while starting")
        try:
            if httpx.get(f"{server_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise CommandError(f"the server did not answer at {server_url} within {STARTUP_TIMEOUT:.0f}s")
