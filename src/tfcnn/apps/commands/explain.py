"""`tfcnn explain pair` and `tfcnn explain model`: which samples drove a score.

See :mod:`tfcnn.explain` for the method (Grad-CAM on the last conv layer, smoothing,
half-maximum window, k-means of windows) and docs/explain.md for the outputs.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from ...errors import TfcnnInputError
from ..console import console, user_errors
from ..options import ForceOpt, ModelOpt, SeedOpt

log = logging.getLogger("tfcnn.explain")
EXPLAIN_JSON = "explain.json"
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


def _check_method(method: str) -> str:
    from tfcnn.explain import CAM_METHODS

    if method not in CAM_METHODS:
        raise TfcnnInputError(f"--method must be one of {', '.join(CAM_METHODS)} (got {method!r}).")
    return method


def _load_model(model: Path):
    from tfcnn.api import load_model

    return load_model(model)


def _matrix(model, expression: str | None, log2: bool) -> tuple[np.ndarray, list[str], list[str]]:
    """(z-scores genes x samples, genes, samples): the model's own or ``--expression``."""
    if expression is None:
        if model.zscores_ is None:
            raise TfcnnInputError(
                "this model carries no expression matrix (expression.safetensors); give "
                "--expression with the matrix it was trained on."
            )
        return (
            np.asarray(model.zscores_),
            list(model.metadata_.get("genes") or []),
            list(model.metadata_.get("samples") or []),
        )
    from tfcnn.api import load_expression

    expr = load_expression(expression, log2=log2)
    trained = list(model.metadata_.get("samples") or [])
    if trained and list(expr.samples) != trained:
        where = {s: i for i, s in enumerate(expr.samples)}
        if all(s in where for s in trained):
            # As scan: the model's samples, found by name, in the model's order.
            expr = expr.select_samples(trained)
            return np.asarray(expr.zscored()), list(expr.genes), trained
        if expr.n_samples == model.n_samples:
            n_diff = sum(a != b for a, b in zip(trained, expr.samples, strict=True))
            log.warning(
                "%d of %d sample names of %s differ from the model's (first: %r where the "
                "model was trained with %r). The model reads columns by position: check that "
                "they are the same conditions in the same order, or the explanation is "
                "meaningless.",
                n_diff,
                len(trained),
                expr.source,
                next(b for a, b in zip(trained, expr.samples, strict=True) if a != b),
                next(a for a, b in zip(trained, expr.samples, strict=True) if a != b),
            )
    if expr.n_samples != model.n_samples:
        raise TfcnnInputError(
            f"{expression} has {expr.n_samples} samples but the model takes "
            f"{model.n_samples}; give the matrix the model was trained on (same samples, "
            "same order)."
        )
    return np.asarray(expr.zscored()), list(expr.genes), list(expr.samples)


def pair_profiles(
    zscores: np.ndarray, genes: list[str], tf: str, target: str, where: str
) -> tuple[np.ndarray, str, str]:
    """The (2, S) pair of two genes, IDs normalised; unknown IDs -> TfcnnInputError."""
    from tfcnn.io.ids import normalize_id

    index = {g: i for i, g in enumerate(genes)}
    tf_id, target_id = normalize_id(tf), normalize_id(target)
    missing = [g for g in (tf_id, target_id) if g not in index]
    if missing:
        raise TfcnnInputError(
            f"{', '.join(missing)} not found among the {len(genes):,} genes of {where}; "
            "check the ID (AGI codes such as AT1G01010) or give --expression with a matrix "
            "that has it."
        )
    x = np.stack([zscores[index[tf_id]], zscores[index[target_id]]]).astype(np.float32)
    return x, tf_id, target_id


