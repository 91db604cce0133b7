"""Binary classification metrics for pair predictions, JSON-ready."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score


def log_loss(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Mean binary cross-entropy, clipped as Keras does (1e-7)."""
    p = np.clip(np.asarray(prob, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(y_true, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def auroc(y_true: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve, or None when only one class is present.

    The Mann-Whitney AUROC of :class:`~tfcnn.evaluation.ranking.GroupedAUROC` over one
    group (a tie counts one half: ``sklearn.metrics.roc_auc_score``'s value); the greater
    label is the positive class. Training computes it every epoch, where
    ``roc_auc_score``'s input checks cost ~6 ms a call.
    """
    from .ranking import GroupedAUROC

    y = np.asarray(y_true)
    classes = np.unique(y)
    if classes.size < 2:
        return None
    if classes.size > 2:
        raise ValueError(f"AUROC needs two classes; the labels have {classes.size}")
    s = np.asarray(score, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinity")
    positive = (y == classes[1]).astype(np.int64)
    return GroupedAUROC(positive, s, np.zeros(y.shape, dtype=np.int64)).value()


def auprc(y_true: np.ndarray, score: np.ndarray) -> float | None:
    """Average precision (area under the precision-recall curve), or None with one class."""
    y = np.asarray(y_true)
    if y.size == 0 or np.unique(y).size < 2:
        return None
    return float(average_precision_score(y, score))


def binary_metrics(y_true: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, loss, AUROC, AUPRC and the confusion matrix at ``threshold``."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(prob, dtype=np.float64)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} differ in shape")
    pred = (p >= threshold).astype(int)
    tp = int(np.sum((pred == 1) & (y == 1)))
    tn = int(np.sum((pred == 0) & (y == 0)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    return {
        "n": int(y.size),
        "n_positive": int(y.sum()),
        "accuracy": float((tp + tn) / y.size) if y.size else None,
        "loss": log_loss(y, p) if y.size else None,
        "auroc": auroc(y, p),
        "auprc": auprc(y, p),
        "threshold": threshold,
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }


N_QUANTILES = 101


def probability_distribution(y_true: np.ndarray, prob: np.ndarray) -> dict:
    """Per-class quantiles (0, 1, ..., 100 %) of predicted probabilities, JSON-ready.

    Stored with a model so a new pair's probability can be placed within the training
    distribution of each class (its percentile), and plotted against it. Also the
    study's Figure 4 summary: share of negatives below 0.05 and positives above 0.95.
    """
    y = np.asarray(y_true).astype(int)
    p = np.asarray(prob, dtype=np.float64)
    grid = np.linspace(0.0, 1.0, N_QUANTILES)
    out: dict = {"quantile_levels": grid.tolist()}
    for label, name in ((0, "negative"), (1, "positive")):
        values = p[y == label]
        out[name] = {
            "n": int(values.size),
            "quantiles": np.quantile(values, grid).tolist() if values.size else [],
        }
    neg, pos = p[y == 0], p[y == 1]
    out["share_negatives_below_0.05"] = float(np.mean(neg < 0.05)) if neg.size else None
    out["share_positives_above_0.95"] = float(np.mean(pos > 0.95)) if pos.size else None
    return out


def percentile_in(distribution: dict, cls: str, prob: np.ndarray) -> np.ndarray:
    """Percentile (0-100) of each probability within one class of a stored distribution."""
    q = np.asarray(distribution[cls]["quantiles"], dtype=np.float64)
    if q.size == 0:
        return np.full(np.shape(prob), np.nan)
    levels = np.asarray(distribution["quantile_levels"], dtype=np.float64) * 100
    # Quantiles can repeat (ties); interpolate on the unique ones, taking the mid level.
    uq, first = np.unique(q, return_index=True)
    last = np.concatenate([first[1:] - 1, [q.size - 1]])
    mid = (levels[first] + levels[last]) / 2
    return np.interp(np.asarray(prob, dtype=np.float64), uq, mid, left=0.0, right=100.0)
