"""The send gate, revocation and re-subscription, against event histories in a real ledger.

Runs on SQLite (a temporary file) and on PostgreSQL when it is reachable, each test in its own
schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, select, update

from consent_ledger.chain import RecordedEvent, append_event, canonical_json, chain_hash
from consent_ledger.evidence import (
    ConsentEvidence,
    ConsentMethod,
    ConsentScope,
    EventKind,
    ScriptEvidence,
)
from consent_ledger.gate import (
    GateDecision,
    GateReason,
    may_send,
    owner_notifications_allowed,
    resubscribe,
    revoke,
)
from consent_ledger.tables import (
    consent_chain_heads,
    consent_events,
)
from consent_ledger.verify import verify_ledger
from tests.conftest import BACKENDS, fresh_database
from tests.ledger_support import (
    answered_call,
    drop_append_only_triggers,
    ledger_engine,
    sha256_hex,
    without_call,
)

T0 = datetime(2025, 4, 11, 14, 0, tzinfo=UTC)
NUMBER = "+15555550123"
SCRIPT_TEXT = "May Acme Plumbing text you up to 2 times about this call? Reply STOP to opt out."


# --- database fixture --------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a fresh ledger schema (tables and append-only triggers)."""
    with fresh_database(request.param, tmp_path, "gate") as url, ledger_engine(url) as database:
        yield database


# --- histories ---------------------------------------------------------------------------------


