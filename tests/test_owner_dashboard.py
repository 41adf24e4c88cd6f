"""The owner dashboard over HTTP: sign in with an owner token, read the business's calls, each
call with its transcript, consent record and texts, and the business's texts; nothing of any
other business, every stored value shown as text, every bad input refused with a clear 4xx.

The data is made by the product's own code (calls saved, consent appended to the ledger, texts
queued and dispatched through the consent gate, inbound texts handled) on a database migrated to
head, on SQLite and on PostgreSQL when it is reachable; the pages are read through the app's own
router with ``TestClient``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import Engine, select

from consent_ledger import (
    AnswerEvidence,
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    EventKind,
    RecordedEvent,
    ScriptEvidence,
    append_event,
)
from dashboard import OWNER_TOKENS, OwnerContext, issue_token, owner_queries, owner_router
from dashboard.owner_routes import form_token
from dashboard.tables import owner_sessions
from sms_sender import (
    InboundSms,
    LocalSmsTransport,
    OutboxKind,
    PlannedText,
    SmsPolicy,
    dispatch_due,
    handle_inbound,
    held_replies,
    open_hold,
    queue_text,
)
from sms_sender.tables import sms_inbound
from tests.clock_support import SteppingClock
from tests.conftest import BACKENDS, PUBLIC_BASE_URL, ROOT, fresh_database
from voice_agent.records.businesses import import_businesses
from voice_agent.records.call_progress import OwnerLeg as RecordedLeg
from voice_agent.records.call_progress import ProgressReport, record_progress
from voice_agent.records.calls import CallRecord, Turn, save_call
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade
from voice_agent.records.owner_call_log import ReceptionistCallLog
from voice_agent.web.owner_settings import ReceptionistSettings

T0 = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)  # 10:00 CDT at Acme, 09:00 MDT at Bright Spark
ACME = "acme-plumbing"
SPARK = "bright-spark-electric"
ACME_NUMBER = "+15125550100"
SPARK_NUMBER = "+13035550140"
CALLER = "+15125550123"
OTHER_CALLER = "+15125550177"
SPARK_CALLER = "+13035550111"
CALL_YES = "CA" + "a1" * 16
CALL_NO = "CA" + "b2" * 16
CALL_BROKEN = "CA" + "c3" * 16
CALL_SPARK = "CA" + "d4" * 16
HOSTILE = "<script>alert('owned')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;"
HOSTILE_REPLY = '<img src=x onerror="alert(1)"> call me after 5'
SCRIPT = (
    "This is Acme Plumbing's automated assistant. May we text you up to 2 messages about this "
    "call in the next 24 hours? Msg & data rates may apply. Reply STOP to opt out. Is that okay?"
)
PAGE_SIZE = 2
OUR_ORIGIN = {"Origin": PUBLIC_BASE_URL}


@dataclass(frozen=True)
class OwnerSite:
    client: TestClient
    engine: Engine
    clock: SteppingClock
    acme_token: str
    spark_token: str


# --- the records the pages show ---------------------------------------------------------------


def _consent(
    business_id: str, number: str, call_sid: str, at: datetime, answer: str
) -> ConsentEvidence:
    """A verbal yes: the script started at ``at``, heard by +8 s, answered at +9 s."""
    answered = at + timedelta(seconds=9)
    return ConsentEvidence(
        business_id=business_id,
        business_name=business_id,
        phone_number=number,
        call_sid=call_sid,
        stream_sid="MZ" + call_sid[2:],
        kind=EventKind.CONSENT_GRANTED,
        method=ConsentMethod.VERBAL,
        script=ScriptEvidence(
            "v1",
            SCRIPT,
            hashlib.sha256(SCRIPT.encode()).hexdigest(),
            at,
            at + timedelta(seconds=8),
        ),
        answers=(
            AnswerEvidence(
                answer, (), "whisper/tiny.en", 0.87, answered, answered + timedelta(seconds=1)
            ),
        ),
        classifier="keyword-yes",
        classifier_version="1",
        reasked=False,
        scope=ConsentScope("follow-up about this call", 2, at + timedelta(hours=20)),
        occurred_at=at + timedelta(seconds=10),
    )


def _call(
    call_sid: str,
    business_id: str,
    caller: str,
    started_at: datetime,
    consent: RecordedEvent | None,
    **fields: Any,
) -> CallRecord:
    """A two-minute call that took no message, with ``fields`` told otherwise."""
    call = CallRecord(
        call_sid=call_sid,
        stream_sid="MZ" + call_sid[2:],
        business_id=business_id,
        caller_number=caller,
        started_at=started_at,
        ended_at=started_at + timedelta(minutes=2),
        end_reason="caller hung up",
        caller_name=None,
        need=None,
        callback_number=None,
        urgency=None,
        notes=(),
        consent_outcome="not_asked",
        consent_event_hash=None if consent is None else consent.hash,
    )
    return dataclasses.replace(call, **fields)


def _record_history(engine: Engine) -> None:
    """Acme: an emergency call with a yes (its confirmation sent, then a reply and a STOP), a
    call that was not asked, and a call whose consent record is missing. Bright Spark: one call
    with a yes and a text still queued."""
    with engine.begin() as conn:
        grant = append_event(
            conn, _consent(ACME, CALLER, CALL_YES, T0 + timedelta(seconds=40), "yes <b>sure</b>"),
            T0 + timedelta(seconds=51),
        )  # fmt: skip
        save_call(
            conn,
            _call(
                CALL_YES, ACME, CALLER, T0, grant,
                caller_name=HOSTILE,
                need="a burst pipe <img src=x onerror=alert(2)>",
                callback_number="+15125550124",
                urgency="emergency",
                address="12 Elm St <script>x()</script>",
                preferred_time="tomorrow <b>morning</b>",
                notes=("deepgram failed: timed out <i>mid-call</i>",),
                consent_outcome="affirmative",
                turns=(
                    Turn("assistant", "speech", "Hi, this is Acme Plumbing's assistant.", 0.5, 3),
                    Turn("caller", "speech", f"My pipe burst {HOSTILE}", 4.0, 6.5, 0.91),
                    Turn("caller", "keypad", "1", 31.0),
                ),
            ),
        )  # fmt: skip
        save_call(
            conn,
            _call(
                CALL_NO, ACME, OTHER_CALLER, T0 + timedelta(hours=1), None,
                caller_name="Dana", need="a dripping tap", urgency="routine",
                transcript_purged_at=T0 + timedelta(days=90),
            ),
        )  # fmt: skip
        broken = _call(CALL_BROKEN, ACME, OTHER_CALLER, T0 + timedelta(hours=3), None)
        save_call(conn, dataclasses.replace(broken, consent_event_hash="ab" * 32))
        queue_text(
            conn,
            PlannedText(
                ACME, CALL_YES, CALLER, ACME_NUMBER, OutboxKind.CONFIRMATION,
                "Thanks for calling Acme Plumbing <b>today</b>. Reply STOP to opt out.",
                grant.hash, T0 + timedelta(minutes=2),
            ),
        )  # fmt: skip
        spark_grant = append_event(
            conn, _consent(SPARK, SPARK_CALLER, CALL_SPARK, T0, "yes"), T0 + timedelta(seconds=11)
        )
        save_call(
            conn,
            _call(
                CALL_SPARK, SPARK, SPARK_CALLER, T0 + timedelta(hours=2), spark_grant,
                caller_name="SPARK-ONLY caller", need="SPARK-ONLY panel upgrade",
                consent_outcome="affirmative",
            ),
        )  # fmt: skip
        queue_text(
            conn,
            PlannedText(
                SPARK, CALL_SPARK, SPARK_CALLER, SPARK_NUMBER, OutboxKind.CONFIRMATION,
                "SPARK-ONLY confirmation", spark_grant.hash, T0 + timedelta(days=30),
            ),
        )  # fmt: skip
    report = dispatch_due(engine, LocalSmsTransport(), T0 + timedelta(minutes=3))
    assert report.sent == 1
    policy = SmsPolicy(ACME, "Acme Plumbing", "America/Chicago", "(512) 555-0199")
    with engine.begin() as conn:
        for minutes, sid, body in (
            (30, "SM" + "1" * 32, HOSTILE_REPLY),
            (40, "SM" + "2" * 32, "STOP"),
        ):
            handle_inbound(
                conn,
                InboundSms(sid, CALLER, ACME_NUMBER, body),
                policy,
                T0 + timedelta(minutes=minutes),
            )


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OwnerSite]:
    with owner_site(request.param, tmp_path) as built:
        yield built


@contextlib.contextmanager
def owner_site(backend: str, tmp_path: Path) -> Iterator[OwnerSite]:
    """The owner pages of the history above on ``backend``, served by ``TestClient``."""
    with fresh_database(backend, tmp_path, "owner") as url:
        upgrade(url)
        engine = make_engine(url)
        read_engine = make_engine(url, read_only=True)
        with engine.begin() as conn:
            import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
        _record_history(engine)
        with engine.begin() as conn:
            acme = OWNER_TOKENS.issue(conn, ACME, "Acme owner", T0, timedelta(days=90))
            spark = OWNER_TOKENS.issue(conn, SPARK, "Spark owner", T0, timedelta(days=90))
        clock = SteppingClock(T0 + timedelta(days=1))
        app = FastAPI()
        app.state.owner = OwnerContext(
            engine=engine,
            read_engine=read_engine,
            call_log=ReceptionistCallLog(),
            clock=clock,
            public_base_url=PUBLIC_BASE_URL,
            page_size=PAGE_SIZE,
            audio_root=tmp_path / "audio",
            settings_store=ReceptionistSettings(),
        )
        app.include_router(owner_router())
        client = TestClient(app, base_url=PUBLIC_BASE_URL, follow_redirects=False)
        try:
            yield OwnerSite(client, engine, clock, acme.secret, spark.secret)
        finally:
            client.close()
            read_engine.dispose()
            engine.dispose()


def _sign_in(site: OwnerSite, token: str | None = None) -> None:
    response = site.client.post(
        "/owner/sign-in", data={"token": token or site.acme_token}, headers=OUR_ORIGIN
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/owner/calls"


def _form(site: OwnerSite) -> dict[str, str]:
    """The form token the signed-in session's pages carry."""
    return {"csrf": form_token(site.client.cookies["owner_session"])}


