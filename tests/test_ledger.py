"""The consent ledger: evidence validation, the hash chain, append-only storage and verification.

Storage tests run on SQLite (a temporary file) and on PostgreSQL when it is reachable, each test in
its own schema so that nothing else in the shared test database is touched.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from consent_ledger.chain import (
    GENESIS_HASH,
    CorruptEventError,
    RecordedEvent,
    append_event,
    canonical_json,
)
from consent_ledger.evidence import (
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    EventKind,
    MessageEvidence,
    ScriptEvidence,
    WebFormEvidence,
    WordEvidence,
)
from consent_ledger.instants import format_instant, parse_instant, stored_instant
from consent_ledger.queries import event_by_hash, events_for_number, latest_events
from consent_ledger.tables import (
    append_only_ddl,
    consent_chain_heads,
    consent_events,
)
from consent_ledger.verify import verify_ledger
from tests.conftest import BACKENDS, fresh_database
from tests.ledger_support import (
    NUMBER,
    OTHER_NUMBER,
    SCRIPT_TEXT,
    T0,
    call_evidence,
    consent_script,
    drop_append_only_triggers,
    ledger_engine,
    sha256_hex,
    spoken_answer,
    without_call,
)

# --- database fixtures -------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a fresh ledger schema (tables and append-only triggers)."""
    with fresh_database(request.param, tmp_path, "ledger") as url, ledger_engine(url) as database:
        yield database


# --- evidence builders -------------------------------------------------------------------------


def _evidence(
    kind: EventKind = EventKind.CONSENT_GRANTED,
    *,
    business_id: str = "acme",
    number: str = NUMBER,
    at: datetime = T0,
) -> ConsentEvidence:
    """A valid record of ``kind`` whose script started at ``at``; the answer came 9 s later."""
    evidence = call_evidence(
        kind,
        business_id=business_id,
        number=number,
        at=at,
        audio_sha256=sha256_hex("audio"),
        note="answered on the first ask",
    )
    return replace(evidence, business_name="Acme Plumbing & Heating — Müller")


# --- validation --------------------------------------------------------------------------------

_VALID = _evidence()
_LATE = T0 + timedelta(seconds=30)
_PLAYED_SCRIPT = replace(consent_script(T0), audio_sha256=sha256_hex("the script's audio"))
_WITH_SCRIPT_AUDIO = replace(_VALID, script=_PLAYED_SCRIPT)

