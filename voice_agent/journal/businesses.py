"""The businesses as the receptionist last read them, for the paths that only read.

A call's first webhook and its media stream need the business's settings, and nothing else from
the database. They are read through a read-only engine (on SQLite a deferred transaction reads
the WAL and never waits for a writer) on threads of their own, and every business read is kept:
when the database does not answer within ``timeout`` (a PostgreSQL server that is paused or
restarting, an error), the copy last read is used, so a call still gets answered with its
business's settings while the database is down. Only a business never read since the process
started is then unknown (the cache is filled at startup).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine

from voice_agent.records.businesses import (
    Business,
    business_for_number,
    get_business,
    list_businesses,
)

logger = logging.getLogger(__name__)


class BusinessDirectory:
    """Businesses by id and by Twilio number: fresh when the database answers in time, else as
    last read."""

    def __init__(self, read_engine: Engine, *, timeout: float = 2.0, readers: int = 2) -> None:
        self._engine = read_engine
        self.timeout = timeout
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="business")
        self._lock = threading.Lock()
        self._by_id: dict[str, Business] = {}
        self._ids_by_number: dict[str, str] = {}

    def load_all(self) -> int:
        """Read every business (blocking; at startup); how many there are. A database that
        cannot answer leaves the cache as it was."""
        try:
            with self._engine.connect() as conn:
                businesses = list_businesses(conn)
        except Exception:
            logger.exception("could not read the businesses; the cache stays as it was")
            return len(self._by_id)
        for business in businesses:
            self._remember(business)
        return len(businesses)

    async def by_id(self, business_id: str) -> Business | None:
        """The business ``business_id``."""

        def read() -> Business | None:
            with self._engine.connect() as conn:
                return get_business(conn, business_id)

        def cached() -> Business | None:
            with self._lock:
                return self._by_id.get(business_id)

        return await self._read(read, cached, f"business {business_id}")

    async def by_number(self, number: str) -> Business | None:
        """The business that owns the Twilio number ``number`` (E.164)."""

        def read() -> Business | None:
            with self._engine.connect() as conn:
                return business_for_number(conn, number)

        def cached() -> Business | None:
            with self._lock:
                business_id = self._ids_by_number.get(number)
                return None if business_id is None else self._by_id.get(business_id)

        return await self._read(read, cached, f"the business of {number}")

    def close(self) -> None:
        self._readers.shutdown(wait=False, cancel_futures=True)

    async def _read(
        self,
        read: Callable[[], Business | None],
        cached: Callable[[], Business | None],
        what: str,
    ) -> Business | None:
        pending = asyncio.wrap_future(self._readers.submit(read))
        try:
            business = await asyncio.wait_for(pending, self.timeout)
        except Exception as error:  # TimeoutError included: the database is slow or down
            fallback = cached()
            logger.warning(
                "reading %s failed (%s); %s",
                what,
                type(error).__name__,
                "using the copy last read" if fallback else "no copy was read before",
            )
            return fallback
        if business is not None:
            self._remember(business)
        return business

    def _remember(self, business: Business) -> None:
        with self._lock:
            self._by_id[business.id] = business
            for number in business.twilio_numbers:
                self._ids_by_number[number] = business.id
