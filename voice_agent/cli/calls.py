"""``receptionist calls list|outcomes|show|forget``: the calls taken, with both sides of the
transcript, the consent record and the texts; what Twilio reported of every call; and a
caller's calls deleted at their request."""

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


_business_option = click.option("--business", metavar="ID", help="Only this business's calls.")
_limit_option = click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Show at most this many calls, newest first.",
)


@click.group()
def calls() -> None:
    """Calls taken: messages, transcripts, consent, texts."""


@calls.command("list")
@_business_option
@_limit_option
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


@calls.command("outcomes")
@_business_option
@_limit_option
@json_option("the calls' outcomes")
def call_outcomes(business: str | None, limit: int, as_json: bool) -> None:
    """Every call Twilio reported, newest first, with its outcome — the assistant answered,
    the owner took it, the caller hung up while it rang, not connected — how the owner's leg
    ended when the owner was rung first, and Twilio's status and duration."""
    from voice_agent.cli.reports import progress_as_dict, render_progress

    with reading(load_settings()) as conn:
        require_business(conn, business)
        progress = []
        if conn is not None:
            from voice_agent.records.call_progress import list_progress

            progress = list_progress(conn, business, limit)
    if as_json:
        print_json([progress_as_dict(call) for call in progress])
    else:
        print(render_progress(progress))


@calls.command("show")
@click.argument("call_sid", metavar="CALL_SID", help="The call's Twilio SID (CA…).")
@json_option("the call, its consent event, its texts and what Twilio reported")
def show_call(call_sid: str, as_json: bool) -> None:
    """Show one call: the message, both sides of the transcript with times, the consent record,
    the texts, an emergency's transfer to the on-call phones, and what Twilio reported (how
    ringing the owner ended, the call's status and duration). A call the assistant never
    answered shows what Twilio reported of it."""
    from consent_ledger import event_by_hash
    from sms_sender import list_outbox
    from voice_agent.cli.reports import (
        call_as_dict,
        progress_as_dict,
        render_call,
        render_progress_of,
        render_transfer,
        transfer_as_dict,
    )
    from voice_agent.records.businesses import business_time_zones
    from voice_agent.records.call_progress import get_progress
    from voice_agent.records.call_transfers import transfer_of
    from voice_agent.records.calls import get_call

    with reading(load_settings()) as conn:
        record = None if conn is None else get_call(conn, call_sid)
        progress = None if conn is None else get_progress(conn, call_sid)
        if conn is None or (record is None and progress is None):
            raise CommandError(f"no call {call_sid!r}")
        event = None
        if record is not None and record.consent_event_hash:
            event = event_by_hash(conn, record.consent_event_hash)
        texts = [] if record is None else list_outbox(conn, call_sid=record.call_sid)
        transfer = transfer_of(conn, call_sid)
        zones = business_time_zones(conn)
    twilio = None if progress is None else progress_as_dict(progress)
    if as_json:
        transferred = None if transfer is None else transfer_as_dict(transfer)
        if record is None:
            print_json(twilio)
            return
        print_json(
            {**call_as_dict(record, event, texts), "twilio": twilio, "transfer": transferred}
        )
        return
    if record is not None:
        print(render_call(record, event, texts, zones.get(record.business_id, "UTC")))
    if transfer is not None:
        print(render_transfer(transfer))
    if progress is not None:
        print(render_progress_of(progress, standalone=record is None))


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
