"""Phone numbers in E.164, parsed with ``phonenumbers`` (US by default)."""

from __future__ import annotations

import phonenumbers


class InvalidPhoneNumber(ValueError):
    """A value that is not a valid phone number."""


def to_e164(raw: str, region: str = "US") -> str:
    """``raw`` as E.164 (``+15125550100``), or InvalidPhoneNumber saying why not."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 40:
        raise InvalidPhoneNumber(f"not a phone number: {raw!r}")
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhoneNumber(f"not a phone number: {raw!r} ({error})") from None
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhoneNumber(f"not a possible phone number: {raw!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
