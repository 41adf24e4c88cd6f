"""The ``receptionist`` command: help for every command, exit statuses (0 done, 1 a failure or a
command that cannot do what was asked, 2 bad usage), mistyped business ids, JSON output, errors
in one sentence, and what ``--help`` leaves unimported."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from sqlalchemy import text

from consent_ledger import owner_notifications_allowed
from sms_sender import OutboxKind, PlannedText, queue_text
from tests.cli_support import receptionist
from tests.conftest import ROOT
from voice_agent.cli.main import cli, main
from voice_agent.cli.support import Schema, newest_revisions, schema_state
from voice_agent.records.businesses import import_businesses
from voice_agent.records.calls import CallRecord, Turn, save_call
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade

CALL_SID = "CA" + "7" * 32
KNOWN = "known: acme-plumbing, bright-spark-electric"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The URL of a database that does not exist yet, set as DATABASE_URL."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("AUDIO_DIR", str(tmp_path / "audio"))
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return url


@pytest.fixture
def stocked(database: str) -> str:
    """The database migrated, with the demo businesses, one call and one text."""
    upgrade(database)
    engine = make_engine(database)
    started = datetime(2026, 3, 2, 15, 4, 5, tzinfo=UTC)
    with engine.begin() as conn:
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
        save_call(
            conn,
            CallRecord(
                call_sid=CALL_SID,
                stream_sid="MZ" + "7" * 32,
                business_id="acme-plumbing",
                caller_number="+15125550142",
                started_at=started,
                ended_at=started + timedelta(minutes=2),
                end_reason="caller hung up",
                caller_name="Dana Ruiz",
                need="a burst pipe",
                callback_number="+15125550142",
                urgency="urgent",
                notes=(),
                consent_outcome="declined",
                consent_event_hash=None,
                turns=(Turn("caller", "speech", "My pipe burst", 4.0, 6.5, 0.91),),
            ),
        )
        queue_text(
            conn,
            PlannedText(
                business_id="acme-plumbing",
                reference=CALL_SID,
                to_number="+15125550199",
                from_number="+15125550100",
                kind=OutboxKind.OWNER_SUMMARY,
                body="Dana Ruiz called about a burst pipe.",
                consent_event_hash="",
                due_at=started,
            ),
        )
    engine.dispose()
    return database


# --- help ----------------------------------------------------------------------------------------


def _commands(
    group: click.Group = cli, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


COMMANDS = dict(_commands())


_COMMAND_WORD = re.compile(r"[a-z][a-z-]*")


def _readme_commands() -> set[str]:
    """The commands the README's Commands table names: the words after ``receptionist`` up to the
    first option or argument; an alternative after " / " continues the first's group
    ("`owner token create …` / `token list`")."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    named = set()
    for row in table.splitlines():
        if not row.startswith("| `receptionist "):
            continue
        first: list[str] = []
        for usage in row.split("|")[1].split(" / "):
            words = usage.strip(" `").removeprefix("receptionist ").split()
            command = list(itertools.takewhile(_COMMAND_WORD.fullmatch, words))
            if first and command and command[0] in first[1:]:
                command = first[: first.index(command[0])] + command
            first = first or command
            named.add(" ".join(command))
    return named


def test_every_readme_command_is_there() -> None:
    leaves = {" ".join(path) for path, command in COMMANDS.items()}
    named = _readme_commands()
    assert len(named) >= 20
    assert named <= leaves | {" ".join(path) for path in COMMANDS}, named - leaves


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda path: " ".join(path) or "receptionist")
def test_help_of_every_command_lists_its_options_and_arguments(path: tuple[str, ...]) -> None:
    command = COMMANDS.get(path, cli)
    result = receptionist(*path, "--help")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"Usage: receptionist {' '.join(path)}".rstrip())
    assert command.help, f"{path} has no help text"
    shown = " ".join(result.stdout.split())
    for param in command.params:
        help_text = getattr(param, "help", None)
        assert help_text, f"{path}: {param.name} has no help text"
        assert " ".join(help_text.split()) in shown, (path, param.name)
        if isinstance(param, click.Option):
            assert all(opt in result.stdout for opt in param.opts), (path, param.opts)
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            assert name in result.stdout


