"""A model's explanation written to a folder: figures, TSV tables and ``explain.json``.

:func:`explain_pair_set` explains the positive pairs of one split of the pair set a
model was trained on, with the same split's negatives as a control;
:func:`write_model_explanation` explains any pairs and writes the folder (docs/explain.md
lists its files).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import TfcnnInputError
from ..io.atomic import atomic_dir, json_safe
from . import plots
from .clusters import ModelExplanation, correlation_summary, explain_model
from .maps import CAM_METHODS, DEFAULT_LAMBDA, pair_windows
from .pair import explain_pair

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..model.estimator import PairCNN
    from ..pairs import PairSet

EXPLAIN_JSON = "explain.json"
TABLES = ("windows.tsv", "clusters.tsv", "sample_counts.tsv")


def check_options(
    method: str = "hirescam", k: int = 3, min_probability: float = 0.0, split: str = "train"
) -> None:
    """Refuse out-of-range options (before any file is read, by the CLI)."""
    from ..pairs import SPLITS

    if method not in CAM_METHODS:
        raise TfcnnInputError(f"`method` must be one of {', '.join(CAM_METHODS)} (got {method!r}).")
    if split not in SPLITS:
        raise TfcnnInputError(f"`split` must be one of {', '.join(SPLITS)} (got {split!r}).")
    if k < 1:
        raise TfcnnInputError(f"`k` must be at least 1 (got {k}).")
    if not 0.0 <= min_probability < 1.0:
        raise TfcnnInputError(f"`min_probability` must be in [0, 1) (got {min_probability}).")


def explain_pair_set(
    model: PairCNN,
    pairs: PairSet | str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    split: str = "train",
    k: int = 3,
    seed: int = 0,
    min_probability: float = 0.0,
    method: str = "hirescam",
    lam: float | None = DEFAULT_LAMBDA,
    force: bool = False,
    model_name: str = "",
) -> dict[str, Any]:
    """Explain the positives of ``split`` of the pair set ``model`` was trained on.

    As many of the split's negatives (drawn with ``seed``) are the control: the
    in-window correlation a window finds without regulation. Writes ``output`` (see
    :func:`write_model_explanation`) and returns what explain.json holds.
    """
    from ..pairs import PairSet
    from .two_tower import refuse_two_tower

    refuse_two_tower(model, "'tfcnn explain model'")
    check_options(method, k, min_probability, split)
    data = pairs if isinstance(pairs, PairSet) else PairSet.load(pairs)
    where = f"pair set {pairs}" if not isinstance(pairs, PairSet) else "the pair set"
    model_name = model_name or "the model"
    if len(data.samples) != model.n_samples:
        raise TfcnnInputError(
            f"{where} has {len(data.samples)} samples but the model takes {model.n_samples}; "
            "use the pair set the model was trained on."
        )
    trained = model.record_.samples
    if trained and list(trained) != list(data.samples):
        raise TfcnnInputError(
            f"{where} has other samples (or another order) than model {model_name}; use the "
            "pair set the model was trained on."
        )
    mask = data.mask(split) & (data.labels == 1)
    if not mask.any():
        raise TfcnnInputError(f"{where} has no positive pairs in the {split} split.")
    negatives = np.flatnonzero(data.mask(split) & (data.labels == 0))
    if len(negatives) > mask.sum():
        rng = np.random.default_rng(seed)
        negatives = np.sort(rng.choice(negatives, int(mask.sum()), replace=False))
    return write_model_explanation(
        model,
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
        source={"model": model_name, "pairs": str(pairs), "split": split},
    )


def write_model_explanation(
    model: PairCNN,
    x: np.ndarray,
    samples: list[str],
    pairs: pd.DataFrame,
    output: str | os.PathLike[str],
    k: int = 3,
    seed: int = 0,
    min_probability: float = 0.0,
    method: str = "hirescam",
    lam: float | None = DEFAULT_LAMBDA,
    negatives: np.ndarray | None = None,
    force: bool = False,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Explain pairs ``x`` (named by ``pairs``: tf, target) and write the ``output`` folder.

    ``negatives`` (optional pairs, e.g. negatives of the same split) are a control: the
    TF/target correlation inside their windows is what a window finds without any
    regulation, to compare with the positives'. Returns what explain.json holds.
    """
    if min_probability > 0:
        keep = model.predict_proba(x)[:, 1] >= min_probability
        if keep.sum() < k:
            raise TfcnnInputError(
                f"only {int(keep.sum())} pairs score >= {min_probability}; lower "
                "`min_probability` or `k`."
            )
        x, pairs = x[keep], pairs[keep].reset_index(drop=True)
    ex = explain_model(model, x, samples, pairs=pairs, k=k, seed=seed, method=method, lam=lam)
    control: dict[str, Any] = {"positives": correlation_summary(ex.windows["window_r"])}
    if negatives is not None:
        control["negatives"] = correlation_summary(
            pair_windows(model, negatives, method=method, lam=lam)[2]
        )
    figures: list[dict[str, str]] = []
    with atomic_dir(output, force=force) as tmp:

        def save(fig: Figure, name: str, caption: str) -> None:
            fig.savefig(tmp / name, format="png", dpi=110)
            figures.append({"file": name, "caption": caption})

        save(plots.plot_scree(ex), "scree.png", plots.SCREE_CAPTION)
        save(plots.plot_cluster_profiles(ex), "clusters.png", plots.PROFILES_CAPTION.format(k=k))
        save(plots.plot_cluster_scatter(ex, x), "cluster_scatter.png", plots.SCATTER_CAPTION)
        save(plots.plot_coverage(ex), "window_coverage.png", plots.COVERAGE_CAPTION)
        examples = []
        for c in ex.clusters:  # the most confident pair of each cluster, as an example
            rows = ex.windows[ex.windows["cluster"] == c["cluster"]]
            i = int(rows["probability"].idxmax())
            tf_id, target_id = str(rows.at[i, "tf"]), str(rows.at[i, "target"])
            e = explain_pair(model, x[i], samples, method=method, lam=lam)
            name = f"example_cluster{c['cluster']}.png"
            save(
                plots.plot_pair(e, x[i], tf_id, target_id),
                name,
                f"Cluster {c['cluster']}: its most confidently predicted pair, {tf_id} -> "
                f"{target_id}, with its window shaded and the activation map below.",
            )
            examples.append({"cluster": c["cluster"], "tf": tf_id, "target": target_id})
        _write_tables(ex, tmp)
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
            "tables": list(TABLES),
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


def _write_tables(ex: ModelExplanation, folder: Path) -> None:
    """windows.tsv, clusters.tsv (without the profile lists) and sample_counts.tsv."""
    ex.windows.to_csv(folder / "windows.tsv", sep="\t", index=False, float_format="%.6g")
    ex.sample_counts.to_csv(folder / "sample_counts.tsv", sep="\t", index=False)
    cluster_rows = [
        {key: v for key, v in c.items() if key not in ("mean_tf", "mean_target", "top_samples")}
        for c in ex.clusters
    ]
    pd.DataFrame(cluster_rows).to_csv(
        folder / "clusters.tsv", sep="\t", index=False, float_format="%.6g"
    )
