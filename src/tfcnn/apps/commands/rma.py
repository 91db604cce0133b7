"""`tfcnn rma`: RMA expression from .cel files (as Bioconductor's affy::rma), and the
approximate series-matrix path; see :mod:`tfcnn.io.rma` and :mod:`tfcnn.io.geo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ...errors import TfcnnInputError
from ..console import console, err_console, user_errors
from ..options import ForceOpt

SheetOpt = Annotated[
    str | None,
    typer.Option(
        "--sheet",
        help="Sample sheet giving the column order (GSM ids), e.g. atgenexpress-samples. "
        "Without it, every CEL file in --cel-dir, sorted by name.",
    ),
]


def _write(table, output: Path, force: bool) -> None:
    from ...io.atomic import atomic_path

    with atomic_path(output, force=force) as tmp:
        table.to_csv(tmp, sep="\t", float_format="%.6f")


def _list(items: list[str], limit: int = 8) -> str:
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


@user_errors
def rma_cmd(
    cel_dir: Annotated[Path, typer.Option("--cel-dir", help="Folder of .CEL[.gz] files.")],
    cdf: Annotated[
        Path, typer.Option("--cdf", help="The array's CDF in text format (e.g. ATH1-121501.CDF).")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Expression TSV to write (probesets x samples).")
    ],
    sheet: SheetOpt = None,
    skip_missing: Annotated[
        bool,
        typer.Option("--skip-missing", help="Leave out sheet rows whose CEL file is absent."),
    ] = False,
    force: ForceOpt = False,
) -> None:
    """RMA (background, quantile normalisation, median polish of log2 PM) from CEL files."""
    from ...io.affy import cel_files_in_folder, cel_files_in_sheet_order
    from ...io.atomic import check_writable
    from ...io.datasets import resolve_path
    from ...io.rma import rma

    check_writable(output, force)
    if sheet is not None:
        files, names, missing = cel_files_in_sheet_order(cel_dir, resolve_path(sheet))
        if missing and not skip_missing:
            raise TfcnnInputError(
                f"{len(missing)} sample(s) of the sheet have no CEL file in {cel_dir}: "
                f"{_list(missing)}. Fetch them (tfcnn fetch atgenexpress) or pass --skip-missing."
            )
        if missing:
            err_console.print(f"[yellow]left out[/] {len(missing)}: {escape(_list(missing))}")
    else:
        files, names = cel_files_in_folder(cel_dir)
    if not files:
        raise TfcnnInputError(f"no CEL files found in {cel_dir}.")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console.print(f"RMA of {len(files)} arrays with {escape(str(cdf))} ...")
    columns = (
        TextColumn("[bold]reading CEL files"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task("cel", total=len(files))
        table = rma(files, cdf, sample_names=names, on_file=lambda i, f: bar.advance(task))
    _write(table, output, force)
    console.print(
        f"{table.shape[0]:,} probesets x {table.shape[1]} samples (log2) written to "
        f"[bold]{escape(str(output))}[/]"
    )


@user_errors
def series_matrix_cmd(
    series: Annotated[
        list[Path], typer.Option("--series", help="GEO series-matrix file(s), .txt[.gz].")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Expression TSV to write.")],
    sheet: SheetOpt = None,
    force: ForceOpt = False,
) -> None:
    """APPROXIMATE matrix from GEO series-matrix files (log2 if needed + quantile norm.)."""
    from ...io.atomic import check_writable
    from ...io.datasets import resolve_path
    from ...io.geo import series_matrix_expression

    check_writable(output, force)
    table = series_matrix_expression(series, resolve_path(sheet) if sheet else None)
    err_console.print(f"[bold yellow]{escape(table.attrs['note'])}[/]")
    if table.attrs["missing"]:
        err_console.print(
            f"[yellow]not in the files[/] {len(table.attrs['missing'])}: "
            f"{escape(_list(table.attrs['missing']))}"
        )
    _write(table, output, force)
    console.print(
        f"{table.shape[0]:,} probes x {table.shape[1]} samples written to "
        f"[bold]{escape(str(output))}[/] (approximation; log2 applied: "
        f"{'yes' if table.attrs['log2_applied'] else 'no'})"
    )


def register(app: typer.Typer) -> None:
    """Add `tfcnn rma` and `tfcnn series-matrix` to the CLI."""
    app.command("rma")(rma_cmd)
    app.command("series-matrix")(series_matrix_cmd)