def _page(site: OwnerSite, path: str, status: int = 200) -> str:
    response = site.client.get(path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def _table_rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr[^>]*>.*?</tr>", body, re.DOTALL)


def _cells(row: str) -> list[str]:
    return re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)


def _thread_items(html: str) -> list[str]:
    """The texts of the first conversation thread in ``html``, in order."""
    body = html.split('<ol class="thread">', 1)[1].split("</ol>", 1)[0]
    return re.findall(r"<li class=.*?</li>", body, re.DOTALL)


# --- signing in and out -----------------------------------------------------------------------


def test_the_sign_in_page_is_a_plain_form(site: OwnerSite) -> None:
    html = _page(site, "/owner/sign-in")
    assert '<form method="post" action="/owner/sign-in">' in html
    assert '<label for="token">' in html and 'type="password"' in html
    assert "<h1>Sign in</h1>" in html and '<html lang="en">' in html
    assert "<script" not in html


def test_signing_in_sets_a_lax_http_only_session_cookie_that_is_not_the_token(
    site: OwnerSite,
) -> None:
    response = site.client.post(
        "/owner/sign-in", data={"token": site.acme_token}, headers=OUR_ORIGIN
    )

    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("owner_session=")
    for attribute in ("HttpOnly", "SameSite=lax", "Path=/owner", "Secure", "Max-Age=43200"):
        assert attribute.lower() in cookie.lower()
    secret = cookie.split(";", 1)[0].split("=", 1)[1]
    assert site.acme_token not in cookie
    with site.engine.connect() as conn:
        (stored,) = conn.execute(select(owner_sessions)).all()
    assert stored.session_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in " ".join(str(value) for value in stored)
    assert "Calls" in _page(site, "/owner/calls")


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "   ",
        "rcpt_owner_" + "A" * 43,
        "rcpt_owner_" + "A" * 10_000,
        "' OR '1'='1",
        HOSTILE,
        "rcpt_owner_\x00",
    ],
)
def test_a_token_that_does_not_work_gets_one_plain_refusal(site: OwnerSite, presented: str) -> None:
    response = site.client.post("/owner/sign-in", data={"token": presented}, headers=OUR_ORIGIN)

    assert response.status_code == 401
    assert "That access token did not work" in response.text
    assert "set-cookie" not in response.headers
    if presented.strip():
        assert presented not in response.text


