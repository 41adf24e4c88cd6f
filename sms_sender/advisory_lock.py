"""Named locks held until the transaction ends, for work that must not run twice at once.

On PostgreSQL they are transaction-scoped advisory locks (``pg_advisory_xact_lock``) keyed by a
hash of the name; on SQLite every writing transaction already holds the database's write lock
from its start (``BEGIN IMMEDIATE``), so there is nothing more to take.

The lock of a number (``lock_number``) sets the order of every lock about one business's texts
with one number: that lock first, then the number's outbox rows, then the business's ledger chain.
A send, a STOP, a status callback and a revocation may each cancel the number's other texts while
sending or answering one, so without one order two of them could each hold a row the other waits
for: a deadlock, in which PostgreSQL aborts one of them (perhaps the STOP).
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


def lock_number(conn: Connection, business_id: str, number: str) -> None:
    """Hold, until the transaction ends, the lock on ``business_id``'s texts with ``number``.

    Take it before locking any of the number's outbox rows or appending to the ledger; taking it
    again in the same transaction is harmless.
    """
    lock_until_commit(conn, f"sms_sender.number:{business_id}:{number}")
