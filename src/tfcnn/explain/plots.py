"""Figures of a pair's and a model's explanation (matplotlib, no pyplot state)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import TfcnnInputError
from ..palette import CYCLE, OKABE_ITO, TARGET_COLOUR, TF_COLOUR, WINDOW_COLOUR

#: Okabe-Ito (:mod:`tfcnn.palette`), one meaning each, as in the web app and the report.
PEAK = OKABE_ITO["bluish_green"]

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .clusters import ModelExplanation
    from .pair import PairExplanation


#: Plot files by extension: the format matplotlib writes for each.
PLOT_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def plot_format(path: str | os.PathLike[str]) -> str:
    """The figure format ``path``'s extension asks for; refused (before any work) otherwise.

    A ``.txt`` or extension-less name would otherwise get PNG bytes under a name that
    promises something else.
    """
    ext = Path(path).suffix.lower()
    if ext not in PLOT_FORMATS:
        raise TfcnnInputError(
            f"`output` {path}: {f'{ext} is not a plot type' if ext else 'no extension'}; "
            f"give a file ending in {', '.join(PLOT_FORMATS)} (the format follows it)."
        )
    return PLOT_FORMATS[ext]


def save_figure(fig: Figure, path: str | os.PathLike[str], force: bool = False) -> Path:
    """Write ``fig`` atomically in the format of ``path``'s extension (:func:`plot_format`)."""
    from ..io.atomic import atomic_path

    fmt = plot_format(path)
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, format=fmt, dpi=160)
    return Path(path)


def plot_pair(
    explanation: PairExplanation, x_pair: np.ndarray, tf_id: str, target_id: str
) -> Figure:
    """Two profiles with the window shaded, and the activation curves under them."""
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    e = explanation
    n = x_pair.shape[-1]
    cols = np.arange(n)
    labelled = n <= 60 and bool(e.samples)  # sample names as ticks need a layout engine
    fig = Figure(figsize=(10, 5.5), layout="constrained" if labelled else None)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    if not labelled:
        # Fixed margins: a layout engine costs ~0.1 s per figure (the web app draws one
        # per selected pair); the placeholder keeps Shiny from imposing 'tight' layout.
        fig.subplots_adjust(left=0.07, right=0.985, bottom=0.09, top=0.94, hspace=0.06)
        fig.set_layout_engine(PlaceHolderLayoutEngine(True, True))
    for ax in (top, bottom):
        ax.axvspan(e.window_start - 0.5, e.window_end + 0.5, color=WINDOW_COLOUR, alpha=0.45, lw=0)
    top.plot(cols, x_pair[0], color=TF_COLOUR, lw=1.2, label=f"TF {tf_id}")
    top.plot(cols, x_pair[1], color=TARGET_COLOUR, lw=1.2, label=f"target {target_id}")
    r_in = e.window_correlation(np.asarray(x_pair))
    top.set_ylabel("z-score")
    top.set_title(
        f"{tf_id} -> {target_id}: p = {e.probability:.3f}; window "
        f"{e.window_samples[0]} .. {e.window_samples[-1]} ({e.window_length} samples, "
        f"r inside = {r_in:.2f})",
        fontsize=10,
    )
    top.legend(loc="upper right", fontsize=8)
    bottom.step(
        cols, e.activation, where="mid", color="0.5", lw=1, label=f"activation map ({e.method})"
    )
    bottom.plot(cols, e.smoothed, color="black", lw=1.5, label="smoothed")
    sal = np.abs(e.saliency).sum(axis=0)
    if sal.max() > 0:
        bottom.plot(
            cols,
            sal / sal.max(),
            color=PEAK,
            lw=0.8,
            alpha=0.7,
            label="|gradient x input| (scaled)",
        )
    bottom.set_ylabel("activation")
    bottom.set_xlabel("sample column")
    bottom.set_ylim(-0.05, 1.1)
    bottom.legend(loc="upper right", fontsize=8)
    if n <= 60 and e.samples:
        bottom.set_xticks(cols, e.samples, rotation=90, fontsize=6)
    return fig


SCREE_CAPTION = (
    "PCA scree of the resampled windows (TF and target concatenated): share of variance "
    "per component. An elbow at component k suggests k clusters."
)
PROFILES_CAPTION = (
    "Mean TF (blue) and target (red) profile of each of the {k} k-means clusters of "
    "windows, resampled to a common length; shading is +/- 1 SD. r = correlation of the "
    "two mean profiles; n = pairs."
)
SCATTER_CAPTION = (
    "TF vs target z-scores inside each cluster's windows (all window samples of all "
    "pairs in the cluster, subsampled for drawing); pooled Pearson r and the median of "
    "the per-pair r in the title (the study's Figure 5)."
)
COVERAGE_CAPTION = (
    "How many pairs' windows cover each sample (bars, coloured by sample group where "
    "the sample sheet is known). Samples that many windows share drive many predictions."
)