def test_auditor_expired_and_revoked_tokens_do_not_sign_an_owner_in(site: OwnerSite) -> None:
    with site.engine.begin() as conn:
        auditor = issue_token(conn, ACME, "carrier", T0, timedelta(days=90)).secret
        expired = OWNER_TOKENS.issue(conn, ACME, "old", T0, timedelta(hours=1)).secret
        revoked = OWNER_TOKENS.issue(conn, ACME, "gone", T0, timedelta(days=90))
        OWNER_TOKENS.revoke(conn, revoked.token.id, T0 + timedelta(hours=1))
        unknown_business = OWNER_TOKENS.issue(conn, "closed-down", "x", T0, timedelta(days=9))

    refusals = {
        site.client.post("/owner/sign-in", data={"token": token}, headers=OUR_ORIGIN).text
        for token in (auditor, expired, revoked.secret, unknown_business.secret)
    }

    assert len(refusals) == 1  # the same page, whatever was wrong
    assert "That access token did not work" in refusals.pop()
    assert site.client.cookies.get("owner_session") is None


def test_a_sign_in_without_a_body_is_refused_as_a_page(site: OwnerSite) -> None:
    response = site.client.post("/owner/sign-in", headers=OUR_ORIGIN)
    assert response.status_code == 401
    response = site.client.post(
        "/owner/sign-in",
        content=b'{"token": "x"}',
        headers={**OUR_ORIGIN, "Content-Type": "application/json"},
    )
    assert response.status_code == 401
    response = site.client.post(
        "/owner/sign-in", files={"token": ("t.txt", b"rcpt_owner_x")}, headers=OUR_ORIGIN
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://receptionist.example.com"},
        {"Origin": "https://receptionist.example.com.evil.example"},
        {"Referer": "https://evil.example/owner/sign-in"},
        {"Referer": "not a url"},
    ],
)
def test_form_posts_from_elsewhere_are_refused(site: OwnerSite, headers: dict[str, str]) -> None:
    signed_in = site.client.post("/owner/sign-in", data={"token": site.acme_token}, headers=headers)
    assert signed_in.status_code == 403
    assert "set-cookie" not in signed_in.headers

    _sign_in(site)
    signed_out = site.client.post("/owner/sign-out", headers=headers)
    assert signed_out.status_code == 403
    assert _page(site, "/owner/calls")  # still signed in


