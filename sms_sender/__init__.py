"""Follow-up texts: plans, the transactional outbox, transports, dispatch, inbound replies."""

from typing import TYPE_CHECKING

import lazy_loader

from sms_sender.advisory_lock import lock_number
from sms_sender.delivery import DeliveryReport, DeliveryUpdate, record_delivery
from sms_sender.dispatch import DispatchReport, dispatch_due, recover_stale_claims
from sms_sender.dispatcher_loop import TextDispatcher
from sms_sender.inbound import (
    HeldDecision,
    HeldReply,
    InboundError,
    InboundOutcome,
    InboundSms,
    decide_held_reply,
    handle_inbound,
    held_replies,
    open_hold,
    opted_out_by_text,
)
from sms_sender.keywords import (
    CONDITIONAL_OPT_IN_KEYWORDS,
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    ReplyIntent,
    classify_reply,
)
from sms_sender.local_transport import LocalSmsTransport, last_four
from sms_sender.outbox import (
    FOLLOW_UP_KINDS,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    PlannedText,
    cancel_message,
    cancel_pending,
    count_sent,
    get_message,
    list_outbox,
    queue_confirmation,
    queue_text,
)
from sms_sender.outbox_notices import announce_texts_queued
from sms_sender.owner import (
    SIGN_IN_LINK_PATH,
    CallSummary,
    hide_sign_in_links,
    owner_summary_text,
    queue_owner_summary,
)
from sms_sender.owner_choice import (
    record_notification_choice,
    record_owner_choice,
    record_setup_choice,
)
from sms_sender.owner_reply import (
    CONVERSATION_WINDOW,
    MAX_REPLY_LENGTH,
    ReplyRefusal,
    queue_owner_reply,
    reply_refusal,
)
from sms_sender.plan import TextPlan, plan_texts
from sms_sender.policy import PolicyError, SmsPolicy
from sms_sender.segments import segment_count
from sms_sender.send_rules import SIGN_IN_CODE_LIFETIME, SendRules
from sms_sender.sign_in_code import SignInCodeText, queue_sign_in_code
from sms_sender.tables import metadata
from sms_sender.templates import (
    ConfirmationRequest,
    ConfirmationTerms,
    TemplateName,
    booking_link,
    render_confirmation,
    sample,
    text_count,
)
from sms_sender.text_history import (
    Conversation,
    TextRecord,
    conversations,
    count_conversations,
    count_texts_with_number,
    texts_sent_for_calls,
    texts_under_consents,
    texts_with_number,
)
from sms_sender.thread import Direction, ThreadEntry, conversation_thread
from sms_sender.transport import OutgoingSms, SendFailed, SendReceipt, SmsTransport

if TYPE_CHECKING:
    from sms_sender.twilio_transport import OUTBOX_ID_PARAMETER, TwilioSmsTransport
else:  # the Twilio SDK loads when the Twilio transport is first used
    __getattr__, _, _ = lazy_loader.attach(
        __name__,
        submod_attrs={
            "twilio_transport": ["OUTBOX_ID_PARAMETER", "TwilioSmsTransport"],
        },
    )

__all__ = [
    "CONDITIONAL_OPT_IN_KEYWORDS",
    "CONVERSATION_WINDOW",
    "FOLLOW_UP_KINDS",
    "HELP_KEYWORDS",
    "MAX_REPLY_LENGTH",
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "OUTBOX_ID_PARAMETER",
    "SIGN_IN_CODE_LIFETIME",
    "SIGN_IN_LINK_PATH",
    "CallSummary",
    "ConfirmationRequest",
    "ConfirmationTerms",
    "Conversation",
    "DeliveryReport",
    "DeliveryUpdate",
    "Direction",
    "DispatchReport",
    "HeldDecision",
    "HeldReply",
    "InboundError",
    "InboundOutcome",
    "InboundSms",
    "LocalSmsTransport",
    "OutboxKind",
    "OutboxMessage",
    "OutboxStatus",
    "OutgoingSms",
    "PlannedText",
    "PolicyError",
    "ReplyIntent",
    "ReplyRefusal",
    "SendFailed",
    "SendReceipt",
    "SendRules",
    "SignInCodeText",
    "SmsPolicy",
    "SmsTransport",
    "TemplateName",
    "TextDispatcher",
    "TextPlan",
    "TextRecord",
    "ThreadEntry",
    "TwilioSmsTransport",
    "announce_texts_queued",
    "booking_link",
    "cancel_message",
    "cancel_pending",
    "classify_reply",
    "conversation_thread",
    "conversations",
    "count_conversations",
    "count_sent",
    "count_texts_with_number",
    "decide_held_reply",
    "dispatch_due",
    "get_message",
    "handle_inbound",
    "held_replies",
    "hide_sign_in_links",
    "last_four",
    "list_outbox",
    "lock_number",
    "metadata",
    "open_hold",
    "opted_out_by_text",
    "owner_summary_text",
    "plan_texts",
    "queue_confirmation",
    "queue_owner_reply",
    "queue_owner_summary",
    "queue_sign_in_code",
    "queue_text",
    "record_delivery",
    "record_notification_choice",
    "record_owner_choice",
    "record_setup_choice",
    "recover_stale_claims",
    "render_confirmation",
    "reply_refusal",
    "sample",
    "segment_count",
    "text_count",
    "texts_sent_for_calls",
    "texts_under_consents",
    "texts_with_number",
]
