"""What a call's wrap-up gives the owner beyond the stored records: a one-time link to the call
in the text summary, and the summary by e-mail when the business has an owner e-mail.

Built once by the services (``CallLinks`` under the public base URL; a mailer when SMTP is
configured) and handed to ``record_call``; without it a summary carries no link and no e-mail
goes out (tests and benches that need neither)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from dashboard.sign_in_links import CallLinks
from sms_sender import CallSummary
from voice_agent.call.summary_email import SummaryMailer, summary_email
from voice_agent.records.businesses import Business


@dataclass(frozen=True)
class OwnerNotices:
    links: CallLinks | None = None
    mailer: SummaryMailer | None = None

    def link(self, conn: Connection, business: Business, call_sid: str, at: datetime) -> str:
        """A new sign-in link to the call for the owner's phone; empty without links."""
        if self.links is None:
            return ""
        return self.links.issue(conn, business.id, business.owner_phone, call_sid, at)

    def wants_email(self, business: Business) -> bool:
        return self.mailer is not None and business.owner_email is not None

    def email(self, business: Business, summary: CallSummary) -> None:
        """E-mail ``summary`` to the owner, when there is a mailer and an address."""
        if self.mailer is not None and business.owner_email is not None:
            self.mailer.send_later(summary_email(business.owner_email, business.name, summary))
