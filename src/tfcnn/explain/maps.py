"""Activation maps of a pair's last convolutional layer, smoothed, and their windows.

See :mod:`tfcnn.explain` for the method: the map (``hirescam`` or ``gradcam``), the
Whittaker-Henderson smoothing, the half-maximum window and the way layer columns map
back to samples.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import TfcnnInputError

if TYPE_CHECKING:
    from ..model.estimator import PairCNN

CAM_METHODS = ("hirescam", "gradcam")


def activation_maps(
    model: PairCNN, x: np.ndarray, method: str = "hirescam", batch_size: int = 512
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Activation maps on the last conv layer, saliency and probabilities for pairs ``x``.

    ``method``: ``"gradcam"`` (the study's: channel-mean gradients weight the channels)
    or ``"hirescam"`` (each position's own gradient weights the activation there; see
    the module docstring for why it is the default). ``x``: (N, 2, S).
    Returns ``cam`` (N, S // 2) in [0, 1] at the layer's resolution,
    ``saliency`` (N, 2, S) = gradient x input of the logit, and ``prob`` (N,).
    The network runs in inference mode (batch norm running statistics, no dropout), so
    pairs do not influence each other and one backward pass serves a whole batch.
    """
    if method not in CAM_METHODS:
        raise TfcnnInputError(f"unknown map method {method!r}; choose {' or '.join(CAM_METHODS)}.")
    from .two_tower import refuse_two_tower

    refuse_two_tower(model, "an activation map")  # see tfcnn.explain.two_tower
    net = model.fitted_network()
    net.eval()
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3 or x.shape[1] != 2 or x.shape[2] != net.config.n_samples:
        raise TfcnnInputError(
            f"pairs must have shape (N, 2, {net.config.n_samples}) for this model, got {x.shape}."
        )
    n, width = x.shape[0], net.config.pooled_width
    cam = np.zeros((n, width), dtype=np.float64)
    saliency = np.zeros(x.shape, dtype=np.float64)
    prob = np.zeros(n, dtype=np.float64)
    for start in range(0, n, batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size]))
        xb.requires_grad_(True)
        with torch.enable_grad():
            h = net.features(xb)
            logits = net.head(h)
            grads, input_grads = torch.autograd.grad(logits.sum(), (h, xb))  # (B, f2, 1, W2)
        if method == "gradcam":
            grads = grads.mean(dim=(2, 3), keepdim=True)  # per-channel mean gradient
        raw = (grads * h.detach()).mean(dim=1)[:, 0, :]  # mean over channels -> (B, W2)
        cam[start : start + len(xb)] = normalise_cam(raw.double().numpy())
        saliency[start : start + len(xb)] = (input_grads * xb.detach()).double().numpy()
        prob[start : start + len(xb)] = torch.sigmoid(logits.detach()).double().numpy()
    return cam, saliency, prob


def normalise_cam(raw: np.ndarray) -> np.ndarray:
    """Negatives to 0, then divide each row by its maximum (rows with no positive: 0)."""
    raw = np.maximum(np.atleast_2d(np.asarray(raw, dtype=np.float64)), 0.0)
    peak = raw.max(axis=1, keepdims=True)
    return np.divide(raw, peak, out=np.zeros_like(raw), where=peak > 0)


LAMBDA_GRID = np.logspace(-2, 4, 25)
DEFAULT_LAMBDA = 10.0


def smooth_maps(cams: np.ndarray, lam: float | None = DEFAULT_LAMBDA) -> np.ndarray:
    """Smooth each row of ``cams`` (N, W) with a discrete cubic smoothing spline.

    The Whittaker-Henderson smoother (Whittaker 1923; Eilers 2003): ``z`` minimises
    ``|y - z|^2 + lam * |D2 z|^2`` with ``D2`` the second differences, i.e. the
    smoothing spline's roughness penalty on equally spaced columns. With ``lam=None``
    it is chosen per row by generalised cross-validation over ``LAMBDA_GRID``
    (``n |y - z|^2 / (n - tr H)^2``). Every row is solved at once, in a few matrix products,
    which is what makes thousands of pairs cheap. Rows shorter than 5 columns and
    constant rows are returned unchanged.
    """
    y = np.atleast_2d(np.asarray(cams, dtype=np.float64))
    n = y.shape[1]
    if n < 5:
        return y.copy()
    d2 = np.diff(np.eye(n), 2, axis=0)
    penalty = d2.T @ d2
    grid = LAMBDA_GRID if lam is None else np.array([float(lam)])
    best = y.copy()
    best_score = np.full(y.shape[0], np.inf)
    for value in grid:
        hat = np.linalg.inv(np.eye(n) + value * penalty)
        z = y @ hat.T
        score = n * ((y - z) ** 2).sum(axis=1) / (n - np.trace(hat)) ** 2
        better = score < best_score
        best[better], best_score[better] = z[better], score[better]
    constant = np.ptp(y, axis=1) == 0
    best[constant] = y[constant]
    return best


