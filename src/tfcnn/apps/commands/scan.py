"""`tfcnn scan`: score every TF x target pair with a trained model into a Parquet file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..console import console, err_console, user_errors
from ..options import ForceOpt, Log2Opt, ModelOpt


def scan(
    model: ModelOpt,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Parquet file to write (tf, target, probability)."),
    ],
    expression: Annotated[
        str | None,
        typer.Option(
            "--expression",
            "-x",
            help="Matrix to score (default: the model's own z-scored training matrix).",
        ),
    ] = None,
    tfs: Annotated[
        str | None,
        typer.Option(
            help="TF IDs: a file (one per line, or separated by commas or spaces) or the IDs "
            "themselves (default: the genes that are TFs in the bundled tf-list when IDs are "
            "AGI codes, else all genes)."
        ),
    ] = None,
    targets: Annotated[
        str | None,
        typer.Option(help="Target IDs: a file or the IDs themselves (default: all genes)."),
    ] = None,
    min_prob: Annotated[
        float | None, typer.Option("--min-prob", help="Keep only pairs with p >= this.")
    ] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="Keep only the k best targets of each TF.")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Run on dask.distributed: 'local' (a local cluster) or a scheduler "
            "address such as tcp://host:8786. Needs the dask extra."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Blocks scored at once (threads, or local dask workers)."),
    ] = None,
    block_tfs: Annotated[
        int, typer.Option("--block-tfs", help="TFs per block (the unit of resumption).")
    ] = 32,
    log2: Log2Opt = False,
    force: ForceOpt = False,
) -> None:
    """Score every TF x target pair; resumable: rerun the same command after a stop."""
    from ...api import load_model
    from ...inference.scan import DEFAULT_BLOCK_TFS, check_options, scan_inputs, work_dir_for
    from ...inference.scan import scan as run_scan
    from ...io.atomic import check_writable

    check_writable(output, force)
    block_tfs = block_tfs or DEFAULT_BLOCK_TFS
    check_options(min_prob, top_k, workers, block_tfs)
    est = load_model(model)
    inputs = scan_inputs(est, expression, tfs=tfs, targets=targets, log2=log2, name=str(model))
    for note in inputs.matrix.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    if inputs.tf_note:
        console.print(f"TFs: {escape(inputs.tf_note)}", highlight=False)
    total = inputs.n_pairs
    if work_dir_for(output).exists():
        console.print(f"Resuming from {escape(str(work_dir_for(output)))}", highlight=False)
    columns = (
        TextColumn("[bold]scanning"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} pairs"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    start = time.perf_counter()
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task("scan", total=total, rate="")
        done = [0, 0]  # pairs done, of which scored in this run

        def on_block(pairs: int, resumed: bool) -> None:
            done[0] += pairs
            if not resumed:
                done[1] += pairs
            rate = done[1] / max(time.perf_counter() - start, 1e-9)
            bar.update(task, completed=done[0], rate=f"{rate:,.0f} pairs/s")

        result = run_scan(
            est.network_,
            inputs.matrix.zscores,
            inputs.matrix.genes,
            output,
            tfs=inputs.tfs,
            targets=inputs.targets,
            min_prob=min_prob,
            top_k=top_k,
            block_tfs=block_tfs,
            scheduler=scheduler,
            workers=workers,
            force=force,
            on_block=on_block,
        )
    scored = result.pairs
    console.print(
        f"{scored:,} pairs scored in {result.seconds:,.1f} s "
        f"({result.blocks_resumed} of {result.blocks} blocks resumed from an earlier run); "
        f"{result.rows:,} rows written to [bold]{escape(str(result.output))}[/]",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add `tfcnn scan` to the CLI."""
    app.command("scan")(user_errors(scan))