_INVALID_CHANGES: dict[str, tuple[Callable[[], object], str]] = {
    "number without plus": (lambda: replace(_VALID, phone_number="15555550123"), "E.164"),
    "number with spaces": (lambda: replace(_VALID, phone_number="+1 555 555 0123"), "E.164"),
    "number with letters": (lambda: replace(_VALID, phone_number="+1555555012x"), "phone"),
    "number too short": (lambda: replace(_VALID, phone_number="+1"), "phone"),
    "number not a string": (lambda: replace(_VALID, phone_number=15555550123), "E.164"),  # type: ignore[arg-type]
    "naive time": (lambda: replace(_VALID, occurred_at=datetime(2025, 4, 11, 14)), "naive"),
    "non-UTC time": (
        lambda: replace(_VALID, occurred_at=T0.astimezone(timezone(timedelta(hours=2)))),
        "UTC",
    ),
    "zero texts": (lambda: ConsentScope("x", 0, T0), "max_texts"),
    "five texts": (lambda: ConsentScope("x", 5, T0), "max_texts"),
    "bool texts": (lambda: ConsentScope("x", True, T0), "max_texts"),
    "text count as string": (lambda: ConsentScope("x", "2", T0), "max_texts"),  # type: ignore[arg-type]
    "grant without scope": (lambda: replace(_VALID, scope=None), "needs a scope"),
    "decline with scope": (
        lambda: replace(_VALID, kind=EventKind.CONSENT_DECLINED),
        "takes no scope",
    ),
    "window over 24 hours": (
        lambda: replace(
            _VALID, scope=ConsentScope("x", 2, _VALID.occurred_at + timedelta(hours=24, seconds=1))
        ),
        "24 hours",
    ),
    "window ending before consent": (
        lambda: replace(_VALID, scope=ConsentScope("x", 2, _VALID.occurred_at)),
        "after occurred_at",
    ),
    "script hash of other text": (
        lambda: ScriptEvidence("v1", "other text", hashlib.sha256(b"text").hexdigest(), None, None),
        "sha256 of script.text",
    ),
    "script hash upper-case": (
        lambda: ScriptEvidence("v1", "t", hashlib.sha256(b"t").hexdigest().upper(), None, None),
        "lower-case hex",
    ),
    "script audio hash not hex": (
        lambda: replace(_PLAYED_SCRIPT, audio_sha256="xyz"),
        "script.audio_sha256",
    ),
    "playback confirmed before start": (
        lambda: ScriptEvidence(
            "v1", SCRIPT_TEXT, hashlib.sha256(SCRIPT_TEXT.encode()).hexdigest(), _LATE, T0
        ),
        "before the script started",
    ),
    "answer before playback confirmed": (
        lambda: replace(_VALID, answers=(spoken_answer(T0 + timedelta(seconds=7)),)),
        "before the script's playback",
    ),
    "spoken grant without answer": (lambda: replace(_VALID, answers=()), "caller's answer"),
    "spoken grant without script": (lambda: replace(_VALID, script=None), "playback confirmed"),
    "two answers without re-ask": (
        lambda: replace(_VALID, answers=(spoken_answer(_LATE), spoken_answer(_LATE))),
        "re-ask",
    ),
    "three answers": (
        lambda: replace(_VALID, reasked=True, answers=(spoken_answer(_LATE),) * 3),
        "re-ask",
    ),
    "answers as a list": (lambda: replace(_VALID, answers=[spoken_answer(_LATE)]), "tuple"),  # type: ignore[arg-type]
    "revocation pointing nowhere": (
        lambda: replace(_VALID, kind=EventKind.REVOKED, scope=None),
        "revokes",
    ),
    "decline that revokes": (
        lambda: replace(_VALID, kind=EventKind.CONSENT_DECLINED, scope=None, revokes="a" * 64),
        "revokes nothing",
    ),
    "classifier without version": (
        lambda: replace(_VALID, classifier_version=None),
        "go together",
    ),
    "NaN confidence": (lambda: replace(spoken_answer(_LATE), confidence=math.nan), "confidence"),
    "confidence above one": (lambda: replace(spoken_answer(_LATE), confidence=1.5), "confidence"),
    "two keypad digits": (lambda: replace(spoken_answer(_LATE), keypad_digit="12"), "keypad_digit"),
    "word ending before start": (lambda: WordEvidence("yes", _LATE, T0, 0.9), "ends before"),
    "empty business id": (lambda: replace(_VALID, business_id=" "), "business_id"),
    "long business id": (lambda: replace(_VALID, business_id="b" * 65), "longer than 64"),
    "kind as plain string": (lambda: replace(_VALID, kind="consent_granted"), "EventKind"),  # type: ignore[arg-type]
    "bad audio hash": (lambda: replace(_VALID, audio_sha256="xyz"), "audio_sha256"),
    "note not a string": (lambda: replace(_VALID, note=None), "note"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", list(_INVALID_CHANGES))
def test_invalid_evidence_is_refused_with_a_clear_message(case: str) -> None:
    build, message = _INVALID_CHANGES[case]
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("evidence", [_VALID, _WITH_SCRIPT_AUDIO], ids=["", "script audio"])
def test_evidence_survives_the_round_trip_through_json(evidence: ConsentEvidence) -> None:
    stored = json.loads(canonical_json(evidence.to_dict()))
    assert ConsentEvidence.from_dict(stored) == evidence


def test_the_script_audio_hash_is_written_only_when_known() -> None:
    """Records from before the played audio was hashed read, and write, exactly as they were:
    their script has no ``audio_sha256`` key, so their stored bodies (and hashes) stand."""
    assert "audio_sha256" not in _VALID.to_dict()["script"]
    assert _WITH_SCRIPT_AUDIO.to_dict()["script"]["audio_sha256"] == sha256_hex(
        "the script's audio"
    )
    older = json.loads(canonical_json(_VALID.to_dict()))
    assert ConsentEvidence.from_dict(older).script == consent_script(T0)
    assert canonical_json(ConsentEvidence.from_dict(older).to_dict()) == canonical_json(older)


def test_an_unknown_script_field_still_does_not_load() -> None:
    stored = json.loads(canonical_json(_WITH_SCRIPT_AUDIO.to_dict()))
    stored["script"]["audio_md5"] = "0" * 32
    with pytest.raises(ValueError, match="perhaps"):
        ConsentEvidence.from_dict(stored)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("scope"),
        lambda d: d.update(extra="field"),
        lambda d: d.update(kind="consent_maybe"),
        lambda d: d.update(occurred_at="2025-04-11 14:00:10"),
        lambda d: d.update(answers="yes"),
        lambda d: d["scope"].update(max_texts=9),
        lambda d: d["script"].update(text="a different script"),
        lambda d: d["answers"][0]["words"][0].update(confidence="high"),
    ],
    ids=["missing", "extra", "kind", "time", "answers", "cap", "script", "word"],
)
def test_damaged_stored_evidence_does_not_load(damage: Callable[[dict[str, Any]], Any]) -> None:
    stored = json.loads(canonical_json(_VALID.to_dict()))
    damage(stored)
    with pytest.raises(ValueError):
        ConsentEvidence.from_dict(stored)


