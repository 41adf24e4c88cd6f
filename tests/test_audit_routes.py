"""Auditor routes over HTTP: a token opens its own business's records, read-only; nothing else.

Runs the router in a FastAPI app of its own, through ``TestClient``, on SQLite and on PostgreSQL
when it is reachable.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response  # what starlette.testclient returns here
from sqlalchemy import Connection, Engine, update

from consent_ledger.audio_store import AudioStore
from consent_ledger.chain import append_event
from consent_ledger.evidence import (
    AnswerEvidence,
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    EventKind,
    ScriptEvidence,
    WordEvidence,
)
from consent_ledger.gate import revoke
from consent_ledger.queries import events_for_number
from consent_ledger.tables import consent_events
from dashboard import audit_routes
from dashboard.access_tokens import AttemptLimiter
from dashboard.audit_routes import AuditContext, audit_router
from dashboard.auditor_tokens import issue_token, list_tokens, revoke_token
from dashboard.call_log import BusinessProfile
from sms_sender import OutboxKind, PlannedText, queue_text
from tests.clock_support import SteppingClock
from tests.ledger_support import answer_wav, audit_database, drop_append_only_triggers, sha256_hex
from voice_agent.records.database import make_engine

T0 = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)
ACME = "acme-plumbing"
SPARK = "bright-spark-electric"
CALLER = "+15125550123"
NEIGHBOUR = "+15125550188"
SPARK_ONLY = "+15125550199"
SCRIPT = (
    "This is Acme Plumbing's automated assistant. May we text you up to 2 messages about this "
    "call in the next 24 hours? Msg & data rates may apply. Reply STOP to opt out. Is that okay?"
)


@dataclass(frozen=True)
class AuditSite:
    client: TestClient
    engine: Engine
    clock: SteppingClock
    audio: AudioStore
    acme_token: str


# --- fixtures ---------------------------------------------------------------------------------


def _grant(
    business_id: str, number: str, at: datetime, audio_sha256: str | None = None
) -> ConsentEvidence:
    """A verbal consent: the script started at ``at``, the caller said "yes please" 9 s later."""
    confirmed = at + timedelta(seconds=8)
    answered = at + timedelta(seconds=9)
    words = (
        WordEvidence("yes", answered, answered + timedelta(milliseconds=300), 0.97),
        WordEvidence(
            "please",
            answered + timedelta(milliseconds=300),
            answered + timedelta(milliseconds=700),
            0.91,
        ),
    )
    return ConsentEvidence(
        business_id=business_id,
        business_name=f"{business_id} <b>&amp; sons</b>",
        phone_number=number,
        call_sid="CA" + "1" * 32,
        stream_sid="MZ" + "2" * 32,
        kind=EventKind.CONSENT_GRANTED,
        method=ConsentMethod.VERBAL,
        script=ScriptEvidence("v1", SCRIPT, sha256_hex(SCRIPT), at, confirmed),
        answers=(
            AnswerEvidence(
                "yes please",
                words,
                "faster-whisper/tiny.en",
                0.94,
                answered,
                answered + timedelta(seconds=1),
            ),
        ),
        classifier="keyword-yes",
        classifier_version="1",
        reasked=False,
        scope=ConsentScope("follow-up about this call", 2, at + timedelta(hours=20)),
        occurred_at=at + timedelta(seconds=10),
        audio_sha256=audio_sha256,
    )


def _record_history(engine: Engine) -> None:
    """Acme: the caller consents then texts STOP, a neighbour consents. Spark: its own caller."""
    with engine.begin() as conn:
        append_event(conn, _grant(ACME, CALLER, T0), T0 + timedelta(seconds=11))
        append_event(conn, _grant(ACME, NEIGHBOUR, T0), T0 + timedelta(seconds=12))
        stop_at = T0 + timedelta(hours=1)
        revoke(conn, ACME, "Acme", CALLER, ConsentMethod.SMS_KEYWORD, stop_at, stop_at)
        append_event(conn, _grant(SPARK, SPARK_ONLY, T0), T0 + timedelta(seconds=13))


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditSite]:
    with audit_database(request.param, tmp_path) as engine:
        _record_history(engine)
        with engine.begin() as conn:
            acme_token = issue_token(conn, ACME, "carrier", T0, timedelta(days=7)).secret
        clock = SteppingClock(T0 + timedelta(days=1))
        app = FastAPI()
        reader = make_engine(engine.url.render_as_string(hide_password=False), read_only=True)
        app.state.audit = AuditContext(engine, reader, tmp_path / "audio", clock)
        app.include_router(audit_router())
        with TestClient(app) as client:
            yield AuditSite(client, engine, clock, AudioStore(tmp_path / "audio"), acme_token)
        reader.dispose()


def _get(site: AuditSite, path: str, token: str | None = None) -> Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return site.client.get(path, headers=headers)


def _issue(site: AuditSite, business_id: str, lifetime: timedelta = timedelta(days=7)) -> str:
    with site.engine.begin() as conn:
        return issue_token(conn, business_id, "", site.clock(), lifetime).secret


def _tamper(engine: Engine, business_id: str, seq: int, **values: Any) -> None:
    """Change a stored event through a raw connection, with the append-only triggers dropped."""
    with engine.begin() as conn:
        drop_append_only_triggers(conn)
        conn.execute(
            update(consent_events)
            .where(consent_events.c.business_id == business_id)
            .where(consent_events.c.seq == seq)
            .values(**values)
        )


# --- who gets in ------------------------------------------------------------------------------


def test_no_token_is_401_with_a_bearer_challenge(site: AuditSite) -> None:
    response = _get(site, f"/audit/numbers/{CALLER}")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "error=" not in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer rcpt_audit_" + "A" * 43,
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "rcpt_audit_" + "A" * 43,
        "Bearer rcpt_audit_" + "A" * 4000,
        "Bearer ' OR 1=1 --",
    ],
)
def test_a_wrong_token_is_401(site: AuditSite, authorization: str) -> None:
    response = site.client.get(f"/audit/numbers/{CALLER}", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert CALLER not in response.text


def test_the_scheme_is_case_insensitive(site: AuditSite) -> None:
    response = site.client.get(
        f"/audit/numbers/{CALLER}", headers={"Authorization": f"bearer {site.acme_token}"}
    )
    assert response.status_code == 200


def test_a_revoked_token_is_401(site: AuditSite) -> None:
    assert _get(site, f"/audit/numbers/{CALLER}", site.acme_token).status_code == 200
    with site.engine.begin() as conn:
        (token,) = list_tokens(conn, ACME)
        revoke_token(conn, token.id, site.clock())
    response = _get(site, f"/audit/numbers/{CALLER}", site.acme_token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_an_expired_token_is_401(site: AuditSite) -> None:
    token = _issue(site, ACME, lifetime=timedelta(hours=1))
    assert _get(site, f"/audit/numbers/{CALLER}", token).status_code == 200
    site.clock.now += timedelta(hours=1)
    assert _get(site, f"/audit/numbers/{CALLER}", token).status_code == 401


def test_an_address_that_keeps_presenting_bad_tokens_is_429(site: AuditSite) -> None:
    limiter = site.client.app.state.audit.token_attempts  # type: ignore[attr-defined]
    wrong = "rcpt_audit_" + "A" * 43
    for _ in range(limiter.max_failures):
        assert _get(site, f"/audit/numbers/{CALLER}", wrong).status_code == 401
    refused = _get(site, f"/audit/numbers/{CALLER}", wrong)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    # While refused, the address cannot try even a good token (nor learn that it is one).
    assert _get(site, f"/audit/numbers/{CALLER}", site.acme_token).status_code == 429
    assert _export(site, site.acme_token, number=CALLER).status_code == 429
    assert CALLER not in refused.text


def test_good_tokens_are_not_limited(site: AuditSite) -> None:
    limiter = site.client.app.state.audit.token_attempts  # type: ignore[attr-defined]
    for _ in range(limiter.max_failures * 2):
        assert _get(site, f"/audit/numbers/{CALLER}", site.acme_token).status_code == 200


def test_the_limiter_forgets_failures_once_the_window_has_passed() -> None:
    now = [1000.0]
    limiter = AttemptLimiter(max_failures=3, window=60.0, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") is None
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 60
    assert limiter.retry_after("10.0.0.2") is None  # per address
    now[0] += 59.5
    assert limiter.retry_after("10.0.0.1") == 1
    now[0] += 0.5
    assert limiter.retry_after("10.0.0.1") is None
    limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") is None  # one recent failure is under the limit


def test_the_limiter_keeps_a_bounded_number_of_addresses() -> None:
    limiter = AttemptLimiter(max_failures=1, window=60.0, max_addresses=100, clock=lambda: 5.0)
    for index in range(1000):
        limiter.failed(f"10.0.{index // 256}.{index % 256}")
    assert len(limiter._failures) == 100
    assert limiter.retry_after("10.0.3.231") is not None  # the latest are kept
    assert limiter.retry_after("10.0.0.0") is None


def test_the_token_check_comes_before_the_number_check(site: AuditSite) -> None:
    assert _get(site, "/audit/numbers/abc").status_code == 401


def test_use_is_recorded_on_the_token(site: AuditSite) -> None:
    _get(site, f"/audit/numbers/{CALLER}", site.acme_token)
    with site.engine.connect() as conn:
        (token,) = list_tokens(conn, ACME)
    assert token.last_used_at == site.clock()


# --- what a token sees ------------------------------------------------------------------------


def test_another_business_s_number_is_404_like_an_unknown_one(site: AuditSite) -> None:
    elsewhere = _get(site, f"/audit/numbers/{SPARK_ONLY}", site.acme_token)
    unknown = _get(site, "/audit/numbers/+15125550111", site.acme_token)

    assert elsewhere.status_code == unknown.status_code == 404
    assert elsewhere.json() == unknown.json()
    assert SPARK not in elsewhere.text
    assert _get(site, f"/audit/numbers/{SPARK_ONLY}", _issue(site, SPARK)).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "+1" + "5" * 100,
        "%00",
        "..%2F",  # the server sees "../": clients normalise a literal "../" away before sending
        "..%2F..%2Fetc%2Fpasswd",
        "15125550123",
        "+1%20512%20555%200123",
        "+0123456789",
        "+1",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "+1512555012%C3%A9",
        "+999123",  # no such country code: the parser refuses it (this once was a 500)
        "+999123456789",
    ],
)
def test_a_malformed_number_is_422_and_not_repeated(site: AuditSite, raw: str) -> None:
    response = _get(site, f"/audit/numbers/{raw}", site.acme_token)
    assert response.status_code == 422
    assert response.json() == {"detail": "not a phone number in E.164 form, like +15125550123"}
    assert "script" not in response.text and "passwd" not in response.text


def test_a_number_s_history_in_chain_order_with_a_verified_chain(site: AuditSite) -> None:
    response = _get(site, f"/audit/numbers/{CALLER}", site.acme_token)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    audit = response.json()
    assert (audit["business_id"], audit["phone_number"]) == (ACME, CALLER)
    granted, revoked = audit["events"]
    assert [granted["seq"], revoked["seq"]] == [1, 3]
    assert [granted["kind"], revoked["kind"]] == ["consent_granted", "revoked"]
    assert granted["method"] == "verbal" and revoked["method"] == "sms_keyword"
    assert granted["recorded_at"] == "2025-06-02T15:00:11.000000Z"
    assert granted["script"]["text"] == SCRIPT
    assert granted["script"]["version"] == "v1"
    assert granted["script"]["sha256"] == sha256_hex(SCRIPT)
    (answer,) = granted["answers"]
    assert answer["transcript"] == "yes please"
    assert answer["started_at"] == "2025-06-02T15:00:09.000000Z"
    assert [word["word"] for word in answer["words"]] == ["yes", "please"]
    assert revoked["revokes"] == granted["hash"]
    assert granted["business_name"] == "acme-plumbing <b>&amp; sons</b>"
    assert audit["verification"] == {
        "ok": True,
        "events_checked": 3,
        "audio_checked": 0,
        "audio_purged": 0,
        "first_broken": None,
    }
    assert audit["standing"] == {
        "status": "revoked",
        "rests_on_seq": 3,
        "consent_seq": 1,
        "window_start": "2025-06-02T15:00:11.000000Z",
        "window_end": "2025-06-03T11:00:00.000000Z",
        "window_open": False,
        "max_texts": 2,
        "last_seq": 3,
    }


def test_the_standing_says_whether_the_window_is_open_now(site: AuditSite) -> None:
    site.clock.now = T0 + timedelta(hours=2)
    standing = _get(site, f"/audit/numbers/{NEIGHBOUR}", site.acme_token).json()["standing"]
    assert (standing["status"], standing["rests_on_seq"], standing["window_open"]) == (
        "granted",
        2,
        True,
    )
    site.clock.now = T0 + timedelta(hours=20)
    standing = _get(site, f"/audit/numbers/{NEIGHBOUR}", site.acme_token).json()["standing"]
    assert standing["window_open"] is False


def test_each_event_can_be_checked_without_our_code(site: AuditSite) -> None:
    events = _get(site, f"/audit/numbers/{CALLER}", site.acme_token).json()["events"]
    for event in events:
        recomputed = hashlib.sha256((event["prev_hash"] + event["canonical_body"]).encode())
        assert recomputed.hexdigest() == event["hash"]
    assert events[0]["prev_hash"] == "0" * 64


def test_a_changed_event_of_another_number_is_named_by_the_verification(site: AuditSite) -> None:
    _tamper(site.engine, ACME, 2, prev_hash="f" * 64)

    audit = _get(site, f"/audit/numbers/{CALLER}", site.acme_token).json()

    assert [event["seq"] for event in audit["events"]] == [1, 3]
    assert audit["verification"]["ok"] is False
    assert audit["verification"]["first_broken"]["seq"] == 2
    assert "prev_hash" in audit["verification"]["first_broken"]["reason"]


def test_a_changed_event_of_this_number_is_reported_not_served(site: AuditSite) -> None:
    _tamper(site.engine, ACME, 3, kind="consent_granted")

    response = _get(site, f"/audit/numbers/{CALLER}", site.acme_token)

    assert response.status_code == 200
    audit = response.json()
    assert audit["events"] is None
    assert "#3" in audit["records_error"]
    assert audit["verification"]["first_broken"]["seq"] == 3
    assert (
        audit["verification"]["first_broken"]["reason"]
        == "kind column does not match the hashed body"
    )


def test_another_business_s_broken_chain_does_not_fail_this_one(site: AuditSite) -> None:
    _tamper(site.engine, SPARK, 1, body="{}")
    audit = _get(site, f"/audit/numbers/{CALLER}", site.acme_token).json()
    assert audit["verification"]["ok"] is True


# --- answer audio -----------------------------------------------------------------------------


ANSWER_WAV = answer_wav(seconds=1.0, tone=256)


def _record_with_audio(site: AuditSite) -> str:
    """A consent whose answer audio is kept; returns the audio's hash (the event is Acme #4)."""
    audio_sha256 = site.audio.put(ANSWER_WAV)
    with site.engine.begin() as conn:
        append_event(
            conn, _grant(ACME, "+15125550177", T0, audio_sha256), T0 + timedelta(seconds=20)
        )
    return audio_sha256


