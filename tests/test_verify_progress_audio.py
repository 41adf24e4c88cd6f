"""Ledger verification reports progress and checks each event's answer audio: present and
intact is fine, purged by retention is counted (not broken), missing or corrupt breaks the event."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from consent_ledger.audio_store import AudioStore
from consent_ledger.tables import consent_events
from consent_ledger.verify import BATCH_SIZE, ledger_event_total, verify_ledger
from tests.ledger_support import (
    NUMBER,
    OTHER_NUMBER,
    T0,
    Ledger,
    answer_wav,
    append,
    call_evidence,
    drop_append_only_triggers,
    ledger,
)

__all__ = ["ledger"]


def _three_calls_with_audio(ledger: Ledger) -> list[str]:
    """Three acme calls, each with its own answer audio; returns the audio hashes."""
    hashes = [ledger.audio.put(answer_wav(tone=tone)) for tone in (1, 2, 3)]
    with ledger.engine.begin() as conn:
        for i, sha in enumerate(hashes):
            number = NUMBER if i % 2 == 0 else OTHER_NUMBER
            append(conn, call_evidence(number=number, audio_sha256=sha), minutes=i)
        append(conn, call_evidence(business_id="bolt"), minutes=5)
    return hashes


def test_intact_audio_is_counted(ledger: Ledger) -> None:
    _three_calls_with_audio(ledger)
    with ledger.engine.connect() as conn:
        report = verify_ledger(conn, audio_store=ledger.audio)
        without_store = verify_ledger(conn)
    assert report.ok
    assert (report.events_checked, report.audio_checked, report.audio_purged) == (4, 3, 0)
    assert (without_store.audio_checked, without_store.audio_purged) == (0, 0)


def test_purged_audio_is_reported_as_purged_not_broken(ledger: Ledger) -> None:
    hashes = _three_calls_with_audio(ledger)
    ledger.audio.purge(hashes[1], "retention: 90 days", T0 + timedelta(days=91))
    with ledger.engine.connect() as conn:
        report = verify_ledger(conn, audio_store=ledger.audio)
    assert report.ok
    assert (report.audio_checked, report.audio_purged) == (2, 1)


def test_missing_audio_breaks_the_event_that_names_it(ledger: Ledger) -> None:
    hashes = _three_calls_with_audio(ledger)
    ledger.audio.path(hashes[1]).unlink()
    with ledger.engine.connect() as conn:
        broken = verify_ledger(conn, audio_store=ledger.audio).first_broken
    assert broken is not None
    assert (broken.business_id, broken.seq) == ("acme", 2)
    assert broken.reason == f"answer audio {hashes[1]} is missing"


def test_corrupt_audio_breaks_the_event_that_names_it(ledger: Ledger) -> None:
    hashes = _three_calls_with_audio(ledger)
    path = ledger.audio.path(hashes[2])
    content = bytearray(path.read_bytes())
    content[-1] ^= 0x01
    path.write_bytes(bytes(content))
    with ledger.engine.connect() as conn:
        report = verify_ledger(conn, audio_store=ledger.audio)
    assert report.first_broken is not None
    assert (report.first_broken.seq, report.first_broken.reason) == (
        3,
        f"answer audio {hashes[2]} is corrupt",
    )
    assert report.audio_checked == 2


def test_audio_of_another_store_is_missing(ledger: Ledger, tmp_path: Path) -> None:
    _three_calls_with_audio(ledger)
    with ledger.engine.connect() as conn:
        report = verify_ledger(conn, audio_store=AudioStore(tmp_path / "elsewhere"))
    assert report.first_broken is not None
    assert report.first_broken.seq == 1


def test_progress_hears_every_batch(ledger: Ledger) -> None:
    with ledger.engine.begin() as conn:
        for i in range(7):
            append(conn, call_evidence(business_id=f"b{i % 3}"), minutes=i)
    seen: list[int] = []
    with ledger.engine.connect() as conn:
        report = verify_ledger(conn, progress=seen.append)
        assert ledger_event_total(conn) == 7
        assert ledger_event_total(conn, "b0") == 3
        assert ledger_event_total(conn, "nobody") == 0
    assert report.ok
    assert seen == [7]  # one batch of BATCH_SIZE holds them all
    assert BATCH_SIZE > 7


def test_progress_counts_grow_batch_by_batch(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("consent_ledger.verify.BATCH_SIZE", 2)
    with ledger.engine.begin() as conn:
        for i in range(5):
            append(conn, call_evidence(), minutes=i)
    seen: list[int] = []
    with ledger.engine.connect() as conn:
        assert verify_ledger(conn, progress=seen.append).ok
    assert seen == [2, 4, 5]


class _Interrupted(Exception):
    pass


def test_an_interrupted_verification_leaves_the_connection_usable(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopping mid-way (here the progress callback fails) closes the read and its fetching
    ahead, so the same transaction can verify again."""
    monkeypatch.setattr("consent_ledger.verify.BATCH_SIZE", 2)
    with ledger.engine.begin() as conn:
        for i in range(7):
            append(conn, call_evidence(), minutes=i)

    def interrupt(checked: int) -> None:
        raise _Interrupted(checked)

    with ledger.engine.begin() as conn:
        with pytest.raises(_Interrupted):
            verify_ledger(conn, progress=interrupt)
        with pytest.raises(_Interrupted):
            verify_ledger(conn, "acme", progress=interrupt)
        report = verify_ledger(conn)
    assert report.ok
    assert report.events_checked == 7
    assert [t for t in threading.enumerate() if t.name == "consent-ledger-verify-fetch"] == []


def test_a_column_that_needs_json_escaping_is_still_judged_correctly(ledger: Ledger) -> None:
    """The quick check leaves such rows to the full check, which names the damage."""
    with ledger.engine.begin() as conn:
        append(conn, call_evidence(), minutes=0)
        event = append(conn, call_evidence(), minutes=1)
    with ledger.engine.begin() as conn:
        drop_append_only_triggers(conn)
        conn.execute(
            update(consent_events)
            .where(consent_events.c.hash == event.hash)
            .values(phone_number='+1555","x')
        )
    with ledger.engine.connect() as conn:
        broken = verify_ledger(conn).first_broken
    assert broken is not None
    assert (broken.seq, broken.reason) == (2, "phone_number column does not match the hashed body")


def test_a_caller_saying_a_key_cannot_pass_for_a_column(ledger: Ledger) -> None:
    """Words that look like JSON keys stay escaped inside the body, so a changed kind is caught."""
    sneaky = 'no "kind":"consent_granted" "phone_number":"+15555550188"'
    with ledger.engine.begin() as conn:
        event = append(conn, call_evidence(transcript=sneaky), minutes=0)
    with ledger.engine.begin() as conn:
        drop_append_only_triggers(conn)
        conn.execute(
            update(consent_events)
            .where(consent_events.c.hash == event.hash)
            .values(phone_number=OTHER_NUMBER)
        )
    with ledger.engine.connect() as conn:
        broken = verify_ledger(conn).first_broken
    assert broken is not None
    assert broken.reason == "phone_number column does not match the hashed body"