# --- exit statuses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["teleport"],
        ["calls"],
        ["calls", "list", "--bogus"],
        ["calls", "list", "--limit", "0"],
        ["calls", "show"],
        ["outbox", "show", "one"],
        ["simulate"],
        ["simulate", "x.yaml", "--speed", "100"],
        ["demo", "--speed", "x"],
        ["business", "owner-texts", "acme-plumbing", "maybe"],
        ["ledger", "export"],
        ["ledger", "export", "--number", "+15125550142", "--business", "acme-plumbing"],
        ["ledger", "export", "--business", "acme-plumbing", "--from", "yesterday"],
        ["ledger", "verify", "--workers", "0"],
        ["sms", "send-test", "--to", "+15125550142"],
        ["owner", "token", "create", "--business", "acme-plumbing", "--expires-days", "400"],
        ["retention", "apply", "--now"],
    ],
)
def test_bad_usage_exits_2_and_says_why(database: str, argv: list[str]) -> None:
    result = receptionist(*argv)
    assert result.exit_code == 2
    assert "Usage: receptionist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not Path(database.removeprefix("sqlite:///")).exists()


def test_main_returns_the_exit_status(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert main(["teleport"]) == 2
    assert main(["calls", "show", "CA-nothing"]) == 1
    assert "Error: no call 'CA-nothing'" in capsys.readouterr().err


def test_an_interrupted_command_exits_130(stocked: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("voice_agent.records.calls.list_calls", interrupted)
    assert receptionist("calls", "list").exit_code == 130


# --- businesses ----------------------------------------------------------------------------------


def test_import_list_and_owner_texts(database: str) -> None:
    imported = receptionist("business", "import", str(ROOT / "fixtures" / "businesses.yaml"))
    assert imported.exit_code == 0
    listed = receptionist("business", "list")
    assert "acme-plumbing" in listed.stdout and "bright-spark-electric" in listed.stdout
    assert receptionist("business", "owner-texts", "acme-plumbing", "on").exit_code == 0
    engine = make_engine(database)
    with engine.connect() as conn:
        assert owner_notifications_allowed(conn, "acme-plumbing", "+15125550199")
    assert receptionist("business", "owner-texts", "acme-plumbing", "off").exit_code == 0
    with engine.connect() as conn:
        assert not owner_notifications_allowed(conn, "acme-plumbing", "+15125550199")
    engine.dispose()


@pytest.mark.parametrize(
    "argv",
    [
        ["calls", "list", "--business", "nope"],
        ["outbox", "list", "--business", "nope"],
        ["owner", "token", "create", "--business", "nope"],
        ["auditor", "token", "create", "--business", "nope"],
        ["owner", "token", "list", "--business", "nope"],
        ["business", "owner-texts", "nope", "on"],
        ["ledger", "export", "--business", "nope"],
        ["ledger", "verify", "--business", "nope"],
        ["ledger", "rebuild", "--business", "nope"],
    ],
)
def test_a_mistyped_business_is_an_error_naming_it(stocked: str, argv: list[str]) -> None:
    result = receptionist(*argv)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: no business 'nope'; {KNOWN}\n"
    assert not list(Path.cwd().glob("audit-packet-*"))


def test_a_business_on_an_empty_database_is_unknown_too(database: str) -> None:
    result = receptionist("calls", "list", "--business", "nope")
    assert result.exit_code == 1
    assert result.stderr == "Error: no business 'nope'; known: none\n"


# --- listings and JSON ---------------------------------------------------------------------------


def test_reading_an_empty_database_creates_nothing(database: str) -> None:
    assert receptionist("calls", "list").stdout == "No calls yet.\n"
    assert receptionist("outbox", "list").stdout == "The outbox is empty.\n"
    assert receptionist("business", "list", "--json").stdout == "[]\n"
    assert receptionist("owner", "token", "list").stdout == "no owner tokens\n"
    missing = receptionist("calls", "show", "CA-nothing")
    assert missing.exit_code == 1
    assert missing.stderr == "Error: no call 'CA-nothing'\n"
    assert not Path(database.removeprefix("sqlite:///")).exists()


def test_listings_show_the_call_and_its_text(stocked: str) -> None:
    assert CALL_SID in receptionist("calls", "list").stdout
    shown = receptionist("calls", "show", CALL_SID)
    assert "My pipe burst" in shown.stdout and "[scheduled]" in shown.stdout
    assert "burst pipe" in receptionist("outbox", "list", "--business", "acme-plumbing").stdout
    assert "kind owner_summary" in receptionist("outbox", "show", "1").stdout


def test_listings_show_times_on_the_business_s_clock(stocked: str) -> None:
    listed = receptionist("calls", "list").stdout
    assert listed.startswith("2026-03-02 09:04:05 CST  " + CALL_SID)  # 15:04:05 UTC in Chicago
    assert (
        "2026-03-02 09:04:05 CST · ended: caller hung up"
        in receptionist("calls", "show", CALL_SID).stdout
    )
    assert " due 2026-03-02 09:04:05 CST " in receptionist("outbox", "list").stdout


def test_json_output_parses(stocked: str) -> None:
    def as_json(*argv: str) -> Any:
        result = receptionist(*argv, "--json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    assert [call["call_sid"] for call in as_json("calls", "list")] == [CALL_SID]
    call = as_json("calls", "show", CALL_SID)
    assert isinstance(call, dict) and call["turns"][0]["text"] == "My pipe burst"
    assert call["texts"][0]["kind"] == "owner_summary"
    texts = as_json("outbox", "list")
    assert isinstance(texts, list) and texts[0]["status"] == "scheduled"
    assert as_json("outbox", "show", "1") == texts[0]
    businesses = as_json("business", "list")
    assert isinstance(businesses, list)
    assert [b["id"] for b in businesses] == ["acme-plumbing", "bright-spark-electric"]
    assert isinstance(businesses[0]["sms_send_window_start"], str)  # a time, in ISO form
    verified = as_json("ledger", "verify")
    assert isinstance(verified, dict) and verified["intact"] is True
    assert verified["first_broken"] is None
    assert as_json("owner", "token", "list") == []
    assert as_json("auditor", "token", "list", "--business", "acme-plumbing") == []
    kept = as_json("retention", "apply", "--dry-run")
    assert isinstance(kept, dict) and kept["dry_run"] is True
    assert [item["call_sid"] for item in kept["transcripts"]] == [CALL_SID]  # 90 days are past
    assert as_json("calls", "show", CALL_SID)["turns"] != []  # and a dry run removes nothing


# --- errors in one sentence ----------------------------------------------------------------------


def _one_sentence(result_stderr: str) -> str:
    lines = result_stderr.splitlines()
    assert len(lines) == 1, result_stderr
    assert "Traceback" not in result_stderr
    return lines[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["calls", "list"],
        ["business", "import", str(ROOT / "fixtures" / "businesses.yaml")],
        ["owner", "token", "create", "--business", "acme-plumbing"],
        ["ledger", "verify"],
        ["db", "upgrade"],
    ],
)
@pytest.mark.parametrize("where", ["folder", "not a database", "closed port", "no driver"])
def test_an_unreachable_database_is_one_sentence_and_exit_1(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], where: str
) -> None:
    (tmp_path / "garbage.db").write_text("not a database\n" * 200)
    url, shown, reason = {
        "folder": (f"sqlite:///{tmp_path}", f"sqlite:///{tmp_path}", "unable to open"),
        "not a database": (
            f"sqlite:///{tmp_path / 'garbage.db'}",
            f"sqlite:///{tmp_path / 'garbage.db'}",
            "file is not a database",
        ),
        "closed port": (
            "postgresql+psycopg://nobody:s3cret@127.0.0.1:1/nothing",
            "postgresql+psycopg://nobody:***@127.0.0.1:1/nothing",
            "Connection refused",
        ),
        "no driver": ("mysql://nobody@127.0.0.1/nothing", "mysql://nobody@127.0.0.1/nothing", ""),
    }[where]
    monkeypatch.setenv("DATABASE_URL", url)
    result = receptionist(*argv)
    assert result.exit_code == 1
    sentence = _one_sentence(result.stderr)
    assert sentence.startswith(f"Error: the database at {shown} cannot be opened: ")
    assert reason in sentence and "s3cret" not in sentence


def test_a_database_failing_later_is_one_sentence_too(stocked: str) -> None:
    engine = make_engine(stocked)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE outbox"))
    engine.dispose()
    result = receptionist("outbox", "list")
    assert result.exit_code == 1
    sentence = _one_sentence(result.stderr)
    assert sentence == f"Error: the database at {stocked} failed: no such table: outbox"


def test_invalid_settings_are_reported(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "ftp://nowhere")
    result = receptionist("calls", "list")
    assert result.exit_code == 2
    assert "PUBLIC_BASE_URL must start with http" in _one_sentence(result.stderr)


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ("businesses: nope", "expected a mapping with a 'businesses' list"),
        ("{{{", "cannot read"),
        ("businesses:\n  - id: Bad Id\n", "business #1"),
        (
            "businesses:\n  - {id: a, name: A, twilio_numbers: ['+1 555'],"
            " owner_phone: '+15125550199', help_contact: x}\n",
            "twilio_numbers",
        ),
        (
            "businesses:\n  - {id: a, name: A, twilio_numbers: ['+15125550100'],"
            " owner_phone: '+15125550199', help_contact: x, max_texts: 9}\n",
            "max_texts",
        ),
        (
            "businesses:\n  - {id: a, name: A, twilio_numbers: ['+15125550100'],"
            " owner_phone: '+15125550199', help_contact: x, time_zone: Mars/Olympus}\n",
            "unknown time zone",
        ),
        (
            "businesses:\n  - {id: a, name: A, twilio_numbers: ['+15125550100'],"
            " owner_phone: '+15125550199', help_contact: x, consent_script_version: v9}\n",
            "no consent script",
        ),
        (
            "businesses:\n  - {id: a, name: A, twilio_numbers: ['+15125550100'],"
            " owner_phone: '+15125550199', help_contact: x, surprise: 1}\n",
            "surprise",
        ),
    ],
)
def test_bad_business_files_are_refused_and_load_nothing(
    database: str, tmp_path: Path, document: str, complaint: str
) -> None:
    path = tmp_path / "businesses.yaml"
    path.write_text(document, encoding="utf-8")
    result = receptionist("business", "import", str(path))
    assert result.exit_code == 1
    assert complaint in result.stderr and "Traceback" not in result.stderr
    listed = receptionist("business", "list")
    assert listed.exit_code == 0 and listed.stdout == ""


