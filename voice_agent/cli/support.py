"""What every ``receptionist`` command shares: settings read on first use, the database opened at
the newest schema, errors said in one sentence, JSON output and the printed texts.

At module level this imports Click and the standard library only, like every command module:
``receptionist --help`` lists every command without loading a database driver, a web framework
or a vendor SDK. Each command imports what it works with when it runs.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from twilio.rest import Client

    from sms_sender import OutgoingSms, SendReceipt
    from voice_agent.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

SETTINGS_KEY = "voice_agent.cli.settings"
"""Where the root context's ``meta`` keeps the settings once read."""
VERBOSE_KEY = "voice_agent.cli.verbose"
"""Where the root context's ``meta`` keeps ``-v`` (debug logging, numbers in full)."""


class CommandError(click.ClickException):
    """A command that cannot do what was asked; the message says why (exit status 1)."""


class SettingsError(click.ClickException):
    """A setting in the environment or ``.env`` does not validate (exit status 2, like any other
    thing the operator must fix before the command can run)."""

    exit_code = 2


# --- settings ----------------------------------------------------------------------------------


def load_settings() -> Settings:
    """The operator's settings: those the caller passed as the root context's object (tests, an
    embedding program), else read from the environment and ``.env`` on first use."""
    root = click.get_current_context().find_root()
    if root.obj is not None:
        given: Settings = root.obj
        return given
    loaded: Settings | None = root.meta.get(SETTINGS_KEY)
    if loaded is None:
        from pydantic import ValidationError

        from voice_agent.settings import Settings

        try:
            loaded = Settings()
        except ValidationError as error:
            problems = "; ".join(_setting_problem(issue) for issue in error.errors())
            raise SettingsError(f"invalid settings: {problems}") from None
        root.meta[SETTINGS_KEY] = loaded
        if loaded.log_format == "json":  # LOG_FORMAT=json: the lines from here on are JSON
            from voice_agent.logging_setup import configure_logging

            configure_logging(root.meta.get(VERBOSE_KEY, False), json_lines=True)
    return loaded


def _setting_problem(issue: Any) -> str:
    message = str(issue["msg"]).removeprefix("Value error, ")
    where = ".".join(str(part) for part in issue["loc"]).upper()
    return f"{where}: {message}" if where and where not in message else message


def configured_database_url() -> str | None:
    """The database URL of this invocation, if its settings were read (for error messages)."""
    try:
        root = click.get_current_context().find_root()
    except RuntimeError:
        return None
    settings = root.obj if root.obj is not None else root.meta.get(SETTINGS_KEY)
    url = getattr(settings, "database_url", None)
    return url if isinstance(url, str) else None


# --- the Twilio account ------------------------------------------------------------------------

TWILIO_API_URL = "https://api.twilio.com"
TWILIO_MESSAGING_URL = "https://messaging.twilio.com"
_DEVELOPMENT_AUTH_TOKEN = "local-development-token"  # Settings' default: no account configured
_DEVELOPMENT_ACCOUNT_SID = "AC" + "0" * 32


def twilio_account_missing(settings: Settings) -> bool:
    """Whether the settings name no Twilio account (the development defaults, or no token)."""
    token = settings.twilio_auth_token.get_secret_value()
    return settings.twilio_account_sid == _DEVELOPMENT_ACCOUNT_SID or token in (
        "",
        _DEVELOPMENT_AUTH_TOKEN,
    )


def twilio_client(
    settings: Settings,
    what: str,
    *,
    api_base_url: str = TWILIO_API_URL,
    messaging_base_url: str = TWILIO_MESSAGING_URL,
) -> Client:
    """The ``twilio`` SDK's client for the configured account, its REST API at ``api_base_url``
    and its Messaging API at ``messaging_base_url`` (test servers in tests); a SettingsError when
    no account is configured, ``what`` naming what needs it. The SDK logs each request at INFO:
    shown only with ``-v``."""
    import logging

    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    if twilio_account_missing(settings):
        raise SettingsError(
            f"{what} needs your Twilio account: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        )
    http_log = logging.getLogger(f"{__name__}.twilio_http")
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        http_log.setLevel(logging.WARNING)
    client = Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        http_client=TwilioHttpClient(timeout=30, logger=http_log),
    )
    client.api.base_url = api_base_url.rstrip("/")
    client.messaging.base_url = messaging_base_url.rstrip("/")
    return client


