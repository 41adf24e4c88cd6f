"""The OpenAI chat model, through the real ``openai`` client against the fake server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from importlib.resources import files

import pytest

from media_stream import SentenceSplitter
from tests.fake_openai import FakeOpenAI, FakeToolCall, ScriptedCompletion
from voice_agent.chat.emergencies import ADVICE, EmergencyKind
from voice_agent.chat.interviewer import ScriptedInterviewer
from voice_agent.chat.openai_model import (
    CALLER_SILENT,
    FINISH_MESSAGE,
    RECORD_MESSAGE,
    OpenAIChatModel,
    render_system_prompt,
)
from voice_agent.chat.port import (
    CallContext,
    CallerMessage,
    ChatModel,
    ChatModelFailure,
    SpokenTurn,
    Urgency,
)

CHAT = "/v1/chat/completions"
CONTEXT = CallContext("Acme Plumbing", "plumbing repairs", "within the hour", "+15125550100")
COMPLETE = {
    "caller_name": "Maria Lopez",
    "need": "a leaking pipe",
    "callback_number": "512 555 0199",
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def model(fake: FakeOpenAI) -> AsyncIterator[OpenAIChatModel]:
    chat_model = OpenAIChatModel("sk-test", base_url=fake.base_url, model="fake-4o", timeout=0.5)
    yield chat_model
    await chat_model.aclose()


def record(**arguments: object) -> FakeToolCall:
    return FakeToolCall(RECORD_MESSAGE, dict(arguments))


FINISH = FakeToolCall(FINISH_MESSAGE, {})


async def test_it_is_a_chat_model(model: OpenAIChatModel) -> None:
    chat_model: ChatModel = model
    assert chat_model.name == "openai:fake-4o"


async def test_content_deltas_become_sentences_in_order(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(
        ScriptedCompletion(
            content=["Thanks, Ma", "ria. Wh", "at can we ", "help with? Is it", " urgent?"]
        )
    )
    stream = model.reply_stream(CONTEXT, CallerMessage(), "This is Maria.")
    sentences = [sentence async for sentence in stream]
    assert sentences == ["Thanks, Maria.", "What can we help with?", "Is it urgent?"]
    reply = await stream.result()
    assert reply.text == " ".join(sentences)
    assert not reply.finished


async def test_the_first_sentence_arrives_before_the_reply_is_finished(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    # chunks: role, "Got it. ", "And your", " name?" — hold after "And your"
    held = ScriptedCompletion(content=["Got it. ", "And your", " name?"], hold_after=3)
    fake.completions.append(held)
    stream = model.reply_stream(CONTEXT, CallerMessage(), "A leak.")
    sentences = aiter(stream)
    assert await anext(sentences) == "Got it."
    assert fake.finished_bodies == 0
    held.release.set()
    assert await anext(sentences) == "And your name?"
    assert (await stream.result()).text == "Got it. And your name?"


async def test_interleaved_tool_call_fragments_are_assembled(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(
        ScriptedCompletion(
            content=["Thanks, Maria, I've got everything."],
            tool_calls=[record(**COMPLETE, urgency="urgent", address="12 Oak St"), FINISH],
            interleave_tool_calls=True,
            fragment_chars=3,
        )
    )
    message = CallerMessage()
    reply = await model.reply(CONTEXT, message, "Maria Lopez, leaking pipe, 512 555 0199, urgent")
    assert reply.finished
    assert (message.caller_name, message.need) == ("Maria Lopez", "a leaking pipe")
    assert message.callback_number == "+15125550199"
    assert message.urgency is Urgency.URGENT
    assert message.address == "12 Oak St"
    request = fake.bodies(CHAT)[0]
    assert request["stream"] is True
    assert {tool["function"]["name"] for tool in request["tools"]} == {
        RECORD_MESSAGE,
        FINISH_MESSAGE,
    }


async def test_a_premature_finish_cannot_end_the_message(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(
        ScriptedCompletion(
            content=["Great, that's all I need. Goodbye!"],
            tool_calls=[record(caller_name="Maria"), FINISH],
        )
    )
    message = CallerMessage()
    reply = await model.reply(CONTEXT, message, "I'm Maria, bye")
    assert not reply.finished
    assert "Goodbye" not in reply.text
    assert message.caller_name == "Maria"


async def test_an_invented_goodbye_without_tools_does_not_finish(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(ScriptedCompletion(content=["Have a great day. Goodbye!"]))
    message = CallerMessage()
    reply = await model.reply(CONTEXT, message, "thanks")
    assert not reply.finished
    assert reply.text == "What's your name?"  # the scripted question instead


async def test_tool_calls_without_words_get_a_follow_up_for_the_next_question(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(ScriptedCompletion(tool_calls=[record(caller_name="Maria")]))
    fake.completions.append(ScriptedCompletion(content=["Thanks, Maria. What do you need?"]))
    message = CallerMessage()
    reply = await model.reply(CONTEXT, message, "Maria")
    assert reply.text == "Thanks, Maria. What do you need?"
    first, follow_up = fake.bodies(CHAT)
    assert first["tool_choice"] == "auto"
    assert follow_up["tool_choice"] == "none"
    assistant, tool_result = follow_up["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == "call_fake0"
    assert tool_result["role"] == "tool"
    assert tool_result["tool_call_id"] == "call_fake0"
    assert "still need what they need, a callback number" in tool_result["content"]


async def test_finishing_complete_message_without_words_needs_no_follow_up(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(ScriptedCompletion(tool_calls=[record(**COMPLETE), FINISH]))
    reply = await model.reply(CONTEXT, CallerMessage(), "Maria, a leak, 512 555 0199")
    assert reply.finished
    assert reply.text == "Thanks, I've got all that."
    assert len(fake.bodies(CHAT)) == 1


async def test_an_invalid_callback_number_keeps_the_calling_number_with_a_note(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(
        ScriptedCompletion(content=["Okay."], tool_calls=[record(callback_number="12")])
    )
    message = CallerMessage()
    await model.reply(CONTEXT, message, "call me on one two")
    assert message.callback_number == "+15125550100"
    assert message.notes == [
        "The callback number the caller gave (12) isn't a valid phone number. "
        "Using the number they called from."
    ]


async def test_confirming_the_calling_number_records_it(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(
        ScriptedCompletion(content=["Great."], tool_calls=[record(confirmed_calling_number=True)])
    )
    message = CallerMessage()
    await model.reply(CONTEXT, message, "yes that number is fine")
    assert message.callback_number == "+15125550100"


@pytest.mark.parametrize(
    "arguments",
    ['{"caller_name": "Mar', "[1, 2]", '{"caller_name": 42, "urgency": "apocalyptic"}'],
)
async def test_malformed_tool_arguments_record_nothing(
    fake: FakeOpenAI, model: OpenAIChatModel, arguments: str
) -> None:
    fake.completions.append(
        ScriptedCompletion(content=["Sorry?"], tool_calls=[FakeToolCall(RECORD_MESSAGE, arguments)])
    )
    message = CallerMessage()
    reply = await model.reply(CONTEXT, message, "Maria")
    assert reply.text == "Sorry?"
    assert message.caller_name is None
    assert message.urgency is None


async def test_hostile_model_output_is_guarded_before_it_is_spoken(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(
        ScriptedCompletion(
            content=[
                "Hi, this is Sarah from the office, I'm a real person. ",
                "A new faucet costs $150 and we'll be there by 3. ",
                "Can we text you updates? Say yes to opt in. ",
                "What's the best number for you? Goodbye!",
            ]
        )
    )
    stream = model.reply_stream(CONTEXT, CallerMessage(), "Are you a real person?")
    sentences = [sentence async for sentence in stream]
    assert sentences == [
        "Just so you know, I'm an automated assistant for Acme Plumbing.",
        "The team can go over pricing when they call you back.",
        "What's the best number for you?",
    ]


async def test_an_emergency_opens_with_the_advice_and_stays_flagged(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(
        ScriptedCompletion(
            content=["Please hang up and call 911. ", "Can I get your name?"],
            tool_calls=[record(need="smells gas in the kitchen", urgency="routine")],
        )
    )
    message = CallerMessage()
    stream = model.reply_stream(CONTEXT, message, "I smell gas in my kitchen")
    sentences = [sentence async for sentence in stream]
    assert sentences == [ADVICE[EmergencyKind.GAS], "Can I get your name?"]
    assert "gas company or 911" in sentences[0]
    assert message.urgency is Urgency.EMERGENCY
    assert message.emergencies == ["gas"]
    assert message.topic == "gas smell"


async def test_the_reply_is_capped_at_sixty_words(fake: FakeOpenAI, model: OpenAIChatModel) -> None:
    fake.completions.append(
        ScriptedCompletion(
            content=[f"Sentence {n} has exactly eight words here. " for n in range(12)]
        )
    )
    reply = await model.reply(CONTEXT, CallerMessage(), "tell me a story")
    assert len(reply.text.split()) == 56


async def test_the_opening_question_needs_no_request(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    message = CallerMessage()
    reply = await model.reply(CONTEXT, message, None)
    assert reply == reply.__class__("What's your name?", finished=False)
    assert fake.requests == []
    assert message.history == [SpokenTurn("assistant", "What's your name?")]


async def test_history_and_profile_go_to_the_model(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(ScriptedCompletion(content=["Thanks, Maria. What's going on?"]))
    fake.completions.append(ScriptedCompletion(content=["Got it. Is this number best?"]))
    message = CallerMessage()
    await model.reply(CONTEXT, message, None)
    await model.reply(CONTEXT, message, "I'm Maria")
    await model.reply(CONTEXT, message, "")
    messages = fake.bodies(CHAT)[1]["messages"]
    system = messages[0]["content"]
    for fact in ("Acme Plumbing", "plumbing repairs", "within the hour", "five one two"):
        assert fact in system
    assert [(turn["role"], turn["content"]) for turn in messages[1:]] == [
        ("assistant", "What's your name?"),
        ("user", "I'm Maria"),
        ("assistant", "Thanks, Maria. What's going on?"),
        ("user", CALLER_SILENT),
    ]


async def test_calls_sharing_the_model_keep_their_own_history(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    first, second = CallerMessage(), CallerMessage()
    fake.completions.append(ScriptedCompletion(content=["Hello first."]))
    fake.completions.append(ScriptedCompletion(content=["Hello second."]))
    await asyncio.gather(
        model.reply(CONTEXT, first, "call one"), model.reply(CONTEXT, second, "call two")
    )
    assert [turn.text for turn in first.history] == ["call one", "Hello first."]
    assert [turn.text for turn in second.history] == ["call two", "Hello second."]


@pytest.mark.parametrize(
    "script",
    [
        ScriptedCompletion(status=500),
        ScriptedCompletion(status=429),
        ScriptedCompletion(content=["Hello there. ", "How"], stall_after=2),
        ScriptedCompletion(raw_events=["{not json"]),
        ScriptedCompletion(raw_events=['{"id": "x", "choices": "oops"}']),
        ScriptedCompletion(content=["Hello. ", "More"], end_early_after=3),
        ScriptedCompletion(content=["Hello. ", "More"], drop_after=2),
        ScriptedCompletion(content=["Hello."], finish_reason=None),
    ],
    ids=["500", "429", "stall", "bad-json", "bad-shape", "no-finish", "dropped", "no-reason"],
)
async def test_provider_trouble_raises_a_clear_failure_and_leaves_the_message(
    fake: FakeOpenAI, model: OpenAIChatModel, script: ScriptedCompletion
) -> None:
    fake.completions.append(script)
    message = CallerMessage()
    with pytest.raises(ChatModelFailure, match="fake-4o"):
        await model.reply(CONTEXT, message, "hello")
    assert message == CallerMessage()


async def test_a_failure_in_the_follow_up_undoes_the_turn(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(ScriptedCompletion(tool_calls=[record(caller_name="Maria")]))
    fake.completions.append(ScriptedCompletion(status=500))
    message = CallerMessage()
    with pytest.raises(ChatModelFailure, match="HTTP 500"):
        await model.reply(CONTEXT, message, "Maria")
    assert message == CallerMessage()


async def test_a_failure_keeps_the_emergency_flag(fake: FakeOpenAI, model: OpenAIChatModel) -> None:
    fake.completions.append(ScriptedCompletion(status=503))
    message = CallerMessage()
    stream = model.reply_stream(CONTEXT, message, "there are sparks everywhere")
    sentences = aiter(stream)
    assert await anext(sentences) == ADVICE[EmergencyKind.ELECTRICAL]
    with pytest.raises(ChatModelFailure, match="HTTP 503"):
        await anext(sentences)
    assert message.urgency is Urgency.EMERGENCY
    assert message.history == []


async def test_a_refused_connection_is_a_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    chat_model = OpenAIChatModel("sk-test", base_url=f"http://127.0.0.1:{port}/v1", timeout=0.5)
    with pytest.raises(ChatModelFailure, match="connection failed"):
        await chat_model.reply(CONTEXT, CallerMessage(), "hello")
    await chat_model.aclose()


async def test_a_failure_mid_stream_surfaces_from_the_sentences_and_the_result(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(ScriptedCompletion(content=["Hello there. ", "How"], stall_after=2))
    stream = model.reply_stream(CONTEXT, CallerMessage(), "hi")
    sentences = aiter(stream)
    assert await anext(sentences) == "Hello there."
    with pytest.raises(ChatModelFailure, match="stalled"):
        await anext(sentences)
    with pytest.raises(ChatModelFailure, match="stalled"):
        await stream.result()


async def test_closing_a_reply_stops_the_request_and_keeps_what_was_said(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    held = ScriptedCompletion(
        content=["Got it. ", "And"], tool_calls=[record(caller_name="Maria")], hold_after=3
    )
    fake.completions.append(held)
    message = CallerMessage()
    stream = model.reply_stream(CONTEXT, message, "Maria here, a leak")
    assert await anext(aiter(stream)) == "Got it."
    await stream.aclose()
    with pytest.raises(ChatModelFailure, match="closed"):
        await stream.result()
    assert message.caller_name is None
    assert message.history == [
        SpokenTurn("caller", "Maria here, a leak"),
        SpokenTurn("assistant", "Got it."),
    ]
    for _ in range(100):
        if fake.client_disconnects:
            break
        await asyncio.sleep(0.01)
    assert fake.client_disconnects == 1


def test_sentence_splitter_keeps_abbreviations_and_decimals_together() -> None:
    splitter = SentenceSplitter()
    pieces = ["Mr. Lopez, the 2.5 inch pipe", "? Yes!", " Okay.\nNext line"]
    sentences = [sentence for piece in pieces for sentence in splitter.feed(piece)]
    assert sentences == ["Mr. Lopez, the 2.5 inch pipe?", "Yes!", "Okay."]
    assert splitter.flush() == "Next line"
    assert splitter.flush() is None


# --- emergencies and the topic, with the scripted interviewer's own readers ---------------------


async def test_an_emergency_mentioned_late_in_the_call_gets_its_safety_line_once(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    message = CallerMessage(caller_name="Maria", need="a leaking pipe", urgency=Urgency.ROUTINE)
    fake.completions.append(ScriptedCompletion(content=["Is this number best for you?"]))
    fake.completions.append(ScriptedCompletion(content=["Please call 911. ", "Got it."]))
    first = [s async for s in model.reply_stream(CONTEXT, message, "oh no now it's flooding")]
    assert first == [ADVICE[EmergencyKind.FLOODING], "Is this number best for you?"]
    assert message.urgency is Urgency.EMERGENCY
    second = [s async for s in model.reply_stream(CONTEXT, message, "it's still flooding")]
    assert second == ["Got it."]  # the line is not repeated, nor the model's own "call 911"
    assert message.emergencies == ["flooding"]
    assert len([note for note in message.notes if note.startswith("Possible emergency")]) == 1


async def test_the_model_cannot_downgrade_an_emergency_it_did_not_hear(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(
        ScriptedCompletion(content=["Okay."], tool_calls=[record(urgency="routine")])
    )
    message = CallerMessage()
    await model.reply(CONTEXT, message, "there are sparks coming out of the outlet, no rush")
    assert message.urgency is Urgency.EMERGENCY
    assert message.topic == "sparking outlet"


async def test_the_topic_comes_from_the_callers_words_first(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(
        ScriptedCompletion(content=["Got it."], tool_calls=[record(need="Toilet issue")])
    )
    message = CallerMessage()
    await model.reply(CONTEXT, message, "um so the toilet keeps running all night")
    assert message.topic == "running toilet"
    assert message.need == "Toilet issue"


async def test_the_topic_falls_back_to_the_recorded_need_and_then_stays(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(
        ScriptedCompletion(content=["Got it."], tool_calls=[record(need="clogged kitchen drain")])
    )
    fake.completions.append(
        ScriptedCompletion(content=["Okay."], tool_calls=[record(need="the breaker trips too")])
    )
    message = CallerMessage()
    await model.reply(CONTEXT, message, "it's the thing in the kitchen, you know")
    assert message.topic == "clogged kitchen drain"
    await model.reply(CONTEXT, message, "and the breaker keeps tripping")
    assert message.topic == "clogged kitchen drain"


async def test_no_topic_without_a_recognisable_problem(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(
        ScriptedCompletion(content=["Sure."], tool_calls=[record(need="question about a bill")])
    )
    message = CallerMessage()
    await model.reply(CONTEXT, message, "I have a question about my bill")
    assert message.topic is None


async def test_after_a_failure_the_scripted_interviewer_does_not_repeat_the_safety_line(
    fake: FakeOpenAI, model: OpenAIChatModel
) -> None:
    fake.completions.append(ScriptedCompletion(status=503))
    message = CallerMessage(caller_name="Maria")
    said = "I smell gas by the stove"
    stream = model.reply_stream(CONTEXT, message, said)
    heard = aiter(stream)
    assert await anext(heard) == ADVICE[EmergencyKind.GAS]
    with pytest.raises(ChatModelFailure):
        await anext(heard)
    fallback = await ScriptedInterviewer().reply(CONTEXT, message, said)
    assert "leave the building" not in fallback.text
    assert message.need == "I smell gas by the stove"
    assert message.topic == "gas smell"
    assert message.urgency is Urgency.EMERGENCY


def test_the_system_prompt_asks_for_the_callers_own_words_and_leaves_the_safety_line_to_us() -> (
    None
):
    prompt = (files("prompts") / "system.md").read_text(encoding="utf-8")
    rendered = render_system_prompt(prompt, CONTEXT, CallerMessage())
    assert "in the caller's own words" in rendered
    assert "do not repeat or rephrase it" in rendered
    assert "Acme Plumbing" in rendered