def test_a_referer_from_our_pages_stands_in_for_a_missing_origin(site: OwnerSite) -> None:
    response = site.client.post(
        "/owner/sign-in",
        data={"token": site.acme_token},
        headers={"Referer": f"{PUBLIC_BASE_URL}/owner/sign-in"},
    )
    assert response.status_code == 303


def test_signing_out_ends_the_session_for_good(site: OwnerSite) -> None:
    _sign_in(site)
    secret = site.client.cookies["owner_session"]

    response = site.client.post("/owner/sign-out", data=_form(site), headers=OUR_ORIGIN)

    assert response.status_code == 303 and response.headers["location"] == "/owner/sign-in"
    assert 'owner_session=""' in response.headers["set-cookie"]
    site.client.cookies.set("owner_session", secret, domain="receptionist.example.com")
    assert site.client.get("/owner/calls").headers["location"] == "/owner/sign-in"


def test_pages_need_a_working_session(site: OwnerSite) -> None:
    for path in ("/owner/calls", f"/owner/calls/{CALL_YES}", "/owner/texts", "/owner/calls?page=x"):
        response = site.client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/owner/sign-in"
    for forged in ("x" * 43, "", HOSTILE, "A" * 4000):
        site.client.cookies.set("owner_session", forged, domain="receptionist.example.com")
        response = site.client.get("/owner/calls")
        assert response.headers["location"] == "/owner/sign-in"


def test_a_session_ends_when_it_expires_or_its_token_is_revoked(site: OwnerSite) -> None:
    _sign_in(site)
    site.clock.now += timedelta(hours=11, minutes=59)
    assert _page(site, "/owner/calls")
    site.clock.now += timedelta(minutes=1)
    assert site.client.get("/owner/calls").status_code == 303

    _sign_in(site)
    assert _page(site, "/owner/calls")
    with site.engine.begin() as conn:
        (token,) = OWNER_TOKENS.tokens(conn, ACME)
        OWNER_TOKENS.revoke(conn, token.id, site.clock.now)
    assert site.client.get("/owner/calls").headers["location"] == "/owner/sign-in"