@contextmanager
def talking_to_twilio(what: str) -> Iterator[None]:
    """Turn Twilio's refusal, or no answer, into one sentence: "Twilio refused ``what``: …"."""
    import requests
    from twilio.base.exceptions import TwilioException, TwilioRestException

    try:
        yield
    except TwilioRestException as error:
        raise CommandError(f"Twilio refused {what}: {error.code} {error.msg}") from None
    except TwilioException as error:  # a list page Twilio would not give: the HTTP answer
        answer = error.args[1] if len(error.args) > 1 else None
        status = getattr(answer, "status_code", None)
        if status is None:
            raise CommandError(f"Twilio could not be reached: {type(error).__name__}") from None
        hint = " (check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)" if status in (401, 403) else ""
        raise CommandError(f"Twilio refused {what}: HTTP {status}{hint}") from None
    except requests.RequestException as error:
        raise CommandError(f"Twilio could not be reached: {type(error).__name__}") from None


# --- the database ------------------------------------------------------------------------------


class Schema(Enum):
    """How far a database's schema is from the newest migration."""

    ABSENT = "absent"  # no migration was ever applied: nothing was recorded there
    OLDER = "older"  # migrations to apply (or an unknown state: Alembic decides)
    CURRENT = "current"


def open_database(settings: Settings) -> Engine:
    """The configured database at the newest schema: migrated first when it is not there yet (a
    fresh one is created). A database already at the newest schema is used without loading
    Alembic and the migrations."""
    engine = database_engine(settings.database_url)
    with opening(settings.database_url):
        state = schema_state(engine)
    if state is not Schema.CURRENT:
        migrate(settings.database_url)
    return engine


@contextmanager
def reading(settings: Settings) -> Iterator[Connection | None]:
    """A connection for a command that only reads, or None when nothing was ever recorded in the
    configured database (no SQLite file yet, or no schema): reading creates nothing. A database
    at an older schema is migrated first, as every command's is."""
    url = settings.database_url
    if missing_sqlite_file(url):
        yield None
        return
    engine = database_engine(url)
    try:
        with opening(url):
            state = schema_state(engine)
        if state is Schema.ABSENT:
            yield None
            return
        if state is Schema.OLDER:
            migrate(url)
        with opening(url):
            conn = engine.connect()
        with conn:
            yield conn
    finally:
        engine.dispose()


def migrate(database_url: str) -> None:
    """Bring the database to the newest schema with Alembic (loaded here, on first need)."""
    from alembic.util import CommandError as AlembicError

    from voice_agent.records.migrate import upgrade

    database_engine(database_url).dispose()  # a URL that cannot name a database, said plainly
    try:
        with opening(database_url):
            upgrade(database_url)
    except AlembicError as error:
        raise CommandError(
            f"the database at {shown_url(database_url)} cannot be migrated: {error}"
        ) from None


def schema_state(engine: Engine) -> Schema:
    """Whether the database holds the newest schema, read from Alembic's version table."""
    with engine.connect() as conn:
        if not conn.dialect.has_table(conn, "alembic_version"):
            return Schema.ABSENT
        applied = set(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())
    newest = newest_revisions()
    return Schema.CURRENT if newest is not None and applied == newest else Schema.OLDER


@functools.cache
def newest_revisions() -> frozenset[str] | None:
    """The head revisions of the shipped migrations, read from their files' ``revision`` and
    ``down_revision`` lines: the revisions no other revision comes after, as Alembic's ``heads``
    answers. None when a file cannot be read that way; then Alembic decides."""
    from importlib.resources import files

    revisions: set[str] = set()
    superseded: set[str] = set()
    versions = files("voice_agent.records") / "migrations" / "versions"
    for entry in versions.iterdir():
        if not entry.name.endswith(".py") or entry.name.startswith("__"):
            continue
        source = entry.read_text(encoding="utf-8")
        revision = _REVISION.search(source)
        down = _DOWN_REVISION.search(source)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        superseded.update(_QUOTED.findall(down.group(1)))
    heads = frozenset(revisions - superseded)
    return heads or None


