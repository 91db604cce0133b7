"""Ranking metrics that node identity cannot fake: AUROC within each target and each TF.

Pooled AUROC compares every positive with every negative. When positives and negatives
differ in which TFs and targets they involve (hub TFs, hub targets), a score that only
recognises the TF or the target ranks well without reading any relation between them:
under the study's random negatives a model of the TF's profile alone scores 0.997.

**Within-target AUROC** compares only pairs that share a target: for every target with
at least one positive and one negative pair, the Mann-Whitney AUROC of the scores of
those pairs (ties count one half); the per-target AUROCs are then combined weighted by
the target's number of pairs. **Within-TF AUROC** is the same with pairs grouped by TF.
Any score that is constant within a target (the target-only control, the target's
training frequency) gets exactly 0.5 within-target, and any TF-level score exactly 0.5
within-TF; with exactly degree-matched negatives (:mod:`tfcnn.pairs.negatives`) a TF-level
score is also 0.5 within-target in expectation.

Why weight groups by their pairs: a hub target with 50 pairs then counts 25 times a
target with 2, not about 600 times as when every (positive, negative) comparison counts
once (``weighting="comparisons"``, also available); and a target with one positive and
one negative (AUROC 0 or 1) cannot swing the figure as it would in an unweighted mean
(``"groups"``).

Folds: pairs scored by different models (different folds) are never compared: give
``fold`` and groups become (fold, target); pooled AUROC is then computed within each
fold and combined by pairs.

Uncertainty: :func:`paired_bootstrap` resamples TFs (the unit folds are grouped by), so
a CI reflects which TFs happened to be tested. A pair's weight is its TF's multiplicity
in the replicate; comparisons weigh the product of their pairs' weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

WEIGHTINGS = ("pairs", "comparisons", "groups")
GROUPINGS = ("pooled", "within_target", "within_tf")


def group_ids(*keys: np.ndarray | None) -> np.ndarray:
    """Dense integer ids of the combinations of the given key arrays (None: ignored)."""
    columns = [np.unique(np.asarray(k), return_inverse=True)[1] for k in keys if k is not None]
    if not columns:
        raise ValueError("at least one key array is needed")
    combined = np.zeros(columns[0].size, dtype=np.int64)
    for c in columns:
        combined = combined * (int(c.max()) + 1 if c.size else 1) + c
    return np.unique(combined, return_inverse=True)[1].astype(np.int64)


class GroupedAUROC:
    """Weighted Mann-Whitney AUROC within groups, sorted once for many weightings.

    Set up once per (score, grouping); :meth:`value` then costs O(N) for any pair weights,
    which makes a bootstrap of thousands of replicates cheap.
    """

    def __init__(self, y: np.ndarray, score: np.ndarray, group: np.ndarray) -> None:
        y = np.asarray(y).astype(np.int64)
        s = np.asarray(score, dtype=np.float64)
        g = np.asarray(group, dtype=np.int64)
        if not (y.shape == s.shape == g.shape) or y.ndim != 1:
            raise ValueError("y, score and group must be 1-D arrays of one length")
        if not np.isfinite(s).all():
            raise ValueError("scores must be finite")
        self._order = np.lexsort((s, g))
        gs, ss = g[self._order], s[self._order]
        new_block = np.r_[True, (gs[1:] != gs[:-1]) | (ss[1:] != ss[:-1])] if y.size else []
        self._block = np.cumsum(new_block) - 1  # runs of equal (group, score)
        self._n_blocks = int(self._block[-1]) + 1 if y.size else 0
        self._block_group = gs[np.asarray(new_block, dtype=bool)]
        self._n_groups = int(g.max()) + 1 if y.size else 0
        self._y = y[self._order]
        starts = np.r_[True, self._block_group[1:] != self._block_group[:-1]] if y.size else []
        self._first = np.flatnonzero(starts)

    def per_group(
        self, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(AUROC, pair weight, comparison weight) per group id; AUROC NaN without both."""
        w = (
            np.ones(self._y.size)
            if weights is None
            else np.asarray(weights, dtype=np.float64)[self._order]
        )
        wp = w * self._y
        wn = w - wp
        bp = np.bincount(self._block, wp, self._n_blocks)
        bn = np.bincount(self._block, wn, self._n_blocks)
        cum = np.cumsum(bn)
        group_start = np.repeat(
            cum[self._first] - bn[self._first], np.diff(np.r_[self._first, self._n_blocks])
        )
        below = cum - bn - group_start  # negative weight scored lower, same group
        concordant = np.bincount(self._block_group, bp * (below + 0.5 * bn), self._n_groups)
        gp = np.bincount(self._block_group, bp, self._n_groups)
        gn = np.bincount(self._block_group, bn, self._n_groups)
        comparisons = gp * gn
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = np.where(
                comparisons > 0, concordant / np.where(comparisons > 0, comparisons, 1), np.nan
            )
        return auc, gp + gn, comparisons

    def value(self, weighting: str = "pairs", weights: np.ndarray | None = None) -> float | None:
        """The combined AUROC (None when no group has both classes)."""
        auc, n, comparisons = self.per_group(weights)
        ok = comparisons > 0
        if not ok.any():
            return None
        if weighting == "pairs":
            return float(np.sum(n[ok] * auc[ok]) / np.sum(n[ok]))
        if weighting == "comparisons":
            return float(np.sum(comparisons[ok] * auc[ok]) / np.sum(comparisons[ok]))
        if weighting == "groups":
            return float(np.mean(auc[ok]))
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}")


