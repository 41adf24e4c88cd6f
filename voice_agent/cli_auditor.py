"""``receptionist auditor token …``: issue, list and revoke the tokens auditors read records with.

A token is printed once, on its own line on standard output (notes go to standard error), so that
``TOKEN=$(receptionist auditor token create --business acme-plumbing)`` captures exactly it. Only
its hash is kept; listing shows what a token is for and whether it still works, never the token.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from typing import Any

from dashboard import AuditorToken, TokenError, issue_token, list_tokens, revoke_token
from voice_agent.businesses import get_business
from voice_agent.cli_support import CommandError, open_database, print_json
from voice_agent.clock import system_clock
from voice_agent.settings import Settings

DEFAULT_LIFETIME_DAYS = 30
MAX_LIFETIME_DAYS = 366


def register(commands: Any) -> None:
    """Add ``auditor token create|list|revoke`` to the top-level sub-command parser."""
    auditor = commands.add_parser("auditor", help="auditor access to consent records")
    auditor_commands = auditor.add_subparsers(dest="auditor", required=True)
    token = auditor_commands.add_parser("token", help="per-business read-only auditor tokens")
    token_commands = token.add_subparsers(dest="auditor_token", required=True)

    create = token_commands.add_parser("create", help="issue a token; it is shown only once")
    create.add_argument("--business", required=True)
    create.add_argument("--label", default="", help="who holds it, e.g. 'carrier audit 2025-06'")
    create.add_argument(
        "--expires-days",
        type=_lifetime_days,
        default=DEFAULT_LIFETIME_DAYS,
        help=f"days until it stops working (default {DEFAULT_LIFETIME_DAYS})",
    )
    create.set_defaults(handler=cmd_auditor_token_create)

    lister = token_commands.add_parser("list", help="tokens and their state, never the tokens")
    lister.add_argument("--business")
    lister.add_argument("--json", action="store_true")
    lister.set_defaults(handler=cmd_auditor_token_list)

    revoke = token_commands.add_parser("revoke", help="stop a token from working, at once")
    revoke.add_argument("token_id", type=int, metavar="ID")
    revoke.set_defaults(handler=cmd_auditor_token_revoke)


def cmd_auditor_token_create(settings: Settings, args: argparse.Namespace) -> int:
    with open_database(settings).begin() as conn:
        if get_business(conn, args.business) is None:
            raise CommandError(f"no business {args.business!r}")
        try:
            issued = issue_token(
                conn, args.business, args.label, system_clock(), timedelta(days=args.expires_days)
            )
        except TokenError as error:
            raise CommandError(str(error)) from None
    token = issued.token
    print(
        f"auditor token {token.id} for {token.business_id}, expires {_instant(token.expires_at)}."
        " Keep it now: it is not shown again.",
        file=sys.stderr,
    )
    print(issued.secret)
    return 0


def cmd_auditor_token_list(settings: Settings, args: argparse.Namespace) -> int:
    with open_database(settings).connect() as conn:
        tokens = list_tokens(conn, args.business)
    now = system_clock()
    if args.json:
        print_json([_token_as_dict(token, now) for token in tokens])
    else:
        print(_render_tokens(tokens, now))
    return 0


def cmd_auditor_token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    now = system_clock()
    with open_database(settings).begin() as conn:
        token = revoke_token(conn, args.token_id, now)
    if token is None:
        raise CommandError(f"no auditor token {args.token_id}")
    if token.revoked_at == now:
        print(
            f"revoked auditor token {token.id} ({token.business_id}, {token.label or 'no label'})"
        )
    else:
        print(f"auditor token {token.id} was already revoked at {_instant(token.revoked_at)}")
    return 0


def _lifetime_days(raw: str) -> int:
    try:
        days = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {raw!r}") from None
    if not 1 <= days <= MAX_LIFETIME_DAYS:
        raise argparse.ArgumentTypeError(f"days must be from 1 to {MAX_LIFETIME_DAYS}")
    return days


def _instant(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _token_as_dict(token: AuditorToken, now: datetime) -> dict[str, Any]:
    return {
        "id": token.id,
        "business_id": token.business_id,
        "label": token.label,
        "status": token.status(now).value,
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat(),
        "revoked_at": None if token.revoked_at is None else token.revoked_at.isoformat(),
        "last_used_at": None if token.last_used_at is None else token.last_used_at.isoformat(),
    }


def _render_tokens(tokens: list[AuditorToken], now: datetime) -> str:
    if not tokens:
        return "no auditor tokens"
    header = f"{'id':>5}  {'business':<24} {'status':<8} {'created':<21} {'expires':<21} "
    lines = [header + f"{'last used':<21} label"]
    for token in tokens:
        lines.append(
            f"{token.id:>5}  {token.business_id:<24} {token.status(now).value:<8} "
            f"{_instant(token.created_at):<21} {_instant(token.expires_at):<21} "
            f"{_instant(token.last_used_at):<21} {token.label}"
        )
    return "\n".join(lines)
