"""The fast inference engine equals the plain PyTorch layers (random weights and inputs).

References: ``PairCNNNetwork`` itself in eval mode, and the grouped-conv formulation of
tests/test_network.py (``_torch_grouped_reference``, plain ``F.conv2d`` with groups).
Every input here is synthetic random data.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from tests.test_network import _randomise, _torch_grouped_reference
from tfcnn.inference.engine import PairScorer
from tfcnn.model.network import CNNConfig, PairCNNNetwork
from tfcnn.runtime import map_in_order, torch_threads

TOL = 1e-5

CONFIGS = [
    CNNConfig(n_samples=232),
    CNNConfig(n_samples=131, filters=(5, 7), units=9, batch_norm=(True, True)),
    CNNConfig(n_samples=33, filters=(3, 5), units=4, batch_norm=(True, False), kernel_width=4),
    CNNConfig(n_samples=20, filters=(2, 3), units=3, batch_norm=(False, False), kernel_width=3),
    CNNConfig(n_samples=17, filters=(6, 4), units=5, batch_norm=(False, True), kernel_width=6),
    CNNConfig(n_samples=9, filters=(1, 1), units=1, kernel_width=1, kernel_height=1),
]
IDS = ["published", "w131-bn-both", "w33-bn1-k4", "w20-no-bn-k3", "w17-bn2-k6", "w9-k1x1"]


def _net(config: CNNConfig, seed: int, sign: int = 0) -> PairCNNNetwork:
    """Random weights; ``sign`` +1/-1 forces every conv 1 channel to increase/decrease."""
    net = PairCNNNetwork(config).eval()
    _randomise(net, seed)
    if sign:
        with torch.no_grad():
            net.conv1.pointwise.abs_().mul_(sign)
            if net.norm1 is not None:
                net.norm1.weight.abs_()
    return net


def _reference(net: PairCNNNetwork, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        own = torch.sigmoid(net(x)).numpy()
        grouped = torch.sigmoid(_torch_grouped_reference(net, x)).numpy()
    return own, grouped


def _block_pairs(z: np.ndarray, tfs: np.ndarray, targets: np.ndarray) -> torch.Tensor:
    """Every (TF, target) pair of a block as profiles (len(tfs) * len(targets), 2, W)."""
    return torch.from_numpy(
        np.stack([np.repeat(z[tfs], len(targets), 0), np.tile(z[targets], (len(tfs), 1))], 1)
    )


def _block_case(config: CNNConfig, sign: int) -> tuple[PairCNNNetwork, np.ndarray, np.ndarray]:
    """A random network, 11 synthetic genes and 4 TF rows for the score_block tests."""
    net = _net(config, seed=config.n_samples + sign, sign=sign)
    rng = np.random.default_rng(config.n_samples)
    z = rng.standard_normal((11, config.n_samples)).astype(np.float32) * 1.5
    return net, z, np.array([0, 4, 7, 10])


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("sign", [0, 1, -1], ids=["mixed", "increasing", "decreasing"])
def test_score_block_equals_reference_layers(config: CNNConfig, sign: int) -> None:
    net, z, tfs = _block_case(config, sign)
    targets = np.array([3, 0, 1, 2, 5, 6, 8, 9, 10])
    own, grouped = _reference(net, _block_pairs(z, tfs, targets))
    np.testing.assert_allclose(own, grouped, atol=TOL, rtol=0)  # the references agree
    for chunk in (5, 9, 4096):  # chunk boundaries inside a TF, one TF, many TFs per chunk
        scorer = PairScorer.from_network(net, chunk=chunk)
        got = scorer.score_block(scorer.gene_terms(z), tfs, targets)
        assert got.shape == (len(tfs), len(targets))
        np.testing.assert_allclose(got.ravel(), own, atol=TOL, rtol=0)
        np.testing.assert_allclose(got.ravel(), grouped, atol=TOL, rtol=0)


WIDE = [
    CNNConfig(n_samples=601),
    CNNConfig(n_samples=520, filters=(5, 3), units=4, batch_norm=(True, True), kernel_width=4),
]


@pytest.mark.parametrize(
    ("config", "tile"),
    [(c, 3) for c in CONFIGS] + [(c, 1) for c in CONFIGS[:2]] + [(c, 128) for c in WIDE],
    ids=[f"{i}-tile3" for i in IDS] + [f"{i}-tile1" for i in IDS[:2]] + ["w601", "w520-bn-k4"],
)
def test_position_tiles_equal_reference_layers(config: CNNConfig, tile: int) -> None:
    """Inputs cut into tiles of positions (with conv 2's halo) score as the whole width."""
    net = _net(config, seed=3 * config.n_samples)
    rng = np.random.default_rng(5)
    z = rng.standard_normal((7, config.n_samples)).astype(np.float32)
    tfs, targets = np.array([6, 0, 3]), np.array([1, 2, 3, 4, 5, 6])
    x = _block_pairs(z, tfs, targets)
    own, grouped = _reference(net, x)
    scorer = PairScorer(net, chunk=4, tile=tile)
    assert len(scorer._tiles) == -(-config.pooled_width // tile)
    got = scorer.score_block(scorer.gene_terms(z), tfs, targets).ravel()
    np.testing.assert_allclose(got, own, atol=TOL, rtol=0)
    np.testing.assert_allclose(got, grouped, atol=TOL, rtol=0)
    np.testing.assert_allclose(scorer.predict_pairs(x), own, atol=TOL, rtol=0)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_predict_pairs_equals_reference_layers(config: CNNConfig) -> None:
    net = _net(config, seed=7 * config.n_samples)
    x = torch.randn(23, 2, config.n_samples, generator=torch.Generator().manual_seed(3))
    own, grouped = _reference(net, x)
    got = PairScorer.from_network(net, chunk=8).predict_pairs(x.numpy())
    np.testing.assert_allclose(got, own, atol=TOL, rtol=0)
    np.testing.assert_allclose(got, grouped, atol=TOL, rtol=0)


@pytest.mark.parametrize("config", CONFIGS + WIDE[:1], ids=IDS + ["w601"])
def test_score_pairs_equals_reference_layers(config: CNNConfig) -> None:
    """Pairs given as gene rows (repeats and self pairs included) score as the network."""
    net = _net(config, seed=11 * config.n_samples)
    rng = np.random.default_rng(9)
    z = rng.standard_normal((9, config.n_samples)).astype(np.float32)
    tf_rows, tg_rows = rng.integers(0, 9, 31), rng.integers(0, 9, 31)
    tg_rows[:3] = tf_rows[:3]
    x = torch.from_numpy(np.stack([z[tf_rows], z[tg_rows]], 1))
    own, grouped = _reference(net, x)
    scorer = PairScorer.from_network(net, chunk=7)
    got = scorer.score_pairs(scorer.gene_terms(z), tf_rows, tg_rows)
    np.testing.assert_allclose(got, own, atol=TOL, rtol=0)
    np.testing.assert_allclose(got, grouped, atol=TOL, rtol=0)
    with pytest.raises(ValueError, match="equal length"):
        scorer.score_pairs(scorer.gene_terms(z), tf_rows, tg_rows[:-1])


def _trained_bn_net() -> tuple[PairCNNNetwork, torch.Tensor]:
    """A network (eval mode) whose batch-norm running statistics moved away from their
    initial values in three training-mode passes, and its synthetic pairs (64, 2, 40)."""
    config = CNNConfig(n_samples=40, batch_norm=(True, True))
    net = PairCNNNetwork(config).train()
    x = torch.randn(64, 2, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for _ in range(3):
            net(x * 2 + 1)
    return net.eval(), x


def test_trained_batch_norm_statistics_are_used() -> None:
    """After training steps the BN running statistics differ from the init; still equal."""
    net, x = _trained_bn_net()
    own, _ = _reference(net, x)
    np.testing.assert_allclose(PairScorer.from_network(net).predict_pairs(x), own, atol=TOL)


def test_empty_and_wrong_shapes() -> None:
    net = PairCNNNetwork(CNNConfig(n_samples=10)).eval()
    scorer = PairScorer.from_network(net)
    terms = scorer.gene_terms(np.zeros((3, 10), np.float32))
    assert scorer.score_block(terms, np.array([], int), np.array([0, 1])).shape == (0, 2)
    with pytest.raises(ValueError, match=r"\(genes, 10\)"):
        scorer.gene_terms(np.zeros((3, 11), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 2, 10\)"):
        scorer.predict_pairs(np.zeros((2, 2, 9), np.float32))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one torch thread avoids thread start-up and contention costs."""
    with torch_threads(1):
        yield


@pytest.mark.parametrize("workers", [1, 3])
def test_map_in_order_keeps_order_and_one_torch_thread(workers: int) -> None:
    def slow_for_small(i: int) -> tuple[int, int]:
        time.sleep(0.002 * (20 - i))  # early items finish last in a pool
        return i, torch.get_num_threads()

    with torch_threads(2):  # the caller's setting: each call must still get one thread
        got = list(map_in_order(slow_for_small, list(range(20)), workers))
    assert [i for i, _ in got] == list(range(20))
    assert {n for _, n in got} == {1}
