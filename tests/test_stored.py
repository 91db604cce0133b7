"""A pair CNN read without torch (tfcnn.model.stored) scores as the loaded model does,
is checked as strictly, and keeps `tfcnn scan` with the fused kernel free of torch and
scikit-learn. Models are trained here on synthetic data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tests.predict_helpers import train_synthetic_model
from tests.test_engine import CONFIGS, IDS, TOL, _block_pairs, _net, _reference
from tfcnn.errors import ModelFormatError, TfcnnInputError
from tfcnn.model.files import load_model
from tfcnn.model.network import PairCNNNetwork
from tfcnn.model.stored import StoredCNN, architecture_kind, load_stored_cnn, read_model_json

LIGHT = ("torch", "sklearn", "scipy.stats")


@pytest.fixture(scope="module")
def cnn_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_synthetic_model(tmp_path_factory.mktemp("stored-cnn"))


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_state_shapes_name_every_weight_of_the_network(config) -> None:
    net = PairCNNNetwork(config)
    want = {
        k: tuple(v.shape)
        for k, v in net.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    assert config.state_shapes() == want


def test_stored_model_equals_the_loaded_one(cnn_model: Path) -> None:
    stored, est = load_stored_cnn(cnn_model), load_model(cnn_model)
    assert architecture_kind(read_model_json(cnn_model)["architecture"]) == "pair-cnn"
    assert stored.config == est.network_.config
    state = {k: v.numpy() for k, v in est.network_.state_dict().items()}
    assert set(stored.state) == {k for k in state if not k.endswith("num_batches_tracked")}
    for k, v in stored.state.items():
        np.testing.assert_array_equal(v, state[k])
    assert stored.record_.genes == est.record_.genes
    assert stored.record_.samples == est.record_.samples
    np.testing.assert_array_equal(stored.record_.zscores, est.record_.zscores)
    assert stored.n_samples == est.n_samples
    assert stored.network_ is stored


def test_two_tower_model_is_not_read_as_a_cnn(tmp_path: Path) -> None:
    model = train_synthetic_model(tmp_path, two_tower=True)
    assert architecture_kind(read_model_json(model)["architecture"]) == "two-tower"
    with pytest.raises(ValueError, match="not a pair CNN"):
        load_stored_cnn(model)


def _damaged_copy(model: Path, folder: Path, key: str, value: np.ndarray) -> Path:
    folder.mkdir()
    for item in model.iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    weights = load_file(str(model / "weights.safetensors"))
    weights[key] = value
    save_file(weights, str(folder / "weights.safetensors"))
    return folder


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("out.bias", np.array([np.nan], np.float32), "not finite float32"),
        ("dense.bias", np.zeros(3, np.float32), "wrong shape"),
        ("out.bias", np.zeros(1, np.float64), "not finite float32"),
    ],
)
def test_damaged_weights_are_refused_the_same_way(
    cnn_model: Path, tmp_path: Path, key: str, value: np.ndarray, message: str
) -> None:
    bad = _damaged_copy(cnn_model, tmp_path / "bad", key, value)
    with pytest.raises(ModelFormatError, match=message) as light:
        load_stored_cnn(bad)
    with pytest.raises(ModelFormatError, match=message) as whole:
        load_model(bad)
    assert str(light.value) == str(whole.value)


def test_damaged_architecture_is_refused(cnn_model: Path, tmp_path: Path) -> None:
    bad = _damaged_copy(cnn_model, tmp_path / "bad", "out.bias", np.zeros(1, np.float32))
    meta = json.loads((bad / "model.json").read_text())
    meta["architecture"]["units"] = -1
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="invalid architecture"):
        load_stored_cnn(bad)


@pytest.mark.parametrize("config", CONFIGS[:3], ids=IDS[:3])
def test_fused_scorer_of_a_stored_network_equals_the_layers(config) -> None:
    pytest.importorskip("numba")
    from tfcnn.inference.folding import network_arrays
    from tfcnn.inference.fused import FusedPairScorer

    net = _net(config, seed=3)
    stored = StoredCNN(config, network_arrays(net))
    rng = np.random.default_rng(0)
    z = rng.standard_normal((12, config.n_samples)).astype(np.float32)
    rows = np.arange(12)
    from_stored = FusedPairScorer(stored)
    got = from_stored.score_block(from_stored.gene_terms(z), rows[:4], rows)
    from_net = FusedPairScorer(net)
    np.testing.assert_array_equal(got, from_net.score_block(from_net.gene_terms(z), rows[:4], rows))
    want, _ = _reference(net, _block_pairs(z, rows[:4], rows))
    np.testing.assert_allclose(got.ravel(), want.ravel(), atol=TOL)


def test_load_scan_model_reads_a_cnn_without_torch_only_for_the_fused_kernel(
    cnn_model: Path,
) -> None:
    pytest.importorskip("numba")
    from tfcnn.inference.scan import load_scan_model
    from tfcnn.model.estimator import PairCNN

    assert isinstance(load_scan_model(cnn_model), StoredCNN)
    assert isinstance(load_scan_model(cnn_model, "numba"), StoredCNN)
    assert isinstance(load_scan_model(cnn_model, "torch"), PairCNN)
    with pytest.raises(TfcnnInputError, match="neither a model directory"):
        load_scan_model("no-such-model")


def _modules_after(code: str, *args: str, exit_code: int = 0) -> dict[str, bool]:
    """Which of LIGHT a fresh interpreter imported by the end of ``code``."""
    probe = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: print(json.dumps({{m: m in sys.modules for m in {LIGHT!r}}})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe + code, *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == exit_code, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_light_modules_import_without_torch_or_scikit_learn() -> None:
    code = "import tfcnn.inference.scan, tfcnn.model.stored, tfcnn.evaluation.card\n"
    assert _modules_after(code) == dict.fromkeys(LIGHT, False)


def test_cli_scan_with_the_fused_kernel_never_imports_torch(
    cnn_model: Path, tmp_path: Path
) -> None:
    pytest.importorskip("numba")
    code = "sys.argv = ['tfcnn', *sys.argv[1:]]\nfrom tfcnn.apps.cli import main\nmain()\n"
    out = tmp_path / "edges.parquet"
    expression = cnn_model.parent / "synthetic_expression.tsv"
    args = ["scan", "--model", str(cnn_model), "--expression", str(expression)]
    imported = _modules_after(code, *args, "--output", str(out))
    assert imported == dict.fromkeys(LIGHT, False)
    assert out.exists()
    # the same command with the PyTorch engine loads the whole model
    imported = _modules_after(
        code, *args, "--output", str(tmp_path / "t.parquet"), "--engine", "torch"
    )
    assert imported["torch"]


def test_a_wrong_model_name_is_refused_before_torch_is_imported(tmp_path: Path) -> None:
    code = "sys.argv = ['tfcnn', *sys.argv[1:]]\nfrom tfcnn.apps.cli import main\nmain()\n"
    for command in (
        ["predict", "--regulators", "AT1G01010"],
        ["scan", "--output", str(tmp_path / "x.tsv")],
    ):
        imported = _modules_after(code, *command, "--model", "no-such-model", exit_code=2)
        assert imported == dict.fromkeys(LIGHT, False), command
