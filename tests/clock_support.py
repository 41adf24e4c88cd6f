"""A clock for tests that move time by hand (the owner's dashboard, the audit routes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class SteppingClock:
    """A clock the test moves by hand."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now
