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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: A TF scoring above 0.5 with more than this share of all genes gets a warning.
SHORTCUT_SHARE = 0.5
_CHUNK = 4_000_000  # comparisons per block when ranking within columns


@dataclass
class RowStats:
    """Per regulator: its scores against every gene (self excluded), summarised."""

    base_rate: np.ndarray  # share of genes scored above 0.5
    mean: np.ndarray
    sorted_rows: np.ndarray  # each row sorted, NaN (self) last
    counts: np.ndarray  # genes per row (all but self)

    @property
    def shortcut(self) -> np.ndarray:
        """Regulators scoring above 0.5 with more than half of all genes."""
        return self.base_rate > SHORTCUT_SHARE


def row_stats(
    score_rows: Callable[[np.ndarray], np.ndarray], reg_rows: np.ndarray, n_genes: int
) -> RowStats:
    """Summaries of each regulator's row over all ``n_genes`` genes (self excluded).

    ``score_rows(rows)`` returns the probabilities of ``rows`` x all genes; it is called
    on blocks of regulators so that memory stays bounded.
    """
    reg_rows = np.asarray(reg_rows, dtype=np.int64)
    base = np.empty(reg_rows.size)
    mean = np.empty(reg_rows.size)
    sorted_rows = np.empty((reg_rows.size, n_genes), dtype=np.float32)
    block = max(1, 2_000_000 // max(1, n_genes))
    for lo in range(0, reg_rows.size, block):
        rows = reg_rows[lo : lo + block]
        grid = np.asarray(score_rows(rows), dtype=np.float64)
        grid[np.arange(rows.size), rows] = np.nan  # a gene with itself is never scored
        base[lo : lo + rows.size] = np.nanmean(grid > 0.5, axis=1, where=~np.isnan(grid))
        mean[lo : lo + rows.size] = np.nanmean(grid, axis=1)
        sorted_rows[lo : lo + rows.size] = np.sort(grid, axis=1)  # NaN sorts last
    return RowStats(base, mean, sorted_rows, np.full(reg_rows.size, n_genes - 1))


def percentile_in_rows(stats: RowStats, which: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Percentile (0-100, ties half) of each value within row ``which[i]`` of ``stats``."""
    out = np.empty(values.size)
    for r in np.unique(which):
        m = which == r
        row = stats.sorted_rows[r, : stats.counts[r]]
        v = values[m].astype(np.float32)
        below = np.searchsorted(row, v, "left")
        upto = np.searchsorted(row, v, "right")
        out[m] = (below + upto) / 2 / max(1, row.size) * 100
    return out


def column_stats(
    reference: np.ndarray, ref_rows: np.ndarray, target_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, reference with self-pairs as NaN) of each target over reference regulators.

    ``reference`` holds the scores of ``ref_rows`` x ``target_rows``.
    """
    ref = np.array(reference, dtype=np.float64, copy=True)
    ref[np.asarray(ref_rows)[:, None] == np.asarray(target_rows)[None, :]] = np.nan
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(ref, axis=0) if ref.shape[0] else np.full(ref.shape[1], np.nan)
    return mean, ref


def percentile_in_columns(
    reference: np.ndarray, columns: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """Percentile of ``values[i]`` within column ``columns[i]`` of ``reference`` (NaN skipped)."""
    out = np.full(values.size, np.nan)
    n_ref = reference.shape[0]
    if n_ref < 2:
        return out  # one reference regulator says nothing about the column
    step = max(1, _CHUNK // n_ref)
    valid = ~np.isnan(reference)
    counts = valid.sum(axis=0)
    for lo in range(0, values.size, step):
        cols = columns[lo : lo + step]
        ref = reference[:, cols]
        v = values[lo : lo + step][None, :]
        below = np.sum(ref < v, axis=0)
        equal = np.sum(ref == v, axis=0)
        n = counts[cols]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[lo : lo + step] = np.where(n > 1, (below + equal / 2) / n * 100, np.nan)
    return out
