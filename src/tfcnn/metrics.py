"""Binary classification metrics for pair predictions, JSON-ready."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def log_loss(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Mean binary cross-entropy, clipped as Keras does (1e-7)."""
    p = np.clip(np.asarray(prob, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(y_true, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def auroc(y_true: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve, or None when only one class is present."""
    y = np.asarray(y_true)
    if y.size == 0 or np.unique(y).size < 2:
        return None
    return float(roc_auc_score(y, score))


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
