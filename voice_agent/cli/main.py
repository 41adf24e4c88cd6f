"""The ``receptionist`` command: serve, simulate calls, inspect calls and texts, run the demo."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from consent_ledger import (
    event_by_hash,
)
from sms_sender import list_outbox
from voice_agent.cli import ledger, retention, texts, tokens
from voice_agent.cli.reports import call_as_dict, render_call, render_call_list
from voice_agent.cli.support import CommandError, open_database, print_json, print_text
from voice_agent.clock import system_clock
from voice_agent.logging_setup import configure_logging
from voice_agent.records.businesses import (
    BusinessConfigError,
    get_business,
    import_businesses,
    list_businesses,
)
from voice_agent.records.calls import get_call, list_calls
from voice_agent.records.migrate import upgrade
from voice_agent.records.owner_texts import record_owner_texts_choice
from voice_agent.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: invalid settings: {error}", file=sys.stderr)
        return 2
    try:
        result: int = args.handler(settings, args)
        return result
    except (CommandError, BusinessConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="receptionist", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="db", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(handler=cmd_db_upgrade)

    business = commands.add_parser("business", help="businesses we answer for")
    business_commands = business.add_subparsers(dest="business", required=True)
    importer = business_commands.add_parser("import", help="load businesses from YAML")
    importer.add_argument("file", type=Path)
    importer.set_defaults(handler=cmd_business_import)
    lister = business_commands.add_parser("list", help="list businesses")
    lister.add_argument("--json", action="store_true")
    lister.set_defaults(handler=cmd_business_list)
    owner_texts = business_commands.add_parser(
        "owner-texts", help="record the owner's choice about call-summary texts (a ledger event)"
    )
    owner_texts.add_argument("business_id", metavar="BUSINESS")
    owner_texts.add_argument("choice", choices=("on", "off"))
    owner_texts.set_defaults(handler=cmd_business_owner_texts)

    serve = commands.add_parser("serve", help="run the web server (webhooks and media streams)")
    serve.set_defaults(handler=cmd_serve)

    simulate = commands.add_parser("simulate", help="place simulated Twilio calls")
    simulate.add_argument("scenarios", nargs="+", type=Path, metavar="SCENARIO")
    simulate.add_argument("--server", help="server URL (default: http://HOST:PORT)")
    simulate.add_argument("--speed", type=_speed, default=1.0, help="time scale, 1 = real time")
    simulate.add_argument("--json", action="store_true")
    simulate.set_defaults(handler=cmd_simulate)

    calls = commands.add_parser("calls", help="calls taken")
    call_commands = calls.add_subparsers(dest="calls", required=True)
    calls_list = call_commands.add_parser("list")
    calls_list.add_argument("--business")
    calls_list.add_argument("--limit", type=int, default=50)
    calls_list.add_argument("--json", action="store_true")
    calls_list.set_defaults(handler=cmd_calls_list)
    calls_show = call_commands.add_parser("show")
    calls_show.add_argument("call_sid")
    calls_show.add_argument("--json", action="store_true")
    calls_show.set_defaults(handler=cmd_calls_show)

    texts.register(commands)
    ledger.register(commands)
    retention.register(commands)
    tokens.AUDITOR_TOKEN_COMMANDS.register(commands)
    tokens.OWNER_TOKEN_COMMANDS.register(commands)

    demo = commands.add_parser("demo", help="serve, simulate three calls, show what happened")
    demo.add_argument("--speed", type=_speed, default=4.0)
    demo.set_defaults(handler=cmd_demo)
    return parser


def _speed(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
    if not 0.25 <= value <= 20:
        raise argparse.ArgumentTypeError("speed must be between 0.25 and 20")
    return value


def cmd_db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    upgrade(settings.database_url)
    print("database is up to date")
    return 0


def cmd_business_import(settings: Settings, args: argparse.Namespace) -> int:
    with open_database(settings).begin() as conn:
        loaded = import_businesses(conn, args.file)
    print(f"imported {len(loaded)} business(es): {', '.join(b.id for b in loaded)}")
    return 0


def cmd_business_list(settings: Settings, args: argparse.Namespace) -> int:
    with open_database(settings).connect() as conn:
        found = list_businesses(conn)
    if args.json:
        print_json([business.model_dump() for business in found])
    else:
        for b in found:
            print(f"{b.id:<24} {b.name:<28} {', '.join(b.twilio_numbers)}  max texts {b.max_texts}")
    return 0


def cmd_business_owner_texts(settings: Settings, args: argparse.Namespace) -> int:
    engine = open_database(settings)
    with engine.begin() as conn:
        business = get_business(conn, args.business_id)
        if business is None:
            raise CommandError(f"no business {args.business_id!r}")
        event = record_owner_texts_choice(conn, business, args.choice == "on", system_clock())
    engine.dispose()
    print(f"{business.name}: call-summary texts to {business.owner_phone} {args.choice}")
    print(f"recorded as ledger event #{event.seq} ({event.hash[:16]}…)")
    return 0


def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    import uvicorn

    from voice_agent.services import build_services
    from voice_agent.web.app import create_app

    upgrade(settings.database_url)
    app = create_app(build_services(settings, on_text=print_text))
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", ws_max_size=65536)
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from voice_agent.cli.simulate import run_scenarios

    server = args.server or f"http://{settings.host}:{settings.port}"
    outcomes = asyncio.run(run_scenarios(settings, args.scenarios, server, args.speed))
    if args.json:
        print_json([outcome.as_dict() for outcome in outcomes])
    else:
        print("\n\n".join(outcome.render() for outcome in outcomes))
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def cmd_calls_list(settings: Settings, args: argparse.Namespace) -> int:
    with open_database(settings).connect() as conn:
        records = list_calls(conn, args.business, args.limit)
    if args.json:
        print_json([call_as_dict(record, None, []) for record in records])
    else:
        print(render_call_list(records))
    return 0


def cmd_calls_show(settings: Settings, args: argparse.Namespace) -> int:
    with open_database(settings).connect() as conn:
        record = get_call(conn, args.call_sid)
        if record is None:
            raise CommandError(f"no call {args.call_sid!r}")
        event = (
            event_by_hash(conn, record.consent_event_hash) if record.consent_event_hash else None
        )
        texts = list_outbox(conn, call_sid=record.call_sid)
    if args.json:
        print_json(call_as_dict(record, event, texts))
    else:
        print(render_call(record, event, texts))
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from voice_agent.cli.demo import run_demo

    return run_demo(settings, args.speed)


if __name__ == "__main__":
    raise SystemExit(main())
