"""Twilio's status callbacks through the signed webhook, on a migrated database: each text's
callback URL names its outbox row, a callback that comes before the send is committed is not
lost, malformed callbacks get a 400, and callbacks that name no text of ours, or the wrong one,
change nothing. The webhook journals each callback and answers; :meth:`Callbacks.post` then
applies the journal (as the server's applier does at once).

Texts go through the real ``twilio`` client to the fake Twilio REST server; the callbacks are the
forms Twilio posts, signed over the full callback URL (query included).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from twilio.request_validator import RequestValidator

from consent_ledger import EventKind, events_for_number
from consent_ledger.tables import consent_events
from sms_sender.dispatch import OPT_OUT_PENDING, dispatch_due, retry_delay
from sms_sender.outbox import (
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    PlannedText,
    list_outbox,
    queue_text,
)
from sms_sender.tables import early_delivery_reports, outbox
from sms_sender.twilio_transport import TwilioSmsTransport
from tests.conftest import BACKENDS, PUBLIC_BASE_URL, ROOT, fresh_database
from tests.fake_twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FakeTwilio,
    StoredMessage,
    fake_twilio,
    status_callback_form,
)
from tests.sms_support import CALLER, NOW, WebhookServices, grant, queue
from voice_agent.records.businesses import import_businesses
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade
from voice_agent.records.sms_policies import send_rules
from voice_agent.signatures import TwilioSignatures
from voice_agent.web.sms_webhooks import router

STATUS_PATH = "/twilio/sms/status"
CALLBACK_URL = PUBLIC_BASE_URL + STATUS_PATH
OTHER_CALLER = "+13035550177"


@dataclass
class Callbacks:
    """A migrated database, the status webhook over it, and the Twilio transport to the fake."""

    engine: Engine
    client: TestClient
    fake: FakeTwilio
    transport: TwilioSmsTransport
    application_name: str
    services: WebhookServices

    def send_due(self, at: datetime = NOW) -> None:
        dispatch_due(self.engine, self.transport, at, rules=send_rules())

    def post(
        self,
        callback_url: str,
        form: dict[str, str],
        signed_url: str | None = None,
        *,
        apply: bool = True,
    ) -> int:
        """Post ``form`` to ``callback_url`` as Twilio would, signed over ``signed_url`` (by
        default the URL itself), and (unless ``apply`` is false) apply what was journaled; the
        HTTP status."""
        signature = RequestValidator(AUTH_TOKEN).compute_signature(signed_url or callback_url, form)
        target = callback_url.removeprefix(PUBLIC_BASE_URL)
        response = self.client.post(target, data=form, headers={"X-Twilio-Signature": signature})
        if apply:
            self.services.settle()
        return response.status_code


@pytest.fixture(params=BACKENDS)
def callbacks(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callbacks]:
    application_name = f"status_callbacks_{request.node.name}"[:60]
    with fresh_database(request.param, tmp_path, "status_callbacks") as url:
        upgrade(url)
        if request.param == "postgresql":
            query = {**make_url(url).query, "application_name": application_name}
            url = make_url(url).set(query=query).render_as_string(hide_password=False)
        engine = make_engine(url)
        with engine.begin() as conn:
            import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
        app = FastAPI()
        app.include_router(router)
        services = WebhookServices(
            engine,
            tmp_path,
            signatures=TwilioSignatures(AUTH_TOKEN, PUBLIC_BASE_URL),
            apply_at_once=False,
        )
        app.state.services = services
        with fake_twilio() as fake, TestClient(app) as client:
            transport = TwilioSmsTransport(
                ACCOUNT_SID,
                AUTH_TOKEN,
                CALLBACK_URL,
                timeout_seconds=0.3,
                api_base_url=fake.base_url,
            )
            yield Callbacks(engine, client, fake, transport, application_name, services)
        engine.dispose()


def the_text(callbacks: Callbacks, call_sid: str = "CA0001") -> OutboxMessage:
    with callbacks.engine.begin() as conn:
        [message] = list_outbox(conn, call_sid=call_sid)
    return message


def snapshot(engine: Engine) -> tuple[list[Any], list[Any], int]:
    """Everything a status callback could change: outbox rows, early reports, ledger size."""
    with engine.begin() as conn:
        rows = list(conn.execute(select(outbox).order_by(outbox.c.id)))
        early = list(conn.execute(select(early_delivery_reports)))
        events = len(list(conn.execute(select(consent_events.c.id))))
    return rows, early, events


def sent_text(
    callbacks: Callbacks, call_sid: str = "CA0001"
) -> tuple[OutboxMessage, StoredMessage]:
    """Grant consent, queue and send a confirmation; its row and what Twilio holds."""
    grant(callbacks.engine)
    queue(callbacks.engine, call_sid)
    callbacks.send_due()
    message = the_text(callbacks, call_sid)
    [stored] = [m for m in callbacks.fake.state.messages if m.sid == message.provider_message_id]
    return message, stored


# --- the callback URL and the signature ---------------------------------------------------------


def test_the_callback_url_names_the_outbox_row_and_its_callbacks_are_recorded(
    callbacks: Callbacks,
) -> None:
    message, stored = sent_text(callbacks)

    assert stored.status_callback == f"{CALLBACK_URL}?outbox={message.id}"
    assert callbacks.post(stored.status_callback, status_callback_form(stored, "sent")) == 200
    assert callbacks.post(stored.status_callback, status_callback_form(stored, "delivered")) == 200
    assert the_text(callbacks).status is OutboxStatus.DELIVERED


def test_the_signature_must_cover_the_query_naming_the_text(callbacks: Callbacks) -> None:
    message, stored = sent_text(callbacks)
    assert stored.status_callback is not None
    form = status_callback_form(stored, "delivered")
    before = snapshot(callbacks.engine)

    assert callbacks.post(stored.status_callback, form, signed_url=CALLBACK_URL) == 403
    other_row = f"{CALLBACK_URL}?outbox={message.id + 1}"
    assert callbacks.post(other_row, form, signed_url=stored.status_callback) == 403
    assert snapshot(callbacks.engine) == before


# --- a callback that comes before the send is committed -----------------------------------------


def wait_until_blocked_or_done(thread: threading.Thread, callbacks: Callbacks) -> None:
    """Return once ``thread`` (a callback) finished or waits for a database lock. On SQLite the
    wait cannot be seen from outside; the callback's BEGIN IMMEDIATE waits for the send either
    way, so a moment's head start is all it needs."""
    if callbacks.engine.dialect.name != "postgresql":
        thread.join(timeout=0.2)
        return
    waiting = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = %s AND wait_event_type = 'Lock'"
    )
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as admin:
        for _ in range(2000):
            if not thread.is_alive():
                return
            row = admin.execute(waiting, (callbacks.application_name,)).fetchone()
            if row is not None and row[0] > 0:
                return
            time.sleep(0.005)
    raise AssertionError("the callback neither finished nor waited for the send")


