"""``receptionist doctor``: every setting of this deployment checked, each problem said with a
plain fix. Exit 0 when all is well, 1 on any problem."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from voice_agent.cli.support import CommandError, SettingsError, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from voice_agent.settings import Settings


@dataclass(frozen=True)
class Problem:
    """What is wrong, and what to do about it."""

    what: str
    fix: str


@dataclass(frozen=True)
class Check:
    """One thing the doctor looks at: its name, and what finds its problems (None when it could
    not look, because of a problem reported before)."""

    name: str
    run: Callable[[Settings], list[Problem] | None]


@click.command()
def doctor() -> None:
    """Check every setting: PUBLIC_BASE_URL (https, a public host), the Twilio account, the
    database (reachable, migrated), each business's numbers and phones (valid E.164), the speech
    engines (the configured ones load) and the keys of the cloud ones (one short request each),
    the text transport and the directories written to. Print a fix for each problem; exit 1 on
    any."""
    try:
        settings = load_settings()
    except SettingsError as error:
        _report("settings", [Problem(error.message, _SETTINGS_FIX)])
        raise click.exceptions.Exit(1) from None
    found = 0
    for check in CHECKS:
        problems = check.run(settings)
        _report(check.name, problems)
        found += len(problems or ())
    if found:
        print(f"\n{found} problem(s) found")
        raise click.exceptions.Exit(1)
    print("\nall good")


_SETTINGS_FIX = "correct it in the environment or .env (.env.example documents each setting)"


def _report(name: str, problems: list[Problem] | None) -> None:
    if problems is None:
        print(f"skipped  {name}: not checked, see the problems above")
        return
    if not problems:
        print(f"ok       {name}")
    for problem in problems:
        print(f"PROBLEM  {name}: {problem.what}")
        print(f"         fix: {problem.fix}")


def public_url(settings: Settings) -> list[Problem]:
    from voice_agent.web.number_webhooks import public_url_problem

    problem = public_url_problem(settings.public_base_url)
    if problem is None:
        return []
    return [
        Problem(
            problem,
            "set PUBLIC_BASE_URL to the https:// address Twilio reaches this server at "
            "(a TLS proxy or tunnel in front of it), e.g. https://calls.example.com",
        )
    ]


def twilio_account(settings: Settings) -> list[Problem]:
    import re

    from voice_agent.cli.support import twilio_account_missing

    fix = "copy the Account SID and Auth Token from the Twilio Console (Account info) into "
    if twilio_account_missing(settings):
        return [
            Problem(
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set: every webhook's "
                "signature would be refused",
                fix + "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
            )
        ]
    problems = []
    if not re.fullmatch(r"AC[0-9a-f]{32}", settings.twilio_account_sid):
        problems.append(
            Problem("TWILIO_ACCOUNT_SID is not an account SID (AC and 32 hex digits)", fix + "it")
        )
    if not re.fullmatch(r"[0-9a-f]{32}", settings.twilio_auth_token.get_secret_value()):
        problems.append(
            Problem("TWILIO_AUTH_TOKEN is not an auth token (32 hex digits)", fix + "it")
        )
    return problems


def database(settings: Settings) -> list[Problem]:
    from voice_agent.cli.support import (
        Schema,
        database_engine,
        missing_sqlite_file,
        opening,
        schema_state,
        shown_url,
    )

    where = shown_url(settings.database_url)
    migrate = "run: receptionist db upgrade"
    if missing_sqlite_file(settings.database_url):
        return [Problem(f"the database {where} does not exist", migrate)]
    try:
        engine = database_engine(settings.database_url)
        try:
            with opening(settings.database_url):
                state = schema_state(engine)
        finally:
            engine.dispose()
    except CommandError as error:
        return [Problem(error.message, "start the database server, or correct DATABASE_URL")]
    if state is Schema.ABSENT:
        return [Problem(f"the database {where} has no tables", migrate)]
    if state is Schema.OLDER:
        return [Problem(f"the database {where} is not migrated to the newest schema", migrate)]
    return []


def businesses(settings: Settings) -> list[Problem] | None:
    """Each business's Twilio numbers, owner phone and excluded numbers, read as stored (None
    when the database cannot be read)."""
    from voice_agent.cli.support import database_engine, opening

    if database(settings):
        return None
    engine = database_engine(settings.database_url, read_only=True)
    try:
        with opening(settings.database_url), engine.connect() as conn:
            return _business_problems(conn)
    finally:
        engine.dispose()


_IMPORT = "receptionist business import FILE"


def _business_problems(conn: Connection) -> list[Problem]:
    from sqlalchemy import select

    from voice_agent.records.tables import business_numbers
    from voice_agent.records.tables import businesses as business_table

    rows = conn.execute(select(business_table).order_by(business_table.c.id)).mappings().all()
    if not rows:
        return [
            Problem(
                "no business is configured: every call would hear an apology",
                f"run: {_IMPORT} (see fixtures/businesses.yaml)",
            )
        ]
    numbers: dict[str, list[str]] = {}
    for number, business_id in conn.execute(
        select(business_numbers.c.number, business_numbers.c.business_id)
    ):
        numbers.setdefault(business_id, []).append(number)
    problems: list[Problem] = []
    for row in rows:
        fix = f"correct {row['id']} in your businesses file and run: {_IMPORT}"
        own = numbers.get(row["id"], [])
        if not own:
            problems.append(Problem(f"{row['id']} has no Twilio number", fix))
        phones = [("Twilio number", n) for n in own] + [("owner phone", row["owner_phone"])]
        phones += [("excluded number", n) for n in row["excluded_numbers"] or []]
        phones += [("on-call phone", n) for n in row["on_call_phones"] or []]
        for label, value in phones:
            problem = phone_problem(value)
            if problem is not None:
                problems.append(Problem(f"{row['id']}'s {label} {value!r} {problem}", fix))
        if row["ring_owner_first"] and row["owner_phone"] in own:
            problems.append(
                Problem(f"{row['id']} rings its owner at its own Twilio number (a loop)", fix)
            )
    return problems


def phone_problem(value: object) -> str | None:
    """Why ``value`` is not a valid phone number written in E.164, or None."""
    import phonenumbers

    if not isinstance(value, str):
        return "is not a phone number"
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return "is not in E.164 (+ country code and number)"
    if phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) != value:
        return "is not in E.164 (+ country code and number, nothing else)"
    if not phonenumbers.is_valid_number(parsed):
        return "is not a valid number (no such area code or length)"
    return None


def engines(settings: Settings) -> list[Problem]:
    """The configured transcriber and voice load (the embedded ones) or are built with a key (the
    cloud ones)."""
    from media_stream import EspeakSynthesizer, PiperSynthesizer, WhisperTranscriber
    from voice_agent.settings import SynthesizerChoice, TranscriberChoice

    problems: list[Problem] = []
    if settings.transcriber is TranscriberChoice.EMBEDDED:
        try:
            WhisperTranscriber(
                model=settings.whisper_model.value, beam_size=settings.whisper_beam_size
            ).load()
        except (RuntimeError, OSError, ValueError) as error:
            problems.append(
                Problem(
                    f"the Whisper model {settings.whisper_model.value} cannot load: {error}",
                    "reinstall the lock file's packages: make install",
                )
            )
    if settings.synthesizer in (SynthesizerChoice.EMBEDDED, SynthesizerChoice.PIPER):
        try:
            PiperSynthesizer(settings.piper_model).load()
        except (RuntimeError, OSError, ValueError) as error:
            problems.append(
                Problem(
                    f"the Piper voice cannot load ({error}); espeak-ng would speak instead",
                    "unset PIPER_MODEL for the bundled voice, or point it at a Piper .onnx "
                    "with its .onnx.json beside it",
                )
            )
    if settings.synthesizer is SynthesizerChoice.ESPEAK:
        try:
            EspeakSynthesizer(voice=settings.assistant_voice).render_ulaw("Hello.")
        except (RuntimeError, OSError, ValueError) as error:
            problems.append(
                Problem(
                    f"espeak-ng cannot speak with voice {settings.assistant_voice!r}: {error}",
                    "set ASSISTANT_VOICE to an espeak-ng voice (en-us), or make install",
                )
            )
    return problems


KEY_CHECK_SECONDS = 20.0
"""How long a cloud provider has to answer the doctor's one request."""


