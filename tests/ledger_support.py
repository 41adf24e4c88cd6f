"""Shared by the verification, export, packet and audit tests: a ledger database on SQLite and on
PostgreSQL (a schema of its own), alone or with the dashboard's tables, realistic call evidence,
and answer audio as WAV."""

from __future__ import annotations

import contextlib
import hashlib
import io
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine

from consent_ledger.audio_store import AudioStore
from consent_ledger.chain import RecordedEvent, append_event
from consent_ledger.evidence import (
    AnswerEvidence,
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    EventKind,
    ScriptEvidence,
    WordEvidence,
)
from consent_ledger.tables import create_ledger_schema, drop_append_only_ddl
from dashboard.tables import metadata as dashboard_metadata
from sms_sender.tables import metadata as sms_metadata
from tests.conftest import BACKENDS, fresh_database
from voice_agent.records.database import make_engine

T0 = datetime(2025, 4, 11, 14, 0, tzinfo=UTC)
NUMBER = "+15555550123"
OTHER_NUMBER = "+15555550188"
SCRIPT_TEXT = (
    "This is Acme Plumbing's automated assistant. May we send you up to 2 text messages about "
    "this call in the next 24 hours? Msg & data rates may apply. Reply STOP to opt out, HELP for "
    "help. Is that okay?"
)


@dataclass(frozen=True)
class Ledger:
    """A fresh ledger: its URL (for the CLI), an engine, and an audio store beside it."""

    url: str
    engine: Engine
    audio: AudioStore


@pytest.fixture(params=BACKENDS)
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """A ledger with the outbox beside it (an audit packet lists the texts sent under consent)."""
    with fresh_database(request.param, tmp_path, "ledger") as url, ledger_engine(url) as engine:
        with engine.begin() as conn:
            sms_metadata.create_all(conn)
        yield Ledger(url, engine, AudioStore(tmp_path / "audio"))


@contextlib.contextmanager
def ledger_engine(url: str) -> Iterator[Engine]:
    """An engine on ``url`` with the ledger schema created (tables and append-only triggers)."""
    engine = make_engine(url)
    with engine.begin() as conn:
        create_ledger_schema(conn)
    try:
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def audit_database(kind: str, tmp_path: Path) -> Iterator[Engine]:
    """An engine holding the consent ledger (tables and append-only triggers), the dashboard's
    tables and the outbox, on a SQLite file or on a PostgreSQL schema of its own (skipped when
    unreachable)."""
    with fresh_database(kind, tmp_path, "audit") as url, ledger_engine(url) as engine:
        with engine.begin() as conn:
            dashboard_metadata.create_all(conn)
            sms_metadata.create_all(conn)
        yield engine


def mono_wav(frames: bytes) -> bytes:
    """``frames`` (16-bit little-endian samples) as a mono 8 kHz WAV."""
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(8000)
        file.writeframes(frames)
    return out.getvalue()


def answer_wav(seconds: float = 0.5, tone: int = 1) -> bytes:
    """A mono 8 kHz 16-bit WAV, different for each ``tone``."""
    return mono_wav(tone.to_bytes(2, "little", signed=True) * int(8000 * seconds))


def consent_script(started_at: datetime) -> ScriptEvidence:
    """The consent script, started at ``started_at`` and confirmed played 8 s later."""
    return ScriptEvidence(
        "sms-consent/1",
        SCRIPT_TEXT,
        sha256_hex(SCRIPT_TEXT),
        started_at,
        started_at + timedelta(seconds=8),
    )


def spoken_answer(started_at: datetime, transcript: str = "yes please") -> AnswerEvidence:
    """A one-second answer whose words take 300 ms each."""
    step = timedelta(milliseconds=300)
    words = tuple(
        WordEvidence(word, started_at + i * step, started_at + (i + 1) * step, 0.9)
        for i, word in enumerate(transcript.split())
    )
    return AnswerEvidence(
        transcript, words, "deepgram/nova-3", 0.93, started_at, started_at + timedelta(seconds=1)
    )