def test_pages_are_not_cached_framed_or_scripted(site: OwnerSite) -> None:
    _sign_in(site)
    for path in ("/owner/sign-in", "/owner/calls", "/owner/calls/nope", "/owner/texts?page=0"):
        headers = site.client.get(path).headers
        assert headers["cache-control"] == "no-store"
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"


# --- the calls page -----------------------------------------------------------------------------


def test_the_calls_page_lists_the_business_calls_newest_first(site: OwnerSite) -> None:
    _sign_in(site)
    first = _page(site, "/owner/calls")
    second = _page(site, "/owner/calls?page=2")

    rows = _table_rows(first) + _table_rows(second)
    links = re.findall(r'href="/owner/calls/(CA\w+)"', "".join(rows))
    assert links == [CALL_BROKEN, CALL_NO, CALL_YES]
    assert "Page 1 of 2 (3 in all)" in first and 'href="/owner/calls?page=2" rel="next"' in first
    assert 'href="/owner/calls?page=1" rel="prev"' in second
    emergency = rows[2]
    assert 'class="emergency-call"' in emergency and "EMERGENCY" in emergency
    assert "2025-06-02 10:00:00 CDT" in emergency  # the business's clock
    assert CALLER in emergency and ESCAPED in emergency
    assert "opted out" in emergency  # the number's standing now: it texted STOP
    assert "may be texted" not in emergency
    assert _cells(emergency)[-2] == "1"  # texts sent: the confirmation
    assert f'href="tel:{CALLER}"' in emergency
    assert "Dana" in rows[1] and "a dripping tap" in rows[1] and "nothing on record" in rows[1]
    assert "EMERGENCY" not in rows[1]
    assert HOSTILE not in second and "<img src=x" not in second
    assert "SPARK-ONLY" not in first + second
    assert '<th scope="col">Number</th>' in first and "<caption>" in first


def test_each_owner_sees_only_their_own_business(site: OwnerSite) -> None:
    _sign_in(site, site.spark_token)
    html = _page(site, "/owner/calls")
    assert "SPARK-ONLY caller" in html and "Bright Spark Electric" in html
    assert "Acme" not in html and CALLER not in html
    assert "2025-06-02 11:00:00 MDT" in html
    assert "Acme" not in _page(site, "/owner/texts")
    assert _page(site, f"/owner/calls/{CALL_YES}", 404)


@pytest.mark.parametrize(
    "page", ["0", "-1", "abc", "1e3", "1.0", "", " 1", "1 ", "9999999", "١", "1;DROP", "%00"]
)
def test_bad_page_numbers_are_refused_clearly(site: OwnerSite, page: str) -> None:
    _sign_in(site)
    for path in ("/owner/calls", "/owner/texts"):
        html = _page(site, f"{path}?page={page}", 400)
        assert "Page numbers are whole numbers from 1" in html


def test_a_page_past_the_last_is_not_found(site: OwnerSite) -> None:
    _sign_in(site)
    html = _page(site, "/owner/calls?page=3", 404)
    assert "There is no page 3: the last page is 2." in html
    _page(site, "/owner/texts?page=999999", 404)


# --- one call -----------------------------------------------------------------------------------


