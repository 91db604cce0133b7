"""The study's figures as PNG bytes (matplotlib, Agg backend, no display needed).

One colour-blind-safe palette (Okabe & Ito 2008) with one meaning per colour across the
report: the three negatives strategies (Figure 1), training vs validation (Figure 3),
positive vs negative pairs (Figure 4). Chance lines are grey and dashed, and labelled.
Every figure is drawn at :data:`DPI` dots per inch.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from ..palette import OKABE_ITO
from .protocols import METHODS, MODELS

DPI = 160
# Okabe-Ito colours (tfcnn.palette), each with one meaning in the whole report.
NEGATIVES_COLOURS = {
    "random": OKABE_ITO["orange"],
    "tf-matched": OKABE_ITO["sky_blue"],
    "degree-matched": OKABE_ITO["bluish_green"],
}
TRAINING_COLOUR = OKABE_ITO["blue"]
VALIDATION_COLOUR = OKABE_ITO["vermillion"]
POSITIVE_COLOUR = OKABE_ITO["reddish_purple"]
NEGATIVE_COLOUR = OKABE_ITO["black"]
CHANCE = {"color": "0.45", "lw": 1.0, "ls": "--"}
CEILING_COLOUR = "0.85"
#: Which AUROC each row of Figure 1 shows.
FIGURE1_KINDS = (
    ("within_target", "within-target AUROC\n(target identity cannot raise it)"),
    ("pooled", "pooled AUROC\n(the usual figure)"),
)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _colour(negatives: str, k: int) -> str:
    spare = (OKABE_ITO["yellow"], OKABE_ITO["blue"])
    return NEGATIVES_COLOURS.get(negatives, spare[k % len(spare)])


def _model_ci(row: dict[str, Any], name: str, kind: str) -> dict[str, Any] | None:
    """The 95% CI of a learned model's AUROC of ``kind`` in a protocol row (None: none)."""
    combined = row["combined"]
    if name == "cnn":
        return combined["model_ci"][kind]
    other = (combined.get("models") or {}).get(name)
    return other["model_ci"][kind] if other else None


