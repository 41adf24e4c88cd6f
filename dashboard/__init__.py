"""Web pages and HTTP access for owners and auditors: scoped, read-only views of the evidence."""

from dashboard.audit_routes import AuditContext, audit_router
from dashboard.auditor_tokens import (
    AuditorToken,
    IssuedToken,
    TokenError,
    TokenStatus,
    authenticate,
    issue_token,
    list_tokens,
    revoke_token,
)
from dashboard.tables import metadata

__all__ = [
    "AuditContext",
    "AuditorToken",
    "IssuedToken",
    "TokenError",
    "TokenStatus",
    "audit_router",
    "authenticate",
    "issue_token",
    "list_tokens",
    "metadata",
    "revoke_token",
]
