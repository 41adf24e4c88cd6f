"""The audit packet's ``report.pdf``: the consent evidence of one request, for a person to read.

The first page names the request and holds a summary table, one row per event: the number, the
business, how the person expressed the decision, the decision, and when, on the business's clock
with UTC beside it (as many rows as the page holds; it says how many more follow). Then each event
in chain order, in words: what happened, how, when, the exact script that was read, the caller's
words with the time of each, a key pressed, the text that made a change by text, what the
decision allows, what a revocation points at, the answer audio's state, and every text sent under
it with its time, body and status. It ends with the result of verifying each business's whole
chain at export time, and its chain head. Times are given to the second; the exact instants are in
``events.jsonl``. Every line is wrapped inside the page's margins, the footer too.

It uses the PDF core fonts, which only cover Latin-1, so text is transliterated first: dashes and
curly quotes become their plain forms, accented letters outside Latin-1 lose their accents, and
anything else becomes ``?``. The exact text is always in ``events.jsonl``; the report says so.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.fonts import CORE_FONTS_CHARWIDTHS

from consent_ledger.evidence import GRANTING_KINDS, AnswerEvidence, ConsentEvidence
from consent_ledger.instants import parse_instant
from consent_ledger.text_log import SentText
from consent_ledger.verify import VerificationReport
from consent_ledger.wording import decision, local_and_utc, method, zone_or_utc

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
    texts: tuple[SentText, ...] = ()


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
    time_zones: Mapping[str, str] = field(default_factory=dict)
    """Each business's time zone (a business not named here is shown in UTC)."""
    texts_included: bool = False
    """Whether the events carry the texts sent under them."""

    def zone(self, business_id: str) -> ZoneInfo:
        return zone_or_utc(self.time_zones.get(business_id))


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
    page.new_page()
    for event in report.events:
        _write_event(page, event, report.zone(event.business_id), report.texts_included)
    _write_chains(page, report.chains)
    return bytes(pdf.output())


class _ReportPdf(FPDF):
    def __init__(self, report: AuditReport) -> None:
        super().__init__(format="A4")
        generated = report.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        self._footer_text = f"Consent evidence, generated {generated} - page {{}}"

    def footer(self) -> None:
        """The footer, centred and wrapped inside the margins, below the page's text."""
        size = _FOOTER_SIZE
        self.set_font(_FONT, size=size)
        widths = _CHAR_WIDTHS[(_FONT, "")]
        room = self.epw * 1000 * _PT_PER_MM / size
        lines = _wrapped(latin1(self._footer_text.format(self.page_no())), widths, room)
        y = self.h - _BOTTOM_MARGIN + 3
        for line in lines:
            width = sum(map(widths.__getitem__, line)) * size / 1000 / _PT_PER_MM
            self.text(self.l_margin + (self.epw - width) / 2, y, line)
            y += size / _PT_PER_MM * 1.2


