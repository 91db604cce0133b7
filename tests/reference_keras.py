"""An independent, loop-by-loop numpy reference of the Keras layers the pair CNN uses.

Written from the Keras layer definitions (not from tfcnn's code) so the layer-semantics
test compares two separate implementations.
"""

from __future__ import annotations

import numpy as np


def pad_same(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """x: (H, W, C). TensorFlow 'same': extra padding after (bottom/right)."""
    th, tw = kh - 1, kw - 1
    return np.pad(x, ((th // 2, th - th // 2), (tw // 2, tw - tw // 2), (0, 0)))


def separable_conv2d(x, depthwise, pointwise, bias):
    """x: (H, W, C); depthwise: (kh, kw, C, 1); pointwise: (1, 1, C, O); bias: (O,)."""
    h, w, c = x.shape
    kh, kw = depthwise.shape[:2]
    xp = pad_same(x, kh, kw)
    dw = np.zeros((h, w, c))
    for i in range(h):
        for j in range(w):
            for ch in range(c):
                dw[i, j, ch] = np.sum(xp[i : i + kh, j : j + kw, ch] * depthwise[:, :, ch, 0])
    out = np.zeros((h, w, pointwise.shape[3]))
    for i in range(h):
        for j in range(w):
            out[i, j] = dw[i, j] @ pointwise[0, 0] + bias
    return out


def relu(x):
    return np.maximum(x, 0.0)


def batch_norm_inference(x, gamma, beta, mean, var, eps=1e-3):
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def max_pool_2x2(x):
    h, w, c = x.shape
    out = np.zeros((h // 2, w // 2, c))
    for i in range(h // 2):
        for j in range(w // 2):
            out[i, j] = x[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].max(axis=(0, 1))
    return out


def forward(pair: np.ndarray, w: dict) -> float:
    """Probability for one pair (2, W), weights in Keras layout, inference mode."""
    x = pair[:, :, None].astype(np.float64)
    h = relu(separable_conv2d(x, w["dw1"], w["pw1"], w["b1"]))
    if "bn1" in w:
        h = batch_norm_inference(h, *w["bn1"])
    h = max_pool_2x2(h)
    h = relu(separable_conv2d(h, w["dw2"], w["pw2"], w["b2"]))
    if "bn2" in w:
        h = batch_norm_inference(h, *w["bn2"])
    flat = h.reshape(-1)  # channels-last flatten: (H, W, C)
    d = relu(flat @ w["dense_w"] + w["dense_b"])
    z = d @ w["out_w"] + w["out_b"]
    return float(1.0 / (1.0 + np.exp(-z[0])))
