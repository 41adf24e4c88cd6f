"""``receptionist business import|list|owner-texts``: the businesses we answer for."""

from __future__ import annotations

from pathlib import Path

import click

from voice_agent.cli.support import (
    CommandError,
    json_option,
    known_businesses,
    load_settings,
    open_database,
    print_json,
    reading,
    unknown_business,
)


@click.group()
def business() -> None:
    """Businesses we answer for."""


@business.command("import")
@click.argument(
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A YAML file of businesses (see fixtures/businesses.yaml).",
)
def import_command(file: Path) -> None:
    """Load businesses from a YAML file (all of them or, if one is invalid, none)."""
    from voice_agent.records.businesses import BusinessConfigError, import_businesses

    engine = open_database(load_settings())
    try:
        with engine.begin() as conn:
            loaded = import_businesses(conn, file)
    except BusinessConfigError as error:
        raise CommandError(str(error)) from None
    finally:
        engine.dispose()
    print(f"imported {len(loaded)} business(es): {', '.join(b.id for b in loaded)}")


@business.command("list")
@json_option("the businesses")
def list_command(as_json: bool) -> None:
    """List the businesses, their Twilio numbers and how many texts each allows."""
    from voice_agent.records.businesses import list_businesses

    with reading(load_settings()) as conn:
        found = [] if conn is None else list_businesses(conn)
    if as_json:
        print_json([b.model_dump(mode="json") for b in found])
    else:
        for b in found:
            print(f"{b.id:<24} {b.name:<28} {', '.join(b.twilio_numbers)}  max texts {b.max_texts}")


@business.command("owner-texts")
@click.argument("business_id", metavar="BUSINESS", help="The business's id.")
@click.argument(
    "choice",
    type=click.Choice(["on", "off"]),
    help="on: text the owner a summary after every call; off: stop.",
)
def owner_texts(business_id: str, choice: str) -> None:
    """Record the owner's choice about a text summary after every call (a ledger event)."""
    from voice_agent.clock import system_clock
    from voice_agent.records.businesses import get_business
    from voice_agent.records.owner_texts import record_owner_texts_choice

    engine = open_database(load_settings())
    try:
        with engine.begin() as conn:
            found = get_business(conn, business_id)
            if found is None:
                raise unknown_business(business_id, known_businesses(conn))
            event = record_owner_texts_choice(conn, found, choice == "on", system_clock())
    finally:
        engine.dispose()
    print(f"{found.name}: call-summary texts to {found.owner_phone} {choice}")
    print(f"recorded as ledger event #{event.seq} ({event.hash[:16]}…)")
