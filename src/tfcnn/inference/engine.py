"""Fast inference for the pair CNN: score many (TF, target) pairs without a pair tensor.

:class:`PairScorer` is an inference-only restatement of a trained
:class:`~tfcnn.model.network.PairCNNNetwork` (eval mode) that gives the same probabilities (to
float rounding; the tests hold it to 1e-5 against the plain PyTorch layers) with far less
work, because it exploits five facts about the published layer stack:

1. **The first layer mixes the two rows only through kernel rows.** With Keras 'same'
   padding a 2-row kernel pads one zero row below, so conv 1's output row 0 is
   ``p_o * (d0 * TF + d1 * target) + b_o`` and row 1 is ``p_o * (d0 * target) + b_o``
   (``*`` a 1-D 'same' cross-correlation, ``d0``/``d1`` the depthwise kernel rows, ``p``
   the pointwise weights). So each gene's terms ``A = d0 * z`` and ``B = d1 * z`` are
   computed once per gene, and a pair only adds two precomputed rows.
2. **ReLU, batch norm and max-pool are monotone per channel.** Channel ``o`` of conv 1
   after ReLU and (optional) batch norm is ``a_o * relu(p_o * s + b_o) + c_o``, a
   monotone function of the pre-activation series ``s``; so its 2x2 max-pool is that
   function of the window's max of ``s`` (or min, when the function decreases), and the
   window spans both rows. A pair's whole first block is two scalar series of ``W/2``
   values (window max, window min of ``s``); the target's row-1 part is computed once per
   target.
3. **A ReLU is a clip.** ``relu(p * s + b) = p * max(s, -b/p) + b`` for ``p > 0`` (``min``
   for ``p < 0``). The scale ``p`` (and batch norm 1's scale) goes into conv 2's weights
   and the constant into conv 2's bias, so each channel of the pooled map is one clip of
   one series: one element-wise pass. When the series is a window max and the clip a
   max (or both min), the target's row-1 part and the threshold combine once per target.
4. **Constants ride in the matrix products.** The pooled map carries a channel of ones
   (zero on the 'same' padding), so conv 2's bias, which differs at the edges, is part
   of its matrix product; batch norm 2 is folded into the dense layer. Dropout is the
   identity at inference.
5. **Pairs are the fast axis, positions come in tiles.** Every tensor is laid out
   features x pairs, so each element-wise step runs over long contiguous rows, and conv 2
   is one batched matrix product over output positions whose inputs are overlapping row
   windows of the padded map (no im2col copy). Wide inputs are cut into tiles of
   positions (with conv 2's halo), and the dense layer sums the tiles' products, so the
   working set of a chunk of pairs stays in the CPU caches at any width.

Pairs are streamed in chunks, so the working memory is a few MiB plus the per-gene terms
(about genes x samples x 2 floats), whatever the number of pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..model.network import PairCNNNetwork, same_padding
from .folding import GENE_BATCH, bn_affine, fold_dense, network_arrays, row_kernels

#: Working-set budget of one chunk of pairs (a tile's intermediates), in bytes: about a
#: core's L2 cache on current x86 CPUs. Each chunk also pays ~50 us of per-step overhead
#: (about a dozen torch calls), so chunks much smaller than this cost more than misses.
CACHE_BYTES = 2 << 20
#: Output positions per tile (wider inputs are cut into tiles of at most this many).
TILE_POSITIONS = 128
#: Pairs per chunk are chosen from the budget, within these bounds.
MIN_CHUNK, MAX_CHUNK = 32, 1024


def first_layer_terms(z: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """(genes, W) z-scores -> (genes, W, 2): each row 'same'-correlated with both kernels."""
    # A 1-to-2-channel convolution as one matrix product of the sliding windows with
    # the two row kernels: 3x less CPU than F.conv1d's kernel for this shape.
    kw = kernels.shape[0]
    windows = F.pad(z, same_padding(kw)).unfold(1, kw, 1)  # (G, W, kw)
    return torch.matmul(windows, kernels)


def zscore_matrix(z: np.ndarray | torch.Tensor, width: int) -> torch.Tensor:
    """A (genes, ``width``) float32 tensor of ``z``, or ValueError naming the shape."""
    # np.require copies read-only arrays (e.g. memory-mapped files): torch needs writable
    zt = z if torch.is_tensor(z) else torch.from_numpy(np.require(z, np.float32, ["C", "W"]))
    zt = zt.float()
    if zt.ndim != 2 or zt.shape[1] != width:
        raise ValueError(f"expected a (genes, {width}) matrix, got {tuple(zt.shape)}")
    return zt


@dataclass(frozen=True)
class _Tile:
    """Output positions ``p0:p1`` and the data positions ``h0:h1`` their conv 2 reads.

    The gene terms hold, for each tile, rows ``row : row + 2 * (h1 - h0)``: the even
    samples of positions ``h0:h1``, then the odd ones. Row ``i`` of the tile's padded map
    is position ``p0 - left + i``; data positions start at map row ``i0``.
    """

    p0: int
    p1: int
    h0: int
    h1: int
    row: int
    i0: int

    @property
    def width(self) -> int:
        return self.p1 - self.p0

    @property
    def data(self) -> int:
        return self.h1 - self.h0

    @property
    def rows(self) -> slice:
        """This tile's rows of the gene terms."""
        return slice(self.row, self.row + 2 * self.data)


