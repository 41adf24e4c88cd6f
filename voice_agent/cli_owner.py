"""``receptionist owner token create|list|revoke``: the tokens a business's owner signs in to
the dashboard's ``/owner`` pages with (see :mod:`voice_agent.cli_tokens`)."""

from __future__ import annotations

from dashboard import OWNER_TOKENS
from voice_agent.cli_tokens import TokenCommands

OWNER_TOKEN_COMMANDS = TokenCommands(
    store=OWNER_TOKENS,
    group_help="owner access to the dashboard (calls, transcripts, texts)",
    token_help="per-business owner sign-in tokens for the dashboard",
    label_example="'Dana, owner'",
    default_days=90,
)
register = OWNER_TOKEN_COMMANDS.register
