"""The ledger's hot paths on the driver's own cursor, inside the caller's SQLAlchemy transaction.

Appends: an append runs about five small statements. Through SQLAlchemy each costs some 40 µs of
Python before the driver sees it, against about 4 µs on the DBAPI cursor: half the cost of an
append. So the append path (chain head, event, projection row) hands its SQL to the driver directly,
on the connection of the caller's transaction, and stores values exactly as SQLAlchemy would:
datetimes go through the column type's own bind processor (SQLite keeps them as text) and come back
through its result processor. Driver errors are raised as SQLAlchemy's own exceptions
(``IntegrityError`` and so on) and a lost connection is invalidated, as ``Connection.execute``
would do.

Verification reads (:func:`driver_batches`): plain tuples in batches, with no row objects; on
PostgreSQL the next batch is fetched while the caller checks this one, on SQLite the file is read
through a memory map.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from queue import Empty, Queue
from threading import Event, Thread
from typing import Any

from sqlalchemy import Connection, DateTime, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

_SQLITE_MMAP_BYTES = 1 << 40
"""As much of a SQLite file as may be mapped (SQLite caps it at its compile-time maximum)."""

_INSTANT_TYPE = DateTime(timezone=True)
"""The type of every time column of the ledger's tables (see ``tables``)."""


@dataclass(frozen=True)
class DriverStatement:
    """One statement in the SQL of each supported database, with positional placeholders."""

    sqlite: str
    postgresql: str

    @classmethod
    def portable(cls, sql: str, *, lock_rows: bool = False) -> DriverStatement:
        """``sql`` written with ``?`` placeholders (and no other ``?`` or ``%``).

        ``lock_rows`` adds ``FOR UPDATE`` on PostgreSQL; SQLite has no row locks, and the ledger's
        SQLite transactions hold the database's write lock from their start.
        """
        postgresql = sql.replace("?", "%s") + (" FOR UPDATE" if lock_rows else "")
        return cls(sqlite=sql, postgresql=postgresql)

    def sql_for(self, dialect_name: str) -> str:
        if dialect_name == "sqlite":
            return self.sqlite
        if dialect_name == "postgresql":
            return self.postgresql
        raise ValueError(f"the consent ledger supports sqlite and postgresql, not {dialect_name!r}")


def run(conn: Connection, statement: DriverStatement, parameters: Sequence[Any]) -> Sequence[Any]:
    """Execute ``statement`` in ``conn``'s transaction (begun here if need be); its rows, if any.

    Datetime parameters must already be in stored form (see :func:`instant_to_store`).
    """
    dialect = conn.dialect
    sql = statement.sql_for(dialect.name)
    if not conn.in_transaction():
        conn.begin()  # what Connection.execute would do, so that the caller's commit covers this
    driver = conn.connection.dbapi_connection
    if driver is None:
        raise ValueError("the connection is closed")
    cursor = driver.cursor()
    try:
        cursor.execute(sql, parameters)
        return cursor.fetchall() if cursor.description is not None else []
    except dialect.loaded_dbapi.Error as error:
        lost = dialect.is_disconnect(error, driver, cursor)
        if lost:
            conn.invalidate()  # as SQLAlchemy does: the pool must not hand this connection out
        raise DBAPIError.instance(
            sql,
            parameters,
            error,
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
        ) from error
    finally:
        cursor.close()


def instant_to_store(dialect: Dialect) -> Callable[[datetime | None], Any]:
    """How SQLAlchemy would hand a ledger datetime to this database's driver."""
    return _instant_processors(dialect)[0]


def instant_from_store(dialect: Dialect) -> Callable[[Any], datetime]:
    """How SQLAlchemy would turn a stored ledger datetime (not NULL) back into a datetime."""
    return _instant_processors(dialect)[1]


@lru_cache(maxsize=16)
def _instant_processors(dialect: Dialect) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    impl = _INSTANT_TYPE.dialect_impl(dialect)
    to_store = impl.bind_processor(dialect) or _unchanged
    from_store = impl.result_processor(dialect, None) or _unchanged
    return to_store, from_store


def _unchanged(value: Any) -> Any:
    return value


def driver_batches(
    conn: Connection, statement: Select[Any], batch_size: int
) -> Generator[Sequence[Any], None, None]:
    """The statement's rows as plain tuples, ``batch_size`` at a time, straight from the driver.

    For reads whose columns need no converting. PostgreSQL streams through a server-side cursor in
    the caller's transaction, in binary (numbers need no parsing), a batch ahead (see
    :func:`_read_ahead`); SQLite steps through the file, memory-mapped while it does (see
    :func:`_sqlite_memory_mapped`).
    """
    compiled = statement.compile(dialect=conn.dialect)
    driver = conn.connection.dbapi_connection
    if driver is None:
        raise ValueError("the connection is closed")
    if conn.dialect.name == "postgresql":
        with closing(driver.cursor(name="consent_ledger_verify", binary=True)) as cursor:
            cursor.execute(str(compiled), compiled.params)
            yield from _read_ahead(lambda: cursor.fetchmany(batch_size))
        return
    parameters = tuple(compiled.params[name] for name in compiled.positiontup or ())
    with _sqlite_memory_mapped(driver), closing(driver.cursor()) as cursor:
        cursor.execute(str(compiled), parameters)
        while batch := cursor.fetchmany(batch_size):
            yield batch


def _read_ahead(fetch: Callable[[], Sequence[Any]]) -> Generator[Sequence[Any], None, None]:
    """``fetch()``'s batches until an empty one, each fetched while the caller checks the last.

    The server prepares a batch (reads, decompresses and sends the rows) while this process
    checks the previous one; fetched in turn, the two would take their times one after the
    other. The fetching thread waits on the socket with the GIL released.
    """
    batches: Queue[Sequence[Any] | BaseException] = Queue(maxsize=1)
    stop = Event()

    def fetching() -> None:
        try:
            while not stop.is_set():
                batch = fetch()
                batches.put(batch)
                if not batch:
                    return
        except BaseException as error:  # handed to the caller, raised there
            batches.put(error)

    thread = Thread(target=fetching, name="consent-ledger-verify-fetch", daemon=True)
    thread.start()
    try:
        while batch := batches.get():
            if isinstance(batch, BaseException):
                raise batch
            yield batch
    finally:
        stop.set()
        while thread.is_alive():  # make room for a batch the thread is waiting to hand over
            with suppress(Empty):
                batches.get_nowait()
            thread.join(timeout=0.01)


@contextmanager
def _sqlite_memory_mapped(driver: Any) -> Iterator[None]:
    """Let SQLite read the database file through a memory map, then restore its setting.

    Each event takes most of a page, so a verification touches every page of the file; mapped
    pages are read in place instead of one system call and copy each. Only reading changes: SQLite
    keeps writing through its journal as before.
    """
    (previous,) = driver.execute("PRAGMA mmap_size").fetchone()
    driver.execute(f"PRAGMA mmap_size={_SQLITE_MMAP_BYTES}")
    try:
        yield
    finally:
        driver.execute(f"PRAGMA mmap_size={int(previous)}")