def calling_back(
    callbacks: Callbacks, status: str, answers: list[int], threads: list[threading.Thread]
) -> Callable[[StoredMessage], None]:
    """An ``on_create`` that posts ``status`` for the new message before Twilio answers the
    create, and lets the answer go once the callback is under way."""

    def call_back(stored: StoredMessage) -> None:
        assert stored.status_callback is not None
        form = status_callback_form(stored, status)
        url = stored.status_callback
        thread = threading.Thread(target=lambda: answers.append(callbacks.post(url, form)))
        threads.append(thread)
        thread.start()
        wait_until_blocked_or_done(thread, callbacks)

    return call_back


def test_a_callback_before_the_send_commits_waits_for_it_and_is_recorded(
    callbacks: Callbacks,
) -> None:
    grant(callbacks.engine)
    queue(callbacks.engine)
    answers: list[int] = []
    threads: list[threading.Thread] = []
    callbacks.fake.state.on_create = calling_back(callbacks, "delivered", answers, threads)

    callbacks.send_due()
    for thread in threads:
        thread.join(timeout=30)

    assert answers == [200]
    message = the_text(callbacks)
    assert message.status is OutboxStatus.DELIVERED
    assert message.provider_message_id == callbacks.fake.state.messages[0].sid


@pytest.mark.parametrize(("status", "code"), [("delivered", None), ("undelivered", 21610)])
def test_a_callback_while_the_send_is_in_doubt_is_held_until_the_send_is_known(
    callbacks: Callbacks, status: str, code: int | None
) -> None:
    consent = grant(callbacks.engine)
    queue(callbacks.engine, "CA0001", consent=consent)
    queue(callbacks.engine, "CA0002", consent=consent, due_at=NOW + timedelta(hours=2))
    answers: list[int] = []
    answered = threading.Event()

    def call_back_and_hold_the_answer(stored: StoredMessage) -> None:
        # Twilio calls back and its answer to the create never arrives: the callback waits for
        # the send's transaction, which ends when the transport gives up (a transient failure).
        assert stored.status_callback is not None
        form = status_callback_form(stored, status, code)
        answers.append(callbacks.post(stored.status_callback, form))
        answered.set()

    callbacks.fake.state.on_create = call_back_and_hold_the_answer
    callbacks.send_due()

    assert answered.wait(timeout=30)
    assert answers == [200]
    in_doubt = the_text(callbacks)
    assert (in_doubt.status, in_doubt.provider_message_id) == (OutboxStatus.SCHEDULED, None)

    callbacks.fake.state.on_create = None
    callbacks.send_due(NOW + retry_delay(1))

    [stored] = callbacks.fake.state.messages
    message = the_text(callbacks)
    assert message.provider_message_id == stored.sid
    assert message.status is (OutboxStatus.DELIVERED if code is None else OutboxStatus.UNDELIVERED)
    assert snapshot(callbacks.engine)[1] == []
    follow_up = the_text(callbacks, "CA0002").status
    with callbacks.engine.begin() as conn:
        kinds = [event.kind for event in events_for_number(conn, "acme-plumbing", CALLER)]
    if code is None:
        assert (follow_up, kinds[-1]) == (OutboxStatus.SCHEDULED, EventKind.CONSENT_GRANTED)
    else:
        assert (follow_up, kinds[-1]) == (OutboxStatus.CANCELLED, EventKind.REVOKED)


