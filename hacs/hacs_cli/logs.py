"""The log output of the ``hacs`` command: none by default, ``-v`` INFO, ``-vv`` DEBUG, on stderr.

The libraries log through a ``NullHandler`` (they print nothing by themselves); a command
reports its outcome in its own words, so by default no log record is shown. ``-v`` shows the
libraries' INFO records (expected outcomes such as a resource not found, Alembic's
``Running upgrade 0006 -> 0007``), ``-vv`` their DEBUG records too (every operation and its
duration). Records never hold resource content or passwords (see ``ops/observability.py``).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

__all__ = ["LOGGERS", "configure_logging"]

# The loggers the command shows: the hacs packages, Alembic (its migration steps) and asyncio.
LOGGERS = (
    "hacs_models",
    "hacs_auth",
    "hacs_persistence",
    "hacs_tools",
    "hacs_cli",
    "alembic",
    "asyncio",
)
# asyncio has no handler of its own, so without one its records reach logging.lastResort and
# are printed: e.g. CPython 3.11's "Exception in callback _sock_connect_cb ... InvalidStateError"
# when Ctrl-C cancels a connection attempt, under the command's own "Interrupted.".
_quiet = logging.NullHandler()


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to ``sys.stderr`` as it is when a record comes (as ``logging.lastResort`` does):
    a test runner swaps it for each invocation and closes the old one."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass  # always the current sys.stderr


_handler = _StderrHandler()
_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))


def configure_logging(verbosity: int) -> None:
    """Show log records on stderr: none for 0, INFO for 1, DEBUG for 2 or more.

    Idempotent: one invocation after another in the same process (tests) replaces the
    previous setting instead of adding handlers.
    """
    level = logging.DEBUG if verbosity >= 2 else logging.INFO
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if verbosity > 0:
            logger.setLevel(level)
            if _handler not in logger.handlers:
                logger.addHandler(_handler)
            # Shown here once; the root logger of an embedding application is left alone.
            logger.propagate = False
            logger.removeHandler(_quiet)
        else:
            logger.setLevel(logging.NOTSET)
            logger.removeHandler(_handler)
            logger.propagate = True
            if name == "asyncio" and _quiet not in logger.handlers:
                logger.addHandler(_quiet)
