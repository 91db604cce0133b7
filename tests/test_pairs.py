"""PairSet: positives, negatives, splits, z-scored examples, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.synthetic import planted_dataset
from tfcnn.errors import OutputExistsError, TfcnnInputError
from tfcnn.io.datasets import dataset_path
from tfcnn.io.expression import from_dataframe
from tfcnn.io.idmap import read_id_map
from tfcnn.io.interactions import from_pairs
from tfcnn.pairs import PairSet, build_pair_set


@pytest.fixture(scope="module")
def data():
    return planted_dataset(n_tfs=12, targets_per_tf=20, n_background=150, n_samples=12)


def _known(interactions) -> set[tuple[str, str]]:
    return set(interactions.as_set())


@pytest.mark.parametrize("negatives", ["random", "tf-matched"])
def test_negatives_balanced_and_never_known(data, negatives) -> None:
    expr, known = data
    pairs = build_pair_set(expr, known, negatives=negatives, seed=3)
    t = pairs.table
    pos, neg = t[t.label == 1], t[t.label == 0]
    assert len(pos) == len(neg) == len(known)
    neg_pairs = set(zip(neg.tf, neg.target, strict=True))
    assert len(neg_pairs) == len(neg), "negatives must be distinct pairs"
    assert not neg_pairs & _known(known)
    assert (neg.tf != neg.target).all()
    if negatives == "tf-matched":
        # every TF exactly as frequent among negatives as among positives
        assert pos.tf.value_counts().sort_index().equals(neg.tf.value_counts().sort_index())
    else:
        # random regulators: mostly genes that are not TFs at all (the study's artefact)
        assert (~neg.tf.isin(set(pos.tf))).mean() > 0.8


def test_tf_matched_caps_tfs_with_too_few_non_targets(caplog) -> None:
    """A TF targeting most genes keeps only as many positives as it has non-targets."""
    rng = np.random.default_rng(0)
    genes = [f"synthetic_g{i}" for i in range(30)]
    expr = from_dataframe(pd.DataFrame(rng.standard_normal((30, 5)), index=genes))
    pairs = [("synthetic_g0", g) for g in genes[1:25]]  # 24 targets, 5 non-targets
    pairs += [("synthetic_g1", g) for g in genes[10:14]]
    pairs += [("synthetic_g2", g) for g in genes[14:18]]
    ps = build_pair_set(expr, from_pairs(pairs), negatives="tf-matched", seed=1)
    t = ps.table
    assert ((t.tf == "synthetic_g0") & (t.label == 1)).sum() == 5
    assert ((t.tf == "synthetic_g0") & (t.label == 0)).sum() == 5
    dropped = ps.meta["positives"]["dropped"]
    assert dropped["capped: TF has too few non-targets for tf-matched negatives"] == 19
    assert "left out" in caplog.text


def test_exclude_pairs_never_negatives() -> None:
    """Pairs given as ``exclude`` (e.g. weaker evidence) are never drawn as negatives."""
    rng = np.random.default_rng(0)
    genes = [f"synthetic_g{i}" for i in range(60)]
    expr = from_dataframe(pd.DataFrame(rng.standard_normal((60, 6)), index=genes))
    positives = from_pairs([("synthetic_g0", g) for g in genes[1:11]])
    excluded = from_pairs([("synthetic_g0", g) for g in genes[11:50]])
    ps = build_pair_set(
        expr,
        positives,
        negatives="tf-matched",
        exclude=excluded,
        fractions=(0.5, 0.25, 0.25),
        seed=0,
    )
    neg_targets = set(ps.table.target[ps.table.label == 0])
    assert len(neg_targets) == 10
    assert neg_targets == set(genes[50:60])


def test_examples_are_z_scored_profiles_with_sample_sd(data) -> None:
    expr, known = data
    ps = build_pair_set(expr, known, seed=0)
    row = ps.table.iloc[7]
    idx = expr.gene_index
    for k, gene in enumerate((row.tf, row.target)):
        v = expr.values[idx[gene]]
        expected = (v - v.mean()) / v.std(ddof=1)
        np.testing.assert_allclose(ps.x[7, k], expected, rtol=1e-5, atol=1e-6)
    assert ps.x.shape == (len(ps), 2, expr.n_samples)
    assert ps.x.dtype == np.float32


def test_random_split_is_80_10_10(data) -> None:
    expr, known = data
    ps = build_pair_set(expr, known, split="random", seed=0)
    sizes = ps.table.split.value_counts()
    n = len(ps)
    assert sizes["test"] == round(0.1 * n) and sizes["validation"] == round(0.1 * n)
    assert sizes["train"] == n - 2 * round(0.1 * n)


@pytest.mark.parametrize("negatives", ["random", "tf-matched"])
def test_tf_holdout_keeps_each_regulator_in_one_split(data, negatives) -> None:
    expr, known = data
    ps = build_pair_set(expr, known, split="tf-holdout", negatives=negatives, seed=5)
    splits_per_tf = ps.table.groupby("tf")["split"].nunique()
    assert (splits_per_tf == 1).all()
    counts = ps.counts()
    for s in ("train", "validation", "test"):
        assert counts[s]["positives"] > 0 and counts[s]["negatives"] > 0
    assert counts["train"]["positives"] > counts["test"]["positives"]


def test_tf_holdout_needs_three_tfs() -> None:
    rng = np.random.default_rng(0)
    genes = [f"synthetic_g{i}" for i in range(20)]
    expr = from_dataframe(pd.DataFrame(rng.standard_normal((20, 5)), index=genes))
    pairs = from_pairs([("synthetic_g0", g) for g in genes[1:8]])
    with pytest.raises(TfcnnInputError, match="at least 3 TFs"):
        build_pair_set(expr, pairs, split="tf-holdout")


def test_seeded(data) -> None:
    expr, known = data
    a = build_pair_set(expr, known, negatives="random", split="tf-holdout", seed=11)
    b = build_pair_set(expr, known, negatives="random", split="tf-holdout", seed=11)
    c = build_pair_set(expr, known, negatives="random", split="tf-holdout", seed=12)
    pd.testing.assert_frame_equal(a.table, b.table)
    np.testing.assert_array_equal(a.x, b.x)
    assert not a.table.equals(c.table)


def test_drops_are_reported(data) -> None:
    expr, known = data
    extra = list(known.as_set()) + [
        ("synthetic_tf_00", "synthetic_tf_00"),
        ("synthetic_missing_tf", "synthetic_gene_0001"),
        ("synthetic_tf_01", "synthetic_missing_target"),
    ]
    ps = build_pair_set(expr, from_pairs(extra), seed=0)
    dropped = ps.meta["positives"]["dropped"]
    assert dropped["self-pair (TF = target)"] == 1
    assert dropped["TF not in expression matrix"] == 1
    assert dropped["target not in expression matrix (TF present)"] == 1
    assert ps.meta["positives"]["kept"] == len(known)


def test_no_overlap_is_a_clear_error(data) -> None:
    expr, _ = data
    with pytest.raises(TfcnnInputError, match="no known pair"):
        build_pair_set(expr, from_pairs([("AT1G01010", "AT1G01020")]))


def test_probeset_matrix_with_agi_interactions_uses_the_id_map() -> None:
    """Expression keyed by ATH1 probesets, pairs by AGI codes: mapped through the real map."""
    id_map = read_id_map(dataset_path("ath1-map"))
    agis = sorted(id_map.agi_to_probeset)[:60]
    probesets = [id_map.agi_to_probeset[a] for a in agis]
    rng = np.random.default_rng(0)
    expr = from_dataframe(pd.DataFrame(rng.standard_normal((60, 8)), index=probesets))
    known = from_pairs(
        [(agis[0], agis[i]) for i in range(1, 10)]
        + [(agis[1], agis[i]) for i in range(10, 20)]
        + [(agis[2], agis[i]) for i in range(20, 30)]
        + [(agis[3], "AT9G99999")]
    )
    with pytest.raises(TfcnnInputError, match="`id_map`"):
        build_pair_set(expr, known)
    ps = build_pair_set(expr, known, id_map=id_map, seed=0)
    pos = ps.table[ps.table.label == 1]
    assert len(pos) == 29
    assert set(pos.tf) == {id_map.agi_to_probeset[a] for a in agis[:3]}
    assert ps.meta["positives"]["dropped"]["no one-to-one ID mapping"] == 1


def test_save_load_roundtrip_and_refusals(data, tmp_path) -> None:
    expr, known = data
    ps = build_pair_set(expr, known, seed=0)
    out = ps.save(tmp_path / "pairs")
    back = PairSet.load(out)
    pd.testing.assert_frame_equal(back.table, ps.table, check_dtype=False)
    np.testing.assert_array_equal(back.x, ps.x)
    assert back.samples == ps.samples and back.genes == ps.genes
    assert back.meta["negatives"] == "random"
    with pytest.raises(OutputExistsError, match="`force`"):
        ps.save(out)
    ps.save(out, force=True)
    (out / "pairs.tsv").write_text("tf\ttarget\tlabel\tsplit\nA\tB\t1\ttrain\n")
    with pytest.raises(TfcnnInputError, match="inconsistent"):
        PairSet.load(out)
    with pytest.raises(TfcnnInputError, match="not a pair set"):
        PairSet.load(tmp_path / "nothing-here")


def test_a_table_of_only_self_pairs_says_so(tmp_path):
    """Issue 12: 'no pair has both genes' was misleading when every pair was a self-pair."""
    from tfcnn.io.interactions import from_pairs

    expr, _ = planted_dataset(n_tfs=3, targets_per_tf=5, n_background=10, n_samples=8)
    genes = list(expr.genes)
    only_self = from_pairs([(g, g) for g in genes[:4]], source="synthetic self pairs")
    with pytest.raises(TfcnnInputError, match="is a self-pair .TF = target., and self-pairs"):
        build_pair_set(expr, only_self, seed=0)
    elsewhere = from_pairs([("AT9G99999", "AT9G99998")], source="synthetic other genes")
    with pytest.raises(TfcnnInputError, match="has both genes in"):
        build_pair_set(expr, elsewhere, seed=0)
