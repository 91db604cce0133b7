"""Regulon expansion evaluated with TFs seen in training: part of each TF's pairs hidden.

Protocol (:func:`regulon_folds`, as the research prototype): every TF's positives and
every TF's negatives are dealt at random (seeded) into ``n_folds`` parts; fold ``k`` hides
part ``k`` of every TF and keeps the rest as the TFs' known pairs. So each hidden pair's
TF has known targets, but no hidden pair is known. Inside the known pairs, an ``inner``
share of each TF's pairs is held out once more to early-stop the learned model
(:class:`~tfcnn.model.two_tower.TwoTower`, trained on the rest of the known pairs); the
hidden pairs are never looked at until they are scored.

Each hidden pair (TF i, gene g) is scored by :mod:`tfcnn.inference.expand`'s parts from TF
i's known pairs only, as percentiles within TF i's row among the genes that are not its
known pairs, exactly as ``tfcnn expand`` scores it. Hidden pairs whose TF has fewer than
``min_known`` known targets are left out (counted).

:func:`evaluate_regulon` returns, per method, pooled, within-target and within-TF AUROC and
AUPRC (folds never compared with each other), the within-target AUROC per fold, and a 95%
CI of the within-target AUROC from a TF bootstrap. Caveat: a TF's hidden targets come from
the same experiments as its known ones, so this measures recovery of the rest of the same
target list, assay biases included, not independent validation of new targets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import TfcnnInputError
from ..inference.expand import (
    METHODS,
    known_pairs,
    model_parts,
    raw_parts,
    reference_mask,
    scored_parts,
    unit_rows,
)
from .ranking import auroc_per_fold, paired_bootstrap, ranking_metrics

if TYPE_CHECKING:
    from ..pairs import PairSet

#: The learned model's settings in the TF-seen setting (the prototype's): cross-entropy,
#: early stopping on the inner validation pairs' within-target AUROC, 3 seeds.
SEEN_MODEL: dict[str, Any] = {"loss": "bce", "n_seeds": 3}


def regulon_folds(tf: np.ndarray, label: np.ndarray, n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold id per pair: each TF's positives and negatives dealt at random into folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(tf), dtype=np.int64)
    frame = pd.DataFrame({"tf": np.asarray(tf), "label": np.asarray(label)})
    for _, idx in sorted(frame.groupby(["tf", "label"], sort=True).indices.items()):
        idx = idx[rng.permutation(idx.size)]
        start = rng.integers(n_folds)  # small groups do not all land in fold 0
        fold[idx] = (start + np.arange(idx.size)) % n_folds
    return fold


@dataclass
class RegulonEvaluation:
    """Scores of every hidden pair by every method, and their metrics."""

    scores: pd.DataFrame  # tf, target, label, fold, one column per method
    metrics: dict[str, dict[str, Any]]
    folds: list[dict[str, Any]] = field(default_factory=list)
    excluded: int = 0  # hidden pairs whose TF had too few known targets

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (metrics, folds, what was excluded)."""
        return {
            "protocol": "regulon expansion, TF seen: part of every TF's pairs hidden",
            "metrics": self.metrics,
            "folds": self.folds,
            "excluded_pairs": self.excluded,
            "pairs": int(self.scores[METHODS[0]].notna().sum()) if len(self.scores) else 0,
        }


def _fit_seen_model(
    pairs: PairSet, inner_train: np.ndarray, inner_val: np.ndarray, params: Mapping[str, Any]
) -> Any:
    from ..model.two_tower import TwoTower

    tf, tg, y, x = pairs.tf_rows, pairs.target_rows, pairs.labels, pairs.x
    model = TwoTower(**params)
    return model.fit(
        x[inner_train],
        y[inner_train],
        tf[inner_train],
        tg[inner_train],
        validation_data=(x[inner_val], y[inner_val], tf[inner_val], tg[inner_val]),
    )