def _hours(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _call_outcome(
    kind: EventKind, at: datetime, business_id: str, max_texts: int
) -> ConsentEvidence:
    """What a call recorded at ``at``: script confirmed 8 s before, then the answer."""
    transcript = {EventKind.CONSENT_GRANTED: "yes", EventKind.CONSENT_DECLINED: "no"}.get(
        kind, "hmm"
    )
    scope = None
    if kind is EventKind.CONSENT_GRANTED:
        scope = ConsentScope("follow-up about this call", max_texts, at + timedelta(hours=24))
    return answered_call(
        kind,
        at,
        business_id=business_id,
        script=("sms-consent/1", SCRIPT_TEXT),
        transcript=transcript,
        scope=scope,
    )


@dataclass(frozen=True)
class Step:
    """One thing that happened to the number, ``hours`` after T0."""

    what: str  # grant, web_form, decline, unclear, not_asked, revoke, resubscribe, opt_in, opt_out
    hours: float
    business_id: str = "acme"
    max_texts: int = 2


_CALL_KINDS = {
    "grant": EventKind.CONSENT_GRANTED,
    "decline": EventKind.CONSENT_DECLINED,
    "unclear": EventKind.CONSENT_UNCLEAR,
    "not_asked": EventKind.CONSENT_NOT_ASKED,
}


def _happen(conn: Connection, step: Step) -> RecordedEvent | None:
    """Record ``step``; its event is recorded one second after it happened."""
    at = _hours(step.hours)
    recorded = at + timedelta(seconds=1)
    name = step.business_id.title()
    if step.what == "revoke":
        return revoke(conn, step.business_id, name, NUMBER, ConsentMethod.SMS_KEYWORD, at, recorded)
    if step.what == "resubscribe":
        return resubscribe(
            conn, step.business_id, name, NUMBER, ConsentMethod.SMS_KEYWORD, at, recorded
        )
    if step.what == "web_form":
        return append_event(conn, _web_form(at, step.business_id, step.max_texts), recorded)
    if step.what in _OWNER_KINDS:
        choice = without_call(
            _OWNER_KINDS[step.what], ConsentMethod.OWNER, at, business_id=step.business_id
        )
        return append_event(conn, choice, recorded)
    evidence = _call_outcome(_CALL_KINDS[step.what], at, step.business_id, step.max_texts)
    return append_event(conn, evidence, recorded)


_OWNER_KINDS = {
    "opt_in": EventKind.OWNER_NOTIFICATIONS_OPT_IN,
    "opt_out": EventKind.OWNER_NOTIFICATIONS_OPT_OUT,
}
DISCLOSURE = "Tick to let Acme text you about this request. Reply STOP to opt out."


def _web_form(at: datetime, business_id: str, max_texts: int) -> ConsentEvidence:
    """A callback form submitted at ``at`` whose disclosure allows texts for 12 hours."""
    disclosure = ScriptEvidence("callback-form/1", DISCLOSURE, sha256_hex(DISCLOSURE), at, None)
    scope = ConsentScope("callback request", max_texts, at + timedelta(hours=12))
    return without_call(
        EventKind.WEB_FORM_CONSENT,
        ConsentMethod.WEB_FORM,
        at,
        business_id=business_id,
        script=disclosure,
        scope=scope,
    )


def _record(engine: Engine, *steps: Step) -> list[RecordedEvent | None]:
    with engine.begin() as conn:
        return [_happen(conn, step) for step in steps]


def _ask(
    engine: Engine, at_hours: float, sent: int = 0, business_id: str = "acme"
) -> tuple[GateDecision, list[datetime]]:
    asked_since: list[datetime] = []

    def count_sent(since: datetime) -> int:
        asked_since.append(since)
        return sent

    with engine.begin() as conn:
        decision = may_send(conn, business_id, NUMBER, _hours(at_hours), count_sent)
    return decision, asked_since


# --- the table of histories --------------------------------------------------------------------

GRANT = Step("grant", 0)
_CASES: dict[str, tuple[tuple[Step, ...], float, int, GateReason, int]] = {
    # name: (history, asked at hour, texts already sent, reason, remaining)
    "grant": ((GRANT,), 1, 0, GateReason.ALLOWED, 2),
    "grant, one sent": ((GRANT,), 1, 1, GateReason.ALLOWED, 1),
    "grant, cap reached": ((GRANT,), 1, 2, GateReason.CAP_REACHED, 0),
    "grant, more than the cap sent": ((GRANT,), 1, 7, GateReason.CAP_REACHED, 0),
    "grant of one text": ((Step("grant", 0, max_texts=1),), 1, 1, GateReason.CAP_REACHED, 0),
    "grant, asked after the window": ((GRANT,), 24.5, 0, GateReason.EXPIRED, 0),
    "grant, asked as the window ends": ((GRANT,), 24, 0, GateReason.EXPIRED, 0),
    "grant, asked before it was recorded": ((GRANT,), -1, 0, GateReason.EXPIRED, 0),
    "grant then decline": ((GRANT, Step("decline", 1)), 2, 0, GateReason.DECLINED, 0),
    "grant then revoke": ((GRANT, Step("revoke", 1)), 2, 0, GateReason.REVOKED, 0),
    "grant, revoke, resubscribe inside the window": (
        (GRANT, Step("revoke", 1), Step("resubscribe", 2)),
        3,
        0,
        GateReason.ALLOWED,
        2,
    ),
    "grant, revoke, resubscribe, cap counts texts before the revocation": (
        (GRANT, Step("revoke", 1), Step("resubscribe", 2)),
        3,
        2,
        GateReason.CAP_REACHED,
        0,
    ),
    "grant, revoke, resubscribe, asked after the window": (
        (GRANT, Step("revoke", 1), Step("resubscribe", 2)),
        25,
        0,
        GateReason.EXPIRED,
        0,
    ),
    "grant, revoke, resubscribe after the window": (
        (GRANT, Step("revoke", 1), Step("resubscribe", 26)),
        26.5,
        0,
        GateReason.EXPIRED,
        0,
    ),
    "grant, revoke, resubscribe, revoke": (
        (GRANT, Step("revoke", 1), Step("resubscribe", 2), Step("revoke", 3)),
        4,
        0,
        GateReason.REVOKED,
        0,
    ),
    "grant, decline, resubscribe does not undo a decline": (
        (GRANT, Step("decline", 1), Step("resubscribe", 2)),
        3,
        0,
        GateReason.DECLINED,
        0,
    ),
    "grant, revoke, new grant on a later call": (
        (GRANT, Step("revoke", 1), Step("grant", 30)),
        31,
        0,
        GateReason.ALLOWED,
        2,
    ),
    "decline then grant": ((Step("decline", 0), Step("grant", 1)), 2, 0, GateReason.ALLOWED, 2),
    "grant then unclear keeps the grant": (
        (GRANT, Step("unclear", 1)),
        2,
        0,
        GateReason.ALLOWED,
        2,
    ),
    "unclear only": ((Step("unclear", 0),), 1, 0, GateReason.NO_CONSENT, 0),
    "not asked only": ((Step("not_asked", 0),), 1, 0, GateReason.NO_CONSENT, 0),
    "decline only": ((Step("decline", 0),), 1, 0, GateReason.DECLINED, 0),
    "no events": ((), 1, 0, GateReason.NO_CONSENT, 0),
    "another business's grant": ((Step("grant", 0, "bolt"),), 1, 0, GateReason.NO_CONSENT, 0),
    "web form": ((Step("web_form", 0),), 1, 0, GateReason.ALLOWED, 2),
    "web form of three texts, one sent": (
        (Step("web_form", 0, max_texts=3),),
        1,
        1,
        GateReason.ALLOWED,
        2,
    ),
    "web form, asked after its window": ((Step("web_form", 0),), 12, 0, GateReason.EXPIRED, 0),
    "web form then revoke": (
        (Step("web_form", 0), Step("revoke", 1)),
        2,
        0,
        GateReason.REVOKED,
        0,
    ),
    "web form, revoke, resubscribe": (
        (Step("web_form", 0), Step("revoke", 1), Step("resubscribe", 2)),
        3,
        1,
        GateReason.ALLOWED,
        1,
    ),
    "grant then web form replaces it": (
        (GRANT, Step("web_form", 1, max_texts=1)),
        14,
        0,
        GateReason.EXPIRED,
        0,
    ),
    "owner opt-in is no consent": ((Step("opt_in", 0),), 1, 0, GateReason.NO_CONSENT, 0),
    "owner opt-out does not withdraw a consent": (
        (GRANT, Step("opt_out", 1)),
        2,
        0,
        GateReason.ALLOWED,
        2,
    ),
    "another business's revocation": (
        (GRANT, Step("grant", 0, "bolt"), Step("revoke", 1, "bolt")),
        2,
        0,
        GateReason.ALLOWED,
        2,
    ),
}


@pytest.mark.parametrize("case", list(_CASES))
def test_gate_decides_from_the_history(engine: Engine, case: str) -> None:
    history, at_hours, sent, reason, remaining = _CASES[case]
    _record(engine, *history)

    decision, _ = _ask(engine, at_hours, sent)

    assert decision.reason is reason
    assert decision.allowed is (reason is GateReason.ALLOWED)
    assert decision.remaining == remaining
    with engine.begin() as conn:
        assert verify_ledger(conn).ok


def test_an_allowed_text_names_the_grant_its_window_and_counts_from_the_grant(
    engine: Engine,
) -> None:
    grant, _, _ = _record(engine, GRANT, Step("revoke", 1), Step("resubscribe", 2))
    assert grant is not None

    decision, asked_since = _ask(engine, 3)

    assert decision.event == grant
    assert decision.window_end == _hours(24)
    assert asked_since == [grant.recorded_at] == [_hours(0) + timedelta(seconds=1)]


def test_a_refusal_names_the_event_that_withdrew_consent(engine: Engine) -> None:
    _, revocation = _record(engine, GRANT, Step("revoke", 1))

    decision, asked_since = _ask(engine, 2)

    assert decision.event == revocation
    assert decision.window_end is None
    assert asked_since == []


# --- revocation and re-subscription ------------------------------------------------------------


def test_revocation_points_at_the_latest_grant(engine: Engine) -> None:
    _, second_grant, revocation = _record(engine, GRANT, Step("grant", 2), Step("revoke", 3))

    assert revocation is not None and second_grant is not None
    assert revocation.kind is EventKind.REVOKED
    assert revocation.evidence().revokes == second_grant.hash
    assert revocation.evidence().method is ConsentMethod.SMS_KEYWORD


@pytest.mark.parametrize(
    "history",
    [(), (Step("decline", 0),), (Step("unclear", 0),), (GRANT, Step("revoke", 1))],
    ids=["nothing", "declined", "unclear", "already revoked"],
)
def test_revoke_records_nothing_when_nothing_is_in_force(
    engine: Engine, history: tuple[Step, ...]
) -> None:
    _record(engine, *history)
    assert _record(engine, Step("revoke", 5)) == [None]


def test_resubscription_points_at_the_revocation_and_keeps_the_grant_scope(engine: Engine) -> None:
    grant, revocation, resubscription = _record(
        engine, Step("grant", 0, max_texts=3), Step("revoke", 1), Step("resubscribe", 2)
    )

    assert grant is not None and revocation is not None and resubscription is not None
    assert resubscription.evidence().revokes == revocation.hash
    assert resubscription.evidence().scope == grant.evidence().scope


@pytest.mark.parametrize("history", [(), (GRANT,)], ids=["nothing", "in force"])
def test_resubscribe_records_nothing_when_nothing_is_revoked(
    engine: Engine, history: tuple[Step, ...]
) -> None:
    _record(engine, *history)
    assert _record(engine, Step("resubscribe", 5)) == [None]


def _resubscription(revokes: str, max_texts: int) -> ConsentEvidence:
    return without_call(
        EventKind.RESUBSCRIBED,
        ConsentMethod.SMS_KEYWORD,
        _hours(2),
        revokes=revokes,
        scope=ConsentScope("anything", max_texts, _hours(48)),
    )


def test_a_resubscription_never_widens_the_grant(engine: Engine) -> None:
    _, revocation = _record(engine, GRANT, Step("revoke", 1))
    assert revocation is not None
    with engine.begin() as conn:
        append_event(conn, _resubscription(revocation.hash, max_texts=1), _hours(2))

    assert _ask(engine, 3)[0].remaining == 1
    assert _ask(engine, 30)[0].reason is GateReason.EXPIRED


def test_a_resubscription_of_another_revocation_is_ignored(engine: Engine) -> None:
    grant, _ = _record(engine, GRANT, Step("revoke", 1))
    assert grant is not None
    with engine.begin() as conn:
        append_event(conn, _resubscription(grant.hash, max_texts=2), _hours(2))

    assert _ask(engine, 3)[0].reason is GateReason.REVOKED


# --- fail closed -------------------------------------------------------------------------------


def test_evidence_that_no_longer_validates_refuses_the_text(engine: Engine) -> None:
    """A hash-consistent event whose evidence breaks the rules (a cap of 9) allows nothing."""
    (grant,) = _record(engine, GRANT)
    assert grant is not None
    body = json.loads(canonical_json(grant.body))
    body["seq"] = 2
    body["evidence"]["scope"]["max_texts"] = 9
    text = canonical_json(body)
    digest = chain_hash(grant.hash, text)
    with engine.begin() as conn:
        conn.execute(
            insert(consent_events).values(
                business_id="acme",
                seq=2,
                phone_number=NUMBER,
                kind=grant.kind.value,
                recorded_at=grant.recorded_at,
                body=text,
                prev_hash=grant.hash,
                hash=digest,
            )
        )
        conn.execute(
            update(consent_chain_heads)
            .where(consent_chain_heads.c.business_id == "acme")
            .values(seq=2, hash=digest)
        )
        assert verify_ledger(conn).ok

    decision, asked_since = _ask(engine, 1)

    assert (decision.allowed, decision.reason, decision.event) == (
        False,
        GateReason.INVALID_RECORD,
        None,
    )
    assert asked_since == []


def test_a_damaged_event_refuses_the_text(engine: Engine) -> None:
    (grant,) = _record(engine, GRANT)
    assert grant is not None
    with engine.begin() as conn:
        drop_append_only_triggers(conn)
        stored = conn.execute(select(consent_events.c.body)).scalar_one()
        conn.execute(
            update(consent_events).values(body=stored.replace('"max_texts":2', '"max_texts":4'))
        )

    decision, _ = _ask(engine, 1)

    assert decision.reason is GateReason.INVALID_RECORD
    assert not decision.allowed


def test_caller_mistakes_are_errors_not_permissions(engine: Engine) -> None:
    _record(engine, GRANT)
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="naive"):
            may_send(conn, "acme", NUMBER, datetime(2025, 4, 11, 15), lambda since: 0)
        for bad_count in (-1, True, 1.0):

            def count_sent(since: datetime, count: object = bad_count) -> Any:
                return count

            with pytest.raises(ValueError, match="count_sent"):
                may_send(conn, "acme", NUMBER, _hours(1), count_sent)


