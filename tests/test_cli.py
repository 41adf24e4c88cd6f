"""The ``receptionist`` command: business files, owner texts, listings, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from consent_ledger import owner_notifications_allowed
from tests.conftest import ROOT
from voice_agent.cli.main import main
from voice_agent.records.database import make_engine


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return url


def test_import_list_and_owner_texts(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["business", "import", str(ROOT / "fixtures" / "businesses.yaml")]) == 0
    assert main(["business", "list"]) == 0
    listed = capsys.readouterr().out
    assert "acme-plumbing" in listed and "bright-spark-electric" in listed
    assert main(["business", "owner-texts", "acme-plumbing", "on"]) == 0
    engine = make_engine(database)
    with engine.connect() as conn:
        assert owner_notifications_allowed(conn, "acme-plumbing", "+15125550199")
    assert main(["business", "owner-texts", "acme-plumbing", "off"]) == 0
    with engine.connect() as conn:
        assert not owner_notifications_allowed(conn, "acme-plumbing", "+15125550199")
    engine.dispose()


def test_empty_listings(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calls", "list"]) == 0
    assert main(["outbox", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == ["No calls yet.", "The outbox is empty."]
    assert main(["calls", "show", "CA-nothing"]) == 1
    assert "no call 'CA-nothing'" in capsys.readouterr().err


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
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], document: str, complaint: str
) -> None:
    path = tmp_path / "businesses.yaml"
    path.write_text(document, encoding="utf-8")
    assert main(["business", "import", str(path)]) == 1
    assert complaint in capsys.readouterr().err
    assert main(["business", "list"]) == 0
    assert capsys.readouterr().out == ""


def test_duplicate_numbers_are_refused(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = (
        "  - {{id: {id}, name: A, twilio_numbers: ['+15125550100'], owner_phone: '+15125550199',"
        " help_contact: x}}\n"
    )
    path = tmp_path / "businesses.yaml"
    path.write_text("businesses:\n" + entry.format(id="a") + entry.format(id="b"), encoding="utf-8")
    assert main(["business", "import", str(path)]) == 1
    assert "duplicate Twilio number: +15125550100" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["teleport"],
        ["simulate"],
        ["simulate", "x.yaml", "--speed", "100"],
        ["demo", "--speed", "x"],
    ],
)
def test_bad_arguments_exit_2(database: str, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2


def test_invalid_settings_are_reported(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "ftp://nowhere")
    assert main(["calls", "list"]) == 2
    assert "PUBLIC_BASE_URL must start with http" in capsys.readouterr().err