def _save_figure(fig, path: Path, force: bool) -> None:
    from tfcnn.io.atomic import atomic_path

    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


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
        Path | None, typer.Option("--output", "-o", help="Write the plot to this PNG.")
    ] = None,
    method: MethodOpt = "hirescam",
    smoothing: SmoothingOpt = "10",
    force: ForceOpt = False,
) -> None:
    """Explain one pair's score: the window of samples that drove it, and a plot."""
    from tfcnn.explain import explain_pair, plot_pair
    from tfcnn.io.atomic import check_writable

    if output is not None:
        check_writable(output, force)
    _check_method(method)
    lam = _smoothing(smoothing)
    est = _load_model(model)
    z, genes, samples = _matrix(est, expression, log2)
    where = expression if expression is not None else f"model {model}"
    x, tf_id, target_id = pair_profiles(z, genes, tf, target, str(where))
    e = explain_pair(est, x, samples, method=method, lam=lam)
    r_in = e.window_correlation(x)
    console.print(
        f"{escape(tf_id)} -> {escape(target_id)}: probability {e.probability:.4f}", highlight=False
    )
    console.print(
        f"window: samples {e.window_start}..{e.window_end} ({e.window_length} of "
        f"{len(samples)}): {escape(e.window_samples[0])} .. {escape(e.window_samples[-1])}; "
        f"Pearson r inside {r_in:.3f}, over all samples {_r(x):.3f}",
        highlight=False,
    )
    console.print("samples: " + escape(", ".join(e.window_samples)), highlight=False)
    if e.annotations is not None:
        from tfcnn.explain import annotation_summary

        text = _annotation_text(annotation_summary(e.annotations))
        if text:
            console.print("annotations: " + escape(text), highlight=False)
    if output is not None:
        _save_figure(plot_pair(e, x, tf_id, target_id), output, force)
        console.print(f"Plot written to [bold]{escape(str(output))}[/]")