_PT_PER_MM = 72 / 25.4
_BOTTOM_MARGIN = 15.0
_FOOTER_SIZE = 7


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
        for line in _lines(text, family, style, size, self._width):
            if self._y + height > self._bottom:
                self.new_page()
            self._put(self._x, self._y, line, family, style, size, height)
            self._y += height

    def row(self, cells: Sequence[str], widths: Sequence[float], *, style: str = "") -> bool:
        """A table row: each cell wrapped inside its column (``widths`` in mm), a rule below;
        False, and nothing written, when the page has no room left for it."""
        size, height = _TABLE_SIZE, _TABLE_LINE
        wrapped = [
            _lines(cell, _FONT, style, size, width - 2 * _CELL_PADDING)
            for cell, width in zip(cells, widths, strict=True)
        ]
        tallest = max(len(lines) for lines in wrapped) * height + _CELL_PADDING
        if self._y + tallest > self._bottom:
            return False
        left = self._pdf.l_margin
        for lines, width in zip(wrapped, widths, strict=True):
            for number, line in enumerate(lines):
                top = self._y + number * height
                self._put(left + _CELL_PADDING, top, line, _FONT, style, size, height)
            left += width
        self._y += tallest
        self._pdf.set_draw_color(190)
        self._pdf.line(self._pdf.l_margin, self._y, self._pdf.l_margin + sum(widths), self._y)
        self._y += _CELL_PADDING / 2
        return True

    def _put(
        self, x: float, top: float, line: str, family: str, style: str, size: float, height: float
    ) -> None:
        """``line`` in a line box ``height`` mm tall whose top is at ``top``."""
        if self._font != (family, style, size):
            self._pdf.set_font(family, style=style, size=size)
            self._font = (family, style, size)
        if line:
            baseline = top + height / 2 + 0.3 * size / _PT_PER_MM
            self._pdf.text(x, baseline, line)

    def new_page(self) -> None:
        self._pdf.add_page()
        self._font = None  # a new page takes its font again
        self._y = self._pdf.t_margin

    def space(self, height: float) -> None:
        self._y += height

    @property
    def width(self) -> float:
        """The width text may take, in mm."""
        return self._width


def _lines(text: str, family: str, style: str, size: float, width: float) -> list[str]:
    """``text`` in Latin-1, wrapped into lines no wider than ``width`` mm at ``size`` points."""
    room = width * 1000 * _PT_PER_MM / size  # in the font's 1/1000 em units
    return _wrapped(latin1(text), _CHAR_WIDTHS[(family, style)], room)


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


_TABLE_SIZE = 8
_TABLE_LINE = 3.8
_CELL_PADDING = 1.0
_SUMMARY_COLUMNS = ("Number", "Business", "Method", "Decision", "When (business time)", "UTC")
_SUMMARY_SHARES = (0.15, 0.19, 0.14, 0.18, 0.20, 0.14)


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
    generated = report.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    _field(page, "Generated", generated)
    names = sorted({e.evidence.business_name for e in report.events if e.evidence is not None})
    if names:
        _field(page, "Business", ", ".join(names))
    _field(page, "Events", str(len(report.events)))
    texts = "every text sent under each event is listed with it, and in texts.jsonl"
    if not report.texts_included:
        texts = "the texts sent are not included in this packet"
    _line(
        page,
        "Times are on each business's clock with UTC beside them, to the second; "
        f"{texts}. The exact stored text, times and the hashes that prove them are in "
        "events.jsonl, and verify.py checks them offline.",
    )
    page.space(2)
    _write_summary_table(page, report)


def _write_summary_table(page: _Page, report: AuditReport) -> None:
    """One row per event, as many as the first page holds."""
    widths = [share * page.width for share in _SUMMARY_SHARES]
    page.row(_SUMMARY_COLUMNS, widths, style="B")
    for shown, event in enumerate(report.events):
        if not page.row(_summary_cells(event, report.zone(event.business_id)), widths):
            left = len(report.events) - shown
            _line(page, f"... and {left} more events: every event is given in full below.")
            return


def _summary_cells(event: ReportedEvent, zone: ZoneInfo) -> list[str]:
    evidence = event.evidence
    when = evidence.occurred_at if evidence is not None else parse_instant(event.recorded_at)
    local, _, in_utc = local_and_utc(when, zone).partition(" (")
    business = event.business_id if evidence is None else evidence.business_name
    return [
        event.phone_number,
        business,
        "-" if evidence is None else method(evidence.method.value),
        decision(event.kind) if evidence is not None else "record does not load",
        local,
        in_utc.rstrip(")") or local,
    ]