def test_a_call_page_shows_the_message_the_transcript_and_the_consent(site: OwnerSite) -> None:
    _sign_in(site)
    html = _page(site, f"/owner/calls/{CALL_YES}")

    assert f"<h1>Call from {ESCAPED}</h1>" in html
    assert "The caller said this is an emergency." in html
    message = html.split("<h2>Message</h2>", 1)[1].split("</dl>", 1)[0]
    assert ESCAPED in message and "+15125550124" in message
    assert "a burst pipe &lt;img src=x onerror=alert(2)&gt;" in message
    assert "12 Elm St &lt;script&gt;x()&lt;/script&gt;" in message
    assert "tomorrow &lt;b&gt;morning&lt;/b&gt;" in message
    assert "deepgram failed: timed out &lt;i&gt;mid-call&lt;/i&gt;" in html
    transcript = html.split("<h2>Transcript</h2>", 1)[1].split("</table>", 1)[0]
    lines = _table_rows(transcript)
    assert len(lines) == 3
    assert "10:00:00" in lines[0] and "(+0.5 s)" in lines[0] and "Assistant" in lines[0]
    assert (
        "10:00:04" in lines[1] and "Caller" in lines[1] and f"My pipe burst {ESCAPED}" in lines[1]
    )
    assert "heard with confidence 0.91" in lines[1]
    assert "pressed 1" in lines[2] and "10:00:31" in lines[2]
    consent = html.split("<h2>Consent to texts</h2>", 1)[1].split("<h2>", 1)[0]
    on_the_call = consent.split("<h3>On this call</h3>", 1)[1]
    assert "<strong>Agreed to texts</strong>" in on_the_call and "spoken answer" in on_the_call
    assert "may be texted" not in consent
    assert "<strong>Now:</strong> Opted out on 2025-06-02 10:40:00 CDT, by texting STOP." in consent
    assert f"<blockquote>{escape(SCRIPT)}</blockquote>" in consent
    assert hashlib.sha256(SCRIPT.encode()).hexdigest() in consent
    assert "Said “yes &lt;b&gt;sure&lt;/b&gt;”" in consent
    assert "at 2025-06-02 10:00:49 CDT" in consent
    assert "up to 2 texts" in consent
    assert HOSTILE not in html and "<b>sure" not in html and "<i>mid-call" not in html
    assert "<script>x()" not in html and "<b>morning" not in html


def test_a_call_page_lists_every_text_with_the_number_and_its_status(site: OwnerSite) -> None:
    _sign_in(site)
    html = _page(site, f"/owner/calls/{CALL_YES}")

    texts = _thread_items(html.split(f'<h2>Texts with <a href="tel:{CALLER}">', 1)[1])
    assert len(texts) == 4
    confirmation, reply, stop, stop_confirmation = texts
    assert 'class="outbound"' in confirmation and "Confirmation" in confirmation
    assert "Acme Plumbing &lt;b&gt;today&lt;/b&gt;" in confirmation
    assert "Sent" in confirmation and "2025-06-02 10:03:00 CDT" in confirmation
    assert "They wrote" in reply and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in reply
    assert 'class="inbound opt-out"' in stop and "OPT-OUT (STOP)" in stop
    assert "Opt-out confirmation" in stop_confirmation and "Queued" in stop_confirmation
    assert "opt-out" not in confirmation + reply


@pytest.mark.parametrize("shown", [3, 1])
def test_a_call_page_lists_only_the_latest_texts_of_a_long_history(
    site: OwnerSite, monkeypatch: pytest.MonkeyPatch, shown: int
) -> None:
    monkeypatch.setattr(owner_queries, "CALL_PAGE_TEXTS", shown)
    _sign_in(site)
    html = _page(site, f"/owner/calls/{CALL_YES}")

    after = html.split(f'<h2>Texts with <a href="tel:{CALLER}">', 1)[1]
    assert f"The latest {shown} of 4 texts between the business and this number" in after
    texts = _thread_items(after)
    assert len(texts) == shown
    assert "Opt-out confirmation" in texts[-1]  # the newest, still last: oldest first
    assert not any("Thanks for calling" in text for text in texts)  # the oldest is left out
    assert any("OPT-OUT (STOP)" in text for text in texts) is (shown == 3)


def test_calls_without_a_readable_consent_record_say_so(site: OwnerSite) -> None:
    _sign_in(site)
    missing = _page(site, f"/owner/calls/{CALL_BROKEN}")
    assert "The consent record of this call cannot be read" in missing
    assert "receptionist ledger verify" in missing

    not_asked = _page(site, f"/owner/calls/{CALL_NO}")
    assert "The consent question was not asked on this call." in not_asked
    assert "The script, as read to the caller" not in not_asked
    assert "The transcript was deleted on 2025-08-31" in not_asked
    assert "No texts to or from this number." in not_asked


