"""Audit export: request validation, summaries, the readable PDF, and the ``receptionist ledger``
commands (exit codes, refusing bad arguments without writing anything)."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import re
import subprocess
import sys
import zipfile
import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import Connection, update

from consent_ledger import verify_workers
from consent_ledger.audit_pdf import AuditReport, latin1, render_audit_report
from consent_ledger.evidence import (
    AnswerEvidence,
    ConsentEvidence,
    ConsentMethod,
    EventKind,
    MessageEvidence,
)
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
from sms_sender import OutboxKind, OutboxStatus, PlannedText, queue_text, texts_under_consents
from sms_sender.tables import outbox
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


# --- the texts sent under each consent ----------------------------------------------------------

CHICAGO = {"acme": "America/Chicago"}


def _texted(
    conn: Connection,
    reference: str,
    kind: OutboxKind,
    consent: str,
    *,
    number: str = NUMBER,
    business_id: str = "acme",
    minutes: int,
    status: OutboxStatus = OutboxStatus.DELIVERED,
    sid: str | None = None,
    reason: str | None = None,
) -> None:
    """A text under ``consent``, queued ``minutes`` after T0 and (unless still scheduled or
    cancelled) sent a minute later."""
    queued_at = T0 + timedelta(minutes=minutes)
    message = queue_text(
        conn,
        PlannedText(
            business_id=business_id,
            reference=reference,
            to_number=number,
            from_number="+15125550100",
            kind=kind,
            body=f"Acme Plumbing: {kind.value} for {reference}. Reply STOP to opt out.",
            consent_event_hash=consent,
            due_at=queued_at,
        ),
    )
    sent = status in (OutboxStatus.SENT, OutboxStatus.DELIVERED)
    conn.execute(
        update(outbox)
        .where(outbox.c.id == message.id)
        .values(
            created_at=queued_at,
            status=status.value,
            sent_at=queued_at + timedelta(minutes=1) if sent else None,
            provider_message_id=sid,
            reason=reason,
        )
    )


def _history_with_texts(ledger: Ledger) -> tuple[str, str]:
    """The history, with texts under the grant, the revocation, another number and nothing."""
    _history(ledger)
    with ledger.engine.begin() as conn:
        events = stored_events(conn, PacketRequest(business_id="acme"))
        granted, other, revoked = (event.hash for event in events)
        _texted(conn, "CA1", OutboxKind.CONFIRMATION, granted, minutes=1, sid="SM" + "1" * 32)
        _texted(
            conn,
            "CA1",
            OutboxKind.NO_REPLY_FOLLOW_UP,
            granted,
            minutes=90,
            status=OutboxStatus.CANCELLED,
            reason="revoked by text",
        )
        _texted(conn, "SM9", OutboxKind.OPT_OUT_CONFIRMATION, revoked, minutes=1801, sid="SM9")
        _texted(conn, "CA2", OutboxKind.CONFIRMATION, other, number=OTHER_NUMBER, minutes=2)
        _texted(conn, "SM8", OutboxKind.HELP_REPLY, "", minutes=3)  # under no consent
    return granted, revoked


def _packet_files(ledger: Ledger, **options: Any) -> dict[str, bytes]:
    with ledger.engine.connect() as conn:
        packet = build_audit_packet(
            conn,
            PacketRequest(business_id="acme", phone_number=NUMBER),
            audio_store=None,
            generated_at=GENERATED,
            **options,
        )
    with zipfile.ZipFile(io.BytesIO(packet)) as opened:
        return {name: opened.read(name) for name in opened.namelist()}


def test_the_packet_logs_every_text_sent_under_each_consent(ledger: Ledger) -> None:
    granted, revoked = _history_with_texts(ledger)
    files = _packet_files(ledger, text_log=texts_under_consents, time_zones=CHICAGO)

    texts = [json.loads(line) for line in files["texts.jsonl"].decode().splitlines()]
    assert [(t["consent_event_hash"], t["kind"], t["status"]) for t in texts] == [
        (granted, "confirmation", "delivered"),
        (granted, "no_reply_follow_up", "cancelled"),
        (revoked, "opt_out_confirmation", "delivered"),
    ]
    assert texts[0]["body"] == "Acme Plumbing: confirmation for CA1. Reply STOP to opt out."
    assert texts[0]["sent_at"] == "2025-04-11T14:02:00.000000Z"
    assert texts[0]["message_sid"] == "SM" + "1" * 32
    assert texts[1]["sent_at"] is None and texts[1]["reason"] == "revoked by text"
    manifest = json.loads(files["manifest.json"])
    assert manifest["texts"] == 3
    assert "texts.jsonl" in {entry["path"] for entry in manifest["files"]}
    report = " ".join(p.text for p in _placed_texts(_inflated(files["report.pdf"])))
    assert "Texts sent under this event (2):" in report
    assert "Texts sent under this event (1):" in report
    assert "confirmation for CA1" in report and "opt_out_confirmation for SM9" in report
    assert "sent 2025-04-11 09:02:00 CDT (14:02:00 UTC), status delivered" in report
    assert "not sent, status cancelled (revoked by text)" in report
    assert "CA2" not in report and "SM8" not in report


def test_a_packet_built_without_the_texts_says_so(ledger: Ledger) -> None:
    _history_with_texts(ledger)
    files = _packet_files(ledger)
    assert "texts.jsonl" not in files
    assert json.loads(files["manifest.json"])["texts"] == "not_included"
    assert "the texts sent are not included in this packet" in _pdf_text(files["report.pdf"])


def test_the_packet_with_its_texts_verifies_offline(ledger: Ledger, tmp_path: Path) -> None:
    _history_with_texts(ledger)
    files = _packet_files(ledger, text_log=texts_under_consents)
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    checked = subprocess.run(
        [sys.executable, "-I", str(tmp_path / "verify.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout
    assert "PASS  file texts.jsonl" in checked.stdout


def test_the_cli_packet_holds_the_texts_and_the_business_s_clock(
    ledger: Ledger, tmp_path: Path
) -> None:
    _history_with_texts(ledger)
    output = tmp_path / "out.zip"
    result = _run_cli(ledger, tmp_path, "export", "--number", NUMBER, "--output", str(output))
    assert result.exit_code == 0, result.stderr
    with zipfile.ZipFile(output) as opened:
        assert opened.read("texts.jsonl").count(b"\n") == 3


# --- keypad answers in the summaries ------------------------------------------------------------


def _keypad_grant() -> ConsentEvidence:
    """The caller said nothing to the script, then pressed 1 on the re-ask."""
    spoken = call_evidence()
    assert spoken.script is not None and spoken.script.playback_confirmed_at is not None
    pressed_at = spoken.script.playback_confirmed_at + timedelta(seconds=12)
    key = AnswerEvidence("", (), "twilio-dtmf", 1.0, pressed_at, pressed_at, keypad_digit="1")
    return dataclasses.replace(
        spoken,
        method=ConsentMethod.KEYPAD,
        answers=(key,),
        reasked=True,
        note="no answer to the question",
    )


def test_a_keypad_yes_shows_in_the_summaries_never_as_no_answer(ledger: Ledger) -> None:
    with ledger.engine.begin() as conn:
        append(conn, _keypad_grant())
        summaries = summarize_events(conn, PacketRequest(business_id="acme"))
    row = json.loads(summaries_to_json(summaries))[0]
    assert row["decision"] == "Agreed to texts"
    assert row["method"] == "keypad"
    assert row["answer_transcript"] == "pressed 1 on the keypad"
    assert row["outcome"].startswith("allows up to 2 texts until")
    assert "no answer" not in row["outcome"] + row["answer_transcript"]
    assert row["note"] == "no answer to the question"  # the first asking's, kept apart
    table = list(csv.DictReader(io.StringIO(summaries_to_csv(summaries))))
    assert table[0]["answer_transcript"] == "pressed 1 on the keypad"
    assert table[0]["decision"] == "Agreed to texts"


def test_a_revocation_by_text_shows_the_words_in_the_summaries(ledger: Ledger) -> None:
    with ledger.engine.begin() as conn:
        granted = append(conn, call_evidence())
        stop = dataclasses.replace(
            call_evidence(kind=EventKind.REVOKED, revokes=granted.hash),
            message=MessageEvidence("SM" + "7" * 32, "=STOP please"),
        )
        append(conn, stop, minutes=5)
        summaries = summarize_events(conn, PacketRequest(business_id="acme"))
    assert summaries[1].answer_transcript == f'texted "=STOP please" (SM{"7" * 32})'
    assert summaries[1].decision == "Asked not to be texted"


# --- the PDF's first page, its words and its layout -----------------------------------------------

A4_WIDTH_PT, A4_HEIGHT_PT = 595.28, 841.89
_FONT_WIDTHS = {"/F1": "helveticaB", "/F2": "helvetica", "/F3": "courier"}


@dataclasses.dataclass(frozen=True)
class PlacedText:
    """One text object of a page: where it starts, how wide it is, and what it says."""

    page: int
    x: float
    y: float
    width: float
    text: str


def _placed_texts(pdf: bytes) -> list[PlacedText]:
    """Every ``BT x y Td (text) Tj ET`` of an uncompressed PDF, page by page, measured with the
    core fonts' widths at the size the last ``Tf`` set (fonts named as fpdf registers them)."""
    from fpdf.fonts import CORE_FONTS_CHARWIDTHS

    fonts = _registered_fonts(pdf)
    placed: list[PlacedText] = []
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.DOTALL)
    for page, stream in enumerate(streams, start=1):
        widths, size = CORE_FONTS_CHARWIDTHS["helvetica"], 0.0
        for match in re.finditer(
            rb"BT (/F\d+) ([\d.]+) Tf ET|BT ([\d.]+) ([\d.]+) Td \((.*?)\) Tj ET",
            stream,
        ):
            if match.group(1):
                widths = CORE_FONTS_CHARWIDTHS[fonts[match.group(1).decode()]]
                size = float(match.group(2))
                continue
            text = re.sub(rb"\\(.)", rb"\1", match.group(5)).decode("latin-1")
            width = sum(widths[char] for char in text) * size / 1000
            x, y = float(match.group(3)), float(match.group(4))
            placed.append(PlacedText(page, x, y, width, text))
    return placed


