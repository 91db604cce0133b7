"""`tfcnn scan`: score every TF x target pair with a trained model (or cross-fitted models)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ...errors import TfcnnInputError
from ..console import console, err_console, user_errors
from ..options import (
    EngineOpt,
    EvidenceOpt,
    ForceOpt,
    IdMapOpt,
    LayerOpt,
    LayoutOpt,
    Log2Opt,
    NegativesOpt,
    OrderByOpt,
    PseudobulkOpt,
    SeedOpt,
    TransposeOpt,
    check_choice,
    csv_list,
    expression_options,
)


def scan(
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Table to write, by extension: .parquet, .csv, .tsv (also .gz), .xlsx (when "
            "the rows fit). Columns: see --layout.",
        ),
    ],
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", help="Model directory (or use --cross-fit)."),
    ] = None,
    expression: Annotated[
        str | None,
        typer.Option(
            "--expression",
            "-x",
            help="Matrix to score (default: the model's own z-scored training matrix). With "
            "--cross-fit: the matrix to train on and scan.",
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
    layout: LayoutOpt = "tfcnn",
    cross_fit: Annotated[
        int | None,
        typer.Option(
            "--cross-fit",
            min=2,
            help="Train this many models on TF-grouped folds of --interactions and score each "
            "TF only with the model that never saw it (a 'fold' column says which), so the "
            "edge list can be benchmarked against the same known pairs without leakage.",
        ),
    ] = None,
    interactions: Annotated[
        str | None,
        typer.Option("--interactions", "-i", help="With --cross-fit: the known pairs."),
    ] = None,
    id_map: IdMapOpt = None,
    evidence: EvidenceOpt = None,
    negatives: NegativesOpt = "tf-matched",
    epochs: Annotated[int, typer.Option(help="With --cross-fit: training epochs per model.")] = 30,
    seed: SeedOpt = 0,
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
    engine: EngineOpt = "auto",
    log2: Log2Opt = False,
    transpose: TransposeOpt = False,
    layer: LayerOpt = None,
    pseudobulk: PseudobulkOpt = None,
    order_by: OrderByOpt = None,
    force: ForceOpt = False,
) -> None:
    """Score every TF x target pair; resumable: rerun the same command after a stop."""
    from ...inference.scan import DEFAULT_BLOCK_TFS, check_options, work_dir_for
    from ...io.atomic import check_writable
    from ...io.tables import output_format

    check_writable(output, force)
    output_format(output, layout)  # an unknown extension or layout is refused before work
    from ...inference.fused import ENGINES

    block_tfs = block_tfs or DEFAULT_BLOCK_TFS
    check_options(min_prob, top_k, workers, block_tfs)
    check_choice(engine, ENGINES, "--engine")
    read = expression_options(transpose, layer, pseudobulk, order_by)
    if work_dir_for(output).exists():
        console.print(f"Resuming from {escape(str(work_dir_for(output)))}", highlight=False)
    common: dict[str, Any] = dict(
        tfs=tfs,
        targets=targets,
        min_prob=min_prob,
        top_k=top_k,
        layout=layout,
        block_tfs=block_tfs,
        workers=workers,
        force=force,
        engine=engine,
    )
    if cross_fit is not None:
        if model is not None or scheduler is not None:
            raise TfcnnInputError(
                "--cross-fit trains its own models and scans locally: drop --model and --scheduler."
            )
        if expression is None or interactions is None:
            raise TfcnnInputError("--cross-fit needs --expression and --interactions.")
        _cross_fit(
            cross_fit,
            expression,
            interactions,
            id_map,
            evidence,
            negatives,
            epochs,
            seed,
            log2,
            read,
            output,
            common,
        )
        return
    if model is None:
        raise TfcnnInputError(
            "give --model, or --cross-fit K with --expression and --interactions."
        )
    for flag, value in (
        ("--interactions", interactions),
        ("--id-map", id_map),
        ("--evidence", evidence),
    ):
        if value is not None:
            raise TfcnnInputError(f"{flag} is used with --cross-fit only.")
    _scan_model(model, expression, log2, read, scheduler, output, common)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]scanning"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} pairs"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
    )


def _counter(bar: Progress, task: Any) -> Any:
    """A scan's block callback that moves the bar: pairs done, and pairs/s scored now."""
    start = time.perf_counter()
    done = [0, 0]  # pairs done, of which scored in this run

    def on_block(pairs: int, resumed: bool) -> None:
        done[0] += pairs
        if not resumed:
            done[1] += pairs
        rate = done[1] / max(time.perf_counter() - start, 1e-9)
        bar.update(task, completed=done[0], rate=f"{rate:,.0f} pairs/s")

    return on_block


