"""What every ``hacs`` command shares: consoles, exit codes, the database option, error handling.

Errors end a command with one line on stderr (never a traceback, never a password) and one of the
exit codes of :class:`ExitCode`. ``--database-url`` refuses a URL with a password: a command line
is visible to every user of the machine in the process list (``ps``, ``/proc/PID/cmdline``).

The persistence library (SQLAlchemy, asyncpg, Alembic, the models) is imported by the functions
that use it, when a command runs: ``hacs --help`` and a usage error start without it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text
from typer.exceptions import TyperException

if TYPE_CHECKING:
    from hacs_persistence.db.engine import ResolvedDatabase

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "PASSWORD_IN_ARGV",
    "CliState",
    "DatabaseUnreachable",
    "DatabaseUrlOption",
    "ExitCode",
    "JsonOption",
    "check_configuration",
    "cli_errors",
    "command_group",
    "console",
    "database_url",
    "err_console",
    "fail",
    "output_closed",
    "preflight",
    "redact",
    "run",
    "source_label",
]

T = TypeVar("T")

# highlight=False: no colouring of numbers and paths guessed by Rich; the output stays plain text
# when it is not a terminal (pipes, CI, tests).
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

# The default of HACS_DB_CONNECT_TIMEOUT (asyncpg's own is 60 s), which every connection uses.
CONNECT_TIMEOUT_SECONDS = 10


class ExitCode(IntEnum):
    """Exit codes of every ``hacs`` command."""

    OK = 0
    FAILED = 1  # a check failed (drift, schema not at head) or an operation failed
    USAGE = 2  # bad command line, invalid database URL or HACS_DB_* setting
    UNREACHABLE = 3  # cannot connect: server down, refused, authentication, unknown database
    INTERRUPTED = 130  # Ctrl-C (SIGINT), as a shell reports a process it interrupted
    # The reader of stdout went away (`hacs ... | head`): 128 + SIGPIPE, what a shell reports
    # for a program a closed pipe stopped. Not 0: the output was not all delivered.
    BROKEN_PIPE = 141


@dataclass
class CliState:
    """Options of the ``hacs`` callback, handed to every command through the Click context."""

    database_url: str | None = None

    def __repr__(self) -> str:
        from hacs_persistence.db.config import mask_url

        return f"CliState(database_url={mask_url(self.database_url)!r})"


PASSWORD_IN_ARGV = (
    "a URL with a password is refused, because every user of this machine can read a command "
    "line in the process list. Give the URL without it (postgresql://user@host/db) and put the "
    "password in a file named by HACS_DB_PASSWORD_FILE, or in ~/.pgpass (PGPASSFILE); or pass "
    "the whole URL in the DATABASE_URL environment variable or a .env file instead."
)


EMPTY_URL = (
    "the URL is empty. Give a PostgreSQL URL, or leave the option out to use DATABASE_URL, "
    "HACS_DATABASE_URL or .env (else the embedded server)."
)


def _refuse_password(value: str | None) -> str | None:
    # A Click callback: it runs while the command line is parsed, before anything connects
    # (also without the option, with None: that case must not import the library).
    if value is not None and not value.strip():
        # `--database-url "$UNSET_VARIABLE"`: never fall back silently to the embedded server.
        raise typer.BadParameter(EMPTY_URL)
    if value:
        from hacs_persistence.db.config import url_has_password

        if url_has_password(value):
            raise typer.BadParameter(PASSWORD_IN_ARGV)
    return value


JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def command_group(name: str, help: str) -> tuple[typer.Typer, Callable[[typer.Typer], None]]:
    """A `hacs NAME ...` group with the CLI's settings, and the ``register`` that adds it."""
    group = typer.Typer(name=name, help=help, no_args_is_help=True, rich_markup_mode="markdown")

    def register(root: typer.Typer) -> None:
        root.add_typer(group, name=name)

    register.__doc__ = f"Add `hacs {name} ...` to the root application."
    return group, register


DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        show_default=False,
        callback=_refuse_password,
        help=(
            "PostgreSQL URL without a password; overrides DATABASE_URL, HACS_DATABASE_URL and "
            ".env (default: those, else the embedded server). A URL with a password is refused "
            "(the process list shows it): use HACS_DB_PASSWORD_FILE, ~/.pgpass or DATABASE_URL."
        ),
    ),
]


def database_url(ctx: typer.Context, local: str | None) -> str | None:
    """The URL for this command: its own ``--database-url``, else the global one, else None."""
    if local:
        return local
    state = ctx.find_object(CliState)
    return state.database_url if state is not None else None


# SQLAlchemy's "(Background on this error at: https://sqlalche.me/...)" adds nothing for a user.
_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")


def redact(message: str, url: str | None = None) -> str:
    """Mask ``url`` (and any other URL or ``password=`` in the text) in a message.

    Without ``url``, the configured one (``DATABASE_URL``, ``HACS_DATABASE_URL``, ``.env``) is used.
    Masking works on the parsed URL (``hacs_persistence.db.config.redact``), never by replacing
    the password's text.
    """
    from hacs_persistence.db.config import redact as redact_urls
    from hacs_persistence.db.config import resolve_database_url
    from hacs_persistence.errors import ConfigurationError

    if not url:
        try:
            url = resolve_database_url(None)[0]
        except ConfigurationError:
            url = None
    return redact_urls(message, url)