def grouping(
    kind: str, tf: np.ndarray, target: np.ndarray, fold: np.ndarray | None = None
) -> np.ndarray:
    """Group ids for ``kind`` (pooled, within_target, within_tf), inside folds if given."""
    if kind == "pooled":
        return group_ids(fold) if fold is not None else np.zeros(len(tf), dtype=np.int64)
    if kind == "within_target":
        return group_ids(fold, target)
    if kind == "within_tf":
        return group_ids(fold, tf)
    raise ValueError(f"grouping must be one of {', '.join(GROUPINGS)}")


def grouped_auroc(
    y: np.ndarray,
    score: np.ndarray,
    tf: np.ndarray,
    target: np.ndarray,
    kind: str = "within_target",
    fold: np.ndarray | None = None,
    weighting: str = "pairs",
) -> float | None:
    """AUROC of ``score`` pooled, within targets or within TFs (see the module doc)."""
    return GroupedAUROC(y, score, grouping(kind, tf, target, fold)).value(weighting)


def auroc_per_fold(
    y: np.ndarray,
    score: np.ndarray,
    tf: np.ndarray,
    target: np.ndarray,
    fold: np.ndarray,
    kind: str = "within_target",
) -> list[float | None]:
    """:func:`grouped_auroc` of each fold on its own, in the order of the fold ids."""
    return [
        grouped_auroc(y[fold == k], score[fold == k], tf[fold == k], target[fold == k], kind)
        for k in np.unique(fold).tolist()
    ]


def expected_average_precision(n: int, k: int) -> float:
    """Expected average precision of a uniformly random ranking of ``n`` items, ``k`` positive.

    A positive at rank r has, in expectation, (k - 1)(r - 1)/(n - 1) positives above it;
    averaging its precision over r = 1..n gives (H_n + (k - 1)(n - H_n)/(n - 1)) / n.
    """
    if not 0 < k <= n:
        raise ValueError(f"need 0 < k <= n (got n={n}, k={k})")
    return float(_expected_average_precision(np.array([n]), np.array([k]))[0])


def _expected_average_precision(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """:func:`expected_average_precision` of each (n, k), all at once (0 < k <= n)."""
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, int(n.max()) + 1))])[n]
    spread = (k - 1) * (n - harmonic) / np.maximum(n - 1, 1)
    return np.where(n > 1, (harmonic + spread) / n, 1.0)


