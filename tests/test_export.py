"""Audit export: request validation, summaries, the readable PDF, and the ``receptionist ledger``
commands (exit codes, refusing bad arguments without writing anything)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import zipfile
import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import update

from consent_ledger import verify_workers
from consent_ledger.audit_pdf import AuditReport, latin1, render_audit_report
from consent_ledger.evidence import EventKind
from consent_ledger.export import (
    PacketRequest,
    PacketRequestError,
    build_audit_packet,
    stored_events,
    summaries_to_csv,
    summaries_to_json,
    summarize_events,
)
from consent_ledger.tables import consent_events
from tests.cli_support import receptionist
from tests.conftest import receptionist_settings
from tests.ledger_support import (
    NUMBER,
    OTHER_NUMBER,
    T0,
    Ledger,
    append,
    call_evidence,
    drop_append_only_triggers,
    ledger,
)

__all__ = ["ledger"]
GENERATED = datetime(2025, 5, 1, 9, 30, tzinfo=UTC)


def _history(ledger: Ledger) -> None:
    with ledger.engine.begin() as conn:
        granted = append(conn, call_evidence(transcript="=HYPERLINK(1) yes"), minutes=0)
        append(conn, call_evidence(number=OTHER_NUMBER), minutes=1)
        append(conn, call_evidence(business_id="bolt"), minutes=2)
        append(conn, call_evidence(kind=EventKind.REVOKED, revokes=granted.hash), minutes=60 * 30)


# --- requests ----------------------------------------------------------------------------------

_BAD_REQUESTS: dict[str, tuple[dict[str, Any], str]] = {
    "nothing named": ({}, "name a business"),
    "number without plus": ({"phone_number": "15555550123"}, "E.164"),
    "number with spaces": ({"phone_number": "+1 555 555 0123"}, "E.164"),
    "number with letters": ({"phone_number": "+1555CALLNOW"}, "E.164"),
    "number too short": ({"phone_number": "+1"}, "E.164"),
    "number not a string": ({"phone_number": 15555550123}, "E.164"),
    "empty business": ({"business_id": "  "}, "business id"),
    "long business": ({"business_id": "b" * 65}, "business id"),
    "naive start": ({"business_id": "acme", "start": datetime(2025, 4, 1)}, "naive"),
    "non-UTC end": (
        {"business_id": "acme", "end": T0.astimezone(timezone(timedelta(hours=2)))},
        "UTC",
    ),
    "end before start": ({"business_id": "acme", "start": T0, "end": T0}, "before its end"),
}


@pytest.mark.parametrize("case", list(_BAD_REQUESTS))
def test_bad_requests_are_refused_with_a_clear_message(case: str) -> None:
    fields, message = _BAD_REQUESTS[case]
    with pytest.raises(PacketRequestError, match=message):
        PacketRequest(**fields)


def test_a_number_alone_spans_businesses_and_periods_filter(ledger: Ledger) -> None:
    _history(ledger)
    with ledger.engine.connect() as conn:
        everywhere = stored_events(conn, PacketRequest(phone_number=NUMBER))
        first_day = stored_events(
            conn, PacketRequest(phone_number=NUMBER, end=T0 + timedelta(hours=24))
        )
        business = stored_events(conn, PacketRequest(business_id="acme"))
    assert [(e.business_id, e.seq) for e in everywhere] == [("acme", 1), ("acme", 3), ("bolt", 1)]
    assert [(e.business_id, e.seq) for e in first_day] == [("acme", 1), ("bolt", 1)]
    assert [e.seq for e in business] == [1, 2, 3]
    assert everywhere[0].recorded_at == "2025-04-11T14:00:30.000000Z"


# --- summaries ---------------------------------------------------------------------------------


def test_summaries_render_as_json_and_csv(ledger: Ledger) -> None:
    _history(ledger)
    with ledger.engine.connect() as conn:
        summaries = summarize_events(conn, PacketRequest(business_id="acme", phone_number=NUMBER))
    rows = json.loads(summaries_to_json(summaries))
    assert [row["kind"] for row in rows] == ["consent_granted", "revoked"]
    assert rows[0]["script_version"] == "sms-consent/1"
    assert rows[0]["answer_transcript"] == "=HYPERLINK(1) yes"
    assert rows[0]["outcome"].startswith("allows up to 2 texts until")
    assert rows[1]["method"] == "sms_keyword"
    assert rows[1]["outcome"] == f"undoes event {rows[0]['hash']}"
    table = list(csv.DictReader(io.StringIO(summaries_to_csv(summaries))))
    assert [row["hash"] for row in table] == [row["hash"] for row in rows]
    assert table[0]["phone_number"] == NUMBER
    assert table[0]["answer_transcript"] == "'=HYPERLINK(1) yes"  # never run as a formula


# --- the PDF -----------------------------------------------------------------------------------


def _pdf_text(pdf: bytes) -> str:
    """The text of every content stream, inflated where compressed (no PDF library needed)."""
    chunks = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.DOTALL):
        data = match.group(1)
        with contextlib.suppress(zlib.error):
            data = zlib.decompress(data)
        chunks.append(data.decode("latin-1"))
    return "".join(chunks)


def test_the_packet_pdf_is_a_pdf_with_the_script_and_the_callers_words(ledger: Ledger) -> None:
    _history(ledger)
    with ledger.engine.connect() as conn:
        packet = build_audit_packet(
            conn, PacketRequest(phone_number=NUMBER), audio_store=None, generated_at=GENERATED
        )
    with zipfile.ZipFile(io.BytesIO(packet)) as opened:
        pdf = opened.read("report.pdf")
        manifest = json.loads(opened.read("manifest.json"))
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    text = _pdf_text(pdf)
    assert "(Consent evidence) Tj" in text
    assert "automated assistant" in text
    assert "HYPERLINK" in text
    assert "INTACT: 3 events verified" in text
    assert manifest["chain_heads"]["acme"]["seq"] == 3
    assert manifest["verification"]["acme"]["ok"] is True
    assert manifest["event_count"] == 3


def test_an_uncompressed_report_holds_the_exact_script_lines() -> None:
    from consent_ledger.audit_pdf import ReportedEvent

    evidence = call_evidence(transcript="yes \u2014 \u201cplease\u201d \u2603 \u0107")
    event = ReportedEvent(
        "acme",
        1,
        NUMBER,
        "consent_granted",
        "2025-04-11T14:00:30.000000Z",
        "a" * 64,
        evidence,
        "purged (sha256 " + "b" * 64 + ")",
    )
    pdf = render_audit_report(AuditReport("x", GENERATED, [event], []), compress=False)
    assert pdf.startswith(b"%PDF-")
    assert b"May we send you up to 2 text messages" in pdf
    assert b'yes - \\"please\\"' in pdf or b'yes - "please"' in pdf
    assert b"Acme Plumbing & Heating - M\xfcller" in pdf


def test_latin1_transliterates_what_the_core_fonts_cannot_draw() -> None:
    assert latin1("\u201cyes\u201d \u2014 it\u2019s fine\u2026") == '"yes" - it\'s fine...'
    assert latin1("M\u00fcller \u0106ma \u2603 \u4e2d") == "M\u00fcller Cma ? ?"
    assert latin1("plain") == "plain"


def test_a_damaged_event_is_still_exported_and_reported(ledger: Ledger) -> None:
    _history(ledger)
    with ledger.engine.begin() as conn:
        drop_append_only_triggers(conn)
        conn.execute(
            update(consent_events)
            .where(consent_events.c.seq == 1, consent_events.c.business_id == "acme")
            .values(body='{"evidence":"gone"}')
        )
    with ledger.engine.connect() as conn:
        request = PacketRequest(business_id="acme", phone_number=NUMBER)
        packet = build_audit_packet(conn, request, audio_store=None, generated_at=GENERATED)
        summaries = summarize_events(conn, request)
    with zipfile.ZipFile(io.BytesIO(packet)) as opened:
        text = _pdf_text(opened.read("report.pdf"))
        manifest = json.loads(opened.read("manifest.json"))
    assert "does not load as evidence" in text
    assert "BROKEN at event #1: hash mismatch" in text
    assert manifest["verification"]["acme"]["first_broken"] == {"seq": 1, "reason": "hash mismatch"}
    assert summaries[0].outcome == "stored evidence does not load"


# --- the commands ------------------------------------------------------------------------------


def _run_cli(ledger: Ledger, tmp_path: Path, *argv: str) -> Result:
    settings = receptionist_settings(ledger.url, audio_dir=tmp_path / "audio")
    return receptionist("ledger", *argv, settings=settings)


def test_verify_command_exits_0_when_intact_and_1_naming_the_break(
    ledger: Ledger, tmp_path: Path
) -> None:
    _history(ledger)
    intact = _run_cli(ledger, tmp_path, "verify")
    assert intact.exit_code == 0
    assert "intact - 4 events in 2 chains verified" in intact.stdout
    with ledger.engine.begin() as conn:
        drop_append_only_triggers(conn)
        conn.execute(
            update(consent_events)
            .where(consent_events.c.seq == 2, consent_events.c.business_id == "acme")
            .values(kind="consent_declined")
        )
    assert _run_cli(ledger, tmp_path, "verify", "--business", "bolt").exit_code == 0
    broken = _run_cli(ledger, tmp_path, "verify")
    assert broken.exit_code == 1
    assert "BROKEN at business 'acme' event #2" in broken.stdout
    assert "kind column does not match the hashed body" in broken.stdout
    as_json = _run_cli(ledger, tmp_path, "verify", "--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["intact"] is False and report["events_checked"] == 2
    assert report["first_broken"]["business_id"] == "acme"
    assert report["first_broken"]["seq"] == 2


def test_ledger_commands_refuse_a_business_it_does_not_know(ledger: Ledger, tmp_path: Path) -> None:
    _history(ledger)
    for argv in (["verify", "--business", "nope"], ["export", "--business", "nope"]):
        refused = _run_cli(ledger, tmp_path, *argv)
        assert refused.exit_code == 1
        assert refused.stderr == "Error: no business 'nope'; known: acme, bolt\n"
    assert not list(tmp_path.glob("audit-packet-*"))


_BAD_ARGUMENTS: dict[str, tuple[list[str], int, str]] = {
    "neither selector": ([], 2, "name either --number or --business"),
    "both selectors": (["--number", NUMBER, "--business", "acme"], 2, "not both"),
    "bad date": (["--business", "acme", "--from", "2025-13-01"], 2, "not a date"),
    "bad format": (["--business", "acme", "--format", "pdf"], 2, "is not one of"),
}


@pytest.mark.parametrize(
    ("workers", "message"),
    [
        ("0", "must be from 1 to 64"),
        ("-3", "must be from 1 to 64"),
        ("65", "must be from 1 to 64"),
        ("two", "not a whole number"),
        ("1.5", "not a whole number"),
        ("", "not a whole number"),
    ],
)
def test_verify_refuses_a_bad_worker_count(
    ledger: Ledger, tmp_path: Path, workers: str, message: str
) -> None:
    result = _run_cli(ledger, tmp_path, "verify", "--workers", workers)
    assert result.exit_code == 2
    assert message in result.stderr


def test_verify_with_workers_reports_what_one_process_reports(
    ledger: Ledger,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(verify_workers, "PARALLEL_FROM_EVENTS", 1)
    monkeypatch.setattr(verify_workers, "MIN_RANGE_EVENTS", 1)
    _history(ledger)
    result = _run_cli(ledger, tmp_path, "verify", "--workers", "2")
    assert result.exit_code == 0
    assert "intact - 4 events in 2 chains verified" in result.stdout


@pytest.mark.parametrize("case", list(_BAD_ARGUMENTS))
def test_export_argument_errors_exit_2(ledger: Ledger, tmp_path: Path, case: str) -> None:
    argv, status, message = _BAD_ARGUMENTS[case]
    result = _run_cli(ledger, tmp_path, "export", *argv)
    assert result.exit_code == status
    assert message in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--number", "555-0123"], "E.164"),
        (["--business", "acme", "--from", "2025-05-02", "--to", "2025-05-01"], "before its end"),
        (["--business", "acme", "--output", "missing/folder/p.zip"], "does not exist"),
        (["--business", "acme", "--output", "."], "is a folder"),
    ],
)
def test_export_refusals_exit_1_and_write_nothing(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    result = _run_cli(ledger, tmp_path, "export", *argv)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_export_writes_a_packet_and_summaries(ledger: Ledger, tmp_path: Path) -> None:
    _history(ledger)
    output = tmp_path / "out.zip"
    argv = ["export", "--number", NUMBER, "--from", "2025-04-11", "--to", "2025-04-11"]
    assert _run_cli(ledger, tmp_path, *argv, "--output", str(output)).exit_code == 0
    with zipfile.ZipFile(output) as opened:
        names = opened.namelist()
        assert opened.read("events.jsonl").count(b"\n") == 2  # acme #1 and bolt #1, same day
    assert {"events.jsonl", "report.pdf", "manifest.json", "verify.py"} <= set(names)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.zip")] == []
    as_csv = _run_cli(ledger, tmp_path, "export", "--business", "acme", "--format", "csv")
    assert as_csv.exit_code == 0
    assert as_csv.stdout_bytes.count(b"\r\n") == 4  # header and three events
    as_json = _run_cli(ledger, tmp_path, "export", "--business", "acme", "--format", "json")
    assert as_json.exit_code == 0
    assert len(json.loads(as_json.stdout)) == 3
