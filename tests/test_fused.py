"""The fused numba kernel (tfcnn.inference.fused) equals the plain PyTorch layers.

Same references and configurations as tests/test_engine.py: the network itself in eval
mode and the grouped-conv formulation, on random (synthetic) weights and inputs.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

from tests.test_engine import (
    CONFIGS,
    IDS,
    TOL,
    WIDE,
    _block_case,
    _block_pairs,
    _net,
    _reference,
    _trained_bn_net,
)
from tfcnn.errors import TfcnnInputError
from tfcnn.inference import fused
from tfcnn.inference.engine import PairScorer
from tfcnn.inference.fused import FusedPairScorer, kernel_source, resolve_engine
from tfcnn.model.network import CNNConfig, PairCNNNetwork

pytest.importorskip("numba")  # part of the `all` extra that `make test` installs


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("sign", [0, 1, -1], ids=["mixed", "increasing", "decreasing"])
def test_score_block_equals_reference_layers(config: CNNConfig, sign: int) -> None:
    net, z, tfs = _block_case(config, sign)
    scorer = FusedPairScorer(net)
    terms = scorer.gene_terms(z)
    # gathered targets (TFs among them), a contiguous run, and a single target
    for targets in (np.array([3, 0, 1, 2, 5, 6, 8, 9, 10]), np.arange(2, 9), np.array([4])):
        own, grouped = _reference(net, _block_pairs(z, tfs, targets))
        got = scorer.score_block(terms, tfs, targets)
        assert got.shape == (len(tfs), len(targets))
        np.testing.assert_allclose(got.ravel(), own, atol=TOL, rtol=0)
        np.testing.assert_allclose(got.ravel(), grouped, atol=TOL, rtol=0)


@pytest.mark.parametrize("config", WIDE, ids=["w601", "w520-bn-k4"])
def test_wide_inputs_many_targets_equal_engine_and_network(config: CNNConfig) -> None:
    """Several position tiles (the last one partial) and target blocks (the last partial)."""
    net = _net(config, seed=3 * config.n_samples)
    rng = np.random.default_rng(5)
    genes = fused.BLOCK + 45
    z = rng.standard_normal((genes, config.n_samples)).astype(np.float32)
    assert config.pooled_width > fused.TILE and config.pooled_width % fused.TILE
    scorer, engine = FusedPairScorer(net), PairScorer.from_network(net)
    tfs, targets = np.array([genes - 1, 0, 7]), np.arange(genes)
    got = scorer.score_block(scorer.gene_terms(z), tfs, targets)
    np.testing.assert_allclose(
        got, engine.score_block(engine.gene_terms(z), tfs, targets), atol=TOL, rtol=0
    )
    few = np.arange(0, genes, 37)  # the network itself on a subset, to keep it quick
    own, _ = _reference(net, _block_pairs(z, tfs, few))
    np.testing.assert_allclose(got[:, few].ravel(), own, atol=TOL, rtol=0)


def test_trained_batch_norm_statistics_are_used() -> None:
    net, x = _trained_bn_net()
    z = x[:, 0].numpy()
    tfs, targets = np.arange(5), np.arange(64)
    own, _ = _reference(net, _block_pairs(z, tfs, targets))
    scorer = FusedPairScorer(net)
    got = scorer.score_block(scorer.gene_terms(z), tfs, targets)
    np.testing.assert_allclose(got.ravel(), own, atol=TOL, rtol=0)


def test_bad_rows_and_shapes_are_refused() -> None:
    net = _net(CONFIGS[3], seed=1)
    scorer = FusedPairScorer(net)
    terms = scorer.gene_terms(np.zeros((5, CONFIGS[3].n_samples), np.float32))
    for tfs, targets in (([0], [5]), ([-1], [0]), ([5], [0, 1])):
        with pytest.raises(IndexError, match="0..4"):
            scorer.score_block(terms, np.array(tfs), np.array(targets))
    with pytest.raises(ValueError, match="expected a"):
        scorer.gene_terms(np.zeros((5, 3), np.float32))
    assert scorer.score_block(terms, np.array([], np.int64), np.arange(5)).shape == (0, 5)


def test_non_finite_weights_are_refused() -> None:
    net = _net(CONFIGS[3], seed=2)
    with torch.no_grad():
        net.dense.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        FusedPairScorer(net)


def test_compiled_once_per_shape_and_cached_on_disk(monkeypatch, tmp_path) -> None:
    """The anchor file holds the generated source; a changed file is rewritten, and the
    kernel is compiled from memory, never from the file."""
    monkeypatch.setenv("TFCNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(fused, "_KERNELS", {})
    config = CONFIGS[3]
    f1, f2 = config.filters
    source = kernel_source(f1, f2, config.units, config.kernel_width, fused.BLOCK, fused.TILE)
    kernel = fused.compiled_kernel(f1, f2, config.units, config.kernel_width)
    assert fused.compiled_kernel(f1, f2, config.units, config.kernel_width) is kernel
    [anchor] = (tmp_path / "kernels").glob("tfcnn_fused_*.py")
    assert anchor.read_text() == source
    anchor.write_text("raise SystemExit('this file must never run')\n")
    monkeypatch.setattr(fused, "_KERNELS", {})
    net = _net(config, seed=4)
    z = np.random.default_rng(0).standard_normal((6, config.n_samples)).astype(np.float32)
    scorer = FusedPairScorer(net)
    got = scorer.score_block(scorer.gene_terms(z), np.arange(3), np.arange(6))
    own, _ = _reference(net, _block_pairs(z, np.arange(3), np.arange(6)))
    np.testing.assert_allclose(got.ravel(), own, atol=TOL, rtol=0)
    assert anchor.read_text() == source
    # numba's index and code sit beside it, in the folder _anchor checks
    assert list((tmp_path / "kernels" / "__pycache__").glob(anchor.stem + "*.nbi"))


def test_unwritable_cache_still_compiles(monkeypatch, tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("TFCNN_CACHE_DIR", str(blocker))
    monkeypatch.setattr(fused, "_KERNELS", {})
    assert fused._anchor("x = 1\n", "tfcnn_fused_test") is None
    net = _net(CONFIGS[5], seed=5)
    scorer = FusedPairScorer(net)
    z = np.ones((3, CONFIGS[5].n_samples), np.float32)
    own, _ = _reference(net, _block_pairs(z, np.arange(3), np.arange(3)))
    got = scorer.score_block(scorer.gene_terms(z), np.arange(3), np.arange(3))
    np.testing.assert_allclose(got.ravel(), own, atol=TOL, rtol=0)


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_cache_only_in_a_folder_no_one_else_can_write(monkeypatch, tmp_path) -> None:
    """numba's cache files are pickles: a folder others can write to (or a link) is not
    used, and the kernel is compiled without it."""
    root = tmp_path / "cache"
    monkeypatch.setenv("TFCNN_CACHE_DIR", str(root))
    assert fused._anchor("x = 1\n", "tfcnn_fused_test") is not None
    folder = root / "kernels"
    assert (folder / "__pycache__").is_dir()
    for shared in (folder, folder / "__pycache__"):
        shared.chmod(0o777)
        assert fused._anchor("x = 1\n", "tfcnn_fused_test") is None, shared
        shared.chmod(0o700)
    assert fused._anchor("x = 1\n", "tfcnn_fused_test") is not None
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    monkeypatch.setenv("TFCNN_CACHE_DIR", str(tmp_path / "linked"))
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "kernels").symlink_to(elsewhere)
    assert fused._anchor("x = 1\n", "tfcnn_fused_test") is None


def test_engine_choice(monkeypatch) -> None:
    small = PairCNNNetwork(CNNConfig(n_samples=20))
    big = PairCNNNetwork(CNNConfig(n_samples=20, filters=(64, 64), units=64))
    assert resolve_engine("auto", small) == "numba"
    assert resolve_engine("torch", small) == "torch"
    assert resolve_engine("auto", big) == "torch"
    with pytest.raises(ValueError, match="up to 16 filters"):
        resolve_engine("numba", big)
    with pytest.raises(ValueError, match="engine must be one of"):
        resolve_engine("fast", small)
    with pytest.raises(ValueError, match="pair CNN only"):
        resolve_engine("numba", torch.nn.Linear(2, 2))
    monkeypatch.setattr(fused, "numba_installed", lambda: False)
    assert resolve_engine("auto", small) == "torch"
    monkeypatch.setitem(sys.modules, "numba", None)  # import now fails
    with pytest.raises(TfcnnInputError, match=r"tfcnn\[fast\]"):
        resolve_engine("numba", small)
