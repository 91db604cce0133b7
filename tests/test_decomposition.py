"""Decomposed scores in predictions (issue 14): TF base rate, percentiles, training flags.

The model is tiny and trained on synthetic data (tests.predict_helpers); where exact
values matter, the scores themselves are replaced by a stated synthetic function.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.predict_helpers import train_synthetic_model
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
