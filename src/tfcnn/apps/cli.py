"""The `tfcnn` command line: the app, its global options, and the list of command modules.

Each module of :mod:`tfcnn.apps.commands` defines its commands as plain functions and
adds them in ``register(app)``; shared options live in :mod:`tfcnn.apps.options`, the
consoles and the bad-input handler (exit code 2) in :mod:`tfcnn.apps.console`.
"""

from __future__ import annotations

import gc
import importlib
from typing import Annotated

import typer

from .. import __version__
from .console import console, setup_logging

app = typer.Typer(
    name="tfcnn",
    help="Predict transcription factor -> target regulation from expression profiles "
    "with a small pair CNN (MacLean 2019), and evaluate it honestly.",
    no_args_is_help=True,
    add_completion=True,  # tfcnn --install-completion / --show-completion
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    # Eager, so `tfcnn --version` works without a command (a callback body would not run).
    if value:
        console.print(f"tfcnn {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show progress notes.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    setup_logging(verbose)


#: Command modules, in the order their commands are listed by ``tfcnn --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "pipeline",
    "models",
    "predict",
    "expand",
    "serve",
    "scan",
    "explain",
    "study",
    "fetch",
    "rma",
)
for _module in COMMAND_MODULES:
    importlib.import_module(f"{__package__}.commands.{_module}").register(app)


def main() -> None:
    """Console-script entry point."""
    from ..runtime import keep_freed_memory

    keep_freed_memory()  # training and scanning reuse large buffers: see tfcnn.runtime
    try:
        app()
    finally:
        # The command is done and has closed its files. Freezing spares the interpreter's
        # shutdown a garbage collection over every object of torch, scipy and the rest:
        # 1.3 s of a `tfcnn scan` (measured; see docs/engine.md). Exit handlers still run.
        gc.freeze()


if __name__ == "__main__":
    main()