def call_evidence(
    kind: EventKind = EventKind.CONSENT_GRANTED,
    *,
    business_id: str = "acme",
    number: str = NUMBER,
    at: datetime = T0,
    audio_sha256: str | None = None,
    transcript: str = "yes please",
    revokes: str | None = None,
    note: str = "",
) -> ConsentEvidence:
    """A call's evidence: the script played, the answer 9 s later with word times."""
    occurred = at + timedelta(seconds=10)
    granting = kind in (EventKind.CONSENT_GRANTED, EventKind.RESUBSCRIBED)
    method = ConsentMethod.SMS_KEYWORD if revokes else ConsentMethod.VERBAL
    return ConsentEvidence(
        business_id=business_id,
        business_name="Acme Plumbing & Heating \u2014 M\u00fcller \u201cthe best\u201d",
        phone_number=number,
        call_sid=None if revokes else "CA" + "1" * 32,
        stream_sid=None if revokes else "MZ" + "2" * 32,
        kind=kind,
        method=method,
        script=None if revokes else consent_script(at),
        answers=() if revokes else (spoken_answer(at + timedelta(seconds=9), transcript),),
        classifier=None if revokes else "keyword-yes",
        classifier_version=None if revokes else "1",
        reasked=False,
        scope=ConsentScope("follow-up about this call", 2, occurred + timedelta(hours=24))
        if granting
        else None,
        occurred_at=occurred,
        revokes=revokes,
        audio_sha256=audio_sha256,
        note=note,
    )


def append(conn: Connection, evidence: ConsentEvidence, minutes: int = 0) -> RecordedEvent:
    return append_event(conn, evidence, T0 + timedelta(minutes=minutes, seconds=30))


def drop_append_only_triggers(conn: Connection) -> None:
    for statement in drop_append_only_ddl(conn.dialect.name):
        conn.exec_driver_sql(statement)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def answered_call(
    kind: EventKind,
    at: datetime,
    *,
    business_id: str = "acme",
    number: str = NUMBER,
    script: tuple[str, str] = ("sms-consent/1", SCRIPT_TEXT),
    transcript: str = "yes",
    confidence: float = 0.8,
    scope: ConsentScope | None = None,
    audio_sha256: str | None = None,
) -> ConsentEvidence:
    """A consent question on a call at ``at``: ``script`` (version, text) played from 10 s to 8 s
    before, then (unless the question was never asked) the caller's answer 7 s before."""
    version, text = script
    played = ScriptEvidence(
        version, text, sha256_hex(text), at - timedelta(seconds=10), at - timedelta(seconds=8)
    )
    answers: tuple[AnswerEvidence, ...] = ()
    if kind is not EventKind.CONSENT_NOT_ASKED:
        answered = at - timedelta(seconds=7)
        answers = (
            AnswerEvidence(transcript, (), "whisper/tiny.en", confidence, answered, answered),
        )
    return ConsentEvidence(
        business_id=business_id,
        business_name=business_id.title(),
        phone_number=number,
        call_sid="CA" + uuid.uuid4().hex,
        stream_sid="MZ" + uuid.uuid4().hex,
        kind=kind,
        method=ConsentMethod.VERBAL,
        script=played,
        answers=answers,
        classifier="keyword-yes",
        classifier_version="1",
        reasked=False,
        scope=scope,
        occurred_at=at,
        audio_sha256=audio_sha256,
    )


def without_call(
    kind: EventKind,
    method: ConsentMethod,
    at: datetime,
    *,
    business_id: str = "acme",
    business_name: str | None = None,
    number: str = NUMBER,
    revokes: str | None = None,
    scope: ConsentScope | None = None,
    script: ScriptEvidence | None = None,
    note: str = "",
) -> ConsentEvidence:
    """An event no call question produced: a keyword, a web form, the owner's choice."""
    return ConsentEvidence(
        business_id=business_id,
        business_name=business_id.title() if business_name is None else business_name,
        phone_number=number,
        call_sid=None,
        stream_sid=None,
        kind=kind,
        method=method,
        script=script,
        answers=(),
        classifier=None,
        classifier_version=None,
        reasked=False,
        scope=scope,
        occurred_at=at,
        revokes=revokes,
        note=note,
    )
