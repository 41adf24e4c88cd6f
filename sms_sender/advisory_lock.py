"""Named locks held until the transaction ends, for work that must not run twice at once.

On PostgreSQL they are transaction-scoped advisory locks (``pg_advisory_xact_lock``) keyed by a
hash of the name; on SQLite every writing transaction already holds the database's write lock
from its start (``BEGIN IMMEDIATE``), so there is nothing more to take.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, func, select


def lock_until_commit(conn: Connection, name: str) -> None:
    """Wait for, then hold until the caller's transaction ends, the lock called ``name``."""
    if conn.dialect.name != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    conn.execute(select(func.pg_advisory_xact_lock(key)))
