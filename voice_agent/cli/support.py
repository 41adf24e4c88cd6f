"""What every ``receptionist`` sub-command shares: errors, JSON output, the printed texts."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from sms_sender import OutgoingSms, SendReceipt
from voice_agent.records.database import make_engine
from voice_agent.records.migrate import upgrade
from voice_agent.settings import Settings


class CommandError(Exception):
    """A command that cannot do what was asked; the message says why (exit status 1)."""


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def print_text(sms: OutgoingSms, receipt: SendReceipt) -> None:
    """What the local SMS transport shows for each text it 'sends'."""
    print(f"[text {receipt.provider_message_id}] to {sms.to_number}: {sms.body}", flush=True)


def open_database(settings: Settings) -> Engine:
    """The configured database, migrated to the newest schema first (a fresh one is created)."""
    upgrade(settings.database_url)
    return make_engine(settings.database_url)


def counted(noun: str, most: int) -> Callable[[str], int]:
    """An argparse type for a count of ``noun`` from 1 to ``most``, refusing anything else."""

    def parse(raw: str) -> int:
        try:
            count = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number of {noun}: {raw!r}") from None
        if not 1 <= count <= most:
            raise argparse.ArgumentTypeError(f"{noun} must be from 1 to {most}, got {count}")
        return count

    return parse