def test_revoke_cannot_point_at_nothing() -> None:
    with pytest.raises(ValueError, match="revokes"):
        replace(_resubscription("a" * 64, 1), kind=EventKind.REVOKED, scope=None, revokes=None)


# --- revocation methods ------------------------------------------------------------------------


def test_a_revocation_said_on_a_call_names_the_call(engine: Engine) -> None:
    (grant,) = _record(engine, GRANT)
    call_sid = "CA" + "7" * 32
    with engine.begin() as conn:
        revocation = revoke(
            conn,
            "acme",
            "Acme",
            NUMBER,
            ConsentMethod.SPOKEN,
            _hours(1),
            _hours(1),
            call_sid=call_sid,
            note="caller said: don't text me",
        )

    assert revocation is not None and grant is not None
    evidence = revocation.evidence()
    assert (evidence.method, evidence.call_sid, evidence.revokes) == (
        ConsentMethod.SPOKEN,
        call_sid,
        grant.hash,
    )
    assert evidence.note == "caller said: don't text me"
    assert _ask(engine, 2)[0].reason is GateReason.REVOKED


@pytest.mark.parametrize("method", [ConsentMethod.SPOKEN, ConsentMethod.KEYPAD])
def test_a_call_revocation_without_the_call_is_refused_and_nothing_recorded(
    engine: Engine, method: ConsentMethod
) -> None:
    _record(engine, GRANT)
    with pytest.raises(ValueError, match="call_sid"), engine.begin() as conn:
        revoke(conn, "acme", "Acme", NUMBER, method, _hours(1), _hours(1))

    assert _ask(engine, 2)[0].reason is GateReason.ALLOWED


