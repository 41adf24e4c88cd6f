"""Follow-up texts: the confirmation template, the transactional outbox, transports, dispatch."""

from sms_sender.dispatch import DispatchReport, dispatch_due
from sms_sender.local_transport import LocalSmsTransport
from sms_sender.outbox import (
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    cancel_pending,
    count_sent,
    list_outbox,
    queue_confirmation,
)
from sms_sender.segments import segment_count
from sms_sender.tables import metadata
from sms_sender.templates import ConfirmationRequest, render_confirmation
from sms_sender.transport import OutgoingSms, SendFailed, SendReceipt, SmsTransport

__all__ = [
    "ConfirmationRequest",
    "DispatchReport",
    "LocalSmsTransport",
    "OutboxKind",
    "OutboxMessage",
    "OutboxStatus",
    "OutgoingSms",
    "SendFailed",
    "SendReceipt",
    "SmsTransport",
    "cancel_pending",
    "count_sent",
    "dispatch_due",
    "list_outbox",
    "metadata",
    "queue_confirmation",
    "render_confirmation",
    "segment_count",
]
