"""Fast inference for the pair CNN: score many (TF, target) pairs without a pair tensor.

:class:`PairScorer` is an inference-only restatement of a trained
:class:`~tfcnn.model.network.PairCNNNetwork` (eval mode) that gives the same probabilities (to
float rounding; the tests hold it to 1e-5 against the plain PyTorch layers) with far less
work, because it exploits four facts about the published layer stack:

1. **The first layer mixes the two rows only through kernel rows.** With Keras 'same'
   padding a 2-row kernel pads one zero row below, so conv 1's output row 0 is
   ``p_o * (d0 * TF + d1 * target) + b_o`` and row 1 is ``p_o * (d0 * target) + b_o``
   (``*`` a 1-D 'same' cross-correlation, ``d0``/``d1`` the depthwise kernel rows, ``p``
   the pointwise weights). So each gene's terms ``A = d0 * z`` and ``B = d1 * z`` are
   computed once per gene, and a pair only adds two precomputed rows.
2. **ReLU, batch norm and max-pool are monotone per channel.** Channel ``o`` of conv 1
   after ReLU and (optional) batch norm is ``g_o(s) = a_o * relu(p_o * s + b_o) + c_o``, a
   monotone function of the pre-activation series ``s``; so the 2x2 max-pool of ``g_o``
   equals ``g_o`` of the max (or min, when ``g_o`` decreases) of ``s`` over the window,
   and the window spans both rows. A pair's whole first block is therefore two scalar
   series of ``W/2`` values (window max, window min of ``s``), the target's row-1 part of
   which is computed once per target.
3. **Batch norms are affine next to linear layers.** Batch norm 1's scale is folded into
   conv 2's weights and its shift into a per-position conv 2 bias (the 'same' zero
   padding is not shifted, so the bias differs at the edges); batch norm 2 is folded into
   the dense layer. Dropout is the identity at inference.
4. **Pairs are the fast axis.** Every tensor is laid out features x pairs, so each
   element-wise step runs over long contiguous rows, and conv 2 is one batched matrix
   product over output positions whose inputs are overlapping row windows of the padded
   map (no im2col copy), followed by one matrix product for the dense layer.

Pairs are streamed in chunks of :data:`DEFAULT_CHUNK`, so the working memory is a few
MiB plus the per-gene terms (genes x samples x 2 floats), whatever the number of pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..model.network import PairCNNNetwork, same_padding

#: Pairs per chunk: small enough that a chunk's intermediates stay in the CPU caches.
DEFAULT_CHUNK = 512


def _bn_affine(bn: torch.nn.BatchNorm2d | None, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inference batch norm as ``a * x + c`` per channel (identity when absent)."""
    if bn is None:
        return torch.ones(channels), torch.zeros(channels)
    mean, var = bn.running_mean, bn.running_var
    if mean is None or var is None:  # track_running_stats=False: not a PairCNNNetwork layer
        raise ValueError("batch norm without running statistics cannot be folded")
    scale = bn.weight / torch.sqrt(var + bn.eps)
    return scale, bn.bias - mean * scale


@dataclass
class GeneTerms:
    """Per-gene first-layer terms, features x genes.

    ``a`` = d0 * z (the TF row, and the target's row 1), ``b`` = d1 * z; rows are the
    even samples of the pooled width, then the odd ones, so a window's two samples are
    ``Wp`` rows apart.
    """

    a: torch.Tensor  # (2 * Wp, G)
    b: torch.Tensor  # (2 * Wp, G)


