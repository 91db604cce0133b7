"""`tfcnn scan`: score every TF x target pair with a trained model into a Parquet file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ...errors import TfcnnInputError
from ..console import console, err_console, user_errors
from ..options import ForceOpt, Log2Opt, ModelOpt


def read_id_list(path: Path, what: str) -> list[str]:
    """IDs from a text file: one per line (first tab/comma field); '#' lines and blanks skipped."""
    return [i for i, _ in _read_id_lines(path, what)]


def _read_id_lines(path: Path, what: str) -> list[tuple[str, int]]:
    """(ID, line number) of each ID of an ID list file (see :func:`read_id_list`)."""
    from ...io.datasets import resolve_path
    from ...io.expression import load_text
    from ...io.ids import normalize_id

    path = resolve_path(str(path))
    if not path.is_file():
        raise TfcnnInputError(f"{what} file {path} does not exist (one gene ID per line).")
    ids = []
    content = load_text(path).replace("\r\n", "\n").replace("\r", "\n")
    for n, line in enumerate(content.split("\n"), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        ids.append((normalize_id(text.replace(",", "\t").split("\t")[0]), n))
    if not ids:
        raise TfcnnInputError(f"{what} file {path} holds no IDs (one gene ID per line).")
    return ids


def _ids_in_matrix(path: Path, what: str, genes: list[str], where: str) -> list[str]:
    """The IDs of an ID list file, all of which must be genes of the matrix scanned."""
    from ...io.ids import id_namespace

    lines = _read_id_lines(path, what)
    known = set(genes)
    missing = [(i, n) for i, n in lines if i not in known]
    if missing:
        shown = ", ".join(f"{i!r} (line {n})" for i, n in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        ns_ids, ns_genes = id_namespace([i for i, _ in missing]), id_namespace(genes)
        hint = (
            f" The list looks like {ns_ids} IDs but the matrix uses {ns_genes} IDs; scan does "
            f"not translate IDs, so give {ns_genes} IDs."
            if "other" not in (ns_ids, ns_genes) and ns_ids != ns_genes
            else " Check the IDs or remove them from the list."
        )
        raise TfcnnInputError(
            f"{what} file {path}: {len(missing)} of its {len(lines)} ID(s) are not genes of "
            f"{where}: {shown}{more}.{hint}"
        )
    return [i for i, _ in lines]


def default_tfs(genes: list[str]) -> tuple[list[str], str]:
    """TFs to scan when --tfs is not given, and a sentence saying which and why.

    With AGI gene IDs: the genes listed in the bundled PlantTFDB list ("tf-list");
    otherwise (probesets, other IDs) every gene.
    """
    from ...io.datasets import resolve_path
    from ...io.ids import id_namespace, normalize_id

    if id_namespace(genes) == "agi":
        import pandas as pd

        table = pd.read_csv(resolve_path("tf-list"), sep="\t", dtype=str)
        tf_ids = {normalize_id(g) for g in table["Gene_ID"].dropna()}
        tfs = [g for g in genes if g in tf_ids]
        if tfs:
            return tfs, f"{len(tfs):,} genes that are TFs in the bundled tf-list (PlantTFDB)"
    return list(genes), f"all {len(genes):,} genes (IDs are not AGI codes, or none is a TF)"


def _expression_for(model, expression: str | None, log2: bool) -> tuple[np.ndarray, list[str]]:
    """The z-scored matrix to scan and its gene IDs, in the model's sample order."""
    if expression is None:
        if model.zscores_ is None:
            raise TfcnnInputError(
                "this model holds no expression matrix; pass --expression with the matrix "
                "to score (same samples as the training matrix)."
            )
        return model.zscores_, list(model.metadata_["genes"])
    from ...api import load_expression

    expr = load_expression(expression, log2=log2)
    samples = model.metadata_.get("samples")
    if samples:
        where = set(expr.samples)
        missing = [s for s in samples if s not in where]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise TfcnnInputError(
                f"{expr.source} lacks {len(missing)} of the model's {len(samples)} samples "
                f"({shown}); the model scores profiles over exactly its training samples."
            )
        if list(samples) != list(expr.samples):
            expr = expr.select_samples(samples)
    if expr.n_samples != model.n_samples:
        raise TfcnnInputError(
            f"{expr.source} has {expr.n_samples} samples; the model takes {model.n_samples}."
        )
    return np.asarray(expr.zscored(), dtype=np.float32), list(expr.genes)


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
        Path | None,
        typer.Option(
            help="File of TF IDs, one per line (default: the genes that are TFs in the "
            "bundled tf-list when IDs are AGI codes, else all genes)."
        ),
    ] = None,
    targets: Annotated[
        Path | None, typer.Option(help="File of target IDs, one per line (default: all genes).")
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
    from ...inference.scan import DEFAULT_BLOCK_TFS, work_dir_for
    from ...inference.scan import scan as run_scan
    from ...io.atomic import check_writable

    check_writable(output, force)
    if min_prob is not None and not 0.0 <= min_prob <= 1.0:
        raise TfcnnInputError(f"--min-prob must be between 0 and 1 (got {min_prob}).")
    if top_k is not None and top_k < 1:
        raise TfcnnInputError(f"--top-k must be a positive integer (got {top_k}).")
    if workers is not None and workers < 1:
        raise TfcnnInputError(f"--workers must be a positive integer (got {workers}).")
    est = load_model(model)
    z, genes = _expression_for(est, expression, log2)
    where = "the model's own matrix" if expression is None else str(expression)
    if tfs is None:
        tf_ids, note = default_tfs(genes)
        console.print(f"TFs: {escape(note)}", highlight=False)
    else:
        tf_ids = _ids_in_matrix(tfs, "--tfs", genes, where)
    tg_ids = genes if targets is None else _ids_in_matrix(targets, "--targets", genes, where)
    n_self = len(set(tf_ids) & set(tg_ids))
    total = len(dict.fromkeys(tf_ids)) * len(dict.fromkeys(tg_ids)) - n_self
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
            z,
            genes,
            output,
            tfs=tf_ids,
            targets=tg_ids,
            min_prob=min_prob,
            top_k=top_k,
            block_tfs=block_tfs or DEFAULT_BLOCK_TFS,
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
