"""What an owner does from the pages: text a caller back (only while the caller texted in the last
24 hours or holds a consent in force; never after an opt-out), mark a call handled (its pending
follow-ups cancelled), write notes, cancel one follow-up; find calls by words, number, date,
urgency, consent and handling, and download them as CSV.

Every action and download of one business tried from a session of another is a 404 that changes
nothing; every post needs this site's origin and the session's form token.

The records are those of ``test_owner_dashboard`` (made by the product's own code); the pages are
read and posted through the app's router with ``TestClient``, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import wave
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from consent_ledger import AudioStore, append_event
from dashboard import OWNER_TOKENS
from dashboard.owner_routes import form_token
from dashboard.tables import call_notes, handled_calls
from sms_sender import (
    InboundSms,
    LocalSmsTransport,
    OutboxKind,
    PlannedText,
    dispatch_due,
    handle_inbound,
    list_outbox,
    queue_owner_reply,
    queue_text,
)
from tests.conftest import BACKENDS
from tests.test_owner_dashboard import (
    ACME,
    ACME_NUMBER,
    CALL_BROKEN,
    CALL_NO,
    CALL_SPARK,
    CALL_YES,
    CALLER,
    ESCAPED,
    HOSTILE,
    OTHER_CALLER,
    OUR_ORIGIN,
    SPARK,
    SPARK_CALLER,
    SPARK_NUMBER,
    T0,
    OwnerSite,
    _call,
    _consent,
    _form,
    _page,
    _sign_in,
    owner_site,
)
from voice_agent.records.calls import save_call
from voice_agent.records.sms_policies import policy_for, send_rules
from voice_agent.records.tables import stream_credential_uses

REPLY_KEY = "0123456789abcdef" * 2


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OwnerSite]:
    with owner_site(request.param, tmp_path) as built:
        yield built


def _post(site: OwnerSite, path: str, **data: str) -> tuple[int, str, str]:
    """Post ``data`` with the session's form token from our origin: status, location, body."""
    response = site.client.post(path, data={**_form(site), **data}, headers=OUR_ORIGIN)
    return response.status_code, response.headers.get("location", ""), response.text


def _texted_by(site: OwnerSite, number: str, body: str, minutes_ago: int, sid: str) -> None:
    """``number`` texts Acme ``minutes_ago`` minutes before the site's clock."""
    with site.engine.begin() as conn:
        policy = policy_for(conn, ACME)
        assert policy is not None
        handle_inbound(
            conn,
            InboundSms(sid, number, ACME_NUMBER, body),
            policy,
            site.clock.now - timedelta(minutes=minutes_ago),
        )


def _outbox(site: OwnerSite, kind: OutboxKind, business: str = ACME) -> list[tuple[str, str, str]]:
    with site.engine.connect() as conn:
        return [
            (message.to_number, message.body, message.status.value)
            for message in list_outbox(conn, business)
            if message.kind is kind
        ]


def _follow_up(site: OwnerSite, call_sid: str, number: str, kind: OutboxKind) -> int:
    with site.engine.begin() as conn:
        return queue_text(
            conn,
            PlannedText(
                ACME, call_sid, number, ACME_NUMBER, kind, f"{kind.value} for {call_sid}", "",
                site.clock.now + timedelta(hours=2),
            ),
        ).id  # fmt: skip


# --- replying to a caller -----------------------------------------------------------------------


def test_a_caller_who_texted_today_gets_the_owner_s_reply_through_the_outbox(
    site: OwnerSite,
) -> None:
    _texted_by(site, OTHER_CALLER, "Are you coming today?", 90, "SM" + "5" * 32)
    _sign_in(site)
    page = _page(site, f"/owner/calls/{CALL_NO}")
    assert '<textarea id="reply-body" name="body"' in page
    key = re.search(r'name="reply_key" value="([0-9a-f]{32})"', page)
    assert key is not None

    for _ in range(2):  # the same form sent twice queues one text
        status, location, _ = _post(
            site, f"/owner/calls/{CALL_NO}/reply", body="On our way <b>now</b>", reply_key=key[1]
        )
        assert (status, location) == (303, f"/owner/calls/{CALL_NO}?done=reply#reply")

    assert _outbox(site, OutboxKind.OWNER_REPLY) == [
        (OTHER_CALLER, "On our way <b>now</b>", "scheduled")
    ]
    transport = LocalSmsTransport()
    dispatch_due(site.engine, transport, site.clock.now, rules=send_rules())
    to_caller = [sms.body for sms in transport.delivered if sms.to_number == OTHER_CALLER]
    assert to_caller == ["On our way <b>now</b>"]
    assert _outbox(site, OutboxKind.OWNER_REPLY) == [
        (OTHER_CALLER, "On our way <b>now</b>", "sent")
    ]
    page = _page(site, f"/owner/calls/{CALL_NO}?done=reply")
    assert "Your text is on its way" in page
    thread = page.split('<ol class="thread">', 1)[1]
    assert thread.index("Are you coming today?") < thread.index("On our way &lt;b&gt;now")
    assert "Your reply" in thread and "<b>now" not in page


