"""Honest numbers (issue 14): metrics node identity cannot fake, and leak-free negatives.

Everything here is synthetic, made by the tests: profiles from a random generator,
"interactions" drawn by rules stated in each test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.synthetic import planted_dataset
from tfcnn.evaluation.evaluate import compare_with_controls, control_warnings, model_card
from tfcnn.evaluation.metrics import auroc
from tfcnn.evaluation.ranking import grouped_auroc, paired_bootstrap, ranking_metrics
from tfcnn.io.expression import from_dataframe
from tfcnn.io.interactions import from_pairs
from tfcnn.model import PairCNN
from tfcnn.pairs import build_pair_set


# -- the metric itself --------------------------------------------------------------------
def test_within_group_auroc_matches_a_direct_computation_and_ignores_node_scores() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.integers(0, 2, n)
    score = rng.normal(size=n) + 0.5 * y
    tf, target = rng.integers(0, 15, n), rng.integers(0, 120, n)
    num = den = 0.0
    for t in np.unique(target):
        m = target == t
        if 0 < y[m].sum() < m.sum():
            num += m.sum() * auroc(y[m], score[m])
            den += m.sum()
    assert grouped_auroc(y, score, tf, target, "within_target") == pytest.approx(num / den)
    assert grouped_auroc(y, score, tf, target, "pooled") == pytest.approx(auroc(y, score))
    # Any score that depends on the target alone is exactly 0.5 within targets, and any
    # score of the TF alone exactly 0.5 within TFs, whatever the labels.
    hub = rng.normal(size=200)
    assert grouped_auroc(y, hub[target], tf, target, "within_target") == 0.5
    assert grouped_auroc(y, hub[tf], tf, target, "within_tf") == 0.5
    # Pairs of different folds are never compared.
    fold = np.arange(n) % 2
    shifted = score + 10 * fold
    assert grouped_auroc(y, shifted, tf, target, "pooled", fold) == pytest.approx(
        np.average(
            [auroc(y[fold == k], score[fold == k]) for k in (0, 1)],
            weights=[(fold == k).sum() for k in (0, 1)],
        )
    )


def test_bootstrap_ci_covers_zero_for_equal_scores_and_not_for_a_better_one() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    y = rng.integers(0, 2, n)
    tf, target = rng.integers(0, 40, n), rng.integers(0, 300, n)
    noise = rng.normal(size=n)
    scores = {"a": noise + y, "b": noise + y, "c": rng.normal(size=n)}
    out = paired_bootstrap(y, scores, [("a", "b"), ("a", "c")], tf, target, n_boot=300)
    same = out["within_target"]["a - b"]
    assert same["difference"] == 0 and same["low"] <= 0 <= same["high"]
    better = out["within_target"]["a - c"]
    assert better["difference"] > 0.2 and better["low"] > 0.1


# -- node identity only: the metric says chance, pooled AUROC says otherwise -------------
def _node_identity_data(seed: int = 0):
    """Synthetic genes whose profiles say how often they are a TF or a target, no more.

    Positives are drawn TF by TF with probabilities proportional to each target's
    "hubness"; a gene's profile carries its hubness (a shared pattern scaled by it) but
    nothing links the two profiles of a positive pair beyond that.
    """
    rng = np.random.default_rng(seed)
    n_tfs, n_genes, n_samples = 40, 600, 16
    genes = [f"synthetic_g{i:04d}" for i in range(n_genes)]
    tf_hub = rng.gamma(1.0, 1.0, n_tfs)
    target_hub = rng.gamma(0.7, 1.0, n_genes)
    pattern_tf, pattern_target = rng.normal(size=(2, n_samples))
    profiles = rng.normal(size=(n_genes, n_samples))
    profiles += np.outer(target_hub, pattern_target)
    profiles[:n_tfs] += 2.0 + np.outer(tf_hub, pattern_tf)
    pairs = set()
    for t in range(n_tfs):
        k = int(5 + 25 * tf_hub[t] / tf_hub.max())
        p = target_hub.copy()
        p[t] = 0
        for g in rng.choice(n_genes, size=k, replace=False, p=p / p.sum()):
            pairs.add((genes[t], genes[int(g)]))
    frame = pd.DataFrame(profiles + 8.0, index=genes)
    frame.columns = [f"synthetic_s{j}" for j in range(n_samples)]
    return from_dataframe(frame, source="synthetic node-identity data"), from_pairs(
        sorted(pairs), source="synthetic node-identity pairs"
    )


def _scored(model: PairCNN, ps) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    t = ps.table
    return (
        ps.labels,
        model.predict_proba(ps.x)[:, 1],
        t["tf"].to_numpy(),
        t["target"].to_numpy(),
    )


def test_a_model_of_node_identity_scores_chance_within_targets_and_tfs() -> None:
    """Issue 14: within-target/within-TF within 0.03 of 0.5; pooled (random negatives) high."""
    expr, known = _node_identity_data()
    shortcut = build_pair_set(expr, known, negatives="random", split="random", seed=0)
    model = PairCNN(filters=(8, 8), units=8, epochs=15, batch_size=64, seed=0)
    model.fit(*shortcut.arrays("train"))
    y, p, _, _ = _scored(model, shortcut)
    test = shortcut.mask("test")
    assert auroc(y[test], p[test]) > 0.85  # node identity is learnable and pays, pooled
    honest = build_pair_set(expr, known, negatives="degree-matched", split="random", seed=1)
    y, p, tf, target = _scored(model, honest)
    for kind in ("within_target", "within_tf"):
        assert abs(grouped_auroc(y, p, tf, target, kind) - 0.5) <= 0.03, kind


def test_a_planted_pair_relation_scores_high_within_targets_under_exact_matching() -> None:
    expr, known = planted_dataset(n_tfs=20, targets_per_tf=20, n_background=100, n_samples=24)
    ps = build_pair_set(expr, known, negatives="degree-matched", split="tf-holdout", seed=0)
    model = PairCNN(filters=(8, 16), units=16, epochs=20, batch_size=64, seed=0)
    model.fit(*ps.arrays("train"))
    test = ps.mask("test")
    y, p, tf, target = (a[test] for a in _scored(model, ps))
    assert grouped_auroc(y, p, tf, target, "within_target") > 0.8


# -- the binding-evidence leak ---------------------------------------------------------------
def test_a_binding_feature_scores_chance_with_honest_negatives_only() -> None:
    """Issue 14: excluding other assays' edges from the negative pool is a label leak.

    Synthetic: a "binding assay" calls 30% of all TF x gene pairs bound, independently of
    the planted positives. When its edges are kept out of the negatives (as the study
    did with DAP-seq), "is bound" separates positives from negatives; drawn honestly, it
    does not.
    """
    expr, known = planted_dataset(n_tfs=20, targets_per_tf=15, n_background=200, n_samples=12)
    rng = np.random.default_rng(5)
    genes = list(expr.genes)
    tfs = sorted({t for t, _ in known.as_set()})
    bound = {(t, g) for t in tfs for g in genes if g != t and rng.random() < 0.3}
    binding = from_pairs(sorted(bound), source="synthetic binding assay")

    def bound_auroc(exclude) -> float:
        ps = build_pair_set(expr, known, negatives="tf-matched", seed=0, exclude=exclude)
        t = ps.table
        feature = np.array([(a, b) in bound for a, b in zip(t.tf, t.target, strict=True)])
        return auroc(ps.labels, feature.astype(float))

    leaky, honest = bound_auroc(binding), bound_auroc(None)
    assert leaky > 0.6
    assert abs(honest - 0.5) < 0.04


# -- warnings and model cards --------------------------------------------------------------
def test_controls_and_warnings_in_plain_words() -> None:
    rng = np.random.default_rng(2)
    n = 2000
    tf, target = rng.integers(0, 30, n), rng.integers(0, 200, n)
    hub = rng.normal(size=200)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * hub[target]))).astype(int)  # hub targets
    scores = {  # a model that only recognises hub targets, and the control that does too
        "model": hub[target] + 0.01 * rng.normal(size=n),
        "target_frequency": hub[target],
    }
    out = compare_with_controls(y, tf, target, scores, "model", ("target_frequency",), n_boot=200)
    assert out["methods"]["target_frequency"]["within_target_auroc"] == 0.5
    text = " ".join(out["warnings"])
    assert "pooled AUROC" in text and "target-frequency control" in text
    card = model_card({**out, "protocol": {"split": "tf-holdout", "negatives": "tf-matched"}})
    assert card["protocol"] == {"split": "tf-holdout", "negatives": "tf-matched"}
    assert card["within_target_auroc"] == out["methods"]["model"]["within_target_auroc"]
    assert control_warnings({"pooled_auroc": 0.9, "within_target_auroc": 0.55}, {})[0].startswith(
        "Pooled AUROC 0.900 but within-target 0.550"
    )
    assert set(ranking_metrics(y, scores["model"], tf, target)) >= {
        "within_target_auroc",
        "within_tf_auroc",
        "pooled_auroc",
        "within_target_auprc",
        "pooled_auprc_chance",
    }


def test_negative_exclude_names_evidence_types_kept_out_of_the_pool(tmp_path) -> None:
    """By default only the positives' own evidence is kept out of the negatives."""
    from tfcnn import api

    expr, known = planted_dataset(n_tfs=10, targets_per_tf=12, n_background=120, n_samples=10)
    rng = np.random.default_rng(3)
    genes = list(expr.genes)
    tfs = sorted({t for t, _ in known.as_set()})
    rows = [(t, g, "ChIP") for t, g in sorted(known.as_set())]
    bound = [(t, g, "DAP") for t in tfs for g in genes if g != t and rng.random() < 0.3]
    table = tmp_path / "synthetic_edges.tsv"
    pd.DataFrame(rows + bound, columns=["tf", "target", "evidence"]).to_csv(
        table, sep="\t", index=False
    )
    honest = api.build_pairs(expr, table, evidence=["ChIP"], negatives="tf-matched", seed=0)
    kept_out = api.build_pairs(
        expr, table, evidence=["ChIP"], negative_exclude=["DAP"], negatives="tf-matched", seed=0
    )
    assert honest.meta["negative_pool"]["excluded_evidence"] == ["ChIP"]
    assert kept_out.meta["negative_pool"]["excluded_evidence"] == ["ChIP", "DAP"]
    dap = {(t, g) for t, g, _ in bound}
    neg = kept_out.table[kept_out.table.label == 0]
    assert not set(zip(neg.tf, neg.target, strict=True)) & dap
    neg = honest.table[honest.table.label == 0]
    assert set(zip(neg.tf, neg.target, strict=True)) & dap


