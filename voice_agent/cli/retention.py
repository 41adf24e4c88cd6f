"""``receptionist retention apply [--dry-run] [--json]``: remove old transcripts and expired
consent audio; consent events are never deleted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from voice_agent.cli.support import json_option, load_settings, open_database, print_json

if TYPE_CHECKING:
    from voice_agent.records.retention import RetentionReport


@click.group()
def retention() -> None:
    """Data retention: remove what is past its time.

    Transcripts go after each business's retention (default 90 days); consent events are never
    deleted and their audio is kept 5 years."""


@retention.command()
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
@json_option("the removals")
def apply(dry_run: bool, as_json: bool) -> None:
    """Delete transcripts and consent audio past retention.

    Exit 1 when the ledger is damaged (then no consent audio is touched)."""
    from consent_ledger import AudioStore
    from voice_agent.clock import system_clock
    from voice_agent.records.retention import apply_retention

    settings = load_settings()
    engine = open_database(settings)
    try:
        report = apply_retention(
            engine, AudioStore(settings.audio_dir), system_clock(), dry_run=dry_run
        )
    finally:
        engine.dispose()
    if as_json:
        print_json(retention_as_dict(report))
    else:
        print(render_retention(report))
    if report.audio_blocked:
        raise click.exceptions.Exit(1)


def retention_as_dict(report: RetentionReport) -> dict[str, Any]:
    """The removals as JSON-ready data."""
    return {
        "dry_run": report.dry_run,
        "now": report.now.isoformat(),
        "transcripts": [
            {
                "call_sid": item.call_sid,
                "business_id": item.business_id,
                "started_at": item.started_at.isoformat(),
                "turns": item.turns,
            }
            for item in report.transcripts
        ],
        "audio": [
            {
                "audio_sha256": item.audio_sha256,
                "business_id": item.business_id,
                "event_seq": item.event_seq,
                "kept_until": item.kept_until.isoformat(),
                "reason": item.reason,
            }
            for item in report.audio
        ],
        "audio_blocked": report.audio_blocked,
    }


def render_retention(report: RetentionReport) -> str:
    """The removals, one a line, then a summary."""
    verb = "would remove" if report.dry_run else "removed"
    lines = [
        f"{verb} transcript of call {item.call_sid} ({item.business_id}, started "
        f"{item.started_at:%Y-%m-%d %H:%M} UTC, {item.turns} turns)"
        for item in report.transcripts
    ]
    lines += [
        f"{'would purge' if report.dry_run else 'purged'} consent audio {item.audio_sha256} "
        f"({item.business_id} event #{item.event_seq}, kept until {item.kept_until:%Y-%m-%d})"
        for item in report.audio
    ]
    if report.audio_blocked:
        lines.append(f"consent audio left alone, the ledger is damaged: {report.audio_blocked}")
    outcome = "would be removed" if report.dry_run else "removed"
    lines.append(
        f"{len(report.transcripts)} transcripts and {len(report.audio)} consent audio files "
        f"{outcome}"
    )
    return "\n".join(lines)