def test_a_reply_to_an_opted_out_number_is_refused_in_words_and_never_sent(
    site: OwnerSite,
) -> None:
    _texted_by(site, CALLER, "actually please call me", 10, "SM" + "6" * 32)  # after the STOP
    _sign_in(site)
    page = _page(site, f"/owner/calls/{CALL_YES}")
    assert "This number opted out of texts, so you cannot text it. Call them instead." in page
    assert '<textarea id="reply-body"' not in page

    status, _, refused = _post(
        site, f"/owner/calls/{CALL_YES}/reply", body="We can come at 5", reply_key=REPLY_KEY
    )

    assert status == 409
    assert "This number opted out of texts" in refused
    assert _outbox(site, OutboxKind.OWNER_REPLY) == []
    # Even a reply queued behind the page's back is blocked by the dispatcher at send time.
    with site.engine.begin() as conn:
        policy = policy_for(conn, ACME)
        assert policy is not None
        queue_owner_reply(conn, policy, ACME_NUMBER, CALLER, "sneaky", REPLY_KEY, site.clock.now)
    transport = LocalSmsTransport()
    dispatch_due(site.engine, transport, site.clock.now, rules=send_rules())
    assert _outbox(site, OutboxKind.OWNER_REPLY) == [(CALLER, "sneaky", "blocked")]
    with site.engine.connect() as conn:
        (blocked,) = [m for m in list_outbox(conn, ACME) if m.kind is OutboxKind.OWNER_REPLY]
    assert blocked.reason == "opted_out" and blocked.sent_at is None


def test_a_reply_without_a_recent_text_or_consent_is_refused_and_the_draft_kept(
    site: OwnerSite,
) -> None:
    _texted_by(site, OTHER_CALLER, "hello?", 25 * 60, "SM" + "7" * 32)  # over 24 hours ago
    _sign_in(site)
    status, _, refused = _post(
        site, f"/owner/calls/{CALL_NO}/reply", body="Sorry we missed you", reply_key=REPLY_KEY
    )
    assert status == 409
    assert "You can text only someone who texted you in the last 24 hours" in refused
    assert "Sorry we missed you</textarea>" not in refused  # no form: the reason instead
    assert _outbox(site, OutboxKind.OWNER_REPLY) == []


def test_a_consent_s_standing_says_whether_its_window_is_still_open(site: OwnerSite) -> None:
    _sign_in(site, site.spark_token)  # Spark's caller agreed at 09:00 MDT, for 20 hours
    ended = _page(site, f"/owner/calls/{CALL_SPARK}")
    assert (
        "<strong>Now:</strong> Agreed to texts by saying so on a call on 2025-06-02 09:00:10 MDT;"
        " the time allowed for texts ended 2025-06-03 05:00:00 MDT" in ended
    )
    assert "agreed to texts" in _page(site, "/owner/calls")
    site.clock.now = T0 + timedelta(hours=3)
    _sign_in(site, site.spark_token)
    open_now = _page(site, f"/owner/calls/{CALL_SPARK}")
    assert "<strong>Now:</strong> May be texted: agreed by saying so on a call on" in open_now
    assert "until 2025-06-03 05:00:00 MDT." in open_now


def test_a_reply_rests_on_a_consent_in_force(site: OwnerSite) -> None:
    site.clock.now = T0 + timedelta(hours=3)  # inside Spark's caller's 20-hour window
    _sign_in(site, site.spark_token)
    status, _, _ = _post(
        site, f"/owner/calls/{CALL_SPARK}/reply", body="Booked for 9am", reply_key=REPLY_KEY
    )
    assert status == 303
    assert _outbox(site, OutboxKind.OWNER_REPLY, SPARK) == [
        (SPARK_CALLER, "Booked for 9am", "scheduled")
    ]
    with site.engine.connect() as conn:
        (reply,) = [m for m in list_outbox(conn, SPARK) if m.kind is OutboxKind.OWNER_REPLY]
    assert reply.from_number == SPARK_NUMBER


