"""Decomposed scores in predictions (issue 14): TF base rate, percentiles, training flags.

The model is tiny and trained on synthetic data (tests.predict_helpers); where exact
values matter, the scores themselves are replaced by a stated synthetic function.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.predict_helpers import train_synthetic_model
from tfcnn.inference.decompose import RowStatsCache, percentile_in_columns, row_stats
from tfcnn.inference.predict import COLUMN_HELP, COLUMNS, Predictor


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return Predictor(train_synthetic_model(tmp_path_factory.mktemp("decompose"), agi=True))


def test_every_column_is_explained(predictor) -> None:
    assert set(COLUMNS) - {"regulator_agi", "regulator_probeset", "target_agi"} - {
        "target_probeset"
    } <= set(COLUMN_HELP)


def test_decomposition_against_a_stated_score(predictor, monkeypatch) -> None:
    """Scores = a(TF) + b(target) + small pair term: the columns recover each part."""
    n = len(predictor.genes)
    rng = np.random.default_rng(0)
    a = np.linspace(0.05, 0.9, n)  # the last genes score high with everything
    b = rng.uniform(-0.05, 0.05, n)
    pair = rng.uniform(-0.01, 0.01, (n, n))

    def fake(reg_rows, target_rows, on_progress=None, workers=1):
        reg_rows, target_rows = np.asarray(reg_rows), np.asarray(target_rows)
        return np.clip(
            a[reg_rows][:, None] + b[target_rows][None, :] + pair[np.ix_(reg_rows, target_rows)],
            0,
            1,
        )

    monkeypatch.setattr(predictor, "score_grid", fake)
    monkeypatch.setattr(predictor, "_reference", None)  # scored by the real model before
    predictor.row_cache.clear()
    genes = predictor.genes
    hub, quiet = genes[-1], genes[0]
    result = predictor.predict([hub, quiet], None)
    t = result.table
    other = np.delete(fake(np.array([n - 1]), np.arange(n))[0], n - 1)  # self excluded
    hub_rows = t[t.regulator == hub]
    assert hub_rows.regulator_base_rate.iloc[0] == pytest.approx(np.mean(other > 0.5), abs=1e-4)
    assert hub_rows.regulator_scores_most_genes_high.all()
    assert not t[t.regulator == quiet].regulator_scores_most_genes_high.any()
    warning = [x for x in result.notes if x.startswith("WARNING: regulator")]
    assert len(warning) == 1 and hub in warning[0] and "rank its targets at best" in warning[0]
    # The row percentile is the rank within the regulator's own scores with every gene.
    row = hub_rows.set_index("target")
    for target in row.index[:5]:
        v = row.loc[target, "probability"]
        expected = ((other < v).sum() + (other == v).sum() / 2) / other.size * 100
        assert row.loc[target, "percentile_in_regulator_row"] == pytest.approx(expected, abs=0.01)
    # The hub's probabilities are all high, but its row percentiles span 0-100.
    assert hub_rows.probability.min() > 0.8
    assert hub_rows.percentile_in_regulator_row.min() < 5
    assert hub_rows.percentile_in_regulator_row.max() > 95


def test_training_flags_say_what_was_memorised(predictor) -> None:
    record = predictor.model.record_
    p = record.pairs
    train_pos = np.flatnonzero((p["split"] == 0) & (p["label"] == 1))[0]
    tf, target = record.genes[p["tf"][train_pos]], record.genes[p["target"][train_pos]]
    t = predictor.predict([tf], [target, *record.genes[:3]]).table
    flagged = t.set_index("target").loc[target]
    assert flagged.pair_in_training == "train positive"
    assert flagged.regulator_in_training == "yes" and flagged.target_in_training == "yes"
    assert set(t.pair_in_training) <= {
        "no",
        "train positive",
        "train negative",
        "held-out positive",
        "held-out negative",
    }
    assert predictor.card in " ".join(predictor.notes)


def test_kept_rows_are_not_scored_again_and_change_nothing(tmp_path, predictor) -> None:
    """A server's second query about the same regulators reuses their rows: same table as
    a fresh predictor's, and only the query's own pairs are scored."""
    genes = predictor.genes
    regs, first, second = genes[:3], genes[10 : 10 + len(genes) // 3], genes[-15:]
    predictor.row_cache.clear()
    predictor._reference = None
    predictor.predict(regs, genes[10:12])  # a small query does not score every gene
    assert predictor._reference is None
    predictor.predict(regs, first)  # a third of the genes: the training TFs' rows are kept
    assert predictor._reference is not None
    scored: list[int] = []
    real = predictor.score_grid

    def counting(reg_rows, target_rows, on_progress=None, workers=1):
        scored.append(np.asarray(reg_rows).size * np.asarray(target_rows).size)
        return real(reg_rows, target_rows, on_progress, workers)

    predictor.score_grid = counting  # type: ignore[method-assign]
    try:
        warm = predictor.predict(regs, second).table
    finally:
        del predictor.score_grid
    assert scored == [len(regs) * len(second)]
    fresh = Predictor(predictor.model, name=predictor.name).predict(regs, second).table
    assert warm.equals(fresh)


def test_row_cache_keeps_to_its_byte_budget() -> None:
    n = 100
    grid = np.random.default_rng(1).uniform(size=(n, n))
    calls: list[list[int]] = []

    def score_rows(rows):
        calls.append(list(rows))
        return grid[rows]

    cache = RowStatsCache(max_bytes=3 * n * 4)  # three float32 rows
    cache.stats(score_rows, np.array([0, 1, 2]), n)
    cache.stats(score_rows, np.array([1, 3]), n)  # 1 kept; 3 pushes 0 out
    assert calls == [[0, 1, 2], [3]] and len(cache) == 3
    got = cache.stats(score_rows, np.array([0, 2]), n)
    assert calls[-1] == [0]
    expected = row_stats(lambda rows: grid[rows], np.array([0, 2]), n)
    assert np.array_equal(got.percentiles, expected.percentiles, equal_nan=True)
    assert np.array_equal(got.base_rate, expected.base_rate)


def test_column_percentiles_match_counting() -> None:
    rng = np.random.default_rng(2)
    reference = rng.integers(0, 5, size=(7, 6)).astype(float)  # ties on purpose
    reference[1, 2] = reference[4, 0] = np.nan
    got = percentile_in_columns(reference, 3)
    for i in range(3):
        for j in range(6):
            col = reference[:, j][~np.isnan(reference[:, j])]
            v = reference[i, j]
            want = np.nan if np.isnan(v) else ((col < v).sum() + (col == v).sum() / 2) / col.size
            assert got[i, j] == pytest.approx(want * 100, nan_ok=True)
    assert np.isnan(percentile_in_columns(reference[:1], 1)).all()


def test_column_means_skip_self_pairs_without_warning() -> None:
    """A target whose only reference regulator is itself has no mean (NaN), silently."""
    import warnings

    from tfcnn.inference.decompose import column_stats

    reference = np.array([[0.2, 0.4, 0.9], [0.6, 0.8, 0.1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, ref = column_stats(reference, np.array([5, 7]), np.array([5, 9, 8]))
        empty, _ = column_stats(np.ones((1, 2)), np.array([3]), np.array([3, 4]))
    np.testing.assert_allclose(mean, [0.6, 0.6, 0.5])  # column 0 without the self-pair 0.2
    assert np.isnan(ref[0, 0]) and np.isnan(empty[0]) and empty[1] == 1.0
    # the reference itself is not changed
    assert reference[0, 0] == 0.2
