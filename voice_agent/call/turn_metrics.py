"""Per-turn latency: from the caller's last frame of speech to our first frame of reply.

Each caller turn is split into the stages of the voice pipeline so a slow turn says where its
time went: endpointing (hearing that the caller stopped), transcription, the agent, synthesis.
"""

from __future__ import annotations

from media_stream import CallBridge, CallerInput, Playback
from voice_agent.records.calls import TurnMetrics


def measure_turn(
    bridge: CallBridge, heard: CallerInput, reply_ready_at: float, playback: Playback
) -> TurnMetrics:
    """Split the turn using the bridge's arrival times and the utterance's endpoint time."""
    utterance = heard.utterance
    speech_end = bridge.arrival_time(utterance.end) if utterance is not None else None
    endpointed = utterance.endpointed_at if utterance is not None else None
    first_audio = playback.first_audio_at
    return TurnMetrics(
        endpointing_ms=_ms(speech_end, endpointed),
        transcription_ms=_ms(endpointed, heard.received_at),
        agent_ms=(reply_ready_at - heard.received_at) * 1000,
        synthesis_ms=_ms(reply_ready_at, first_audio),
        total_ms=_ms(speech_end, first_audio),
    )


def _ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start) * 1000