def _scan_model(
    model: Path,
    expression: str | None,
    log2: bool,
    read: dict[str, Any],
    scheduler: str | None,
    output: Path,
    common: dict[str, Any],
) -> None:
    from ...evaluation.card import card_line
    from ...inference.scan import load_scan_model, scan_inputs
    from ...inference.scan import scan as run_scan
    from ...io.expression import load_expression

    est = load_scan_model(model, common["engine"])
    err_console.print(
        f"[yellow]note:[/] {escape(str(model))}: {escape(card_line(est.record_.evaluation))}. "
        "Compare a scan's probabilities within a TF (or a target), not across TFs: a TF the "
        "model recognises scores most genes high whatever the pair.",
        highlight=False,
        soft_wrap=True,
    )
    matrix: Any = expression
    if expression is not None and any(v for v in read.values()):
        matrix = load_expression(expression, log2=log2, **read)
        log2 = False
    inputs = scan_inputs(
        est,
        matrix,
        tfs=common.pop("tfs"),
        targets=common.pop("targets"),
        log2=log2,
        name=str(model),
    )
    for note in inputs.matrix.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    if inputs.tf_note:
        console.print(f"TFs: {escape(inputs.tf_note)}", highlight=False)
    with _progress() as bar:
        task = bar.add_task("scan", total=inputs.n_pairs, rate="")
        result = run_scan(
            est.network_,
            inputs.matrix.zscores,
            inputs.matrix.genes,
            output,
            tfs=inputs.tfs,
            targets=inputs.targets,
            scheduler=scheduler,
            on_block=_counter(bar, task),
            **common,
        )
    console.print(
        f"{result.pairs:,} pairs scored in {result.seconds:,.1f} s "
        f"by the {result.engine} engine ({result.blocks_resumed} of {result.blocks} blocks "
        "resumed from an earlier run); "
        f"{result.rows:,} rows written to [bold]{escape(str(result.output))}[/]",
        highlight=False,
    )


def _cross_fit(
    n_folds: int,
    expression: str,
    interactions: str,
    id_map: str | None,
    evidence: str | None,
    negatives: str,
    epochs: int,
    seed: int,
    log2: bool,
    read: dict[str, Any],
    output: Path,
    common: dict[str, Any],
) -> None:
    from ...inference.scan import cross_fit_scan
    from ...pairs import NEGATIVE_STRATEGIES
    from ...runtime import default_threads, torch_threads

    check_choice(negatives, NEGATIVE_STRATEGIES, "--negatives")
    if epochs < 1:
        raise TfcnnInputError("--epochs must be >= 1.")

    def on_fold(k: int, stage: str) -> None:
        err_console.print(f"fold {k + 1} of {n_folds}: {stage}", highlight=False)

    with torch_threads(default_threads(None), blas=True):
        result = cross_fit_scan(
            expression,
            interactions,
            output,
            n_folds,
            id_map=id_map,
            evidence=csv_list(evidence),
            negatives=negatives,
            seed=seed,
            log2=log2,
            read=read,
            train={"epochs": epochs},
            on_fold=on_fold,
            **common,
        )
    for f in result.folds:
        auroc = "n/a" if f.test_auroc is None else f"{f.test_auroc:.3f}"
        console.print(
            f"fold {f.fold}: {f.tfs:,} TFs scored ({f.held_out_tfs:,} held out of its "
            f"training, with known pairs); its AUROC on their known pairs {auroc}"
            + (" (model resumed)" if f.resumed else ""),
            highlight=False,
        )
    if result.unseen_tfs:
        console.print(
            f"{result.unseen_tfs:,} TFs have no known pair (no model saw them): dealt to the "
            "folds in turn.",
            highlight=False,
        )
    console.print(
        f"{result.pairs:,} pairs scored in {result.seconds:,.1f} s; {result.rows:,} rows "
        f"written to [bold]{escape(str(result.output))}[/] (column 'fold': the model that "
        "scored each row)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add `tfcnn scan` to the CLI."""
    app.command("scan")(user_errors(scan))
