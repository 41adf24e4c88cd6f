"""A fake of Twilio's Messaging REST API on 127.0.0.1, for the real ``twilio`` client.

It speaks the 2010-04-01 API as the SDK uses it: ``POST …/Messages.json`` (form fields ``To``,
``From``, ``Body``, ``StatusCallback``; HTTP Basic auth with the account SID and auth token)
answers 201 with a message resource, or an error document ``{"code", "message", "more_info",
"status"}``; ``GET …/Messages.json`` lists messages filtered by ``To``, ``From`` and
``DateSent>``; ``POST /v1/Services/{MessagingServiceSid}/Compliance/Usa2p`` (Messaging v1, the A2P
10DLC campaign, ``UsAppToPerson``: form fields ``BrandRegistrationSid``, ``Description``,
``MessageFlow``, repeated ``MessageSamples``, ``UsAppToPersonUsecase``, ``HasEmbeddedLinks``,
``HasEmbeddedPhone``, the optional opt-in/opt-out/help messages and repeated keywords, …) checks
the documented lengths and answers 201 with the campaign resource (sid ``QE…``,
``campaign_status`` ``PENDING``; ``state.campaigns`` keeps each form as posted);
``GET …/IncomingPhoneNumbers.json`` lists the account's numbers (``state.numbers``, which tests
fill with :meth:`FakeTwilioState.add_number`) filtered by ``PhoneNumber`` (digits, ``*`` any one
digit, matching part of the number, as Twilio's filter does), and ``POST
…/IncomingPhoneNumbers/{PN…}.json`` updates a number's voice, messaging and status-callback
fields (an empty value clears a field; a method must be ``GET`` or ``POST``; ``state.updates``
keeps each form as posted); ``GET /v1/Services`` and ``GET /v1/Services/{MG…}/PhoneNumbers`` list
the Messaging Services (:meth:`FakeTwilioState.add_service`) and their sender pools. Tests
script the answers to the next creates: an error, or holding the request until released (a timeout).
``on_create`` runs after a message is stored and before the create is answered — where Twilio may
already call the message's StatusCallback — and ``status_callback_form`` is the form such a
callback posts.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "fake-twilio-token"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
NUMBERS_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers.json"
NUMBER_PATH = re.compile(
    rf"^/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers/(?P<sid>PN[0-9a-fA-F]{{32}})\.json$"
)
USA2P_PATH = re.compile(r"^/v1/Services/(?P<service>MG[0-9a-fA-F]{32})/Compliance/Usa2p$")
MESSAGING_BASE = "https://messaging.twilio.com"
SERVICES_PATH = "/v1/Services"
SERVICE_NUMBERS_PATH = re.compile(r"^/v1/Services/(?P<service>MG[0-9a-fA-F]{32})/PhoneNumbers$")


@dataclass(frozen=True)
class TwilioError:
    """An error answer: HTTP ``status`` with Twilio ``code``."""

    status: int
    code: int
    message: str


@dataclass(frozen=True)
class Hold:
    """Hold the request until the server is released (the client times out)."""


@dataclass
class StoredMessage:
    sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    created: datetime


@dataclass
class StoredCampaign:
    """A created ``UsAppToPerson``: its sid, its messaging service and the form as posted
    (repeated fields as lists)."""

    sid: str
    messaging_service_sid: str
    form: dict[str, list[str]]
    created: datetime


NUMBER_FIELDS = {  # an IncomingPhoneNumber's updatable webhook fields: form name → resource key
    "VoiceUrl": "voice_url",
    "VoiceMethod": "voice_method",
    "VoiceFallbackUrl": "voice_fallback_url",
    "VoiceApplicationSid": "voice_application_sid",
    "SmsUrl": "sms_url",
    "SmsMethod": "sms_method",
    "SmsFallbackUrl": "sms_fallback_url",
    "SmsApplicationSid": "sms_application_sid",
    "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method",
    "TrunkSid": "trunk_sid",
    "FriendlyName": "friendly_name",
}
_METHOD_FIELDS = ("VoiceMethod", "SmsMethod", "StatusCallbackMethod")


@dataclass
class StoredNumber:
    """An IncomingPhoneNumber of the account: its sid, number and webhook fields (the resource's
    keys, as in ``NUMBER_FIELDS``)."""

    sid: str
    phone_number: str
    fields: dict[str, str | None]
    created: datetime


@dataclass
class StoredService:
    """A Messaging Service (Messaging v1): where it sends inbound texts — its
    ``inbound_request_url``, unless ``use_inbound_webhook_on_number`` defers to each number's
    own messaging URL — and the numbers in its sender pool."""

    sid: str
    friendly_name: str
    inbound_request_url: str | None
    use_inbound_webhook_on_number: bool
    numbers: list[StoredNumber]


@dataclass
class FakeTwilioState:
    script: list[TwilioError | Hold] = field(default_factory=list)
    messages: list[StoredMessage] = field(default_factory=list)
    campaigns: list[StoredCampaign] = field(default_factory=list)
    numbers: list[StoredNumber] = field(default_factory=list)
    updates: list[dict[str, str]] = field(default_factory=list)
    services: list[StoredService] = field(default_factory=list)
    creates: int = 0
    on_create: Callable[[StoredMessage], None] | None = None
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_service(
        self,
        friendly_name: str,
        numbers: list[StoredNumber],
        inbound_request_url: str | None = None,
        use_inbound_webhook_on_number: bool = False,
    ) -> StoredService:
        """A Messaging Service with ``numbers`` in its sender pool."""
        service = StoredService(
            "MG" + uuid.uuid4().hex,
            friendly_name,
            inbound_request_url,
            use_inbound_webhook_on_number,
            numbers,
        )
        with self.lock:
            self.services.append(service)
        return service

    def add_number(self, phone_number: str, **fields: str | None) -> StoredNumber:
        """Give the account ``phone_number`` (E.164), its webhook fields as a new number has
        them (``voice_method`` and the others POST, URLs empty) unless given."""
        unknown = set(fields) - set(NUMBER_FIELDS.values())
        if unknown:
            raise ValueError(f"not an IncomingPhoneNumber field: {sorted(unknown)}")
        defaults: dict[str, str | None] = dict.fromkeys(NUMBER_FIELDS.values())
        defaults.update(voice_method="POST", sms_method="POST", status_callback_method="POST")
        defaults.update(friendly_name=phone_number, voice_url="", sms_url="", status_callback="")
        number = StoredNumber(
            sid="PN" + uuid.uuid4().hex,
            phone_number=phone_number,
            fields={**defaults, **fields},
            created=datetime.now(UTC).replace(microsecond=0),
        )
        with self.lock:
            self.numbers.append(number)
        return number


def _resource(message: StoredMessage) -> dict[str, object]:
    stamp = format_datetime(message.created, usegmt=True)
    return {
        "account_sid": ACCOUNT_SID,
        "api_version": "2010-04-01",
        "body": message.body,
        "date_created": stamp,
        "date_sent": stamp,
        "date_updated": stamp,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": message.from_,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": "queued",
        "subresource_uris": {"media": f"{MESSAGES_PATH[:-5]}/{message.sid}/Media.json"},
        "to": message.to,
        "uri": f"{MESSAGES_PATH[:-5]}/{message.sid}.json",
    }


_USA2P_REQUIRED = (
    "BrandRegistrationSid",
    "Description",
    "MessageFlow",
    "MessageSamples",
    "UsAppToPersonUsecase",
    "HasEmbeddedLinks",
    "HasEmbeddedPhone",
)
_USA2P_LENGTHS = {  # the documented bounds of each text field, in characters
    "Description": (40, 4096),
    "MessageFlow": (40, 2048),
    "OptInMessage": (20, 320),
    "OptOutMessage": (20, 320),
    "HelpMessage": (20, 320),
}
_USA2P_KEYWORD_FIELDS = ("OptInKeywords", "OptOutKeywords", "HelpKeywords")
_USA2P_BOOLEANS = (
    "HasEmbeddedLinks",
    "HasEmbeddedPhone",
    "SubscriberOptIn",
    "AgeGated",
    "DirectLending",
)


USA2P_USECASES = frozenset(
    {
        "2FA",
        "ACCOUNT_NOTIFICATION",
        "CHARITY",
        "CUSTOMER_CARE",
        "DELIVERY_NOTIFICATION",
        "FRAUD_ALERT",
        "HIGHER_EDUCATION",
        "LOW_VOLUME",
        "MARKETING",
        "MIXED",
        "POLLING_VOTING",
        "PUBLIC_SERVICE_ANNOUNCEMENT",
        "SECURITY_ALERT",
    }
)
"""Standard-brand campaign use cases (Twilio lists a brand's own at ``…/Usa2p/Usecases``)."""


def _usa2p_problem(form: dict[str, list[str]]) -> TwilioError | None:
    """Why Twilio would refuse this campaign form (21727 a missing parameter, 21728 a length,
    21720 an unknown use case, 400 otherwise), or None."""
    for name in _USA2P_REQUIRED:
        if not form.get(name):
            return TwilioError(400, 21727, f"Missing required parameter {name} in the post body")
    if not re.fullmatch(r"BN[0-9a-fA-F]{32}", form["BrandRegistrationSid"][0]):
        return TwilioError(400, 20001, "BrandRegistrationSid must be a BN SID")
    if form["UsAppToPersonUsecase"][0] not in USA2P_USECASES:
        return TwilioError(400, 21720, "A2P Use Case is Invalid")
    for name, (low, high) in _USA2P_LENGTHS.items():
        if name in form and not low <= len(form[name][0]) <= high:
            return TwilioError(400, 21728, f"{name} must be {low} to {high} characters")
    samples = form["MessageSamples"]
    if not 2 <= len(samples) <= 5 or not all(20 <= len(s) <= 1024 for s in samples):
        return TwilioError(400, 21728, "MessageSamples: 2 to 5 samples of 20 to 1024 characters")
    for name in _USA2P_KEYWORD_FIELDS:
        words = form.get(name, [])
        if not all(word.isascii() and word.isalnum() for word in words):
            return TwilioError(400, 20001, f"{name} values must be alphanumeric")
        if len(",".join(words)) > 255:
            return TwilioError(400, 21728, f"{name} must be at most 255 characters")
    for name in _USA2P_BOOLEANS:
        if name in form and form[name][0] not in ("true", "false"):
            return TwilioError(400, 20001, f"{name} must be true or false")
    return None


def _campaign_resource(campaign: StoredCampaign) -> dict[str, object]:
    form = campaign.form

    def one(name: str) -> str | None:
        return form[name][0] if name in form else None

    def flag(name: str) -> bool:
        return one(name) == "true"

    stamp = campaign.created.strftime("%Y-%m-%dT%H:%M:%SZ")
    service = campaign.messaging_service_sid
    return {
        "sid": campaign.sid,
        "account_sid": ACCOUNT_SID,
        "brand_registration_sid": one("BrandRegistrationSid"),
        "messaging_service_sid": service,
        "description": one("Description"),
        "message_samples": form["MessageSamples"],
        "us_app_to_person_usecase": one("UsAppToPersonUsecase"),
        "has_embedded_links": flag("HasEmbeddedLinks"),
        "has_embedded_phone": flag("HasEmbeddedPhone"),
        "subscriber_opt_in": flag("SubscriberOptIn"),
        "age_gated": flag("AgeGated"),
        "direct_lending": flag("DirectLending"),
        "campaign_status": "PENDING",
        "campaign_id": None,
        "is_externally_registered": False,
        "rate_limits": {},
        "message_flow": one("MessageFlow"),
        "opt_in_message": one("OptInMessage"),
        "opt_out_message": one("OptOutMessage"),
        "help_message": one("HelpMessage"),
        "opt_in_keywords": form.get("OptInKeywords", []),
        "opt_out_keywords": form.get("OptOutKeywords", []),
        "help_keywords": form.get("HelpKeywords", []),
        "privacy_policy_url": one("PrivacyPolicyUrl"),
        "terms_and_conditions_url": one("TermsAndConditionsUrl"),
        "date_created": stamp,
        "date_updated": stamp,
        "url": f"{MESSAGING_BASE}/v1/Services/{service}/Compliance/Usa2p/{campaign.sid}",
        "mock": False,
        "errors": [],
    }


def _number_resource(number: StoredNumber) -> dict[str, object]:
    stamp = format_datetime(number.created, usegmt=True)
    uri = f"{NUMBERS_PATH[:-5]}/{number.sid}.json"
    return {
        "account_sid": ACCOUNT_SID,
        "address_requirements": "none",
        "address_sid": None,
        "api_version": "2010-04-01",
        "beta": False,
        "bundle_sid": None,
        "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
        "date_created": stamp,
        "date_updated": stamp,
        "emergency_address_sid": None,
        "emergency_address_status": "unregistered",
        "emergency_status": "Inactive",
        "identity_sid": None,
        "origin": "twilio",
        "phone_number": number.phone_number,
        "sid": number.sid,
        "sms_fallback_method": "POST",
        "status": "in-use",
        "subresource_uris": {"assigned_add_ons": uri[:-5] + "/AssignedAddOns.json"},
        "type": "local",
        "uri": uri,
        "voice_caller_id_lookup": False,
        "voice_fallback_method": "POST",
        "voice_receive_mode": "voice",
        **number.fields,
    }


def _service_resource(service: StoredService) -> dict[str, object]:
    url = f"{MESSAGING_BASE}{SERVICES_PATH}/{service.sid}"
    return {
        "sid": service.sid,
        "account_sid": ACCOUNT_SID,
        "friendly_name": service.friendly_name,
        "inbound_request_url": service.inbound_request_url,
        "inbound_method": "POST",
        "fallback_url": None,
        "fallback_method": "POST",
        "status_callback": None,
        "sticky_sender": True,
        "mms_converter": True,
        "smart_encoding": True,
        "scan_message_content": "inherit",
        "fallback_to_long_code": True,
        "area_code_geomatch": True,
        "synchronous_validation": False,
        "validity_period": 14400,
        "url": url,
        "links": {"phone_numbers": f"{url}/PhoneNumbers"},
        "usecase": "undeclared",
        "us_app_to_person_registered": False,
        "use_inbound_webhook_on_number": service.use_inbound_webhook_on_number,
    }


def _service_number_resource(service: StoredService, number: StoredNumber) -> dict[str, object]:
    stamp = number.created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "sid": number.sid,
        "account_sid": ACCOUNT_SID,
        "service_sid": service.sid,
        "date_created": stamp,
        "date_updated": stamp,
        "phone_number": number.phone_number,
        "country_code": "US",
        "capabilities": ["SMS", "MMS", "Voice"],
        "url": f"{MESSAGING_BASE}{SERVICES_PATH}/{service.sid}/PhoneNumbers/{number.sid}",
    }


