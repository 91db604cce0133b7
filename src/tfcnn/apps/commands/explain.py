"""`tfcnn explain pair` and `tfcnn explain model`: which samples drove a score.

See :mod:`tfcnn.explain` for the method (an activation map of the last conv layer,
HiResCAM by default or the study's Grad-CAM; smoothing, half-maximum window, k-means of
windows) and docs/explain.md for the outputs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ...errors import TfcnnInputError
from ..console import console, err_console, user_errors
from ..options import ForceOpt, ModelOpt, SeedOpt

MethodOpt = Annotated[
    str,
    typer.Option(
        "--method",
        help="Activation map: hirescam (per-position gradient x activation, default) or "
        "gradcam (the study's channel-mean Grad-CAM; see docs/explain.md).",
    ),
]


SmoothingOpt = Annotated[
    str,
    typer.Option(
        "--smoothing",
        help="Smoothing penalty of the activation map (a positive number; larger = "
        "smoother, wider windows) or 'gcv' to choose it per map by cross-validation.",
    ),
]


def _smoothing(value: str) -> float | None:
    if value.strip().lower() == "gcv":
        return None
    try:
        lam = float(value)
    except ValueError:
        lam = math.nan
    if not (math.isfinite(lam) and lam > 0):
        raise TfcnnInputError(f"--smoothing takes a positive number or 'gcv' (got {value!r}).")
    return lam


def _annotation_text(summary: dict[str, dict[str, int]]) -> str:
    parts = []
    for col, counts in summary.items():
        items = ", ".join(f"{k} ({v})" for k, v in list(counts.items())[:8])
        parts.append(f"{col}: {items}")
    return "; ".join(parts)


def explain_pair_cmd(
    model: ModelOpt,
    tf: Annotated[str, typer.Option("--tf", help="Regulator gene ID (e.g. AT1G01010).")],
    target: Annotated[str, typer.Option("--target", help="Target gene ID.")],
    expression: Annotated[
        str | None,
        typer.Option(
            "--expression",
            "-x",
            help="Expression matrix to read the profiles from (default: the model's own).",
        ),
    ] = None,
    log2: Annotated[bool, typer.Option("--log2", help="Take log2 of --expression first.")] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the plot to this file: .png, .svg or .pdf (by extension)."
        ),
    ] = None,
    method: MethodOpt = "hirescam",
    smoothing: SmoothingOpt = "10",
    force: ForceOpt = False,
) -> None:
    """Explain one pair's score: the window of samples that drove it, and a plot."""
    from tfcnn.api import load_model
    from tfcnn.explain import (
        annotation_summary,
        check_not_self_pair,
        check_options,
        explain_pair,
        pearson,
        plot_format,
        plot_pair,
        save_figure,
    )
    from tfcnn.inference.matrix import scoring_matrix
    from tfcnn.io.atomic import check_writable

    if output is not None:
        plot_format(output)
        check_writable(output, force)
    check_not_self_pair(tf, target)
    check_options(method)
    lam = _smoothing(smoothing)
    est = load_model(model)
    matrix = scoring_matrix(est, expression, log2=log2, name=str(model))
    for note in matrix.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    x, tf_id, target_id = matrix.pair(tf, target)
    check_not_self_pair(tf_id, target_id)  # two spellings (AGI, probeset) of one gene
    samples = matrix.samples
    e = explain_pair(est, x, samples, method=method, lam=lam)
    r_in = e.window_correlation(x)
    console.print(
        f"{escape(tf_id)} -> {escape(target_id)}: probability {e.probability:.4f}", highlight=False
    )
    console.print(
        f"window: samples {e.window_start}..{e.window_end} ({e.window_length} of "
        f"{len(samples)}): {escape(e.window_samples[0])} .. {escape(e.window_samples[-1])}; "
        f"Pearson r inside {r_in:.3f}, over all samples {pearson(x[0], x[1]):.3f}",
        highlight=False,
    )
    console.print("samples: " + escape(", ".join(e.window_samples)), highlight=False)
    if e.annotations is not None:
        text = _annotation_text(annotation_summary(e.annotations))
        if text:
            console.print("annotations: " + escape(text), highlight=False)
    if output is not None:
        save_figure(plot_pair(e, x, tf_id, target_id), output, force)
        console.print(f"Plot written to [bold]{escape(str(output))}[/]")


def explain_model_cmd(
    model: ModelOpt,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for figures, tables, explain.json.")
    ],
    pairs: Annotated[
        Path | None,
        typer.Option(
            "--pairs", "-p", help="Pair set (build-pairs) whose positive training pairs to use."
        ),
    ] = None,
    k: Annotated[int, typer.Option("--k", help="Number of k-means clusters.")] = 3,
    split: Annotated[str, typer.Option(help="Split whose positives to explain.")] = "train",
    min_probability: Annotated[
        float,
        typer.Option(help="Only explain positives the model scores at least this high."),
    ] = 0.0,
    method: MethodOpt = "hirescam",
    smoothing: SmoothingOpt = "10",
    seed: SeedOpt = 0,
    force: ForceOpt = False,
) -> None:
    """Cluster the windows of a model's positive pairs; write figures, tables, explain.json."""
    from tfcnn.api import load_model
    from tfcnn.explain import EXPLAIN_JSON, check_options, explain_pair_set
    from tfcnn.io.atomic import check_writable

    check_writable(output, force)
    check_options(method, k, min_probability, split)
    lam = _smoothing(smoothing)
    if pairs is None:
        raise TfcnnInputError(
            "give --pairs: the pair set the model was trained on (its positive training "
            "pairs are explained); model files do not record which pairs were used."
        )
    result = explain_pair_set(
        load_model(model),
        pairs,
        output,
        split=split,
        k=k,
        seed=seed,
        min_probability=min_probability,
        method=method,
        lam=lam,
        force=force,
        model_name=str(model),
    )
    table = Table(title=f"Clusters of {result['window_counts']['with_window']:,} windows")
    for col in ("cluster", "pairs", "median length", "pooled r", "median pair r", "r > 0"):
        table.add_column(col, justify="right")
    for c in result["clusters"]:
        table.add_row(
            str(c["cluster"]),
            f"{c['n_pairs']:,}",
            f"{c['median_window_length']:g}",
            _fmt(c["pooled_r"]),
            _fmt(c["median_pair_r"]),
            f"{c['fraction_pairs_r_positive']:.0%}",
        )
    console.print(table)
    ctl = result["control"]
    line = (
        f"In-window TF/target r, positives: median {_fmt(ctl['positives']['median_r'])} "
        f"({ctl['positives']['fraction_r_positive']:.0%} > 0)"
    )
    if "negatives" in ctl:
        line += (
            f"; negatives of the same split (control): median "
            f"{_fmt(ctl['negatives']['median_r'])} "
            f"({ctl['negatives']['fraction_r_positive']:.0%} > 0)"
        )
    console.print(line, highlight=False)
    console.print(f"Figures, tables and {EXPLAIN_JSON} written to [bold]{escape(str(output))}[/]")


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def register(app: typer.Typer) -> None:
    """Add the `explain` command group (pair, model) to the CLI."""
    explain_app = typer.Typer(
        help="Explain predictions: activation maps, sample windows, window clusters.",
        no_args_is_help=True,
    )
    explain_app.command("pair")(user_errors(explain_pair_cmd))
    explain_app.command("model")(user_errors(explain_model_cmd))
    app.add_typer(explain_app, name="explain")