def test_duplicate_numbers_are_refused(database: str, tmp_path: Path) -> None:
    entry = (
        "  - {{id: {id}, name: A, twilio_numbers: ['+15125550100'], owner_phone: '+15125550199',"
        " help_contact: x}}\n"
    )
    path = tmp_path / "businesses.yaml"
    path.write_text("businesses:\n" + entry.format(id="a") + entry.format(id="b"), encoding="utf-8")
    result = receptionist("business", "import", str(path))
    assert result.exit_code == 1
    assert "duplicate Twilio number: +15125550100" in result.stderr


# --- nothing loaded before it is needed ----------------------------------------------------------

HEAVY = (
    "sqlalchemy", "fastapi", "uvicorn", "openai", "deepgram", "twilio", "fpdf", "numpy",
    "faster_whisper", "alembic", "pydantic", "consent_ledger", "sms_sender", "dashboard",
    "media_stream", "call_simulator",
)  # fmt: skip
"""What ``--help`` must not import: the database, web, vendor and PDF libraries, the settings'
validation, and our packages below the CLI."""

ONLY_WHEN_SERVING = ("fastapi", "uvicorn", "openai", "deepgram", "twilio", "fpdf", "faster_whisper")


def _modules_after(argv: list[str], database_url: str) -> set[str]:
    """The top-level modules loaded by running ``receptionist ARGV`` in a fresh interpreter."""
    program = (
        "import sys\n"
        "from voice_agent.cli.main import main\n"
        f"status = main({argv!r})\n"
        "print('MODULES', status, ' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
    )
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("MODULES")]
    _, status, *modules = line.split()
    assert status == "0", done.stderr
    return set(modules)