def test_the_answer_audio_is_checked_with_the_chain(site: AuditSite) -> None:
    _record_with_audio(site)
    audit = _get(site, "/audit/numbers/+15125550177", site.acme_token).json()
    assert audit["events"][0]["audio_sha256"] == hashlib.sha256(ANSWER_WAV).hexdigest()
    assert audit["verification"]["ok"] is True
    assert audit["verification"]["audio_checked"] == 1


def test_missing_audio_breaks_the_chain_and_purged_audio_does_not(site: AuditSite) -> None:
    audio_sha256 = _record_with_audio(site)
    site.audio.path(audio_sha256).unlink()

    broken = _get(site, f"/audit/numbers/{CALLER}", site.acme_token).json()["verification"]
    site.audio.purge(audio_sha256, "retention", T0 + timedelta(days=1))
    purged = _get(site, f"/audit/numbers/{CALLER}", site.acme_token).json()["verification"]

    assert broken["ok"] is False and broken["first_broken"]["seq"] == 4
    assert (purged["ok"], purged["audio_purged"], purged["audio_checked"]) == (True, 1, 0)


# --- the export -------------------------------------------------------------------------------


def _export(site: AuditSite, token: str | None = None, **params: str) -> Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return site.client.get("/audit/export", params=params, headers=headers)


