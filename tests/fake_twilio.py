"""A fake of Twilio's Messaging REST API on 127.0.0.1, for the real ``twilio`` client.

It speaks the 2010-04-01 API as the SDK uses it: ``POST …/Messages.json`` (form fields ``To``,
``From``, ``Body``, ``StatusCallback``; HTTP Basic auth with the account SID and auth token)
answers 201 with a message resource, or an error document ``{"code", "message", "more_info",
"status"}``; ``GET …/Messages.json`` lists messages filtered by ``To``, ``From`` and
``DateSent>``. Tests script the answers to the next creates: an error, or holding the request until
released (a timeout). ``on_create`` runs after a message is stored and before the create is
answered — where Twilio may already call the message's StatusCallback — and
``status_callback_form`` is the form such a callback posts.
"""

from __future__ import annotations

import base64
import json
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
class FakeTwilioState:
    script: list[TwilioError | Hold] = field(default_factory=list)
    messages: list[StoredMessage] = field(default_factory=list)
    creates: int = 0
    on_create: Callable[[StoredMessage], None] | None = None
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


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

    def do_GET(self) -> None:
        if not self._authorised():
            return self._error(TwilioError(401, 20003, "Authenticate"))
        url = urlparse(self.path)
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
        return self._answer(
            200,
            {
                "messages": [_resource(m) for m in reversed(found)],
                "first_page_uri": url.path,
                "next_page_uri": None,
                "previous_page_uri": None,
                "page": 0,
                "page_size": int(query.get("PageSize", "50")),
                "start": 0,
                "end": max(len(found) - 1, 0),
                "uri": self.path,
            },
        )


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
