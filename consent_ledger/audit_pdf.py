"""The audit packet's ``report.pdf``: the consent evidence of one request, for a person to read.

The report names the business and number, then gives each event in chain order: what happened,
how, when (UTC), the exact script that was read, the caller's words with the UTC time of each, the
decision and what it allows, what a revocation points at, and the answer audio's state. It ends
with the result of verifying each business's whole chain at export time, and its chain head.

It uses the PDF core fonts, which only cover Latin-1, so text is transliterated first: dashes and
curly quotes become their plain forms, accented letters outside Latin-1 lose their accents, and
anything else becomes ``?``. The exact text is always in ``events.jsonl``; the report says so.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from consent_ledger.evidence import ConsentEvidence
from consent_ledger.instants import format_instant
from consent_ledger.verify import VerificationReport

_PLAIN_FORMS = str.maketrans(
    {
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2026": "...",
        "\u2022": "*",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u200b": "",
    }
)
_LINE = 4.6
_FONT = "Helvetica"
_MONO = "Courier"


@dataclass(frozen=True)
class ReportedEvent:
    """One stored event as the report shows it.

    ``evidence`` is None when the stored body does not load as evidence (the report says so);
    ``audio_status`` is the state of its answer audio, None when it has none.
    """

    business_id: str
    seq: int
    phone_number: str
    kind: str
    recorded_at: str
    hash: str
    evidence: ConsentEvidence | None
    audio_status: str | None


@dataclass(frozen=True)
class ReportedChain:
    """A business's chain at export time: its head and the result of verifying all of it."""

    business_id: str
    head_seq: int
    head_hash: str
    verification: VerificationReport


@dataclass(frozen=True)
class AuditReport:
    """Everything the PDF shows."""

    subject: str
    generated_at: datetime
    events: Sequence[ReportedEvent]
    chains: Sequence[ReportedChain]


def latin1(text: str) -> str:
    """``text`` in the Latin-1 that the PDF core fonts can draw, transliterated where needed."""
    plain = text.translate(_PLAIN_FORMS)
    if plain.isascii():
        return plain
    return "".join(_latin1_char(char) for char in plain)


def _latin1_char(char: str) -> str:
    if ord(char) < 256:
        return char
    decomposed = unicodedata.normalize("NFKD", char)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    return base if base and all(ord(c) < 256 for c in base) else "?"


def render_audit_report(report: AuditReport, *, compress: bool = True) -> bytes:
    """The report as PDF bytes; ``compress=False`` leaves the page text readable in the file."""
    pdf = _ReportPdf(report)
    pdf.set_compression(compress)
    pdf.set_creation_date(report.generated_at)
    pdf.set_title(latin1(f"Consent evidence: {report.subject}"))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    _write_cover(pdf, report)
    for event in report.events:
        _write_event(pdf, event)
    _write_chains(pdf, report.chains)
    return bytes(pdf.output())


class _ReportPdf(FPDF):
    def __init__(self, report: AuditReport) -> None:
        super().__init__(format="A4")
        self._footer_text = latin1(
            f"Consent evidence for {report.subject} - generated "
            f"{format_instant(report.generated_at)}"
        )

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(_FONT, size=7)
        self.cell(0, 5, f"{self._footer_text} - page {self.page_no()}", align="C")