def evaluate_regulon(
    pairs: PairSet,
    *,
    n_folds: int = 5,
    seed: int = 0,
    inner: float = 0.2,
    methods: Sequence[str] = METHODS,
    model_params: Mapping[str, Any] | None = None,
    min_known: int = 1,
    n_boot: int = 1000,
    log: Callable[[str], None] | None = None,
) -> RegulonEvaluation:
    """Evaluate regulon expansion on ``pairs`` (every split used; see the module doc).

    ``methods``: any of "combined", "embedding", "coexpression", "model" (the learned
    model is trained only when a method needs it). ``model_params``: TwoTower settings
    over :data:`SEEN_MODEL` (its seed is ``seed + fold``).
    """
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise TfcnnInputError(f"`methods` must be among {', '.join(METHODS)} (got {bad}).")
    if not 0.0 < inner < 0.5:
        raise TfcnnInputError(f"`inner` must be in (0, 0.5) (got {inner}).")
    if n_folds < 2:
        raise TfcnnInputError(f"`n_folds` must be at least 2 (got {n_folds}).")
    tf, tg, y = pairs.tf_rows, pairs.target_rows, pairs.labels
    z = np.asarray(pairs.zscores, dtype=np.float32)
    n_genes = z.shape[0]
    profiles = unit_rows(z)
    learned = any(m != "coexpression" for m in methods)
    fold = regulon_folds(tf, y, n_folds, seed)
    out = pd.DataFrame(
        {"tf": pairs.table["tf"].to_numpy(), "target": pairs.table["target"].to_numpy()}
    )
    out["label"] = y
    out["fold"] = fold
    columns = {m: np.full(len(out), np.nan) for m in methods}
    folds: list[dict[str, Any]] = []
    excluded = 0
    for k in range(n_folds):
        start = time.perf_counter()
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        codes = set((tf[train] * n_genes + tg[train]).tolist())
        if codes & set((tf[test] * n_genes + tg[test]).tolist()):
            raise AssertionError("a hidden pair is also a known pair")  # pragma: no cover
        inner_fold = regulon_folds(tf[train], y[train], round(1 / inner), seed + 10 + k)
        info: dict[str, Any] = {"fold": k, "known_pairs": int(train.size)}
        model = scorer = terms = embeddings = None
        if learned:
            params = {**SEEN_MODEL, **(model_params or {}), "seed": seed + k}
            model = _fit_seen_model(pairs, train[inner_fold != 0], train[inner_fold == 0], params)
            scorer, terms, embeddings = model_parts(model, z)
            info["best_epochs"] = list(model.best_epochs_)
        tfs = np.unique(tf[test])
        known = known_pairs(tf[train], tg[train], y[train], tfs)
        usable = [t for t in tfs if known[t].targets.size >= min_known]
        rows = (
            scorer.score_block(terms, np.array(usable), np.arange(n_genes))
            if scorer is not None and usable
            else None
        )
        for i, t in enumerate(usable):
            raw = raw_parts(known[t], profiles, embeddings, None if rows is None else rows[i])
            pct = scored_parts(raw, reference_mask(n_genes, t, known[t]))
            hidden = test[tf[test] == t]
            for m in methods:
                key = "combined" if m == "combined" else f"{m}_percentile"
                if key in pct:
                    columns[m][hidden] = pct[key][tg[hidden]]
        dropped = int(np.isin(tf[test], [t for t in tfs if t not in usable]).sum())
        excluded += dropped
        info.update(
            hidden_pairs=int(test.size) - dropped,
            excluded_pairs=dropped,
            seconds=round(time.perf_counter() - start, 1),
        )
        folds.append(info)
        if log is not None:
            log(f"regulon fold {k + 1} of {n_folds}: {info['seconds']} s")
    for m, values in columns.items():
        out[m] = values
    metrics = _metrics(out, [m for m in methods if out[m].notna().any()], n_boot, seed)
    return RegulonEvaluation(out, metrics, folds, excluded)


def _metrics(
    scores: pd.DataFrame, methods: Sequence[str], n_boot: int, seed: int
) -> dict[str, dict[str, Any]]:
    """Ranking metrics per method (folds kept apart), per-fold within-target, bootstrap CI."""
    out: dict[str, dict[str, Any]] = {}
    for m in methods:
        t = scores[scores[m].notna()]
        y, s = t["label"].to_numpy(), t[m].to_numpy()
        tf, target, fold = t["tf"].to_numpy(), t["target"].to_numpy(), t["fold"].to_numpy()
        res: dict[str, Any] = dict(ranking_metrics(y, s, tf, target, fold))
        res["pairs"] = int(len(t))
        res["within_target_auroc_per_fold"] = auroc_per_fold(y, s, tf, target, fold)
        ci = paired_bootstrap(
            y,
            {m: s, "chance": np.zeros(len(t))},
            [(m, "chance")],
            tf,
            target,
            fold,
            ("within_target",),
            n_boot=n_boot,
            seed=seed,
        )["within_target"][f"{m} - chance"]
        if ci["difference"] is not None:
            res["within_target_auroc_ci"] = [0.5 + ci["low"], 0.5 + ci["high"]]
        out[m] = res
    return out
