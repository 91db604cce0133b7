"""PairCNN estimator: determinism, persistence, and refusal of anything but its own files."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from tfcnn.errors import ModelFormatError, OutputExistsError
from tfcnn.model import PairCNN, TrainingRecord


@pytest.fixture(scope="module")
def toy():
    """Synthetic inputs: label 1 when the two rows are positively correlated."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 24))
    y = rng.integers(0, 2, 400)
    b = np.where(y[:, None] == 1, a, -a) + 0.3 * rng.standard_normal((400, 24))
    x = np.stack([a, b], axis=1).astype(np.float32)
    return x, y


@pytest.fixture(scope="module")
def fitted(toy):
    x, y = toy
    return PairCNN(epochs=3, batch_size=64, seed=1).fit(x[:300], y[:300], (x[300:], y[300:]))


def test_same_seed_same_weights_other_seed_differs(toy, fitted) -> None:
    x, y = toy
    again = PairCNN(epochs=3, batch_size=64, seed=1).fit(x[:300], y[:300], (x[300:], y[300:]))
    other = PairCNN(epochs=3, batch_size=64, seed=2).fit(x[:300], y[:300])
    for (k, v), (_, w) in zip(
        fitted.network_.state_dict().items(), again.network_.state_dict().items(), strict=True
    ):
        assert torch.equal(v, w), k
    assert not np.allclose(fitted.predict_proba(x)[:, 1], other.predict_proba(x)[:, 1])


def test_training_does_not_touch_global_rng(toy) -> None:
    x, y = toy
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    PairCNN(epochs=1, seed=5).fit(x, y)
    assert torch.equal(torch.rand(3), expected)


def test_history_has_train_and_validation_metrics(fitted) -> None:
    assert [h["epoch"] for h in fitted.history_] == [1, 2, 3]
    for key in ("loss", "accuracy", "auroc", "val_loss", "val_accuracy", "val_auroc"):
        assert all(h[key] is not None for h in fitted.history_), key
    assert fitted.history_[-1]["loss"] < fitted.history_[0]["loss"]


def test_predict_proba_shape_and_range(toy, fitted) -> None:
    x, _ = toy
    p = fitted.predict_proba(x)
    assert p.shape == (len(x), 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert ((p >= 0) & (p <= 1)).all()


def test_fit_rejects_bad_shapes(toy) -> None:
    x, y = toy
    with pytest.raises(ValueError, match="shape"):
        PairCNN(epochs=1).fit(x[:, :1], y)
    with pytest.raises(ValueError, match="0 and 1"):
        PairCNN(epochs=1).fit(x, y + 1)
    with pytest.raises(NotFittedError, match="not fitted"):
        PairCNN().predict_proba(x)


def test_save_load_roundtrip(toy, fitted, tmp_path) -> None:
    x, _ = toy
    fitted.record_ = TrainingRecord(genes=["g1", "g2"], samples=[f"s{i}" for i in range(24)])
    path = fitted.save(tmp_path / "m")
    assert sorted(p.name for p in path.iterdir()) == ["model.json", "weights.safetensors"]
    back = PairCNN.load(path)
    np.testing.assert_array_equal(back.predict_proba(x), fitted.predict_proba(x))
    assert back.history_ == json.loads((path / "model.json").read_text())["history"]
    assert back.record_.samples[0] == "s0" and back.record_.genes == ["g1", "g2"]
    assert back.get_params() == fitted.get_params()
    with pytest.raises(OutputExistsError):
        fitted.save(path)
    fitted.save(path, force=True)


def _saved(fitted, tmp_path):
    return fitted.save(tmp_path / "m", force=True)


def test_refuses_pickle_and_plain_files(fitted, tmp_path) -> None:
    evil = tmp_path / "model.pkl"
    evil.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ModelFormatError, match="never loaded"):
        PairCNN.load(evil)
    with pytest.raises(ModelFormatError, match="does not exist"):
        PairCNN.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match="model.json"):
        PairCNN.load(tmp_path / "empty")


