"""The owner's call summary by e-mail, for owners who set an address (``owner_email`` in the
business file) on a deployment with an SMTP server (``SMTP_HOST`` and friends).

The message is built with the standard library's ``email`` package and sent with ``smtplib``
(STARTTLS and login when configured), on a thread of its own, so that neither the event loop that
carries live calls nor the journal's applier ever waits for a mail server. A failed send is
logged and not retried: the text summary and the dashboard still hold the call.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from pydantic import SecretStr

from sms_sender import CallSummary

logger = logging.getLogger(__name__)

NO_NAME = "an unnamed caller"


@dataclass(frozen=True)
class SmtpServer:
    """Where and how summaries are sent."""

    host: str
    port: int
    sender: str
    starttls: bool = True
    user: SecretStr | None = None
    password: SecretStr | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class SummaryEmail:
    """One summary e-mail, ready to send."""

    to: str
    subject: str
    body: str


def summary_email(to: str, business_name: str, summary: CallSummary) -> SummaryEmail:
    """The e-mail for ``summary``'s call: the subject says an emergency first."""
    caller = summary.caller_name or NO_NAME
    subject = f"{business_name}: missed call from {caller} ({summary.caller_number})"
    if summary.urgency == "emergency":
        subject = f"EMERGENCY: {subject}"
    lines = [
        f"{business_name} missed a call from {caller}, {summary.caller_number}.",
        "",
        f"What they need: {summary.need or 'nothing said about the job'}",
        f"Urgency: {summary.urgency or 'not given'}",
        f"Call back: {summary.callback_number or summary.caller_number}",
    ]
    if summary.sign_in_link:
        lines += ["", f"Open the call (signs you in): {summary.sign_in_link}"]
    return SummaryEmail(to, subject, "\n".join(lines) + "\n")


def send_email(server: SmtpServer, email: SummaryEmail) -> None:
    """Hand ``email`` to ``server``; raises ``smtplib.SMTPException`` or ``OSError`` on failure."""
    message = EmailMessage()
    message["From"] = server.sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Message-ID"] = make_msgid(domain=server.sender.rpartition("@")[2] or None)
    message.set_content(email.body)
    with smtplib.SMTP(server.host, server.port, timeout=server.timeout) as smtp:
        if server.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if server.user is not None and server.password is not None:
            smtp.login(server.user.get_secret_value(), server.password.get_secret_value())
        smtp.send_message(message)


class SummaryMailer:
    """Sends summary e-mails one at a time on a thread of its own."""

    def __init__(self, server: SmtpServer) -> None:
        self._server = server
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="summary-email")

    def send_later(self, email: SummaryEmail) -> Future[bool]:
        """Send ``email`` soon; the future says whether the server took it."""
        return self._sender.submit(self._send, email)

    def close(self) -> None:
        """Send what is waiting, then stop."""
        self._sender.shutdown(wait=True)

    def _send(self, email: SummaryEmail) -> bool:
        try:
            send_email(self._server, email)
        except (smtplib.SMTPException, OSError) as error:
            logger.error("summary e-mail not sent: %s", type(error).__name__)
            return False
        logger.info("summary e-mail sent")
        return True
