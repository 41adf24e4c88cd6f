"""The text that carries a one-time sign-in code to a business's owner or staff phone.

It is queued in the outbox like every text (``sign-in-<code id>`` is its reference, so it is
queued once per code) and sent by the dispatcher while the code still works
(``send_rules.SIGN_IN_CODE_LIFETIME``). The business's own texts pages never list it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from sms_sender.outbox import OutboxKind, OutboxMessage, PlannedText, queue_text
from sms_sender.templates import TemplateName, shipped_template


@dataclass(frozen=True)
class SignInCodeText:
    """A code to text: from the business's number to the phone that asked for it."""

    code_id: int
    code: str
    business_id: str
    business_name: str
    to_number: str
    from_number: str


def queue_sign_in_code(conn: Connection, text: SignInCodeText, asked_at: datetime) -> OutboxMessage:
    """Queue the text carrying ``text.code``, due at once."""
    body = shipped_template(TemplateName.SIGN_IN_CODE).render(
        business_name=text.business_name, code=text.code
    )
    return queue_text(
        conn,
        PlannedText(
            business_id=text.business_id,
            reference=f"sign-in-{text.code_id}",
            to_number=text.to_number,
            from_number=text.from_number,
            kind=OutboxKind.SIGN_IN_CODE,
            body=body,
            consent_event_hash="",
            due_at=asked_at,
        ),
    )
