"""``receptionist calls list|show|forget``: the calls taken, with both sides of the transcript,
the consent record and the texts; and a caller's calls deleted at their request."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    from voice_agent.records.calls import CallRecord


@click.group()
def calls() -> None:
    """Calls taken: messages, transcripts, consent, texts."""


@calls.command("list")
@click.option("--business", metavar="ID", help="Only this business's calls.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Show at most this many calls, newest first.",
)
@json_option("the calls")
def list_calls_command(business: str | None, limit: int, as_json: bool) -> None:
    """List calls, newest first."""
    from voice_agent.cli.reports import call_as_dict, render_call_list

    records: list[CallRecord] = []
    zones: dict[str, str] = {}
    with reading(load_settings()) as conn:
        require_business(conn, business)
        if conn is not None:  # a database where nothing was recorded has no calls to load
            from voice_agent.records.businesses import business_time_zones
            from voice_agent.records.calls import list_calls

            records = list_calls(conn, business, limit)
            zones = business_time_zones(conn)
    if as_json:
        print_json([call_as_dict(record, None, []) for record in records])
    else:
        print(render_call_list(records, zones))


@calls.command("show")
@click.argument("call_sid", metavar="CALL_SID", help="The call's Twilio SID (CA…).")
@json_option("the call, its consent event and its texts")
def show_call(call_sid: str, as_json: bool) -> None:
    """Show one call: the message, both sides of the transcript with times, the consent record
    and the texts."""
    from consent_ledger import event_by_hash
    from sms_sender import list_outbox
    from voice_agent.cli.reports import call_as_dict, render_call
    from voice_agent.records.businesses import business_time_zones
    from voice_agent.records.calls import get_call

    with reading(load_settings()) as conn:
        record = None if conn is None else get_call(conn, call_sid)
        if conn is None or record is None:
            raise CommandError(f"no call {call_sid!r}")
        event = (
            event_by_hash(conn, record.consent_event_hash) if record.consent_event_hash else None
        )
        texts = list_outbox(conn, call_sid=record.call_sid)
        zone = business_time_zones(conn).get(record.business_id, "UTC")
    if as_json:
        print_json(call_as_dict(record, event, texts))
    else:
        print(render_call(record, event, texts, zone))


@calls.command("forget")
@click.option("--business", metavar="ID", required=True, help="The business asked.")
@click.argument("number", metavar="NUMBER", help="The caller's phone number, in any common form.")
def forget_calls(business: str, number: str) -> None:
    """Delete a caller's calls and callback requests with a business, transcripts included, as
    they asked (the privacy page promises it). Consent records, opt-outs and texts are kept."""
    from voice_agent.phone import InvalidPhoneNumber, to_e164
    from voice_agent.records.calls import forget_caller

    try:
        caller = to_e164(number)
    except InvalidPhoneNumber as error:
        raise CommandError(str(error)) from None
    with open_database(load_settings()).begin() as conn:
        require_business(conn, business)
        deleted = forget_caller(conn, business, caller)
    print(
        f"Deleted {deleted} call{'' if deleted == 1 else 's'} of {caller} with {business}, "
        "transcripts included; consent records, opt-outs and texts are kept as evidence."
    )