def test_canonical_json_is_sorted_compact_utf8_with_utc_instants() -> None:
    text = canonical_json({"b": "Müller", "a": [1, 2.5], "at": T0 + timedelta(microseconds=7)})
    assert text == '{"a":[1,2.5],"at":"2025-04-11T14:00:00.000007Z","b":"Müller"}'
    with pytest.raises(ValueError):
        canonical_json({"x": math.inf})


# --- the kinds recorded outside a consent question ----------------------------------------------

DISCLOSURE = "By submitting this form you agree that Acme may text you up to 3 times today."


def _web_form(**changes: Any) -> ConsentEvidence:
    """A valid web form consent: the form's disclosure is the script; no call, no spoken answer."""
    evidence = without_call(
        EventKind.WEB_FORM_CONSENT,
        ConsentMethod.WEB_FORM,
        T0,
        script=ScriptEvidence("callback-form/1", DISCLOSURE, sha256_hex(DISCLOSURE), T0, None),
        scope=ConsentScope("callback request", 3, T0 + timedelta(hours=24)),
        note="form submitted from 203.0.113.7",
    )
    return replace(evidence, **changes)


def _no_question(kind: EventKind, method: ConsentMethod, **changes: Any) -> ConsentEvidence:
    """A revocation or an owner's notification choice, recorded outside any consent question."""
    fields: dict[str, Any] = {
        "kind": kind,
        "method": method,
        "script": None,
        "scope": None,
        "revokes": "a" * 64 if kind is EventKind.REVOKED else None,
        "note": "",
    }
    return replace(_web_form(), **(fields | changes))


_OPT_IN = EventKind.OWNER_NOTIFICATIONS_OPT_IN
_FORM_REQUEST = WebFormEvidence("https://example.com/b/acme/callback", "203.0.113.7", "Mozilla/5.0")
_VALID_WITHOUT_QUESTION: dict[str, Callable[[], ConsentEvidence]] = {
    "web form consent": _web_form,
    "web form consent with its request": lambda: _web_form(web_form=_FORM_REQUEST),
    "STOP": lambda: _no_question(EventKind.REVOKED, ConsentMethod.SMS_KEYWORD),
    "please stop texting me": lambda: _no_question(EventKind.REVOKED, ConsentMethod.SMS_TEXT),
    "don't text me, said on a call": lambda: _no_question(
        EventKind.REVOKED, ConsentMethod.SPOKEN, call_sid="CA" + "3" * 32
    ),
    "2 pressed to stop on a call": lambda: _no_question(
        EventKind.REVOKED, ConsentMethod.KEYPAD, call_sid="CA" + "3" * 32
    ),
    "owner revokes for the caller": lambda: _no_question(EventKind.REVOKED, ConsentMethod.OWNER),
    "START": lambda: _no_question(
        EventKind.RESUBSCRIBED,
        ConsentMethod.SMS_KEYWORD,
        revokes="c" * 64,
        scope=ConsentScope("callback request", 3, T0 + timedelta(hours=2)),
    ),
    "owner opts in": lambda: _no_question(_OPT_IN, ConsentMethod.OWNER),
    "owner texts STOP": lambda: _no_question(
        EventKind.OWNER_NOTIFICATIONS_OPT_OUT, ConsentMethod.SMS_KEYWORD
    ),
    "STOP with its words and MessageSid": lambda: _no_question(
        EventKind.REVOKED, ConsentMethod.SMS_KEYWORD, message=MessageEvidence("SM1", " Stop! ")
    ),
    "a plain-language text with its words": lambda: _no_question(
        EventKind.REVOKED, ConsentMethod.SMS_TEXT, message=MessageEvidence("SM2", "no más 🙏")
    ),
}


@pytest.mark.parametrize("case", list(_VALID_WITHOUT_QUESTION))
def test_events_outside_a_consent_question_are_valid_and_round_trip(case: str) -> None:
    evidence = _VALID_WITHOUT_QUESTION[case]()
    assert ConsentEvidence.from_dict(json.loads(canonical_json(evidence.to_dict()))) == evidence