# --- hostile callbacks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "outbox=abc",
        "outbox=",
        "outbox=0",
        "outbox=-1",
        "outbox=1.0",
        "outbox=01",
        "outbox=%201",
        "outbox=%D9%A3",
        "outbox=2147483648",
        "outbox=99999999999999999999999999",
        "outbox=1&outbox=1",
    ],
)
def test_a_malformed_outbox_id_gets_400_and_changes_nothing(
    callbacks: Callbacks, query: str
) -> None:
    _message, stored = sent_text(callbacks)
    before = snapshot(callbacks.engine)

    answer = callbacks.post(f"{CALLBACK_URL}?{query}", status_callback_form(stored, "delivered"))

    assert answer == 400
    assert snapshot(callbacks.engine) == before
    assert callbacks.services.journal.pending() == []


@pytest.mark.parametrize(
    "change",
    [
        {"MessageSid": "SM' OR 1=1 --"},
        {"MessageSid": "SM" + "1" * 80},
        {"MessageSid": ""},
        {"MessageStatus": ""},
        {"ErrorCode": "21610; DROP TABLE outbox"},
        {"ErrorCode": "²"},
        {"ErrorCode": "9" * 12},
    ],
)
def test_a_malformed_callback_form_gets_400_and_changes_nothing(
    callbacks: Callbacks, change: dict[str, str]
) -> None:
    _message, stored = sent_text(callbacks)
    assert stored.status_callback is not None
    before = snapshot(callbacks.engine)

    form = {**status_callback_form(stored, "undelivered"), **change}

    assert callbacks.post(stored.status_callback, form) == 400
    assert snapshot(callbacks.engine) == before


def test_a_callback_for_a_text_we_do_not_have_changes_nothing(callbacks: Callbacks) -> None:
    message, stored = sent_text(callbacks)
    before = snapshot(callbacks.engine)

    missing = f"{CALLBACK_URL}?outbox={message.id + 1000}"

    assert callbacks.post(missing, status_callback_form(stored, "delivered")) == 200
    assert snapshot(callbacks.engine) == before


