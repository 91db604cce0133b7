"""Research prototype (issue 17), not part of tfcnn: the pair CNN's scan as one numba kernel.

The engine (:mod:`tfcnn.inference.engine`) runs conv 2 as a merged (8 x 25) matrix product
per position, because eager PyTorch has no fused kernel for its separable form (52
multiply-adds per position instead of 200). This script generates, for a network's sizes,
the source of one numba function that scores one TF against a contiguous range of target
genes: the first block (window extremes, ReLU, batch norm 1), conv 2 as depthwise then
pointwise, its ReLU and the dense layer's sums (batch norm 2 folded in), position tile by
position tile. Every per-pair value of the hot loop is a scalar, so LLVM keeps it in
registers and vectorises the loop over ``--block`` targets.

It checks the probabilities against the engine's and prints the single-thread time per
pair of both (same process, interleaved, median of 7). numba is not a tfcnn dependency::

    pip install numba
    python benchmarks/prototype_fused_kernel.py --width 232 --genes 3000

LLVM uses 256-bit vectors on recent Intel CPUs; ``NUMBA_CPU_FEATURES`` set to the host's
features (``llvmlite.binding.get_host_cpu_features().flatten()``) plus
``,-prefer-256-bit`` makes it use 512-bit ones.
What was measured, and what a product version would need: docs/engine.md ("A lead").
The network and the matrix are SYNTHETIC (random weights and z-scores, seeded).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from tfcnn.inference.engine import PairScorer, _bn_affine
from tfcnn.model.network import CNNConfig, PairCNNNetwork, same_padding


def folded_weights(net: PairCNNNetwork) -> dict[str, Any]:
    """The eval-mode network's weights as the kernel reads them; the dense layer (with
    batch norm 2 folded in) and the output layer as the engine folds them."""
    cfg = net.config
    f1, f2 = cfg.filters
    kw, wp = cfg.kernel_width, cfg.pooled_width
    engine = PairScorer.from_network(net)
    with torch.no_grad():
        dw1 = net.conv1.depthwise.detach().float()[0]
        d1 = dw1[1] if cfg.kernel_height == 2 else torch.zeros(kw)
        a1, c1 = _bn_affine(net.norm1, f1)
        weights = {
            "d0": dw1[0],
            "d1": d1,
            "p1": net.conv1.pointwise.detach().float()[:, 0],
            "b1": net.conv1.bias.detach().float(),
            "a1": a1,
            "c1": c1,
            "D2": net.conv2.depthwise.detach().float()[:, 0, :],  # (f1, kw): row 0 acts
            "P2": net.conv2.pointwise.detach().float(),
            "b2": net.conv2.bias.detach().float(),
            "Wd": engine._wd.view(cfg.units, wp, f2),  # input order: position, channel
            "bd": engine._bd[:, 0],
            "wo": engine._wo[0],
        }
        out = {k: np.ascontiguousarray(v.numpy(), dtype=np.float32) for k, v in weights.items()}
        out["bo"] = np.float32(engine._bo[0, 0])
    out["left"], out["wp"] = same_padding(kw)[0], wp
    return out


def gene_terms(z: np.ndarray, kernel: np.ndarray, left: int) -> np.ndarray:
    """(samples, genes): each row of ``z`` cross-correlated with ``kernel``, 'same' padding."""
    genes, width = z.shape
    padded = np.zeros((genes, width + len(kernel) - 1), np.float32)
    padded[:, left : left + width] = z
    out = np.zeros((width, genes), np.float32)
    for t, k in enumerate(kernel):
        out += (k * padded[:, t : t + width]).T
    return np.ascontiguousarray(out)


def kernel_source(f1: int, f2: int, units: int, kw: int, block: int, tile: int) -> str:
    """Source of ``score_tf(A, B, x, g0, n, ..., out)`` for these sizes."""
    lines: list[str] = []
    add = lines.append
    add("def score_tf(A, B, x, g0, n, p1, b1, a1, c1, D2, P2, b2, Wd, bd, wo, bo, left, wp, out):")
    add(f"    v = np.zeros(({f1}, {tile + kw - 1}, {block}), np.float32)")
    add(f"    u = np.empty(({units}, {block}), np.float32)")
    add("    zero = np.float32(0)")
    for c in range(f1):
        add(f"    p1_{c} = p1[{c}]; b1_{c} = b1[{c}]; a1_{c} = a1[{c}]; c1_{c} = c1[{c}]")
        for k in range(kw):
            add(f"    D_{c}_{k} = D2[{c}, {k}]")
    for o in range(f2):
        add(f"    b2_{o} = b2[{o}]")
        for c in range(f1):
            add(f"    P_{o}_{c} = P2[{o}, {c}]")
    add(f"    for j0 in range(0, n, {block}):")
    add(f"        m = min({block}, n - j0)")
    add("        base = g0 + j0")
    for q in range(units):
        add(f"        for j in range({block}):")
        add(f"            u[{q}, j] = bd[{q}]")
    add(f"        for t0 in range(0, wp, {tile}):")
    add(f"            t1 = min(wp, t0 + {tile})")
    add(f"            for r in range({tile + kw - 1}):")  # the tile's pooled map, halo included
    add("                pos = t0 + r - left")
    add("                if pos < 0 or pos >= wp:")
    add(f"                    for j in range({block}):")
    for c in range(f1):
        add(f"                        v[{c}, r, j] = zero")
    add("                    continue")
    add("                ax0 = A[2 * pos, x]; ax1 = A[2 * pos + 1, x]")
    add(
        "                Ae = A[2 * pos]; Ao = A[2 * pos + 1]; Be = B[2 * pos]; Bo = B[2 * pos + 1]"
    )
    add("                for j in range(m):")
    add("                    s0 = ax0 + Be[base + j]; s1 = ax1 + Bo[base + j]")
    add("                    r0 = Ae[base + j]; r1 = Ao[base + j]")
    add(
        "                    hi = max(max(s0, s1), max(r0, r1)); lo = min(min(s0, s1), min(r0, r1))"
    )
    for c in range(f1):  # a monotone function's window max: at the max or at the min of s
        f_hi = f"a1_{c} * max(p1_{c} * hi + b1_{c}, zero) + c1_{c}"
        f_lo = f"a1_{c} * max(p1_{c} * lo + b1_{c}, zero) + c1_{c}"
        add(f"                    v[{c}, r, j] = max({f_hi}, {f_lo})")
    add("            for p in range(t0, t1):")
    add("                pp = p - t0")
    for q in range(units):
        for o in range(f2):
            add(f"                W_{q}_{o} = Wd[{q}, p, {o}]")
    add(f"                for j in range({block}):")
    for c in range(f1):
        taps = " + ".join(f"D_{c}_{k} * v[{c}, pp + {k}, j]" for k in range(kw))
        add(f"                    y{c} = {taps}")
    for o in range(f2):
        mix = " + ".join(f"P_{o}_{c} * y{c}" for c in range(f1))
        add(f"                    h{o} = max(b2_{o} + {mix}, zero)")
    for q in range(units):
        dense = " + ".join(f"W_{q}_{o} * h{o}" for o in range(f2))
        add(f"                    u[{q}, j] += {dense}")
    add("        for j in range(m):")
    add("            acc = bo")
    for q in range(units):
        add(f"            acc += wo[{q}] * max(u[{q}, j], zero)")
    add("            out[j0 + j] = 1.0 / (1.0 + math.exp(-acc))")
    return "\n".join(lines)


#: The kernel's arguments after ``(A, B, x, g0, n)``, from :func:`folded_weights`.
WEIGHT_ARGS = ("p1", "b1", "a1", "c1", "D2", "P2", "b2", "Wd", "bd", "wo", "bo", "left", "wp")


def kernel_function(net: PairCNNNetwork, block: int, tile: int) -> Callable[..., None]:
    """The generated ``score_tf`` for this network's sizes, as plain Python."""
    cfg = net.config
    source = kernel_source(*cfg.filters, cfg.units, cfg.kernel_width, block, tile)
    namespace: dict[str, Any] = {"np": np, "math": math}
    exec(compile(source, "<fused kernel>", "exec"), namespace)  # our own generated source
    return namespace["score_tf"]


