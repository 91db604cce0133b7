"""Fast inference for the pair CNN: score many (TF, target) pairs without a pair tensor.

:class:`PairScorer` is an inference-only restatement of a trained
:class:`~tfcnn.network.PairCNNNetwork` (eval mode) that gives the same probabilities (to
float rounding; the tests hold it to 1e-5 against the plain PyTorch layers) with far less
work, because it exploits three facts about the published layer stack:

1. **The first layer mixes the two rows only through kernel rows.** With Keras 'same'
   padding a 2-row kernel pads one zero row below, so conv 1's output row 0 is
   ``p_o * (d0 * TF + d1 * target) + b_o`` and row 1 is ``p_o * (d0 * target) + b_o``
   (``*`` a 1-D 'same' cross-correlation, ``d0``/``d1`` the depthwise kernel rows, ``p``
   the pointwise weights). So each gene's terms ``A = d0 * z`` and ``B = d1 * z`` are
   computed once per gene, and a pair only adds two precomputed rows.
2. **ReLU, batch norm and max-pool are monotone per channel.** Channel ``o`` of conv 1
   after ReLU and (optional) batch norm is ``g_o(s) = a_o * relu(p_o * s + b_o) + c_o``, a
   monotone function of the pre-activation series ``s``; so the 2x2 max-pool of
   ``g_o`` equals ``g_o`` of the max (or min, when ``g_o`` decreases) of ``s`` over the
   window. The pooled row-1 half depends on the target only and is computed once per
   target. Per pair the first block costs a few operations on ``W/2`` values.
3. **Batch norm after conv 2 is affine, right before the dense layer**, so it is folded
   into the dense weights; depthwise + pointwise of conv 2 are composed into one dense
   1-D kernel, run as a channels-last convolution whose output flattens, in Keras
   (width, channel) order, without a copy. Dropout is the identity at inference.

Pairs are streamed in small chunks (a few thousand at a time), so the working memory is
a few MiB plus the per-gene terms (genes x samples x 2 floats), whatever the number of
pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .network import PairCNNNetwork, same_padding

#: Pairs per chunk: small enough that a chunk's intermediates stay in the CPU caches.
DEFAULT_CHUNK = 2048


def _bn_affine(bn: torch.nn.BatchNorm2d | None, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inference batch norm as ``a * x + c`` per channel (identity when absent)."""
    if bn is None:
        return torch.ones(channels), torch.zeros(channels)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


@dataclass
class GeneTerms:
    """Per-gene first-layer terms: ``a`` = d0 * z (TF row and target row 1), ``b`` = d1 * z."""

    a: torch.Tensor  # (G, W)
    b: torch.Tensor  # (G, W)


