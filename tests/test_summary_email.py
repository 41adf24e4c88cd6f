"""The owner's call summary by e-mail: built with the standard library, sent with ``smtplib`` on
a thread of its own, received by a real SMTP server (``aiosmtpd``) on loopback.

A call stored through the wrap-up e-mails the business's ``owner_email`` (Bright Spark has one
in the fixtures), subject with the emergency first, body with a sign-in link of its own to the
call; a login is sent when a user and password are set; a mail server that is down costs the
e-mail only, never the call.
"""

from __future__ import annotations

import dataclasses
import email
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr
from sqlalchemy import Engine, select

from bench.faults import ended_call
from consent_ledger import AudioStore
from dashboard.sign_in_links import CallLinks
from dashboard.tables import sign_in_links
from tests.conftest import PUBLIC_BASE_URL, ROOT
from voice_agent.call.journal_entry import store_call
from voice_agent.call.owner_notices import OwnerNotices
from voice_agent.call.summary_email import SmtpServer, SummaryMailer
from voice_agent.chat.port import CallerMessage, Urgency
from voice_agent.records.businesses import import_businesses, load_businesses
from voice_agent.records.calls import get_call
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade
from voice_agent.web.local_server import free_port

ENDED_AT = datetime(2026, 3, 2, 15, 4, tzinfo=UTC)
SPARK = {b.id: b for b in load_businesses(ROOT / "fixtures" / "businesses.yaml")}[
    "bright-spark-electric"
]
SENDER = "receptionist@brightspark.example"


@dataclass
class Inbox:
    """What the SMTP server received, and who logged in."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(email.message_from_bytes(envelope.content, policy=default))
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def authenticate(self, *args: Any) -> AuthResult:
        *_, auth_data = args
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password == b"s3cret")


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    received = Inbox()
    port = free_port()
    controller = Controller(
        received,
        hostname="127.0.0.1",
        port=port,
        authenticator=received.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield received, port
    finally:
        controller.stop()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'email.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml", ENDED_AT)
    yield engine
    engine.dispose()


def _store_emergency(engine: Engine, tmp_path: Path, server: SmtpServer) -> str:
    call_sid = "CA" + "f" * 32
    call = ended_call(call_sid, business=SPARK, caller="+13035550111", ended_at=ENDED_AT)
    message = CallerMessage(
        caller_name="Lee Park",
        need="sparks coming from the panel",
        callback_number="+13035550112",
        urgency=Urgency.EMERGENCY,
    )
    call = dataclasses.replace(call, outcome=dataclasses.replace(call.outcome, message=message))
    mailer = SummaryMailer(server)
    try:
        notices = OwnerNotices(CallLinks(PUBLIC_BASE_URL), mailer)
        store_call(engine, AudioStore(tmp_path / "audio"), call, notices)
    finally:
        mailer.close()  # waits for the e-mail to be handed over
    return call_sid


def test_an_emergency_summary_is_emailed_to_the_owner(
    inbox: tuple[Inbox, int], engine: Engine, tmp_path: Path
) -> None:
    received, port = inbox
    server = SmtpServer("127.0.0.1", port, SENDER, starttls=False)

    call_sid = _store_emergency(engine, tmp_path, server)

    (message,) = received.messages
    assert received.envelopes == [(SENDER, ["owner@brightspark.example"])]
    assert message["Subject"].strip() == (  # folded onto its own line by Python's folder
        "EMERGENCY: Bright Spark Electric: missed call from Lee Park (+13035550111)"
    )
    assert (message["From"], message["To"]) == (SENDER, "owner@brightspark.example")
    body = message.get_content()
    assert "What they need: sparks coming from the panel" in body
    assert "Call back: +13035550112" in body
    link = re.search(rf"{re.escape(PUBLIC_BASE_URL)}/owner/l/([A-Za-z0-9_-]+)", body)
    assert link is not None, body
    with engine.connect() as conn:
        links = conn.execute(select(sign_in_links.c.call_sid, sign_in_links.c.phone_number)).all()
        assert get_call(conn, call_sid) is not None
    # one link for the text, one for the e-mail: each works once, for the owner's phone
    assert [tuple(row) for row in links] == [(call_sid, SPARK.owner_phone)] * 2
    assert received.logins == []


def test_the_mailer_logs_in_when_told_to(
    inbox: tuple[Inbox, int], engine: Engine, tmp_path: Path
) -> None:
    received, port = inbox
    server = SmtpServer(
        "127.0.0.1",
        port,
        SENDER,
        starttls=False,
        user=SecretStr("receptionist"),
        password=SecretStr("s3cret"),
    )
    _store_emergency(engine, tmp_path, server)
    assert received.logins == [("receptionist", "s3cret")]
    assert len(received.messages) == 1


def test_a_mail_server_that_is_down_costs_only_the_email(engine: Engine, tmp_path: Path) -> None:
    server = SmtpServer("127.0.0.1", free_port(), SENDER, starttls=False, timeout=2.0)
    call_sid = _store_emergency(engine, tmp_path, server)
    with engine.connect() as conn:
        assert get_call(conn, call_sid) is not None