def _registered_fonts(pdf: bytes) -> dict[str, str]:
    """``/F1`` → the core font's width table name, from the PDF's font resources."""
    names = {b"Helvetica": "helvetica", b"Helvetica-Bold": "helveticaB", b"Courier": "courier"}
    found: dict[str, str] = {}
    for number, base in re.findall(rb"/F(\d+) (\d+) 0 R", pdf):
        obj = re.search(rb"\n" + base + rb" 0 obj\s*<<(.*?)>>", pdf, re.DOTALL)
        assert obj is not None
        font = re.search(rb"/BaseFont /([\w-]+)", obj.group(1))
        assert font is not None
        found[f"/F{number.decode()}"] = names[font.group(1)]
    return found


def _long_history(ledger: Ledger) -> None:
    """A grant whose caller said a very long sentence with one very long word in it, a keypad
    grant from another number, and a revocation by text."""
    long_words = "yes " + "please text me about the burst pipe under the sink " * 12
    with ledger.engine.begin() as conn:
        granted = append(conn, call_evidence(transcript=long_words + "x" * 300), minutes=0)
        append(conn, dataclasses.replace(_keypad_grant(), phone_number=OTHER_NUMBER), minutes=1)
        stop = dataclasses.replace(
            call_evidence(kind=EventKind.REVOKED, revokes=granted.hash),
            message=MessageEvidence("SM" + "7" * 32, "STOP"),
        )
        append(conn, stop, minutes=60)