@pytest.mark.parametrize(
    "call_id",
    [
        CALL_SPARK,
        "CA" + "0" * 32,
        "x" * 65,
        "CA'--",
        "CA%3Cscript%3E",
        "a%2F..%2Fb",
        "%00",
        HOSTILE,
    ],
)
def test_a_call_that_is_not_the_business_s_is_not_found(site: OwnerSite, call_id: str) -> None:
    _sign_in(site)
    response = site.client.get(f"/owner/calls/{call_id}")
    assert response.status_code == 404
    assert "SPARK-ONLY" not in response.text and HOSTILE not in response.text
    assert "Your business has no call with that id." in response.text


# --- the texts page ------------------------------------------------------------------------------


def test_the_texts_page_shows_one_conversation_per_number_and_each_thread_in_order(
    site: OwnerSite,
) -> None:
    _hold_a_reply(site)
    _sign_in(site)
    first = _page(site, "/owner/texts")

    assert "Page 1 of 1 (2 in all)" in first
    rows = _table_rows(first.split("Conversations, the latest first", 1)[1])
    assert len(rows) == 2
    newest, caller = rows  # the held reply came at 15:00 CDT, the STOP's answer at 10:40
    assert f'href="tel:{OTHER_CALLER}"' in newest and "wrong number &lt;b&gt;who" in newest
    assert f'href="tel:{CALLER}"' in caller and "opt-out confirmation" in caller
    assert 'href="/owner/texts/%2B15125550123">Open the 4 with +15125550123</a>' in caller

    thread = _page(site, "/owner/texts/%2B15125550123")
    texts = _thread_items(thread)
    assert len(texts) == 4
    assert "Acme Plumbing &lt;b&gt;today&lt;/b&gt;" in texts[0]
    assert "OPT-OUT (STOP)" in texts[2] and "<img src=x" not in thread
    assert "Opted out on 2025-06-02 10:40:00 CDT, by texting STOP." in thread
    assert "This number opted out of texts" in thread and "<textarea" not in thread
    assert "SPARK-ONLY" not in first + thread


def test_the_whole_app_serves_the_owner_pages(tmp_path: Path) -> None:
    from tests.conftest import receptionist_settings
    from voice_agent.services import build_services
    from voice_agent.web.app import create_app

    settings = receptionist_settings(f"sqlite:///{tmp_path / 'app.db'}")
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
        token = OWNER_TOKENS.issue(conn, ACME, "", datetime.now(UTC), timedelta(days=1)).secret
    engine.dispose()
    client = TestClient(create_app(build_services(settings)), base_url=PUBLIC_BASE_URL)
    assert client.get("/owner", follow_redirects=False).headers["location"] == "/owner/calls"
    response = client.post("/owner/sign-in", data={"token": token}, headers=OUR_ORIGIN)
    assert response.status_code == 200 and "No calls yet." in response.text
    assert "Acme Plumbing" in response.text


def test_guessing_sign_in_tokens_is_slowed_down_per_address(site: OwnerSite) -> None:
    for attempt in range(10):
        guess = f"rcpt_owner_guess{attempt:02d}"
        refused = site.client.post("/owner/sign-in", data={"token": guess}, headers=OUR_ORIGIN)
        assert refused.status_code == 401
    limited = site.client.post(
        "/owner/sign-in", data={"token": site.acme_token}, headers=OUR_ORIGIN
    )
    assert limited.status_code == 429  # even the right token waits out the window
    assert int(limited.headers["Retry-After"]) >= 1
    assert "Too many sign-in attempts" in limited.text
    assert "set-cookie" not in limited.headers


# --- replies held as possible opt-outs ----------------------------------------------------------


def _hold_a_reply(site: OwnerSite, body: str = "wrong number <b>who</b>") -> int:
    policy = SmsPolicy(ACME, "Acme Plumbing", "America/Chicago", "(512) 555-0199")
    with site.engine.begin() as conn:
        handle_inbound(
            conn,
            InboundSms("SM" + "9" * 32, OTHER_CALLER, ACME_NUMBER, body),
            policy,
            T0 + timedelta(hours=5),
        )
        (held,) = held_replies(conn, ACME)
    return held.id


