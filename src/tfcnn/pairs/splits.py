"""How pairs are split into train / validation / test, and TF-grouped folds.

``random`` (80/10/10 of examples, as the study), ``tf-holdout`` (whole regulators
assigned to one split; positives balanced first, then negatives) or ``pair-disjoint``
(every gene assigned to one split, TFs balanced by positives, other genes at random; a
pair is kept only when its TF and its target fall in the same split, so neither gene of
a test pair appears in training). :func:`tf_group_folds` re-splits a pair set into k
folds grouped by TF (cross-validation with whole TFs held out).
"""

from __future__ import annotations

import numpy as np

from ..errors import TfcnnInputError
from .pairset import SPLITS, PairSet, check_splits

SPLIT_STRATEGIES = ("random", "tf-holdout", "pair-disjoint")


def pair_disjoint_splits(
    tf_idx: np.ndarray,
    target_idx: np.ndarray,
    labels: np.ndarray,
    n_genes: int,
    fractions: tuple[float, float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Split per pair, or None when its TF and target fall in different splits.

    Regulators of positives are spread over the splits by their positives (as
    tf-holdout); every other gene is assigned at random with ``fractions``.
    """
    gene_split = rng.choice(3, size=n_genes, p=np.asarray(fractions, dtype=float))
    pos = labels == 1
    tf_names = assign_splits(labels[pos], tf_idx[pos], tuple(fractions), rng)
    index = {name: i for i, name in enumerate(SPLITS)}
    for tf, name in zip(tf_idx[pos].tolist(), tf_names.tolist(), strict=True):
        gene_split[tf] = index[name]
    same = gene_split[tf_idx] == gene_split[target_idx]
    out = np.full(tf_idx.size, None, dtype=object)
    out[same] = np.array(SPLITS, dtype=object)[gene_split[tf_idx[same]]]
    return out


def tf_fold_layouts(
    tfs: np.ndarray,
    labels: np.ndarray,
    n_folds: int,
    seed: int = 0,
    validation_fraction: float = 0.1,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(distinct TFs, per fold the split index of each: 0 train, 1 validation, 2 test).

    Regulators are dealt to folds by their positives (largest first, into the fold with
    the fewest positives), negative-only regulators by their negatives. Fold ``k`` tests
    on the TFs of fold ``k``; among the others, about ``validation_fraction`` of the
    positives' TFs form the validation split and the rest train.
    """
    uniq, inverse = np.unique(tfs, return_inverse=True)
    labels = np.asarray(labels, dtype=float)
    if np.unique(tfs[labels == 1]).size < n_folds + 1:
        raise TfcnnInputError(
            f"grouped {n_folds}-fold by TF needs more than {n_folds} TFs with known targets "
            f"(found {np.unique(tfs[labels == 1]).size}); use fewer folds."
        )
    rng = np.random.default_rng(seed)
    pos_w = np.bincount(inverse, weights=labels, minlength=uniq.size)
    neg_w = np.bincount(inverse, weights=1 - labels, minlength=uniq.size)
    fold = np.full(uniq.size, -1)
    for members, weight in (
        (np.flatnonzero(pos_w > 0), pos_w),
        (np.flatnonzero(pos_w == 0), neg_w),
    ):
        filled = np.array([weight[fold == k].sum() for k in range(n_folds)], dtype=float)
        members = members[rng.permutation(members.size)]
        for g in members[np.argsort(-weight[members], kind="stable")]:
            k = int(np.argmin(filled + rng.random(n_folds) * 1e-9))
            fold[g] = k
            filled[k] += weight[g]
    layouts = []
    for k in range(n_folds):
        group_split = np.where(fold == k, 2, 0)
        rest = np.flatnonzero(fold != k)
        for members, weight in ((rest[pos_w[rest] > 0], pos_w), (rest[pos_w[rest] == 0], neg_w)):
            goal = validation_fraction * weight[members].sum()
            got = 0.0
            for g in members[rng.permutation(members.size)]:
                if got + weight[g] / 2 > goal:
                    continue
                group_split[g] = 1
                got += weight[g]
        layouts.append(group_split)
    return uniq, layouts


def tf_group_folds(
    pairs: PairSet, n_folds: int, seed: int = 0, validation_fraction: float = 0.1
) -> list[PairSet]:
    """``n_folds`` re-splits of ``pairs`` holding whole TFs out (grouped k-fold by TF).

    The negatives stay those of ``pairs``: with degree-matched negatives use
    :func:`~tfcnn.pairs.build.build_tf_folds`, which draws them within each fold's splits.
    See :func:`tf_fold_layouts` for how TFs are dealt.
    """
    t = pairs.table
    tfs = t["tf"].to_numpy()
    uniq, layouts = tf_fold_layouts(
        tfs, t["label"].to_numpy(), n_folds, seed=seed, validation_fraction=validation_fraction
    )
    inverse = np.searchsorted(uniq, tfs)
    out = []
    for k, group_split in enumerate(layouts):
        names = np.array(SPLITS, dtype=object)[group_split[inverse]]
        ps = PairSet(
            table=t.assign(split=names),
            zscores=pairs.zscores,
            genes=pairs.genes,
            samples=pairs.samples,
            meta={**pairs.meta, "split": "tf-kfold", "fold": k, "n_folds": n_folds},
            known=pairs.known,
        )
        check_splits(ps)
        out.append(ps)
    return out


def assign_splits(
    labels: np.ndarray,
    groups: np.ndarray | None,
    fractions: tuple[float, ...],
    rng: np.random.Generator,
) -> np.ndarray:
    """Split names per example: random by example, or whole groups (regulators)."""
    n = labels.size
    out = np.empty(n, dtype=object)
    if groups is None:
        order = rng.permutation(n)
        n_test = int(round(fractions[2] * n))
        n_val = int(round(fractions[1] * n))
        n_train = n - n_val - n_test
        out[order[:n_train]] = "train"
        out[order[n_train : n_train + n_val]] = "validation"
        out[order[n_train + n_val :]] = "test"
        return out
    frac = np.asarray(fractions, dtype=float)
    uniq, inverse = np.unique(groups, return_inverse=True)
    pos_per_group = np.bincount(inverse, weights=labels, minlength=uniq.size)
    size_per_group = np.bincount(inverse, minlength=uniq.size)
    neg_per_group = size_per_group - pos_per_group
    assigned = np.full(uniq.size, -1)
    # Regulators with positives are spread by their positives first; negative-only
    # regulators then top up each split's negatives to its share of all negatives.
    for members, weight in (
        (np.flatnonzero(pos_per_group > 0), pos_per_group),
        (np.flatnonzero(pos_per_group == 0), neg_per_group),
    ):
        filled = np.array([weight[assigned == s].sum() for s in range(3)], dtype=float)
        targets = frac * max(weight.sum(), 1)
        for g in members[rng.permutation(members.size)]:
            # Best fit after adding: large regulators go where there is room (train).
            s = int(np.argmin((filled + weight[g]) / targets))
            assigned[g] = s
            filled[s] += weight[g]
    names = np.array(SPLITS, dtype=object)
    return names[assigned[inverse]]