def test_refuses_truncated_weights(fitted, tmp_path) -> None:
    path = _saved(fitted, tmp_path)
    w = path / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:200])
    with pytest.raises(ModelFormatError, match="truncated"):
        PairCNN.load(path)


def test_refuses_future_format_and_mismatched_architecture(fitted, tmp_path) -> None:
    path = _saved(fitted, tmp_path)
    meta_path = path / "model.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ModelFormatError, match="Upgrade tfcnn"):
        PairCNN.load(path)
    arch = {**meta["architecture"], "filters": [4, 16]}
    meta_path.write_text(json.dumps({**meta, "architecture": arch}))
    with pytest.raises(ModelFormatError, match="wrong shape"):
        PairCNN.load(path)
    meta_path.write_text(json.dumps({**meta, "architecture": {**arch, "bogus": 1}}))
    with pytest.raises(ModelFormatError, match="invalid architecture"):
        PairCNN.load(path)
    meta_path.write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        PairCNN.load(path)


def test_own_expression_roundtrip_and_validation(toy, fitted, tmp_path) -> None:
    """A model can carry its z-scored matrix; loading checks it against genes and width."""
    rng = np.random.default_rng(3)
    fitted.record_ = TrainingRecord(
        genes=[f"synthetic_g{i}" for i in range(5)],
        zscores=rng.standard_normal((5, 24)).astype(np.float32),
    )
    path = fitted.save(tmp_path / "m")
    back = PairCNN.load(path)
    np.testing.assert_array_equal(back.record_.zscores, fitted.record_.zscores)
    meta = json.loads((path / "model.json").read_text())
    (path / "model.json").write_text(json.dumps({**meta, "genes": ["only_one"]}))
    with pytest.raises(ModelFormatError, match="lists 1 genes"):
        PairCNN.load(path)
    fitted.record_ = TrainingRecord()


def test_probability_distribution_and_percentiles() -> None:
    from tfcnn.evaluation.metrics import percentile_in, probability_distribution

    y = np.array([0] * 100 + [1] * 100)
    p = np.concatenate([np.linspace(0, 0.5, 100), np.linspace(0.5, 1, 100)])
    d = probability_distribution(y, p)
    assert d["negative"]["n"] == d["positive"]["n"] == 100
    assert d["share_negatives_below_0.05"] == pytest.approx(0.10)
    assert d["share_positives_above_0.95"] == pytest.approx(0.10)
    pct = percentile_in(d, "negative", np.array([0.0, 0.25, 0.5, 0.9]))
    np.testing.assert_allclose(pct, [0, 50, 100, 100], atol=1)
    assert percentile_in(d, "positive", np.array([0.2]))[0] == 0.0


def test_saved_model_has_normal_permissions(fitted, tmp_path) -> None:
    """Atomic writes go through mkdtemp (0700); the published result must not stay private."""
    import os

    mask = os.umask(0o022)
    try:
        path = fitted.save(tmp_path / "perm")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o755
    assert (path / "model.json").stat().st_mode & 0o777 == 0o644


