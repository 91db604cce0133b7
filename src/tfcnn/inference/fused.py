"""The pair CNN's scan as one compiled kernel (the ``fast`` extra: numba).

:class:`~tfcnn.inference.engine.PairScorer` runs each layer as a PyTorch operation over a
chunk of pairs; conv 2 becomes a merged (f2 x kw*(f1+1)) matrix product because eager
PyTorch has no fused kernel for a separable convolution. :class:`FusedPairScorer` instead
generates, for a network's sizes, the source of one function that scores one TF against a
range of targets and compiles it with numba. Per block of :data:`BLOCK` targets and per
tile of :data:`TILE` output positions it builds the pooled map (window extremes, ReLU,
batch norm 1: fact 2 of the engine), then runs conv 2 in its separable form (depthwise,
then pointwise: 52 multiply-adds per position for the published model instead of 200),
its ReLU and the dense layer's sums, position by position. Every per-pair value of that
loop is a scalar, so LLVM keeps it in registers and vectorises over the targets.

The probabilities are the engine's to float rounding (the tests hold both to 1e-5 against
the plain PyTorch layers). They are not bit-identical to the engine's, so a scan records
which engine produced it and never resumes across engines.

Compiling takes a few seconds per network shape (filters, units, kernel width). numba
caches the compiled code on disk, keyed by the generated source, the numba version and
the CPU: in ``$TFCNN_CACHE_DIR/kernels``, else in the user's cache folder
(``platformdirs.user_cache_dir("tfcnn")``, e.g. ``~/.cache/tfcnn``, then ``kernels``).
The source is generated here from integers only; the file written to that folder is an
anchor for numba's cache and is never imported. numba's cache files are pickles, loaded
as code, so the cache is used only when the folder and its ``__pycache__`` are the
user's own and nobody else can write to them (else the kernel is compiled each run).
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import stat
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from ..errors import TfcnnInputError
from ..extras import require
from ..model.config import CNNConfig, same_padding
from .folding import (
    GENE_BATCH,
    bn_affine,
    first_layer_terms,
    fold_dense,
    network_arrays,
    row_kernels,
    zscore_rows,
)

#: Targets per vector loop: the kernel's scratch for one tile is f1 x (TILE + kw - 1) x
#: BLOCK floats (147 KiB for the published model), within a core's L2 cache.
BLOCK = 256
#: Output positions per tile.
TILE = 32
#: The kernel is unrolled over channels, units and taps; beyond these sizes the generated
#: source (and its compile time) grows past what the gain is worth, and the engine is used.
MAX_FILTERS, MAX_UNITS, MAX_KERNEL = 16, 32, 9
#: Engines a scan can use: ``auto`` picks ``numba`` when it is installed and the network
#: fits (:func:`fused_supported`), else ``torch`` (:class:`~tfcnn.inference.engine.PairScorer`).
ENGINES = ("auto", "torch", "numba")


def numba_installed() -> bool:
    """Whether the ``fast`` extra (numba) imports (a broken install counts as absent)."""
    try:
        importlib.import_module("numba")
    except ImportError:
        return False
    return True


def fused_supported(net: Any) -> str | None:
    """None when :class:`FusedPairScorer` can score ``net`` (a pair CNN's network, a
    :class:`~tfcnn.model.stored.StoredCNN` or their :class:`CNNConfig`); else the reason
    it cannot."""
    cfg = net if isinstance(net, CNNConfig) else getattr(net, "config", None)
    if not isinstance(cfg, CNNConfig):
        return f"the fused kernel scores the pair CNN only, not a {type(net).__name__}"
    f1, f2 = cfg.filters
    if max(f1, f2) > MAX_FILTERS or cfg.units > MAX_UNITS or cfg.kernel_width > MAX_KERNEL:
        return (
            f"the fused kernel is built for up to {MAX_FILTERS} filters, {MAX_UNITS} units "
            f"and kernel width {MAX_KERNEL} (this model: filters {f1}/{f2}, units "
            f"{cfg.units}, kernel width {cfg.kernel_width})"
        )
    return None


def resolve_engine(engine: str, net: Any) -> str:
    """``torch`` or ``numba`` for a requested engine (``auto``, ``torch`` or ``numba``);
    :class:`~tfcnn.errors.TfcnnInputError` for an unknown one, or ``numba`` where it cannot
    run."""
    if engine not in ENGINES:
        raise TfcnnInputError(f"engine must be one of {', '.join(ENGINES)} (got {engine!r}).")
    if engine == "torch":
        return "torch"
    reason = fused_supported(net)
    if engine == "numba":
        if reason is not None:
            raise TfcnnInputError(f"engine 'numba': {reason}; use 'torch' or 'auto'.")
        require("numba", "fast", "engine 'numba'")
        return "numba"
    return "numba" if reason is None and numba_installed() else "torch"


def grid_scorer(engine: str, net: Any) -> Any:
    """The scorer of an engine that :func:`resolve_engine` chose: the fused kernel, or the
    network's own fast scorer (the PyTorch engine, or the two-tower model's)."""
    if engine == "numba":
        return FusedPairScorer(net)
    from ..model.two_tower import scorer_for

    return scorer_for(net)


def kernel_source(f1: int, f2: int, units: int, kw: int, block: int, tile: int) -> str:
    """Source of ``score_tfs(T, A, B, g0, n, p1, b1, a1, c1, D2, P2, b2, Wd, bd, wo, bo,
    left, wp, out)`` for these sizes: the probabilities (k, n) of the TFs whose first-layer
    terms are the columns of ``T`` (W, k) against targets ``g0 .. g0 + n - 1`` of ``A``
    and ``B`` (W, genes).

    Targets come in blocks of ``block``, positions in tiles of ``tile``; within a tile the
    targets' data (and their row-1 window extremes) are read once for all the TFs.
    """
    halo = tile + kw - 1
    lines: list[str] = ["import math", "import numpy as np", "", ""]
    add = lines.append
    add("def score_tfs(T, A, B, g0, n, p1, b1, a1, c1, D2, P2, b2, Wd, bd, wo, bo, left, wp, out):")
    add("    k = T.shape[1]")
    add(f"    v = np.zeros(({f1}, {halo}, {block}), np.float32)")
    add(f"    rhi = np.zeros(({halo}, {block}), np.float32)")
    add(f"    rlo = np.zeros(({halo}, {block}), np.float32)")
    add(f"    u = np.empty((k, {units}, {block}), np.float32)")
    add("    zero = np.float32(0)")
    for c in range(f1):
        add(f"    p1_{c} = p1[{c}]; b1_{c} = b1[{c}]; a1_{c} = a1[{c}]; c1_{c} = c1[{c}]")
        for t in range(kw):
            add(f"    D_{c}_{t} = D2[{c}, {t}]")
    for o in range(f2):
        add(f"    b2_{o} = b2[{o}]")
        for c in range(f1):
            add(f"    P_{o}_{c} = P2[{o}, {c}]")
    add(f"    for j0 in range(0, n, {block}):")
    add(f"        m = min({block}, n - j0)")
    add("        base = g0 + j0")
    add("        for i in range(k):")
    for q in range(units):
        add(f"            for j in range({block}):")
        add(f"                u[i, {q}, j] = bd[{q}]")
    add(f"        for t0 in range(0, wp, {tile}):")
    add(f"            t1 = min(wp, t0 + {tile})")
    add(f"            rows = t1 - t0 + {kw - 1}")
    # the targets' row-1 window extremes, once for all TFs
    add("            for r in range(rows):")
    add("                pos = t0 + r - left")
    add("                if pos >= 0 and pos < wp:")
    add("                    Ae = A[2 * pos]; Ao = A[2 * pos + 1]")
    add("                    for j in range(m):")
    add("                        rhi[r, j] = max(Ae[base + j], Ao[base + j])")
    add("                        rlo[r, j] = min(Ae[base + j], Ao[base + j])")
    add("            for i in range(k):")
    # the TF's pooled map for the tile, conv 2's halo included; zero on the padding
    add("                for r in range(rows):")
    add("                    pos = t0 + r - left")
    add("                    if pos < 0 or pos >= wp:")
    add(f"                        for j in range({block}):")
    for c in range(f1):
        add(f"                            v[{c}, r, j] = zero")
    add("                        continue")
    add("                    x0 = T[2 * pos, i]; x1 = T[2 * pos + 1, i]")
    add("                    Be = B[2 * pos]; Bo = B[2 * pos + 1]")
    add("                    for j in range(m):")
    add("                        s0 = x0 + Be[base + j]; s1 = x1 + Bo[base + j]")
    add("                        hi = max(max(s0, s1), rhi[r, j])")
    add("                        lo = min(min(s0, s1), rlo[r, j])")
    for c in range(f1):  # a monotone function's window max: at the max or the min of s
        f_hi = f"a1_{c} * max(p1_{c} * hi + b1_{c}, zero) + c1_{c}"
        f_lo = f"a1_{c} * max(p1_{c} * lo + b1_{c}, zero) + c1_{c}"
        add(f"                        v[{c}, r, j] = max({f_hi}, {f_lo})")
    add("                for p in range(t0, t1):")
    add("                    pp = p - t0")
    for q in range(units):
        for o in range(f2):
            add(f"                    W_{q}_{o} = Wd[{q}, p, {o}]")
    add(f"                    for j in range({block}):")
    for c in range(f1):
        taps = " + ".join(f"D_{c}_{t} * v[{c}, pp + {t}, j]" for t in range(kw))
        add(f"                        y{c} = {taps}")
    for o in range(f2):
        mix = " + ".join(f"P_{o}_{c} * y{c}" for c in range(f1))
        add(f"                        h{o} = max(b2_{o} + {mix}, zero)")
    for q in range(units):
        dense = " + ".join(f"W_{q}_{o} * h{o}" for o in range(f2))
        add(f"                        u[i, {q}, j] += {dense}")
    add("        for i in range(k):")
    add("            for j in range(m):")
    add("                acc = bo")
    for q in range(units):
        add(f"                acc += wo[{q}] * max(u[i, {q}, j], zero)")
    add("                out[i, j0 + j] = 1.0 / (1.0 + math.exp(-acc))")
    return "\n".join(lines) + "\n"


def cache_dir() -> Path:
    """Where compiled kernels are cached (see the module docstring)."""
    root = os.environ.get("TFCNN_CACHE_DIR") or platformdirs.user_cache_dir(
        "tfcnn", appauthor=False
    )
    return Path(root) / "kernels"


def _private(folder: Path) -> bool:
    """Whether ``folder`` is a real folder (not a link) of this user that no one else can
    write to: what numba reads its pickled cache from must be."""
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return False
    return not hasattr(os, "getuid") or info.st_uid == os.getuid()


def _anchor(source: str, name: str) -> str | None:
    """Write ``source`` to the cache folder (once) and return its path, or None when the
    folder cannot be used: not writable, another user's, or writable by others."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        (folder / "__pycache__").mkdir(exist_ok=True, mode=0o700)  # where numba writes
        if not (_private(folder) and _private(folder / "__pycache__")):
            return None
        path = folder / f"{name}.py"
        data = source.encode()
        if not path.is_file() or path.read_bytes() != data:
            tmp = folder / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return str(path)
    except OSError:
        return None