class PairScorer:
    """Inference-only form of a :class:`PairCNNNetwork`; same probabilities, less work.

    Build it with :meth:`from_network`. :meth:`gene_terms` precomputes the per-gene terms
    of a z-scored matrix, :meth:`score_block` scores every pair of a TF block against a
    target set, :meth:`predict_pairs` scores arbitrary ``(N, 2, W)`` pairs.
    """

    def __init__(self, net: PairCNNNetwork, chunk: int = DEFAULT_CHUNK) -> None:
        cfg = net.config
        self.config = cfg
        self.chunk = max(1, int(chunk))
        f1, f2 = cfg.filters
        kw, wp = cfg.kernel_width, cfg.pooled_width
        with torch.no_grad():
            c1, c2 = net.conv1, net.conv2
            # conv 1 (one input channel, height 2): row kernels applied to each gene.
            dw1 = c1.depthwise.detach().float()[0]  # (kh, kw)
            top1, _ = same_padding(cfg.kernel_height)
            if top1 != 0:  # 'same' puts no padding row above a 1- or 2-row kernel
                raise ValueError(f"unsupported kernel height {cfg.kernel_height}")
            kernels = [dw1[0], dw1[1] if cfg.kernel_height == 2 else torch.zeros(kw)]
            self._row_kernels = torch.stack(kernels).unsqueeze(1).contiguous()  # (2, 1, kw)
            self._pad = same_padding(kw)
            # sample order of the gene terms: even samples of each window, then odd ones
            self._cols = torch.cat([torch.arange(0, 2 * wp, 2), torch.arange(1, 2 * wp, 2)])
            p1 = c1.pointwise.detach().float()[:, 0]  # (f1,)
            b1 = c1.bias.detach().float()
            a1, cc1 = _bn_affine(net.norm1, f1)
            # g_o increases with s: it pools the window max of s; else the window min.
            increasing = (p1 * a1) >= 0
            self._use_max = bool(increasing.any())
            self._use_min = bool((~increasing).any())
            self._p_max = torch.where(increasing, p1, 0.0).view(1, f1, 1)
            self._p_min = torch.where(increasing, 0.0, p1).view(1, f1, 1)
            self._b1 = b1.view(1, f1, 1).contiguous()
            # conv 2 on the height-1 pooled map: only depthwise kernel row `top` (= 0) acts;
            # weight as (f2, kw * f1) with column k * f1 + o, batch norm 1's scale folded in.
            dw2 = c2.depthwise.detach().float()[:, 0, :]  # (f1, kw)
            w2 = c2.pointwise.detach().float()[:, :, None] * dw2[None]  # (f2, f1, kw)
            scaled = w2 * a1[None, :, None]
            self._w2 = scaled.permute(0, 2, 1).reshape(f2, kw * f1).contiguous()
            # conv 2 bias per output position: b2, plus batch norm 1's shift through the taps
            # that read data (not padding).
            left, _ = self._pad
            bias2 = c2.bias.detach().float()[None, :].repeat(wp, 1)  # (wp, f2)
            if net.norm1 is not None:
                shift = torch.einsum("cok,o->kc", w2, cc1)  # (kw, f2)
                for k in range(kw):
                    lo, hi = max(0, left - k), min(wp, wp + left - k)
                    bias2[lo:hi] += shift[k]
            self._bias2 = bias2.unsqueeze(2).contiguous()  # (wp, f2, 1)
            # batch norm 2 folded into the dense layer (input order: width, channel).
            a2, cc2 = _bn_affine(net.norm2, f2)
            wd = net.dense.weight.detach().float()  # (units, wp * f2)
            self._wd = (wd * a2.repeat(wp)[None, :]).contiguous()
            self._bd = (net.dense.bias.detach().float() + wd @ cc2.repeat(wp))[:, None]
            self._wo = net.out.weight.detach().float().contiguous()  # (1, units)
            self._bo = net.out.bias.detach().float()[:, None]
        self._f1, self._f2, self._kw, self._wp = f1, f2, kw, wp
        self._left = left

    @classmethod
    def from_network(cls, net: PairCNNNetwork, chunk: int = DEFAULT_CHUNK) -> PairScorer:
        """Compile a (trained) network; its eval-mode statistics are used."""
        return cls(net, chunk)

    # -- per-gene terms ------------------------------------------------------------------
    def _terms(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(genes, W) -> both first-layer terms, (2 * Wp, genes) each."""
        terms = F.conv1d(F.pad(z.unsqueeze(1), self._pad), self._row_kernels)  # (G, 2, W)
        terms = terms.index_select(2, self._cols)
        return terms[:, 0].t().contiguous(), terms[:, 1].t().contiguous()

    def gene_terms(self, z: np.ndarray | torch.Tensor) -> GeneTerms:
        """First-layer terms of every row of a z-scored matrix (genes x samples)."""
        # np.require copies read-only arrays (e.g. memory-mapped files): torch needs writable
        zt = z if torch.is_tensor(z) else torch.from_numpy(np.require(z, np.float32, ["C", "W"]))
        zt = zt.float()
        if zt.ndim != 2 or zt.shape[1] != self.config.n_samples:
            raise ValueError(
                f"expected a (genes, {self.config.n_samples}) matrix, got {tuple(zt.shape)}"
            )
        with torch.no_grad():
            a, b = self._terms(zt)
        return GeneTerms(a=a, b=b)

    # -- the pair network, from pre-activation series ---------------------------------------
    def _window(self, s: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``s`` (2 * Wp, ...) series -> its window max and min, (Wp, ...) each (as needed)."""
        even, odd = s[: self._wp], s[self._wp :]
        high = torch.maximum(even, odd) if self._use_max else None
        low = torch.minimum(even, odd) if self._use_min else None
        return high, low

    def _conv_map(self, n: int) -> torch.Tensor:
        """A padded conv 2 input for up to ``n`` pairs, (Wp + kw - 1, f1, n), zeros.

        Each call gets its own (threads may share a scorer); the padding rows stay zero
        while the inner rows are rewritten for every chunk.
        """
        return torch.zeros(self._wp + self._kw - 1, self._f1, n)

    def _logits(
        self, high: torch.Tensor | None, low: torch.Tensor | None, conv_map: torch.Tensor
    ) -> torch.Tensor:
        """Pooled window max / min series of the pairs, (Wp, n) each -> logits (n,)."""
        wp, f1, f2, kw = self._wp, self._f1, self._f2, self._kw
        series = high if high is not None else low
        if series is None:
            raise ValueError("no pooled series: neither the window max nor min was computed")
        n = series.shape[1]
        full = conv_map[:, :, :n]
        inner = full[self._left : self._left + wp]  # (wp, f1, n)
        if high is not None:
            torch.addcmul(self._b1, high[:, None, :], self._p_max, out=inner)
            if low is not None:
                inner.addcmul_(low[:, None, :], self._p_min)
        else:
            torch.addcmul(self._b1, series[:, None, :], self._p_min, out=inner)
        inner.relu_()
        # conv 2: output position p reads rows p .. p + kw - 1 of the padded map, i.e.
        # kw * f1 consecutive rows of its (positions * f1, n) view: overlapping windows.
        ld = full.stride(1)
        windows = full.as_strided((wp, kw * f1, n), (f1 * ld, ld, 1))
        h = torch.baddbmm(self._bias2, self._w2.expand(wp, f2, kw * f1), windows).relu_()
        h = torch.addmm(self._bd, self._wd, h.view(wp * f2, n)).relu_()
        return torch.addmm(self._bo, self._wo, h)[0]

    # -- public scoring ----------------------------------------------------------------
    def score_block(
        self, terms: GeneTerms, tf_rows: np.ndarray, target_rows: np.ndarray
    ) -> np.ndarray:
        """Probabilities of every (TF, target) pair: array (len(tf_rows), len(target_rows)).

        Rows index ``terms`` (from :meth:`gene_terms`). Pairs are processed a target chunk
        at a time, each TF of the block against it, so memory stays small.
        """
        tf_idx = torch.as_tensor(np.ascontiguousarray(tf_rows, dtype=np.int64))
        tg_idx = torch.as_tensor(np.ascontiguousarray(target_rows, dtype=np.int64))
        out = np.empty((len(tf_idx), len(tg_idx)), dtype=np.float32)
        if out.size == 0:
            return out
        step = max(1, min(len(tg_idx), self.chunk))
        per = max(1, self.chunk // step)  # TFs per chunk when the target set is small
        conv_map = self._conv_map(per * step)
        with torch.no_grad():
            a_tf = terms.a.index_select(1, tf_idx)  # (2 * wp, n_tfs)
            for lo in range(0, len(tg_idx), step):
                idx = tg_idx[lo : lo + step]
                c = len(idx)
                b_tg = terms.b.index_select(1, idx)  # (2 * wp, c)
                tg_high, tg_low = self._window(terms.a.index_select(1, idx))  # row 1
                for t0 in range(0, len(tf_idx), per):
                    a = a_tf[:, t0 : t0 + per]  # (2 * wp, m)
                    m = a.shape[1]
                    high, low = self._window(a[:, :, None] + b_tg[:, None, :])  # (wp, m, c)
                    # _window gives both or neither of a pair's and its target's series
                    if high is not None and tg_high is not None:
                        high = torch.maximum(high, tg_high[:, None, :], out=high).view(-1, m * c)
                    if low is not None and tg_low is not None:
                        low = torch.minimum(low, tg_low[:, None, :], out=low).view(-1, m * c)
                    logits = self._logits(high, low, conv_map)
                    out[t0 : t0 + m, lo : lo + c] = torch.sigmoid(logits).view(m, c).numpy()
        return out

    def predict_pairs(self, X: np.ndarray | torch.Tensor) -> np.ndarray:
        """Probabilities for arbitrary pairs ``X`` (N, 2, W), streamed in chunks."""
        xt = X if torch.is_tensor(X) else torch.from_numpy(np.require(X, np.float32, ["C", "W"]))
        xt = xt.float()
        if xt.ndim != 3 or xt.shape[1] != 2 or xt.shape[2] != self.config.n_samples:
            raise ValueError(
                f"expected input of shape (N, 2, {self.config.n_samples}), got {tuple(xt.shape)}"
            )
        out = np.empty(xt.shape[0], dtype=np.float32)
        conv_map = self._conv_map(min(self.chunk, max(1, xt.shape[0])))
        with torch.no_grad():
            for lo, hi in _chunks(xt.shape[0], self.chunk):
                a_tf, _ = self._terms(xt[lo:hi, 0])
                a_tg, b_tg = self._terms(xt[lo:hi, 1])
                high, low = self._window(a_tf + b_tg)
                tg_high, tg_low = self._window(a_tg)
                if high is not None and tg_high is not None:
                    torch.maximum(high, tg_high, out=high)
                if low is not None and tg_low is not None:
                    torch.minimum(low, tg_low, out=low)
                out[lo:hi] = torch.sigmoid(self._logits(high, low, conv_map)).numpy()
        return out


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)
