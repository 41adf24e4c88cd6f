"""The greeting is short (at most 6 s of audio) and keeps its disclosures: an automated assistant
answers, and the call is recorded when it is. Measured as the caller hears it: the embedded
espeak-ng voice, sentence by sentence as the bridge sends it, μ-law 8 kHz (8,000 bytes a second).
"""

from __future__ import annotations

from contextlib import aclosing

import pytest

from media_stream import SAMPLE_RATE, EspeakSynthesizer
from media_stream.sentences import split_sentences
from tests.conftest import ROOT
from voice_agent.call.conversation import greeting
from voice_agent.records.businesses import Business, load_businesses

LONGEST_GREETING_SECONDS = 6.0
DEMO_BUSINESSES = load_businesses(ROOT / "fixtures" / "businesses.yaml")


async def _audio_seconds(text: str) -> float:
    """How long ``text`` plays, synthesized one sentence at a time as the bridge does."""
    voice = EspeakSynthesizer()
    audio = 0
    for sentence in split_sentences(text):
        async with aclosing(voice.synthesize(sentence)) as chunks:
            async for chunk in chunks:
                audio += len(chunk)
    return audio / SAMPLE_RATE


def _with_recording(business: Business, recording: bool) -> Business:
    return business.model_copy(update={"recording_enabled": recording})


@pytest.mark.parametrize("recording", [False, True], ids=["not recorded", "recorded"])
@pytest.mark.parametrize("business", DEMO_BUSINESSES, ids=lambda business: business.id)
async def test_the_greeting_is_at_most_six_seconds_with_its_disclosures(
    business: Business, recording: bool
) -> None:
    text = greeting(_with_recording(business, recording))
    assert business.name in text
    assert "automated assistant" in text
    assert ("This call is recorded." in text) is recording
    seconds = await _audio_seconds(text)
    assert 0 < seconds <= LONGEST_GREETING_SECONDS, f"{text!r} plays for {seconds:.2f} s"


def test_a_name_ending_in_s_takes_a_plain_apostrophe() -> None:
    business = DEMO_BUSINESSES[0].model_copy(update={"name": "Ace Plumbers"})
    assert greeting(business) == "This is Ace Plumbers' automated assistant."