# -- scikit-learn -----------------------------------------------------------------------
def test_is_a_scikit_learn_estimator(toy) -> None:
    """Parameters only in __init__, fitted attributes only after fit, clone, score, CV."""
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import cross_val_score
    from sklearn.utils import estimator_checks as checks

    x, y = toy
    est = PairCNN(filters=(2, 4), units=4, epochs=2, batch_size=64, seed=3)
    assert is_classifier(est) and not hasattr(est, "network_") and not hasattr(est, "classes_")
    assert est.get_params()["filters"] == (2, 4) and clone(est).get_params() == est.get_params()
    assert est.set_params(units=5).units == 5
    with pytest.raises(ValueError, match="Invalid parameter"):
        est.set_params(nonsense=1)
    for check in (
        checks.check_no_attributes_set_in_init,
        checks.check_parameters_default_constructible,
        checks.check_get_params_invariance,
        checks.check_set_params,
    ):
        check("PairCNN", PairCNN())
    with pytest.raises(NotFittedError):
        est.predict(x)
    est.fit(x[:300], y[:300])
    np.testing.assert_array_equal(est.classes_, [0, 1])
    assert 0.0 <= est.score(x[300:], y[300:]) <= 1.0
    scores = cross_val_score(PairCNN(epochs=2, batch_size=64), x, y, cv=3, scoring="roc_auc")
    assert scores.shape == (3,) and np.isfinite(scores).all()
    with pytest.raises(ValueError, match="shape"):
        est.predict_proba(x[:, :, :10])


def test_fit_leaves_the_process_allocator_alone(toy, monkeypatch) -> None:
    """Tuning glibc malloc is the command line's business, not the estimator's."""
    import tfcnn.runtime

    calls = []
    monkeypatch.setattr(tfcnn.runtime, "keep_freed_memory", lambda: calls.append(1))
    x, y = toy
    PairCNN(epochs=1, batch_size=64).fit(x, y)
    assert calls == []


def test_fit_pairs_records_the_pair_set(tmp_path) -> None:
    from tests.synthetic import planted_dataset
    from tfcnn.pairs import build_pair_set

    expr, inter = planted_dataset(n_tfs=10, targets_per_tf=10, n_background=30, n_samples=12)
    pairs = build_pair_set(expr, inter, negatives="tf-matched", split="tf-holdout", seed=0)
    est = PairCNN(filters=(2, 2), units=2, epochs=1, batch_size=32).fit_pairs(pairs)
    rec = est.record_
    assert rec.genes == list(pairs.genes) and rec.samples == list(pairs.samples)
    np.testing.assert_array_equal(rec.zscores, pairs.zscores)
    assert rec.pairs["tf"].size == len(pairs) and set(rec.pairs["split"]) == {0, 1, 2}
    back = PairCNN.load(est.save(tmp_path / "m"))
    for k, v in rec.pairs.items():
        np.testing.assert_array_equal(back.record_.pairs[k], v)
    # A damaged record is refused when read back.
    from safetensors.numpy import save_file

    bad = {**rec.pairs, "tf": np.full(rec.pairs["tf"].size, 10**6, dtype=np.int32)}
    save_file(bad, str(tmp_path / "m" / "pairs.safetensors"))
    with pytest.raises(ModelFormatError, match="outside"):
        PairCNN.load(tmp_path / "m")


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda m: m.update(genes="AT1G01010"), "'genes' must be a list of names"),
        (lambda m: m.update(samples=[1, 2]), "'samples' must be a list of names"),
        (lambda m: m.update(metrics=[]), "'metrics' must be a JSON object"),
        (lambda m: m["architecture"].update(units=8.5), "units must be a whole number"),
        (lambda m: m["architecture"].update(filters=[4, 1_000_000_000]), "whole number from 1"),
        (lambda m: m["training"].update(epochs="30"), "training epochs = '30'"),
        (lambda m: m.update(history={"epoch": 1}), "'history' must be a list"),
    ],
)
def test_damaged_model_json_is_refused_with_a_message(fitted, tmp_path, edit, needle) -> None:
    path = _saved(fitted, tmp_path)
    meta = json.loads((path / "model.json").read_text())
    edit(meta)
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match=needle):
        PairCNN.load(path)


def test_negative_batch_norm_variance_is_refused(fitted, tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    path = _saved(fitted, tmp_path)
    tensors = load_file(str(path / "weights.safetensors"))
    tensors["norm2.running_var"] = -tensors["norm2.running_var"].abs() - 1
    save_file(tensors, str(path / "weights.safetensors"))
    with pytest.raises(ModelFormatError, match="negative variances"):
        PairCNN.load(path)