_KERNELS: dict[str, Callable[..., None]] = {}
_LOCK = threading.Lock()


def compiled_kernel(f1: int, f2: int, units: int, kw: int) -> Callable[..., None]:
    """The compiled ``score_tfs`` for these sizes (once per process; cached on disk)."""
    import numba

    source = kernel_source(f1, f2, units, kw, BLOCK, TILE)
    digest = hashlib.sha256(f"{numba.__version__}\n{source}".encode()).hexdigest()[:20]
    name = f"tfcnn_fused_{digest}"
    with _LOCK:
        hit = _KERNELS.get(name)
        if hit is not None:
            return hit
        path = _anchor(source, name)
        module = types.ModuleType(name)
        module.__file__ = path or f"<tfcnn fused kernel {digest}>"
        # Our own generated source (sizes only): compiled from memory, not read back.
        exec(compile(source, module.__file__, "exec"), module.__dict__)
        sys.modules[name] = module  # numba's cache finds the function's module by name
        jit = numba.njit(
            cache=path is not None,
            nogil=True,
            fastmath={"contract"},
            error_model="numpy",
            boundscheck=False,
        )
        kernel = jit(module.score_tfs)
        _KERNELS[name] = kernel
        return kernel


@dataclass(frozen=True)
class KernelTerms:
    """Per-gene first-layer terms in sample order, (W, genes) each: ``a = d0 * z``,
    ``b = d1 * z`` (see :mod:`tfcnn.inference.engine`)."""

    a: np.ndarray
    b: np.ndarray