def _heading(pdf: FPDF, text: str, size: int = 12) -> None:
    pdf.set_font(_FONT, style="B", size=size)
    pdf.multi_cell(0, size * 0.5, latin1(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, size=9)


def _line(pdf: FPDF, text: str, *, mono: bool = False) -> None:
    pdf.set_font(_MONO if mono else _FONT, size=8 if mono else 9)
    pdf.multi_cell(0, _LINE, latin1(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, size=9)


def _field(pdf: FPDF, label: str, value: str) -> None:
    _line(pdf, f"{label}: {value}")


def _write_cover(pdf: FPDF, report: AuditReport) -> None:
    _heading(pdf, "Consent evidence", size=16)
    _field(pdf, "Request", report.subject)
    _field(pdf, "Generated (UTC)", format_instant(report.generated_at))
    businesses = sorted({event.business_id for event in report.events})
    names = sorted({e.evidence.business_name for e in report.events if e.evidence is not None})
    numbers = sorted({event.phone_number for event in report.events})
    _field(pdf, "Business", ", ".join(businesses) or "-")
    if names:
        _field(pdf, "Business name", ", ".join(names))
    _field(pdf, "Phone number", ", ".join(numbers) or "-")
    _field(pdf, "Events", str(len(report.events)))
    _line(
        pdf,
        "Every time is UTC. Text here is shown in the PDF's Latin-1 fonts; the exact stored text "
        "and the hashes that prove it are in events.jsonl, and verify.py checks them offline.",
    )
    pdf.ln(2)


def _write_event(pdf: FPDF, event: ReportedEvent) -> None:
    _heading(pdf, f"{event.business_id} #{event.seq}: {event.kind}", size=11)
    _field(pdf, "Number", event.phone_number)
    _field(pdf, "Recorded at", event.recorded_at)
    evidence = event.evidence
    if evidence is None:
        _line(pdf, "The stored body of this event does not load as evidence: see verification.")
    else:
        _write_evidence(pdf, evidence)
    if event.audio_status is not None:
        _field(pdf, "Answer audio", event.audio_status)
    _line(pdf, f"hash {event.hash}", mono=True)
    pdf.ln(2)


def _write_evidence(pdf: FPDF, evidence: ConsentEvidence) -> None:
    _field(pdf, "Decision", evidence.kind.value)
    _field(pdf, "Method", evidence.method.value)
    _field(pdf, "Occurred at", format_instant(evidence.occurred_at))
    if evidence.call_sid:
        _field(pdf, "Call", f"{evidence.call_sid} (stream {evidence.stream_sid or '-'})")
    if evidence.script is not None:
        script = evidence.script
        started = format_instant(script.started_at) if script.started_at else "-"
        confirmed = (
            format_instant(script.playback_confirmed_at) if script.playback_confirmed_at else "-"
        )
        _field(pdf, "Script", f"version {script.version}, started {started}, played {confirmed}")
        _line(pdf, f'"{script.text}"')
        _line(pdf, f"script sha256 {script.sha256}", mono=True)
    for number, answer in enumerate(evidence.answers, start=1):
        label = "Answer" if number == 1 else "Answer to the re-ask"
        heard = f'"{answer.transcript}"' if answer.transcript else "(no words)"
        keypad = f", keypad {answer.keypad_digit}" if answer.keypad_digit else ""
        _field(
            pdf,
            label,
            f"{heard} from {format_instant(answer.started_at)} to "
            f"{format_instant(answer.ended_at)}, {answer.engine}, confidence "
            f"{answer.confidence:.2f}{keypad}",
        )
        for word in answer.words:
            _line(
                pdf,
                f"    {format_instant(word.start)}  {word.word}  ({word.confidence:.2f})",
            )
    if evidence.classifier:
        reasked = ", after one re-ask" if evidence.reasked else ""
        _field(
            pdf, "Classified by", f"{evidence.classifier} {evidence.classifier_version}{reasked}"
        )
    if evidence.scope is not None:
        scope = evidence.scope
        _field(
            pdf,
            "Allows",
            f"up to {scope.max_texts} texts ({scope.purpose}) until "
            f"{format_instant(scope.expires_at)}",
        )
    if evidence.revokes:
        _line(pdf, f"undoes event {evidence.revokes}", mono=True)
    if evidence.note:
        _field(pdf, "Note", evidence.note)


def _write_chains(pdf: FPDF, chains: Sequence[ReportedChain]) -> None:
    _heading(pdf, "Verification of each business's whole chain at export", size=12)
    for chain in chains:
        result = chain.verification
        if result.first_broken is None:
            verdict = f"INTACT: {result.events_checked} events verified"
        else:
            broken = result.first_broken
            verdict = (
                f"BROKEN at event #{broken.seq}: {broken.reason} "
                f"({result.events_checked} events checked)"
            )
        _field(pdf, chain.business_id, verdict)
        if result.audio_checked or result.audio_purged:
            _field(
                pdf,
                "Audio",
                f"{result.audio_checked} recordings intact, {result.audio_purged} purged",
            )
        _line(pdf, f"chain head #{chain.head_seq} {chain.head_hash}", mono=True)