def group_average_precision(
    y: np.ndarray, score: np.ndarray, group: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average precision of each group, all groups in one pass: (AP, pairs, positives)
    per group id ``0..group.max()`` (AP is NaN where a group lacks a class).

    The definition of scikit-learn's ``average_precision_score``: over the group's pairs
    ranked by score, the mean over its positives of the precision at the last pair that
    ties with it (a tie is one threshold). One sort for all groups instead of a call per
    group (thousands of targets: the call's overhead was most of an evaluation's time).
    """
    y = np.asarray(y).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    group = np.asarray(group, dtype=np.int64)
    n_groups = int(group.max()) + 1 if group.size else 0
    pairs = np.bincount(group, minlength=n_groups)
    positives = np.bincount(group, weights=y, minlength=n_groups)
    ap = np.full(n_groups, np.nan)
    if group.size == 0:
        return ap, pairs, positives
    order = np.lexsort((-s, group))  # by group, then score from high to low
    g, ss, yy = group[order], s[order], y[order]
    start = np.r_[True, g[1:] != g[:-1]]
    run_end = np.r_[(g[1:] != g[:-1]) | (ss[1:] != ss[:-1]), True]  # last of a tie run
    first = np.flatnonzero(start)
    group_first = first[np.cumsum(start) - 1]  # each pair's group's first position
    hits = np.cumsum(yy)
    hits_before = np.where(group_first > 0, hits[group_first - 1], 0)
    rank = np.arange(g.size) - group_first + 1
    precision = (hits - hits_before) / rank
    ends = np.flatnonzero(run_end)
    at_end = precision[ends[np.searchsorted(ends, np.arange(g.size))]]  # at each tie's end
    sums = np.bincount(g[yy], weights=at_end[yy], minlength=n_groups)
    both = (positives > 0) & (positives < pairs)
    ap[both] = sums[both] / positives[both]
    return ap, pairs, positives


def grouped_auprc(
    y: np.ndarray,
    score: np.ndarray,
    tf: np.ndarray,
    target: np.ndarray,
    kind: str = "within_target",
    fold: np.ndarray | None = None,
) -> tuple[float | None, float | None]:
    """(AUPRC, its chance level): average precision per group with both classes, by pairs.

    The chance level is what a random ranking gets in expectation in the same groups,
    pair-weighted (:func:`expected_average_precision`). In small groups it is well above
    the positive rate (0.75 for one positive and one negative); a constant score gets the
    positive rate, less than chance.
    """
    ap, n, k = group_average_precision(y, score, grouping(kind, tf, target, fold))
    both = ~np.isnan(ap)
    if not both.any():
        return None, None
    n, k, ap = n[both], k[both].astype(np.int64), ap[both]
    chance = _expected_average_precision(n, k)
    total = float(n.sum())
    return float(np.sum(n * ap)) / total, float(np.sum(n * chance)) / total


def ranking_metrics(
    y: np.ndarray,
    score: np.ndarray,
    tf: np.ndarray,
    target: np.ndarray,
    fold: np.ndarray | None = None,
    auprc: bool = True,
) -> dict[str, float | None]:
    """AUROC and AUPRC pooled, within-target and within-TF, with the AUPRC chance levels.

    ``auprc=False``: AUROCs only.
    """
    out: dict[str, float | None] = {}
    for kind in GROUPINGS:
        out[f"{kind}_auroc"] = grouped_auroc(y, score, tf, target, kind, fold)
        if auprc:
            out[f"{kind}_auprc"], out[f"{kind}_auprc_chance"] = grouped_auprc(
                y, score, tf, target, kind, fold
            )
    return out


def paired_bootstrap(
    y: np.ndarray,
    scores: Mapping[str, np.ndarray],
    comparisons: Sequence[tuple[str, str]],
    tf: np.ndarray,
    target: np.ndarray,
    fold: np.ndarray | None = None,
    kinds: Sequence[str] = GROUPINGS,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """95% CIs of ``AUROC(a) - AUROC(b)`` for each (a, b), resampling TFs with replacement.

    Returns ``{kind: {"a - b": {"difference", "low", "high", "share_at_or_below_0"}}}``; the
    same replicates serve every score, so the difference is paired.
    """
    tf = np.asarray(tf)
    tfs, tf_index = np.unique(tf, return_inverse=True)
    names = sorted({n for pair in comparisons for n in pair})
    draws = np.random.default_rng(seed).integers(0, tfs.size, size=(n_boot, tfs.size))
    weights = [np.bincount(d, minlength=tfs.size)[tf_index].astype(np.float64) for d in draws]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for kind in kinds:
        groups = grouping(kind, tf, target, fold)
        stats = {n: GroupedAUROC(y, scores[n], groups) for n in names}
        point = {n: stats[n].value() for n in names}
        boot = {
            n: np.array(
                [v if (v := stats[n].value("pairs", w)) is not None else np.nan for w in weights]
            )
            for n in names
        }
        out[kind] = {}
        for a, b in comparisons:
            pa, pb = point[a], point[b]
            d = boot[a] - boot[b]
            d = d[np.isfinite(d)]
            if pa is None or pb is None or d.size == 0:
                out[kind][f"{a} - {b}"] = {"difference": None, "low": None, "high": None}
                continue
            out[kind][f"{a} - {b}"] = {
                "difference": pa - pb,
                "low": float(np.quantile(d, 0.025)),
                "high": float(np.quantile(d, 0.975)),
                "share_at_or_below_0": float(np.mean(d <= 0)),
            }
    return out