def smooth_map(cam: np.ndarray, lam: float | None = DEFAULT_LAMBDA) -> np.ndarray:
    """Smooth one 1-D map (see :func:`smooth_maps`)."""
    return smooth_maps(np.asarray(cam, dtype=np.float64)[None], lam=lam)[0]


def peak_window(curve: np.ndarray, fraction: float = 0.5) -> tuple[int, int, int]:
    """The highest peak of ``curve`` and its extent: (peak, start, end), inclusive.

    The extent is the contiguous run around the peak (first maximum) where
    ``curve >= min + fraction * (max - min)``; a flat curve gives the whole range.
    """
    y = np.asarray(curve, dtype=np.float64)
    if y.size == 0:
        raise ValueError("empty curve")
    peak = int(np.argmax(y))
    lo, hi = float(y.min()), float(y[peak])
    if hi == lo:
        return peak, 0, y.size - 1
    above = y >= lo + fraction * (hi - lo)
    start = peak
    while start > 0 and above[start - 1]:
        start -= 1
    end = peak
    while end < y.size - 1 and above[end + 1]:
        end += 1
    return peak, start, end


def layer_to_samples(values: np.ndarray, n_samples: int) -> np.ndarray:
    """Expand per-layer-column values (..., n_samples // 2) to sample columns (..., S).

    Column ``j`` covers samples ``2j`` and ``2j + 1``; with an odd ``n_samples`` the last
    sample takes the last column's value.
    """
    values = np.asarray(values)
    width = n_samples // 2
    if values.shape[-1] != width:
        raise ValueError(f"expected {width} layer columns for {n_samples} samples")
    out = np.repeat(values, 2, axis=-1)
    if n_samples % 2:
        out = np.concatenate([out, out[..., -1:]], axis=-1)
    return out


def window_to_samples(start: int, end: int, n_samples: int) -> tuple[int, int]:
    """Inclusive layer-column window -> inclusive sample-column window."""
    width = n_samples // 2
    if not 0 <= start <= end < width:
        raise ValueError(f"window {start}..{end} outside 0..{width - 1}")
    last = 2 * end + 1
    if end == width - 1 and n_samples % 2:
        last = n_samples - 1
    return 2 * start, last


def smoothed_at_samples(smoothed_layer: np.ndarray, n_samples: int) -> np.ndarray:
    """The smoothed layer curve at sample positions (linear between column centres).

    Sample ``i`` sits at layer coordinate ``(i - 0.5) / 2`` (column ``j`` is centred
    between samples ``2j`` and ``2j + 1``); outside the first/last centre it is flat.
    """
    coords = (np.arange(n_samples) - 0.5) / 2.0
    return np.interp(coords, np.arange(smoothed_layer.size), smoothed_layer)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two vectors (NaN when one is constant)."""
    a = np.asarray(a, dtype=np.float64) - np.mean(a)
    b = np.asarray(b, dtype=np.float64) - np.mean(b)
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / den) if den > 0 else math.nan


def pair_windows(
    model: PairCNN,
    x: np.ndarray,
    method: str = "hirescam",
    lam: float | None = DEFAULT_LAMBDA,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Window (start, end; -1 without a map), in-window TF/target Pearson r and p per pair."""
    x = np.asarray(x, dtype=np.float32)
    n_samples = x.shape[-1]
    cam, _, prob = activation_maps(model, x, method=method)
    smoothed = smooth_maps(cam, lam=lam)
    starts = np.full(len(x), -1, dtype=np.int64)
    ends = np.full(len(x), -1, dtype=np.int64)
    r = np.full(len(x), np.nan)
    for i in np.flatnonzero(cam.max(axis=1) > 0):
        _, a, b = peak_window(smoothed[i])
        starts[i], ends[i] = window_to_samples(a, b, n_samples)
        r[i] = pearson(x[i, 0, starts[i] : ends[i] + 1], x[i, 1, starts[i] : ends[i] + 1])
    return starts, ends, r, prob
