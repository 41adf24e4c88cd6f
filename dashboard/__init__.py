"""Web pages and HTTP access for owners and auditors: scoped, read-only views of the evidence."""

from typing import TYPE_CHECKING

import lazy_loader

from dashboard.access_tokens import (
    AUDITOR_TOKENS,
    OWNER_TOKENS,
    AccessToken,
    AttemptLimiter,
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
from dashboard.business_settings import (
    SETTING_LABELS,
    ConsentScriptText,
    OwnerSettings,
    SettingsError,
    SettingsStore,
)
from dashboard.call_handling import handled_at_of, is_handled
from dashboard.call_log import (
    BusinessProfile,
    CallDetails,
    CallFilter,
    CallListing,
    CallLog,
    LiveCall,
    Texting,
    TranscriptLine,
    UnansweredCall,
)
from dashboard.tables import metadata

if TYPE_CHECKING:
    from dashboard.audit_routes import AuditContext, audit_router
    from dashboard.owner_pages import page_environment
    from dashboard.owner_routes import SECURITY_HEADERS, OwnerContext, from_this_site, owner_router
    from dashboard.owner_sign_in import owner_sign_in_router
else:  # the web framework and templates load when the routes are first used
    __getattr__, _, _ = lazy_loader.attach(
        __name__,
        submod_attrs={
            "audit_routes": ["AuditContext", "audit_router"],
            "owner_pages": ["page_environment"],
            "owner_routes": ["SECURITY_HEADERS", "OwnerContext", "from_this_site", "owner_router"],
            "owner_sign_in": ["owner_sign_in_router"],
        },
    )

__all__ = [
    "AUDITOR_TOKENS",
    "OWNER_TOKENS",
    "SECURITY_HEADERS",
    "SETTING_LABELS",
    "AccessToken",
    "AttemptLimiter",
    "AuditContext",
    "AuditorToken",
    "BusinessProfile",
    "CallDetails",
    "CallFilter",
    "CallListing",
    "CallLog",
    "ConsentScriptText",
    "IssuedToken",
    "LiveCall",
    "OwnerContext",
    "OwnerSettings",
    "SettingsError",
    "SettingsStore",
    "Texting",
    "TokenError",
    "TokenStatus",
    "TokenStore",
    "TranscriptLine",
    "UnansweredCall",
    "audit_router",
    "authenticate",
    "from_this_site",
    "handled_at_of",
    "is_handled",
    "issue_token",
    "list_tokens",
    "metadata",
    "owner_router",
    "owner_sign_in_router",
    "page_environment",
    "revoke_token",
]
