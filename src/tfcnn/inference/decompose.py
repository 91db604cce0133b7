"""What a pair's score says beyond its TF and its target.

A probability mixes three things: how high the model scores this TF with any gene (its
*base rate*: a model that recognises TFs scores some of them above 0.9 with most genes),
how high it scores this target with any TF, and what is specific to the pair. Users see
all three side by side:

* the TF's base rate: the share of all genes it scores above 0.5, and its mean;
* the target's mean over the reference TFs (the query's regulators and the model's
  training TFs);
* the pair's percentile within its TF's row (all genes) and within its target's column
  (the reference TFs): the pair-specific part, what to rank by;
* flags saying whether the TF, the target or the pair itself was in the model's training
  data: a training pair is memorised, not predicted.

A TF that scores above 0.5 with more than half of all genes gets a warning: its
probabilities rank its targets at best.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

#: A TF scoring above 0.5 with more than this share of all genes gets a warning.
SHORTCUT_SHARE = 0.5


@dataclass
class RowStats:
    """Per regulator: its scores against every gene (self excluded), summarised."""

    base_rate: np.ndarray  # share of genes scored above 0.5
    mean: np.ndarray
    percentiles: np.ndarray  # (regulators, genes): each gene's percentile in the row; NaN self

    @property
    def shortcut(self) -> np.ndarray:
        """Regulators scoring above 0.5 with more than half of all genes."""
        return self.base_rate > SHORTCUT_SHARE


def _percentile_ranks(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(percentile 0-100 with ties counted half, non-NaN count) of each value along
    ``axis`` among the non-NaN values there; NaN stays NaN."""
    ranks = rankdata(values, axis=axis, nan_policy="omit")
    counts = np.sum(~np.isnan(values), axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ranks - 0.5) / counts * 100, counts


def row_stats(
    score_rows: Callable[[np.ndarray], np.ndarray], reg_rows: np.ndarray, n_genes: int
) -> RowStats:
    """Summaries of each regulator's row over all ``n_genes`` genes (self excluded).

    ``score_rows(rows)`` returns the probabilities of ``rows`` x all genes; it is called
    on blocks of regulators so that memory stays bounded. A pair's row percentile is
    read from the row itself, so it does not depend on how the query was scored.
    """
    reg_rows = np.asarray(reg_rows, dtype=np.int64)
    base = np.empty(reg_rows.size)
    mean = np.empty(reg_rows.size)
    percentiles = np.empty((reg_rows.size, n_genes), dtype=np.float32)
    block = max(1, 2_000_000 // max(1, n_genes))
    for lo in range(0, reg_rows.size, block):
        rows = reg_rows[lo : lo + block]
        grid = np.asarray(score_rows(rows), dtype=np.float64)
        grid[np.arange(rows.size), rows] = np.nan  # a gene with itself is never scored
        base[lo : lo + rows.size] = np.nanmean(grid > 0.5, axis=1, where=~np.isnan(grid))
        mean[lo : lo + rows.size] = np.nanmean(grid, axis=1)
        percentiles[lo : lo + rows.size] = _percentile_ranks(grid, axis=1)[0]
    return RowStats(base, mean, percentiles)


class RowStatsCache:
    """Row summaries of regulators already seen, kept up to ``max_bytes`` (least recently
    used dropped first); shared by a server's sessions, so it is thread-safe.

    A regulator's row (its scores with every gene) depends only on the model and the
    scoring matrix, so a server answering many queries about the same TFs scores each
    regulator's whole row once instead of once per query.
    """

    def __init__(self, max_bytes: int = 64 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._rows: OrderedDict[int, tuple[float, float, np.ndarray]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        """Forget every row (e.g. when the scores behind them change)."""
        with self._lock:
            self._rows.clear()
            self._bytes = 0

    def stats(
        self,
        score_rows: Callable[[np.ndarray], np.ndarray],
        reg_rows: np.ndarray,
        n_genes: int,
    ) -> RowStats:
        """:func:`row_stats` of ``reg_rows``, scoring only the regulators not cached."""
        reg_rows = np.asarray(reg_rows, dtype=np.int64)
        found: dict[int, tuple[float, float, np.ndarray]] = {}
        with self._lock:  # entries are never changed in place: holding one is safe
            for r in reg_rows.tolist():
                if r in self._rows:
                    found[r] = self._rows[r]
                    self._rows.move_to_end(r)
        missing = np.array([r for r in dict.fromkeys(reg_rows.tolist()) if r not in found])
        if missing.size:
            fresh = row_stats(score_rows, missing.astype(np.int64), n_genes)
            with self._lock:
                for i, r in enumerate(missing.tolist()):
                    found[r] = (fresh.base_rate[i], fresh.mean[i], fresh.percentiles[i])
                    self._put(r, found[r])
        parts = [found[r] for r in reg_rows.tolist()]
        return RowStats(
            np.array([p[0] for p in parts], dtype=np.float64),
            np.array([p[1] for p in parts], dtype=np.float64),
            np.stack([p[2] for p in parts]) if parts else np.empty((0, n_genes), np.float32),
        )

    def _put(self, row: int, entry: tuple[float, float, np.ndarray]) -> None:
        """Keep ``entry`` (a copy of its row), dropping the oldest past the byte budget."""
        if row in self._rows or entry[2].nbytes > self.max_bytes:
            return
        self._rows[row] = (entry[0], entry[1], entry[2].copy())
        self._bytes += entry[2].nbytes
        while self._bytes > self.max_bytes:
            _, old = self._rows.popitem(last=False)
            self._bytes -= old[2].nbytes


def percentile_in_rows(stats: RowStats, which: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Percentile of gene ``targets[i]`` within row ``which[i]`` of ``stats``."""
    return stats.percentiles[which, targets].astype(np.float64)


def column_stats(
    reference: np.ndarray, ref_rows: np.ndarray, target_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, reference with self-pairs as NaN) of each target over reference regulators.

    ``reference`` holds the scores of ``ref_rows`` x ``target_rows``.
    """
    ref = np.array(reference, dtype=np.float64, copy=True)
    ref[np.asarray(ref_rows)[:, None] == np.asarray(target_rows)[None, :]] = np.nan
    # nanmean without its "Mean of empty slice" warning: a target whose only reference
    # regulator is itself has no mean (NaN), which is an answer, not a problem
    valid = ~np.isnan(ref)
    count = valid.sum(axis=0)
    total = np.where(valid, ref, 0.0).sum(axis=0)
    mean = np.divide(total, count, out=np.full(ref.shape[1], np.nan), where=count > 0)
    return mean, ref


def percentile_in_columns(reference: np.ndarray, n_rows: int) -> np.ndarray:
    """Percentile (0-100, ties half) of each of the first ``n_rows`` rows' values within
    its column of ``reference`` (NaN skipped and kept NaN), shape (n_rows, columns)."""
    out = np.full((n_rows, reference.shape[1]), np.nan)
    if reference.shape[0] < 2:
        return out  # one reference regulator says nothing about the column
    percent, counts = _percentile_ranks(reference, axis=0)
    return np.where(counts > 1, percent, np.nan)[:n_rows]
