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
from fpdf.fonts import CORE_FONTS_CHARWIDTHS

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
    pdf.set_auto_page_break(auto=False)  # the _Page below breaks pages itself
    page = _Page(pdf)
    _write_cover(page, report)
    for event in report.events:
        _write_event(page, event)
    _write_chains(page, report.chains)
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


_PT_PER_MM = 72 / 25.4
_BOTTOM_MARGIN = 15.0


class _Page:
    """Writes wrapped lines of text down the pages, starting a new page when one is full.

    Lines are wrapped here (greedily at spaces, by the core fonts' character widths) and placed
    with ``FPDF.text``: fpdf's ``multi_cell`` measures a line again for every character it adds,
    which made a 1,000-event report take seconds.
    """

    def __init__(self, pdf: FPDF) -> None:
        self._pdf = pdf
        self._font: tuple[str, str, float] | None = None
        pdf.add_page()
        self._y = pdf.t_margin
        self._x = pdf.l_margin + pdf.c_margin
        self._width = pdf.epw - 2 * pdf.c_margin
        self._bottom = pdf.h - _BOTTOM_MARGIN

    def write(
        self, text: str, *, size: float, height: float, style: str = "", mono: bool = False
    ) -> None:
        family = _MONO if mono else _FONT
        widths = _CHAR_WIDTHS[(family, style)]
        room = self._width * 1000 * _PT_PER_MM / size  # in the font's 1/1000 em units
        for line in _wrapped(latin1(text), widths, room):
            if self._y + height > self._bottom:
                self._pdf.add_page()
                self._font = None  # a new page takes its font again
                self._y = self._pdf.t_margin
            if self._font != (family, style, size):
                self._pdf.set_font(family, style=style, size=size)
                self._font = (family, style, size)
            if line:
                baseline = self._y + height / 2 + 0.3 * size / _PT_PER_MM
                self._pdf.text(self._x, baseline, line)
            self._y += height

    def space(self, height: float) -> None:
        self._y += height


