"""End to end on synthetic data: planted co-regulation is learned, shuffled labels are not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.synthetic import planted_dataset, write_pairs, write_tsv
from tfcnn import api


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Synthetic files on disk, as a user would give them (noise makes Pearson imperfect)."""
    expr, known = planted_dataset(
        n_tfs=30, targets_per_tf=60, n_background=500, n_samples=40, noise=1.0, seed=7
    )
    d = tmp_path_factory.mktemp("synthetic")
    write_tsv(expr, d / "synthetic_expression.tsv")
    write_pairs(known, d / "synthetic_pairs.tsv")
    return d / "synthetic_expression.tsv", d / "synthetic_pairs.tsv"


@pytest.mark.parametrize(
    ("negatives", "split"), [("random", "random"), ("tf-matched", "tf-holdout")]
)
def test_planted_coregulation_is_learned(planted, negatives, split, tmp_path) -> None:
    """Under the strict protocol too: test TFs unseen, TF identity uninformative."""
    expression, pairs_file = planted
    pairs = api.build_pairs(expression, pairs_file, negatives=negatives, split=split, seed=0)
    model = api.train(pairs, seed=0, output=tmp_path / "model")
    test = model.record_.metrics["test"]
    assert test["auroc"] > 0.9, test
    assert test["n"] >= 300
    # the stored metrics are what evaluate() finds on the reloaded model
    again = api.evaluate(tmp_path / "model", pairs, split="test")
    assert again["auroc"] == pytest.approx(test["auroc"], abs=1e-9)
    saved = json.loads((tmp_path / "model" / "model.json").read_text())
    assert saved["metrics"]["test"]["auroc"] == pytest.approx(test["auroc"])
    assert saved["data"]["negatives"] == negatives and saved["data"]["split"] == split
    assert len(saved["history"]) == 30
    assert saved["samples"] == list(pairs.samples)


def test_shuffled_labels_stay_near_chance(planted) -> None:
    """Same examples, labels permuted: nothing to learn, so test AUROC must be near 0.5."""
    expression, pairs_file = planted
    pairs = api.build_pairs(expression, pairs_file, negatives="tf-matched", seed=0)
    rng = np.random.default_rng(1)
    shuffled = pairs.with_labels(rng.permutation(pairs.table["label"].to_numpy()))
    test = api.train(shuffled, seed=0).record_.metrics["test"]
    # null spread of AUROC with ~180 + 180 test pairs is about 0.03
    assert abs(test["auroc"] - 0.5) < 0.1, test


def test_training_is_deterministic_given_seed(planted) -> None:
    expression, pairs_file = planted
    pairs = api.build_pairs(expression, pairs_file, seed=3)
    a = api.train(pairs, seed=3, epochs=3)
    b = api.train(pairs, seed=3, epochs=3)
    x, _ = pairs.arrays("test")
    np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x))
    assert a.history_ == b.history_