def _write_event(page: _Page, event: ReportedEvent, zone: ZoneInfo, texts_listed: bool) -> None:
    _heading(page, f"Event #{event.seq} at {event.business_id}: {decision(event.kind)}", size=11)
    _field(page, "Number", event.phone_number)
    _field(page, "Recorded", local_and_utc(parse_instant(event.recorded_at), zone))
    evidence = event.evidence
    if evidence is None:
        _line(page, "The stored body of this event does not load as evidence: see verification.")
    else:
        _write_evidence(page, evidence, zone)
    if event.audio_status is not None:
        _field(page, "Answer audio", event.audio_status)
    _line(page, f"hash {event.hash}", mono=True)
    _write_texts(page, event, zone, texts_listed)
    page.space(2)


def _write_evidence(page: _Page, evidence: ConsentEvidence, zone: ZoneInfo) -> None:
    _field(page, "Decision", decision(evidence.kind.value))
    _field(page, "How", method(evidence.method.value))
    _field(page, "When", local_and_utc(evidence.occurred_at, zone))
    if evidence.call_sid:
        _field(page, "Call", f"{evidence.call_sid} (stream {evidence.stream_sid or '-'})")
    if evidence.script is not None:
        script = evidence.script
        started = _moment(script.started_at, zone)
        confirmed = _moment(script.playback_confirmed_at, zone)
        _field(
            page,
            "Script",
            f"version {script.version}, started {started}, heard in full by {confirmed}",
        )
        _line(page, f'"{script.text}"')
        _line(page, f"script sha256 {script.sha256}", mono=True)
    if evidence.web_form is not None:
        form = evidence.web_form
        _field(page, "Web form", f"sent from {form.page_url} by {form.ip_address}")
        _line(page, f"browser: {form.user_agent or '-'}")
    for number, answer in enumerate(evidence.answers, start=1):
        reask = number == 2 or answer.keypad_digit is not None  # keys count on the re-ask only
        label = "Answer to the re-ask" if reask else "Answer"
        _field(page, label, _answer(answer, zone))
        for word in answer.words:
            offset = (word.start - answer.started_at).total_seconds()
            _line(page, f"    +{offset:.2f} s  {word.word}  (confidence {word.confidence:.2f})")
    if evidence.message is not None:
        _field(page, "Texted", f'"{evidence.message.body}" (message {evidence.message.sid})')
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
            f"{local_and_utc(scope.expires_at, zone)}",
        )
    if evidence.revokes:
        _field(page, "Undoes the event with hash", evidence.revokes)
    if evidence.note:
        _field(page, "Note", evidence.note)


def _answer(answer: AnswerEvidence, zone: ZoneInfo) -> str:
    at = local_and_utc(answer.started_at, zone)
    if answer.keypad_digit:
        return f"pressed {answer.keypad_digit} on the keypad, at {at}"
    heard = f'"{answer.transcript}"' if answer.transcript else "(no words)"
    seconds = (answer.ended_at - answer.started_at).total_seconds()
    return (
        f"{heard}, from {at} for {seconds:.1f} s; heard by {answer.engine} with confidence "
        f"{answer.confidence:.2f}"
    )


def _write_texts(page: _Page, event: ReportedEvent, zone: ZoneInfo, listed: bool) -> None:
    """The texts sent under the event; for a grant with none (when texts are ``listed``), that
    none were."""
    if not event.texts:
        if listed and event.kind in GRANTING_KINDS:
            _line(page, "No texts were sent under this consent.")
        return
    _line(page, f"Texts sent under this event ({len(event.texts)}):")
    for text in event.texts:
        when = f"sent {local_and_utc(text.sent_at, zone)}" if text.sent_at else "not sent"
        reason = f" ({text.reason})" if text.reason else ""
        _line(
            page,
            f"    {text.kind.replace('_', ' ')} to {text.to_number}, queued "
            f"{local_and_utc(text.queued_at, zone)}, {when}, status {text.status}{reason}"
            f"{', message ' + text.message_sid if text.message_sid else ''}:",
        )
        _line(page, f'        "{text.body}"')


def _moment(value: datetime | None, zone: ZoneInfo) -> str:
    return "-" if value is None else local_and_utc(value, zone)


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
