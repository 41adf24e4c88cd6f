"""Shared by the verification, export and packet tests: a ledger database on SQLite and on
PostgreSQL (a schema of its own), realistic call evidence, and answer audio as WAV."""

from __future__ import annotations

import hashlib
import io
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
from tests.conftest import postgres_schema
from voice_agent.db import make_engine

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


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    audio = AudioStore(tmp_path / "audio")
    if request.param == "sqlite":
        yield from _ledger_at(f"sqlite:///{tmp_path / 'ledger.db'}", audio)
        return
    with postgres_schema("ledger_export") as url:
        yield from _ledger_at(url, audio)


def _ledger_at(url: str, audio: AudioStore) -> Iterator[Ledger]:
    engine = make_engine(url)
    with engine.begin() as conn:
        create_ledger_schema(conn)
    yield Ledger(url, engine, audio)
    engine.dispose()


def answer_wav(seconds: float = 0.5, tone: int = 1) -> bytes:
    """A mono 8 kHz 16-bit WAV, different for each ``tone``."""
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(8000)
        file.writeframes(tone.to_bytes(2, "little", signed=True) * int(8000 * seconds))
    return out.getvalue()


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
    confirmed = at + timedelta(seconds=8)
    answered = at + timedelta(seconds=9)
    step = timedelta(milliseconds=300)
    words = tuple(
        WordEvidence(word, answered + i * step, answered + (i + 1) * step, 0.9)
        for i, word in enumerate(transcript.split())
    )
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
        script=None
        if revokes
        else ScriptEvidence(
            "sms-consent/1",
            SCRIPT_TEXT,
            hashlib.sha256(SCRIPT_TEXT.encode()).hexdigest(),
            at,
            confirmed,
        ),
        answers=()
        if revokes
        else (
            AnswerEvidence(
                transcript,
                words,
                "deepgram/nova-3",
                0.93,
                answered,
                answered + timedelta(seconds=1),
            ),
        ),
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