_ANSWER = spoken_answer(T0 + timedelta(seconds=1))
_INVALID_WITHOUT_QUESTION: dict[str, tuple[Callable[[], object], str]] = {
    "web form consent by voice": (lambda: _web_form(method=ConsentMethod.VERBAL), "method verbal"),
    "web form without disclosure": (lambda: _web_form(script=None), "disclosure"),
    "web form on a call": (lambda: _web_form(call_sid="CA1"), "has no call_sid"),
    "web form with a stream": (lambda: _web_form(stream_sid="MZ1"), "has no stream_sid"),
    "web form with a spoken answer": (lambda: _web_form(answers=(_ANSWER,)), "has no answers"),
    "web form with a classifier": (
        lambda: _web_form(classifier="x", classifier_version="1"),
        "has no classifier",
    ),
    "web form without scope": (lambda: _web_form(scope=None), "needs a scope"),
    "web form request without an address": (
        lambda: _web_form(web_form=replace(_FORM_REQUEST, ip_address=" ")),
        "web_form.ip_address",
    ),
    "web form request on a STOP": (
        lambda: _no_question(EventKind.REVOKED, ConsentMethod.SMS_KEYWORD, web_form=_FORM_REQUEST),
        "has no web_form",
    ),
    "web form window over 24 hours": (
        lambda: _web_form(scope=ConsentScope("x", 1, T0 + timedelta(hours=25))),
        "24 hours",
    ),
    "spoken revocation without the call": (
        lambda: _no_question(EventKind.REVOKED, ConsentMethod.SPOKEN),
        "call_sid of a spoken revocation",
    ),
    "keypad revocation without the call": (
        lambda: _no_question(EventKind.REVOKED, ConsentMethod.KEYPAD),
        "call_sid of a keypad revocation",
    ),
    "revocation by web form": (
        lambda: _no_question(EventKind.REVOKED, ConsentMethod.WEB_FORM),
        "cannot be made by method web_form",
    ),
    "call grant by the owner": (
        lambda: replace(_VALID, method=ConsentMethod.OWNER),
        "cannot be made by method owner",
    ),
    "call grant by web form": (
        lambda: replace(_VALID, method=ConsentMethod.WEB_FORM),
        "cannot be made by method web_form",
    ),
    "owner restores a caller's consent": (
        lambda: replace(
            _no_question(EventKind.REVOKED, ConsentMethod.OWNER),
            kind=EventKind.RESUBSCRIBED,
            scope=ConsentScope("x", 1, T0 + timedelta(hours=1)),
        ),
        "cannot be made by method owner",
    ),
    "owner choice with a scope": (
        lambda: _no_question(
            _OPT_IN, ConsentMethod.OWNER, scope=ConsentScope("x", 1, T0 + timedelta(hours=1))
        ),
        "takes no scope",
    ),
    "owner choice pointing at an event": (
        lambda: _no_question(_OPT_IN, ConsentMethod.OWNER, revokes="b" * 64),
        "revokes nothing",
    ),
    "owner choice with a spoken answer": (
        lambda: _no_question(_OPT_IN, ConsentMethod.OWNER, answers=(_ANSWER,)),
        "has no answers",
    ),
    "owner choice made on the call": (
        lambda: _no_question(_OPT_IN, ConsentMethod.VERBAL),
        "cannot be made by method verbal",
    ),
    "method as plain string": (
        lambda: _web_form(method="web_form"),
        "ConsentMethod",
    ),
    "a text message on a spoken revocation": (
        lambda: _no_question(
            EventKind.REVOKED,
            ConsentMethod.SPOKEN,
            call_sid="CA1",
            message=MessageEvidence("SM1", "x"),
        ),
        "carries no text message",
    ),
    "a message without its sid": (
        lambda: MessageEvidence(" ", "STOP"),
        "message.sid must be a non-empty string",
    ),
    "a message sid too long": (lambda: MessageEvidence("S" * 65, "STOP"), "longer than 64"),
    "a message whose words are not text": (
        lambda: MessageEvidence("SM1", None),  # type: ignore[arg-type]
        "message.body must be a string",
    ),
}


@pytest.mark.parametrize("case", list(_INVALID_WITHOUT_QUESTION))
def test_events_outside_a_consent_question_are_checked(case: str) -> None:
    build, message = _INVALID_WITHOUT_QUESTION[case]
    with pytest.raises(ValueError, match=message):
        build()


def test_every_kind_is_accepted_by_the_database(engine: Engine) -> None:
    cases = [build() for build in _VALID_WITHOUT_QUESTION.values()]
    cases += [_evidence(kind) for kind in _CALL_KINDS]
    with engine.begin() as conn:
        for evidence in cases:
            append_event(conn, evidence, T0 + timedelta(minutes=1))
        kinds = set(conn.scalars(select(consent_events.c.kind)))
        assert verify_ledger(conn).ok
    assert kinds == {kind.value for kind in EventKind}


