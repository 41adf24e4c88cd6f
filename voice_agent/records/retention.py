"""Retention: remove what a business no longer needs to keep, never its consent evidence.

- A call's full transcript (its ``call_turns`` rows) is deleted once the call started more than the
  business's ``transcript_retention_days`` ago (default 90). The call's summary row stays, marked
  with ``transcript_purged_at``.
- Consent answer audio is purged only when every consent event pointing at it was recorded more
  than its business's ``consent_retention_years`` ago (default 5). The audio store leaves a
  tombstone, and the event keeps the audio's hash, so verification reports the audio as purged.
- Consent events are never touched (the database refuses it anyway).

Run it with a controllable ``now``; ``dry_run`` reports the same removals and removes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, func, select, update

from consent_ledger import (
    AudioReference,
    AudioStatus,
    AudioStore,
    CorruptEventError,
    audio_references,
    stored_instant,
)
from voice_agent.records.tables import businesses, call_turns, calls

logger = logging.getLogger(__name__)

DEFAULT_TRANSCRIPT_RETENTION_DAYS = 90
DEFAULT_CONSENT_RETENTION_YEARS = 5
_BATCH_SIZE = 500
_PURGEABLE = frozenset({AudioStatus.PRESENT, AudioStatus.CORRUPT})


@dataclass(frozen=True)
class RetentionPolicy:
    """How long one business keeps transcripts and consent audio."""

    business_id: str
    transcript_retention_days: int = DEFAULT_TRANSCRIPT_RETENTION_DAYS
    consent_retention_years: int = DEFAULT_CONSENT_RETENTION_YEARS

    def transcript_cutoff(self, now: datetime) -> datetime:
        """Transcripts of calls that started before this instant are removed."""
        return now - timedelta(days=self.transcript_retention_days)

    def audio_kept_until(self, recorded_at: datetime) -> datetime:
        """The end of the retention of consent audio recorded with an event at ``recorded_at``."""
        return _years_after(recorded_at, self.consent_retention_years)


@dataclass(frozen=True)
class TranscriptRemoval:
    """A call whose full transcript is (or would be) deleted."""

    business_id: str
    call_sid: str
    started_at: datetime
    turns: int


@dataclass(frozen=True)
class AudioRemoval:
    """Consent audio that is (or would be) purged, with the newest event pointing at it."""

    audio_sha256: str
    business_id: str
    event_seq: int
    kept_until: datetime
    reason: str


@dataclass(frozen=True)
class RetentionReport:
    """What one retention run removed, or would remove in a dry run.

    ``audio_blocked`` says why no audio was considered (a damaged ledger), else None.
    """

    now: datetime
    dry_run: bool
    transcripts: tuple[TranscriptRemoval, ...]
    audio: tuple[AudioRemoval, ...]
    audio_blocked: str | None = None


def apply_retention(
    engine: Engine, audio_store: AudioStore, now: datetime, *, dry_run: bool = False
) -> RetentionReport:
    """Remove transcripts and consent audio past their business's retention at ``now``."""
    if now.tzinfo is None or now.utcoffset() != timedelta(0):
        raise ValueError(f"now must be an aware UTC instant, got {now!r}")
    with engine.begin() as conn:
        policies = _policies(conn)
        transcripts = tuple(_expired_transcripts(conn, policies, now))
        if not dry_run:
            _delete_transcripts(conn, transcripts, now)
    try:
        with engine.begin() as conn:
            audio = tuple(_expired_audio(conn, audio_store, policies, now))
    except CorruptEventError as error:
        logger.error("consent ledger damaged; no consent audio purged", extra={"error": str(error)})
        return RetentionReport(now, dry_run, transcripts, (), audio_blocked=str(error))
    if not dry_run:
        for removal in audio:
            audio_store.purge(removal.audio_sha256, removal.reason, now)
    logger.info(
        "retention applied",
        extra={"dry_run": dry_run, "transcripts": len(transcripts), "audio": len(audio)},
    )
    return RetentionReport(now, dry_run, transcripts, audio)