def _r(x: np.ndarray) -> float:
    from tfcnn.explain import _pearson

    return _pearson(x[0], x[1])


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
    from tfcnn.api import load_pairs
    from tfcnn.io.atomic import check_writable
    from tfcnn.pairs import SPLITS

    check_writable(output, force)
    _check_method(method)
    lam = _smoothing(smoothing)
    if pairs is None:
        raise TfcnnInputError(
            "give --pairs: the pair set the model was trained on (its positive training "
            "pairs are explained); model files do not record which pairs were used."
        )
    if split not in SPLITS:
        raise TfcnnInputError(f"--split must be one of {', '.join(SPLITS)} (got {split!r}).")
    if k < 1:
        raise TfcnnInputError(f"--k must be at least 1 (got {k}).")
    if not 0.0 <= min_probability < 1.0:
        raise TfcnnInputError(f"--min-probability must be in [0, 1) (got {min_probability}).")
    est = _load_model(model)
    data = load_pairs(pairs)
    if len(data.samples) != est.n_samples:
        raise TfcnnInputError(
            f"pair set {pairs} has {len(data.samples)} samples but the model takes "
            f"{est.n_samples}; use the pair set the model was trained on."
        )
    model_samples = est.metadata_.get("samples")
    if model_samples and list(model_samples) != list(data.samples):
        raise TfcnnInputError(
            f"pair set {pairs} has other samples (or another order) than model {model}; "
            "use the pair set the model was trained on."
        )
    mask = data.mask(split) & (data.labels == 1)
    if not mask.any():
        raise TfcnnInputError(f"pair set {pairs} has no positive pairs in the {split} split.")
    negatives = np.flatnonzero(data.mask(split) & (data.labels == 0))
    rng = np.random.default_rng(seed)
    if len(negatives) > mask.sum():
        negatives = np.sort(rng.choice(negatives, int(mask.sum()), replace=False))
    result = run_model_explanation(
        est,
        data.x[mask],
        list(data.samples),
        data.table.loc[mask, ["tf", "target"]].reset_index(drop=True),
        output,
        k=k,
        seed=seed,
        min_probability=min_probability,
        method=method,
        lam=lam,
        negatives=data.x[negatives] if len(negatives) else None,
        force=force,
        source={"model": str(model), "pairs": str(pairs), "split": split},
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


def run_model_explanation(
    model,
    x: np.ndarray,
    samples: list[str],
    pairs,
    output: Path,
    k: int = 3,
    seed: int = 0,
    min_probability: float = 0.0,
    method: str = "hirescam",
    lam: float | None = 10.0,
    negatives: np.ndarray | None = None,
    force: bool = False,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Explain ``x`` and write figures, TSV tables and explain.json into ``output``.

    ``negatives`` (optional pairs, e.g. negatives of the same split) are a control: the
    TF/target correlation inside their windows is what a window finds without any
    regulation, to compare with the positives'.
    """
    from tfcnn import explain as xp
    from tfcnn.io.atomic import atomic_dir, json_safe

    if min_probability > 0:
        prob = model.predict_proba(x)[:, 1]
        keep = prob >= min_probability
        if keep.sum() < k:
            raise TfcnnInputError(
                f"only {int(keep.sum())} pairs score >= {min_probability}; lower "
                "--min-probability or --k."
            )
        x, pairs = x[keep], pairs[keep].reset_index(drop=True)
    ex = xp.explain_model(model, x, samples, pairs=pairs, k=k, seed=seed, method=method, lam=lam)
    control: dict[str, Any] = {"positives": xp.correlation_summary(ex.windows["window_r"])}
    if negatives is not None:
        control["negatives"] = xp.correlation_summary(
            xp.pair_windows(model, negatives, method=method, lam=lam)[2]
        )
    figures: list[dict[str, str]] = []
    with atomic_dir(output, force=force) as tmp:

        def save(fig, name: str, caption: str) -> None:
            fig.savefig(tmp / name, format="png", dpi=110)
            figures.append({"file": name, "caption": caption})

        save(xp.plot_scree(ex), "scree.png", xp.SCREE_CAPTION)
        save(xp.plot_cluster_profiles(ex), "clusters.png", xp.PROFILES_CAPTION.format(k=k))
        save(xp.plot_cluster_scatter(ex, x), "cluster_scatter.png", xp.SCATTER_CAPTION)
        save(xp.plot_coverage(ex), "window_coverage.png", xp.COVERAGE_CAPTION)
        examples = []
        for c in ex.clusters:  # the most confident pair of each cluster, as an example
            rows = ex.windows[ex.windows["cluster"] == c["cluster"]]
            i = int(rows["probability"].idxmax())
            tf_id, target_id = str(rows.at[i, "tf"]), str(rows.at[i, "target"])
            e = xp.explain_pair(model, x[i], samples, method=method, lam=lam)
            name = f"example_cluster{c['cluster']}.png"
            save(
                xp.plot_pair(e, x[i], tf_id, target_id),
                name,
                f"Cluster {c['cluster']}: its most confidently predicted pair, {tf_id} -> "
                f"{target_id}, with its window shaded and the activation map below.",
            )
            examples.append({"cluster": c["cluster"], "tf": tf_id, "target": target_id})
        ex.windows.to_csv(tmp / "windows.tsv", sep="\t", index=False, float_format="%.6g")
        ex.sample_counts.to_csv(tmp / "sample_counts.tsv", sep="\t", index=False)
        cluster_rows = [
            {kk: v for kk, v in c.items() if kk not in ("mean_tf", "mean_target", "top_samples")}
            for c in ex.clusters
        ]
        import pandas as pd

        pd.DataFrame(cluster_rows).to_csv(
            tmp / "clusters.tsv", sep="\t", index=False, float_format="%.6g"
        )
        result = {
            "format": "tfcnn-explain",
            "source": source or {},
            "method": {
                "map": method,
                "smoothing": "Whittaker-Henderson (discrete cubic smoothing spline), "
                + ("penalty chosen by GCV" if lam is None else f"penalty {lam:g}"),
                "window": "contiguous run around the highest peak at >= half its height "
                "above the curve minimum",
                "common_length": ex.length,
                "k": k,
                "seed": seed,
                "min_probability": min_probability,
            },
            "figures": figures,
            "tables": ["windows.tsv", "clusters.tsv", "sample_counts.tsv"],
            "explained_variance": ex.explained_variance.tolist(),
            "clusters": ex.clusters,
            "examples": examples,
            "window_counts": ex.window_counts,
            "control": control,
        }
        (tmp / EXPLAIN_JSON).write_text(
            json.dumps(json_safe(result), indent=2) + "\n", encoding="utf-8"
        )
    return result


def register(app: typer.Typer) -> None:
    """Add the `explain` command group (pair, model) to the CLI."""
    explain_app = typer.Typer(
        help="Explain predictions: activation maps, sample windows, window clusters.",
        no_args_is_help=True,
    )
    explain_app.command("pair")(user_errors(explain_pair_cmd))
    explain_app.command("model")(user_errors(explain_model_cmd))
    app.add_typer(explain_app, name="explain")
