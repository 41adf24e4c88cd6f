"""``receptionist outbox list|show|cancel``, ``receptionist worker`` and ``receptionist sms
send-test``: the follow-up texts."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from sms_sender import (
    OutgoingSms,
    SendFailed,
    TwilioSmsTransport,
    cancel_message,
    get_message,
    list_outbox,
)
from voice_agent.cli.reports import outbox_as_dict, render_outbox
from voice_agent.cli.support import CommandError, open_database, print_json, print_text
from voice_agent.phone import InvalidPhoneNumber, to_e164
from voice_agent.records.migrate import upgrade
from voice_agent.settings import Settings


def register(commands: Any) -> None:
    """Add the SMS commands to the top-level sub-command parser."""
    worker = commands.add_parser("worker", help="send due texts until stopped")
    worker.add_argument("--once", action="store_true", help="one pass, then exit")
    worker.set_defaults(handler=cmd_worker)

    outbox = commands.add_parser("outbox", help="follow-up texts")
    outbox_commands = outbox.add_subparsers(dest="outbox", required=True)
    outbox_list = outbox_commands.add_parser("list", help="every text, newest first")
    outbox_list.add_argument("--business")
    outbox_list.add_argument("--json", action="store_true")
    outbox_list.set_defaults(handler=cmd_outbox_list)
    outbox_show = outbox_commands.add_parser("show", help="one text")
    outbox_show.add_argument("id", type=int)
    outbox_show.add_argument("--json", action="store_true")
    outbox_show.set_defaults(handler=cmd_outbox_show)
    outbox_cancel = outbox_commands.add_parser("cancel", help="cancel a text not yet sent")
    outbox_cancel.add_argument("id", type=int)
    outbox_cancel.set_defaults(handler=cmd_outbox_cancel)

    sms = commands.add_parser("sms", help="the Twilio account")
    sms_commands = sms.add_subparsers(dest="sms", required=True)
    send_test = sms_commands.add_parser(
        "send-test", help="send one fixed test text through the configured Twilio account"
    )
    send_test.add_argument("--to", required=True, help="your own phone, E.164")
    send_test.add_argument("--from", dest="from_number", required=True, help="a Twilio number")
    send_test.set_defaults(handler=cmd_sms_send_test)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from voice_agent.services import build_services

    upgrade(settings.database_url)
    dispatcher = build_services(settings, on_text=print_text).dispatcher
    if args.once:
        report = asyncio.run(dispatcher.run_once())
        print(f"{report.sent} sent, {report.blocked} blocked, {report.failed} failed")
        return 0
    asyncio.run(dispatcher.run())
    return 0


def cmd_outbox_list(settings: Settings, args: argparse.Namespace) -> int:
    with open_database(settings).connect() as conn:
        messages = list_outbox(conn, business_id=args.business)
    if args.json:
        print_json([outbox_as_dict(message) for message in messages])
    else:
        print(render_outbox(messages))
    return 0


def cmd_outbox_show(settings: Settings, args: argparse.Namespace) -> int:
    with open_database(settings).connect() as conn:
        message = get_message(conn, args.id)
    if message is None:
        raise CommandError(f"no text #{args.id}")
    if args.json:
        print_json(outbox_as_dict(message))
    else:
        print(render_outbox([message]))
        print(f"  kind {message.kind.value} · attempts {message.attempts}")
        print(f"  provider id {message.provider_message_id or '—'} · call {message.call_sid}")
    return 0


def cmd_outbox_cancel(settings: Settings, args: argparse.Namespace) -> int:
    with open_database(settings).begin() as conn:
        cancelled = cancel_message(conn, args.id, "cancelled by the operator")
    if not cancelled:
        raise CommandError(f"text #{args.id} does not exist or is no longer pending")
    print(f"text #{args.id} cancelled")
    return 0


TEST_TEXT = "Voice receptionist: this test text confirms that sending works. No reply needed."


def cmd_sms_send_test(settings: Settings, args: argparse.Namespace) -> int:
    try:
        to_number, from_number = to_e164(args.to), to_e164(args.from_number)
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
    return 0
