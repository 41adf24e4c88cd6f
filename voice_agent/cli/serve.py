"""``receptionist serve``: the web server, in one process or several."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import click

from voice_agent.cli.support import VERBOSE_KEY, load_settings, migrate, print_text

if TYPE_CHECKING:
    from fastapi import FastAPI

    from voice_agent.settings import Settings

WS_MAX_SIZE = 65536


@click.command()
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Web processes sharing the port (uvicorn's workers); each holds its own calls.",
)
@click.option(
    "--no-dispatcher",
    is_flag=True,
    help="Send no texts from the web processes: `receptionist worker` processes send them "
    "(the same as RUN_DISPATCHER=false).",
)
def serve(workers: int, no_dispatcher: bool) -> None:
    """Run the web server.

    Twilio webhooks, media streams, SMS webhooks, the owner dashboard (/owner), the auditor API,
    /metrics, /healthz, /readyz and the text dispatcher, on the settings' HOST and PORT; the
    database is migrated first. On SIGTERM each process turns not ready, lets its live calls
    finish (DRAIN_SECONDS at most), then stops."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    settings = load_settings()
    if no_dispatcher:
        settings = settings.model_copy(update={"run_dispatcher": False})
    migrate(settings.database_url)
    verbose = bool(click.get_current_context().find_root().meta.get(VERBOSE_KEY, False))
    json_lines = settings.log_format == "json"
    config = uvicorn.Config(
        functools.partial(web_app, settings, verbose),
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level="info",
        ws_max_size=WS_MAX_SIZE,
        # JSON lines: uvicorn's own records go through our handler, not its formatters
        log_config=None if json_lines else uvicorn.config.LOGGING_CONFIG,
    )
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise click.exceptions.Exit(3)  # uvicorn's start-up failure, said in its log


def web_app(settings: Settings, verbose: bool = False) -> FastAPI:
    """One web process's application (built in that process: with ``--workers`` each of
    uvicorn's worker processes calls this)."""
    from voice_agent.logging_setup import configure_logging
    from voice_agent.services import build_services
    from voice_agent.web.app import create_app

    configure_logging(verbose, json_lines=settings.log_format == "json")
    return create_app(build_services(settings, on_text=print_text))


def app_from_environment() -> FastAPI:
    """The application with the settings of the environment and ``.env``, for a process
    manager of your own: ``uvicorn --factory voice_agent.cli.serve:app_from_environment``
    (migrate first with ``receptionist db upgrade``)."""
    from voice_agent.settings import Settings

    return web_app(Settings())
