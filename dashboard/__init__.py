"""Web pages and HTTP access for owners and auditors: scoped, read-only views of the evidence."""

from typing import TYPE_CHECKING

import lazy_loader

from dashboard.access_tokens import (
    AUDITOR_TOKENS,
    OWNER_TOKENS,
    AccessToken,
    TokenStore,
)
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
from dashboard.call_log import (
    BusinessProfile,
    CallDetails,
    CallListing,
    CallLog,
    TranscriptLine,
    UnansweredCall,
)
from dashboard.tables import metadata

if TYPE_CHECKING:
    from dashboard.audit_routes import AuditContext, audit_router
    from dashboard.owner_routes import OwnerContext, owner_router
else:  # the web framework and templates load when the routes are first used
    __getattr__, _, _ = lazy_loader.attach(
        __name__,
        submod_attrs={
            "audit_routes": ["AuditContext", "audit_router"],
            "owner_routes": ["OwnerContext", "owner_router"],
        },
    )

__all__ = [
    "AUDITOR_TOKENS",
    "OWNER_TOKENS",
    "AccessToken",
    "AuditContext",
    "AuditorToken",
    "BusinessProfile",
    "CallDetails",
    "CallListing",
    "CallLog",
    "IssuedToken",
    "OwnerContext",
    "TokenError",
    "TokenStatus",
    "TokenStore",
    "TranscriptLine",
    "UnansweredCall",
    "audit_router",
    "authenticate",
    "issue_token",
    "list_tokens",
    "metadata",
    "owner_router",
    "revoke_token",
]
