"""The ``receptionist`` command: the root group, its lazily loaded command groups, and ``main``.

Each command group lives in a module of its own, named here as "module:attribute" and imported
only when that command runs (or when ``--help`` lists it; the command modules import Click and
nothing heavy at module level). Exit statuses: 0 done, 1 a failure found or a command that cannot
do what was asked, 2 bad usage (or invalid settings), 130 interrupted. An error is one sentence
on standard error, never a traceback.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import click

from voice_agent.cli.support import database_failure

COMMANDS: dict[str, str] = {
    "serve": "voice_agent.cli.serve:serve",
    "demo": "voice_agent.cli.demo:demo",
    "simulate": "voice_agent.cli.simulate:simulate",
    "calls": "voice_agent.cli.calls:calls",
    "outbox": "voice_agent.cli.texts:outbox",
    "worker": "voice_agent.cli.texts:worker",
    "sms": "voice_agent.cli.texts:sms",
    "ledger": "voice_agent.cli.ledger:ledger",
    "retention": "voice_agent.cli.retention:retention",
    "owner": "voice_agent.cli.tokens:owner",
    "auditor": "voice_agent.cli.tokens:auditor",
    "business": "voice_agent.cli.business:business",
    "campaign": "voice_agent.cli.campaign:campaign",
    "db": "voice_agent.cli.db:db",
    "twilio": "voice_agent.cli.twilio_setup:twilio",
    "doctor": "voice_agent.cli.doctor:doctor",
}
"""Every top-level command and where it is defined, in the order ``--help`` lists them."""


class LazyGroup(click.Group):
    """A group whose sub-commands are named "module:attribute" and imported on first use
    (Click's documented pattern for lazily loaded sub-commands)."""

    def __init__(
        self, *args: Any, lazy_subcommands: Mapping[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        eager = [name for name in super().list_commands(ctx) if name not in self.lazy_subcommands]
        return [*self.lazy_subcommands, *eager]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command:
        module_name, attribute = self.lazy_subcommands[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_subcommands[cmd_name]} is not a Click command")
        return command


class ReceptionistGroup(LazyGroup):
    """The root group: a database error no command expected becomes one sentence (exit 1), and
    an interruption ends the command with status 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None
        except Exception as error:
            failure = database_failure(error)
            if failure is None:
                raise
            raise failure from None


@click.group(
    name="receptionist",
    cls=ReceptionistGroup,
    lazy_subcommands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
def cli(verbose: bool) -> None:
    """The AI voice receptionist: answers missed calls, takes the message, records the caller's
    spoken SMS consent as evidence, and sends only the texts it allows.

    Settings come from the environment or .env (see .env.example). Exit status: 0 done, 1 a
    failure found or a command that cannot do what was asked, 2 bad usage.
    """
    from voice_agent.cli.support import VERBOSE_KEY
    from voice_agent.logging_setup import configure_logging

    click.get_current_context().meta[VERBOSE_KEY] = verbose
    configure_logging(verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``receptionist`` with ``argv`` (default: the command line) and return its exit status."""
    try:
        cli.main(args=None if argv is None else list(argv), prog_name="receptionist")
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        click.echo(f"Error: {exit_.code}", err=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
