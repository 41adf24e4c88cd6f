"""Texts queued in one process, sent by workers in others without waiting for their next poll.

On PostgreSQL a process that queued texts sends ``NOTIFY`` on :data:`CHANNEL` once they are
committed; each ``receptionist worker`` holds a connection that ``LISTEN``s on it and wakes its
dispatcher for each notice. A lost notice costs only time: the worker still looks for due texts
every few seconds. SQLite has no notices; there the web process's own dispatcher sends at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

logger = logging.getLogger(__name__)

CHANNEL = "receptionist_outbox"
RECONNECT_SECONDS = 2.0
WAIT_SECONDS = 1.0  # how often the listener looks whether it should stop


def announce_texts_queued(engine: Engine) -> None:
    """Tell the listening workers that texts were queued (nothing on other databases)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")
        conn.commit()


def listen_for_queued_texts(
    engine: Engine, wake: Callable[[], None], stop: threading.Event
) -> None:
    """Call ``wake`` for each notice until ``stop`` is set (blocking: run it on a thread of its
    own); a lost connection is opened again."""
    if engine.dialect.name != "postgresql":
        return
    while not stop.is_set():
        try:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(f"LISTEN {CHANNEL}")
                driver = conn.connection.driver_connection
                assert driver is not None
                while not stop.is_set():
                    for _notice in driver.notifies(timeout=WAIT_SECONDS, stop_after=1):
                        wake()
        except Exception as error:  # the database went away: listen again when it is back
            logger.warning("listening for queued texts failed, again shortly: %s", error)
            stop.wait(RECONNECT_SECONDS)
