"""The study's figures as PNG bytes (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from .protocols import METHODS


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def protocols_figure(rows: list[dict[str, Any]]) -> bytes:
    """AUROC (mean, sd error bar, each replicate as a dot) per method, one panel per split."""
    plt = _plt()
    splits = list(dict.fromkeys(r["split"] for r in rows))
    negs = list(dict.fromkeys(r["negatives"] for r in rows))
    colors = dict(zip(negs, ("tab:red", "tab:blue", "tab:green", "tab:purple"), strict=False))
    fig, axes = plt.subplots(1, len(splits), figsize=(4.2 * len(splits), 4.8), sharey=True)
    axes = np.atleast_1d(axes)
    names = [m for m, _ in METHODS]
    labels = [lab for _, lab in METHODS]
    for ax, split in zip(axes, splits, strict=True):
        for k, neg in enumerate(negs):
            row = next((r for r in rows if r["split"] == split and r["negatives"] == neg), None)
            if row is None:
                continue
            off = (k - (len(negs) - 1) / 2) * 0.22
            for i, name in enumerate(names):
                s = row["methods"][name]["auroc"]
                if s["mean"] is None:
                    continue
                y = i + off
                ax.scatter(s["values"], [y] * len(s["values"]), s=8, color=colors[neg], alpha=0.4)
                ax.errorbar(
                    s["mean"],
                    y,
                    xerr=s["sd"] or 0,
                    fmt="o",
                    color=colors[neg],
                    ms=5,
                    label=neg if i == 0 else None,
                )
        ax.axvline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_title(f"split: {split}")
        ax.set_xlabel("test AUROC")
        lows = [v for r in rows for name in names for v in r["methods"][name]["auroc"]["values"]]
        ax.set_xlim(min([0.3, *lows]) - 0.02, 1.01)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)), labels)
    axes[0].invert_yaxis()
    axes[-1].legend(title="negatives", loc="lower right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def grid_figure(rows: list[dict[str, Any]]) -> bytes:
    """Figure 2: filters conv 1 x conv 2, one panel per dense size; size and colour = accuracy."""
    plt = _plt()
    units = sorted({r["units"] for r in rows})
    values = sorted({r["filters_1"] for r in rows} | {r["filters_2"] for r in rows})
    acc = np.array([r["val_accuracy"] for r in rows], dtype=float)
    lo, hi = float(np.nanmin(acc)), float(np.nanmax(acc))
    fig, axes = plt.subplots(1, len(units), figsize=(3.3 * len(units), 3.6), sharey=True)
    axes = np.atleast_1d(axes)
    sc = None
    for ax, u in zip(axes, units, strict=True):
        sub = [r for r in rows if r["units"] == u]
        a = np.array([r["val_accuracy"] for r in sub], dtype=float)
        size = 30 + 400 * (a - lo) / max(hi - lo, 1e-9)
        sc = ax.scatter(
            [values.index(r["filters_1"]) for r in sub],
            [values.index(r["filters_2"]) for r in sub],
            s=size,
            c=a,
            cmap="viridis",
            vmin=lo,
            vmax=hi,
        )
        ax.set_xticks(range(len(values)), values)
        ax.set_yticks(range(len(values)), values)
        ax.set_title(f"dense units {u}")
        ax.set_xlabel("filters, conv 1")
        ax.set_xlim(-0.6, len(values) - 0.4)
        ax.set_ylim(-0.6, len(values) - 0.4)
    axes[0].set_ylabel("filters, conv 2")
    if sc is not None:
        fig.colorbar(sc, ax=list(axes), label="validation accuracy (last epoch)")
    return _png(fig)


def curves_figure(history: list[dict[str, Any]], title: str) -> bytes:
    """Figure 3: accuracy and loss per epoch, training vs validation."""
    plt = _plt()
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, name in ((axes[0], "accuracy", "accuracy"), (axes[1], "loss", "loss")):
        ax.plot(epochs, [h[key] for h in history], label="training", color="tab:blue")
        ax.plot(
            epochs, [h.get(f"val_{key}") for h in history], label="validation", color="tab:orange"
        )
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def distribution_figure(hist: dict[str, Any], title: str) -> bytes:
    """Figure 4: predicted probabilities on the training set by true class."""
    plt = _plt()
    edges = np.asarray(hist["edges"])
    width = np.diff(edges)
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.bar(
        edges[:-1],
        hist["negative"],
        width=width,
        align="edge",
        alpha=0.6,
        label="negatives",
        color="tab:blue",
    )
    ax.bar(
        edges[:-1],
        hist["positive"],
        width=width,
        align="edge",
        alpha=0.6,
        label="positives",
        color="tab:red",
    )
    neg, pos = hist["share_negatives_below_0.05"], hist["share_positives_above_0.95"]
    ax.set_xlabel("predicted probability of regulation (training pairs)")
    ax.set_ylabel("pairs")
    ax.set_title(
        f"{title}\nnegatives below 0.05: {neg:.1%}; positives above 0.95: {pos:.1%}", fontsize=9
    )
    ax.legend()
    fig.tight_layout()
    return _png(fig)
