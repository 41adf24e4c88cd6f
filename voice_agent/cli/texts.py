"""``receptionist outbox list|show|cancel``, ``receptionist worker`` and ``receptionist sms
send-test``: the follow-up texts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from voice_agent.cli.support import (
    CommandError,
    json_option,
    load_settings,
    migrate,
    open_database,
    print_json,
    print_text,
    reading,
    require_business,
)

if TYPE_CHECKING:
    from sms_sender import TextDispatcher

TEST_TEXT = "Voice receptionist: this test text confirms that sending works. No reply needed."


@click.command()
@click.option("--once", is_flag=True, help="Make one pass over the due texts, then exit.")
def worker(once: bool) -> None:
    """Send due texts until stopped.

    Run any number of workers against PostgreSQL (each claims due texts with FOR UPDATE SKIP
    LOCKED, and is woken by the web processes' notices when they queue texts); the database is
    migrated first."""
    import asyncio

    from voice_agent.services import build_services

    settings = load_settings()
    migrate(settings.database_url)
    dispatcher = build_services(settings, on_text=print_text).dispatcher
    if once:
        report = asyncio.run(dispatcher.run_once())
        print(f"{report.sent} sent, {report.blocked} blocked, {report.failed} failed")
        return
    asyncio.run(_send_until_sigterm(dispatcher))


async def _send_until_sigterm(dispatcher: TextDispatcher) -> None:
    """Run ``dispatcher`` until SIGTERM, which lets the pass under way finish (a text handed to
    the transport is recorded as sent) and then stops."""
    import asyncio
    import contextlib
    import signal

    running = asyncio.create_task(dispatcher.run(listen=True))
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, running.cancel)
    print("sending due texts until stopped", flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await running


@click.group()
def outbox() -> None:
    """Follow-up texts and their status.

    A text is scheduled, claimed, sent, delivered, or cancelled or blocked with the reason."""


@outbox.command("list")
@click.option("--business", metavar="ID", help="Only this business's texts.")
@json_option("the texts")
def list_texts(business: str | None, as_json: bool) -> None:
    """List every text, newest first."""
    from sms_sender import list_outbox
    from voice_agent.cli.reports import outbox_as_dict, render_outbox
    from voice_agent.records.businesses import business_time_zones

    with reading(load_settings()) as conn:
        require_business(conn, business)
        messages = [] if conn is None else list_outbox(conn, business_id=business)
        zones = {} if conn is None else business_time_zones(conn)
    if as_json:
        print_json([outbox_as_dict(message) for message in messages])
    else:
        print(render_outbox(messages, zones))


@outbox.command("show")
@click.argument("text_id", metavar="ID", type=int, help="The text's number (#ID in the list).")
@json_option("the text")
def show_text(text_id: int, as_json: bool) -> None:
    """Show one text: its status, kind, attempts and provider id."""
    from sms_sender import get_message
    from voice_agent.cli.reports import outbox_as_dict, render_outbox
    from voice_agent.records.businesses import business_time_zones

    with reading(load_settings()) as conn:
        message = None if conn is None else get_message(conn, text_id)
        zones = {} if conn is None else business_time_zones(conn)
    if message is None:
        raise CommandError(f"no text #{text_id}")
    if as_json:
        print_json(outbox_as_dict(message))
    else:
        print(render_outbox([message], zones))
        print(f"  kind {message.kind.value} · attempts {message.attempts}")
        print(f"  provider id {message.provider_message_id or '—'} · call {message.call_sid}")


@outbox.command("cancel")
@click.argument("text_id", metavar="ID", type=int, help="The text's number (#ID in the list).")
def cancel_text(text_id: int) -> None:
    """Cancel a text that is not sent yet."""
    from sms_sender import cancel_message

    engine = open_database(load_settings())
    try:
        with engine.begin() as conn:
            cancelled = cancel_message(conn, text_id, "cancelled by the operator")
    finally:
        engine.dispose()
    if not cancelled:
        raise CommandError(f"text #{text_id} does not exist or is no longer pending")
    print(f"text #{text_id} cancelled")


@click.group()
def sms() -> None:
    """The Twilio account that sends the texts."""


@sms.command("send-test")
@click.option("--to", "to_number", required=True, help="Your own phone, E.164 (+1…).")
@click.option("--from", "from_number", required=True, help="One of your Twilio numbers, E.164.")
def send_test(to_number: str, from_number: str) -> None:
    """Send one fixed test text through the configured Twilio account."""
    from sms_sender import OutgoingSms, SendFailed, TwilioSmsTransport
    from voice_agent.phone import InvalidPhoneNumber, to_e164

    settings = load_settings()
    try:
        to_number, from_number = to_e164(to_number), to_e164(from_number)
    except InvalidPhoneNumber as error:
        raise CommandError(str(error)) from None
    transport = TwilioSmsTransport(
        settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(), None
    )
    try:
        receipt = transport.send(OutgoingSms(to_number, from_number, TEST_TEXT))
    except SendFailed as failure:
        raise CommandError(f"Twilio did not accept the test text: {failure.reason}") from None
    print(f"Twilio accepted the test text as {receipt.provider_message_id}")
