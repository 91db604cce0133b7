"""Study additions to pair sets: degree-matched negatives, pair-disjoint split, TF folds."""

from __future__ import annotations

import numpy as np
import pytest

from tests.synthetic import planted_dataset
from tfcnn.pairs import build_pair_set, tf_group_folds


@pytest.fixture(scope="module")
def data():
    return planted_dataset(n_tfs=12, targets_per_tf=20, n_background=150, n_samples=12)


def test_degree_matched_keeps_tf_and_target_frequencies(data) -> None:
    expr, known = data
    pairs = build_pair_set(expr, known, negatives="degree-matched", seed=1)
    t = pairs.table
    pos, neg = t[t.label == 1], t[t.label == 0]
    shortfall = pairs.meta["positives"]["dropped"]["degree-matched shortfall: no valid swap found"]
    assert len(pos) == len(neg) == len(known) - shortfall
    assert pos.tf.value_counts().sort_index().equals(neg.tf.value_counts().sort_index())
    # targets: the negatives' multiset is the positives' up to the dropped slots
    diff = (pos.target.value_counts() - neg.target.value_counts()).fillna(pos.target.value_counts())
    assert diff.abs().sum() <= 2 * shortfall
    neg_pairs = set(zip(neg.tf, neg.target, strict=True))
    assert len(neg_pairs) == len(neg)
    assert not neg_pairs & set(known.as_set())
    assert (neg.tf != neg.target).all()
    # every planted target has exactly one TF; negatives keep that degree but move the TF
    assert (neg.target.value_counts() == 1).all()


def test_degree_matched_reports_an_impossible_shortfall() -> None:
    # one TF regulating all but one of the other genes: most slots cannot be repaired
    expr, known = planted_dataset(n_tfs=3, targets_per_tf=10, n_background=2, n_samples=8)
    pairs = build_pair_set(expr, known, negatives="degree-matched", seed=0)
    t = pairs.table
    assert (t.label == 1).sum() == (t.label == 0).sum()
    assert pairs.meta["positives"]["kept"] == (t.label == 1).sum()


def test_pair_disjoint_split_shares_no_gene_with_training(data) -> None:
    expr, known = data
    pairs = build_pair_set(expr, known, negatives="tf-matched", split="pair-disjoint", seed=2)
    t = pairs.table
    train = t[t.split == "train"]
    train_genes = set(train.tf) | set(train.target)
    for s in ("validation", "test"):
        other = t[t.split == s]
        assert len(other) > 0
        assert not (set(other.tf) | set(other.target)) & train_genes
    assert pairs.meta["pair_disjoint_discarded"] > 0
    assert len(t) + pairs.meta["pair_disjoint_discarded"] == 2 * len(known)
    dropped = pairs.meta["positives"]["dropped"]
    assert pairs.meta["positives"]["kept"] + sum(dropped.values()) == len(known)


def test_tf_group_folds_hold_whole_tfs_out(data) -> None:
    expr, known = data
    pairs = build_pair_set(expr, known, negatives="tf-matched", seed=0)
    folds = tf_group_folds(pairs, 4, seed=0)
    assert len(folds) == 4
    tested: list[str] = []
    for f in folds:
        t = f.table
        test_tfs = set(t[t.split == "test"].tf)
        assert not test_tfs & set(t[t.split == "train"].tf)
        assert not test_tfs & set(t[t.split == "validation"].tf)
        assert len(t) == len(pairs)
        tested += sorted(test_tfs)
    assert sorted(tested) == sorted(set(pairs.table.tf)), "each TF is tested in one fold only"
    sizes = [int((f.table.split == "test").sum()) for f in folds]
    assert max(sizes) <= 2 * min(sizes)
    # seeded
    again = tf_group_folds(pairs, 4, seed=0)
    assert all(
        np.array_equal(a.table.split, b.table.split) for a, b in zip(folds, again, strict=True)
    )
