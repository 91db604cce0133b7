"""A trained pair CNN's weights, folded for inference, as numpy arrays (no PyTorch).

Both engines start from these: batch norm as a per-channel affine map (folded into the
dense layer for batch norm 2), conv 1's two depthwise kernel rows, and the dense and
output layers. They read the weights by PyTorch's state-dict names, from a network or
from a model file read without torch (:class:`~tfcnn.model.stored.StoredCNN`), so the
fused kernel (:mod:`tfcnn.inference.fused`) never needs torch. See
:mod:`tfcnn.inference.engine` for why these forms give the network's probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..model.config import KERAS_BN_EPS, CNNConfig, same_padding
from ..model.stored import StoredCNN

Arrays = Mapping[str, np.ndarray]

#: Genes whose first-layer terms are computed at once. It bounds the temporary memory:
#: at width 5,000, batches of 2,048 genes raised the peak RSS by ~700 MiB (the convolution's
#: workspace), batches of 256 by ~100 MiB.
GENE_BATCH = 256


def network_arrays(net: Any) -> dict[str, np.ndarray]:
    """The weights of a network (PyTorch module) or :class:`StoredCNN` by state-dict name:
    float32 numpy arrays, without batch norm's ``num_batches_tracked`` counters."""
    if isinstance(net, StoredCNN):
        return dict(net.state)
    return {
        k: v.detach().cpu().numpy().copy()
        for k, v in net.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def bn_affine(state: Arrays, prefix: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Inference batch norm ``prefix`` (e.g. ``norm1``) as ``a * x + c`` per channel
    (identity when the network has no such layer)."""
    if f"{prefix}.weight" not in state:
        return np.ones(channels, np.float32), np.zeros(channels, np.float32)
    var = state[f"{prefix}.running_var"]
    scale = state[f"{prefix}.weight"] / np.sqrt(var + np.float32(KERAS_BN_EPS))
    return scale, state[f"{prefix}.bias"] - state[f"{prefix}.running_mean"] * scale


def row_kernels(config: CNNConfig, state: Arrays) -> np.ndarray:
    """Conv 1's two depthwise kernel rows, (kw, 2): ``d0`` (zero-padded below: the TF row
    and the target's row 1) and ``d1`` (zeros for a 1-row kernel)."""
    if same_padding(config.kernel_height)[0] != 0:  # 'same' puts no row above a 1-2 row kernel
        raise ValueError(f"unsupported kernel height {config.kernel_height}")
    dw1 = state["conv1.depthwise"][0]  # (kh, kw)
    second = dw1[1] if config.kernel_height == 2 else np.zeros(config.kernel_width, np.float32)
    return np.ascontiguousarray(np.stack([dw1[0], second], axis=1), np.float32)


def fold_dense(
    config: CNNConfig, state: Arrays
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The dense layer with batch norm 2 folded in (input order: position, channel), and
    the output layer: ``wd`` (units, wp * f2), ``bd`` (units, 1), ``wo`` (1, units),
    ``bo`` (1, 1)."""
    wp = config.pooled_width
    a2, c2 = bn_affine(state, "norm2", config.filters[1])
    wd = state["dense.weight"]  # (units, wp * f2)
    folded = np.ascontiguousarray(wd * np.tile(a2, wp)[None, :])
    bd = (state["dense.bias"] + wd @ np.tile(c2, wp))[:, None]
    wo = np.ascontiguousarray(state["out.weight"])
    bo = state["out.bias"][:, None]
    return folded, bd.astype(np.float32), wo, bo


def first_layer_terms(z: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """(genes, W) z-scores -> (genes, W, 2): each row 'same'-correlated with both kernels
    (:func:`row_kernels`)."""
    kw = kernels.shape[0]
    width = z.shape[1]
    padded = np.pad(z, ((0, 0), same_padding(kw)))
    out = np.zeros((z.shape[0], width, 2), np.float32)
    for k in range(kw):
        out += padded[:, k : k + width, None] * kernels[k]
    return out


def zscore_rows(z: np.ndarray, width: int) -> np.ndarray:
    """``z`` as a C-ordered float32 (genes, ``width``) array, or ValueError naming the shape."""
    z = np.require(z, np.float32, ["C"])
    if z.ndim != 2 or z.shape[1] != width:
        raise ValueError(f"expected a (genes, {width}) matrix, got {tuple(z.shape)}")
    return z
