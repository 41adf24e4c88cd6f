"""The embedded voices through the phone path: how well our own prompts are heard, how soon the
first audio comes, and how much CPU a second of speech costs.

For each voice (espeak-ng, Piper), every prompt the assistant says in the same words on every call
(the greeting and first question of both demo businesses, their rendered consent scripts, the
re-ask and its question-answering form, the goodbyes, and the scripted interviewer's questions as a
sample call asks them) is synthesized as the bridge does (sentence by sentence, μ-law at 8 kHz),
decoded, and transcribed by the embedded Whisper tiny.en (`WhisperTranscriber`, its VAD and its
filters included). Reported per prompt kind and overall:

- word error rate against the prompt's text, both normalised as `bench.scoring` does (so
  "press 1" heard as "press one" is no error);
- time to first audio: from asking the engine for a prompt to its first chunk, p50 and p95 over
  ``--repeats`` renderings of every prompt (the first rendering of all, model loading included,
  is reported apart as "cold"), and the same once each prompt is kept as a fixed prompt
  (`CachedSynthesizer`: "replayed");
- CPU seconds (this process, all threads) per second of speech rendered.

    .venv/bin/python bench/assistant_voice.py [--voices espeak piper] [--repeats 3]
        [--piper-threads 1]

Bounded: about 40 prompts; a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scoring import percentile, word_errors
from media_stream import (
    CachedSynthesizer,
    CallBridge,
    EspeakSynthesizer,
    PiperSynthesizer,
    PromptAudio,
    Synthesizer,
    WhisperTranscriber,
    fixed_prompts,
)
from media_stream.codec import SAMPLE_RATE, ulaw_decode
from media_stream.sentences import split_sentences
from voice_agent.call.conversation import ConsentOutcome, Conversation, greeting
from voice_agent.chat.interviewer import ScriptedInterviewer
from voice_agent.chat.port import CallContext, CallerMessage
from voice_agent.consent.questions import ASK_YES_OR_NO
from voice_agent.consent.script import REASK
from voice_agent.records.businesses import Business, load_businesses

ROOT = Path(__file__).resolve().parent.parent
CALLER = "+15125550142"
GOODBYES = (ConsentOutcome.AFFIRMATIVE, ConsentOutcome.DECLINED, ConsentOutcome.UNCLEAR)
SAMPLE_CALL = ("Maria Lopez", "my kitchen sink is leaking", "yes that's right", "it can wait")
"""What the sample caller answers to the interviewer's questions, in order."""
LONGEST_STRETCH = 12.0
"""Seconds of audio Whisper hears at once: the caller's speech reaches it in utterances the
endpointer cuts at 15 s, and a longer stretch overruns its cap on new tokens."""


class Voice(Protocol):
    name: str

    def synthesize(self, text: str) -> AsyncGenerator[bytes, None]: ...


@dataclass(frozen=True)
class Prompt:
    kind: str
    text: str


@dataclass
class VoiceFigures:
    """What one voice scored."""

    name: str
    errors: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind → (edits, words)
    worst: list[tuple[float, str, str]] = field(default_factory=list)  # (wer, said, heard)
    cold_first_audio: float = 0.0
    first_audio: list[float] = field(default_factory=list)
    replayed_first_audio: list[float] = field(default_factory=list)  # fixed prompts, cached
    cpu_seconds: float = 0.0
    speech_seconds: float = 0.0


def prompts(businesses: Sequence[Business]) -> list[Prompt]:
    """Everything the assistant says in the same words on every call, and a sample call's
    questions from the scripted interviewer."""
    found: list[Prompt] = []
    for business in businesses:
        context = CallContext(
            business_name=business.name,
            services=business.services,
            callback_time=business.callback_time,
            caller_number=CALLER,
            max_texts=business.max_texts,
        )
        questions = asyncio.run(_interviewer_lines(context))
        found.append(Prompt("greeting", f"{greeting(business)} {questions[0]}"))
        conversation = Conversation(business, CALLER, ScriptedInterviewer(), cast(CallBridge, None))
        found.append(Prompt("consent script", conversation.consent.script.text))
        for outcome in (
            ConsentOutcome.AFFIRMATIVE,
            ConsentOutcome.DECLINED,
            ConsentOutcome.UNCLEAR,
        ):
            conversation.consent.outcome = outcome
            found.append(Prompt("goodbye", conversation._goodbye()))
        found += [Prompt("interviewer", line) for line in questions[1:]]
    found += [Prompt("re-ask", REASK), Prompt("re-ask", ASK_YES_OR_NO)]
    return found


async def _interviewer_lines(context: CallContext) -> list[str]:
    interviewer, message = ScriptedInterviewer(), CallerMessage()
    lines = [(await interviewer.reply(context, message, None)).text]
    for said in SAMPLE_CALL:
        reply = await interviewer.reply(context, message, said)
        lines.append(reply.text)
        if reply.finished:
            break
    return lines


def heard(transcriber: WhisperTranscriber, sentences: Sequence[bytes]) -> str:
    """What the embedded Whisper makes of a prompt's μ-law audio, heard as the caller's own
    speech is: in stretches of at most `LONGEST_STRETCH` seconds, each cut after a sentence."""
    stretches: list[bytes] = []
    for audio in sentences:
        if stretches and len(stretches[-1]) + len(audio) <= LONGEST_STRETCH * SAMPLE_RATE:
            stretches[-1] += audio
        else:
            stretches.append(audio)
    texts = [transcriber.transcribe(ulaw_decode(audio), 0.0, 0.0).text for audio in stretches]
    return " ".join(text for text in texts if text)


