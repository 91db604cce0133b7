"""What every command shares: the consoles, logging, and the one bad-input handler.

Library errors name the parameter a user must change in backticks (`id_map`);
:func:`print_error` shows it as the command-line flag (``--id-map``).
"""

from __future__ import annotations

import errno
import functools
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from ..errors import TfcnnInputError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])
_PARAMETER = re.compile(r"`([a-z][a-z0-9_]*)`")


class _FlagsFilter(logging.Filter):
    """Library warnings name parameters in backticks: show them as command-line flags."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = as_flags(record.getMessage())
        record.args = None
        return True


def setup_logging(verbose: bool) -> None:
    """Warnings (and with ``verbose``, progress notes) of the library on standard error."""
    logger = logging.getLogger("tfcnn")
    logger.handlers.clear()
    handler = RichHandler(console=err_console, show_time=False, show_path=False)
    handler.addFilter(_FlagsFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False


def as_flags(message: str) -> str:
    """A library message with its `parameter` names written as command-line flags."""
    return _PARAMETER.sub(lambda m: "--" + m.group(1).replace("_", "-"), message)


def user_errors(func: F) -> F:
    """Turn bad-input errors into a clear message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TfcnnInputError as exc:
            print_error(str(exc))
            raise typer.Exit(code=2) from None
        except OSError as exc:
            # A path the system refuses (unreadable file, output under a regular file, no
            # permission, disk full): the user's to fix, so no traceback either.
            where = f"{exc.filename}: " if exc.filename else ""
            advice = (
                "free some space (or allow larger files) and run it again."
                if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
                else "check the path and its permissions."
            )
            print_error(f"{where}{exc.strerror or exc}; {advice}")
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def print_error(message: str) -> None:
    """One ``error:`` paragraph on standard error."""
    # The message holds user text (paths, IDs): escape it, or '[...]' is read as markup.
    err_console.print(
        f"[bold red]error:[/] {escape(as_flags(message))}", highlight=False, soft_wrap=True
    )
