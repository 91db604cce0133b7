"""The declared public API (``import tfcnn``): every name resolves, and one run uses them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import tfcnn
from tests.synthetic import planted_dataset


def test_import_is_light_and_every_public_name_resolves() -> None:
    code = "import sys, tfcnn; print('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]  # `tfcnn --help` does not pay for torch
    for name in tfcnn.__all__:
        assert getattr(tfcnn, name) is not None, name
    assert sorted(dir(tfcnn)) == sorted(tfcnn.__all__)


def test_one_run_through_the_public_api(tmp_path) -> None:
    """Synthetic planted data through build_pairs -> train -> evaluate -> predict -> explain."""
    expr, known = planted_dataset(n_tfs=12, targets_per_tf=10, n_background=40, n_samples=12)
    pairs = tfcnn.build_pairs(expr, known, negatives="tf-matched", split="tf-holdout", seed=0)
    assert isinstance(pairs, tfcnn.PairSet)
    model = tfcnn.train(pairs, epochs=3, filters=(2, 4), units=4, batch_size=32, seed=0)
    assert isinstance(model, tfcnn.PairCNN) and model.record_.evaluation is not None
    report = tfcnn.evaluate(model, pairs, n_boot=50)
    assert {"model", "tf_only", "target_only", "target_frequency"} <= set(report["methods"])
    saved = model.save(tmp_path / "synthetic_model")
    result = tfcnn.predict(saved, expr.genes[0])
    assert len(result.table) == len(expr.genes) - 1
    assert np.isfinite(result.table.percentile_in_regulator_row).all()
    explained = tfcnn.explain_pair(saved, expr.genes[0], expr.genes[9])
    assert 0 <= explained.probability <= 1