def test_held_replies_come_first_on_the_texts_page_with_two_buttons(site: OwnerSite) -> None:
    hold_id = _hold_a_reply(site)
    _sign_in(site)
    html = _page(site, "/owner/texts")

    held_at = html.index("Replies that may be opt-outs (1)")
    assert held_at < html.index("Conversations, the latest first")
    assert f'action="/owner/texts/held/{hold_id}/opt-out"' in html
    assert f'action="/owner/texts/held/{hold_id}/not-opt-out"' in html
    assert "wrong number &lt;b&gt;who&lt;/b&gt;" in html and "<b>who" not in html


@pytest.mark.parametrize(("decision", "intent"), [("opt-out", "opt_out"), ("not-opt-out", None)])
def test_the_owner_decides_a_held_reply(site: OwnerSite, decision: str, intent: str | None) -> None:
    hold_id = _hold_a_reply(site)
    _sign_in(site)
    response = site.client.post(
        f"/owner/texts/held/{hold_id}/{decision}", data=_form(site), headers=OUR_ORIGIN
    )
    assert response.status_code == 303 and response.headers["location"] == "/owner/texts"
    with site.engine.begin() as conn:
        assert not open_hold(conn, ACME, OTHER_CALLER)
        stored = conn.execute(
            select(sms_inbound.c.intent).where(sms_inbound.c.message_sid == "SM" + "9" * 32)
        ).scalar_one()
    assert stored == (intent or "possible_opt_out")
    assert "Replies that may be opt-outs" not in _page(site, "/owner/texts")


def test_deciding_a_held_reply_needs_our_origin_a_session_and_the_business_s_own_hold(
    site: OwnerSite,
) -> None:
    hold_id = _hold_a_reply(site)
    path = f"/owner/texts/held/{hold_id}/opt-out"
    refused = site.client.post(path, headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert site.client.post(path, headers=OUR_ORIGIN).status_code == 303  # to sign in
    _sign_in(site, site.spark_token)
    assert site.client.post(path, headers=OUR_ORIGIN).status_code == 403  # no form token
    assert site.client.post(path, data=_form(site), headers=OUR_ORIGIN).status_code == 404
    for bad in (f"/owner/texts/held/{hold_id}/maybe", "/owner/texts/held/0/opt-out"):
        assert site.client.post(bad, data=_form(site), headers=OUR_ORIGIN).status_code == 404
    with site.engine.begin() as conn:
        assert open_hold(conn, ACME, OTHER_CALLER)


def test_the_calls_page_lists_calls_the_assistant_did_not_answer(site: OwnerSite) -> None:
    took_it, hung_up = "CA" + "e5" * 16, "CA" + "f6" * 16
    reports = [  # as Twilio's webhooks report them (see test_call_progress.py)
        ProgressReport(took_it, T0 + timedelta(hours=2), ACME, OTHER_CALLER, RecordedLeg.TOOK_IT),
        ProgressReport(took_it, T0 + timedelta(hours=2), ACME, OTHER_CALLER, None, "completed", 64),
        ProgressReport(hung_up, T0 + timedelta(hours=3), ACME, None, None, "completed", 6),
        ProgressReport(CALL_YES, T0, ACME, CALLER, RecordedLeg.NO_ANSWER, "completed", 90),
        ProgressReport("CA" + "a7" * 16, T0, SPARK, SPARK_CALLER, None, "completed", 3),
    ]
    with site.engine.begin() as conn:
        for report in reports:
            record_progress(conn, report)
    _sign_in(site)
    first = _page(site, "/owner/calls")
    assert "<h2>Calls the assistant did not answer</h2>" in first
    unanswered = _table_rows(first.split("<h2>Calls the assistant did not answer</h2>", 1)[1])
    assert [_cells(row)[1:] for row in unanswered] == [
        ["withheld", "the caller hung up before anyone answered (6 s)"],
        [f'<a href="tel:{OTHER_CALLER}">{OTHER_CALLER}</a>', "the owner took the call (64 s)"],
    ]
    assert "2025-06-02 13:00:00 CDT" in unanswered[0]  # the business's clock
    assert "Calls the assistant did not answer" not in _page(site, "/owner/calls?page=2")
    assert "Calls the assistant did not answer" not in _page(site, "/owner/calls?q=Dana")
    _sign_in(site, site.spark_token)
    spark = _page(site, "/owner/calls")
    assert SPARK_CALLER in spark.split("<h2>", 1)[1] and OTHER_CALLER not in spark
