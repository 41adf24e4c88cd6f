"""Running the ``receptionist`` command in tests: Click's test runner on the real root group, so
a test sees exactly what a person sees (standard output, standard error, the exit status)."""

from __future__ import annotations

from click.testing import CliRunner, Result

from voice_agent.cli.main import cli
from voice_agent.settings import Settings


def receptionist(*argv: str, settings: Settings | None = None) -> Result:
    """Run ``receptionist ARGV``; with ``settings``, on those instead of the environment's.

    An exception the command did not turn into an exit status propagates (a traceback is a bug).
    """
    return CliRunner().invoke(cli, list(argv), obj=settings, catch_exceptions=False)