def test_the_database_refuses_an_unknown_kind(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            insert(consent_events).values(
                business_id="acme",
                seq=1,
                phone_number=NUMBER,
                kind="consent_maybe",
                recorded_at=T0,
                body="{}",
                prev_hash=GENESIS_HASH,
                hash="9" * 64,
            )
        )


_CALL_KINDS = (
    EventKind.CONSENT_GRANTED,
    EventKind.CONSENT_DECLINED,
    EventKind.CONSENT_UNCLEAR,
    EventKind.CONSENT_NOT_ASKED,
)


def test_append_only_ddl_refuses_unknown_databases() -> None:
    with pytest.raises(ValueError, match="sqlite and postgresql"):
        append_only_ddl("mysql")


# --- appending and reading ---------------------------------------------------------------------


def _append(engine: Engine, evidence: ConsentEvidence, minutes: int = 0) -> RecordedEvent:
    with engine.begin() as conn:
        return append_event(conn, evidence, T0 + timedelta(minutes=1 + minutes))


def _five_acme_events_among_others(engine: Engine) -> list[RecordedEvent]:
    """Five events for acme (the third is the one tests damage), interleaved with bolt's."""
    acme = []
    for i in range(5):
        number = NUMBER if i % 2 == 0 else OTHER_NUMBER
        acme.append(_append(engine, _evidence(number=number, at=T0 + timedelta(minutes=i)), i))
        _append(engine, _evidence(business_id="bolt", at=T0 + timedelta(minutes=i)), i)
    return acme


def _row_id(engine: Engine, event: RecordedEvent) -> int:
    with engine.begin() as conn:
        statement = select(consent_events.c.id).where(consent_events.c.hash == event.hash)
        return int(conn.execute(statement).scalar_one())


