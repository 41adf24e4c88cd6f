"""What a business's Twilio number must be set to for calls and texts to reach this deployment:
its voice URL, messaging URL and call status callback (each POSTed to, under
``PUBLIC_BASE_URL``, which is also the URL Twilio signs), and no TwiML App in the way (a number's
voice or messaging application overrides its URLs). :func:`differences` compares that with what
a number has; :func:`messaging_service_problem` whether the Messaging Service a number sends
from (as every A2P 10DLC number does) lets its inbound texts reach the number's messaging URL."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from voice_agent.web.sms_webhooks import INBOUND_PATH
from voice_agent.web.voice_webhooks import CALL_STATUS_PATH, VOICE_PATH

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


@dataclass(frozen=True)
class NumberSetting:
    """One field of Twilio's IncomingPhoneNumber: ``attribute`` is the SDK's name (for reading
    the resource and for ``update``), ``expected`` its value for us ("" for none)."""

    label: str
    attribute: str
    expected: str


@dataclass(frozen=True)
class Difference:
    """A field whose value on Twilio (``current``; "" for none) is not ``expected``."""

    setting: NumberSetting
    current: str


def expected_settings(public_base_url: str) -> tuple[NumberSetting, ...]:
    """Every field a number of ours must have, for the deployment at ``public_base_url``."""
    base = public_base_url.rstrip("/")
    return (
        NumberSetting("voice URL", "voice_url", base + VOICE_PATH),
        NumberSetting("voice method", "voice_method", "POST"),
        NumberSetting("voice application", "voice_application_sid", ""),
        NumberSetting("messaging URL", "sms_url", base + INBOUND_PATH),
        NumberSetting("messaging method", "sms_method", "POST"),
        NumberSetting("messaging application", "sms_application_sid", ""),
        NumberSetting("call status callback", "status_callback", base + CALL_STATUS_PATH),
        NumberSetting("call status callback method", "status_callback_method", "POST"),
    )


def differences(number: object, public_base_url: str) -> list[Difference]:
    """The fields of ``number`` (the SDK's IncomingPhoneNumber: its attributes, None for none)
    whose value differs from ours."""
    found: list[Difference] = []
    for setting in expected_settings(public_base_url):
        value = getattr(number, setting.attribute, None)
        shown = "" if value is None else str(value)
        if shown != setting.expected:
            found.append(Difference(setting, shown))
    return found


def messaging_service_problem(service: object, public_base_url: str) -> str | None:
    """Why the Messaging Service ``service`` (the SDK's: ``friendly_name``, ``sid``,
    ``use_inbound_webhook_on_number``, ``inbound_request_url``) keeps a number's inbound texts
    from this deployment, or None. A service sends them to its own request URL unless it defers
    to the sender's (the number's) webhook."""
    if getattr(service, "use_inbound_webhook_on_number", False):
        return None
    expected = public_base_url.rstrip("/") + INBOUND_PATH
    current = getattr(service, "inbound_request_url", None) or ""
    if current == expected:
        return None
    name = f"{getattr(service, 'friendly_name', '')} ({getattr(service, 'sid', '')})"
    return (
        f"its Messaging Service {name} sends inbound texts to {current or '(nowhere)'}, "
        "not to the number's messaging URL"
    )


def messaging_service_fix(public_base_url: str) -> str:
    return (
        "in the Console, set the Messaging Service's Integration to 'Defer to sender's webhook', "
        f"or its request URL to {public_base_url.rstrip('/') + INBOUND_PATH}"
    )


def public_url_problem(public_base_url: str) -> str | None:
    """Why Twilio could not reach (or would not sign) webhooks under this URL, or None."""
    parts = urlsplit(public_base_url)
    if parts.scheme != "https":
        return f"PUBLIC_BASE_URL is {public_base_url}: Twilio needs an https:// URL"
    host = parts.hostname or ""
    if host in LOOPBACK_HOSTS:
        return f"PUBLIC_BASE_URL is {public_base_url}: Twilio cannot reach this machine's loopback"
    if "." not in host:
        return f"PUBLIC_BASE_URL is {public_base_url}: it names no public host"
    if parts.query or parts.fragment or parts.username or parts.password:
        return f"PUBLIC_BASE_URL is {public_base_url}: give only https://host[:port][/path]"
    return None