def _policies(conn: Connection) -> dict[str, RetentionPolicy]:
    rows = conn.execute(
        select(
            businesses.c.id,
            businesses.c.transcript_retention_days,
            businesses.c.consent_retention_years,
        )
    )
    return {row.id: RetentionPolicy(*row) for row in rows}


def _policy(policies: dict[str, RetentionPolicy], business_id: str) -> RetentionPolicy:
    """The business's policy; the defaults for a business no longer configured."""
    return policies.get(business_id) or RetentionPolicy(business_id)


def _expired_transcripts(
    conn: Connection, policies: dict[str, RetentionPolicy], now: datetime
) -> Iterator[TranscriptRemoval]:
    with_turns = select(calls.c.business_id).join(
        call_turns, call_turns.c.call_sid == calls.c.call_sid
    )
    for business_id in conn.scalars(with_turns.distinct().order_by(calls.c.business_id)).all():
        cutoff = _policy(policies, business_id).transcript_cutoff(now)
        expired = (
            select(calls.c.call_sid, calls.c.started_at, func.count(call_turns.c.id))
            .join(call_turns, call_turns.c.call_sid == calls.c.call_sid)
            .where(calls.c.business_id == business_id)
            .where(calls.c.started_at < cutoff)
            .group_by(calls.c.call_sid, calls.c.started_at)
            .order_by(calls.c.started_at, calls.c.call_sid)
        )
        for call_sid, started_at, turns in conn.execute(expired):
            yield TranscriptRemoval(business_id, call_sid, stored_instant(started_at), turns)


def _delete_transcripts(
    conn: Connection, removals: tuple[TranscriptRemoval, ...], now: datetime
) -> None:
    for start in range(0, len(removals), _BATCH_SIZE):
        call_sids = [removal.call_sid for removal in removals[start : start + _BATCH_SIZE]]
        conn.execute(delete(call_turns).where(call_turns.c.call_sid.in_(call_sids)))
        conn.execute(
            update(calls)
            .where(calls.c.call_sid.in_(call_sids))
            .where(calls.c.transcript_purged_at.is_(None))
            .values(transcript_purged_at=now)
        )


def _expired_audio(
    conn: Connection,
    audio_store: AudioStore,
    policies: dict[str, RetentionPolicy],
    now: datetime,
) -> Iterator[AudioRemoval]:
    """Audio whose every reference is past retention and that the store still holds."""
    newest: dict[str, tuple[datetime, AudioReference, RetentionPolicy]] = {}
    for reference in audio_references(conn):
        policy = _policy(policies, reference.business_id)
        kept_until = policy.audio_kept_until(reference.recorded_at)
        known = newest.get(reference.audio_sha256)
        if known is None or kept_until > known[0]:
            newest[reference.audio_sha256] = (kept_until, reference, policy)
    for audio_sha256, (kept_until, reference, policy) in sorted(newest.items()):
        if kept_until > now:
            continue
        status = audio_store.status(audio_sha256)
        if status is AudioStatus.MISSING:
            logger.warning(
                "consent audio past retention was already missing",
                extra={"business_id": reference.business_id, "audio_sha256": audio_sha256},
            )
        if status in _PURGEABLE:
            reason = (
                f"consent retention of {policy.consent_retention_years} years ended "
                f"(business {reference.business_id}, event #{reference.seq})"
            )
            yield AudioRemoval(
                audio_sha256, reference.business_id, reference.seq, kept_until, reason
            )


def _years_after(instant: datetime, years: int) -> datetime:
    """``instant`` moved ``years`` calendar years on; 29 February moves to 1 March."""
    try:
        return instant.replace(year=instant.year + years)
    except ValueError:
        return instant.replace(year=instant.year + years, month=3, day=1)