def test_appends_form_one_unbroken_chain_per_business(engine: Engine) -> None:
    acme = _five_acme_events_among_others(engine)

    assert [event.seq for event in acme] == [1, 2, 3, 4, 5]
    assert acme[0].prev_hash == GENESIS_HASH
    assert [event.prev_hash for event in acme[1:]] == [event.hash for event in acme[:-1]]
    with engine.begin() as conn:
        report = verify_ledger(conn)
        stored = conn.execute(select(consent_events).order_by(consent_events.c.id)).all()
    assert report.ok and report.first_broken is None
    assert (report.events_checked, report.chains_checked) == (10, 2)
    for row in stored:
        expected = hashlib.sha256((row.prev_hash + row.body).encode("utf-8")).hexdigest()
        assert row.hash == expected
        assert row.body == json.dumps(
            json.loads(row.body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        assert "Müller" in row.body


def test_old_and_new_script_records_chain_and_verify_together(engine: Engine) -> None:
    before = _append(engine, _VALID)
    after = _append(engine, _WITH_SCRIPT_AUDIO, minutes=1)
    assert after.prev_hash == before.hash
    assert '"audio_sha256"' not in json.dumps(before.body["evidence"]["script"])
    assert after.evidence().script == _PLAYED_SCRIPT
    with engine.begin() as conn:
        assert verify_ledger(conn).ok


def test_recorded_event_holds_the_evidence_as_given(engine: Engine) -> None:
    evidence = _evidence()
    event = _append(engine, evidence)

    assert event.evidence() == evidence
    assert event.kind is EventKind.CONSENT_GRANTED
    assert event.body["recorded_at"] == "2025-04-11T14:01:00.000000Z"
    with engine.begin() as conn:
        assert event_by_hash(conn, event.hash) == event
        assert event_by_hash(conn, "f" * 64) is None


def test_events_for_number_keeps_to_one_business_and_number(engine: Engine) -> None:
    acme = _five_acme_events_among_others(engine)
    with engine.begin() as conn:
        assert events_for_number(conn, "acme", NUMBER) == [acme[0], acme[2], acme[4]]
        assert events_for_number(conn, "acme", "+15555550999") == []
        assert len(events_for_number(conn, "bolt", NUMBER)) == 5


def test_latest_events_are_newest_first(engine: Engine) -> None:
    acme = _five_acme_events_among_others(engine)
    with engine.begin() as conn:
        assert latest_events(conn, 2, business_id="acme") == [acme[4], acme[3]]
        assert [event.business_id for event in latest_events(conn, 3)] == ["bolt", "acme", "bolt"]
        assert latest_events(conn, 0) == []
        with pytest.raises(ValueError):
            latest_events(conn, -1)


_LONDON = ZoneInfo("Europe/London")  # at offset zero in winter
_ZERO_OFFSET = timezone(timedelta(0))


@pytest.mark.parametrize(
    ("instant", "text"),
    [
        (T0, "2025-04-11T14:00:00.000000Z"),
        (datetime(2025, 12, 31, 23, 59, 59, 999999, UTC), "2025-12-31T23:59:59.999999Z"),
        (datetime(2025, 1, 6, 9, 5, 3, 7, _LONDON), "2025-01-06T09:05:03.000007Z"),
        (datetime(2025, 1, 6, 9, 5, 3, tzinfo=_ZERO_OFFSET), "2025-01-06T09:05:03.000000Z"),
        (datetime(999, 1, 2, 3, 4, 5, 6, UTC), "0999-01-02T03:04:05.000006Z"),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000000Z"),
    ],
)
def test_an_instant_is_written_canonically_and_read_back(instant: datetime, text: str) -> None:
    assert format_instant(instant) == text
    assert parse_instant(text) == instant


def test_an_append_stores_what_sqlalchemy_would_store(engine: Engine) -> None:
    """The append path writes through the driver; reading back through SQLAlchemy agrees."""
    event = _append(engine, _evidence())
    with engine.begin() as conn:
        stored = conn.execute(select(consent_events)).one()
        raw_time = conn.exec_driver_sql("SELECT recorded_at FROM consent_events").scalar_one()
    assert stored_instant(stored.recorded_at) == event.recorded_at
    assert json.loads(stored.body) == event.body
    assert (stored.seq, stored.kind, stored.prev_hash, stored.hash) == (
        event.seq,
        event.kind.value,
        event.prev_hash,
        event.hash,
    )
    if engine.dialect.name == "sqlite":
        assert raw_time == "2025-04-11 14:01:00.000000"  # SQLAlchemy's SQLite text form


def test_an_append_joins_the_callers_transaction(engine: Engine) -> None:
    at = T0 + timedelta(minutes=1)
    with engine.connect() as conn:
        append_event(conn, _evidence(), at)
        conn.rollback()
    with engine.connect() as conn:
        event = append_event(conn, _evidence(), at)
        conn.commit()
    with engine.begin() as conn:
        assert latest_events(conn, 10) == [event]
        assert conn.execute(select(consent_chain_heads.c.seq)).scalar_one() == 1
    assert event.seq == 1


def test_a_failed_append_raises_sqlalchemys_error_and_leaves_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE consent_state")
    with pytest.raises(DBAPIError, match="consent_state"), engine.begin() as conn:
        append_event(conn, _evidence(), T0 + timedelta(minutes=1))
    with engine.begin() as conn:
        assert latest_events(conn, 10) == []
        assert conn.execute(select(consent_chain_heads)).all() == []


def test_append_refuses_a_naive_recorded_time(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(ValueError, match="naive"):
        append_event(conn, _evidence(), datetime(2025, 4, 11, 14))


WRITERS, APPENDS_EACH = 8, 500


def test_concurrent_appends_to_one_chain_stay_unbroken(engine: Engine) -> None:
    def append_many(worker: int) -> None:
        for i in range(APPENDS_EACH):
            number = f"+155555{worker:02d}{i:03d}"
            with engine.begin() as conn:
                append_event(conn, _evidence(number=number), T0 + timedelta(minutes=1))

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        list(pool.map(append_many, range(WRITERS)))

    total = WRITERS * APPENDS_EACH
    with engine.begin() as conn:
        report = verify_ledger(conn)
        seqs = conn.scalars(select(consent_events.c.seq).order_by(consent_events.c.seq)).all()
    assert report.ok, report.first_broken
    assert report.events_checked == total
    assert seqs == list(range(1, total + 1))


# --- the database refuses changes --------------------------------------------------------------


def test_database_refuses_update(engine: Engine) -> None:
    event = _append(engine, _evidence())
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(
            update(consent_events)
            .where(consent_events.c.hash == event.hash)
            .values(phone_number=OTHER_NUMBER)
        )


def test_database_refuses_delete(engine: Engine) -> None:
    _append(engine, _evidence())
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(delete(consent_events))
    with engine.begin() as conn:
        assert len(latest_events(conn, 10)) == 1


def test_postgresql_refuses_truncate(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE exists only on PostgreSQL")
    _append(engine, _evidence())
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE consent_events")


# --- verification finds damage -----------------------------------------------------------------


def _flip_hex(digest: str) -> str:
    return digest[:-1] + ("0" if digest[-1] != "0" else "1")


_DAMAGE: dict[str, tuple[Callable[[Any], dict[str, Any]], str]] = {
    "body": (lambda row: {"body": row.body.replace("yes please", "yes pleasE")}, "hash mismatch"),
    "body bracket": (lambda row: {"body": "[" + row.body[1:]}, "hash mismatch"),
    "hash": (lambda row: {"hash": _flip_hex(row.hash)}, "hash mismatch"),
    "prev_hash": (
        lambda row: {"prev_hash": _flip_hex(row.prev_hash)},
        "prev_hash does not match the previous event",
    ),
    "seq": (lambda row: {"seq": row.seq + 1000}, "sequence gap: expected 3, found 1003"),
    "phone_number": (
        lambda row: {"phone_number": "+15555550124"},
        "phone_number column does not match the hashed body",
    ),
    "kind": (
        lambda row: {"kind": EventKind.CONSENT_DECLINED.value},
        "kind column does not match the hashed body",
    ),
    "recorded_at": (
        lambda row: {"recorded_at": row.recorded_at + timedelta(microseconds=1)},
        "recorded_at column does not match the hashed body",
    ),
}


@pytest.mark.parametrize("column", list(_DAMAGE))
def test_a_changed_column_is_found_and_the_event_named(engine: Engine, column: str) -> None:
    acme = _five_acme_events_among_others(engine)
    target = _row_id(engine, acme[2])
    change, reason = _DAMAGE[column]
    with engine.begin() as conn:
        drop_append_only_triggers(conn)
        row = conn.execute(select(consent_events).where(consent_events.c.id == target)).one()
        conn.execute(
            update(consent_events).where(consent_events.c.id == target).values(change(row))
        )

    with engine.begin() as conn:
        report = verify_ledger(conn)
        assert verify_ledger(conn, "bolt").ok
        assert verify_ledger(conn, "acme").first_broken == report.first_broken
    assert not report.ok
    assert report.first_broken is not None
    assert report.first_broken.event_id == target
    assert report.first_broken.business_id == "acme"
    assert report.first_broken.reason == reason
    assert report.events_checked == 5  # acme 1, bolt 1, acme 2, bolt 2, the damaged acme 3
    with engine.begin() as conn, pytest.raises(CorruptEventError):
        latest_events(conn, 10, business_id="acme")


def _flip(text: str, position: int) -> str:
    """``text`` with the character at ``position`` changed to another one."""
    return text[:position] + chr(ord(text[position]) ^ 1) + text[position + 1 :]


def _body_positions(body: str) -> list[int]:
    """Every character of the body's start, its end and the values its columns repeat, and
    every 29th character elsewhere."""
    chosen = {*range(20), *range(len(body) - 120, len(body)), *range(0, len(body), 29)}
    for key in ('"business_id":"', '"kind":"', '"phone_number":"'):
        at = body.index(key)
        chosen.update(range(at, at + len(key) + 24))
    return sorted(chosen)


_Damage = Callable[[Any], dict[str, Any]]


def _every_damage(probe: Any) -> list[_Damage]:
    """Changes to a stored event shaped like ``probe``: characters of each text column, other
    values of the rest."""
    damages: list[_Damage] = [
        lambda row, i=i: {"body": _flip(row.body, i)} for i in _body_positions(probe.body)
    ]
    damages += [
        lambda row, column=column, i=i: {column: _flip(getattr(row, column), i)}
        for column, positions in (
            ("phone_number", range(len(probe.phone_number))),
            ("prev_hash", (0, 31, 63)),
            ("hash", (0, 31, 63)),
        )
        for i in positions
    ]
    damages += [
        lambda row, kind=kind: {"kind": kind.value}
        for kind in EventKind
        if kind.value != probe.kind
    ]
    damages += [lambda row, step=step: {"seq": row.seq + step} for step in (1, 1000)]
    damages += [
        lambda row, step=step: {"recorded_at": row.recorded_at + step}
        for step in (
            timedelta(microseconds=1),
            timedelta(microseconds=-1),
            timedelta(seconds=1),
            timedelta(days=-365),
        )
    ]
    return damages


def test_any_change_to_a_stored_event_is_found(engine: Engine) -> None:
    """Each one-event chain is damaged its own way; every damaged event is named, and a chain
    verified alone names the same event as the whole ledger does."""
    at = T0 + timedelta(minutes=1)
    with engine.begin() as conn:
        probe = append_event(conn, _evidence(business_id="b0000"), at)
        stored = conn.execute(select(consent_events).where(consent_events.c.hash == probe.hash))
        damages = _every_damage(stored.one())
        for i in range(1, len(damages)):
            append_event(conn, _evidence(business_id=f"b{i:04d}"), at)
    with engine.begin() as conn:
        drop_append_only_triggers(conn)
        rows = conn.execute(select(consent_events).order_by(consent_events.c.id)).all()
        for row, damage in zip(rows, damages, strict=True):
            by_id = consent_events.c.id == row.id
            conn.execute(update(consent_events).where(by_id).values(damage(row)))
    with engine.begin() as conn:
        for row in rows:
            broken = verify_ledger(conn, row.business_id).first_broken
            assert broken is not None
            assert (broken.business_id, broken.event_id) == (row.business_id, row.id)
        whole = verify_ledger(conn).first_broken
    assert whole is not None
    assert whole.event_id == rows[0].id


def test_a_deleted_event_is_found_by_the_gap(engine: Engine) -> None:
    acme = _five_acme_events_among_others(engine)
    with engine.begin() as conn:
        drop_append_only_triggers(conn)
        conn.execute(delete(consent_events).where(consent_events.c.hash == acme[2].hash))
    with engine.begin() as conn:
        broken = verify_ledger(conn).first_broken
        assert verify_ledger(conn, "acme").first_broken == broken
    assert broken is not None
    assert (broken.seq, broken.event_id) == (4, _row_id(engine, acme[3]))
    assert broken.reason == "sequence gap: expected 3, found 4"


def test_a_deleted_last_event_is_found_by_the_chain_head(engine: Engine) -> None:
    acme = _five_acme_events_among_others(engine)
    with engine.begin() as conn:
        drop_append_only_triggers(conn)
        conn.execute(delete(consent_events).where(consent_events.c.hash == acme[4].hash))
    with engine.begin() as conn:
        broken = verify_ledger(conn).first_broken
        assert verify_ledger(conn, "acme").first_broken == broken
    assert broken is not None
    assert (broken.business_id, broken.seq, broken.event_id) == ("acme", 5, None)
    assert broken.reason == "chain head points past the last event"


def test_reordered_sequence_numbers_are_found(engine: Engine) -> None:
    acme = _five_acme_events_among_others(engine)
    second, third = _row_id(engine, acme[1]), _row_id(engine, acme[2])
    with engine.begin() as conn:
        drop_append_only_triggers(conn)
        for row_id, seq in ((second, 999), (third, 2), (second, 3)):
            conn.execute(
                update(consent_events).where(consent_events.c.id == row_id).values(seq=seq)
            )
    with engine.begin() as conn:
        broken = verify_ledger(conn).first_broken
        assert verify_ledger(conn, "acme").first_broken == broken
    assert broken is not None
    assert broken.event_id == second
    assert broken.reason == "sequence gap: expected 2, found 3"


def test_swapped_rows_are_found(engine: Engine) -> None:
    acme = _five_acme_events_among_others(engine)
    second, third = _row_id(engine, acme[1]), _row_id(engine, acme[2])
    columns = [column for column in consent_events.c if column.name != "id"]
    with engine.begin() as conn:
        drop_append_only_triggers(conn)
        rows = {
            row.id: {column.name: row._mapping[column] for column in columns}
            for row in conn.execute(
                select(consent_events).where(consent_events.c.id.in_([second, third]))
            )
        }
        placeholder = {"seq": 999, "hash": "t" * 64}
        for row_id, values in ((second, placeholder), (third, rows[second]), (second, rows[third])):
            conn.execute(update(consent_events).where(consent_events.c.id == row_id).values(values))
    with engine.begin() as conn:
        broken = verify_ledger(conn).first_broken
        assert verify_ledger(conn, "acme").first_broken == broken
    assert broken is not None
    assert broken.event_id == second
    assert broken.reason == "sequence gap: expected 2, found 3"


def test_a_changed_or_missing_chain_head_is_found(engine: Engine) -> None:
    _five_acme_events_among_others(engine)
    heads = consent_chain_heads
    with engine.begin() as conn:
        conn.execute(update(heads).where(heads.c.business_id == "acme").values(hash="a" * 64))
        broken = verify_ledger(conn).first_broken
        assert broken is not None
        assert broken.reason == "chain head hash does not match the last event"
        conn.execute(delete(heads).where(heads.c.business_id == "acme"))
        broken = verify_ledger(conn).first_broken
        assert broken is not None
        assert (broken.business_id, broken.reason) == ("acme", "chain head is missing")
        assert verify_ledger(conn, "bolt").ok


def test_verifying_an_empty_ledger_is_ok(engine: Engine) -> None:
    with engine.begin() as conn:
        report = verify_ledger(conn)
    assert report.ok
    assert (report.events_checked, report.chains_checked) == (0, 0)
