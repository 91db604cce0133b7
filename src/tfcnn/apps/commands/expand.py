"""`tfcnn expand`: regulon expansion for a TF seen in training (docs/pair_model.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..console import console, err_console, user_errors
from ..options import ForceOpt

_SHOWN = 20


def expand_cmd(
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="Model directory or registered name (see 'tfcnn models')."
        ),
    ],
    tf: Annotated[
        str, typer.Option("--tf", help="A TF of the model's training pairs (e.g. AT1G01010).")
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the ranked genes here, by extension: .csv, .tsv (also .gz), .parquet "
            "or .xlsx. Default: CSV on standard output.",
        ),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            help="combined (mean percentile of the parts, default), embedding (two-tower), "
            "coexpression or model."
        ),
    ] = "combined",
    min_known: Annotated[
        int, typer.Option(help="Fewest known training targets the TF must have.")
    ] = 5,
    force: ForceOpt = False,
) -> None:
    """Rank the other genes by their likeness to a seen TF's known targets."""
    from ...api import expand
    from ...io.atomic import check_writable
    from ...io.tables import output_format, to_text

    if output is not None:
        output_format(output)  # an unknown extension is refused before any work
        check_writable(output, force)
    result = expand(model, tf, method=method, min_known=min_known, output=output, force=force)
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    if output is None:
        sys.stdout.write(to_text(result.table, "csv"))
        sys.stdout.flush()
        return
    top = ", ".join(result.table["gene"].head(_SHOWN).astype(str))
    console.print(
        f"{len(result.table):,} genes ranked for {escape(result.tf)} ({result.method}); "
        f"top {min(_SHOWN, len(result.table))}: {escape(top)}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"Table written to [bold]{escape(str(output))}[/]")


def register(app: typer.Typer) -> None:
    """Add `tfcnn expand` to the CLI."""
    app.command("expand")(user_errors(expand_cmd))
