"""The pair CNN as a PyTorch module, with the published (MacLean 2019) layer semantics.

Input: a batch of pairs, shape ``(N, 2, W)``: row 0 is the TF's z-scored profile, row 1
the target's, ``W`` samples. Layers, as in the published Keras model::

    SeparableConv2D(f1, 2 x k, same, relu) [-> BatchNorm]  -> MaxPool 2x2
    SeparableConv2D(f2, 2 x k, same, relu) [-> BatchNorm]  -> Flatten (Keras order)
    Dense(units, relu) -> Dropout -> Dense(1) -> sigmoid

Keras semantics kept on purpose, so that a Keras model can be imported weight for weight:

* SeparableConv2D = depthwise conv (depth multiplier 1, no bias) then a 1x1 pointwise
  conv with bias; 'same' padding puts the extra row/column of an even kernel at the
  bottom/right (a 2-row kernel pads one zero row below, none above).
* MaxPool 2x2 with 'valid' padding (odd widths are floored).
* BatchNorm with ``eps=1e-3`` and Keras ``momentum=0.99`` (PyTorch momentum 0.01).
* Flatten in channels-last order (height, width, channel).
* glorot-uniform kernels, zero biases.

Each separable conv is computed as one dense convolution whose weight is composed from
the depthwise and pointwise kernels on every call (rows of the input become channels).
Without batch norm 1 (the published model), conv 1 -> ReLU -> max-pool is computed from
the max and min of each 2x2 window of two series per pair (see ``_pooled_first_block``),
and conv 2 runs channels-last. All of this is exact and much faster on CPU than grouped
2-D convolutions; the parameters keep their Keras shapes so gradients flow to them
directly.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import (
    KERAS_BN_EPS,
    KERAS_BN_MOMENTUM,
    CNNConfig,
    same_padding,
)

#: Conv 2 runs as depthwise + pointwise (and batch norm 2 on a channels-last view) from
#: this many channels on; below it, fused forms with fewer, larger steps are faster.
SEPARABLE_FROM = 16
#: Column sums of an (M, C) matrix run as a product with a row of ones from this many
#: columns on; below it, as a reduction (measured at M = 59,392: 7x faster at 8 columns,
#: 1.3x slower at 64).
MATVEC_SUMS_FROM = 16


def compose_separable(
    depthwise: torch.Tensor, pointwise: torch.Tensor, height: int
) -> torch.Tensor:
    """Compose a 'same'-padded separable 2-D conv into a dense 1-D conv weight.

    depthwise: (C, kh, kw); pointwise: (O, C). Returns (O*H, C*H, kw): input channel
    ``c*H + h_in`` contributes to output channel ``o*H + h_out`` through kernel row
    ``h_in - h_out + top`` (zero where outside the kernel: that is the row padding).
    """
    _, kh, _ = depthwise.shape
    top, _ = same_padding(kh)
    shift = torch.zeros(height, height, kh, dtype=depthwise.dtype, device=depthwise.device)
    for h_out in range(height):
        for i in range(kh):
            h_in = h_out + i - top
            if 0 <= h_in < height:
                shift[h_out, h_in, i] = 1.0
    weight = torch.einsum("oc,cij,hgi->ohcgj", pointwise, depthwise, shift)
    o, c, kw = pointwise.shape[0], pointwise.shape[1], depthwise.shape[2]
    return weight.reshape(o * height, c * height, kw)


class SeparableConv(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, 'same' padding, bias on the pointwise)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int]) -> None:
        super().__init__()
        kh, kw = kernel
        self.kernel = (kh, kw)
        self.depthwise = nn.Parameter(torch.empty(in_channels, kh, kw))
        self.pointwise = nn.Parameter(torch.empty(out_channels, in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform, with Keras' fan computation for each kernel."""
        c, kh, kw = self.depthwise.shape
        o = self.pointwise.shape[0]
        # Keras depthwise kernel (kh, kw, C, 1): fan_in = kh*kw*C, fan_out = kh*kw*1.
        lim = math.sqrt(6.0 / (kh * kw * c + kh * kw))
        nn.init.uniform_(self.depthwise, -lim, lim)
        lim = math.sqrt(6.0 / (c + o))
        nn.init.uniform_(self.pointwise, -lim, lim)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) -> (N, O, H, W)."""
        n, c, h, w = x.shape
        weight = compose_separable(self.depthwise, self.pointwise, h)
        left, right = same_padding(self.kernel[1])
        flat = F.pad(x.reshape(n, c * h, w), (left, right))
        bias = self.bias.repeat_interleave(h)
        out = F.conv1d(flat, weight, bias)
        return out.reshape(n, -1, h, w)


def _column_sums(x: torch.Tensor) -> torch.Tensor:
    """Column sums of an (M, C) matrix: a reduction for few columns, else a matrix product
    with a row of ones (see :data:`MATVEC_SUMS_FROM`)."""
    if x.shape[1] < MATVEC_SUMS_FROM:
        return x.sum(0)
    return torch.mm(x.new_ones(1, x.shape[0]), x)[0]


class _WindowExtremes(torch.autograd.Function):
    """Max and min of each 2x2 window, from its four samples ``(4, N, Wp)``: ``(2, N, Wp)``.

    The samples come in row-major window order (row 0 left, row 0 right, row 1 left, row
    1 right), each a contiguous (N, Wp) slab, so every step is an element-wise pass over
    long rows. The gradient goes where max-pool sends it: to the first extreme of the
    window in row-major order, so ties are routed the same way. Without ties (real-valued
    data), each window has exactly one sample equal to its max and one equal to its min,
    and the gradient is two masked multiply-adds; a tie anywhere in the batch takes the
    exact first-occurrence path for the whole batch.
    """

    @staticmethod
    def forward(ctx, slots):
        a, b, c, d = slots.unbind(0)
        out = slots.new_empty(2, *slots.shape[1:])
        torch.maximum(torch.maximum(a, b), torch.maximum(c, d), out=out[0])
        torch.minimum(torch.minimum(a, b), torch.minimum(c, d), out=out[1])
        ctx.save_for_backward(slots, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        slots, out = ctx.saved_tensors
        grad = grad.contiguous()
        windows = out[0].numel()
        # 1 where a sample is its window's max (samples are <= the max), else 0
        high = (slots - out[0]).sign_().add_(1.0)
        low = (slots - out[1]).sign_().sub_(1.0).neg_()
        # each window has at least one such sample: exactly one each iff the counts match
        # (summed in float64 beyond float32's exact integer range)
        exact = torch.float64 if slots.numel() >= 2**24 else None
        if float(high.sum(dtype=exact)) == windows and float(low.sum(dtype=exact)) == windows:
            return high.mul_(grad[0]).addcmul_(low, grad[1])
        slot_grad = torch.zeros_like(slots)
        for k in (0, 1):
            hits = slots == out[k]
            first = hits & (hits.cumsum(0) == 1)
            slot_grad += torch.where(first, grad[k], 0.0)
        return slot_grad


@functools.lru_cache(maxsize=16)
def _slot_placement(kernel_height: int, kernel_width: int) -> torch.Tensor:
    """``(4 * 2 * (kw + 1), kh * kw)``: conv 1's depthwise taps -> the weights of the four
    window samples (series 0 or 1 at an even or odd position) over the padded TF and
    target rows, with stride 2 and one extra tap (an odd position shifts the kernel)."""
    kh, kw = kernel_height, kernel_width
    placement = torch.zeros(4, 2, kw + 1, kh, kw)
    for k in range(kw):
        for odd in (0, 1):
            placement[odd, 0, k + odd, 0, k] = 1.0  # series 0: d0 * TF
            if kh == 2:
                placement[odd, 1, k + odd, 1, k] = 1.0  # series 0: + d1 * target
            placement[2 + odd, 1, k + odd, 0, k] = 1.0  # series 1: d0 * target
    return placement.reshape(4 * 2 * (kw + 1), kh * kw)


def _row_width(x: torch.Tensor) -> int:
    """Rows of an (M, C) matrix to view as one (see :func:`_row_addcmul`); 1: as it is."""
    m, c = x.shape
    if c >= 64 or not x.is_contiguous():
        return 1
    return next(k for k in (16, 8, 4, 2, 1) if m % k == 0)


def _row_addcmul(base: torch.Tensor, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``base + x * scale`` for an (M, C) matrix and per-column vectors, bit for bit.

    Broadcasting over a narrow last dimension (8 columns) runs several times slower than
    over a wide one, so contiguous rows are viewed k at a time as (M / k, k * C) with the
    vectors repeated k times: the same element-wise operation, about 3x faster.
    """
    k = _row_width(x)
    if k == 1:
        return torch.addcmul(base, x, scale)
    m, c = x.shape
    return torch.addcmul(base.repeat(k), x.view(m // k, k * c), scale.repeat(k)).view(m, c)


def _row_addcmul_(acc: torch.Tensor, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``acc += x * scale`` in place, as :func:`_row_addcmul` (``acc`` contiguous)."""
    k = min(_row_width(x), _row_width(acc))
    if k == 1:
        return acc.addcmul_(x, scale)
    m, c = x.shape
    acc.view(m // k, k * c).addcmul_(x.view(m // k, k * c), scale.repeat(k))
    return acc


class _RowBatchNorm(torch.autograd.Function):
    """Training-mode batch norm over the rows of an (M, C) matrix, in few memory passes.

    Forward: the column means of ``x`` and ``x**2`` (variance ``E[x^2] - E[x]^2``; ReLU
    outputs of order 1, so float32 keeps about 6 digits of it), then one multiply-add.
    Backward: the textbook batch-norm gradient, with its two column sums (see
    :func:`_column_sums`; ``sum(dy * x)`` as the diagonal of ``dy^T x``) and ``dx`` as one
    multiply-add of ``dy`` and ``x``.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        m, c = x.shape
        mean = _column_sums(x) / m
        if c < MATVEC_SUMS_FROM:  # few columns: the Gram diagonal beats a squared copy
            squares = torch.mm(x.t(), x).diagonal()
        else:
            squares = _column_sums(x.square())
        var = (squares / m - mean.square()).clamp_min(0.0)
        rstd = torch.rsqrt(var + eps)
        scale = weight * rstd
        out = _row_addcmul(bias - mean * scale, x, scale)
        ctx.save_for_backward(x, weight, mean, rstd)
        return out, mean, var

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar):
        x, weight, mean, rstd = ctx.saved_tensors
        m = x.shape[0]
        dbeta = _column_sums(dy)
        # sum(dy * xhat) = rstd * (sum(dy * x) - mean * sum(dy)); sum(dy * x) per channel is
        # the diagonal of dy^T x, one matrix product without an (M, C) temporary
        dyx = torch.mm(dy.t(), x).diagonal()
        dgamma = rstd * (dyx - mean * dbeta)
        # dx = gamma * rstd * (dy - dbeta / m - xhat * dgamma / m), xhat = (x - mean) * rstd
        a = weight * rstd
        b = -a * rstd * dgamma / m
        c = -a * dbeta / m - b * mean
        dx = _row_addcmul_(_row_addcmul(c, dy, a), x, b)
        return dx, dgamma, dbeta, None


def _batch_norm(bn: nn.BatchNorm2d, h: torch.Tensor) -> torch.Tensor:
    """``bn(h)`` for a channels-last (N, C, 1, W) map: statistics over a (N * W, C) view.

    The same arithmetic as ``nn.BatchNorm2d`` (batch statistics and running-average
    updates in training, running statistics in eval mode), over the rows of the
    channels-last map (:class:`_RowBatchNorm`); PyTorch's own CPU kernel is several times
    slower for this layout, its backward most of all (at 8 channels, the published
    model's, it was a third of a training step).
    """
    n, c, one, w = h.shape
    if one != 1 or not h.is_contiguous(memory_format=torch.channels_last):
        return bn(h)
    rows = h.permute(0, 2, 3, 1).reshape(n * w, c)  # a view of the channels-last memory
    running_mean, running_var = bn.running_mean, bn.running_var
    if running_mean is None or running_var is None:  # pragma: no cover - not our layers
        return bn(h)
    if bn.training:
        out, mean, var = _RowBatchNorm.apply(rows, bn.weight, bn.bias, bn.eps)
        with torch.no_grad():
            m = bn.momentum if bn.momentum is not None else 0.1
            count = rows.shape[0]
            running_mean.mul_(1 - m).add_(mean, alpha=m)
            running_var.mul_(1 - m).add_(var * (count / max(1, count - 1)), alpha=m)
            if bn.num_batches_tracked is not None:
                bn.num_batches_tracked.add_(1)
    else:
        scale = bn.weight * torch.rsqrt(running_var + bn.eps)
        out = torch.addcmul(bn.bias - running_mean * scale, rows, scale)
    return out.view(n, 1, w, c).permute(0, 3, 1, 2)


def _keras_batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=KERAS_BN_EPS, momentum=1.0 - KERAS_BN_MOMENTUM)


def _glorot_dense(layer: nn.Linear) -> nn.Linear:
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class PairCNNNetwork(nn.Module):
    """The pair CNN; ``forward`` returns logits, ``predict_proba`` probabilities."""

    def __init__(self, config: CNNConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or CNNConfig()
        f1, f2 = config.filters
        kernel = (config.kernel_height, config.kernel_width)
        self.conv1 = SeparableConv(1, f1, kernel)
        self.norm1 = _keras_batch_norm(f1) if config.batch_norm[0] else None
        self.conv2 = SeparableConv(f1, f2, kernel)
        self.norm2 = _keras_batch_norm(f2) if config.batch_norm[1] else None
        self.dense = _glorot_dense(nn.Linear(config.flat_features, config.units))
        self.dropout = nn.Dropout(config.dropout)
        self.out = _glorot_dense(nn.Linear(config.units, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last convolutional block, (N, f2, 1, W/2): the layer explanations use."""
        return self._conv_features(x).contiguous()

    def _conv_features(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`features` in channels-last memory (which :meth:`head` flattens for free)."""
        if x.ndim != 3 or x.shape[1] != 2 or x.shape[2] != self.config.n_samples:
            raise ValueError(
                f"expected input of shape (N, 2, {self.config.n_samples}), got {tuple(x.shape)}"
            )
        if self.norm1 is None:
            h = self._pooled_first_block(x)
        else:
            h = F.relu(self.conv1(x.unsqueeze(1)))
            h = self.norm1(h)
            h = F.max_pool2d(h, kernel_size=2, stride=2)
            h = h.contiguous(memory_format=torch.channels_last)
        h = F.relu(self._second_conv(h))
        if self.norm2 is not None:
            h = _batch_norm(self.norm2, h)
        return h

    def _pooled_first_block(self, x: torch.Tensor) -> torch.Tensor:
        """conv 1 -> ReLU -> 2x2 max-pool without batch norm, never building the conv map.

        Conv 1 has one input channel, so channel ``o`` of its output is ``p_o * s + b_o``
        for two series per pair: ``s0 = d0 * TF + d1 * target`` (row 0) and
        ``s1 = d0 * target`` (row 1; 'same' pads one zero row below a 2-row kernel).
        ``relu(p_o * s + b_o)`` is monotone in ``s``, so its max over a 2x2 window is its
        value at the window's max of ``s`` (min when ``p_o < 0``): the pooled map is built
        from the window extremes, two (N, W/2) series, instead of an (N, f1, 2, W) map.
        The four samples of each window (each series at even and odd positions) are one
        matrix product of the stride-2 taps and the padded rows gathered once; ``conv1d``
        and its backward cost more for this shape. Exact, also for the gradients
        (:class:`_WindowExtremes` routes them as max-pool does, ties included).
        """
        conv = self.conv1
        kh, kw = conv.kernel
        n = x.shape[0]
        wp = self.config.pooled_width
        padded = F.pad(x, same_padding(kw)).contiguous()  # (N, 2, L)
        length = padded.shape[2]
        # the window samples' inputs: (row, tap) x (pair, window) with stride 2, one copy
        taps = padded.as_strided((2, kw + 1, n, wp), (length, 1, 2 * length, 2))
        taps = taps.reshape(2 * (kw + 1), n * wp)
        placement = _slot_placement(kh, kw).to(conv.depthwise.dtype)
        weight = (placement @ conv.depthwise[0].reshape(-1)).view(4, 2 * (kw + 1))
        slots = torch.mm(weight, taps).view(4, n, wp)  # s0 even, s0 odd, s1 even, s1 odd
        extremes = _WindowExtremes.apply(slots).view(2, n * wp)  # window max, window min
        # Channel o is relu(p_o * high + b_o) when p_o >= 0, relu(p_o * low + b_o) else:
        # one (N * Wp, 2) x (2, f1) product with the weights placed by sign, then ReLU.
        p = conv.pointwise[:, 0]  # (f1,)
        up = p >= 0
        placed = torch.stack([torch.where(up, p, 0.0), torch.where(up, 0.0, p)])  # (2, f1)
        pooled = torch.addmm(conv.bias, extremes.t(), placed).relu_()  # (N * Wp, f1)
        return pooled.view(n, 1, wp, -1).permute(0, 3, 1, 2)  # (N, f1, 1, Wp), channels-last

    def _second_conv(self, h: torch.Tensor) -> torch.Tensor:
        """conv 2 on the height-1 pooled map (channels-last).

        With one input row and 'same' padding, only the depthwise kernel's row ``top``
        acts. With few input channels the separable conv runs as one dense (1 x kw)
        convolution with the composed weight; with many (at least
        :data:`SEPARABLE_FROM`), as Keras does: a depthwise convolution, then the
        pointwise one as a matrix product (about kw times fewer multiply-adds).
        """
        conv = self.conv2
        top, _ = same_padding(conv.kernel[0])
        left, right = same_padding(conv.kernel[1])
        f1 = conv.depthwise.shape[0]
        if left != right:  # even kernel: 'same' pads one more column on the right
            h, left = F.pad(h, (left, right)), 0
        if f1 < SEPARABLE_FROM:
            weight = conv.pointwise[:, :, None] * conv.depthwise[None, :, top, :]  # (O, C, kw)
            weight = weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
            return F.conv2d(h, weight, conv.bias, padding=(0, left))
        depthwise = conv.depthwise[:, top, None, None, :]  # (C, 1, 1, kw)
        h = F.conv2d(h, depthwise, padding=(0, left), groups=f1)  # (N, C, 1, W) channels-last
        n, _, _, w = h.shape
        out = torch.addmm(conv.bias, h.permute(0, 2, 3, 1).reshape(n * w, f1), conv.pointwise.t())
        return out.view(n, 1, w, -1).permute(0, 3, 1, 2)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """From last-conv features to logits (flattened channels-last, as Keras)."""
        h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)  # a view when h is channels-last
        h = F.relu(self.dense(h))
        return self.out(self.dropout(h)).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (N,)."""
        return self.head(self._conv_features(x))

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every tensor in the state dict, for validating model files."""
        return {k: tuple(v.shape) for k, v in self.state_dict().items()}
