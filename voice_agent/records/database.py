"""Database engines for SQLite (embedded default) and PostgreSQL (production).

SQLite transactions begin with ``BEGIN IMMEDIATE`` so that a transaction that reads and then
writes (claim an outbox row, append to a ledger chain) holds the write lock from its start,
the way ``SELECT … FOR UPDATE`` does on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.pool import PoolProxiedConnection


def make_engine(database_url: str, *, read_only: bool = False) -> Engine:
    """An engine for ``database_url``; creates the SQLite file's folder when needed.

    ``read_only`` engines (long reads such as ledger verification) start plain deferred
    transactions on SQLite, so they never hold the write lock that calls need.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _configure_sqlite_connection)
    _begin_transactions_with(engine.dialect, "BEGIN" if read_only else "BEGIN IMMEDIATE")
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the engine's dialect issues BEGIN (see below)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_transactions_with(dialect: Dialect, begin: str) -> None:
    """Make the engine's ``dialect`` start every transaction by running ``begin`` on the driver.

    ``Dialect.do_begin`` is where SQLAlchemy begins a transaction on a driver connection (the
    pysqlite dialect's does nothing), and each engine has a dialect of its own. SQLAlchemy's
    SQLite recipe, a "begin" event listener running the statement through ``exec_driver_sql``,
    doubles the Python cost of a transaction's BEGIN and COMMIT: the statement goes through
    SQLAlchemy's execution machinery, and any connection event makes every transaction dispatch
    events. SQLAlchemy handles an error here as any driver error: raised as
    ``sqlalchemy.exc.OperationalError`` and kin (``database is locked`` once the busy timeout has
    run out), the connection invalidated if it was lost, and the transaction not begun.
    """

    def do_begin(dbapi_connection: PoolProxiedConnection) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(begin)
        finally:
            cursor.close()

    dialect.do_begin = do_begin  # type: ignore[method-assign]
