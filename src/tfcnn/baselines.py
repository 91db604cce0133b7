"""Scores that need no training, computed on exactly the pairs a model is tested on."""

from __future__ import annotations

import numpy as np
import pandas as pd


def pearson_scores(x: np.ndarray) -> np.ndarray:
    """Pearson correlation of the TF and target profile of each pair, shape (N,).

    ``x`` is (N, 2, S); rows need not be z-scored. Constant rows give 0.
    """
    a = np.asarray(x[:, 0, :], dtype=np.float64)
    b = np.asarray(x[:, 1, :], dtype=np.float64)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    num = (a * b).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), 0.0)
    return r


def target_frequency_scores(train_positive_targets: pd.Series, targets: pd.Series) -> np.ndarray:
    """How often each target was a positive's target in training: a no-expression control.

    If this scores well, a model can too by recognising frequently regulated ("hub")
    targets rather than reading the TF/target relation in the profiles.
    """
    counts = train_positive_targets.value_counts()
    return targets.map(counts).fillna(0).to_numpy(dtype=np.float64)