def test_a_callback_naming_another_businesss_text_changes_nothing(
    callbacks: Callbacks,
) -> None:
    _acme, acme_stored = sent_text(callbacks)
    with callbacks.engine.begin() as conn:
        other = queue_text(
            conn,
            PlannedText(
                business_id="bright-spark-electric",
                reference="SM-bright-spark-help",
                to_number=OTHER_CALLER,
                from_number="+13035550140",
                kind=OutboxKind.HELP_REPLY,
                body="Bright Spark Electric: for help contact help@brightspark.example.",
                consent_event_hash="",
                due_at=NOW + timedelta(hours=1),
            ),
        )
    form = status_callback_form(acme_stored, "delivered")
    other_url = f"{CALLBACK_URL}?outbox={other.id}"

    before = snapshot(callbacks.engine)
    assert callbacks.post(other_url, form) == 200  # the other text has no MessageSid yet
    assert snapshot(callbacks.engine) == before

    callbacks.send_due(other.due_at)
    assert the_text(callbacks, other.call_sid).provider_message_id is not None
    before = snapshot(callbacks.engine)
    assert callbacks.post(other_url, form) == 200
    assert snapshot(callbacks.engine) == before


def test_a_callback_without_an_outbox_id_is_matched_by_message_sid(callbacks: Callbacks) -> None:
    _message, stored = sent_text(callbacks)

    assert callbacks.post(CALLBACK_URL, status_callback_form(stored, "delivered")) == 200
    assert the_text(callbacks).status is OutboxStatus.DELIVERED
    unknown = {**status_callback_form(stored, "delivered"), "MessageSid": "SM" + "0" * 32}
    before = snapshot(callbacks.engine)
    assert callbacks.post(CALLBACK_URL, unknown) == 200
    assert snapshot(callbacks.engine) == before


# --- through the journal ------------------------------------------------------------------------


def test_a_callback_applied_again_changes_nothing(callbacks: Callbacks) -> None:
    _message, stored = sent_text(callbacks)
    assert stored.status_callback is not None
    form = status_callback_form(stored, "delivered")
    assert callbacks.post(stored.status_callback, form) == 200
    after_once = snapshot(callbacks.engine)

    assert callbacks.post(stored.status_callback, form) == 200  # Twilio retried, or a replay

    assert snapshot(callbacks.engine) == after_once
    assert the_text(callbacks).status is OutboxStatus.DELIVERED


def test_a_carrier_unsubscribe_holds_texts_from_the_moment_it_is_journaled(
    callbacks: Callbacks,
) -> None:
    consent = grant(callbacks.engine)
    queue(callbacks.engine, "CA0001", consent=consent)
    callbacks.send_due()
    first = the_text(callbacks, "CA0001")
    [stored] = callbacks.fake.state.messages
    assert stored.status_callback is not None
    queue(callbacks.engine, "CA0002", consent=consent, due_at=NOW + timedelta(minutes=1))
    form = status_callback_form(stored, "undelivered", 21610)

    assert callbacks.post(stored.status_callback, form, apply=False) == 200
    journal = callbacks.services.journal
    assert journal.pending_opt_outs() == {CALLER}
    report = dispatch_due(
        callbacks.engine,
        callbacks.transport,
        NOW + timedelta(minutes=2),
        rules=send_rules(),
        pending_opt_outs=journal.pending_opt_outs,
    )
    assert (report.sent, report.deferred) == (0, 1)
    held = the_text(callbacks, "CA0002")
    assert (held.status, held.reason) == (OutboxStatus.SCHEDULED, OPT_OUT_PENDING)

    callbacks.services.settle()

    assert journal.pending_opt_outs() == set()
    assert the_text(callbacks, "CA0001").status is OutboxStatus.UNDELIVERED
    assert the_text(callbacks, "CA0002").status is OutboxStatus.CANCELLED
    with callbacks.engine.begin() as conn:
        kinds = [event.kind for event in events_for_number(conn, "acme-plumbing", CALLER)]
    assert kinds[-1] is EventKind.REVOKED
    assert len(callbacks.fake.state.messages) == 1 and first.provider_message_id == stored.sid
