"""Study additions to pair sets: degree-matched negatives, pair-disjoint split, TF folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.synthetic import planted_dataset
from tfcnn.errors import TfcnnInputError
from tfcnn.io.interactions import from_pairs
from tfcnn.pairs import build_pair_set, tf_group_folds


@pytest.fixture(scope="module")
def data():
    return planted_dataset(n_tfs=12, targets_per_tf=20, n_background=150, n_samples=12)


DM_DROPPED = "degree-matched: left out so every TF and target is exactly balanced"


def _counts(series) -> dict:
    return series.value_counts().sort_index().to_dict()


def test_degree_matched_balances_every_tf_and_every_target_exactly(data) -> None:
    expr, known = data
    pairs = build_pair_set(expr, known, negatives="degree-matched", seed=1)
    t = pairs.table
    pos, neg = t[t.label == 1], t[t.label == 0]
    dropped = pairs.meta["positives"]["dropped"][DM_DROPPED]
    assert len(pos) == len(neg) == len(known) - dropped
    assert _counts(pos.tf) == _counts(neg.tf) and _counts(pos.target) == _counts(neg.target)
    assert pairs.meta["balance"]["before_split"]["tf_balanced"] == 1.0
    assert pairs.meta["balance"]["before_split"]["target_balanced"] == 1.0
    neg_pairs = set(zip(neg.tf, neg.target, strict=True))
    assert len(neg_pairs) == len(neg)
    assert not neg_pairs & set(known.as_set())
    assert (neg.tf != neg.target).all()
    # Seeded: the same seed gives the same pairs, another seed other negatives.
    again = build_pair_set(expr, known, negatives="degree-matched", seed=1).table
    pd.testing.assert_frame_equal(t, again)
    other = build_pair_set(expr, known, negatives="degree-matched", seed=2).table
    assert set(zip(other.tf, other.target, strict=True)) != set(zip(t.tf, t.target, strict=True))


def test_degree_matched_drops_the_fewest_positives_a_hub_forces_out() -> None:
    """A hub TF regulating every other gene cannot be balanced: its positives go, no more.

    Synthetic gene indices 0..20: TF 0 regulates all 20 other genes, so every pair with 0
    is known and 0 can have no negative. TFs 1 and 2 regulate disjoint sets of targets
    that are also 0's targets. Without 0's positives, 1 and 2 balance each other (1 with
    2's targets and 2 with 1's), so exactly 0's 20 positives are dropped.
    """
    from tfcnn.pairs.negatives import degree_matched_negatives, encode

    n = 21
    tf = [0] * 20 + [1] * 5 + [2] * 5
    target = list(range(1, 21)) + [3, 4, 5, 6, 7] + [10, 11, 12, 13, 14]
    known = set(encode(np.array(tf), np.array(target), n).tolist())
    keep, neg_tf, neg_target, report = degree_matched_negatives(
        np.array(tf), np.array(target), n, known, np.random.default_rng(0)
    )
    assert int((~keep).sum()) == 20 and not keep[:20].any() and keep[20:].all()
    assert sorted(neg_tf.tolist()) == [1] * 5 + [2] * 5
    assert sorted(neg_target.tolist()) == [3, 4, 5, 6, 7, 10, 11, 12, 13, 14]
    assert report["tf_balanced"] == report["target_balanced"] == 1.0
    assert not set(encode(neg_tf, neg_target, n).tolist()) & known
    # Nothing can be balanced at all: a clear refusal.
    with pytest.raises(TfcnnInputError, match="degree-matched negatives are impossible"):
        degree_matched_negatives(
            np.array([0] * 20 + [1] * 4),
            np.array(list(range(1, 21)) + [2, 3, 4, 5]),
            n,
            set(),
            np.random.default_rng(0),
        )


def test_excluded_evidence_stays_out_of_the_negatives_and_nothing_else(data) -> None:
    """Only the pairs the caller excludes are kept out of the negative pool."""
    expr, known = data
    genes = list(expr.genes)
    pos = set(known.as_set())
    extra = [
        (genes[i], genes[j])
        for i in range(3)
        for j in range(40, 80)
        if (genes[i], genes[j]) not in pos
    ]
    plain = build_pair_set(expr, known, negatives="tf-matched", seed=0)
    kept_out = build_pair_set(
        expr, known, negatives="tf-matched", seed=0, exclude=from_pairs(extra, source="x")
    )
    neg = kept_out.table[kept_out.table.label == 0]
    assert not set(zip(neg.tf, neg.target, strict=True)) & set(extra)
    assert (
        kept_out.meta["negative_pool"]["excluded_pairs"]
        > plain.meta["negative_pool"]["excluded_pairs"]
    )


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


def test_tf_holdout_draws_degree_matched_negatives_within_each_split(data) -> None:
    """Balance over the whole set is not balance where a model is tested (research note).

    With the TFs split first and negatives drawn inside each split, every TF and every
    target is balanced in each split, so a score of the target alone (what a target's
    training frequency is) has pooled AUROC exactly 0.5 on the test split.
    """
    from tfcnn.evaluation.metrics import auroc
    from tfcnn.pairs import build_tf_folds

    expr, known = planted_dataset(n_tfs=30, targets_per_tf=8, n_background=60, n_samples=8)
    ps = build_pair_set(expr, known, negatives="degree-matched", split="tf-holdout", seed=0)
    folds = build_tf_folds(expr, known, 4, negatives="degree-matched", seed=0)
    for pairs in [ps, *folds]:
        t = pairs.table
        for split in ("train", "validation", "test"):
            s = t[t.split == split]
            pos, neg = s[s.label == 1], s[s.label == 0]
            assert _counts(pos.tf) == _counts(neg.tf), split
            assert _counts(pos.target) == _counts(neg.target), split
        assert pairs.meta["balance"]["test"]["target_balanced"] == 1.0
        train_pos = t[(t.split == "train") & (t.label == 1)].target.value_counts()
        test = t[t.split == "test"]
        frequency = test.target.map(train_pos).fillna(0).to_numpy()
        assert auroc(test.label.to_numpy(), frequency) == 0.5
    # Folds: each TF is tested exactly once, never trained on in its own fold.
    tested = [set(f.table.loc[f.table.split == "test", "tf"]) for f in folds]
    for f, test_tfs in zip(folds, tested, strict=True):
        assert not test_tfs & set(f.table.loc[f.table.split == "train", "tf"])
    assert sum(len(t) for t in tested) == len(set().union(*tested))


def test_a_split_with_one_tf_cannot_be_degree_matched_and_says_why(data) -> None:
    expr, known = data  # 12 TFs: the 10% validation split holds one TF
    with pytest.raises(TfcnnInputError, match="the validation split .1 TF.s..: degree-matched"):
        build_pair_set(expr, known, negatives="degree-matched", split="tf-holdout", seed=0)


def test_study_negatives_exclude_only_the_positives_own_evidence(tmp_path) -> None:
    """Issue 14: negatives drawn without regard to other assays (DAP-only pairs allowed).

    Keeping every known edge (DAP-seq included) out of the negatives makes them genes no
    assay ever bound: a shortcut. The default data exclude only the positives' evidence.
    """
    from tests.synthetic import write_tsv
    from tfcnn.study import protocols
    from tfcnn.study.inputs import read_inputs

    assert protocols.default_data_spec()["exclude"] is None
    assert protocols.default_data_spec("nitrogen-edges")["exclude"] == "nitrogen-edges"
    expr, known = planted_dataset(n_tfs=10, targets_per_tf=12, n_background=120, n_samples=10)
    rng = np.random.default_rng(3)
    tfs = sorted({t for t, _ in known.as_set()})
    rows = [(t, g, "ChIP") for t, g in sorted(known.as_set())]
    dap = [(t, g, "DAP") for t in tfs for g in expr.genes if g != t and rng.random() < 0.3]
    edges = tmp_path / "synthetic_edges.tsv"
    pd.DataFrame(rows + dap, columns=["tf", "target", "evidence"]).to_csv(
        edges, sep="\t", index=False
    )
    write_tsv(expr, tmp_path / "synthetic_expr.tsv")
    spec = protocols.data_spec(str(tmp_path / "synthetic_expr.tsv"), str(edges), ["ChIP"])
    read_inputs(spec)
    dap_pairs = {(t, g) for t, g, _ in dap} - set(known.as_set())
    for exclude, dap_in_negatives in ((None, True), (str(edges), False)):
        inputs = read_inputs({**spec, "exclude": exclude})
        pairs = protocols.build(inputs.spec, "tf-matched", "random", 0, (0.8, 0.1, 0.1))
        neg = pairs.table[pairs.table.label == 0]
        found = bool(set(zip(neg.tf, neg.target, strict=True)) & dap_pairs)
        assert found is dap_in_negatives
        policy = pairs.meta["negative_pool"]["policy"]
        assert ("only the positives' own pairs" in policy) is (exclude is None)
