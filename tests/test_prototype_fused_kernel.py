"""The fused-kernel prototype (benchmarks/prototype_fused_kernel.py) computes what the engine
computes: its generated source, run as plain Python (no numba here), on SYNTHETIC networks."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tfcnn.inference.engine import PairScorer
from tfcnn.model.network import CNNConfig, PairCNNNetwork

ROOT = Path(__file__).resolve().parents[1]


def _prototype() -> Any:
    spec = importlib.util.spec_from_file_location(
        "prototype_fused_kernel", ROOT / "benchmarks" / "prototype_fused_kernel.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("width", "kernel_height", "batch_norm", "block", "tile"),
    [(33, 2, (False, True), 8, 4), (20, 1, (True, True), 5, 3), (17, 2, (True, False), 16, 64)],
)
def test_generated_kernel_scores_as_the_engine(
    width: int, kernel_height: int, batch_norm: tuple[bool, bool], block: int, tile: int
) -> None:
    proto = _prototype()
    torch.manual_seed(1)
    net = PairCNNNetwork(
        CNNConfig(n_samples=width, kernel_height=kernel_height, batch_norm=batch_norm)
    ).eval()
    with torch.no_grad():  # running statistics away from the identity, scales of both signs
        for bn in (net.norm1, net.norm2):
            if bn is not None:
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(-1.5, 1.5)
                bn.bias.uniform_(-0.5, 0.5)
    genes = 23  # not a multiple of the block: the last block is partial
    z = np.random.default_rng(2).standard_normal((genes, width), dtype=np.float32)
    kernel = proto.kernel_function(net, block, tile)  # plain Python: numba is not installed
    tfs = np.array([0, 7, 22])
    w = proto.folded_weights(net)
    terms = proto.gene_terms(z, w["d0"], w["left"]), proto.gene_terms(z, w["d1"], w["left"])
    got = proto.score_block(kernel, w, terms, tfs)
    scorer = PairScorer.from_network(net)
    expected = scorer.score_block(scorer.gene_terms(z), tfs, np.arange(genes))
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert np.ptp(expected) > 1e-3  # the probabilities differ, so agreeing is not trivial
