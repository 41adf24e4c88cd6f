"""``receptionist auditor token …`` and ``receptionist owner token …``: issue, list and revoke the
tokens that open one business's records, to auditors (``/audit``) or to owners (``/owner``).

A token is printed once, on its own line on standard output (notes go to standard error), so that
``TOKEN=$(receptionist owner token create --business acme-plumbing)`` captures exactly it. Only
its hash is kept; listing shows what a token is for and whether it still works, never the token.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dashboard import AUDITOR_TOKENS, OWNER_TOKENS, AccessToken, TokenError, TokenStore
from voice_agent.cli.support import CommandError, counted, open_database, print_json
from voice_agent.clock import system_clock
from voice_agent.records.businesses import get_business
from voice_agent.settings import Settings

MAX_LIFETIME_DAYS = 366


@dataclass(frozen=True)
class TokenCommands:
    """The ``ROLE token create|list|revoke`` commands for one kind of token."""

    store: TokenStore
    group_help: str
    token_help: str
    label_example: str
    default_days: int

    def register(self, commands: Any) -> None:
        """Add ``ROLE token create|list|revoke`` to the top-level sub-command parser."""
        role = self.store.role
        group = commands.add_parser(role, help=self.group_help)
        token = group.add_subparsers(dest=role, required=True).add_parser(
            "token", help=self.token_help
        )
        token_commands = token.add_subparsers(dest=f"{role}_token", required=True)

        create = token_commands.add_parser("create", help="issue a token; it is shown only once")
        create.add_argument("--business", required=True)
        create.add_argument("--label", default="", help=f"who holds it, e.g. {self.label_example}")
        create.add_argument(
            "--expires-days",
            type=counted("days", MAX_LIFETIME_DAYS),
            default=self.default_days,
            help=f"days until it stops working (default {self.default_days})",
        )
        create.set_defaults(handler=self.create)

        lister = token_commands.add_parser("list", help="tokens and their state, never the tokens")
        lister.add_argument("--business")
        lister.add_argument("--json", action="store_true")
        lister.set_defaults(handler=self.list_tokens)

        revoke = token_commands.add_parser("revoke", help="stop a token from working, at once")
        revoke.add_argument("token_id", type=int, metavar="ID")
        revoke.set_defaults(handler=self.revoke)

    def create(self, settings: Settings, args: argparse.Namespace) -> int:
        with open_database(settings).begin() as conn:
            if get_business(conn, args.business) is None:
                raise CommandError(f"no business {args.business!r}")
            try:
                issued = self.store.issue(
                    conn,
                    args.business,
                    args.label,
                    system_clock(),
                    timedelta(days=args.expires_days),
                )
            except TokenError as error:
                raise CommandError(str(error)) from None
        token = issued.token
        print(
            f"{self.store.role} token {token.id} for {token.business_id}, expires "
            f"{_instant(token.expires_at)}. Keep it now: it is not shown again.",
            file=sys.stderr,
        )
        print(issued.secret)
        return 0

    def list_tokens(self, settings: Settings, args: argparse.Namespace) -> int:
        with open_database(settings).connect() as conn:
            tokens = self.store.tokens(conn, args.business)
        now = system_clock()
        if args.json:
            print_json([_token_as_dict(token, now) for token in tokens])
        else:
            print(_render_tokens(tokens, now) if tokens else f"no {self.store.role} tokens")
        return 0

    def revoke(self, settings: Settings, args: argparse.Namespace) -> int:
        now = system_clock()
        role = self.store.role
        with open_database(settings).begin() as conn:
            token = self.store.revoke(conn, args.token_id, now)
        if token is None:
            raise CommandError(f"no {role} token {args.token_id}")
        if token.revoked_at == now:
            label = token.label or "no label"
            print(f"revoked {role} token {token.id} ({token.business_id}, {label})")
        else:
            print(f"{role} token {token.id} was already revoked at {_instant(token.revoked_at)}")
        return 0


def _instant(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _token_as_dict(token: AccessToken, now: datetime) -> dict[str, Any]:
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


def _render_tokens(tokens: list[AccessToken], now: datetime) -> str:
    header = f"{'id':>5}  {'business':<24} {'status':<8} {'created':<21} {'expires':<21} "
    lines = [header + f"{'last used':<21} label"]
    for token in tokens:
        lines.append(
            f"{token.id:>5}  {token.business_id:<24} {token.status(now).value:<8} "
            f"{_instant(token.created_at):<21} {_instant(token.expires_at):<21} "
            f"{_instant(token.last_used_at):<21} {token.label}"
        )
    return "\n".join(lines)


AUDITOR_TOKEN_COMMANDS = TokenCommands(
    store=AUDITOR_TOKENS,
    group_help="auditor access to consent records",
    token_help="per-business read-only auditor tokens",
    label_example="'carrier audit 2025-06'",
    default_days=30,
)

OWNER_TOKEN_COMMANDS = TokenCommands(
    store=OWNER_TOKENS,
    group_help="owner access to the dashboard (calls, transcripts, texts)",
    token_help="per-business owner sign-in tokens for the dashboard",
    label_example="'Dana, owner'",
    default_days=90,
)