def test_assay_agreement_is_the_auroc_of_one_assays_calls_for_anothers() -> None:
    from tfcnn.evaluation.ceiling import assay_agreement

    rng = np.random.default_rng(4)
    genes = [f"synthetic_g{i:03d}" for i in range(200)]
    rows = []
    for tf in genes[:3]:
        a = set(rng.choice(200, 40, replace=False).tolist())
        b = set(list(a)[:20]) | set(rng.choice(200, 20, replace=False).tolist())  # half shared
        rows += [(tf, genes[j], "assayA") for j in a if genes[j] != tf]
        rows += [(tf, genes[j], "assayB") for j in b if genes[j] != tf]
    table = pd.DataFrame(rows, columns=["tf", "target", "evidence"])
    table = table.groupby(["tf", "target"], as_index=False)["evidence"].agg(";".join)
    out = assay_agreement(_with_evidence(table), genes)
    pair = next(p for p in out["pairs"] if (p["predictor"], p["truth"]) == ("assayA", "assayB"))
    assert pair["tfs"] == 3 and 0.6 < pair["median"] < 0.9
    assert out["overall"]["comparisons"] == 6


def _with_evidence(table: pd.DataFrame):
    """A synthetic evidence table read back through tfcnn's own reader."""
    import tempfile
    from pathlib import Path

    from tfcnn.io.interactions import read_interactions

    path = Path(tempfile.mkdtemp()) / "synthetic_assays.tsv"
    table.to_csv(path, sep="\t", index=False)
    return read_interactions(path)