def plot_scree(ex: ModelExplanation) -> Figure:
    """Explained variance ratio per principal component (with the cumulative share)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    comps = np.arange(1, len(ex.explained_variance) + 1)
    ax.bar(comps, ex.explained_variance, color=TF_COLOUR, label="per component")
    ax.plot(comps, np.cumsum(ex.explained_variance), "o-", color="black", label="cumulative")
    ax.set_xlabel("principal component")
    ax.set_ylabel("share of variance")
    ax.set_xticks(comps)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title(f"PCA of {len(ex.profiles):,} windows (length {ex.length})", fontsize=10)
    return fig


def plot_cluster_profiles(ex: ModelExplanation) -> Figure:
    """Mean TF and target window profile per cluster, +/- 1 SD."""
    from matplotlib.figure import Figure

    k = len(ex.clusters)
    labels = ex.windows.loc[ex.windows["cluster"] >= 0, "cluster"].to_numpy()
    fig = Figure(figsize=(3.6 * k, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, k, sharey=True))
    pos = np.arange(ex.length)
    for ax, c in zip(axes, ex.clusters, strict=True):
        members = ex.profiles[labels == c["cluster"]]
        for row, color, name in ((0, TF_COLOUR, "TF"), (1, TARGET_COLOUR, "target")):
            mean, sd = members[:, row].mean(axis=0), members[:, row].std(axis=0)
            ax.plot(pos, mean, color=color, lw=1.5, label=name)
            ax.fill_between(pos, mean - sd, mean + sd, color=color, alpha=0.15, lw=0)
        ax.set_title(
            f"cluster {c['cluster']}: n = {c['n_pairs']:,}, r = {c['mean_profile_r']:.2f}",
            fontsize=9,
        )
        ax.set_xlabel("position in window (resampled)")
    axes[0].set_ylabel("z-score")
    axes[0].legend(fontsize=8)
    return fig


def plot_cluster_scatter(ex: ModelExplanation, x: np.ndarray, max_points: int = 4000) -> Figure:
    """TF vs target values inside each cluster's windows, with pooled and per-pair r."""
    from matplotlib.figure import Figure

    k = len(ex.clusters)
    fig = Figure(figsize=(3.4 * k, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, k, sharex=True, sharey=True))
    w = ex.windows
    rng = np.random.default_rng(0)
    for ax, c in zip(axes, ex.clusters, strict=True):
        rows = np.flatnonzero(w["cluster"].to_numpy() == c["cluster"])
        tf_vals = np.concatenate(
            [x[i, 0, w.at[i, "window_start"] : w.at[i, "window_end"] + 1] for i in rows]
        )
        tg_vals = np.concatenate(
            [x[i, 1, w.at[i, "window_start"] : w.at[i, "window_end"] + 1] for i in rows]
        )
        if tf_vals.size > max_points:
            pick = rng.choice(tf_vals.size, max_points, replace=False)
            tf_vals, tg_vals = tf_vals[pick], tg_vals[pick]
        ax.scatter(tf_vals, tg_vals, s=3, alpha=0.3, color=OKABE_ITO["reddish_purple"], lw=0)
        ax.axhline(0, color="0.8", lw=0.5)
        ax.axvline(0, color="0.8", lw=0.5)
        ax.set_title(
            f"cluster {c['cluster']}: pooled r = {c['pooled_r']:.2f}\n"
            f"median pair r = {c['median_pair_r']:.2f}",
            fontsize=9,
        )
        ax.set_xlabel("TF z-score")
    axes[0].set_ylabel("target z-score")
    return fig


def plot_coverage(ex: ModelExplanation) -> Figure:
    """Windows covering each sample, coloured by group (or treatment) when known."""
    from matplotlib.figure import Figure

    sc = ex.sample_counts
    n = len(sc)
    fig = Figure(figsize=(max(8, min(0.12 * n, 24)), 4), layout="constrained")
    ax = fig.subplots()
    colour_by = next((c for c in ("group", "treatment") if c in sc and sc[c].notna().any()), None)
    if colour_by is None:
        ax.bar(np.arange(n), sc["windows"], color=TF_COLOUR, width=1.0)
    else:
        import matplotlib as mpl

        values = sc[colour_by].astype(object).where(sc[colour_by].notna(), "unknown").astype(str)
        kinds = list(dict.fromkeys(values))
        many = mpl.colormaps["tab20"]
        for j, kind in enumerate(kinds):
            idx = np.flatnonzero(values.to_numpy() == kind)
            colour = CYCLE[j] if len(kinds) <= len(CYCLE) else many(j % 20)
            ax.bar(idx, sc["windows"].to_numpy()[idx], color=colour, width=1.0, label=kind)
        # Series boundaries: a window that spans one joins samples of two series.
        for b in np.flatnonzero(values.to_numpy()[1:] != values.to_numpy()[:-1]):
            ax.axvline(b + 0.5, color="0.3", lw=0.6, ls=":")
        ax.legend(
            fontsize=7,
            ncol=min(len(kinds), 6),
            title=f"{colour_by} (dotted lines: where one series ends)",
            title_fontsize=7,
            loc="upper left",
            bbox_to_anchor=(0, -0.35),
        )
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_xlabel("sample column")
    ax.set_ylabel("windows covering the sample")
    ax.set_title(
        f"Where the windows of {ex.window_counts['with_window']:,} pairs fall", fontsize=10
    )
    step = max(1, int(np.ceil(n / 45)))  # at most ~45 names, readable at 7 pt
    ticks = np.arange(0, n, step)
    ax.set_xticks(ticks, sc["sample"].to_numpy()[ticks], rotation=90, fontsize=7)
    if step > 1:
        ax.set_xlabel(f"sample column (every {step}th named)")
    return fig