def _wrapped(text: str, widths: dict[str, int], room: float) -> list[str]:
    """``text`` cut into lines no wider than ``room`` (at spaces, or inside a word too long for a
    line of its own), its own line breaks kept."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        if sum(map(widths.__getitem__, paragraph)) <= room:
            lines.append(paragraph)
            continue
        line, used = "", 0.0
        space = widths[" "]
        for word in paragraph.split(" "):
            width = sum(map(widths.__getitem__, word))
            if line and used + space + width <= room:
                line, used = f"{line} {word}", used + space + width
                continue
            if line:
                lines.append(line)
            line, used = word, width
            while used > room:  # a word wider than a line: cut it by characters
                cut, taken = 1, widths[word[0]]
                while cut < len(line) and taken + widths[line[cut]] <= room:
                    taken += widths[line[cut]]
                    cut += 1
                lines.append(line[:cut])
                line = line[cut:]
                used = sum(map(widths.__getitem__, line))
        lines.append(line)
    return lines


def _char_widths(name: str) -> dict[str, int]:
    widths: dict[str, int] = CORE_FONTS_CHARWIDTHS[name]
    return widths


_CHAR_WIDTHS = {
    (_FONT, ""): _char_widths("helvetica"),
    (_FONT, "B"): _char_widths("helveticaB"),
    (_MONO, ""): _char_widths("courier"),
}


def _heading(page: _Page, text: str, size: int = 12) -> None:
    page.write(text, size=size, height=size * 0.5, style="B")


def _line(page: _Page, text: str, *, mono: bool = False) -> None:
    page.write(text, size=8 if mono else 9, height=_LINE, mono=mono)


def _field(page: _Page, label: str, value: str) -> None:
    _line(page, f"{label}: {value}")


def _write_cover(page: _Page, report: AuditReport) -> None:
    _heading(page, "Consent evidence", size=16)
    _field(page, "Request", report.subject)
    _field(page, "Generated (UTC)", format_instant(report.generated_at))
    businesses = sorted({event.business_id for event in report.events})
    names = sorted({e.evidence.business_name for e in report.events if e.evidence is not None})
    numbers = sorted({event.phone_number for event in report.events})
    _field(page, "Business", ", ".join(businesses) or "-")
    if names:
        _field(page, "Business name", ", ".join(names))
    _field(page, "Phone number", ", ".join(numbers) or "-")
    _field(page, "Events", str(len(report.events)))
    _line(
        page,
        "Every time is UTC. Text here is shown in the PDF's Latin-1 fonts; the exact stored text "
        "and the hashes that prove it are in events.jsonl, and verify.py checks them offline.",
    )
    page.space(2)


def _write_event(page: _Page, event: ReportedEvent) -> None:
    _heading(page, f"{event.business_id} #{event.seq}: {event.kind}", size=11)
    _field(page, "Number", event.phone_number)
    _field(page, "Recorded at", event.recorded_at)
    evidence = event.evidence
    if evidence is None:
        _line(page, "The stored body of this event does not load as evidence: see verification.")
    else:
        _write_evidence(page, evidence)
    if event.audio_status is not None:
        _field(page, "Answer audio", event.audio_status)
    _line(page, f"hash {event.hash}", mono=True)
    page.space(2)


def _write_evidence(page: _Page, evidence: ConsentEvidence) -> None:
    _field(page, "Decision", evidence.kind.value)
    _field(page, "Method", evidence.method.value)
    _field(page, "Occurred at", format_instant(evidence.occurred_at))
    if evidence.call_sid:
        _field(page, "Call", f"{evidence.call_sid} (stream {evidence.stream_sid or '-'})")
    if evidence.script is not None:
        script = evidence.script
        started = format_instant(script.started_at) if script.started_at else "-"
        confirmed = (
            format_instant(script.playback_confirmed_at) if script.playback_confirmed_at else "-"
        )
        _field(page, "Script", f"version {script.version}, started {started}, played {confirmed}")
        _line(page, f'"{script.text}"')
        _line(page, f"script sha256 {script.sha256}", mono=True)
    if evidence.web_form is not None:
        form = evidence.web_form
        _field(page, "Web form", f"sent from {form.page_url} by {form.ip_address}")
        _line(page, f"browser: {form.user_agent or '-'}")
    for number, answer in enumerate(evidence.answers, start=1):
        label = "Answer" if number == 1 else "Answer to the re-ask"
        heard = f'"{answer.transcript}"' if answer.transcript else "(no words)"
        keypad = f", keypad {answer.keypad_digit}" if answer.keypad_digit else ""
        _field(
            page,
            label,
            f"{heard} from {format_instant(answer.started_at)} to "
            f"{format_instant(answer.ended_at)}, {answer.engine}, confidence "
            f"{answer.confidence:.2f}{keypad}",
        )
        for word in answer.words:
            _line(
                page,
                f"    {format_instant(word.start)}  {word.word}  ({word.confidence:.2f})",
            )
    if evidence.classifier:
        reasked = ", after one re-ask" if evidence.reasked else ""
        _field(
            page, "Classified by", f"{evidence.classifier} {evidence.classifier_version}{reasked}"
        )
    if evidence.scope is not None:
        scope = evidence.scope
        _field(
            page,
            "Allows",
            f"up to {scope.max_texts} texts ({scope.purpose}) until "
            f"{format_instant(scope.expires_at)}",
        )
    if evidence.revokes:
        _line(page, f"undoes event {evidence.revokes}", mono=True)
    if evidence.note:
        _field(page, "Note", evidence.note)


def _write_chains(page: _Page, chains: Sequence[ReportedChain]) -> None:
    _heading(page, "Verification of each business's whole chain at export", size=12)
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
        _field(page, chain.business_id, verdict)
        if result.audio_checked or result.audio_purged:
            _field(
                page,
                "Audio",
                f"{result.audio_checked} recordings intact, {result.audio_purged} purged",
            )
        _line(page, f"chain head #{chain.head_seq} {chain.head_hash}", mono=True)