def test_explicit_negatives_are_the_tables_own_non_edges(tmp_path) -> None:
    """A DREAM5-style table's 0 rows can be the negatives (issue 16, offered and documented)."""
    from tfcnn import api

    expr, known = planted_dataset(n_tfs=10, targets_per_tf=12, n_background=60, n_samples=10)
    genes = list(expr.genes)
    pos = sorted(known.as_set())
    rng = np.random.default_rng(0)
    non = {(t, genes[int(j)]) for t, _ in pos for j in rng.integers(0, len(genes), 2)}
    non = sorted(p for p in non if p not in set(pos) and p[0] != p[1])
    path = tmp_path / "synthetic_gold.tsv"  # DREAM5 layout: no header, G1 G2 1/0
    rows = [f"{a}\t{b}\t1" for a, b in pos] + [f"{a}\t{b}\t0" for a, b in non]
    path.write_text("\n".join(rows) + "\n")
    ps = api.build_pairs(expr, path, negatives="explicit", seed=0)
    neg = ps.table[ps.table.label == 0]
    assert set(zip(neg.tf, neg.target, strict=True)) == set(non)
    assert ps.meta["balance"]["before_split"]["tf_balanced"] < 1.0  # reported, not imposed


@pytest.mark.parametrize(("n", "k"), [(2, 1), (3, 1), (5, 2), (6, 5)])
def test_expected_average_precision_is_the_mean_over_random_rankings(n: int, k: int) -> None:
    """The AUPRC chance level is what random rankings get, not the positive rate."""
    from itertools import permutations

    from sklearn.metrics import average_precision_score

    from tfcnn.evaluation.ranking import expected_average_precision

    y = np.r_[np.ones(k), np.zeros(n - k)]
    orders = list(permutations(range(n)))  # every ranking: the exact mean
    mean = np.mean([average_precision_score(y, -np.asarray(o, dtype=float)) for o in orders])
    assert expected_average_precision(n, k) == pytest.approx(mean, abs=1e-12)
    if k < n:
        assert expected_average_precision(n, k) > k / n  # the positive rate is below chance


