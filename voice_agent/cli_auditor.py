"""``receptionist auditor token create|list|revoke``: the tokens auditors read a business's
consent records with (see :mod:`voice_agent.cli_tokens`)."""

from __future__ import annotations

from dashboard import AUDITOR_TOKENS
from voice_agent.cli_tokens import TokenCommands

AUDITOR_TOKEN_COMMANDS = TokenCommands(
    store=AUDITOR_TOKENS,
    group_help="auditor access to consent records",
    token_help="per-business read-only auditor tokens",
    label_example="'carrier audit 2025-06'",
    default_days=30,
)
register = AUDITOR_TOKEN_COMMANDS.register