class FusedPairScorer:
    """:class:`~tfcnn.inference.engine.PairScorer`'s ``gene_terms`` and ``score_block``,
    computed by one compiled kernel per network shape (see the module docstring)."""

    def __init__(self, net: Any) -> None:
        reason = fused_supported(net)
        if reason is not None:
            raise ValueError(reason)
        cfg: CNNConfig = net.config
        self.config = cfg
        f1, f2 = cfg.filters
        state = network_arrays(net)
        self._row_kernels = row_kernels(cfg, state)
        a1, cc1 = bn_affine(state, "norm1", f1)
        wd, bd, wo, bo = fold_dense(cfg, state)
        weights = {
            "p1": state["conv1.pointwise"][:, 0],
            "b1": state["conv1.bias"],
            "a1": a1,
            "c1": cc1,
            # conv 2 sees a height-1 map: only depthwise kernel row 0 acts
            "D2": state["conv2.depthwise"][:, 0, :],
            "P2": state["conv2.pointwise"],
            "b2": state["conv2.bias"],
            "Wd": wd.reshape(cfg.units, cfg.pooled_width, f2),
            "bd": bd[:, 0],
            "wo": wo[0],
        }
        arrays = [np.ascontiguousarray(w, np.float32) for w in weights.values()]
        if not all(np.isfinite(w).all() for w in arrays) or not math.isfinite(float(bo[0, 0])):
            raise ValueError("the network has non-finite weights")
        left, _ = same_padding(cfg.kernel_width)
        self._args = (*arrays, np.float32(bo[0, 0]), left, cfg.pooled_width)
        self._kernel = compiled_kernel(f1, f2, cfg.units, cfg.kernel_width)
        # compile (or load from the cache) now, not in the first scoring thread
        tiny = self.gene_terms(np.zeros((1, cfg.n_samples), np.float32))
        self.score_block(tiny, np.zeros(1, np.int64), np.zeros(1, np.int64))

    @classmethod
    def from_network(cls, net: Any) -> FusedPairScorer:
        """Compile a (trained) network or a stored pair CNN; eval-mode statistics are used."""
        return cls(net)

    def gene_terms(self, z: np.ndarray) -> KernelTerms:
        """First-layer terms of every row of a z-scored matrix (genes x samples)."""
        width = self.config.n_samples
        zt = zscore_rows(z, width)
        genes = zt.shape[0]
        a = np.empty((width, genes), np.float32)
        b = np.empty((width, genes), np.float32)
        for lo in range(0, genes, GENE_BATCH):
            hi = min(genes, lo + GENE_BATCH)
            terms = first_layer_terms(zt[lo:hi], self._row_kernels)  # (g, W, 2)
            a[:, lo:hi] = terms[:, :, 0].T
            b[:, lo:hi] = terms[:, :, 1].T
        return KernelTerms(a=a, b=b)

    def score_block(
        self, terms: KernelTerms, tf_rows: np.ndarray, target_rows: np.ndarray
    ) -> np.ndarray:
        """Probabilities of every (TF, target) pair: array (len(tf_rows), len(target_rows)).

        Rows index ``terms`` (from :meth:`gene_terms`). Targets that are not a contiguous
        run of rows are gathered once per call.
        """
        tf_rows = np.asarray(tf_rows, dtype=np.int64)
        target_rows = np.asarray(target_rows, dtype=np.int64)
        out = np.empty((len(tf_rows), len(target_rows)), np.float32)
        if out.size == 0:
            return out
        genes = terms.a.shape[1]
        for rows in (tf_rows, target_rows):
            if rows.min() < 0 or rows.max() >= genes:
                raise IndexError(f"row indices must be in 0..{genes - 1}")
        n = len(target_rows)
        g0 = int(target_rows[0])
        if np.array_equal(target_rows, np.arange(g0, g0 + n)):
            a, b = terms.a, terms.b
        else:
            g0 = 0
            a = np.ascontiguousarray(terms.a[:, target_rows])
            b = np.ascontiguousarray(terms.b[:, target_rows])
        tfs = np.ascontiguousarray(terms.a[:, tf_rows])
        self._kernel(tfs, a, b, g0, n, *self._args, out)
        return out