@pytest.mark.parametrize("body", ["", "   ", "x" * 641])
def test_a_reply_must_be_one_to_640_characters(site: OwnerSite, body: str) -> None:
    _texted_by(site, OTHER_CALLER, "hi", 5, "SM" + "8" * 32)
    _sign_in(site)
    status, _, page = _post(site, f"/owner/calls/{CALL_NO}/reply", body=body, reply_key=REPLY_KEY)
    assert status == 400 and "Write a text of 1 to 640 characters." in page
    assert _outbox(site, OutboxKind.OWNER_REPLY) == []


def test_a_reply_from_a_conversation_page(site: OwnerSite) -> None:
    _texted_by(site, OTHER_CALLER, "Is Tuesday OK?", 5, "SM" + "9" * 32)
    _sign_in(site)
    path = "/owner/texts/%2B15125550177"
    assert '<textarea id="reply-body"' in _page(site, path)
    status, location, _ = _post(site, f"{path}/reply", body="Tuesday works", reply_key=REPLY_KEY)
    assert (status, location) == (303, f"{path}?done=reply#reply")
    assert _outbox(site, OutboxKind.OWNER_REPLY) == [(OTHER_CALLER, "Tuesday works", "scheduled")]
    assert _page(site, "/owner/texts/%2B15125550188", 404)  # no texts with that number


# --- handled, notes, follow-ups ----------------------------------------------------------------


def test_marking_a_call_handled_cancels_its_pending_follow_ups(site: OwnerSite) -> None:
    check = _follow_up(site, CALL_NO, OTHER_CALLER, OutboxKind.CALLBACK_CHECK)
    _sign_in(site)
    assert "Did we reach you" not in _page(site, f"/owner/calls/{CALL_NO}")
    assert f"/follow-ups/{check}/cancel" in _page(site, f"/owner/calls/{CALL_NO}")

    status, location, _ = _post(site, f"/owner/calls/{CALL_NO}/handled")

    assert (status, location) == (303, f"/owner/calls/{CALL_NO}?done=handled")
    assert _outbox(site, OutboxKind.CALLBACK_CHECK) == [
        (OTHER_CALLER, f"callback_check for {CALL_NO}", "cancelled")
    ]
    page = _page(site, f"/owner/calls/{CALL_NO}")
    assert "Handled 2025-06-03 10:00:00 CDT by Acme owner." in page
    assert "the owner marked the call handled" in page  # the cancelled text says why
    assert f"/owner/calls/{CALL_NO}/handled" not in page
    with site.engine.connect() as conn:
        (mark,) = conn.execute(select(handled_calls)).all()
    assert (mark.call_sid, mark.business_id, mark.handled_by) == (CALL_NO, ACME, "Acme owner")
    listed = _page(site, "/owner/calls?handled=yes")
    assert f"/owner/calls/{CALL_NO}" in listed and f"/owner/calls/{CALL_YES}" not in listed
    assert f"/owner/calls/{CALL_NO}" not in _page(site, "/owner/calls?handled=no")


def test_the_owner_cancels_one_follow_up_and_the_other_stays(site: OwnerSite) -> None:
    nudge = _follow_up(site, CALL_NO, OTHER_CALLER, OutboxKind.NO_REPLY_FOLLOW_UP)
    _follow_up(site, CALL_NO, OTHER_CALLER, OutboxKind.CALLBACK_CHECK)
    _sign_in(site)

    status, location, _ = _post(site, f"/owner/calls/{CALL_NO}/follow-ups/{nudge}/cancel")

    assert (status, location) == (303, f"/owner/calls/{CALL_NO}?done=cancelled")
    assert _outbox(site, OutboxKind.NO_REPLY_FOLLOW_UP)[0][2] == "cancelled"
    assert _outbox(site, OutboxKind.CALLBACK_CHECK)[0][2] == "scheduled"
    again = _post(site, f"/owner/calls/{CALL_NO}/follow-ups/{nudge}/cancel")
    assert again[0] == 409 and "already cancelled" in again[2]
    # A text of another call's number, or one that is not a follow-up, is not this call's.
    with site.engine.connect() as conn:
        (confirmation,) = [m.id for m in list_outbox(conn, ACME, CALL_YES)][:1]
    assert _post(site, f"/owner/calls/{CALL_NO}/follow-ups/{confirmation}/cancel")[0] == 404
    for bad in ("0", "x", "99999"):
        assert _post(site, f"/owner/calls/{CALL_NO}/follow-ups/{bad}/cancel")[0] == 404


