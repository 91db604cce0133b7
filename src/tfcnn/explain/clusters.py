"""A model explained: the windows of many pairs, clustered with k-means, and where they fall."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import TfcnnInputError
from .annotations import ANNOTATION_FIELDS, sample_annotations
from .maps import DEFAULT_LAMBDA, pair_windows, pearson

if TYPE_CHECKING:
    from ..model.estimator import PairCNN


@dataclass
class ModelExplanation:
    """Windows of many pairs, their clusters and where in the samples they fall."""

    windows: pd.DataFrame  # one row per pair: tf, target, probability, window, r, cluster
    profiles: np.ndarray  # (N, 2, L) resampled TF/target windows
    length: int
    explained_variance: np.ndarray  # PCA scree: ratio per component
    clusters: list[dict[str, Any]]
    sample_counts: pd.DataFrame  # per sample: windows covering it (+ annotations)
    window_counts: dict[str, Any]
    samples: list[str]


def resample(segment: np.ndarray, length: int) -> np.ndarray:
    """Linear resampling of the last axis to ``length`` points (end points kept)."""
    segment = np.asarray(segment, dtype=np.float64)
    m = segment.shape[-1]
    if m == 1:
        return np.repeat(segment, length, axis=-1)
    src = np.linspace(0.0, 1.0, m)
    dst = np.linspace(0.0, 1.0, length)
    flat = segment.reshape(-1, m)
    return np.stack([np.interp(dst, src, row) for row in flat]).reshape(*segment.shape[:-1], length)


def explain_model(
    model: PairCNN,
    x: np.ndarray,
    samples: Sequence[str],
    pairs: pd.DataFrame | None = None,
    k: int = 3,
    seed: int = 0,
    length: int | None = None,
    lam: float | None = DEFAULT_LAMBDA,
    annotations: pd.DataFrame | None = None,
    max_components: int = 10,
    method: str = "hirescam",
) -> ModelExplanation:
    """Windows of pairs ``x`` (N, 2, S), clustered with k-means; see the module docstring.

    ``pairs`` (optional, N rows with ``tf`` and ``target``) names the pairs. ``length``
    is the common window length (default: the median window length, at least 4).
    Pairs whose activation map has no positive value have no window: they are counted
    (``window_counts["no_activation"]``) and left out of the clusters.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    x = np.asarray(x, dtype=np.float32)
    n_pairs, n_samples = x.shape[0], x.shape[-1]
    names = [str(s) for s in samples]
    if len(names) != n_samples:
        raise TfcnnInputError(f"{len(names)} sample names for {n_samples} columns.")
    if k < 1:
        raise TfcnnInputError(f"k must be at least 1 (got {k}).")
    starts, ends, r_all, prob = pair_windows(model, x, method=method, lam=lam)
    has_map = starts >= 0
    keep = np.flatnonzero(has_map)
    if len(keep) < k:
        raise TfcnnInputError(
            f"only {len(keep)} of {n_pairs} pairs have an activation window; k-means with "
            f"k = {k} needs at least {k}. Give more pairs or a smaller `k`."
        )
    lengths = ends - starts + 1
    if length is None:
        length = max(4, int(np.median(lengths[keep])))
    profiles = np.stack([resample(x[i, :, starts[i] : ends[i] + 1], length) for i in keep])
    r_window = np.array(
        [pearson(x[i, 0, starts[i] : ends[i] + 1], x[i, 1, starts[i] : ends[i] + 1]) for i in keep]
    )
    features = profiles.reshape(len(keep), -1)
    n_comp = min(max_components, features.shape[0], features.shape[1])
    pca = PCA(n_components=n_comp, random_state=seed).fit(features)
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(features)
    # Number clusters by size (largest first) so labels do not depend on k-means' order.
    order = np.argsort(-np.bincount(km.labels_, minlength=k), kind="stable")
    relabel = np.empty(k, dtype=np.int64)
    relabel[order] = np.arange(k)
    labels = relabel[km.labels_]

    if annotations is None:
        annotations = sample_annotations(names)
    clusters = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        tf_vals = np.concatenate(
            [x[keep[m], 0, starts[keep[m]] : ends[keep[m]] + 1] for m in members]
        )
        tg_vals = np.concatenate(
            [x[keep[m], 1, starts[keep[m]] : ends[keep[m]] + 1] for m in members]
        )
        rs = r_window[members]
        finite = rs[np.isfinite(rs)]
        mean_tf = profiles[members, 0].mean(axis=0)
        mean_tg = profiles[members, 1].mean(axis=0)
        cover = np.zeros(n_samples, dtype=np.int64)
        for m in members:
            cover[starts[keep[m]] : ends[keep[m]] + 1] += 1
        clusters.append(
            {
                "cluster": c,
                "n_pairs": len(members),
                "mean_probability": float(prob[keep[members]].mean()),
                "median_window_length": float(np.median(lengths[keep[members]])),
                "pooled_r": pearson(tf_vals, tg_vals),
                "median_pair_r": float(np.median(finite)) if finite.size else math.nan,
                "fraction_pairs_r_positive": float((finite > 0).mean())
                if finite.size
                else math.nan,
                "mean_profile_r": pearson(mean_tf, mean_tg),
                "mean_tf": mean_tf.tolist(),
                "mean_target": mean_tg.tolist(),
                "top_samples": _top(cover, names, 5),
            }
        )

    table = pd.DataFrame(
        {
            "tf": pairs["tf"].to_numpy() if pairs is not None else np.arange(n_pairs),
            "target": pairs["target"].to_numpy() if pairs is not None else np.arange(n_pairs),
            "probability": prob,
        }
    )
    table["window_start"] = np.where(has_map, starts, -1)
    table["window_end"] = np.where(has_map, ends, -1)
    table["window_length"] = np.where(has_map, lengths, 0)
    table["first_sample"] = [names[s] if h else "" for s, h in zip(starts, has_map, strict=True)]
    table["last_sample"] = [names[e] if h else "" for e, h in zip(ends, has_map, strict=True)]
    table["window_r"] = r_all
    cl = np.full(n_pairs, -1, dtype=np.int64)
    cl[keep] = labels
    table["cluster"] = cl

    coverage = np.zeros(n_samples, dtype=np.int64)
    for i in keep:
        coverage[starts[i] : ends[i] + 1] += 1
    sample_counts = pd.DataFrame({"sample": names, "windows": coverage})
    sample_counts["fraction_of_pairs"] = coverage / max(len(keep), 1)
    if annotations is not None:
        ann = annotations.reindex(names)
        for col in ANNOTATION_FIELDS:
            if col in ann:
                sample_counts[col] = ann[col].to_numpy()
    window_counts: dict[str, Any] = {
        "n_pairs": n_pairs,
        "with_window": len(keep),
        "no_activation": int(n_pairs - len(keep)),
        "median_window_length": float(np.median(lengths[keep])),
        "samples": dict(zip(names, coverage.tolist(), strict=True)),
    }
    if annotations is not None:
        window_counts.update(_group_counts(annotations.reindex(names), starts[keep], ends[keep]))
    return ModelExplanation(
        windows=table,
        profiles=profiles,
        length=length,
        explained_variance=pca.explained_variance_ratio_,
        clusters=clusters,
        sample_counts=sample_counts,
        window_counts=window_counts,
        samples=names,
    )


