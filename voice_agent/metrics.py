"""Operational metrics in Prometheus's format: turn latency by stage, live calls, outcomes, errors.

Served at ``GET /metrics``. They carry counts and durations only, never a number or a name.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from voice_agent.records.calls import TurnMetrics

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
STAGES = ("endpointing", "transcription", "agent", "synthesis", "total")


class CallMetrics:
    """One process's metrics, in a registry of its own (so tests and apps never share state)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._turn_seconds = Histogram(
            "receptionist_turn_seconds",
            "Caller turn latency by stage: last speech frame to first reply frame.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._live_calls = Gauge(
            "receptionist_live_calls", "Calls in progress in this process.", registry=self.registry
        )
        self._calls = Counter(
            "receptionist_calls",
            "Finished calls by consent outcome.",
            ["consent"],
            registry=self.registry,
        )
        self._provider_errors = Counter(
            "receptionist_provider_errors",
            "Errors from speech, language and SMS providers.",
            ["provider"],
            registry=self.registry,
        )

    def call_started(self) -> None:
        self._live_calls.inc()

    def call_ended(self, consent_outcome: str, turns: Sequence[TurnMetrics]) -> None:
        self._live_calls.dec()
        self._calls.labels(consent=consent_outcome).inc()
        for turn in turns:
            for stage in STAGES:
                milliseconds = getattr(turn, f"{stage}_ms")
                if milliseconds is not None:
                    self._turn_seconds.labels(stage=stage).observe(milliseconds / 1000)

    def provider_error(self, provider: str) -> None:
        self._provider_errors.labels(provider=provider).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