def test_notes_are_kept_with_who_and_when_and_shown_as_text(site: OwnerSite) -> None:
    _sign_in(site)
    status, location, _ = _post(site, f"/owner/calls/{CALL_NO}/notes", body=f"Rang back {HOSTILE}")
    assert (status, location) == (303, f"/owner/calls/{CALL_NO}?done=note")
    page = _page(site, f"/owner/calls/{CALL_NO}")
    assert f'Rang back {ESCAPED} <span class="muted">(Acme owner, 2025-06-03 10:00:00 CDT)' in page
    assert HOSTILE not in page
    for empty in ("", "  ", "x" * 2001):
        refused = _post(site, f"/owner/calls/{CALL_NO}/notes", body=empty)
        assert refused[0] == 400 and "A note is 1 to 2,000 characters." in refused[2]
    with site.engine.connect() as conn:
        assert len(conn.execute(select(call_notes)).all()) == 1


# --- forms from elsewhere ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/owner/calls/{CALL_NO}/handled",
        f"/owner/calls/{CALL_NO}/notes",
        f"/owner/calls/{CALL_NO}/reply",
        "/owner/sign-out",
    ],
)
def test_posts_need_our_origin_and_the_session_s_form_token(site: OwnerSite, path: str) -> None:
    _texted_by(site, OTHER_CALLER, "hi", 5, "SM" + "4" * 32)
    _sign_in(site)
    data = {"body": "x", "reply_key": REPLY_KEY}
    token = _form(site)
    attempts = [
        ({**data, **token}, {}),  # no Origin, no Referer
        ({**data, **token}, {"Origin": "https://evil.example"}),
        ({**data, **token}, {"Referer": "https://evil.example/owner/calls"}),
        (data, OUR_ORIGIN),  # no form token
        ({**data, "csrf": "0" * 64}, OUR_ORIGIN),
        ({**data, "csrf": form_token("another-session-secret")}, OUR_ORIGIN),
        ({**data, "csrf": "é"}, OUR_ORIGIN),
    ]
    for form, headers in attempts:
        response = site.client.post(path, data=form, headers=headers)
        assert response.status_code == 403, (form, headers)
        assert "Form refused" in response.text
    with site.engine.connect() as conn:
        assert conn.execute(select(handled_calls)).all() == []
        assert conn.execute(select(call_notes)).all() == []
    assert _outbox(site, OutboxKind.OWNER_REPLY) == []
    assert _page(site, "/owner/calls")  # still signed in


# --- another business's things ------------------------------------------------------------------


def test_every_page_action_and_download_of_acme_is_not_found_for_spark(site: OwnerSite) -> None:
    _texted_by(site, OTHER_CALLER, "hi", 5, "SM" + "3" * 32)
    nudge = _follow_up(site, CALL_NO, OTHER_CALLER, OutboxKind.NO_REPLY_FOLLOW_UP)
    _sign_in(site, site.spark_token)
    for path in (
        f"/owner/calls/{CALL_YES}",
        f"/owner/calls/{CALL_NO}",
        "/owner/texts/%2B15125550123",
        "/owner/texts/%2B15125550177",
    ):
        assert site.client.get(path).status_code == 404, path
    for path, data in (
        (f"/owner/calls/{CALL_NO}/reply", {"body": "x", "reply_key": REPLY_KEY}),
        (f"/owner/calls/{CALL_NO}/handled", {}),
        (f"/owner/calls/{CALL_NO}/notes", {"body": "x"}),
        (f"/owner/calls/{CALL_NO}/follow-ups/{nudge}/cancel", {}),
        (f"/owner/calls/{CALL_SPARK}/follow-ups/{nudge}/cancel", {}),  # Spark's call, Acme's text
        ("/owner/texts/%2B15125550177/reply", {"body": "x", "reply_key": REPLY_KEY}),
    ):
        assert _post(site, path, **data)[0] == 404, path
    download = site.client.get("/owner/calls.csv?q=burst")
    assert download.status_code == 200 and len(list(csv.reader(io.StringIO(download.text)))) == 1
    everything = site.client.get("/owner/calls.csv").text
    assert CALL_YES not in everything and CALL_NO not in everything and CALLER not in everything
    assert "SPARK-ONLY caller" in everything
    with site.engine.connect() as conn:
        assert conn.execute(select(handled_calls)).all() == []
        assert conn.execute(select(call_notes)).all() == []
    assert _outbox(site, OutboxKind.NO_REPLY_FOLLOW_UP) == [
        (OTHER_CALLER, f"no_reply_follow_up for {CALL_NO}", "scheduled")
    ]
    assert _outbox(site, OutboxKind.OWNER_REPLY) == []


