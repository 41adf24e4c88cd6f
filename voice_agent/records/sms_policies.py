"""Each business's texting policy, built from its profile, and the dispatcher's send rules."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection

from consent_ledger import owner_notifications_allowed
from sms_sender import SendRules, SmsPolicy
from voice_agent.records.businesses import Business, get_business


def sms_policy(business: Business) -> SmsPolicy:
    """The texting policy of ``business`` (PolicyError when its texts cannot be written)."""
    return SmsPolicy(
        business_id=business.id,
        business_name=business.name,
        time_zone=business.time_zone,
        help_contact=business.help_contact,
        max_texts=business.max_texts,
        send_window_start=business.sms_send_window_start,
        send_window_end=business.sms_send_window_end,
        no_reply_follow_up_after=_hours(business.no_reply_follow_up_hours),
        callback_check_after=_hours(business.callback_check_hours),
        excluded_numbers=frozenset(business.excluded_numbers),
        owner_number=business.owner_phone,
        state_caps=business.sms_state_caps,
        booking_url=business.booking_url,
    )


def _hours(hours: float | None) -> timedelta | None:
    return None if hours is None else timedelta(hours=hours)


def policy_for(conn: Connection, business_id: str) -> SmsPolicy | None:
    """The texting policy of the business ``business_id`` (None when there is none)."""
    business = get_business(conn, business_id)
    return None if business is None else sms_policy(business)


def send_rules() -> SendRules:
    """The dispatcher's rules: policies from the database, owner opt-ins from the ledger."""
    return SendRules(policies=policy_for, owner_opted_in=owner_notifications_allowed)
