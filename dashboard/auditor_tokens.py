"""Auditor tokens: the bearer secrets that let a carrier or counsel read one business's consent
records, read-only, over ``/audit``. They are :data:`~dashboard.access_tokens.AUDITOR_TOKENS`;
the names here are that store's operations, as the audit routes and the CLI call them."""

from __future__ import annotations

from dashboard.access_tokens import (
    AUDITOR_TOKENS,
    AccessToken,
    IssuedToken,
    TokenError,
    TokenStatus,
)

AuditorToken = AccessToken
TOKEN_PREFIX = AUDITOR_TOKENS.prefix
issue_token = AUDITOR_TOKENS.issue
list_tokens = AUDITOR_TOKENS.tokens
revoke_token = AUDITOR_TOKENS.revoke
authenticate = AUDITOR_TOKENS.authenticate

__all__ = [
    "TOKEN_PREFIX",
    "AuditorToken",
    "IssuedToken",
    "TokenError",
    "TokenStatus",
    "authenticate",
    "issue_token",
    "list_tokens",
    "revoke_token",
]
