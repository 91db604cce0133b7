"""Named models: registering, listing, resolving, refusing."""

from __future__ import annotations

import numpy as np
import pytest

from tfcnn import api
from tfcnn.errors import TfcnnInputError
from tfcnn.model.estimator import PairCNN
from tfcnn.model.registry import list_models, register_model, resolve_model


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TFCNN_HOME", str(tmp_path / "synthetic_home"))
    return tmp_path


@pytest.fixture
def model_dir(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2, 10)).astype(np.float32)
    return PairCNN(epochs=1).fit(x, rng.integers(0, 2, 64)).save(tmp_path / "synthetic_model")


def test_register_list_resolve(home, model_dir) -> None:
    dest = register_model(model_dir, "synthetic-one")
    assert resolve_model("synthetic-one") == dest
    assert [e.name for e in list_models() if e.origin == "user"] == ["synthetic-one"]
    assert api.load_model("synthetic-one").n_samples == 10
    with pytest.raises(TfcnnInputError, match="already exists"):
        register_model(model_dir, "synthetic-one")
    register_model(model_dir, "synthetic-one", force=True)


def test_refusals(home, model_dir, tmp_path) -> None:
    with pytest.raises(TfcnnInputError, match="may only use"):
        register_model(model_dir, "../escape")
    (tmp_path / "not_a_model").mkdir()
    with pytest.raises(TfcnnInputError, match="model.json"):
        register_model(tmp_path / "not_a_model", "synthetic-bad")
    with pytest.raises(TfcnnInputError, match="tfcnn models"):
        resolve_model("no-such-model")
