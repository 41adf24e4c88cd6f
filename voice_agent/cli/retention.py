"""``receptionist retention apply [--dry-run]``: remove old transcripts and expired audio."""

from __future__ import annotations

import argparse
from typing import Any

from consent_ledger import AudioStore
from voice_agent.cli.support import open_database
from voice_agent.clock import system_clock
from voice_agent.records.retention import RetentionReport, apply_retention
from voice_agent.settings import Settings


def register(commands: Any) -> None:
    """Add the retention commands to the top-level sub-command parser."""
    retention = commands.add_parser("retention", help="data retention")
    retention_commands = retention.add_subparsers(dest="retention", required=True)
    apply = retention_commands.add_parser(
        "apply", help="delete old transcripts and consent audio past retention"
    )
    apply.add_argument(
        "--dry-run", action="store_true", help="show what would be removed; remove nothing"
    )
    apply.set_defaults(handler=cmd_retention_apply)


def cmd_retention_apply(settings: Settings, args: argparse.Namespace) -> int:
    engine = open_database(settings)
    try:
        report = apply_retention(
            engine, AudioStore(settings.audio_dir), system_clock(), dry_run=args.dry_run
        )
    finally:
        engine.dispose()
    print(render_retention(report))
    return 1 if report.audio_blocked else 0


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
