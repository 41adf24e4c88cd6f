"""The plan after a call: follow-ups in the recipient's daytime across zones and DST, caps across
repeat calls and state law, exclusions, owner summaries, policies and templates checked at load."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from sms_sender.dispatch import dispatch_due
from sms_sender.local_time import (
    in_send_window,
    next_send_time,
    recipient_state,
    recipient_zones,
    state_cap,
)
from sms_sender.local_transport import LocalSmsTransport
from sms_sender.outbox import OutboxKind, OutboxStatus, list_outbox
from sms_sender.owner import NO_NAME, CallSummary, owner_summary_text, queue_owner_summary
from sms_sender.plan import plan_texts
from sms_sender.policy import PolicyError, SmsPolicy
from sms_sender.segments import segment_count
from sms_sender.send_rules import SendRules
from sms_sender.templates import (
    NOTHING_SAID,
    SPECS,
    ConfirmationRequest,
    ConfirmationTerms,
    TemplateError,
    TemplateName,
    load_template,
    render_confirmation,
    shipped_template,
)
from tests.conftest import BACKENDS
from tests.sms_support import BUSINESS, confirmation, grant, sms_engine
from voice_agent.chat.interviewer import ScriptedInterviewer
from voice_agent.chat.port import CallContext, CallerMessage
from voice_agent.chat.topics import subject_of_texts
from voice_agent.records.businesses import load_businesses
from voice_agent.records.sms_policies import sms_policy

ROOT = Path(__file__).resolve().parent.parent

NEW_YORK = ZoneInfo("America/New_York")
EIGHT, TWENTY = time(8), time(20)
FLORIDA = "+13055550123"
TEXAS = "+15125550123"


def policy(**changes: object) -> SmsPolicy:
    values: dict[str, object] = {
        "business_id": BUSINESS,
        "business_name": "Acme Plumbing",
        "time_zone": "America/Chicago",
        "help_contact": "(512) 555-0199",
        "max_texts": 4,
        "no_reply_follow_up_after": timedelta(hours=3),
        "callback_check_after": timedelta(hours=6),
        "owner_number": "+15125550199",
        **changes,
    }
    return SmsPolicy(**values)  # type: ignore[arg-type]


def local(zone: str, *fields: int) -> datetime:
    return datetime(*fields, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


# --- local time -------------------------------------------------------------------------------


def test_zones_and_states_come_from_the_area_code() -> None:
    assert recipient_zones(FLORIDA, "America/Denver") == (NEW_YORK,)
    assert recipient_zones("+18005550123", "America/Denver") == (ZoneInfo("America/Denver"),)
    assert recipient_zones("+447700900123", "America/Denver") == (ZoneInfo("America/Denver"),)
    assert len(recipient_zones("+16055550123", "America/Denver")) == 2  # South Dakota spans two
    assert [recipient_state(n) for n in (FLORIDA, "+14055550123", "+14105550123", TEXAS)] == [
        "Florida",
        "Oklahoma",
        "Maryland",
        "Texas",
    ]
    assert [state_cap(n) for n in (FLORIDA, "+14055550123", "+14105550123", TEXAS)] == [
        3,
        3,
        3,
        None,
    ]
    assert recipient_state("garbage") == "" and state_cap("garbage") is None


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (local("America/New_York", 2025, 6, 2, 7, 59), local("America/New_York", 2025, 6, 2, 8, 0)),
        (local("America/New_York", 2025, 6, 2, 8, 0), local("America/New_York", 2025, 6, 2, 8, 0)),
        (
            local("America/New_York", 2025, 6, 2, 19, 59),
            local("America/New_York", 2025, 6, 2, 19, 59),
        ),
        (local("America/New_York", 2025, 6, 2, 20, 0), local("America/New_York", 2025, 6, 3, 8, 0)),
        # spring forward (9 March 2025): 8:00 EDT is 12:00 UTC, not 13:00
        (local("America/New_York", 2025, 3, 8, 21, 0), datetime(2025, 3, 9, 12, 0, tzinfo=UTC)),
        # fall back (2 November 2025): 8:00 EST is 13:00 UTC
        (local("America/New_York", 2025, 11, 1, 22, 0), datetime(2025, 11, 2, 13, 0, tzinfo=UTC)),
    ],
)
def test_next_send_time_in_one_zone_across_dst(at: datetime, expected: datetime) -> None:
    assert next_send_time(at, (NEW_YORK,), EIGHT, TWENTY) == expected


def test_a_number_in_two_zones_waits_for_both() -> None:
    zones = (ZoneInfo("America/Denver"), ZoneInfo("America/Chicago"))
    seven_in_denver = local("America/Denver", 2025, 6, 2, 7, 0)  # 8:00 in Chicago
    opens = next_send_time(seven_in_denver, zones, EIGHT, TWENTY)
    assert opens == local("America/Denver", 2025, 6, 2, 8, 0)
    assert in_send_window(opens, zones, EIGHT, TWENTY)
    last = local("America/Chicago", 2025, 6, 2, 19, 59)
    assert in_send_window(last, zones, EIGHT, TWENTY)
    assert not in_send_window(last + timedelta(minutes=1), zones, EIGHT, TWENTY)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_send_time(datetime(2025, 6, 2, 12), (NEW_YORK,), EIGHT, TWENTY)


# --- policy and templates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"time_zone": "Mars/Olympus"},
        {"max_texts": 5},
        {"max_texts": 0},
        {"business_name": "  "},
        {"send_window_start": time(20), "send_window_end": time(8)},
        {"no_reply_follow_up_after": timedelta(minutes=30)},
        {"no_reply_follow_up_after": timedelta(hours=8)},
        {"callback_check_after": timedelta(hours=24)},
        {"excluded_numbers": frozenset({"5125550123"})},
        {"owner_number": "owner"},
        {"help_contact": "call " * 60},
    ],
)
def test_policies_that_cannot_be_obeyed_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(PolicyError):
        policy(**changes)


def test_every_shipped_template_loads_and_renders_within_two_segments() -> None:
    for name in TemplateName:
        template = shipped_template(name)
        values = dict.fromkeys(SPECS[name].fields, "x" * 30)
        values["business_name"] = "Acme Plumbing"
        if SPECS[name].free_field is not None:
            values[SPECS[name].free_field] = "a hostile, very long need " * 100
        assert segment_count(template.render(**values)) <= 2, name


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        (TemplateName.HELP, "{business_name}: call {help_contact}.", "must say"),
        (TemplateName.OPT_OUT, "{business_name} {nope}", "exactly once"),
        (
            TemplateName.OPT_OUT,
            "{business_name} {help_contact} " + "No more messages will be sent. " * 12,
            "segments",
        ),
        (
            TemplateName.OPT_OUT,
            "{business_name} {help_contact} No more messages will be sent. ✓",
            "GSM-7",
        ),
        (TemplateName.OPT_OUT, "{business_name!r} No more messages will be sent.", "exactly once"),
        (TemplateName.OPT_OUT, "{business_name No more messages will be sent.", "malformed"),
    ],
)
def test_bad_templates_are_refused_at_load(
    tmp_path: Path, name: TemplateName, text: str, problem: str
) -> None:
    path = tmp_path / "template.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError, match=problem):
        load_template(name, path)


# --- planning ---------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with sms_engine(request.param, tmp_path, "sms_plan") as database:
        yield database


def plan(engine: Engine, call_sid: str, ended_at: datetime, number: str = TEXAS, **changes: object):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        return plan_texts(
            conn,
            confirmation(call_sid, number),
            policy(**changes),
            ended_at,
            ended_at + timedelta(hours=24),
        )


def test_follow_ups_wait_for_the_callers_daytime(engine: Engine) -> None:
    ended = local("America/Chicago", 2025, 6, 2, 18, 30)
    made = plan(engine, "CA1", ended)
    assert [(m.kind, m.due_at) for m in made.queued] == [
        (OutboxKind.CONFIRMATION, ended),
        (OutboxKind.NO_REPLY_FOLLOW_UP, local("America/Chicago", 2025, 6, 3, 8, 0)),
        (OutboxKind.CALLBACK_CHECK, local("America/Chicago", 2025, 6, 3, 8, 0)),
    ]
    assert made.left_out == ()


def test_nothing_is_planned_after_the_consent_expires(engine: Engine) -> None:
    ended = local("America/Chicago", 2025, 6, 2, 7, 0)  # 20:30 waits until 8:00, too late
    made = plan(engine, "CA1", ended, callback_check_after=timedelta(hours=13, minutes=30))
    assert [m.kind for m in made.queued] == [OutboxKind.CONFIRMATION, OutboxKind.NO_REPLY_FOLLOW_UP]
    assert made.left_out == ("callback_check: after the consent expires",)


def test_repeat_calls_share_one_budget_and_florida_caps_at_three(engine: Engine) -> None:
    ended = local("America/New_York", 2025, 6, 2, 10, 0)
    first = plan(engine, "CA1", ended, number=FLORIDA)
    second = plan(engine, "CA2", ended + timedelta(hours=1), number=FLORIDA)
    again = plan(engine, "CA1", ended, number=FLORIDA)
    assert len(first.queued) == 3 and second.queued == ()
    assert second.left_out[0] == "confirmation: over the cap"
    assert [m.id for m in again.queued] == [m.id for m in first.queued]  # idempotent per call


def test_excluded_numbers_get_nothing(engine: Engine) -> None:
    made = plan(
        engine, "CA1", datetime(2025, 6, 2, 15, tzinfo=UTC), excluded_numbers=frozenset({TEXAS})
    )
    assert made == type(made)((), ("excluded",))


def test_the_dispatcher_defers_follow_ups_to_daytime_and_enforces_the_state_cap(
    engine: Engine,
) -> None:
    ended = local("America/New_York", 2025, 6, 2, 10, 0)
    grant(engine, number=FLORIDA, max_texts=4, at=ended)
    rules = SendRules(policies=lambda _c, _b: policy(max_texts=4, callback_check_after=None))
    made = plan(engine, "CA1", ended, number=FLORIDA, callback_check_after=None)
    transport = LocalSmsTransport()
    assert dispatch_due(engine, transport, ended, rules=rules).sent == 1
    late_night = local("America/New_York", 2025, 6, 2, 22, 0)
    with engine.begin() as conn:
        from sqlalchemy import update

        from sms_sender.tables import outbox

        conn.execute(
            update(outbox).where(outbox.c.id == made.queued[1].id).values(due_at=late_night)
        )
    report = dispatch_due(engine, transport, late_night, rules=rules)
    assert report.deferred == 1
    with engine.begin() as conn:
        deferred = next(m for m in list_outbox(conn) if m.id == made.queued[1].id)
    assert (deferred.status, deferred.due_at, deferred.attempts) == (
        OutboxStatus.SCHEDULED,
        local("America/New_York", 2025, 6, 3, 8, 0),
        0,
    )


def test_owner_summary_is_queued_and_sent_only_with_the_opt_in(engine: Engine) -> None:
    summary = CallSummary(
        call_sid="CA1",
        business_number="+15125550100",
        caller_number=TEXAS,
        caller_name="Dana",
        need="a burst pipe under the sink " * 20,
        callback_number=None,
        urgency="urgent",
        consent_outcome="affirmative",
    )
    with engine.begin() as conn:
        queued = queue_owner_summary(conn, summary, policy(), datetime(2025, 6, 2, 15, tzinfo=UTC))
        assert (
            queue_owner_summary(conn, summary, policy(owner_number=None), datetime.now(UTC)) is None
        )
    assert queued is not None and queued.segments <= 2
    assert queued.body.startswith(
        f'Acme Plumbing missed call from {TEXAS}: Dana said "a burst pipe under the sink a burst'
    )
    assert queued.body.endswith(f'...". Urgency: urgent. Call back {TEXAS}. Texts: agreed.')
    transport = LocalSmsTransport()
    at = datetime(2025, 6, 2, 15, tzinfo=UTC)
    assert (
        dispatch_due(
            engine, transport, at, rules=SendRules(policies=lambda _c, _b: policy())
        ).blocked
        == 1
    )
    assert transport.delivered == []


# --- texts worth sending: our words to the caller, the caller's words to the owner ---------------

BRIGHT_SPARK = CallContext("Bright Spark Electric", "outlets", "within the hour", TEXAS)


def confirmation_for(topic: str | None) -> str:
    return render_confirmation(
        ConfirmationRequest(
            business_id=BUSINESS,
            business_name="Bright Spark Electric",
            from_number="+13035550140",
            to_number=TEXAS,
            call_sid="CA1",
            need=subject_of_texts(topic),
            callback_time="within the hour",
            consent_event_hash="c" * 64,
        ),
        ConfirmationTerms(4, datetime(2025, 6, 3, 15, 0, tzinfo=UTC), "America/Denver"),
    )


async def message_from(*answers: str) -> CallerMessage:
    interviewer, message = ScriptedInterviewer(), CallerMessage()
    await interviewer.reply(BRIGHT_SPARK, message, None)
    for answer in answers:
        await interviewer.reply(BRIGHT_SPARK, message, answer)
    return message


def test_the_confirmation_names_the_topic_in_our_words() -> None:
    assert confirmation_for("leaking kitchen sink") == (
        "Bright Spark Electric: thanks for calling about your leaking kitchen sink. We'll call "
        "you back within the hour. Up to 4 texts about this request until Jun 3, 9:00 AM MDT. "
        "Msg & data rates may apply. Reply HELP for help, STOP to opt out."
    )
    assert "thanks for calling about your service request. We'll" in confirmation_for(None)


@pytest.mark.parametrize(
    ("need", "about"),
    [
        ("my kitchen thing can leak in under the cabinet", "about your kitchen leak."),
        (
            "um so the breaker keeps tripping when i run the microwave",
            "about your tripping breaker.",
        ),
        ("I locked my keys in the car", "about your car lockout."),
        ("it's about the thing we talked about last week", "about your service request."),
        ("I have a question about my bill", "about your service request."),
    ],
)
async def test_the_confirmation_never_quotes_the_transcript(need: str, about: str) -> None:
    message = await message_from("Dana", need)
    assert message.need is not None
    text = confirmation_for(message.topic)
    assert about in text
    assert message.need not in text
    assert not any(word in text.split() for word in ("my", "I", "i", "I'm", "me"))


def test_the_owner_summary_quotes_the_callers_words() -> None:
    summary = CallSummary(
        "CA1",
        "+15125550100",
        TEXAS,
        "Dana",
        "my kitchen thing can leak in under the cabinet.",
        None,
        "urgent",
        "affirmative",
    )
    assert owner_summary_text(summary, "Acme Plumbing") == (
        f"Acme Plumbing missed call from {TEXAS}: Dana said "
        '"my kitchen thing can leak in under the cabinet". Urgency: urgent. '
        f"Call back {TEXAS}. Texts: agreed."
    )


@pytest.mark.parametrize(
    ("name", "need", "reads"),
    [
        (None, "a leak", f': {NO_NAME} said "a leak". Urgency'),
        ("Dana", None, f": Dana said {NOTHING_SAID}. Urgency"),
        ("Dana", " ... ", f": Dana said {NOTHING_SAID}. Urgency"),
        ("Dana", 'he said "hurry"', """: Dana said "he said 'hurry'". Urgency"""),
        (
            "Dana",
            "  burst\npipe\t\x07 in the\r\n attic!!  ",
            ': Dana said "burst pipe in the attic".',
        ),
    ],
)
def test_the_owner_summary_quote_is_always_clean_and_closed(
    name: str | None, need: str | None, reads: str
) -> None:
    summary = CallSummary("CA1", "+15125550100", TEXAS, name, need, None, "routine", "declined")
    assert reads in owner_summary_text(summary, "Acme Plumbing")


@pytest.mark.parametrize(
    "need",
    [
        "my kitchen sink is leaking all over the floor " * 40,
        "🚰💧 water everywhere 😱 " * 30,
        "x" * 5000,
        'he keeps saying "it is fine" ' * 30,
    ],
)
def test_a_long_quote_is_shortened_inside_its_quotation_marks(need: str) -> None:
    summary = CallSummary("CA1", "+15125550100", TEXAS, "Dana", need, None, "urgent", "unclear")
    body = owner_summary_text(summary, "Acme Plumbing")
    assert segment_count(body) <= 2
    assert body.endswith(f'...". Urgency: urgent. Call back {TEXAS}. Texts: unclear, none sent.')
    said = body.split(" said ", 1)[1].split(". Urgency:")[0]
    assert said.startswith('"') and said.endswith('"')
    assert said.count('"') == 2


def test_the_quote_is_cut_at_a_word_boundary_and_fills_what_fits() -> None:
    summary = CallSummary("CA1", "+15125550100", TEXAS, "Dana", "drain " * 100, None, "", "")
    body = owner_summary_text(summary, "Acme Plumbing")
    said = body.split(' said "', 1)[1].split('...". Urgency:')[0]
    assert said.split(" ") == ["drain"] * len(said.split(" "))
    assert segment_count(body) == 2
    assert segment_count(body.replace('..."', ' drain..."', 1)) > 2


# --- what carriers expect of the texts -----------------------------------------------------------

BOOKING = "https://acme-plumbing.example/book"


def planned_bodies(engine: Engine) -> dict[OutboxKind, str]:
    with engine.begin() as conn:
        return {message.kind: message.body for message in list_outbox(conn)}


@pytest.mark.parametrize(
    ("number", "promised"),
    [
        (TEXAS, "Up to 4 texts about this request until Jun 3, 10:30 AM CDT."),
        (FLORIDA, "Up to 3 texts about this request until Jun 3, 10:30 AM CDT."),  # the state cap
    ],
)
def test_the_confirmation_says_who_why_how_many_until_when_rates_help_and_stop(
    engine: Engine, number: str, promised: str
) -> None:
    ended = local("America/Chicago", 2025, 6, 2, 10, 30)
    plan(engine, "CA1", ended, number=number)
    body = planned_bodies(engine)[OutboxKind.CONFIRMATION]

    assert body.startswith("Acme Plumbing: thanks for calling about your leaking kitchen sink.")
    assert promised in body
    assert body.endswith("Msg & data rates may apply. Reply HELP for help, STOP to opt out.")
    assert "Book online" not in body and "  " not in body
    assert segment_count(body) == 2  # every element CTIA asks for leaves no room for one


def test_the_confirmation_s_limits_are_the_plan_s(engine: Engine) -> None:
    """The promise is what the plan obeys: never more texts than promised, none after."""
    ended = local("America/Chicago", 2025, 6, 2, 10, 30)
    made = plan(engine, "CA1", ended, number=FLORIDA, max_texts=2)
    body = planned_bodies(engine)[OutboxKind.CONFIRMATION]
    assert "Up to 2 texts about this request until Jun 3, 10:30 AM CDT." in body
    assert len(made.queued) == 2
    assert all(m.due_at < ended + timedelta(hours=24) for m in made.queued)
    one = plan(engine, "CA9", ended, number="+15125550777", max_texts=1)
    assert [m.kind for m in one.queued] == [OutboxKind.CONFIRMATION]
    assert "Up to 1 text about this request" in planned_bodies(engine)[OutboxKind.CONFIRMATION]


def test_the_booking_link_goes_in_the_confirmation_and_follow_ups_only(engine: Engine) -> None:
    ended = local("America/Chicago", 2025, 6, 2, 10, 30)
    plan(engine, "CA1", ended, booking_url=BOOKING)
    bodies = planned_bodies(engine)

    link = f"Book online: {BOOKING} "
    assert f"until Jun 3, 10:30 AM CDT. {link}Msg & data rates" in bodies[OutboxKind.CONFIRMATION]
    assert f"and we'll help. {link}Reply STOP" in bodies[OutboxKind.NO_REPLY_FOLLOW_UP]
    assert f"call right away. {link}Reply STOP" in bodies[OutboxKind.CALLBACK_CHECK]
    assert all(segment_count(body) <= 2 for body in bodies.values())
    with_link = policy(booking_url=BOOKING)
    for name in (TemplateName.HELP, TemplateName.OPT_OUT, TemplateName.OPT_IN):
        template = shipped_template(name)
        assert "booking_link" not in template.spec.fields, name
        values = {"business_name": with_link.business_name, "help_contact": with_link.help_contact}
        reply = template.render(**{key: values[key] for key in template.spec.fields})
        assert BOOKING not in reply


def test_help_and_stop_replies_name_the_business_and_its_contact() -> None:
    contact = {"business_name": "Bright Spark Electric", "help_contact": "help@brightspark.example"}
    for name in (TemplateName.HELP, TemplateName.OPT_OUT):
        reply = shipped_template(name).render(**contact)
        assert "Bright Spark Electric" in reply and "help@brightspark.example" in reply, name
        assert segment_count(reply) == 1, name
    assert "Reply STOP to opt out." in shipped_template(TemplateName.HELP).render(**contact)
    opt_out = shipped_template(TemplateName.OPT_OUT).render(**contact)
    assert "No more messages will be sent." in opt_out


def test_a_booking_link_that_leaves_no_room_is_refused_with_the_policy() -> None:
    with pytest.raises(PolicyError, match="booking_url"):
        policy(booking_url="https://acme-plumbing.example/" + "b" * 200)


def test_the_demo_businesses_texts_carry_what_they_should() -> None:
    """From the shipped fixtures, through each business's policy: Acme's booking link in its
    confirmation, Bright Spark with none; both name the business, the limits and the contact."""
    ended = local("America/Chicago", 2025, 6, 2, 10, 30)
    businesses = {b.id: b for b in load_businesses(ROOT / "fixtures" / "businesses.yaml")}
    acme, spark = (sms_policy(businesses[i]) for i in ("acme-plumbing", "bright-spark-electric"))
    assert acme.booking_url == BOOKING and spark.booking_url is None
    for business_policy, link in ((acme, True), (spark, False)):
        terms = ConfirmationTerms(
            business_policy.max_texts,
            ended + timedelta(hours=24),
            business_policy.time_zone,
            business_policy.booking_url,
        )
        request = dataclasses.replace(
            confirmation("CA1"), business_name=business_policy.business_name
        )
        body = render_confirmation(request, terms)
        assert body.startswith(f"{business_policy.business_name}: thanks for calling about ")
        assert f"Up to {business_policy.max_texts} texts about this request until Jun 3," in body
        assert (BOOKING in body) is link
        assert segment_count(body) == 2