# --- the recorded answer ------------------------------------------------------------------------


def _wav(seconds: float = 0.5) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x00\x01" * int(8000 * seconds))
    return out.getvalue()


def test_a_recorded_answer_plays_on_the_call_s_page_for_its_business_only(
    site: OwnerSite, tmp_path: Path
) -> None:
    wav = _wav()
    digest = AudioStore(tmp_path / "audio").put(wav)
    call_sid = "CA" + "f6" * 16
    with site.engine.begin() as conn:
        evidence = _consent(ACME, OTHER_CALLER, call_sid, T0 + timedelta(hours=5), "yes")
        grant = append_event(
            conn, dataclasses.replace(evidence, audio_sha256=digest), T0 + timedelta(hours=5)
        )
        save_call(conn, _call(call_sid, ACME, OTHER_CALLER, T0 + timedelta(hours=5), grant))
    _sign_in(site)
    page = _page(site, f"/owner/calls/{call_sid}")
    assert f'<audio controls preload="none" src="/owner/calls/{call_sid}/answer.wav">' in page
    response = site.client.get(f"/owner/calls/{call_sid}/answer.wav")
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    assert response.content == wav
    assert "media-src 'self'" in response.headers["content-security-policy"]
    assert "<audio" not in _page(site, f"/owner/calls/{CALL_YES}")  # nothing was recorded
    assert site.client.get(f"/owner/calls/{CALL_YES}/answer.wav").status_code == 404
    _sign_in(site, site.spark_token)
    assert site.client.get(f"/owner/calls/{call_sid}/answer.wav").status_code == 404


# --- on a call now --------------------------------------------------------------------------------


def _stream_admitted(site: OwnerSite, call_sid: str, business: str, minutes_ago: int) -> None:
    at = site.clock.now - timedelta(minutes=minutes_ago)
    with site.engine.begin() as conn:
        conn.execute(
            insert(stream_credential_uses).values(
                call_sid=call_sid, business_id=business, used_at=at, expires_at=at
            )
        )


def test_the_live_page_lists_the_business_s_calls_in_progress(site: OwnerSite) -> None:
    _stream_admitted(site, "CA" + "71" * 16, ACME, 5)  # in progress
    _stream_admitted(site, "CA" + "72" * 16, ACME, 31)  # too old to be one
    _stream_admitted(site, CALL_YES, ACME, 2)  # stored: it ended
    _stream_admitted(site, "CA" + "73" * 16, SPARK, 1)  # another business's
    _sign_in(site)
    html = _page(site, "/owner/live")
    items = re.findall(r"<li>(.*?)</li>", html.split('id="live-calls"', 1)[1].split("</ul>")[0])
    assert items == ["The assistant is on a call that started at 09:55:00 CDT (5 min ago)."]
    assert '<script src="/owner/live.js" defer></script>' in html
    script = site.client.get("/owner/live.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "EventSource" in script.text and "textContent" in script.text


def test_live_events_carry_the_calls_in_progress(site: OwnerSite) -> None:
    app = site.client.app
    app.state.owner = dataclasses.replace(app.state.owner, live_interval=0.0, live_updates=2)  # type: ignore[attr-defined]
    _stream_admitted(site, "CA" + "74" * 16, ACME, 1)
    assert site.client.get("/owner/live/events").headers["location"] == "/owner/sign-in"
    _sign_in(site)
    response = site.client.get("/owner/live/events")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [block for block in response.text.split("\n\n") if block.startswith("event:")]
    assert len(events) == 2
    name, data = events[0].split("\n")
    assert name == "event: calls"
    assert json.loads(data.removeprefix("data: ")) == [
        "The assistant is on a call that started at 09:59:00 CDT (1 min ago)."
    ]

    with site.engine.begin() as conn:  # the owner's token is revoked: the stream ends at once
        (token,) = OWNER_TOKENS.tokens(conn, ACME)
        OWNER_TOKENS.revoke(conn, token.id, site.clock.now)
    ended = site.client.get("/owner/live/events")
    assert ended.status_code == 303  # refused at the start


# --- finding calls ------------------------------------------------------------------------------


def _listed(site: OwnerSite, query: str) -> list[str]:
    html = _page(site, f"/owner/calls?{query}")
    return re.findall(r'href="/owner/calls/(CA\w+)"', html)


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("q=Dana", [CALL_NO]),
        ("q=dana", [CALL_NO]),
        ("q=burst", [CALL_YES]),  # said on the call, and the need
        ("q=ELM+st", [CALL_YES]),  # the address
        ("q=%28512%29+555-0177", [CALL_BROKEN, CALL_NO]),  # a number as people write it
        ("q=5550124", [CALL_YES]),  # the callback number
        ("q=100%25", []),  # a wildcard is a character like any other
        ("q=_", []),
        ("urgency=emergency", [CALL_YES]),
        ("urgency=routine", [CALL_NO]),
        ("consent=revoked", [CALL_YES]),
        ("consent=none", [CALL_BROKEN, CALL_NO]),
        ("consent=granted", []),
        ("from=2025-06-02&to=2025-06-02", [CALL_BROKEN, CALL_NO, CALL_YES]),
        ("from=2025-06-03", []),
        ("to=2025-06-01", []),
        ("q=Dana&urgency=emergency", []),
    ],
)
def test_calls_are_found_by_words_numbers_dates_urgency_and_consent(
    site: OwnerSite, query: str, found: list[str]
) -> None:
    _sign_in(site)
    listed = _listed(site, f"{query}&page=1" if query else "")
    assert listed == found[:2] or listed == found  # two calls a page in these tests
    if len(found) > 2:
        assert _listed(site, f"{query}&page=2") == found[2:]