def _uncompressed_report(ledger: Ledger, time_zones: dict[str, str]) -> bytes:
    with ledger.engine.connect() as conn:
        packet = build_audit_packet(
            conn,
            PacketRequest(business_id="acme"),
            audio_store=None,
            generated_at=GENERATED,
            time_zones=time_zones,
            text_log=texts_under_consents,
        )
    with zipfile.ZipFile(io.BytesIO(packet)) as opened:
        files = {name: opened.read(name) for name in opened.namelist()}
    return _inflated(files["report.pdf"])


def _inflated(pdf: bytes) -> bytes:
    """``pdf`` with its content streams inflated, to be read without a PDF library."""

    def inflate(match: re.Match[bytes]) -> bytes:
        data = match.group(2)
        with contextlib.suppress(zlib.error):
            data = zlib.decompress(data)
        return match.group(1) + data + match.group(3)

    return re.sub(rb"(stream\r?\n)(.*?)(\r?\nendstream)", inflate, pdf, flags=re.DOTALL)


def test_the_pdf_opens_with_a_one_page_summary_table_in_the_business_s_time(
    ledger: Ledger,
) -> None:
    _long_history(ledger)
    placed = _placed_texts(_uncompressed_report(ledger, CHICAGO))
    first = [p.text for p in placed if p.page == 1]

    header = ["Number", "Business", "Method", "Decision", "When (business time)", "UTC"]
    assert first[first.index("Number") : first.index("Number") + 6] == header
    rows = first[first.index("UTC") + 1 :]
    assert rows[:2] == [NUMBER, "Acme Plumbing & Heating"]
    assert "spoken answer" in rows and "keypad" in rows and "text keyword" in rows
    assert rows.count("Agreed to texts") == 2 and "Asked not to be texted" in rows
    assert "2025-04-11 09:00:10 CDT" in rows and "14:00:10 UTC" in rows
    assert OTHER_NUMBER in rows
    assert not any(p.text.startswith("Event #") for p in placed if p.page == 1)
    assert next(p.text for p in placed if p.page == 2) == "Event #1 at acme: Agreed to texts"