def correlation_summary(r: np.ndarray) -> dict[str, float | int]:
    """Median and share of positive in-window correlations (NaNs left out)."""
    r = np.asarray(r, dtype=np.float64)
    r = r[np.isfinite(r)]
    return {
        "n": int(r.size),
        "median_r": float(np.median(r)) if r.size else math.nan,
        "fraction_r_positive": float((r > 0).mean()) if r.size else math.nan,
    }


def _top(cover: np.ndarray, names: list[str], n: int) -> list[dict[str, Any]]:
    idx = np.argsort(-cover, kind="stable")[:n]
    return [{"sample": names[i], "windows": int(cover[i])} for i in idx if cover[i] > 0]


def _group_counts(ann: pd.DataFrame, starts: np.ndarray, ends: np.ndarray) -> dict[str, Any]:
    """Per annotation field and value: windows touching it, and its samples' share.

    ``windows``: how many windows include at least one sample with that value;
    ``samples``: how many samples carry it (to compare against: a value with many
    samples is touched by chance more often).
    """
    out: dict[str, Any] = {}
    for col in ("group", "treatment", "tissue"):
        if col not in ann or ann[col].isna().all():
            continue
        values = ann[col].astype(object).where(ann[col].notna(), "unknown").astype(str).to_numpy()
        kinds = sorted(set(values))
        touched = dict.fromkeys(kinds, 0)
        for s, e in zip(starts, ends, strict=True):
            for v in set(values[s : e + 1]):
                touched[v] += 1
        out[f"by_{col}"] = {
            v: {"windows": touched[v], "samples": int((values == v).sum())} for v in kinds
        }
    return out