def compile_kernel(net: PairCNNNetwork, block: int, tile: int) -> Callable[..., None]:
    """:func:`kernel_function` compiled by numba (FMA contraction allowed)."""
    import numba

    jit = numba.njit(nogil=True, fastmath={"contract"}, error_model="numpy", boundscheck=False)
    return jit(kernel_function(net, block, tile))


def score_block(
    kernel: Callable[..., None],
    weights: dict[str, Any],
    terms: tuple[np.ndarray, np.ndarray],
    tfs: np.ndarray,
) -> np.ndarray:
    """Probabilities (len(tfs), genes) of TF rows ``tfs`` against every gene; ``terms``:
    the genes' two first-layer terms, ``gene_terms`` with ``weights["d0"]`` and ``["d1"]``."""
    a, b = terms
    genes = a.shape[1]
    out = np.empty((len(tfs), genes), np.float32)
    for i, x in enumerate(tfs):
        kernel(a, b, int(x), 0, genes, *(weights[k] for k in WEIGHT_ARGS), out[i])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=232, help="samples")
    parser.add_argument("--genes", type=int, default=3000, help="targets: every gene")
    parser.add_argument("--tfs", type=int, default=8)
    parser.add_argument("--block", type=int, default=256, help="targets per vector loop")
    parser.add_argument("--tile", type=int, default=32, help="output positions per tile")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((args.genes, args.width), dtype=np.float32)  # SYNTHETIC
    torch.manual_seed(0)
    net = PairCNNNetwork(CNNConfig(n_samples=args.width)).eval()
    w = folded_weights(net)
    kernel = compile_kernel(net, args.block, args.tile)
    tfs = np.arange(args.tfs)

    terms = gene_terms(z, w["d0"], w["left"]), gene_terms(z, w["d1"], w["left"])

    def fused() -> np.ndarray:
        return score_block(kernel, w, terms, tfs)

    start = time.perf_counter()
    p_fused = fused()
    compile_s = time.perf_counter() - start
    scorer = PairScorer.from_network(net)
    engine_terms = scorer.gene_terms(z)
    targets = np.arange(args.genes)
    p_engine = scorer.score_block(engine_terms, tfs, targets)
    times: dict[str, list[float]] = {"engine": [], "fused": []}
    for _ in range(7):
        for name, run in (
            ("engine", lambda: scorer.score_block(engine_terms, tfs, targets)),
            ("fused", fused),
        ):
            t0 = time.thread_time()
            run()
            times[name].append(time.thread_time() - t0)
    pairs = len(tfs) * args.genes
    ns = {k: statistics.median(v) / pairs * 1e9 for k, v in times.items()}
    print(
        f"width {args.width}, {pairs:,} pairs, block {args.block}, tile {args.tile}: engine "
        f"{ns['engine']:,.0f} ns/pair, fused kernel {ns['fused']:,.0f} ns/pair "
        f"({ns['engine'] / ns['fused']:.2f}x); max |difference| "
        f"{np.abs(p_fused - p_engine).max():.1e}; compiling and the first call {compile_s:.1f} s"
    )


if __name__ == "__main__":
    main()
