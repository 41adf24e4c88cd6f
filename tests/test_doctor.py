"""``receptionist doctor``: a deployment set up right is "all good" (exit 0); each kind of
problem — the public URL, the Twilio account, the database missing, unmigrated or unreachable,
a business's phones, an engine that cannot load, a cloud engine without its key, texts that are
never sent — is named with its fix, and exits 1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from pydantic import SecretStr
from sqlalchemy import insert, update

from tests.cli_support import receptionist
from tests.fake_deepgram import API_KEY as DEEPGRAM_KEY
from tests.fake_deepgram import FakeDeepgramListen, FakeDeepgramSpeak
from tests.fake_openai import FakeOpenAI
from tests.fake_twilio import ACCOUNT_SID
from voice_agent.cli.doctor import phone_problem
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import alembic_config, upgrade
from voice_agent.records.tables import business_numbers, businesses
from voice_agent.settings import (
    ChatModelChoice,
    Settings,
    SmsTransportChoice,
    SynthesizerChoice,
    TranscriberChoice,
)

TOKEN = "0123456789abcdef" * 2


def _healthy(database_url: str, **changes: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "public_base_url": "https://calls.acme.example",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": SecretStr(TOKEN),
        "sms_transport": SmsTransportChoice.TWILIO,
        "synthesizer": SynthesizerChoice.ESPEAK,
        **changes,
    }
    return Settings(**values, _env_file=None)  # type: ignore[arg-type]


def _doctor(settings: Settings | None) -> tuple[int, str]:
    result = receptionist("doctor", settings=settings)
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stdout


def test_a_deployment_set_up_right_is_all_good(demo_database: str) -> None:
    status, out = _doctor(_healthy(demo_database, synthesizer=SynthesizerChoice.EMBEDDED))
    assert status == 0, out
    assert "PROBLEM" not in out
    for name in ("public URL", "Twilio account", "database", "businesses", "speech engines"):
        assert f"ok       {name}\n" in out
    assert out.endswith("all good\n")


def test_each_problem_is_named_with_its_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'never.db'}",
        synthesizer=SynthesizerChoice.ESPEAK,
        _env_file=None,  # type: ignore[call-arg]
    )  # the laptop defaults: http on loopback, no account, no database, local texts
    status, out = _doctor(settings)
    assert status == 1
    assert (
        "PROBLEM  public URL: PUBLIC_BASE_URL is http://127.0.0.1:8765: Twilio needs an https://"
        in out
    )
    assert "fix: set PUBLIC_BASE_URL to the https:// address Twilio reaches" in out
    assert "PROBLEM  Twilio account: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set" in out
    assert "PROBLEM  database: the database sqlite:///" in out and "does not exist" in out
    assert "fix: run: receptionist db upgrade" in out
    assert "skipped  businesses" in out
    assert "PROBLEM  texts: SMS_TRANSPORT is local" in out
    assert "ok       speech engines" in out
    assert out.count("PROBLEM") == out.count("fix: ") == 4
    assert out.endswith("4 problem(s) found\n")
    assert not (tmp_path / "never.db").exists()  # the doctor creates nothing


def test_an_unmigrated_or_unreachable_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0009")
    status, out = _doctor(_healthy(url))
    assert status == 1
    assert "is not migrated to the newest schema" in out
    assert "fix: run: receptionist db upgrade" in out

    status, out = _doctor(_healthy("postgresql+psycopg://nobody@127.0.0.1:9/none"))
    assert status == 1
    assert (
        "PROBLEM  database: the database at postgresql+psycopg://nobody@127.0.0.1:9/none "
        "cannot be opened" in out
    )
    assert "fix: start the database server, or correct DATABASE_URL" in out


def test_a_business_with_bad_phones(demo_database: str) -> None:
    engine = make_engine(demo_database)
    with engine.begin() as conn:  # as a hand edit or an older import could have left them
        conn.execute(
            update(businesses)
            .where(businesses.c.id == "acme-plumbing")
            .values(
                owner_phone="512-555-0199",
                excluded_numbers=["+15555550100"],
                on_call_phones=["+15125550198", "5125550197"],
            )
        )
        conn.execute(
            update(businesses)
            .where(businesses.c.id == "bright-spark-electric")
            .values(owner_phone="+13035550140", ring_owner_first=True)
        )
        conn.execute(
            insert(business_numbers).values(number="+1512555", business_id="acme-plumbing")
        )
    engine.dispose()
    status, out = _doctor(_healthy(demo_database))
    assert status == 1
    assert "acme-plumbing's owner phone '512-555-0199' is not in E.164" in out
    assert "acme-plumbing's excluded number '+15555550100' is not a valid number" in out
    assert "acme-plumbing's on-call phone '5125550197' is not in E.164" in out
    assert "'+15125550198'" not in out
    assert "acme-plumbing's Twilio number '+1512555' is not a valid number" in out
    assert "bright-spark-electric rings its owner at its own Twilio number (a loop)" in out
    assert (
        "fix: correct acme-plumbing in your businesses file and run: "
        "receptionist business import FILE" in out
    )


def test_no_business_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    status, out = _doctor(_healthy(url))
    assert status == 1
    assert "PROBLEM  businesses: no business is configured" in out


def test_an_engine_that_cannot_load(demo_database: str, tmp_path: Path) -> None:
    settings = _healthy(
        demo_database, synthesizer=SynthesizerChoice.PIPER, piper_model=tmp_path / "missing.onnx"
    )
    status, out = _doctor(settings)
    assert status == 1
    assert "PROBLEM  speech engines: the Piper voice cannot load" in out
    assert "missing.onnx" in out
    assert "fix: unset PIPER_MODEL for the bundled voice" in out


def test_a_cloud_engine_without_its_key(
    demo_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", demo_database)
    monkeypatch.setenv("TRANSCRIBER", "deepgram")
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    status, out = _doctor(None)  # the settings read from the environment, as a person runs it
    assert status == 1
    assert (
        "PROBLEM  settings: invalid settings: TRANSCRIBER=deepgram or SYNTHESIZER=deepgram "
        "needs DEEPGRAM_API_KEY" in out
    )
    assert "fix: correct it in the environment or .env" in out


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("+15125550100", None),
        ("+442079460958", None),
        ("+1 512 555 0100", "is not in E.164 (+ country code and number, nothing else)"),
        ("5125550100", "is not in E.164 (+ country code and number)"),
        ("+10005550100", "is not a valid number (no such area code or length)"),
        (None, "is not a phone number"),
    ],
)
def test_phone_problem(value: object, problem: str | None) -> None:
    assert phone_problem(value) == problem


# --- the keys of cloud engines, against the fake Deepgram and OpenAI servers -------------------


def _cloud(
    database: str,
    deepgram: tuple[str, str],
    openai: tuple[str, str] | None = None,
    **changes: object,
) -> Settings:
    """Healthy settings with Deepgram at ``deepgram`` (URL, key) and, when given, OpenAI's chat
    model at ``openai`` (URL, key)."""
    values: dict[str, object] = {
        "deepgram_base_url": deepgram[0],
        "deepgram_api_key": SecretStr(deepgram[1]),
    }
    if openai is not None:
        values |= {"chat_model": ChatModelChoice.OPENAI, "openai_base_url": openai[0]}
        values |= {"openai_api_key": SecretStr(openai[1])}
    return _healthy(database, **values, **changes)


@dataclass
class Clouds:
    """The fake Deepgram (live transcription, speech) and OpenAI, which takes ``sk-right``."""

    listen: FakeDeepgramListen
    speak: FakeDeepgramSpeak
    openai: FakeOpenAI


@pytest.fixture
async def clouds() -> AsyncIterator[Clouds]:
    async with (
        FakeDeepgramListen() as listen,
        FakeDeepgramSpeak() as speak,
        FakeOpenAI(api_key="sk-right") as openai,
    ):
        yield Clouds(listen, speak, openai)


async def test_cloud_keys_that_work(demo_database: str, clouds: Clouds) -> None:
    listen, speak, openai = clouds.listen, clouds.speak, clouds.openai
    settings = _cloud(
        demo_database,
        (listen.url, DEEPGRAM_KEY),
        (openai.base_url, "sk-right"),
        transcriber=TranscriberChoice.DEEPGRAM,
    )
    status, out = await asyncio.to_thread(_doctor, settings)
    assert status == 0, out
    assert "ok       cloud keys\n" in out
    assert listen.streams_opened == 1
    assert [path for path, _ in openai.requests] == ["/v1/models"]

    voice = _cloud(demo_database, (speak.url, DEEPGRAM_KEY), synthesizer=SynthesizerChoice.DEEPGRAM)
    status, out = await asyncio.to_thread(_doctor, voice)
    assert status == 0, out
    assert [request.text for request in speak.requests] == ["Hello."]


async def test_cloud_keys_that_are_refused(demo_database: str, clouds: Clouds) -> None:
    listen, speak, openai = clouds.listen, clouds.speak, clouds.openai
    settings = _cloud(
        demo_database,
        (listen.url, "a-revoked-key"),
        (openai.base_url, "sk-wrong"),
        transcriber=TranscriberChoice.DEEPGRAM,
        synthesizer=SynthesizerChoice.DEEPGRAM,
    )
    status, out = await asyncio.to_thread(_doctor, settings)
    assert status == 1
    refused = "Deepgram transcription failed with DEEPGRAM_API_KEY at "
    assert (
        f"PROBLEM  cloud keys: {refused}{listen.url}: Deepgram refused the stream: HTTP 401" in out
    )
    assert "PROBLEM  cloud keys: Deepgram speech failed" in out  # the listen host has no /v1/speak
    assert "PROBLEM  cloud keys: OpenAI refuses OPENAI_API_KEY" in out
    assert "fix: create a key at platform.openai.com and set OPENAI_API_KEY" in out
    assert listen.refusals and listen.refusals[0][0] == 401
    assert speak.requests == []

    wrong_voice_key = _cloud(
        demo_database, (speak.url, "a-revoked-key"), synthesizer=SynthesizerChoice.DEEPGRAM
    )
    status, out = await asyncio.to_thread(_doctor, wrong_voice_key)
    assert status == 1
    assert "PROBLEM  cloud keys: Deepgram speech failed with DEEPGRAM_API_KEY" in out
    assert len(speak.requests) == 1


async def test_a_cloud_provider_that_cannot_be_reached(demo_database: str) -> None:
    settings = _healthy(
        demo_database,
        chat_model=ChatModelChoice.OPENAI,
        openai_api_key=SecretStr("sk-any"),
        openai_base_url="http://127.0.0.1:9/v1",
    )
    status, out = await asyncio.to_thread(_doctor, settings)
    assert status == 1
    assert "PROBLEM  cloud keys: http://127.0.0.1:9/v1 cannot be reached" in out
