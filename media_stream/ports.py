"""The speech ports: what a transcriber and a synthesizer must offer the call bridge.

Every engine, embedded or cloud, sits behind these protocols. Times are seconds on the
stream clock (the caller's audio timeline, taken from Twilio's ``media.timestamp``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class Word:
    """One recognised word with its place on the stream clock and the engine's confidence."""

    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class SpeechStarted:
    """The caller began speaking at ``at`` (stream seconds); drives barge-in."""

    at: float


@dataclass(frozen=True)
class SpeechStopped:
    """The caller stopped speaking at ``at`` (stream seconds) before the engine settled on the
    final words: their `Utterance` is still to come, and `TranscriptionSession.finalize` asks
    for it at once instead of waiting for the engine's own endpointing."""

    at: float


@dataclass(frozen=True)
class Utterance:
    """A final transcript of one stretch of caller speech.

    ``start`` comes from voice-activity detection (the onset of speech), ``end`` from the
    endpointer. ``confidence`` is the mean word confidence (0 when there are no words).
    """

    text: str
    start: float
    end: float
    confidence: float
    engine: str
    words: tuple[Word, ...] = field(default=())
    endpointed_at: float | None = None  # time.monotonic() when the end of speech was detected


SpeechEvent = SpeechStarted | SpeechStopped | Utterance


class AnswerKind(StrEnum):
    """What the question just asked wants for an answer, so that an engine may listen for it.

    ``ANY`` is for every question whose answer must be heard exactly as said, with nothing
    favoured: a yes or no (the consent question above all), a confirmation, anything unsure.
    """

    ANY = "any"
    NAME = "name"  # "What's your name?"
    PHONE_NUMBER = "phone number"  # "What's the best number to reach you?"
    ADDRESS = "address"  # "What's the address for the job?"
    PROBLEM = "problem"  # "What can we help you with today?"


class TranscriberFailure(Exception):
    """A cloud transcriber can no longer transcribe this call (raised from ``events``)."""


class SynthesizerFailure(Exception):
    """A cloud synthesizer could not speak a piece of text (raised while iterating)."""


class TranscriptionSession(Protocol):
    """One call's streaming recognition: μ-law audio in, speech events out."""

    def send_audio(self, ulaw: bytes, at: float) -> None:
        """Feed μ-law 8 kHz audio whose first sample sits at ``at`` stream seconds."""

    def events(self) -> AsyncIterator[SpeechEvent]:
        """Speech events in order; the iterator ends after ``close``."""

    def expect(self, answer: AnswerKind) -> None:
        """The question the assistant just asked wants this kind of answer, until the next
        one is asked; an engine may listen for it (the embedded one prompts Whisper), or ignore
        it. A session starts at ``AnswerKind.ANY``."""

    async def finalize(self) -> None:
        """The caller has finished: report the utterance in progress now, from the audio sent
        so far, without waiting for the endpointer (the conversation calls this when the
        consent answer ends, so the answer is decided at once)."""

    async def close(self) -> None:
        """Flush pending speech and stop; ``events`` ends after what is pending."""


class Transcriber(Protocol):
    """A speech-to-text engine that opens one session per call."""

    name: str

    def load(self) -> None:
        """Get ready to transcribe (load a model, check a key); idempotent."""

    def open_session(self, keyterms: Sequence[str] = ()) -> TranscriptionSession:
        """A session for one call. ``keyterms`` are words the call is likely to hold (the
        business's name and services, never answer words such as "yes", which must not be
        favoured); an engine may use them to recognise those words better, or ignore them."""


class Synthesizer(Protocol):
    """A text-to-speech engine yielding μ-law 8 kHz mono audio in chunks."""

    name: str

    def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        """Audio for ``text`` (an async generator); close it to cancel synthesis."""