def test_the_owner_may_revoke_but_never_resubscribe(engine: Engine) -> None:
    _record(engine, GRANT)
    with engine.begin() as conn:
        assert revoke(conn, "acme", "Acme", NUMBER, ConsentMethod.OWNER, _hours(1), _hours(1))
    with pytest.raises(ValueError, match="method owner"), engine.begin() as conn:
        resubscribe(conn, "acme", "Acme", NUMBER, ConsentMethod.OWNER, _hours(2), _hours(2))
    assert _ask(engine, 3)[0].reason is GateReason.REVOKED


# --- the owner's own notifications -------------------------------------------------------------

_OWNER_CASES: dict[str, tuple[tuple[Step, ...], bool]] = {
    "nothing on record": ((), False),
    "opted in": ((Step("opt_in", 0),), True),
    "opted out": ((Step("opt_out", 0),), False),
    "in, then out": ((Step("opt_in", 0), Step("opt_out", 1)), False),
    "out, then in": ((Step("opt_out", 0), Step("opt_in", 1)), True),
    "in, then caller events": ((Step("opt_in", 0), GRANT, Step("revoke", 1)), True),
    "caller consent only": ((GRANT,), False),
    "another business's opt-in": ((Step("opt_in", 0, "bolt"),), False),
}


@pytest.mark.parametrize("case", list(_OWNER_CASES))
def test_owner_notifications_follow_the_latest_choice(engine: Engine, case: str) -> None:
    history, allowed = _OWNER_CASES[case]
    _record(engine, *history)
    with engine.begin() as conn:
        assert owner_notifications_allowed(conn, "acme", NUMBER) is allowed
        assert owner_notifications_allowed(conn, "acme", "+15555550999") is False


def test_a_damaged_owner_choice_means_no_notifications(engine: Engine) -> None:
    _record(engine, Step("opt_in", 0))
    with engine.begin() as conn:
        drop_append_only_triggers(conn)
        stored = conn.execute(select(consent_events.c.body)).scalar_one()
        conn.execute(update(consent_events).values(body=stored.replace('"note":""', '"note":"x"')))
        assert owner_notifications_allowed(conn, "acme", NUMBER) is False