def phone_audio(voice: Voice, text: str) -> list[bytes]:
    """The μ-law a call would send, sentence by sentence as the bridge asks for it."""
    return [asyncio.run(_whole(voice, sentence)) for sentence in split_sentences(text)]


async def _first_audio(voice: Synthesizer, text: str) -> float:
    """Seconds from asking for ``text`` (its first sentence, as the bridge does) to its first
    chunk of audio."""
    started = time.perf_counter()
    chunks = voice.synthesize(split_sentences(text)[0])
    async for _ in chunks:
        took = time.perf_counter() - started
        await chunks.aclose()
        return took
    return time.perf_counter() - started


async def _whole(voice: Synthesizer, text: str) -> bytes:
    return b"".join([chunk async for chunk in voice.synthesize(text)])


def measure(
    voice: Voice, said: Sequence[Prompt], transcriber: WhisperTranscriber, repeats: int
) -> VoiceFigures:
    figures = VoiceFigures(voice.name)
    figures.cold_first_audio = asyncio.run(_first_audio(voice, said[0].text))
    for prompt in said:
        cpu = time.process_time()
        audio = phone_audio(voice, prompt.text)
        figures.cpu_seconds += time.process_time() - cpu
        figures.speech_seconds += sum(len(sentence) for sentence in audio) / SAMPLE_RATE
        hypothesis = heard(transcriber, audio)
        edits, words = word_errors(prompt.text, hypothesis)
        total = figures.errors.get(prompt.kind, (0, 0))
        figures.errors[prompt.kind] = (total[0] + edits, total[1] + words)
        figures.worst.append((edits / max(words, 1), prompt.text, hypothesis))
    for _ in range(repeats):
        for prompt in said:
            figures.first_audio.append(asyncio.run(_first_audio(voice, prompt.text)))
    replaying = CachedSynthesizer(voice, PromptAudio(), voice.name)
    with fixed_prompts():
        for prompt in said:  # a first call renders each whole, and that is kept
            asyncio.run(_whole(replaying, split_sentences(prompt.text)[0]))
        for _ in range(repeats):
            for prompt in said:
                took = asyncio.run(_first_audio(replaying, prompt.text))
                figures.replayed_first_audio.append(took)
    figures.worst.sort(reverse=True)
    return figures


def _rate(errors: tuple[int, int]) -> str:
    edits, words = errors
    return f"{100 * edits / max(words, 1):5.1f} % ({edits}/{words})"


def report(all_figures: Sequence[VoiceFigures], kinds: Sequence[str], show_worst: int) -> None:
    width = max(len(kind) for kind in [*kinds, "all prompts"]) + 2
    names = "".join(f"{f.name:>22}" for f in all_figures)
    print(f"{'word error rate':<{width}}{names}")
    for kind in kinds:
        row = "".join(f"{_rate(f.errors.get(kind, (0, 0))):>22}" for f in all_figures)
        print(f"  {kind:<{width - 2}}{row}")
    totals = [
        (sum(e for e, _ in f.errors.values()), sum(w for _, w in f.errors.values()))
        for f in all_figures
    ]
    print(f"  {'all prompts':<{width - 2}}" + "".join(f"{_rate(t):>22}" for t in totals))
    rows: list[tuple[str, Callable[[VoiceFigures], str]]] = [
        ("first audio p50", lambda f: f"{1000 * statistics.median(f.first_audio):.0f} ms"),
        ("first audio p95", lambda f: f"{1000 * percentile(f.first_audio, 0.95):.0f} ms"),
        ("first audio, cold", lambda f: f"{1000 * f.cold_first_audio:.0f} ms"),
        (
            "first audio, replayed p95",
            lambda f: f"{1000 * percentile(f.replayed_first_audio, 0.95):.1f} ms",
        ),
        ("CPU s per s of speech", lambda f: f"{f.cpu_seconds / max(f.speech_seconds, 1e-9):.3f}"),
        ("speech rendered", lambda f: f"{f.speech_seconds:.0f} s"),
    ]
    for label, cell in rows:
        print(f"{label:<{width}}" + "".join(f"{cell(f):>22}" for f in all_figures))
    for figures in all_figures:
        print(f"\nworst heard, {figures.name}:")
        for wer, said, hypothesis in figures.worst[:show_worst]:
            print(f"  {100 * wer:3.0f} %  said: {said}\n         heard: {hypothesis}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--voices", nargs="+", choices=("espeak", "piper"), default=None)
    parser.add_argument("--repeats", type=int, default=3, help="renderings per prompt for timing")
    parser.add_argument("--piper-threads", type=int, default=1)
    parser.add_argument("--piper-length-scale", type=float, default=None)
    parser.add_argument("--worst", type=int, default=3, help="worst-heard prompts shown")
    arguments = parser.parse_args(argv)
    businesses = load_businesses(ROOT / "fixtures" / "businesses.yaml")
    said = prompts(businesses)
    kinds = list(dict.fromkeys(prompt.kind for prompt in said))
    transcriber = WhisperTranscriber()
    transcriber.load()
    makers: dict[str, Callable[[], Voice]] = {
        "espeak": EspeakSynthesizer,
        "piper": lambda: PiperSynthesizer(
            threads=arguments.piper_threads, length_scale=arguments.piper_length_scale
        ),
    }
    chosen = arguments.voices or list(makers)
    print(f"{len(said)} prompts, {sum(len(p.text.split()) for p in said)} words; voices {chosen}")
    all_figures = [measure(makers[name](), said, transcriber, arguments.repeats) for name in chosen]
    report(all_figures, kinds, arguments.worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
