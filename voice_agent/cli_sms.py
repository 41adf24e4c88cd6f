"""``receptionist outbox …`` and ``receptionist worker``: the follow-up texts."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from sms_sender import list_outbox
from voice_agent.cli_support import print_json, print_text
from voice_agent.db import make_engine
from voice_agent.migrate import upgrade
from voice_agent.reports import outbox_as_dict, render_outbox
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
    with make_engine(settings.database_url).connect() as conn:
        messages = list_outbox(conn, business_id=args.business)
    if args.json:
        print_json([outbox_as_dict(message) for message in messages])
    else:
        print(render_outbox(messages))
    return 0