def test_the_pdf_speaks_in_words_to_the_second(ledger: Ledger) -> None:
    _long_history(ledger)
    text = "\n".join(p.text for p in _placed_texts(_uncompressed_report(ledger, CHICAGO)))

    for raw in ("consent_granted", "revoked:", "sms_keyword", "verbal", "keypad_digit"):
        assert raw not in text
    assert re.search(r"\d\d:\d\d:\d\d\.\d", text) is None  # no fractions of seconds in times
    assert re.search(r"\d{4}-\d\d-\d\dT", text) is None  # no ISO instants
    assert "Answer: pressed" not in text  # the keypad counts on the re-ask only
    assert (
        "Answer to the re-ask: pressed 1 on the keypad, at 2025-04-11 09:00:20 CDT (14:00:20 UTC)"
        in text
    )
    assert 'Texted: "STOP" (message SM7777' in text
    assert text.count("No texts were sent under this consent.") == 2  # the two grants
    assert "Decision: Asked not to be texted" in text
    assert "Recorded: 2025-04-11 10:00:30 CDT (15:00:30 UTC)" in text


@pytest.mark.parametrize("zones", [CHICAGO, {}])
def test_every_line_of_the_pdf_stays_inside_the_page(ledger: Ledger, zones: dict[str, str]) -> None:
    _long_history(ledger)
    placed = _placed_texts(_uncompressed_report(ledger, zones))

    assert len({p.page for p in placed}) >= 2
    margin = 28.35  # 10 mm
    for item in placed:
        assert margin - 0.01 <= item.x, item
        assert item.x + item.width <= A4_WIDTH_PT - margin + 0.01, item
        assert 0 < item.y < A4_HEIGHT_PT, item
    footers = [p for p in placed if p.text.startswith("Consent evidence, generated")]
    assert [f.page for f in footers] == sorted({p.page for p in placed})
    assert all(f.text.endswith(f"page {f.page}") for f in footers)
    assert all(f.y >= 20 for f in footers)  # above the paper's edge
    body_bottom = min(p.y for p in placed if p not in footers)
    assert body_bottom > max(f.y for f in footers)  # the footer sits below the text
    assert not any("x" * 300 in p.text for p in placed)  # the long word was cut to fit
