"""The confirmation text (wording, segment counting, shortening) and the outbox table."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from sms_sender.outbox import (
    OutboxKind,
    OutboxStatus,
    cancel_pending,
    count_sent,
    list_outbox,
    queue_confirmation,
)
from sms_sender.segments import is_gsm7, segment_count, to_gsm7
from sms_sender.tables import metadata, outbox
from sms_sender.templates import (
    CTIA_OPT_IN_NOTICE,
    ConfirmationRequest,
    ConfirmationTerms,
    TemplateName,
    load_template,
    render_confirmation,
    shipped_template,
)
from tests.conftest import BACKENDS, fresh_database
from voice_agent.records.database import make_engine

NOW = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)

REQUEST = ConfirmationRequest(
    business_id="acme-plumbing",
    business_name="Acme Plumbing",
    from_number="+15125550100",
    to_number="+15125550123",
    call_sid="CA0001",
    need="your leaking kitchen sink",
    callback_time="within 30 minutes",
    consent_event_hash="a" * 64,
)


TERMS = ConfirmationTerms(2, NOW + timedelta(hours=24), "America/Chicago")
"""Two texts at most, until 10:00 the next morning in Austin."""
PROMISE = "Up to 2 texts about this request until Jun 3, 10:00 AM CDT."


def with_need(need: str) -> ConfirmationRequest:
    return dataclasses.replace(REQUEST, need=need)


# --- segment counting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters take two septets
        ("€" * 81, 2),
        ("a" * 152 + "€" + "a" * 152, 3),  # 306 septets, but the escape pair cannot be split
        ("ж" * 70, 1),
        ("ж" * 71, 2),
        ("ж" * 134, 2),
        ("ж" * 135, 3),
        ("😀" * 35, 1),  # a surrogate pair is two UCS-2 code units
        ("😀" * 36, 2),
        ("a" * 66 + "😀" + "a" * 66, 3),  # 134 code units, but the pair cannot be split
        ("a" * 159 + "ç", 3),  # one non-GSM character turns all 160 into UCS-2
    ],
)
def test_segment_count(body: str, segments: int) -> None:
    assert segment_count(body) == segments


def test_gsm7_alphabet_and_folding() -> None:
    assert is_gsm7("Ça coûte 5€ [max] {ok} ~ ^ | \\ @£$¥") is False  # û is not GSM-7
    assert is_gsm7("Ça coute 5€ [max] {ok} ~ ^ | \\ @£$¥ ÄÖÑÜ§¿äöñüà")
    assert to_gsm7("don’t “leak” — café crème côté… 🚰") == 'don\'t "leak" - café crème coté... '


# --- rendering --------------------------------------------------------------------------------


def test_renders_the_confirmation_for_an_opted_in_call() -> None:
    assert render_confirmation(REQUEST, TERMS) == (
        "Acme Plumbing: thanks for calling about your leaking kitchen sink. We'll call you back "
        "within 30 minutes. Up to 2 texts about this request until Jun 3, 10:00 AM CDT. "
        "Msg & data rates may apply. Reply HELP for help, STOP to opt out."
    )


@pytest.mark.parametrize(
    "need",
    [
        "x" * 5000,
        "my kitchen sink is leaking all over the floor " * 40,
        "🚰💧🔧 water everywhere 😱 " * 30,
        "{}[]~^|\\€" * 100,
        "a" * 152 + "€" * 200,
        "{business_name} {need} {0} %s " * 50,
        "\u202eevil\u200b\x00\x1b[31m " * 60,
    ],
)
def test_hostile_long_needs_are_shortened_to_two_segments(need: str) -> None:
    body = render_confirmation(with_need(need), TERMS)
    assert segment_count(body) <= 2
    assert body.startswith("Acme Plumbing: thanks for calling about ")
    assert body.endswith(f". We'll call you back within 30 minutes. {PROMISE} {CTIA_OPT_IN_NOTICE}")
    assert "... We'll call you back" in body
    assert "...." not in body


def test_shortening_cuts_at_a_word_boundary() -> None:
    body = render_confirmation(with_need("drain " * 100), TERMS)
    need = body.removeprefix("Acme Plumbing: thanks for calling about ").split("... We'll")[0]
    assert need.split(" ") == ["drain"] * len(need.split(" "))
    assert segment_count(body) == 2


def test_shortening_keeps_as_much_of_the_need_as_fits() -> None:
    body = render_confirmation(with_need("x" * 5000), TERMS)
    longer = body.replace("x...", "xx...", 1)
    assert segment_count(longer) > 2


def test_control_and_invisible_characters_are_removed() -> None:
    body = render_confirmation(
        with_need("  burst\npipe\t\x07\u200b\u202e in the\r\n attic!!  "), TERMS
    )
    assert "about burst pipe in the attic. We'll" in body


@pytest.mark.parametrize("need", ["", "   ", "\n\t", "\x00\u200b", "..."])
def test_an_empty_need_falls_back_to_a_neutral_phrase(need: str) -> None:
    body = render_confirmation(with_need(need), TERMS)
    assert "thanks for calling about your service request. We'll" in body


def test_characters_outside_gsm7_are_folded_when_they_would_not_fit() -> None:
    body = render_confirmation(with_need("my 🚰 won’t stop — help"), TERMS)
    assert "about my won't stop - help. We'll" in body
    assert is_gsm7(body)
    assert segment_count(body) == 2


def test_placeholders_in_the_need_are_kept_as_text() -> None:
    body = render_confirmation(with_need("{business_name}"), TERMS)
    assert "about {business_name}. We'll" in body


def test_a_business_name_outside_gsm7_is_folded_when_the_need_would_not_fit() -> None:
    body = render_confirmation(dataclasses.replace(REQUEST, business_name="Plomberie Côté"), TERMS)
    assert body.startswith("Plomberie Coté: thanks for calling about your leaking kitchen sink.")
    assert segment_count(body) == 2


def test_a_business_name_too_long_to_leave_room_is_refused() -> None:
    with pytest.raises(ValueError, match="no room"):
        render_confirmation(dataclasses.replace(REQUEST, business_name="Acme " * 40), TERMS)


@pytest.mark.parametrize("field", ["business_name", "callback_time"])
def test_blank_business_name_or_callback_time_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match=f"needs a value for {field}"):
        render_confirmation(dataclasses.replace(REQUEST, **{field: " \n "}), TERMS)


# --- loading templates ------------------------------------------------------------------------


def test_the_shipped_template_loads() -> None:
    template = shipped_template(TemplateName.CONFIRMATION)
    assert template.text.endswith(CTIA_OPT_IN_NOTICE)


_TERMS = "Up to {text_count} until {until}. {booking_link} " + CTIA_OPT_IN_NOTICE


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{business_name}: " + "x" * 300 + " {need} {callback_time}. " + _TERMS, "fit"),
        ("{business_name}: {need} {callback_time}. " + _TERMS[: -len(CTIA_OPT_IN_NOTICE)], "say"),
        (
            "{business_name}: {need} {callback_time}. {text_count} by {until}. {booking_link} "
            + CTIA_OPT_IN_NOTICE,
            "must say 'Up to '",
        ),
        ("{business_name}: {need}. " + _TERMS, "exactly once"),
        ("{business_name} {need} {need} {callback_time} " + _TERMS, "exactly once"),
        ("{business_name} {need} {callback_time} {caller} " + _TERMS, "unknown field"),
        ("{business_name} {need!r} {callback_time} " + _TERMS, "unknown field"),
        ("{business_name} {need} {callback_time} } " + _TERMS, "malformed"),
        ("{business_name} — {need} {callback_time} " + _TERMS, "GSM-7"),
        (
            "{business_name} {need} {callback_time} Up to {text_count}. " + CTIA_OPT_IN_NOTICE,
            "once",
        ),
    ],
)
def test_templates_that_are_malformed_or_cannot_fit_are_refused_at_load(
    tmp_path: Path, template: str, problem: str
) -> None:
    path = tmp_path / "confirmation.txt"
    path.write_text(template + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=problem):
        load_template(TemplateName.CONFIRMATION, path)


# --- the outbox -------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with fresh_database(request.param, tmp_path, "outbox") as url:
        database = make_engine(url)
        with database.begin() as conn:
            metadata.create_all(conn)
        yield database
        database.dispose()


def test_queue_confirmation_schedules_the_rendered_text(engine: Engine) -> None:
    due = NOW + timedelta(seconds=1)
    with engine.begin() as conn:
        queued = queue_confirmation(conn, REQUEST, due, TERMS)
    with engine.begin() as conn:
        [stored] = list_outbox(conn)
    assert stored == queued
    assert stored.status is OutboxStatus.SCHEDULED
    assert stored.kind is OutboxKind.CONFIRMATION
    assert stored.body == render_confirmation(REQUEST, TERMS)
    assert stored.segments == 2
    assert (stored.business_id, stored.call_sid) == ("acme-plumbing", "CA0001")
    assert (stored.to_number, stored.from_number) == ("+15125550123", "+15125550100")
    assert stored.consent_event_hash == "a" * 64
    assert stored.due_at == due
    assert stored.due_at.tzinfo is not None
    assert stored.attempts == 0
    assert (stored.claimed_at, stored.sent_at, stored.provider_message_id) == (None, None, None)


def test_queue_confirmation_is_idempotent_per_call(engine: Engine) -> None:
    with engine.begin() as conn:
        first = queue_confirmation(conn, REQUEST, NOW, TERMS)
    with engine.begin() as conn:
        again = queue_confirmation(
            conn, with_need("something else"), NOW + timedelta(hours=1), TERMS
        )
        other_call = queue_confirmation(
            conn, dataclasses.replace(REQUEST, call_sid="CA0002"), NOW, TERMS
        )
    assert again == first
    assert other_call.id != first.id
    with engine.begin() as conn:
        assert [m.call_sid for m in list_outbox(conn)] == ["CA0001", "CA0002"]


def test_times_come_back_as_the_same_instant_in_utc(engine: Engine) -> None:
    due = datetime(2025, 6, 2, 10, 0, tzinfo=timezone(timedelta(hours=-5)))
    with engine.begin() as conn:
        queued = queue_confirmation(conn, REQUEST, due, TERMS)
    assert queued.due_at == due
    assert queued.due_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "change",
    [
        {"to_number": "5125550123"},
        {"to_number": "+1 512 555 0123"},
        {"to_number": ""},
        {"from_number": "+0123456789"},
        {"call_sid": " "},
        {"business_id": ""},
        {"consent_event_hash": ""},
    ],
)
def test_malformed_requests_are_refused_and_nothing_is_queued(
    engine: Engine, change: dict[str, str]
) -> None:
    with engine.begin() as conn, pytest.raises(ValueError):
        queue_confirmation(conn, dataclasses.replace(REQUEST, **change), NOW, TERMS)
    with engine.begin() as conn:
        assert list_outbox(conn) == []


def test_a_naive_due_time_is_refused(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(ValueError, match="aware"):
        queue_confirmation(conn, REQUEST, datetime(2025, 6, 2, 15, 0), TERMS)


def test_list_outbox_filters_by_business_and_call(engine: Engine) -> None:
    with engine.begin() as conn:
        queue_confirmation(conn, REQUEST, NOW, TERMS)
        queue_confirmation(conn, dataclasses.replace(REQUEST, call_sid="CA0002"), NOW, TERMS)
        queue_confirmation(
            conn,
            dataclasses.replace(REQUEST, business_id="bright-spark", call_sid="CA0003"),
            NOW,
            TERMS,
        )
    with engine.begin() as conn:
        assert [m.call_sid for m in list_outbox(conn, business_id="acme-plumbing")] == [
            "CA0001",
            "CA0002",
        ]
        assert [m.call_sid for m in list_outbox(conn, call_sid="CA0003")] == ["CA0003"]
        assert list_outbox(conn, business_id="acme-plumbing", call_sid="CA0003") == []


def queue_with_status(
    engine: Engine, call_sid: str, status: OutboxStatus, sent_at: datetime | None, **change: str
) -> None:
    request = dataclasses.replace(REQUEST, call_sid=call_sid, **change)
    with engine.begin() as conn:
        queued = queue_confirmation(conn, request, NOW, TERMS)
        conn.execute(
            update(outbox)
            .where(outbox.c.id == queued.id)
            .values(status=status.value, sent_at=sent_at)
        )


def test_count_sent_counts_texts_handed_to_the_carrier_since_a_time(engine: Engine) -> None:
    hour = timedelta(hours=1)
    queue_with_status(engine, "CA1", OutboxStatus.SENT, NOW)
    queue_with_status(engine, "CA2", OutboxStatus.DELIVERED, NOW + hour)
    queue_with_status(engine, "CA3", OutboxStatus.UNDELIVERED, NOW + 2 * hour)
    queue_with_status(engine, "CA4", OutboxStatus.SENT, NOW - hour)
    queue_with_status(engine, "CA5", OutboxStatus.FAILED, NOW)
    queue_with_status(engine, "CA6", OutboxStatus.BLOCKED, None)
    queue_with_status(engine, "CA7", OutboxStatus.SCHEDULED, None)
    queue_with_status(engine, "CA8", OutboxStatus.SENT, NOW, to_number="+15125550124")
    queue_with_status(engine, "CA9", OutboxStatus.SENT, NOW, business_id="bright-spark")
    with engine.begin() as conn:
        assert count_sent(conn, "acme-plumbing", "+15125550123", NOW) == 3
        assert count_sent(conn, "acme-plumbing", "+15125550123", NOW - hour) == 4
        assert count_sent(conn, "acme-plumbing", "+15125550123", NOW + 3 * hour) == 0
        assert count_sent(conn, "acme-plumbing", "+15125550199", NOW - hour) == 0


def test_cancel_pending_cancels_only_unsent_texts_to_that_number(engine: Engine) -> None:
    queue_with_status(engine, "CA1", OutboxStatus.SCHEDULED, None)
    queue_with_status(engine, "CA2", OutboxStatus.CLAIMED, None)
    queue_with_status(engine, "CA3", OutboxStatus.SENT, NOW)
    queue_with_status(engine, "CA4", OutboxStatus.SCHEDULED, None, to_number="+15125550124")
    queue_with_status(engine, "CA5", OutboxStatus.SCHEDULED, None, business_id="bright-spark")
    with engine.begin() as conn:
        assert cancel_pending(conn, "acme-plumbing", "+15125550123", "revoked by STOP") == 2
    with engine.begin() as conn:
        outcome = {m.call_sid: (m.status, m.reason) for m in list_outbox(conn)}
    assert outcome == {
        "CA1": (OutboxStatus.CANCELLED, "revoked by STOP"),
        "CA2": (OutboxStatus.CANCELLED, "revoked by STOP"),
        "CA3": (OutboxStatus.SENT, None),
        "CA4": (OutboxStatus.SCHEDULED, None),
        "CA5": (OutboxStatus.SCHEDULED, None),
    }


@pytest.mark.parametrize(
    ("need", "reads"),
    [
        ("your leaking kitchen sink.", "about your leaking kitchen sink. We'll"),
        ("your tripping breaker!", "about your tripping breaker. We'll"),
        ("Maria's water heater", "about Maria's water heater."),
        ("I need a new outlet", "about I need a new outlet."),
        ("EV charger install", "about EV charger install."),
    ],
)
def test_the_need_reads_as_part_of_the_sentence(need: str, reads: str) -> None:
    request = ConfirmationRequest(
        business_id="acme-plumbing",
        business_name="Acme Plumbing",
        from_number="+15125550100",
        to_number="+15125550142",
        call_sid="CA" + "0" * 32,
        need=need,
        callback_time="within 30 minutes",
        consent_event_hash="a" * 64,
    )
    assert reads in render_confirmation(request, TERMS)