def cloud_keys(settings: Settings) -> list[Problem]:
    """Each cloud engine chosen works with its key: Deepgram's live-transcription websocket
    opens (and is closed at once), Deepgram speaks "Hello.", OpenAI lists its models. The
    settings refuse to load without the keys, so these are keys that are set."""
    from voice_agent.settings import ChatModelChoice, SynthesizerChoice, TranscriberChoice

    problems: list[Problem] = []
    deepgram = settings.deepgram_api_key
    if settings.transcriber is TranscriberChoice.DEEPGRAM and deepgram is not None:
        problems += _deepgram_problem(settings, "transcription", _listen_briefly(settings))
    if settings.synthesizer is SynthesizerChoice.DEEPGRAM and deepgram is not None:
        problems += _deepgram_problem(settings, "speech", _speak_briefly(settings))
    uses_openai = (
        settings.chat_model is ChatModelChoice.OPENAI
        or settings.synthesizer is SynthesizerChoice.OPENAI
    )
    if uses_openai and settings.openai_api_key is not None:
        problems += _openai_problem(settings)
    return problems


def _deepgram_problem(
    settings: Settings, what: str, attempt: Coroutine[Any, Any, None]
) -> list[Problem]:
    from media_stream import SynthesizerFailure, TranscriberFailure

    try:
        asyncio.run(asyncio.wait_for(attempt, KEY_CHECK_SECONDS))
    except (TranscriberFailure, SynthesizerFailure, OSError, TimeoutError, ValueError) as error:
        where = settings.deepgram_base_url or "Deepgram"
        return [
            Problem(
                f"Deepgram {what} failed with DEEPGRAM_API_KEY at {where}: {error}",
                "create a key with member scope in the Deepgram console and set DEEPGRAM_API_KEY "
                "(and DEEPGRAM_BASE_URL only for a self-hosted Deepgram)",
            )
        ]
    return []


