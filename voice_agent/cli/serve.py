"""``receptionist serve``: the web server."""

from __future__ import annotations

import click

from voice_agent.cli.support import load_settings, migrate, print_text


@click.command()
def serve() -> None:
    """Run the web server.

    Twilio webhooks, media streams, SMS webhooks, the owner dashboard (/owner), the auditor API,
    /metrics and the text dispatcher, on the settings' HOST and PORT; the database is migrated
    first."""
    import uvicorn

    from voice_agent.services import build_services
    from voice_agent.web.app import create_app

    settings = load_settings()
    migrate(settings.database_url)
    app = create_app(build_services(settings, on_text=print_text))
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", ws_max_size=65536)
