"""Shared fixtures: settings on a temporary SQLite database with the demo businesses loaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from voice_agent.businesses import load_businesses, save_business
from voice_agent.db import make_engine
from voice_agent.migrate import upgrade
from voice_agent.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
AUTH_TOKEN = "test-auth-token"
PUBLIC_BASE_URL = "https://receptionist.example.com"


def receptionist_settings(database_url: str, port: int = 8765) -> Settings:
    return Settings(
        database_url=database_url,
        public_base_url=PUBLIC_BASE_URL,
        twilio_auth_token=SecretStr(AUTH_TOKEN),
        port=port,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return receptionist_settings(f"sqlite:///{tmp_path / 'receptionist.db'}")


@pytest.fixture
def migrated_engine(settings: Settings) -> Iterator[Engine]:
    """The settings' database, migrated, with the demo businesses imported."""
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        for business in load_businesses(ROOT / "fixtures" / "businesses.yaml"):
            save_business(conn, business)
    yield engine
    engine.dispose()