def _number_matches(number: StoredNumber, pattern: str | None) -> bool:
    """Twilio's ``PhoneNumber`` filter: part of the number, ``*`` standing for any one digit."""
    if pattern is None:
        return True
    wanted = "".join(c for c in pattern if c.isdigit() or c == "*")
    regex = "".join(r"\d" if c == "*" else c for c in wanted)
    return re.search(regex, re.sub(r"\D", "", number.phone_number)) is not None


def status_callback_form(
    message: StoredMessage, status: str, error_code: int | None = None
) -> dict[str, str]:
    """The form Twilio posts to a message's StatusCallback when its status becomes ``status``."""
    form = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": message.from_,
        "MessageSid": message.sid,
        "MessageStatus": status,
        "SmsSid": message.sid,
        "SmsStatus": status,
        "To": message.to,
    }
    if error_code is not None:
        form["ErrorCode"] = str(error_code)
    return form


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def _authorised(self) -> bool:
        expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        return self.headers.get("Authorization") == f"Basic {expected}"

    def _answer(self, status: int, document: dict[str, object]) -> None:
        payload = json.dumps(document).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up waiting (a timeout); Twilio does not mind either

    def _error(self, error: TwilioError) -> None:
        self._answer(
            error.status,
            {
                "code": error.code,
                "message": error.message,
                "more_info": f"https://www.twilio.com/docs/errors/{error.code}",
                "status": error.status,
            },
        )

    def do_POST(self) -> None:
        if not self._authorised():
            return self._error(TwilioError(401, 20003, "Authenticate"))
        campaign_path = USA2P_PATH.match(urlparse(self.path).path)
        if campaign_path is not None:
            return self._create_campaign(campaign_path.group("service"))
        number_path = NUMBER_PATH.match(urlparse(self.path).path)
        if number_path is not None:
            return self._update_number(number_path.group("sid"))
        if urlparse(self.path).path != MESSAGES_PATH:
            return self._error(TwilioError(404, 20404, "The requested resource was not found"))
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        state = self.server.state
        with state.lock:
            state.creates += 1
            scripted = state.script.pop(0) if state.script else None
        if isinstance(scripted, Hold):
            state.release.wait(timeout=10)
            return None
        if isinstance(scripted, TwilioError):
            return self._error(scripted)
        if not {"To", "From", "Body"} <= set(form):
            return self._error(TwilioError(400, 21604, "A 'To' phone number is required."))
        message = StoredMessage(
            sid="SM" + uuid.uuid4().hex,
            to=form["To"],
            from_=form["From"],
            body=form["Body"],
            status_callback=form.get("StatusCallback"),
            created=datetime.now(UTC).replace(microsecond=0),
        )
        with state.lock:
            state.messages.append(message)
        if state.on_create is not None:
            state.on_create(message)
        return self._answer(201, _resource(message))

    def _create_campaign(self, service: str) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
        state = self.server.state
        with state.lock:
            state.creates += 1
            scripted = state.script.pop(0) if state.script else None
        if isinstance(scripted, Hold):
            state.release.wait(timeout=10)
            return None
        if isinstance(scripted, TwilioError):
            return self._error(scripted)
        problem = _usa2p_problem(form)
        if problem is not None:
            return self._error(problem)
        campaign = StoredCampaign(
            sid="QE" + uuid.uuid4().hex,
            messaging_service_sid=service,
            form=form,
            created=datetime.now(UTC).replace(microsecond=0),
        )
        with state.lock:
            state.campaigns.append(campaign)
        return self._answer(201, _campaign_resource(campaign))

    def _update_number(self, sid: str) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = {
            k: v[0]
            for k, v in parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items()
        }
        state = self.server.state
        with state.lock:
            state.updates.append(form)
            scripted = state.script.pop(0) if state.script else None
            number = next((n for n in state.numbers if n.sid == sid), None)
        if isinstance(scripted, TwilioError):
            return self._error(scripted)
        if number is None:
            return self._error(TwilioError(404, 20404, "The requested resource was not found"))
        for name in _METHOD_FIELDS:
            if name in form and form[name].upper() not in ("GET", "POST"):
                return self._error(TwilioError(400, 21607, f"{name} must be GET or POST"))
        with state.lock:
            for name, key in NUMBER_FIELDS.items():
                if name in form:
                    value = form[name]
                    number.fields[key] = value.upper() if name in _METHOD_FIELDS else value
                    if name.endswith("Sid") and not value:
                        number.fields[key] = None
            resource = _number_resource(number)
        return self._answer(200, resource)

    def _list_numbers(self, query: dict[str, str]) -> None:
        with self.server.state.lock:
            found = [
                _number_resource(n)
                for n in self.server.state.numbers
                if _number_matches(n, query.get("PhoneNumber"))
            ]
        return self._page("incoming_phone_numbers", found, query)

    def _page(self, key: str, found: list[dict[str, object]], query: dict[str, str]) -> None:
        """One page of a list resource holding all of ``found`` under ``key``."""
        return self._answer(
            200,
            {
                key: found,
                "first_page_uri": urlparse(self.path).path,
                "next_page_uri": None,
                "previous_page_uri": None,
                "page": 0,
                "page_size": int(query.get("PageSize", "50")),
                "start": 0,
                "end": max(len(found) - 1, 0),
                "uri": self.path,
            },
        )

    def _v1_page(self, key: str, found: list[dict[str, object]]) -> None:
        """One page of a v1 list resource (paging under ``meta``), holding all of ``found``."""
        url = MESSAGING_BASE + self.path
        meta = {"page": 0, "page_size": 50, "first_page_url": url, "previous_page_url": None}
        meta |= {"url": url, "next_page_url": None, "key": key}
        return self._answer(200, {key: found, "meta": meta})

    def _list_services(self) -> None:
        with self.server.state.lock:
            found = [_service_resource(s) for s in self.server.state.services]
        return self._v1_page("services", found)

    def _list_service_numbers(self, sid: str) -> None:
        """A Messaging Service's sender pool."""
        with self.server.state.lock:
            service = next((s for s in self.server.state.services if s.sid == sid), None)
        if service is None:
            return self._error(TwilioError(404, 20404, "The requested resource was not found"))
        numbers = [_service_number_resource(service, n) for n in service.numbers]
        return self._v1_page("phone_numbers", numbers)

    def do_GET(self) -> None:
        if not self._authorised():
            return self._error(TwilioError(401, 20003, "Authenticate"))
        url = urlparse(self.path)
        if url.path == SERVICES_PATH:
            return self._list_services()
        pool = SERVICE_NUMBERS_PATH.match(url.path)
        if pool is not None:
            return self._list_service_numbers(pool.group("service"))
        if url.path == NUMBERS_PATH:
            return self._list_numbers({k: v[0] for k, v in parse_qs(url.query).items()})
        if url.path != MESSAGES_PATH:
            return self._error(TwilioError(404, 20404, "The requested resource was not found"))
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        after = query.get("DateSent>")
        since = datetime.fromisoformat(after.replace("Z", "+00:00")) if after else None
        with self.server.state.lock:
            found = [
                m
                for m in self.server.state.messages
                if m.to == query.get("To", m.to)
                and m.from_ == query.get("From", m.from_)
                and (since is None or m.created >= since)
            ]
        return self._page("messages", [_resource(m) for m in reversed(found)], query)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: FakeTwilioState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@dataclass
class FakeTwilio:
    """A running fake: its ``base_url`` and the state tests script and inspect."""

    base_url: str
    state: FakeTwilioState


@contextmanager
def fake_twilio() -> Iterator[FakeTwilio]:
    """Run the fake on an ephemeral port for the duration of the block."""
    state = FakeTwilioState()
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield FakeTwilio(f"http://127.0.0.1:{server.server_address[1]}", state)
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