def test_within_target_auprc_chance_matches_a_random_score() -> None:
    """In many small targets a random score's AUPRC is near the stated chance, not 0.5."""
    from tfcnn.evaluation.ranking import grouped_auprc

    rng = np.random.default_rng(0)
    target = np.repeat(np.arange(3000), 2)  # one positive and one negative per target
    y = np.tile([1, 0], 3000)
    tf = rng.integers(0, 50, y.size)
    ap, chance = grouped_auprc(y, rng.random(y.size), tf, target, "within_target")
    assert chance == pytest.approx(0.75) and ap == pytest.approx(0.75, abs=0.01)


def test_grouped_average_precision_is_sklearns_per_group() -> None:
    """One pass over all groups gives average_precision_score of each group, ties as one
    threshold, and the pair-weighted combination and chance level of a loop over groups."""
    from sklearn.metrics import average_precision_score

    from tfcnn.evaluation.ranking import (
        expected_average_precision,
        group_average_precision,
        grouped_auprc,
    )

    rng = np.random.default_rng(3)
    for trial in range(60):
        n = int(rng.integers(1, 300))
        y = rng.integers(0, 2, n)
        levels = int(rng.integers(1, 12))  # few distinct scores: many ties
        score = rng.integers(0, levels, n) * 0.25 if trial % 2 else rng.random(n)
        target, tf = rng.integers(0, int(rng.integers(1, 25)), n), rng.integers(0, 5, n)
        group = np.unique(target, return_inverse=True)[1]
        ap, pairs, positives = group_average_precision(y, score, group)
        total = weighted = chance = 0.0
        for g in range(group.max() + 1):
            mine = group == g
            assert pairs[g] == mine.sum() and positives[g] == y[mine].sum()
            if y[mine].min() == y[mine].max():
                assert np.isnan(ap[g])
                continue
            expected = average_precision_score(y[mine], score[mine])
            assert ap[g] == pytest.approx(expected, abs=1e-12), (trial, g)
            total += mine.sum()
            weighted += mine.sum() * expected
            chance += mine.sum() * expected_average_precision(int(mine.sum()), int(y[mine].sum()))
        got = grouped_auprc(y, score, tf, target, "within_target")
        if total == 0:
            assert got == (None, None)
        else:
            assert got[0] == pytest.approx(weighted / total, abs=1e-12)
            assert got[1] == pytest.approx(chance / total, abs=1e-12)
    with pytest.raises(ValueError, match="finite"):  # as the AUROC: never a silent NaN
        group_average_precision(np.array([1, 0]), np.array([0.5, np.nan]), np.zeros(2, int))


def test_auroc_equals_sklearn_with_ties_and_label_kinds() -> None:
    """The rank form gives roc_auc_score's value: ties count one half, the greater label
    is the positive class, one class gives None, NaN scores are refused."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(7)
    for n in (2, 7, 500):
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        for score in (rng.normal(size=n), rng.integers(0, 4, n).astype(float)):
            assert auroc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
            labels = np.where(y == 1, "b", "a")
            assert auroc(labels, score) == pytest.approx(roc_auc_score(labels, score), abs=1e-12)
    assert auroc(np.ones(4), np.arange(4.0)) is None
    with pytest.raises(ValueError, match="NaN"):
        auroc(np.array([0, 1]), np.array([0.0, np.nan]))
