"""Operator settings: defaults that run offline, and clear refusals of bad values."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from voice_agent.settings import Settings


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_defaults_are_the_embedded_engines() -> None:
    settings = _settings()
    assert settings.database_url.startswith("sqlite:///")
    assert (settings.transcriber, settings.synthesizer) == ("embedded", "embedded")
    assert (settings.chat_model, settings.sms_transport) == ("scripted", "local")
    assert settings.media_stream_url == "wss://127.0.0.1:8765/twilio/media-stream"


def test_the_stream_url_follows_the_public_base_url() -> None:
    settings = _settings(public_base_url="https://calls.example.com/")
    assert settings.public_base_url == "https://calls.example.com"
    assert settings.media_stream_url == "wss://calls.example.com/twilio/media-stream"


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"public_base_url": "calls.example.com"}, "must start with http"),
        ({"port": 0}, "greater than or equal to 1"),
        ({"port": 70000}, "less than or equal to 65535"),
        ({"transcriber": "vosk"}, "transcriber"),
        ({"transcriber": "deepgram"}, "needs DEEPGRAM_API_KEY"),
        ({"synthesizer": "openai"}, "needs OPENAI_API_KEY"),
        ({"chat_model": "openai"}, "needs OPENAI_API_KEY"),
        ({"openai_timeout": -1}, "greater than 0"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        _settings(**values)


def test_the_auth_token_never_shows_in_a_repr() -> None:
    settings = _settings(twilio_auth_token="very-secret-token")
    assert "very-secret-token" not in repr(settings)
    assert "very-secret-token" not in str(settings.model_dump())