def fail(message: str, code: ExitCode = ExitCode.FAILED, url: str | None = None) -> NoReturn:
    """Print ``Error: message`` on stderr (password hidden) and exit with ``code``."""
    message = _BACKGROUND.sub("", " ".join(message.split()))
    # One "Error: " per line, however the message was put together.
    while message.startswith("Error: "):
        message = message.removeprefix("Error: ")
    line = Text("Error: ", style="bold red")
    line.append(redact(message, url))
    err_console.print(line, soft_wrap=True)
    raise typer.Exit(int(code))


class DatabaseUnreachable(Exception):
    """The database could not be connected to; the message is already masked."""


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one async library call to completion on a fresh event loop."""
    import asyncio

    return asyncio.run(coroutine)


def check_configuration(url: str | None) -> None:
    """Validate settings and URL without connecting; raises ``ConfigurationError``."""
    from hacs_persistence.db.config import (
        build_connection_target,
        load_settings,
        resolve_database_url,
    )
    from hacs_persistence.schema.vectors import configured_vector_dim

    settings = load_settings()
    configured_vector_dim()
    resolved_url, _source = resolve_database_url(url)
    if resolved_url is not None:
        build_connection_target(resolved_url, settings)


async def preflight(url: str | None) -> ResolvedDatabase:
    """Resolve the database (starting the embedded one if needed) and open one connection."""
    from sqlalchemy import text

    from hacs_persistence.db.config import mask_url
    from hacs_persistence.db.engine import describe_failure, one_off_connection, resolve_database
    from hacs_persistence.errors import ConfigurationError

    resolved: ResolvedDatabase | None = None
    try:
        resolved = await resolve_database(url)
        # Waits at most HACS_DB_CONNECT_TIMEOUT; its errors name the server and the setting.
        async with one_off_connection(resolved) as conn:
            await conn.execute(text("SELECT 1"))
    except ConfigurationError:
        raise
    except Exception as exc:
        where = resolved.target.masked if resolved else mask_url(url)
        detail = describe_failure(exc, resolved)
        raise DatabaseUnreachable(f"Cannot connect to the database at {where}: {detail}") from None
    return resolved


def _exception_text(exc: BaseException) -> str:
    # SQLAlchemy wraps driver errors; the driver's own message is the useful part.
    original = getattr(exc, "orig", None) or exc
    message = _BACKGROUND.sub("", str(original)).strip()
    return f"{type(original).__name__}: {message}" if message else type(original).__name__


def source_label(source: str) -> str:
    """Where the URL came from, in the CLI's words (``argument`` is the option)."""
    return "--database-url option" if source == "argument" else source


def output_closed() -> NoReturn:
    """End the command quietly because stdout's reader closed it (``hacs ... | head -1``).

    As the Python documentation recommends for ``BrokenPipeError``: point stdout at devnull, so
    that flushing it at exit does not fail again, and exit (with ``ExitCode.BROKEN_PIPE``).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # a stdout without a file descriptor (a test runner's buffer) needs no redirect
    finally:
        os.close(devnull)
    raise typer.Exit(int(ExitCode.BROKEN_PIPE))


@contextmanager
def cli_errors(url: str | None) -> Iterator[None]:
    """Turn any exception of a command into a one-line message and an exit code."""
    from hacs_persistence.errors import (
        DRIVER_ERRORS,
        ConfigurationError,
        DatabaseUnavailableError,
        HacsPersistenceError,
        OutcomeUnknownError,
        translate_database_error,
    )

    try:
        yield
    except (typer.Exit, typer.Abort, TyperException):
        raise
    except BrokenPipeError:
        output_closed()
    except ConfigurationError as exc:
        fail(str(exc), ExitCode.USAGE, url)
    except DatabaseUnreachable as exc:
        fail(str(exc), ExitCode.UNREACHABLE, url)
    except OutcomeUnknownError as exc:
        fail(str(exc), ExitCode.FAILED, url)
    except DatabaseUnavailableError as exc:
        fail(str(exc), ExitCode.UNREACHABLE, url)
    except HacsPersistenceError as exc:
        fail(str(exc), ExitCode.FAILED, url)
    except KeyboardInterrupt:
        # The interrupted connection attempt leaves a future whose error nobody will read;
        # asyncio would report it on stderr at exit ("Future exception was never retrieved").
        logging.getLogger("asyncio").disabled = True
        fail("Interrupted.", ExitCode.INTERRUPTED, url)
    except DRIVER_ERRORS as exc:
        # A driver error that no library call translated (SQL the CLI runs itself).
        fail(str(translate_database_error(exc)), ExitCode.FAILED, url)
    except Exception as exc:
        fail(f"Unexpected {_exception_text(exc)}", ExitCode.FAILED, url)