_REVISION = re.compile(r"""^revision\b[^=\n]*=\s*["']([^"'\n]+)["']""", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=\n]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"""["']([^"'\n]+)["']""")


def database_engine(database_url: str, *, read_only: bool = False) -> Engine:
    """An engine for the URL; a URL that cannot name a database (unparsable, or a driver that is
    not installed) is refused in one sentence."""
    from voice_agent.records.database import make_engine

    try:
        with opening(database_url):
            return make_engine(database_url, read_only=read_only)
    except ImportError as error:
        raise CommandError(
            f"the database at {shown_url(database_url)} cannot be opened: {error}"
        ) from None


def missing_sqlite_file(database_url: str) -> bool:
    """Whether the URL names a SQLite file that does not exist (connecting would create it)."""
    match = re.match(r"sqlite(\+\w+)?:///(?P<path>[^?]+)", database_url)
    return match is not None and not Path(match.group("path")).exists()


@contextmanager
def opening(database_url: str) -> Iterator[None]:
    """Turn a failure to open or migrate the database into one sentence naming it."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SQLAlchemyError as error:
        raise CommandError(
            f"the database at {shown_url(database_url)} cannot be opened: {reason(error)}"
        ) from None


def database_failure(error: BaseException) -> CommandError | None:
    """A database error no command expected, as one sentence; None for any other error."""
    exc = sys.modules.get("sqlalchemy.exc")  # not loaded: no database was touched
    if exc is None or not isinstance(error, exc.SQLAlchemyError):
        return None
    url = configured_database_url()
    where = f"the database at {shown_url(url)}" if url else "the database"
    return CommandError(f"{where} failed: {reason(error)}")


def reason(error: BaseException) -> str:
    """The first line of what the database driver (or SQLAlchemy) said."""
    said = str(getattr(error, "orig", None) or error).strip()
    return said.splitlines()[0] if said else type(error).__name__


def shown_url(database_url: str) -> str:
    """The URL with any password hidden."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", database_url)


# --- businesses --------------------------------------------------------------------------------


def known_businesses(conn: Connection | None) -> set[str]:
    """The ids of the configured businesses (none when the database holds none)."""
    if conn is None or not conn.dialect.has_table(conn, "businesses"):
        return set()
    from sqlalchemy import select

    from voice_agent.records.tables import businesses

    return set(conn.execute(select(businesses.c.id)).scalars())


def require_business(
    conn: Connection | None, business_id: str | None, also: Collection[str] = ()
) -> None:
    """Refuse a business id that names no business (of the database, or ``also`` these), saying
    which ones there are: a mistyped id is an error, not an empty answer."""
    if business_id is None:
        return
    known = known_businesses(conn) | set(also)
    if business_id not in known:
        raise unknown_business(business_id, known)


def unknown_business(business_id: str, known: Collection[str]) -> CommandError:
    listed = ", ".join(sorted(known)) if known else "none"
    return CommandError(f"no business {business_id!r}; known: {listed}")


# --- parameters and output ---------------------------------------------------------------------


class Count(click.ParamType[int]):
    """A whole number of ``noun`` from 1 to ``most``, refusing anything else (a usage error)."""

    name = "count"

    def __init__(self, noun: str, most: int) -> None:
        self.noun = noun
        self.most = most

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            count = value
        else:
            try:
                count = int(value)
            except ValueError:
                self.fail(f"not a whole number of {self.noun}: {value!r}", param, ctx)
        if not 1 <= count <= self.most:
            self.fail(f"{self.noun} must be from 1 to {self.most}, got {count}", param, ctx)
        return count


def json_option(what: str) -> Callable[[F], F]:
    """The ``--json`` flag of a command whose output a program may read."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON.")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def print_text(sms: OutgoingSms, receipt: SendReceipt) -> None:
    """What the local SMS transport shows for each text it 'sends'."""
    print(f"[text {receipt.provider_message_id}] to {sms.to_number}: {sms.body}", flush=True)
