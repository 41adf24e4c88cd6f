"""Scenario files: the fixtures load, and every kind of malformed file is refused by name."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest
import yaml

from call_simulator.scenarios import (
    Expectation,
    HangUpStep,
    PressStep,
    SayStep,
    ScenarioError,
    WavStep,
    load_scenario,
    load_scenarios,
)

CALLS = Path(__file__).resolve().parent.parent / "fixtures" / "calls"
DEMO_NUMBERS = {"+15125550100", "+13035550140"}
REQUIRED_FIXTURES = {
    "consent-yes",
    "consent-no",
    "unclear-then-yes",
    "keypad-on-reask",
    "hangup-before-question",
    "talk-over",
}
VALID: dict[str, object] = {
    "description": "A caller says yes.",
    "business_number": "+15125550100",
    "caller": "+15125550142",
    "steps": [{"say": "Hi, my name is Maria Lopez."}, {"say": "Yes."}],
}


def _write(folder: Path, document: object, name: str = "call") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _write_wav(path: Path, *, width: int = 2, channels: int = 1, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as audio:
        audio.setsampwidth(width)
        audio.setnchannels(channels)
        audio.setframerate(rate)
        audio.writeframes(bytes(width * channels * rate // 10))
    return path


def test_fixture_scenarios_load_and_call_demo_businesses() -> None:
    scenarios = {scenario.name: scenario for scenario in load_scenarios(CALLS)}
    assert scenarios.keys() >= REQUIRED_FIXTURES
    for scenario in scenarios.values():
        assert scenario.business_number in DEMO_NUMBERS
        assert scenario.expect is not None
        assert scenario.caller not in DEMO_NUMBERS


def test_fixture_scenarios_script_what_they_claim() -> None:
    scenarios = {scenario.name: scenario for scenario in load_scenarios(CALLS)}
    talk_over = scenarios["talk-over"]
    assert isinstance(talk_over.steps[0], SayStep)
    assert talk_over.steps[0].interrupt_after is not None
    keypad = scenarios["keypad-on-reask"]
    assert keypad.steps[-1] == PressStep("1")
    assert isinstance(scenarios["hangup-before-question"].steps[-1], HangUpStep)
    assert scenarios["consent-no"].expect == Expectation("declined", 0)
    assert scenarios["hangup-before-question"].expect == Expectation("not_asked", 0)


def test_valid_scenario_is_read_with_defaults(tmp_path: Path) -> None:
    scenario = load_scenario(_write(tmp_path, VALID, "consent-yes"))
    assert scenario.name == "consent-yes"
    assert scenario.steps == (SayStep("Hi, my name is Maria Lopez."), SayStep("Yes."))
    assert scenario.owner == "no-answer"
    assert scenario.caller_voice is None
    assert scenario.expect is None


def test_every_step_kind_and_option(tmp_path: Path) -> None:
    wav = _write_wav(tmp_path / "answer.wav", channels=2)
    document = {
        **VALID,
        "name": "all-steps",
        "caller_voice": "en-us+f3",
        "owner_answers": True,
        "steps": [
            {"say": "Hi.", "interrupt_after": 1.5},
            {"press": "12*#"},
            {"wav": "answer.wav", "interrupt_after": 0},
            {"hang_up": True},
        ],
        "expect": {"consent": "unclear", "texts": 0},
    }
    scenario = load_scenario(_write(tmp_path, document, "all-steps"))
    assert scenario.steps == (
        SayStep("Hi.", 1.5),
        PressStep("12*#"),
        WavStep(wav, 0.0),
        HangUpStep(),
    )
    assert scenario.caller_voice == "en-us+f3"
    assert scenario.owner == "takes-it"
    assert scenario.expect == Expectation("unclear", 0)


def test_wav_path_is_found_from_an_ancestor_folder(tmp_path: Path) -> None:
    audio, calls = tmp_path / "fixtures" / "audio", tmp_path / "fixtures" / "calls"
    audio.mkdir(parents=True)
    calls.mkdir()
    wav = _write_wav(audio / "yes.wav")
    document = {**VALID, "steps": [{"wav": "fixtures/audio/yes.wav"}]}
    assert load_scenario(_write(calls, document)).steps == (WavStep(wav),)


BAD_DOCUMENTS: list[tuple[str, object, str]] = [
    ("not a mapping", ["steps"], "file"),
    ("unknown top-level key", {**VALID, "callerid": "+15125550142"}, "callerid"),
    ("missing caller", {k: v for k, v in VALID.items() if k != "caller"}, "caller"),
    ("missing steps", {k: v for k, v in VALID.items() if k != "steps"}, "steps"),
    ("name differs from file", {**VALID, "name": "other"}, "name"),
    ("blank description", {**VALID, "description": "  "}, "description"),
    ("number without plus", {**VALID, "caller": "15125550142"}, "caller"),
    ("number with spaces", {**VALID, "caller": "+1 512 555 0142"}, "caller"),
    ("number too short", {**VALID, "business_number": "+1512555"}, "business_number"),
    ("number as integer", {**VALID, "business_number": 15125550100}, "business_number"),
    ("impossible number", {**VALID, "caller": "+10005550142"}, "caller"),
    ("hostile number", {**VALID, "caller": "+1512555014\n2; DROP TABLE"}, "caller"),
    ("voice with shell", {**VALID, "caller_voice": "en; rm -rf /"}, "caller_voice"),
    ("Piper far too slow", {**VALID, "caller_voice": "piper@3"}, "caller_voice"),
    ("Piper with no scale", {**VALID, "caller_voice": "piper@"}, "caller_voice"),
    ("voice as a number", {**VALID, "caller_voice": 3}, "caller_voice"),
    ("owner_answers as string", {**VALID, "owner_answers": "yes"}, "owner_answers"),
    ("unknown owner leg", {**VALID, "owner": "hangs-up"}, "owner"),
    ("owner twice", {**VALID, "owner": "busy", "owner_answers": True}, "owner"),
    ("empty steps", {**VALID, "steps": []}, "steps"),
    ("steps not a list", {**VALID, "steps": {"say": "hi"}}, "steps"),
    ("step not a mapping", {**VALID, "steps": ["hi"]}, "steps[0]"),
    ("step with no action", {**VALID, "steps": [{"interrupt_after": 1}]}, "steps[0]"),
    ("step with two actions", {**VALID, "steps": [{"say": "hi", "press": "1"}]}, "steps[0]"),
    ("unknown step key", {**VALID, "steps": [{"say": "hi", "loud": True}]}, "steps[0].loud"),
    ("empty say", {**VALID, "steps": [{"say": ""}]}, "steps[0].say"),
    ("say not text", {**VALID, "steps": [{"say": 42}]}, "steps[0].say"),
    ("letter digit", {**VALID, "steps": [{"say": "hi"}, {"press": "1a"}]}, "steps[1].press"),
    ("empty digits", {**VALID, "steps": [{"press": ""}]}, "steps[0].press"),
    ("unquoted digit", {**VALID, "steps": [{"press": 1}]}, "steps[0].press"),
    ("missing wav", {**VALID, "steps": [{"wav": "nowhere.wav"}]}, "steps[0].wav"),
    ("hang_up false", {**VALID, "steps": [{"hang_up": False}]}, "steps[0].hang_up"),
    (
        "hang_up not last",
        {**VALID, "steps": [{"hang_up": True}, {"say": "hi"}]},
        "steps[0].hang_up",
    ),
    (
        "negative interrupt_after",
        {**VALID, "steps": [{"say": "hi", "interrupt_after": -0.5}]},
        "steps[0].interrupt_after",
    ),
    (
        "interrupt_after not a number",
        {**VALID, "steps": [{"say": "hi", "interrupt_after": "soon"}]},
        "steps[0].interrupt_after",
    ),
    (
        "interrupt_after infinite",
        {**VALID, "steps": [{"say": "hi", "interrupt_after": float("inf")}]},
        "steps[0].interrupt_after",
    ),
    (
        "interrupt_after boolean",
        {**VALID, "steps": [{"say": "hi", "interrupt_after": True}]},
        "steps[0].interrupt_after",
    ),
    (
        "expect unknown key",
        {**VALID, "expect": {"consent": "declined", "texts": 0, "x": 1}},
        "expect.x",
    ),
    ("expect bad consent", {**VALID, "expect": {"consent": "maybe", "texts": 0}}, "expect.consent"),
    ("expect missing texts", {**VALID, "expect": {"consent": "declined"}}, "expect.texts"),
    (
        "expect too many texts",
        {**VALID, "expect": {"consent": "affirmative", "texts": 5}},
        "expect.texts",
    ),
    (
        "expect texts boolean",
        {**VALID, "expect": {"consent": "affirmative", "texts": True}},
        "expect.texts",
    ),
]


@pytest.mark.parametrize(
    ("document", "field"),
    [(document, field) for _, document, field in BAD_DOCUMENTS],
    ids=[label for label, _, _ in BAD_DOCUMENTS],
)
def test_malformed_scenario_names_file_and_field(
    tmp_path: Path, document: object, field: str
) -> None:
    path = _write(tmp_path, document)
    with pytest.raises(ScenarioError) as refused:
        load_scenario(path)
    assert refused.value.path == path
    assert refused.value.field == field
    assert str(path) in str(refused.value)
    assert field in str(refused.value)


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        ({"width": 1}, "16-bit"),
        ({"channels": 3}, "16-bit"),
    ],
)
def test_unsupported_wav_is_refused(tmp_path: Path, setup: dict[str, int], problem: str) -> None:
    _write_wav(tmp_path / "odd.wav", **setup)
    path = _write(tmp_path, {**VALID, "steps": [{"wav": "odd.wav"}]})
    with pytest.raises(ScenarioError, match=problem):
        load_scenario(path)


def test_file_that_is_not_wav_is_refused(tmp_path: Path) -> None:
    (tmp_path / "fake.wav").write_bytes(b"ID3 not a wave file at all")
    path = _write(tmp_path, {**VALID, "steps": [{"wav": "fake.wav"}]})
    with pytest.raises(ScenarioError, match="not a readable WAV"):
        load_scenario(path)


@pytest.mark.parametrize(
    "text",
    ["steps: [unclosed", "\t- tabs: are not yaml", "a: !!python/object:os.system {}"],
)
def test_invalid_yaml_is_a_scenario_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as refused:
        load_scenario(path)
    assert refused.value.field == "file"


def test_missing_and_binary_files_are_scenario_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot be read"):
        load_scenario(tmp_path / "absent.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ScenarioError):
        load_scenario(binary)
