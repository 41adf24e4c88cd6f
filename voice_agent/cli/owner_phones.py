"""``receptionist owner people …`` and ``receptionist owner sessions …``: who may sign in to a
business's owner pages with their phone, and the phones signed in.

A business's configured owner phone is its first owner (set at ``business import``); these
commands add staff (calls and replies, no settings) and more owners, remove them (their sessions
stop at once), list the phone sessions, and revoke one session or everything of one phone: its
sessions, its unused sign-in codes and its summary links.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from voice_agent.cli.support import (
    CommandError,
    json_option,
    load_settings,
    open_database,
    print_json,
    reading,
    require_business,
)

if TYPE_CHECKING:
    from dashboard.people import Person
    from dashboard.phone_sessions import PhoneSession


@click.group(help="The phones that sign in to a business's owner pages, and their roles.")
def people() -> None:
    pass


@people.command("list", help="List the people of one business or of all, removed ones too.")
@click.option("--business", metavar="ID", help="Only this business's people.")
@json_option("the people")
def list_people(business: str | None, as_json: bool) -> None:
    from dashboard.people import people_of

    with reading(load_settings()) as conn:
        require_business(conn, business)
        found = [] if conn is None else people_of(conn, business)
    if as_json:
        print_json([_person_as_dict(person) for person in found])
    elif not found:
        print("no people")
    else:
        print(f"{'id':>5}  {'business':<24} {'phone':<16} {'role':<6} {'added':<21} removed  label")
        for p in found:
            print(
                f"{p.id:>5}  {p.business_id:<24} {p.phone_number:<16} {p.role.value:<6} "
                f"{_instant(p.added_at):<21} {_instant(p.removed_at):<8} {p.label}"
            )


@people.command("add", help="Let a phone sign in to a business as staff (or an owner).")
@click.option("--business", metavar="ID", required=True, help="The business.")
@click.option("--phone", required=True, help="The person's mobile number, e.g. +15125550123.")
@click.option(
    "--role",
    type=click.Choice(["staff", "owner"]),
    default="staff",
    show_default=True,
    help="staff: calls and replies; owner: everything, settings too.",
)
@click.option("--label", default="", help="Who it is, e.g. 'Sam, dispatcher'.")
def add(business: str, phone: str, role: str, label: str) -> None:
    from dashboard.people import PersonError, Role, add_person
    from voice_agent.clock import system_clock
    from voice_agent.phone import InvalidPhoneNumber, to_e164

    try:
        number = to_e164(phone)
    except InvalidPhoneNumber as error:
        raise CommandError(str(error)) from None
    with open_database(load_settings()).begin() as conn:
        require_business(conn, business)
        try:
            person = add_person(conn, business, number, Role(role), label, system_clock())
        except PersonError as error:
            raise CommandError(str(error)) from None
    print(f"person {person.id}: {person.phone_number} signs in to {business} as {person.role}")


@people.command("remove", help="Stop a person signing in; their sessions end at once.")
@click.argument("person_id", metavar="ID", type=int, help="The person's id (see list).")
def remove(person_id: int) -> None:
    from dashboard.people import PersonError, remove_person
    from dashboard.phone_sessions import revoke_phone_sessions_of
    from voice_agent.clock import system_clock

    now = system_clock()
    with open_database(load_settings()).begin() as conn:
        try:
            person = remove_person(conn, person_id, now)
        except PersonError as error:
            raise CommandError(str(error)) from None
        if person is None:
            raise CommandError(f"no person {person_id}")
        ended = revoke_phone_sessions_of(conn, person.phone_number, now, person.business_id)
    print(f"removed person {person.id} ({person.business_id}); {ended} session(s) ended")


@click.group(help="Phones signed in to the owner pages (by code or a summary's link).")
def sessions() -> None:
    pass


@sessions.command("list", help="List phone sessions and whether each still works.")
@click.option("--business", metavar="ID", help="Only this business's sessions.")
@json_option("the sessions")
def list_sessions(business: str | None, as_json: bool) -> None:
    from dashboard.phone_sessions import phone_sessions_of
    from voice_agent.clock import system_clock

    with reading(load_settings()) as conn:
        require_business(conn, business)
        found = [] if conn is None else phone_sessions_of(conn, business)
    now = system_clock()
    if as_json:
        print_json([_session_as_dict(session, now) for session in found])
    elif not found:
        print("no phone sessions")
    else:
        print(
            f"{'id':>5}  {'business':<24} {'phone':<16} {'role':<6} {'by':<5} {'status':<10} "
            f"{'signed in':<21} expires"
        )
        for s in found:
            print(
                f"{s.id:>5}  {s.business_id:<24} {s.phone_number:<16} {s.role.value:<6} "
                f"{s.method.value:<5} {_status(s, now):<10} {_instant(s.created_at):<21} "
                f"{_instant(s.expires_at)}"
            )


@sessions.command("revoke", help="End one session, or everything of one phone.")
@click.argument(
    "session_id", metavar="[ID]", type=int, required=False, help="The session's id (see list)."
)
@click.option(
    "--phone", help="End every session of this phone, and its unused codes and summary links."
)
def revoke(session_id: int | None, phone: str | None) -> None:
    from dashboard.phone_sessions import revoke_phone_session, revoke_phone_sessions_of
    from dashboard.sign_in_codes import revoke_codes
    from dashboard.sign_in_links import revoke_links
    from voice_agent.clock import system_clock
    from voice_agent.phone import InvalidPhoneNumber, to_e164

    if (session_id is None) == (phone is None):
        raise click.UsageError("give a session ID or --phone, not both")
    now = system_clock()
    with open_database(load_settings()).begin() as conn:
        if session_id is not None:
            session = revoke_phone_session(conn, session_id, now)
            if session is None:
                raise CommandError(f"no phone session {session_id}")
            print(f"phone session {session.id} ended ({session.ended_by or 'ended'})")
            return
        try:
            number = to_e164(phone or "")
        except InvalidPhoneNumber as error:
            raise CommandError(str(error)) from None
        ended = revoke_phone_sessions_of(conn, number, now)
        codes = revoke_codes(conn, number, now)
        links = revoke_links(conn, number, now)
    print(f"{number}: {ended} session(s) ended, {codes} code(s) and {links} link(s) revoked")


def _status(session: PhoneSession, now: datetime) -> str:
    if session.ended_by is not None:
        return session.ended_by.value
    return "active" if session.works(now) else "expired"


def _instant(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _person_as_dict(person: Person) -> dict[str, Any]:
    return {
        "id": person.id,
        "business_id": person.business_id,
        "phone_number": person.phone_number,
        "role": person.role.value,
        "label": person.label,
        "from_config": person.from_config,
        "added_at": person.added_at.isoformat(),
        "removed_at": None if person.removed_at is None else person.removed_at.isoformat(),
    }


def _session_as_dict(session: PhoneSession, now: datetime) -> dict[str, Any]:
    return {
        "id": session.id,
        "business_id": session.business_id,
        "phone_number": session.phone_number,
        "role": session.role.value,
        "method": session.method.value,
        "status": _status(session, now),
        "created_at": session.created_at.isoformat(),
        "renewed_at": session.renewed_at.isoformat(),
        "expires_at": session.expires_at.isoformat(),
        "ended_at": None if session.ended_at is None else session.ended_at.isoformat(),
    }
