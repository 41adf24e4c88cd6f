"""The whole application served on a loopback port in a background thread (tests, benchmarks)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from voice_agent.services import Services
from voice_agent.web.app import create_app

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(services: Services) -> Iterator[str]:
    """Run the app for ``services`` on ``services.settings.port``; yields its base URL."""
    port = services.settings.port
    config = uvicorn.Config(
        create_app(services), host="127.0.0.1", port=port, log_level="warning", ws_max_size=65536
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="receptionist-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