@dataclass(frozen=True)
class _Group:
    """Channels of the pooled map that clip one series the same way.

    ``series`` is "max" (the window max of s) or "min"; ``clip`` is "max" (``max(x, t)``)
    or "min". ``first:last`` are their channels in the map, ``thresholds`` (g,) their ``t``.
    """

    series: str
    clip: str
    first: int
    last: int
    thresholds: torch.Tensor

    @property
    def folds(self) -> bool:
        """The target's row-1 part and the threshold combine into one per-target term."""
        return self.series == self.clip

    @property
    def clip_op(self) -> Callable[..., torch.Tensor]:
        return torch.maximum if self.clip == "max" else torch.minimum

    @property
    def series_op(self) -> Callable[..., torch.Tensor]:
        return torch.maximum if self.series == "max" else torch.minimum

    @property
    def thresholds4(self) -> torch.Tensor:
        """The thresholds as (1, g, 1, 1), to broadcast over (data, g, m, c)."""
        return self.thresholds.view(1, -1, 1, 1)


@dataclass
class GeneTerms:
    """Per-gene first-layer terms, features x genes.

    ``a`` = d0 * z (the TF row, and the target's row 1), ``b`` = d1 * z; rows are laid out
    tile by tile (the even samples of a tile's positions, then the odd ones), so a
    window's two samples are a fixed number of rows apart.
    """

    a: torch.Tensor  # (rows, G)
    b: torch.Tensor  # (rows, G)