@pytest.mark.parametrize(
    "argv", [["--help"], ["calls", "--help"], ["ledger", "export", "--help"], ["demo", "--help"]]
)
def test_help_imports_nothing_heavy(database: str, argv: list[str]) -> None:
    assert _modules_after(argv, database).isdisjoint(HEAVY)


@pytest.mark.parametrize("fresh", [False, True], ids=["migrated", "fresh"])
def test_listing_calls_loads_no_server_and_no_migrations(stocked: str, fresh: bool) -> None:
    loaded = _modules_after(["calls", "list"], stocked + "-fresh" if fresh else stocked)
    assert loaded.isdisjoint({*ONLY_WHEN_SERVING, "alembic"})


# --- the schema check that spares a read Alembic -------------------------------------------------


def test_the_newest_revisions_are_alembics_heads(database: str) -> None:
    from alembic.script import ScriptDirectory

    from voice_agent.records.migrate import alembic_config

    heads = ScriptDirectory.from_config(alembic_config(database)).get_heads()
    assert newest_revisions() == frozenset(heads)


def test_a_read_on_an_older_schema_migrates_it_first(database: str) -> None:
    from alembic import command

    from voice_agent.records.migrate import alembic_config

    engine = make_engine(database)
    assert schema_state(engine) is Schema.ABSENT
    upgrade(database)
    assert schema_state(engine) is Schema.CURRENT
    command.downgrade(alembic_config(database), "-1")
    assert schema_state(engine) is Schema.OLDER
    listed = receptionist("calls", "list")
    assert listed.exit_code == 0 and listed.stdout == "No calls yet.\n"
    assert schema_state(engine) is Schema.CURRENT
    engine.dispose()


def test_the_demo_outside_a_checkout_says_so(database: str) -> None:
    result = receptionist("demo")
    assert result.exit_code == 1
    assert "the demo runs from a checkout" in _one_sentence(result.stderr)
    assert not Path(database.removeprefix("sqlite:///")).exists()