def protocols_figure(
    rows: list[dict[str, Any]],
    ceiling: dict[str, Any] | None = None,
    methods: list[tuple[str, str]] | None = None,
) -> bytes:
    """Figure 1: AUROC of every method (rows), within targets and pooled, per split.

    Large dot: all replicates' test pairs together (learned models: with their 95% CI);
    small dots: single replicates. Colours: negatives. The learned models' rows are
    shaded; the grey band is the labels' ceiling (interquartile range of the assays'
    agreement), within targets only. ``methods``: (name, label) rows (default: all).
    """
    plt = _plt()
    splits = list(dict.fromkeys(r["split"] for r in rows))
    negs = list(dict.fromkeys(r["negatives"] for r in rows))
    methods = list(METHODS) if methods is None else methods
    names = [m for m, _ in methods]
    labels = [lab for _, lab in methods]
    learned = [m for m, name in enumerate(names) if name in MODELS.values()]
    fig, axes = plt.subplots(
        len(FIGURE1_KINDS),
        len(splits),
        figsize=(3.6 * len(splits) + 1.6, 3.1 * len(FIGURE1_KINDS) + 0.6),
        sharey=True,
        sharex=True,
        squeeze=False,
    )
    lows = [0.4]
    for (i, (kind, ylabel)), (j, split) in (
        (a, b) for a in enumerate(FIGURE1_KINDS) for b in enumerate(splits)
    ):
        ax = axes[i, j]
        for m in learned:  # the learned models' rows
            ax.axhspan(m - 0.5, m + 0.5, color=OKABE_ITO["yellow"], alpha=0.25, lw=0)
        band = ceiling.get("overall") if ceiling else None
        if band and kind == "within_target":
            ax.axvspan(band["q25"], band["q75"], color=CEILING_COLOUR, lw=0, zorder=0)
        ax.axvline(0.5, **CHANCE, zorder=1)
        for k, neg in enumerate(negs):
            row = next((r for r in rows if r["split"] == split and r["negatives"] == neg), None)
            if row is None:
                continue
            off = (k - (len(negs) - 1) / 2) * 0.22
            colour = _colour(neg, k)
            combined = row["combined"]["methods"]
            for m, name in enumerate(names):
                reps = (row["methods"].get(name) or {}).get(f"{kind}_auroc", {}).get("values", [])
                ax.scatter(reps, [m + off] * len(reps), s=7, color=colour, alpha=0.45, lw=0)
                lows += reps
                point = (combined.get(name) or {}).get(f"{kind}_auroc")
                if point is None:
                    continue
                lows.append(point)
                ci = _model_ci(row, name, kind)
                xerr = None
                if ci and ci["low"] is not None:
                    xerr = [[point - ci["low"]], [ci["high"] - point]]
                    lows.append(ci["low"])
                ax.errorbar(
                    point,
                    m + off,
                    xerr=xerr,
                    fmt="o",
                    ms=5,
                    color=colour,
                    mec="black" if name in MODELS.values() else colour,
                    mew=0.6,
                    capsize=2,
                    zorder=3,
                )
        if i == 0:
            ax.set_title(f"split: {split}", fontsize=10)
        if i == len(FIGURE1_KINDS) - 1:
            ax.set_xlabel("test AUROC")
        if j == 0:
            ax.set_ylabel(ylabel, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    low = min(lows)
    for ax in axes.flat:
        ax.set_xlim(min(0.4, math.floor(low * 20) / 20) - 0.02, 1.01)
    axes[-1, 0].annotate(
        "chance 0.5",
        xy=(0.5, 0.0),
        xycoords=("data", "axes fraction"),
        xytext=(3, 3),
        textcoords="offset points",
        fontsize=7,
        color="0.35",
    )
    for ax in axes[:, 0]:
        ax.set_yticks(range(len(names)), labels, fontsize=8)
        for m in learned:
            ax.get_yticklabels()[m].set_fontweight("bold")
    axes[0, 0].set_ylim(len(names) - 0.5, -0.5)
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=_colour(n, k), label=f"{n} negatives")
        for k, n in enumerate(negs)
    ]
    handles.append(plt.Line2D([], [], **CHANCE, label="chance (0.5)"))
    if ceiling and ceiling.get("overall"):
        handles.append(
            plt.Rectangle((0, 0), 1, 1, color=CEILING_COLOUR, label="assays' agreement (IQR)")
        )
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=len(handles),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    return _png(fig)


def grid_figure(rows: list[dict[str, Any]]) -> bytes:
    """Figure 2: filters conv 1 x conv 2, one panel per dense size; size and colour = accuracy.

    A legend gives three dot sizes with their accuracies.
    """
    plt = _plt()
    units = sorted({r["units"] for r in rows})
    values = sorted({r["filters_1"] for r in rows} | {r["filters_2"] for r in rows})
    acc = np.array([r["val_accuracy"] for r in rows], dtype=float)
    lo, hi = float(np.nanmin(acc)), float(np.nanmax(acc))

    def size(a: np.ndarray | float) -> np.ndarray:
        return 20 + 300 * (np.asarray(a) - lo) / max(hi - lo, 1e-9)

    fig, axes = plt.subplots(
        1, len(units), figsize=(3.0 * len(units) + 1.5, 3.4), sharey=True, squeeze=False
    )
    sc = None
    for ax, u in zip(axes[0], units, strict=True):
        sub = [r for r in rows if r["units"] == u]
        a = np.array([r["val_accuracy"] for r in sub], dtype=float)
        sc = ax.scatter(
            [values.index(r["filters_1"]) for r in sub],
            [values.index(r["filters_2"]) for r in sub],
            s=size(a),
            c=a,
            cmap="cividis",
            vmin=lo,
            vmax=hi,
            edgecolors="black",
            linewidths=0.3,
        )
        ax.set_xticks(range(len(values)), values)
        ax.set_yticks(range(len(values)), values)
        ax.set_title(f"dense units {u}", fontsize=10)
        ax.set_xlabel("filters, conv 1")
        ax.set_xlim(-0.6, len(values) - 0.4)
        ax.set_ylim(-0.6, len(values) - 0.4)
    axes[0, 0].set_ylabel("filters, conv 2")
    if sc is not None:
        fig.colorbar(sc, ax=list(axes[0]), label="validation accuracy (last epoch)", pad=0.02)
    marks = sorted({lo, (lo + hi) / 2, hi})
    handles = [
        plt.scatter([], [], s=float(size(v)), color="0.6", edgecolors="black", lw=0.3)
        for v in marks
    ]
    fig.legend(
        handles,
        [f"{v:.3f}" for v in marks],
        title="dot size = validation accuracy",
        loc="upper center",
        bbox_to_anchor=(0.45, 0.0),
        ncol=len(marks),
        fontsize=8,
        title_fontsize=8,
        frameon=False,
    )
    return _png(fig)