class PairScorer:
    """Inference-only form of a :class:`PairCNNNetwork`; same probabilities, less work.

    Build it with :meth:`from_network`. :meth:`gene_terms` precomputes the per-gene terms
    of a z-scored matrix, :meth:`score_block` scores every pair of a TF block against a
    target set, :meth:`predict_pairs` scores arbitrary ``(N, 2, W)`` pairs. ``chunk`` sets
    the pairs per chunk (default: from :data:`CACHE_BYTES`); ``tile`` the positions per
    tile. Neither depends on the machine, so neither do the results.
    """

    def __init__(
        self, net: PairCNNNetwork, chunk: int | None = None, tile: int = TILE_POSITIONS
    ) -> None:
        cfg = net.config
        self.config = cfg
        f1, f2 = cfg.filters
        kw, wp = cfg.kernel_width, cfg.pooled_width
        left, _ = same_padding(kw)
        self._f2, self._kw, self._wp, self._left = f2, kw, wp, left
        self._units = cfg.units
        state = network_arrays(net)
        with torch.no_grad():
            c1, c2 = net.conv1, net.conv2
            # conv 1 (one input channel, height 2): row kernels applied to each gene.
            self._row_kernels = torch.from_numpy(row_kernels(cfg, state))  # (kw, 2)
            self._tiles = _plan_tiles(wp, kw, left, max(1, int(tile)))
            self._cols = torch.cat(
                [
                    torch.cat(
                        [
                            torch.arange(2 * t.h0, 2 * t.h1, 2),
                            torch.arange(2 * t.h0 + 1, 2 * t.h1, 2),
                        ]
                    )
                    for t in self._tiles
                ]
            )
            # Each channel after ReLU and batch norm 1: sigma * clip(series, t) + kappa.
            p1 = c1.pointwise.detach().float()[:, 0]
            b1 = c1.bias.detach().float()
            a1, cc1 = (torch.from_numpy(x) for x in bn_affine(state, "norm1", f1))
            sigma = a1 * p1
            kappa = torch.where(p1 != 0, a1 * b1, a1 * b1.relu()) + cc1
            thresholds = torch.where(p1 != 0, -b1 / torch.where(p1 != 0, p1, 1.0), 0.0)
            order: list[int] = []
            groups: list[_Group] = []
            # (series, clip): g increasing in s pools the window max, else the min; the
            # ReLU clips from below when p > 0, from above when p < 0.
            for series, clip in (("max", "max"), ("min", "min"), ("max", "min"), ("min", "max")):
                pick = ((sigma > 0) == (series == "max")) & ((p1 > 0) == (clip == "max"))
                members = [int(o) for o in torch.nonzero(pick & (sigma != 0))[:, 0]]
                if members:
                    groups.append(
                        _Group(
                            series, clip, len(order), len(order) + len(members), thresholds[members]
                        )
                    )
                    order.extend(members)
            self._groups = groups
            self._uses = {g.series for g in groups}
            k1 = len(order) + 1  # map channels: the clipped series, then ones
            self._k1 = k1
            # conv 2 on the height-1 pooled map: only depthwise kernel row 0 acts.
            dw2 = c2.depthwise.detach().float()[:, 0, :]  # (f1, kw)
            w2 = c2.pointwise.detach().float()[:, :, None] * dw2[None]  # (f2, f1, kw)
            weight = torch.zeros(f2, kw, k1)
            weight[:, :, : k1 - 1] = (w2[:, order] * sigma[order][None, :, None]).permute(0, 2, 1)
            ones = torch.einsum("cok,o->ck", w2, kappa)  # every channel's constant, per tap
            ones[:, left] += c2.bias.detach().float()  # tap `left` always reads data
            weight[:, :, k1 - 1] = ones
            self._w2 = weight.reshape(f2, kw * k1).contiguous()
            folded = fold_dense(cfg, state)
            self._wd, self._bd, self._wo, self._bo = (torch.from_numpy(x) for x in folded)
        widest = max(self._tiles, key=lambda t: t.width)
        per_pair = 4 * (3 * widest.data + (widest.width + kw - 1) * k1 + widest.width * f2)
        auto = min(MAX_CHUNK, max(MIN_CHUNK, CACHE_BYTES // per_pair))
        self.chunk = max(1, int(chunk)) if chunk is not None else auto

    @classmethod
    def from_network(cls, net: PairCNNNetwork, chunk: int | None = None) -> PairScorer:
        """Compile a (trained) network; its eval-mode statistics are used."""
        return cls(net, chunk)

    # -- per-gene terms ------------------------------------------------------------------
    def _terms(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(genes, W) -> both first-layer terms, (rows, genes) each."""
        # A 1-to-2-channel convolution as one matrix product of the sliding windows with
        # the two row kernels: 3x less CPU than F.conv1d's kernel for this shape.
        terms = first_layer_terms(z, self._row_kernels).index_select(1, self._cols)  # (G, rows, 2)
        return terms[:, :, 0].t().contiguous(), terms[:, :, 1].t().contiguous()

    def gene_terms(self, z: np.ndarray | torch.Tensor) -> GeneTerms:
        """First-layer terms of every row of a z-scored matrix (genes x samples)."""
        zt = zscore_matrix(z, self.config.n_samples)
        rows, genes = len(self._cols), zt.shape[0]
        a, b = torch.empty(rows, genes), torch.empty(rows, genes)
        with torch.no_grad():
            for lo in range(0, genes, GENE_BATCH):
                hi = min(genes, lo + GENE_BATCH)
                a[:, lo:hi], b[:, lo:hi] = self._terms(zt[lo:hi])
        return GeneTerms(a=a, b=b)

    # -- the pair network, tile by tile --------------------------------------------------
    def _target_side(self, tile: _Tile, a_tg: torch.Tensor) -> list[torch.Tensor]:
        """Per-target terms of a tile, one per channel group.

        ``a_tg`` (2 * data, c): the targets' ``A`` rows of the tile. The row-1 window max
        (or min) of each target, combined with the group's thresholds when they fold,
        (data, g, 1, c); else the row-1 series alone, (data, 1, c).
        """
        d = tile.data
        even, odd = a_tg[:d], a_tg[d:]
        row1 = {}
        if "max" in self._uses:
            row1["max"] = torch.maximum(even, odd)
        if "min" in self._uses:
            row1["min"] = torch.minimum(even, odd)
        side = []
        for g in self._groups:
            r = row1[g.series].unsqueeze(1)
            side.append(g.clip_op(r, g.thresholds[None, :, None]).unsqueeze(2) if g.folds else r)
        return side

    def _tile_logits(
        self,
        plan: _Plan,
        a: torch.Tensor,
        b: torch.Tensor,
        side: list[torch.Tensor],
        acc: torch.Tensor,
        first: bool,
    ) -> None:
        """Add one tile's dense-layer products for a plan's pairs to ``acc`` (units, n).

        ``a`` (2 * data, m, 1 or c) and ``b`` (2 * data, 1, c) are the pairs' TF and
        target terms of the tile (broadcast to every pair); ``side`` from
        :meth:`_target_side`. The plan's map padding must be set for its tile.
        """
        torch.add(a, b, out=plan.series)
        if plan.low is not None:
            torch.minimum(plan.even, plan.odd, out=plan.low)
        if plan.high is not None:
            torch.maximum(plan.even, plan.odd, out=plan.high)
        for g, dest, t in zip(self._groups, plan.dests, side, strict=True):
            x = plan.high4 if g.series == "max" else plan.low4
            if g.folds:
                g.clip_op(x, t, out=dest)
            else:  # the row-1 series first, then the clip
                g.clip_op(g.series_op(x, t.unsqueeze(1)), g.thresholds4, out=dest)
        # conv 2: output position p reads map rows p .. p + kw - 1, i.e. kw * k1
        # consecutive rows of the (rows * k1, n_max) map: overlapping windows, no copy.
        torch.bmm(plan.w2, plan.windows, out=plan.hidden).relu_()
        if first:
            torch.addmm(self._bd, plan.wd, plan.hidden2d, out=acc)
        else:
            acc.addmm_(plan.wd, plan.hidden2d)

    def _finish(self, acc: torch.Tensor, dest: torch.Tensor) -> None:
        """Dense-layer sums (units, n) -> probabilities, written to ``dest`` (n values)."""
        logits = torch.addmm(self._bo, self._wo, acc.relu_())
        torch.sigmoid(logits.view(dest.shape), out=dest)

    # -- public scoring ----------------------------------------------------------------
    def score_block(
        self, terms: GeneTerms, tf_rows: np.ndarray, target_rows: np.ndarray
    ) -> np.ndarray:
        """Probabilities of every (TF, target) pair: array (len(tf_rows), len(target_rows)).

        Rows index ``terms`` (from :meth:`gene_terms`). Pairs are processed a target chunk
        at a time, tile by tile, each TF of the block against it, so memory stays small.
        """
        tf_idx = torch.as_tensor(np.ascontiguousarray(tf_rows, dtype=np.int64))
        tg_idx = torch.as_tensor(np.ascontiguousarray(target_rows, dtype=np.int64))
        out = np.empty((len(tf_idx), len(tg_idx)), dtype=np.float32)
        if out.size == 0:
            return out
        out_t = torch.from_numpy(out)
        step = max(1, min(len(tg_idx), self.chunk))
        per = max(1, min(len(tf_idx), self.chunk // step))  # TFs per chunk, few targets
        subs = [(t0, min(len(tf_idx), t0 + per)) for t0 in range(0, len(tf_idx), per)]
        work = _Work(self, per * step)
        acc = torch.empty(len(subs), self._units * per * step)
        with torch.no_grad():
            a_tf = terms.a.index_select(1, tf_idx).unsqueeze(2)  # (rows, n_tfs, 1)
            a_parts = [[a_tf[t.rows, t0:t1] for t0, t1 in subs] for t in self._tiles]
            for lo in range(0, len(tg_idx), step):
                idx = tg_idx[lo : lo + step]
                c = len(idx)
                sums = [acc[j, : self._units * (t1 - t0) * c] for j, (t0, t1) in enumerate(subs)]
                sums = [x.view(self._units, -1) for x in sums]
                for k, tile in enumerate(self._tiles):
                    b = terms.b[tile.rows].index_select(1, idx).unsqueeze(1)  # (2 * data, 1, c)
                    side = self._target_side(tile, terms.a[tile.rows].index_select(1, idx))
                    work.pad_for(tile)
                    for j, (t0, t1) in enumerate(subs):
                        plan = work.plan(k, t1 - t0, c)
                        self._tile_logits(plan, a_parts[k][j], b, side, sums[j], first=k == 0)
                full = len(tf_idx) // per  # sub-blocks of `per` TFs: finished in one go
                if full:
                    dense = acc[:full, : self._units * per * c].view(full, self._units, per * c)
                    logits = torch.baddbmm(self._bo, self._wo.expand(full, -1, -1), dense.relu_())
                    torch.sigmoid(logits.view(full * per, c), out=out_t[: full * per, lo : lo + c])
                for j, (t0, t1) in enumerate(subs[full:], start=full):
                    self._finish(sums[j], out_t[t0:t1, lo : lo + c])
        return out

    def score_pairs(
        self, terms: GeneTerms, tf_rows: np.ndarray, target_rows: np.ndarray
    ) -> np.ndarray:
        """Probabilities of the pairs ``(tf_rows[i], target_rows[i])`` of ``terms``' genes.

        Like :meth:`predict_pairs`, without gathering the pairs' profiles: each chunk
        takes its TF and target terms from ``terms`` (from :meth:`gene_terms`).
        """
        tf_idx = torch.as_tensor(np.ascontiguousarray(tf_rows, dtype=np.int64))
        tg_idx = torch.as_tensor(np.ascontiguousarray(target_rows, dtype=np.int64))
        if tf_idx.shape != tg_idx.shape or tf_idx.ndim != 1:
            raise ValueError("`tf_rows` and `target_rows` must be 1-D and of equal length")
        return self._pair_chunks(
            len(tf_idx),
            lambda lo, hi: (
                terms.a.index_select(1, tf_idx[lo:hi]),
                terms.a.index_select(1, tg_idx[lo:hi]),
                terms.b.index_select(1, tg_idx[lo:hi]),
            ),
        )

    def predict_pairs(self, X: np.ndarray | torch.Tensor) -> np.ndarray:
        """Probabilities for arbitrary pairs ``X`` (N, 2, W), streamed in chunks."""
        xt = X if torch.is_tensor(X) else torch.from_numpy(np.require(X, np.float32, ["C", "W"]))
        xt = xt.float()
        if xt.ndim != 3 or xt.shape[1] != 2 or xt.shape[2] != self.config.n_samples:
            raise ValueError(
                f"expected input of shape (N, 2, {self.config.n_samples}), got {tuple(xt.shape)}"
            )

        def chunk_terms(lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            a_tf, _ = self._terms(xt[lo:hi, 0])
            a_tg, b_tg = self._terms(xt[lo:hi, 1])
            return a_tf, a_tg, b_tg

        return self._pair_chunks(xt.shape[0], chunk_terms)

    def _pair_chunks(
        self,
        count: int,
        chunk_terms: Callable[[int, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    ) -> np.ndarray:
        """Score ``count`` pairs a chunk at a time; ``chunk_terms(lo, hi)`` gives the
        chunk's TF ``A``, target ``A`` and target ``B`` terms, (rows, hi - lo) each."""
        out = np.empty(count, dtype=np.float32)
        out_t = torch.from_numpy(out)
        work = _Work(self, min(self.chunk, max(1, count)))
        with torch.no_grad():
            for lo in range(0, count, self.chunk):
                hi = min(count, lo + self.chunk)
                n = hi - lo
                a_tf, a_tg, b_tg = chunk_terms(lo, hi)
                acc = torch.empty(self._units, n)
                for k, tile in enumerate(self._tiles):
                    side = self._target_side(tile, a_tg[tile.rows])
                    work.pad_for(tile)
                    a, b = a_tf[tile.rows].unsqueeze(1), b_tg[tile.rows].unsqueeze(1)
                    self._tile_logits(work.plan(k, 1, n), a, b, side, acc, first=k == 0)
                self._finish(acc, out_t[lo:hi])
        return out


@dataclass
class _Plan:
    """Views of a :class:`_Work`'s buffers for one tile and chunk shape (m TFs x c targets)."""

    series: torch.Tensor  # (2 * data, m, c): the pairs' row-0 series, even then odd samples
    even: torch.Tensor
    odd: torch.Tensor
    high: torch.Tensor | None  # (data, m, c): window max (written over ``even``)
    low: torch.Tensor | None  # window min
    high4: torch.Tensor | None  # the same, (data, 1, m, c)
    low4: torch.Tensor | None
    dests: list[torch.Tensor]  # per group: its channels' data rows, (data, g, m, c)
    w2: torch.Tensor  # conv 2 weight, expanded over the tile's positions
    windows: torch.Tensor  # (width, kw * k1, n): overlapping rows of the padded map
    hidden: torch.Tensor  # (width, f2, n)
    hidden2d: torch.Tensor  # (width * f2, n)
    wd: torch.Tensor  # the dense weight's columns of the tile's positions


class _Work:
    """Buffers for chunks of up to ``n`` pairs (one per call: threads may share a scorer)."""

    def __init__(self, scorer: PairScorer, n: int) -> None:
        self._scorer = scorer
        tiles = scorer._tiles
        data = max(t.data for t in tiles)
        width = max(t.width for t in tiles)
        self._series = torch.empty(2 * data * n)
        self._low = torch.empty(data * n)
        self._hidden = torch.empty(width * scorer._f2 * n)
        self.map = torch.zeros(width + scorer._kw - 1, scorer._k1, n)
        self._tile: _Tile | None = None
        self._plans: dict[tuple[int, int, int], _Plan] = {}

    def pad_for(self, tile: _Tile) -> None:
        """Zero the map rows outside ``tile``'s data (the 'same' padding), ones on its data."""
        if self._tile == tile:
            return
        self._tile = tile
        self.map[: tile.i0].zero_()
        self.map[tile.i0 + tile.data :].zero_()
        self.map[tile.i0 : tile.i0 + tile.data, -1] = 1.0

    def plan(self, k: int, m: int, c: int) -> _Plan:
        """The views for tile ``k`` and ``m`` x ``c`` pairs (made once, then reused)."""
        key = (k, m, c)
        hit = self._plans.get(key)
        if hit is not None:
            return hit
        sc = self._scorer
        tile, n, f2 = sc._tiles[k], m * c, sc._f2
        d, width = tile.data, tile.width
        series = self._series[: 2 * d * n].view(2 * d, m, c)
        even, odd = series[:d], series[d:]
        low = self._low[: d * n].view(d, m, c) if "min" in sc._uses else None
        high = even if "max" in sc._uses else None
        pooled = self.map[tile.i0 : tile.i0 + d]
        dests = [
            pooled[:, g.first : g.last, :n].view(d, g.last - g.first, m, c) for g in sc._groups
        ]
        ld, k1 = self.map.stride(1), sc._k1
        hidden = self._hidden[: width * f2 * n].view(width, f2, n)
        plan = _Plan(
            series=series,
            even=even,
            odd=odd,
            high=high,
            low=low,
            high4=None if high is None else high.unsqueeze(1),
            low4=None if low is None else low.unsqueeze(1),
            dests=dests,
            w2=sc._w2.expand(width, -1, -1),
            windows=self.map.as_strided((width, sc._kw * k1, n), (k1 * ld, ld, 1)),
            hidden=hidden,
            hidden2d=hidden.view(width * f2, n),
            wd=sc._wd[:, tile.p0 * f2 : tile.p1 * f2],
        )
        self._plans[key] = plan
        return plan


def _plan_tiles(wp: int, kw: int, left: int, tile: int) -> list[_Tile]:
    """Balanced tiles of at most ``tile`` output positions, and the rows they read."""
    count = math.ceil(wp / tile)
    size = math.ceil(wp / count)
    tiles, row = [], 0
    for p0 in range(0, wp, size):
        p1 = min(wp, p0 + size)
        h0, h1 = max(0, p0 - left), min(wp, p1 + kw - 1 - left)
        tiles.append(_Tile(p0, p1, h0, h1, row, h0 - (p0 - left)))
        row += 2 * (h1 - h0)
    return tiles
