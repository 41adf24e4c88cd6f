"""Spoken refusals of texts, and the everyday sentences that must not be taken for one."""

from __future__ import annotations

import pytest

from voice_agent.consent.refusal import asks_not_to_be_texted


@pytest.mark.parametrize(
    "said",
    [
        "Don't text me.",
        "Please don’t text me, just call.",
        "Do not send me any text messages.",
        "No texts please.",
        "no more messages",
        "Stop texting me",
        "I don't want texts",
        "Call me, not by text.",
        "DON'T TEXT ME",
    ],
)
def test_refusals(said: str) -> None:
    assert asks_not_to_be_texted(said)


@pytest.mark.parametrize(
    "said",
    [
        "Text me back when you can.",
        "I'll text you a photo of the leak.",
        "Yes, this number is fine.",
        "The message light won't stop blinking.",
        "My name is Tex Stone.",
        "",
        "🙂" * 5000,
        "don't " * 5000,
    ],
)
def test_not_refusals(said: str) -> None:
    assert not asks_not_to_be_texted(said)