class PairScorer:
    """Inference-only form of a :class:`PairCNNNetwork`; same probabilities, less work.

    Build it with :meth:`from_network`. :meth:`gene_terms` precomputes the per-gene terms
    of a z-scored matrix, :meth:`score_block` scores every pair of a TF block against a
    target set, :meth:`predict_pairs` scores arbitrary ``(N, 2, W)`` pairs.
    """

    def __init__(self, net: PairCNNNetwork, chunk: int = DEFAULT_CHUNK) -> None:
        cfg = net.config
        self.config = cfg
        self.chunk = int(chunk)
        with torch.no_grad():
            c1, c2 = net.conv1, net.conv2
            f1, f2 = cfg.filters
            kw = cfg.kernel_width
            top1, _ = same_padding(cfg.kernel_height)
            # conv 1 (one input channel, height 2): row kernels applied to each gene.
            dw1 = c1.depthwise.detach().float()[0]  # (kh, kw)
            if top1 != 0:  # 'same' puts no padding row above a 1- or 2-row kernel
                raise ValueError(f"unsupported kernel height {cfg.kernel_height}")
            kernels = [dw1[0], dw1[1] if cfg.kernel_height == 2 else torch.zeros(kw)]
            self._row_kernels = torch.stack(kernels).unsqueeze(1).contiguous()  # (2, 1, kw)
            self._pad = same_padding(kw)
            p1 = c1.pointwise.detach().float()[:, 0]  # (f1,)
            b1 = c1.bias.detach().float()
            a1, cc1 = _bn_affine(net.norm1, f1)
            # Channels whose g_o increases with s come first (they pool the max of s),
            # then the decreasing ones (the min): conv 2's input channels follow the order.
            increasing = (p1 * a1) >= 0
            order = torch.cat([torch.nonzero(increasing)[:, 0], torch.nonzero(~increasing)[:, 0]])
            self._n_inc = int(increasing.sum())
            self._p1 = p1[order].contiguous()
            self._b1 = b1[order].contiguous()
            self._bn1 = (
                None if net.norm1 is None else (a1[order].contiguous(), cc1[order].contiguous())
            )
            # conv 2 on the height-1 pooled map: only depthwise kernel row `top` (= 0) acts.
            dw2 = c2.depthwise.detach().float()[:, 0, :]  # (f1, kw)
            w2 = c2.pointwise.detach().float()[:, :, None] * dw2[None]  # (f2, f1, kw)
            w2 = w2[:, order]
            self._w2 = w2.unsqueeze(2).contiguous(memory_format=torch.channels_last)
            self._b2 = c2.bias.detach().float().contiguous()
            # batch norm 2 folded into the dense layer (input order: width, channel).
            a2, cc2 = _bn_affine(net.norm2, f2)
            wp = cfg.pooled_width
            wd = net.dense.weight.detach().float()  # (units, wp * f2)
            self._wd = (wd * a2.repeat(wp)[None, :]).contiguous()
            self._bd = (net.dense.bias.detach().float() + wd @ cc2.repeat(wp)).contiguous()
            self._wo = net.out.weight.detach().float().contiguous()
            self._bo = net.out.bias.detach().float().contiguous()
        self._f1, self._f2, self._kw, self._wp = f1, f2, kw, wp

    @classmethod
    def from_network(cls, net: PairCNNNetwork, chunk: int = DEFAULT_CHUNK) -> PairScorer:
        """Compile a (trained) network; its eval-mode statistics are used."""
        return cls(net, chunk)

    # -- per-gene terms ------------------------------------------------------------------
    def gene_terms(self, z: np.ndarray | torch.Tensor) -> GeneTerms:
        """First-layer terms of every row of a z-scored matrix (genes x samples)."""
        zt = torch.as_tensor(np.asarray(z, dtype=np.float32) if not torch.is_tensor(z) else z)
        zt = zt.float()
        if zt.ndim != 2 or zt.shape[1] != self.config.n_samples:
            raise ValueError(
                f"expected a (genes, {self.config.n_samples}) matrix, got {tuple(zt.shape)}"
            )
        with torch.no_grad():
            terms = F.conv1d(F.pad(zt.unsqueeze(1), self._pad), self._row_kernels)
        return GeneTerms(a=terms[:, 0].contiguous(), b=terms[:, 1].contiguous())

    # -- the pair network, from pre-activation series ---------------------------------------
    def _pooled_first(self, s: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``s`` (n, W) pre-activation series -> pooled g_o over width pairs, (n, Wp, f1)."""
        wp, k = self._wp, self._n_inc
        if out is None:
            out = torch.empty(s.shape[0], wp, self._f1)
        if k > 0:  # max over width pairs (max_pool1d is the fastest kernel for it)
            high = F.max_pool1d(s.unsqueeze(1), 2).view(-1, wp, 1)
            torch.addcmul(self._b1[:k], high, self._p1[:k], out=out[..., :k])
        if k < self._f1:
            low = torch.minimum(s[:, 0 : 2 * wp : 2], s[:, 1 : 2 * wp : 2]).unsqueeze(2)
            torch.addcmul(self._b1[k:], low, self._p1[k:], out=out[..., k:])
        out.relu_()
        if self._bn1 is not None:
            out.mul_(self._bn1[0]).add_(self._bn1[1])
        return out

    def _head(self, buf: torch.Tensor) -> torch.Tensor:
        """Padded pooled map (n, Wp + kw - 1, f1) -> logits (n,)."""
        n = buf.shape[0]
        x = buf.view(n, 1, buf.shape[1], self._f1).permute(0, 3, 1, 2)
        h = F.conv2d(x, self._w2, self._b2)
        h = h.permute(0, 2, 3, 1).reshape(n, self._wp * self._f2).relu_()
        h = F.linear(h, self._wd, self._bd).relu_()
        return F.linear(h, self._wo, self._bo).squeeze(1)

    def _new_buffer(self, n: int) -> torch.Tensor:
        left, right = self._pad
        return torch.zeros(n, self._wp + left + right, self._f1)

    def _logits_from(
        self, s: torch.Tensor, target_pooled: torch.Tensor, buf: torch.Tensor, m: int = 1
    ) -> torch.Tensor:
        """Logits for pairs with series ``s`` (n, W) and pooled target halves.

        ``target_pooled`` is (n / m, Wp, f1): the pairs are m TFs x n / m targets, TF-major,
        and the target halves are broadcast over the TFs rather than copied.
        """
        n = s.shape[0]
        left = self._pad[0]
        inner = buf[:n, left : left + self._wp]
        self._pooled_first(s, out=inner)
        inner = inner.unflatten(0, (m, n // m))
        torch.maximum(inner, target_pooled, out=inner)
        return self._head(buf[:n])

    # -- public scoring ----------------------------------------------------------------
    def score_block(
        self, terms: GeneTerms, tf_rows: np.ndarray, target_rows: np.ndarray
    ) -> np.ndarray:
        """Probabilities of every (TF, target) pair: array (len(tf_rows), len(target_rows)).

        Rows index ``terms`` (from :meth:`gene_terms`). Pairs are processed a target chunk
        at a time, each TF of the block against it, so memory stays small.
        """
        tf_idx = torch.as_tensor(np.asarray(tf_rows, dtype=np.int64))
        tg_idx = torch.as_tensor(np.asarray(target_rows, dtype=np.int64))
        out = np.empty((len(tf_idx), len(tg_idx)), dtype=np.float32)
        if out.size == 0:
            return out
        step = max(1, min(len(tg_idx), self.chunk))
        per = max(1, self.chunk // step)  # TFs per chunk when the target set is small
        buf = self._new_buffer(per * step)
        with torch.no_grad():
            a_tf = terms.a.index_select(0, tf_idx)
            for lo in range(0, len(tg_idx), step):
                idx = tg_idx[lo : lo + step]
                c = len(idx)
                b_tg = terms.b.index_select(0, idx)  # (c, W)
                pooled_tg = self._pooled_first(terms.a.index_select(0, idx))  # (c, Wp, f1)
                for t0 in range(0, len(tf_idx), per):
                    a = a_tf[t0 : t0 + per]  # (m, W)
                    m = a.shape[0]
                    s = (a[:, None, :] + b_tg[None, :, :]).reshape(m * c, -1)
                    logits = self._logits_from(s, pooled_tg, buf, m)
                    out[t0 : t0 + m, lo : lo + c] = torch.sigmoid(logits).view(m, c).numpy()
        return out

    def predict_pairs(self, X: np.ndarray | torch.Tensor) -> np.ndarray:
        """Probabilities for arbitrary pairs ``X`` (N, 2, W), streamed in chunks."""
        xt = torch.as_tensor(X) if torch.is_tensor(X) else torch.from_numpy(np.asarray(X))
        xt = xt.float()
        if xt.ndim != 3 or xt.shape[1] != 2 or xt.shape[2] != self.config.n_samples:
            raise ValueError(
                f"expected input of shape (N, 2, {self.config.n_samples}), got {tuple(xt.shape)}"
            )
        out = np.empty(xt.shape[0], dtype=np.float32)
        buf = self._new_buffer(min(self.chunk, max(1, xt.shape[0])))
        with torch.no_grad():
            for lo, hi in _chunks(xt.shape[0], self.chunk):
                tf_terms = self.gene_terms(xt[lo:hi, 0])
                tg_terms = self.gene_terms(xt[lo:hi, 1])
                s = tf_terms.a + tg_terms.b
                logits = self._logits_from(s, self._pooled_first(tg_terms.a), buf)
                out[lo:hi] = torch.sigmoid(logits).numpy()
        return out


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)