def curves_figure(histories: list[tuple[str, list[dict[str, Any]]]]) -> bytes:
    """Figure 3: accuracy and loss per epoch, training vs validation, one column per
    protocol; each row shares its y-axis, with the chance level (accuracy 0.5, loss ln 2)."""
    plt = _plt()
    fig, axes = plt.subplots(
        2,
        len(histories),
        figsize=(3.6 * len(histories) + 0.5, 5.2),
        sharey="row",
        sharex=True,
        squeeze=False,
    )
    for j, (title, history) in enumerate(histories):
        epochs = [h["epoch"] for h in history]
        for i, (key, chance) in enumerate((("accuracy", 0.5), ("loss", math.log(2)))):
            ax = axes[i, j]
            ax.plot(epochs, [h[key] for h in history], color=TRAINING_COLOUR, label="training")
            ax.plot(
                epochs,
                [h.get(f"val_{key}") for h in history],
                color=VALIDATION_COLOUR,
                label="validation",
            )
            ax.axhline(chance, **CHANCE, label="chance")
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel(key)
            if i == 1:
                ax.set_xlabel("epoch")
        axes[0, j].set_title(title, fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    return _legend_below(fig, handles, labels)


def _legend_below(fig, handles: list[Any], labels: list[str]) -> bytes:
    """One legend under the panels (never inside one), then the PNG."""
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=len(handles),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    return _png(fig)


def distribution_figure(hists: list[tuple[str, dict[str, Any]]]) -> bytes:
    """Figure 4: the CNN's predicted probabilities on test pairs by true class, one
    panel per protocol: step outlines (no overlapping bars), counts on a log scale."""
    plt = _plt()
    fig, axes = plt.subplots(
        1, len(hists), figsize=(3.6 * len(hists) + 0.5, 3.0), sharey=True, squeeze=False
    )
    for ax, (title, hist) in zip(axes[0], hists, strict=True):
        edges = np.asarray(hist["edges"])
        for key, colour, label in (
            ("negative", NEGATIVE_COLOUR, "negative test pairs"),
            ("positive", POSITIVE_COLOUR, "positive test pairs"),
        ):
            counts = np.asarray(hist[key], dtype=float)
            ax.stairs(
                np.where(counts > 0, counts, np.nan), edges, color=colour, lw=1.4, label=label
            )
        ax.axvline(0.5, **CHANCE)
        ax.set_yscale("log")
        ax.set_xlim(0, 1)
        ax.set_xlabel("predicted probability of regulation")
        neg, pos = hist["share_negatives_below_0.05"], hist["share_positives_above_0.95"]
        ax.set_title(
            f"{title}\nnegatives < 0.05: {neg:.0%}; positives > 0.95: {pos:.0%}", fontsize=8
        )
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("test pairs (log scale)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], **CHANCE))
    labels.append("0.5")
    return _legend_below(fig, handles, labels)