def test_the_day_is_the_business_s_day(site: OwnerSite) -> None:
    _sign_in(site)
    # CALL_BROKEN started 18:00 UTC on 2 June, 13:00 in Chicago: 2 June there, whatever UTC says.
    assert _listed(site, "from=2025-06-02&to=2025-06-02&q=555-0177") == [CALL_BROKEN, CALL_NO]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=yesterday", "From must be a date like 2025-06-30."),
        ("to=2025-02-30", "To must be a date like 2025-06-30."),
        ("from=2025-06-03&to=2025-06-01", "The From date must not be after the To date."),
        ("urgency=panic", "There is no urgency choice"),
        ("consent=maybe", "There is no texts choice"),
        ("handled=perhaps", "There is no handled choice"),
        ("q=" + "x" * 101, "Search for at most 100 characters."),
    ],
)
def test_a_search_that_cannot_run_says_why(site: OwnerSite, query: str, message: str) -> None:
    _sign_in(site)
    assert message in _page(site, f"/owner/calls?{query}", 400)
    response = site.client.get(f"/owner/calls.csv?{query}")
    assert response.status_code == 400 and message in response.text


def test_the_pager_keeps_the_search(site: OwnerSite) -> None:
    _sign_in(site)
    html = _page(site, "/owner/calls?q=zebra&consent=&urgency=")
    assert "No calls match." in html
    html = _page(site, "/owner/calls?from=2025-06-01")
    assert 'href="/owner/calls?from=2025-06-01&amp;page=2" rel="next"' in html
    assert 'href="/owner/calls.csv?from=2025-06-01"' in html


def test_the_csv_holds_the_searched_calls_on_the_business_s_clock(site: OwnerSite) -> None:
    _sign_in(site)
    response = site.client.get("/owner/calls.csv?from=2025-06-02")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="calls-acme-plumbing-2025-06-03.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:3] == ["started", "caller name", "caller number"]
    assert [row[-1].rsplit("/", 1)[1] for row in rows[1:]] == [CALL_BROKEN, CALL_NO, CALL_YES]
    emergency = rows[3]
    assert emergency[0] == "2025-06-02 10:00:00 CDT" and emergency[1] == HOSTILE
    assert emergency[2] == CALLER and emergency[4] == "emergency" and emergency[5] == "opted out"


def test_the_csv_never_hands_a_spreadsheet_a_formula(site: OwnerSite) -> None:
    from tests.test_owner_dashboard import _call
    from voice_agent.records.calls import save_call

    with site.engine.begin() as conn:
        save_call(
            conn,
            _call(
                "CA" + "e5" * 16, ACME, OTHER_CALLER, T0 + timedelta(hours=4), None,
                caller_name='=HYPERLINK("http://evil.example","x")', need="@SUM(A1)",
            ),
        )  # fmt: skip
    _sign_in(site)
    rows = list(csv.reader(io.StringIO(site.client.get("/owner/calls.csv?q=evil").text)))
    assert rows[1][1] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows[1][3] == "'@SUM(A1)" and rows[1][2] == OTHER_CALLER