def _packet_events(response: Response) -> list[dict[str, Any]]:
    with zipfile.ZipFile(io.BytesIO(response.content)) as packet:
        lines = packet.read("events.jsonl").decode().splitlines()
    return [json.loads(line) for line in lines]


def test_the_export_needs_a_token(site: AuditSite) -> None:
    response = _export(site, number=CALLER)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert _export(site, "rcpt_audit_" + "A" * 43, number=CALLER).status_code == 401


def test_a_number_s_packet_holds_its_events_and_verifies_offline(
    site: AuditSite, tmp_path: Path
) -> None:
    response = _export(site, site.acme_token, number=CALLER)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == (
        'attachment; filename="consent-audit-acme-plumbing-15125550123-20250603T150000Z.zip"'
    )
    assert [(e["seq"], e["kind"]) for e in _packet_events(response)] == [
        (1, "consent_granted"),
        (3, "revoked"),
    ]
    packet = tmp_path / "packet.zip"
    packet.write_bytes(response.content)
    with zipfile.ZipFile(packet) as archive:
        (tmp_path / "verify.py").write_bytes(archive.read("verify.py"))
    checked = subprocess.run(
        [sys.executable, str(tmp_path / "verify.py"), str(packet)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_without_a_number_the_packet_is_the_whole_business_and_nothing_else(
    site: AuditSite,
) -> None:
    response = _export(site, site.acme_token)
    events = _packet_events(response)
    assert [(e["business_id"], e["seq"]) for e in events] == [(ACME, 1), (ACME, 2), (ACME, 3)]
    assert "all" in response.headers["content-disposition"]


@dataclass(frozen=True)
class AustinCallLog:
    """The call log's one answer the audit export asks for: the business's time zone."""

    def business(self, conn: Connection, business_id: str) -> BusinessProfile | None:
        return BusinessProfile(business_id, "Acme", "America/Chicago")


def test_the_packet_holds_the_texts_sent_under_each_consent_on_the_business_s_clock(
    site: AuditSite,
) -> None:
    with site.engine.begin() as conn:
        granted = events_for_number(conn, ACME, CALLER)[0]
        queue_text(
            conn,
            PlannedText(
                ACME, "CA1", CALLER, "+15125550100", OutboxKind.CONFIRMATION,
                "Acme: thanks for calling. Reply STOP to opt out.", granted.hash, T0,
            ),
        )  # fmt: skip
    plain = _export(site, site.acme_token, number=CALLER)
    site.client.app.state.audit = replace(site.client.app.state.audit, call_log=AustinCallLog())
    local = _export(site, site.acme_token, number=CALLER)

    for response in (plain, local):
        with zipfile.ZipFile(io.BytesIO(response.content)) as packet:
            texts = [json.loads(line) for line in packet.read("texts.jsonl").splitlines()]
            manifest = json.loads(packet.read("manifest.json"))
        assert [(t["consent_event_hash"], t["body"]) for t in texts] == [
            (granted.hash, "Acme: thanks for calling. Reply STOP to opt out.")
        ]
        assert manifest["texts"] == 1
    assert b"CDT" in _report_text(local) and b"CDT" not in _report_text(plain)


def _report_text(response: Response) -> bytes:
    with zipfile.ZipFile(io.BytesIO(response.content)) as packet:
        pdf = packet.read("report.pdf")
    return b"".join(
        zlib.decompress(stream)
        for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.DOTALL)
    )


def test_the_period_limits_the_events(site: AuditSite) -> None:
    before_stop = _export(
        site, site.acme_token, number=CALLER, **{"from": "2025-06-02", "to": "2025-06-02T15:30Z"}
    )
    from_stop = _export(
        site, site.acme_token, number=CALLER, **{"from": "2025-06-02T11:30:00-04:00"}
    )
    assert [e["seq"] for e in _packet_events(before_stop)] == [1]
    assert [e["seq"] for e in _packet_events(from_stop)] == [3]


def test_json_and_csv_summaries(site: AuditSite) -> None:
    as_json = _export(site, site.acme_token, number=CALLER, format="json")
    as_csv = _export(site, site.acme_token, number=CALLER, format="csv")

    assert as_json.headers["content-type"] == "application/json"
    summaries = as_json.json()
    assert [(s["kind"], s["method"]) for s in summaries] == [
        ("consent_granted", "verbal"),
        ("revoked", "sms_keyword"),
    ]
    assert summaries[0]["answer_transcript"] == "yes please"
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [row["kind"] for row in rows] == ["consent_granted", "revoked"]
    assert as_csv.headers["content-disposition"].endswith('.csv"')


def test_an_unencoded_plus_is_read_as_plus(site: AuditSite) -> None:
    response = site.client.get(
        f"/audit/export?number={CALLER}&format=json",
        headers={"Authorization": f"Bearer {site.acme_token}"},
    )
    assert response.status_code == 200
    assert len(response.json()) == 2


def test_the_export_never_reveals_another_business_s_number(site: AuditSite) -> None:
    elsewhere = _export(site, site.acme_token, number=SPARK_ONLY)
    unknown = _export(site, site.acme_token, number="+15125550111")
    assert elsewhere.status_code == unknown.status_code == 404
    assert elsewhere.json() == unknown.json()


REFUSED_FOR_ANOTHER_BUSINESS = {
    "detail": "this auditor token opens one business's records only, and not the business named"
}


@pytest.mark.parametrize("parameter", ["business", "business_id"])
@pytest.mark.parametrize("named", [SPARK, "no-such-business", ACME.upper()])
def test_a_request_naming_another_business_is_refused_not_answered_with_its_own(
    site: AuditSite, parameter: str, named: str
) -> None:
    token = site.acme_token
    paths = [
        f"/audit/numbers/{CALLER}?{parameter}={named}",
        f"/audit/numbers/{SPARK_ONLY}?{parameter}={named}",
        f"/audit/export?{parameter}={named}",
        f"/audit/export?{parameter}={named}&format=csv",
        f"/audit/export?number=%2B15125550123&{parameter}={named}&format=json",
        f"/audit/export?{parameter}={ACME}&{parameter}={named}&format=json",
    ]
    for path in paths:
        response = _get(site, path, token)
        assert response.status_code == 403, path
        assert response.json() == REFUSED_FOR_ANOTHER_BUSINESS
        assert CALLER not in response.text and ACME not in response.text


@pytest.mark.parametrize("named", [SPARK, "no-such-business"])
def test_a_path_naming_another_business_is_refused(site: AuditSite, named: str) -> None:
    for path in (
        f"/audit/businesses/{named}/numbers/{CALLER}",
        f"/audit/businesses/{named}/numbers/{SPARK_ONLY}",
        f"/audit/businesses/{named}/export",
        f"/audit/businesses/{named}/export?number=%2B15125550123&format=csv",
    ):
        response = _get(site, path, site.acme_token)
        assert response.status_code == 403, path
        assert response.json() == REFUSED_FOR_ANOTHER_BUSINESS


def test_a_path_naming_the_token_s_own_business_is_answered(site: AuditSite) -> None:
    scoped = _get(site, f"/audit/businesses/{ACME}/numbers/{CALLER}", site.acme_token)
    assert scoped.status_code == 200
    assert scoped.json() == _get(site, f"/audit/numbers/{CALLER}", site.acme_token).json()
    export = _get(site, f"/audit/businesses/{ACME}/export?format=json", site.acme_token)
    assert export.json() == _get(site, "/audit/export?format=json", site.acme_token).json()
    elsewhere = _get(site, f"/audit/businesses/{ACME}/numbers/{SPARK_ONLY}", site.acme_token)
    assert elsewhere.status_code == 404


def test_a_request_naming_the_token_s_own_business_is_answered(site: AuditSite) -> None:
    own = _get(site, f"/audit/export?business={ACME}&format=json", site.acme_token)
    unnamed = _get(site, "/audit/export?format=json", site.acme_token)
    assert own.status_code == 200
    assert own.json() == unnamed.json()
    spark = _get(site, f"/audit/numbers/{SPARK_ONLY}?business={SPARK}", _issue(site, SPARK))
    assert spark.status_code == 200 and spark.json()["business_id"] == SPARK


def test_a_bad_token_naming_a_business_is_still_401(site: AuditSite) -> None:
    response = _get(site, f"/audit/export?business={SPARK}", "rcpt_audit_" + "A" * 43)
    assert response.status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"number": "abc"},
        {"number": "+1" + "5" * 100},
        {"number": "\x00"},
        {"number": "../../etc/passwd"},
        {"number": "+999123"},
        {"number": CALLER, "format": "<script>alert(1)</script>"},
        {"number": CALLER, "format": "ZIP"},
        {"number": CALLER, "from": "<script>alert(1)</script>"},
        {"number": CALLER, "from": "2025-06-02T15:00"},
        {"number": CALLER, "from": "2025-13-01"},
        {"number": CALLER, "from": "2025-06-03", "to": "2025-06-02"},
        {"number": CALLER, "from": "2025-06-02", "to": "2025-06-02"},
    ],
)
def test_malformed_export_requests_are_422_and_not_repeated(
    site: AuditSite, params: dict[str, str]
) -> None:
    response = _export(site, site.acme_token, **params)
    assert response.status_code == 422
    assert "<script>" not in response.text and "passwd" not in response.text
    assert set(response.json()) == {"detail"}


def test_an_audit_read_leaves_the_database_open_to_writers(tmp_path: Path) -> None:
    """While an audit request verifies (seconds on a long chain), calls must still be able to
    record consent: on SQLite its read transaction takes no write lock."""
    with audit_database("sqlite", tmp_path) as engine:
        _record_history(engine)
        reader = make_engine(engine.url.render_as_string(hide_password=False), read_only=True)
        with audit_routes._snapshot(reader) as conn:
            conn.execute(consent_events.select()).fetchall()
            with engine.begin() as writer:  # would wait out its busy timeout behind a write lock
                append_event(writer, _grant(ACME, NEIGHBOUR, T0), T0 + timedelta(seconds=20))
            assert len(conn.execute(consent_events.select()).fetchall()) == 4  # its own snapshot
        reader.dispose()