async def _listen_briefly(settings: Settings) -> None:
    """Open a Deepgram live-transcription websocket as a call does, and close it at once."""
    from deepgram import AsyncDeepgramClient
    from deepgram.core.api_error import ApiError

    from media_stream import TranscriberFailure
    from media_stream.deepgram_transcriber import DEFAULT_MODEL, deepgram_environment

    assert settings.deepgram_api_key is not None
    client = AsyncDeepgramClient(
        api_key=settings.deepgram_api_key.get_secret_value(),
        environment=deepgram_environment(settings.deepgram_base_url),
    )
    try:
        async with client.listen.v1.connect(
            model=DEFAULT_MODEL, encoding="mulaw", sample_rate=8000, channels=1
        ) as connection:
            await connection.send_close_stream()
    except ApiError as error:
        raise TranscriberFailure(f"Deepgram refused the stream: HTTP {error.status_code}") from None


async def _speak_briefly(settings: Settings) -> None:
    from media_stream import DeepgramSynthesizer

    assert settings.deepgram_api_key is not None
    voice = DeepgramSynthesizer(
        settings.deepgram_api_key.get_secret_value(),
        base_url=settings.deepgram_base_url,
        voice=settings.deepgram_voice,
    )
    async for _audio in voice.synthesize("Hello."):
        break


def _openai_problem(settings: Settings) -> list[Problem]:
    import openai

    assert settings.openai_api_key is not None
    client = openai.OpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        timeout=KEY_CHECK_SECONDS,
        max_retries=0,
    )
    fix = "create a key at platform.openai.com and set OPENAI_API_KEY"
    try:
        client.models.list()
    except openai.AuthenticationError:
        return [Problem("OpenAI refuses OPENAI_API_KEY", fix)]
    except openai.APIConnectionError as error:
        where = settings.openai_base_url or "OpenAI"
        return [
            Problem(f"{where} cannot be reached: {error}", "check OPENAI_BASE_URL and the network")
        ]
    except openai.APIStatusError as error:
        return [Problem(f"OpenAI answered {error.status_code} to OPENAI_API_KEY", fix)]
    finally:
        client.close()
    return []


def sms_transport(settings: Settings) -> list[Problem]:
    from voice_agent.settings import SmsTransportChoice

    if settings.sms_transport is SmsTransportChoice.LOCAL:
        return [
            Problem(
                "SMS_TRANSPORT is local: texts are printed here, never sent",
                "set SMS_TRANSPORT=twilio (with the Twilio account) to send them",
            )
        ]
    return []


def directories(settings: Settings) -> list[Problem]:
    """The audio and journal directories (or the nearest folder that would hold them) are
    writable by this user."""
    import os
    from pathlib import Path

    problems = []
    for name, path in (("AUDIO_DIR", settings.audio_dir), ("JOURNAL_DIR", settings.journal_path)):
        existing = Path(path).resolve()
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            problems.append(
                Problem(
                    f"{name} {path} cannot be written by this user",
                    f"give this user write access to {existing}, or set {name} elsewhere",
                )
            )
    return problems


CHECKS = (
    Check("public URL", public_url),
    Check("Twilio account", twilio_account),
    Check("database", database),
    Check("businesses", businesses),
    Check("speech engines", engines),
    Check("cloud keys", cloud_keys),
    Check("texts", sms_transport),
    Check("directories", directories),
)
"""What ``doctor`` checks, in the order it reports."""
