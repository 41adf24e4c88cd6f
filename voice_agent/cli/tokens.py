"""``receptionist auditor token …`` and ``receptionist owner token …``: issue, list and revoke the
tokens that open one business's records, to auditors (``/audit``) or to owners (``/owner``).

One factory, :class:`TokenCommands`, makes both groups; each kind of token differs only in its
store, its words and its default lifetime. A token is printed once, on its own line on standard
output (notes go to standard error), so that
``TOKEN=$(receptionist owner token create --business acme-plumbing)`` captures exactly it. Only
its hash is kept; listing shows what a token is for and whether it still works, never the token.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from voice_agent.cli.owner_phones import people, sessions
from voice_agent.cli.support import (
    CommandError,
    Count,
    json_option,
    load_settings,
    open_database,
    print_json,
    reading,
    require_business,
)

if TYPE_CHECKING:
    from dashboard import AccessToken, TokenStore

MAX_LIFETIME_DAYS = 366


@dataclass(frozen=True)
class TokenCommands:
    """The ``ROLE token create|list|revoke`` commands for one kind of token."""

    role: str
    """``owner`` or ``auditor``: the top-level command, and the name of the dashboard's store."""
    group_help: str
    token_help: str
    label_example: str
    default_days: int

    def store(self) -> TokenStore:
        """The dashboard's store for this kind of token (the dashboard loads on first use)."""
        from dashboard import AUDITOR_TOKENS, OWNER_TOKENS

        return next(store for store in (OWNER_TOKENS, AUDITOR_TOKENS) if store.role == self.role)

    def group(self) -> click.Group:
        """``ROLE`` with its ``token create|list|revoke`` commands."""
        role = self.role

        @click.group(name=role, help=self.group_help)
        def role_group() -> None:
            pass

        @role_group.group(name="token", help=self.token_help)
        def token() -> None:
            pass

        @token.command(help="Issue a token; it is shown only once.")
        @click.option("--business", metavar="ID", required=True, help="The business it opens.")
        @click.option("--label", default="", help=f"Who holds it, e.g. {self.label_example}.")
        @click.option(
            "--expires-days",
            type=Count("days", MAX_LIFETIME_DAYS),
            default=self.default_days,
            show_default=True,
            help=f"Days until it stops working (1 to {MAX_LIFETIME_DAYS}).",
        )
        def create(business: str, label: str, expires_days: int) -> None:
            self.create(business, label, expires_days)

        @token.command("list", help=f"List {role} tokens and their state, never the tokens.")
        @click.option("--business", metavar="ID", help="Only this business's tokens.")
        @json_option("the tokens")
        def list_command(business: str | None, as_json: bool) -> None:
            self.list_tokens(business, as_json)

        @token.command(help="Stop a token from working, at once.")
        @click.argument("token_id", metavar="ID", type=int, help="The token's id (see list).")
        def revoke(token_id: int) -> None:
            self.revoke(token_id)

        return role_group

    def create(self, business_id: str, label: str, expires_days: int) -> None:
        from dashboard import TokenError
        from voice_agent.clock import system_clock

        store = self.store()
        with open_database(load_settings()).begin() as conn:
            require_business(conn, business_id)
            try:
                issued = store.issue(
                    conn, business_id, label, system_clock(), timedelta(days=expires_days)
                )
            except TokenError as error:
                raise CommandError(str(error)) from None
        token = issued.token
        print(
            f"{self.role} token {token.id} for {token.business_id}, expires "
            f"{_instant(token.expires_at)}. Keep it now: it is not shown again.",
            file=sys.stderr,
        )
        print(issued.secret)

    def list_tokens(self, business_id: str | None, as_json: bool) -> None:
        from voice_agent.clock import system_clock

        store = self.store()
        with reading(load_settings()) as conn:
            require_business(conn, business_id)
            tokens = [] if conn is None else store.tokens(conn, business_id)
        now = system_clock()
        if as_json:
            print_json([_token_as_dict(token, now) for token in tokens])
        else:
            print(_render_tokens(tokens, now) if tokens else f"no {self.role} tokens")

    def revoke(self, token_id: int) -> None:
        from voice_agent.clock import system_clock

        now = system_clock()
        with open_database(load_settings()).begin() as conn:
            token = self.store().revoke(conn, token_id, now)
        if token is None:
            raise CommandError(f"no {self.role} token {token_id}")
        if token.revoked_at == now:
            label = token.label or "no label"
            print(f"revoked {self.role} token {token.id} ({token.business_id}, {label})")
        else:
            print(
                f"{self.role} token {token.id} was already revoked at {_instant(token.revoked_at)}"
            )


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
    role="auditor",
    group_help="Auditor access to consent records, for carriers and counsel.",
    token_help="Read-only tokens for /audit, one business each (only a hash is stored).",
    label_example="'carrier audit 2025-06'",
    default_days=30,
)

OWNER_TOKEN_COMMANDS = TokenCommands(
    role="owner",
    group_help=(
        "Owner access to the dashboard: tokens for operators and scripts; the phones that sign "
        "in by code, and their sessions."
    ),
    token_help="Sign-in tokens for /owner, one business each (only a hash is stored).",
    label_example="'Dana, owner'",
    default_days=90,
)

auditor = AUDITOR_TOKEN_COMMANDS.group()
owner = OWNER_TOKEN_COMMANDS.group()
owner.add_command(people)
owner.add_command(sessions)
