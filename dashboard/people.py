"""The people of a business who sign in with their phone, and what each may do.

An ``owner`` may do everything for the business (calls, replies, settings); ``staff`` read calls
and texts and reply, but reach no settings. The owner phone in the business's configuration is
its first owner (a row ``from_config``, kept in step at every import by
:func:`sync_config_owner`); the operator adds staff and other owners with ``receptionist owner
people add``. Removing a person keeps the row with ``removed_at``; their phone sessions stop
working at once (a session is honoured only while its person is on the list, with the role the
list gives now).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from dashboard.access_tokens import MAX_LABEL_LENGTH, require_utc, stored_instant
from dashboard.tables import business_people

logger = logging.getLogger(__name__)

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
CONFIG_OWNER_LABEL = "owner (business settings)"


class Role(StrEnum):
    """What a signed-in person may do for their business."""

    OWNER = "owner"
    STAFF = "staff"


class PersonError(ValueError):
    """A person who cannot be added or removed as asked; the message says why."""


@dataclass(frozen=True)
class Person:
    """One phone that may sign in to one business."""

    id: int
    business_id: str
    phone_number: str
    role: Role
    label: str
    from_config: bool
    added_at: datetime
    removed_at: datetime | None


def add_person(
    conn: Connection, business_id: str, phone_number: str, role: Role, label: str, now: datetime
) -> Person:
    """Let ``phone_number`` (E.164) sign in to ``business_id`` as ``role`` from ``now`` on; a
    person already listed (or removed before) takes the new role and label."""
    now = require_utc("now", now)
    if not _E164.fullmatch(phone_number):
        raise PersonError(f"{phone_number!r} is not a phone number in E.164 form (+15125550123)")
    label = _checked_label(label)
    existing = _row(conn, business_id, phone_number)
    if existing is not None and existing.from_config and role is not Role.OWNER:
        raise PersonError("the business's configured owner phone stays an owner")
    if existing is None:
        conn.execute(
            insert(business_people).values(
                business_id=business_id,
                phone_number=phone_number,
                role=role.value,
                label=label,
                from_config=False,
                added_at=now,
            )
        )
    else:
        conn.execute(
            update(business_people)
            .where(business_people.c.id == existing.id)
            .values(role=role.value, label=label or existing.label, removed_at=None)
        )
    person = _person(_required_row(conn, business_id, phone_number))
    logger.info(
        "person added: %s", role.value, extra={"business_id": business_id, "person_id": person.id}
    )
    return person


def remove_person(conn: Connection, person_id: int, now: datetime) -> Person | None:
    """Stop person ``person_id`` signing in from ``now`` on; None when there is no such person."""
    now = require_utc("now", now)
    row = conn.execute(
        select(business_people).where(business_people.c.id == person_id)
    ).one_or_none()
    if row is None:
        return None
    if row.from_config:
        raise PersonError(
            "the configured owner phone is removed by changing owner_phone in the business file"
        )
    if row.removed_at is None:
        conn.execute(
            update(business_people).where(business_people.c.id == person_id).values(removed_at=now)
        )
        logger.info(
            "person removed", extra={"business_id": row.business_id, "person_id": person_id}
        )
    return _person(_required_row(conn, row.business_id, row.phone_number))


def sync_config_owner(conn: Connection, business_id: str, owner_phone: str, now: datetime) -> None:
    """Make the configured ``owner_phone`` the business's owner from its configuration; a
    previously configured owner phone that is no longer the configured one is removed."""
    now = require_utc("now", now)
    conn.execute(
        update(business_people)
        .where(
            business_people.c.business_id == business_id,
            business_people.c.from_config.is_(True),
            business_people.c.phone_number != owner_phone,
            business_people.c.removed_at.is_(None),
        )
        .values(removed_at=now)
    )
    existing = _row(conn, business_id, owner_phone)
    if existing is None:
        conn.execute(
            insert(business_people).values(
                business_id=business_id,
                phone_number=owner_phone,
                role=Role.OWNER.value,
                label=CONFIG_OWNER_LABEL,
                from_config=True,
                added_at=now,
            )
        )
    elif not (existing.from_config and existing.removed_at is None):
        conn.execute(
            update(business_people)
            .where(business_people.c.id == existing.id)
            .values(role=Role.OWNER.value, from_config=True, removed_at=None)
        )


def people_of(conn: Connection, business_id: str | None = None) -> list[Person]:
    """Everyone listed, of one business or of all, removed people too, oldest first."""
    query = select(business_people).order_by(business_people.c.id)
    if business_id is not None:
        query = query.where(business_people.c.business_id == business_id)
    return [_person(row) for row in conn.execute(query)]


def people_with_phone(conn: Connection, phone_number: str) -> list[Person]:
    """The businesses ``phone_number`` may sign in to now (one person each), by business id."""
    rows = conn.execute(
        select(business_people)
        .where(
            business_people.c.phone_number == phone_number,
            business_people.c.removed_at.is_(None),
        )
        .order_by(business_people.c.business_id)
    )
    return [_person(row) for row in rows]


def current_person(conn: Connection, business_id: str, phone_number: str) -> Person | None:
    """The person ``phone_number`` is for ``business_id`` now; None when not (or no longer) one."""
    row = _row(conn, business_id, phone_number)
    return None if row is None or row.removed_at is not None else _person(row)


def _row(conn: Connection, business_id: str, phone_number: str) -> Row[Any] | None:
    return conn.execute(
        select(business_people).where(
            business_people.c.business_id == business_id,
            business_people.c.phone_number == phone_number,
        )
    ).one_or_none()


def _required_row(conn: Connection, business_id: str, phone_number: str) -> Row[Any]:
    row = _row(conn, business_id, phone_number)
    if row is None:
        raise RuntimeError("a person just stored cannot be read back")
    return row


def _person(row: Row[Any]) -> Person:
    return Person(
        id=int(row.id),
        business_id=row.business_id,
        phone_number=row.phone_number,
        role=Role(row.role),
        label=row.label,
        from_config=bool(row.from_config),
        added_at=stored_instant(row.added_at),
        removed_at=None if row.removed_at is None else stored_instant(row.removed_at),
    )


def _checked_label(label: str) -> str:
    label = label.strip()
    if len(label) > MAX_LABEL_LENGTH or any(not c.isprintable() for c in label):
        raise PersonError(f"a label is at most {MAX_LABEL_LENGTH} printable characters")
    return label
