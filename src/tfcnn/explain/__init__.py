"""Explain predictions: which samples drove a pair's score, and which patterns a model uses.

Per pair (:func:`explain_pair`):

1. **Activation map** on the last convolutional block
   (:meth:`~tfcnn.model.network.PairCNNNetwork.features`, shape ``(f2, 1, W // 2)``), from the
   gradient ``g`` of the output with respect to that block's activations ``A``:

   * ``gradcam`` (the study's class activation map): ``g`` is averaged per channel over
     positions, the averages weight the channels, the weighted channels are averaged;
   * ``hirescam`` (default): each position's own gradient weights the activation there,
     ``mean_k g[k, j] * A[k, j]`` (HiResCAM, Draelos & Carin 2020).

   Both are then scaled: negatives set to 0, divided by the maximum (a map with no
   positive value stays all zero). The gradient is of the logit; the sigmoid output
   would multiply every gradient by the same positive factor, which the division by the
   maximum cancels. Why ``hirescam`` is the default: the network's dense head weights
   every position separately, so a channel-mean gradient credits a channel wherever it
   is active, including where the head ignores it. On synthetic pairs co-expressed only
   inside a known block (tests/test_explain.py), Grad-CAM put the peak at the first
   columns, where 'same' zero padding makes some channels fire for every pair, and its
   windows overlapped the block for only 18-64% of confident positives; ``hirescam``
   windows overlapped it for 86-90% (docs/explain.md gives the measurements).
2. **Gradient x input saliency** (for comparison): d logit / d input times the input,
   shape ``(2, S)``.
3. **Smoothing**: a discrete cubic smoothing spline (Whittaker-Henderson: the smoothing
   spline's second-derivative roughness penalty on equally spaced columns) through the
   map at the layer's resolution (:func:`smooth_maps`), all maps solved at once (scipy's
   ``make_smoothing_spline`` takes ~24 ms per map: minutes for a model's pairs). The
   penalty is ``DEFAULT_LAMBDA`` = 10 (equivalent kernel half-width about
   ``10 ** 0.25`` = 1.8 layer columns, 3.6 samples, close to the last layer's receptive
   field) or, with ``lam=None``, chosen per map by generalised cross-validation. GCV is
   not the default: on the nitrogen model's spiky maps it picks near-flat curves and
   windows of ~70 of 131 samples, hiding where the map's mass is (docs/explain.md).
   Layers narrower than 5 columns are not smoothed.
4. **Window**: the highest peak of the smoothed map and its extent, the contiguous run of
   layer columns around the peak whose smoothed value is at least half the peak's height
   above the curve's minimum (``value >= min + 0.5 * (peak - min)``: full width at half
   maximum). A flat map gives the whole profile.
5. **Back to samples**: the last conv layer has half the input width (a 2x2 max-pool,
   floored). Layer column ``j`` covers input columns ``2j`` and ``2j + 1``; with an odd
   width the last input column belongs to no pooled column and is given the last
   column's value (and joins a window that ends at the last column).

Per model (:func:`explain_model`): every positive training pair's window is cut from
its TF and target profiles, linearly resampled to a common length, clustered with
k-means (k = 3 by default, as the study; a PCA scree tells whether k is sensible), and
summarised per cluster: mean TF and target profiles, and the TF-vs-target Pearson
correlation inside the windows. It also counts which samples (and, when the sample
sheet is known, which treatments) the windows fall in.

Sample annotations come from :func:`sample_annotations`, a small lookup over the
bundled sample sheets (nitrogen compendium conditions, AtGenExpress GSM ids).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..errors import TfcnnInputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..model.estimator import PairCNN

log = logging.getLogger(__name__)

ANNOTATION_FIELDS = ("group", "treatment", "tissue", "time")
CAM_METHODS = ("hirescam", "gradcam")


# -- activation maps ----------------------------------------------------------------------
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
    net = model._check_fitted()
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
            h.retain_grad()
            logits = net.head(h)
            logits.sum().backward()
        grads = h.grad.detach()  # (B, f2, 1, W2)
        if method == "gradcam":
            grads = grads.mean(dim=(2, 3), keepdim=True)  # per-channel mean gradient
        raw = (grads * h.detach()).mean(dim=1)[:, 0, :]  # mean over channels -> (B, W2)
        cam[start : start + len(xb)] = normalise_cam(raw.double().numpy())
        saliency[start : start + len(xb)] = (xb.grad.detach() * xb.detach()).double().numpy()
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


# -- sample annotations --------------------------------------------------------------------
def sample_annotations(samples: Sequence[str]) -> pd.DataFrame | None:
    """Annotations for sample names from a bundled sample sheet, or None if none fits.

    Returns a frame indexed by ``samples`` with columns ``source`` and the subset of
    ``group``, ``treatment``, ``tissue``, ``time`` the sheet provides (unknown samples:
    missing values). Sheets are tried in order; the first matching at least half of the
    names wins:

    * ``nitrogen-meta`` (the nitrogen compendium; names are its ``condName``):
      ``group`` is the name's series prefix (``SS_N``, ``SS_C``, ``TS_N``, ``TS_C``),
      ``treatment`` is ``steady-state`` / ``time-series`` (column ``isTs``) and, for
      time series, ``time`` is the cumulative ``del.t`` since the series' first
      condition (units as distributed).
    * ``atgenexpress-samples`` (names are GSM ids): ``treatment`` (or, where empty,
      ``source``), ``tissue`` and ``time`` (hours) as in the sheet; duplicated GSM ids
      keep their first complete row.
    """
    names = [str(s) for s in samples]
    for loader in (_nitrogen_sheet, _atgenexpress_sheet):
        sheet = loader()
        if sheet is None:
            continue
        hits = sum(n in sheet.index for n in names)
        if names and hits * 2 >= len(names):
            return sheet.reindex(names)
    return None


def _nitrogen_sheet() -> pd.DataFrame | None:
    from ..io.datasets import dataset_path

    try:
        meta = pd.read_csv(dataset_path("nitrogen-meta"), sep="\t", dtype=str)
    except (TfcnnInputError, OSError):  # pragma: no cover - broken installation
        return None
    meta = meta.drop_duplicates("condName").set_index("condName")
    group = pd.Series(
        [re.sub(r"(_\d+)+$", "", str(n)) for n in meta.index], index=meta.index, dtype=object
    )
    is_ts = meta["isTs"].str.upper().eq("TRUE")
    time = pd.Series(np.nan, index=meta.index)
    for name in meta.index[is_ts]:  # walk prevCol back to the series' first condition
        t, cur, seen = 0.0, name, set()
        while cur in meta.index and cur not in seen:
            seen.add(cur)
            prev, dt = meta.at[cur, "prevCol"], meta.at[cur, "del.t"]
            if not isinstance(prev, str) or prev == "NA":
                break
            t += float(dt)
            cur = prev
        time[name] = t
    return pd.DataFrame(
        {
            "source": "nitrogen-meta",
            "group": group,
            "treatment": np.where(is_ts, "time-series", "steady-state"),
            "time": time,
        },
        index=meta.index,
    )


def _atgenexpress_sheet() -> pd.DataFrame | None:
    from ..io.datasets import dataset_path

    try:
        sheet = pd.read_csv(dataset_path("atgenexpress-samples"), dtype=str)
    except (TfcnnInputError, OSError, pd.errors.ParserError):  # pragma: no cover
        return None
    if "sample_id" not in sheet:  # pragma: no cover - unexpected file
        return None
    sheet["sample_id"] = sheet["sample_id"].str.strip()
    treatment = sheet["treatment"].where(sheet["treatment"].notna(), sheet["source"])
    out = pd.DataFrame(
        {
            "source": "atgenexpress-samples",
            "treatment": treatment,
            "tissue": sheet["tissue"],
            "time": pd.to_numeric(sheet["time"], errors="coerce"),
            "_missing": sheet[["treatment", "tissue", "time"]].isna().sum(axis=1),
        }
    )
    out.index = sheet["sample_id"]
    out = out.sort_values("_missing", kind="stable")
    out = out[~out.index.duplicated(keep="first")].drop(columns="_missing")
    return out


# -- per pair --------------------------------------------------------------------------------
@dataclass
class PairExplanation:
    """Why the model scored one pair as it did; windows are inclusive sample indices."""

    activation: np.ndarray  # (S,) Grad-CAM in [0, 1], mapped to sample columns
    smoothed: np.ndarray  # (S,) smoothed map at sample positions
    saliency: np.ndarray  # (2, S) gradient x input (row 0 TF, row 1 target)
    window_start: int
    window_end: int
    window_samples: list[str]
    annotations: pd.DataFrame | None  # annotations of the window's samples, if known
    probability: float = math.nan
    peak: int = 0  # sample index of the peak (first sample of the peak column)
    layer_activation: np.ndarray = field(default_factory=lambda: np.zeros(0))
    method: str = "hirescam"
    samples: list[str] = field(default_factory=list)

    @property
    def window_length(self) -> int:
        return self.window_end - self.window_start + 1

    def window_correlation(self, x_pair: np.ndarray) -> float:
        """Pearson r of TF vs target inside the window (NaN if undefined)."""
        return _pearson(
            x_pair[0, self.window_start : self.window_end + 1],
            x_pair[1, self.window_start : self.window_end + 1],
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready description of the window."""
        out: dict[str, Any] = {
            "probability": self.probability,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "window_samples": list(self.window_samples),
        }
        if self.annotations is not None:
            out["annotations"] = annotation_summary(self.annotations)
        return out


def _window(
    cam_layer: np.ndarray, n_samples: int, lam: float | None
) -> tuple[np.ndarray, int, int, int]:
    """Smoothed layer curve and the sample window (peak, start, end) of one map."""
    smooth = smooth_map(cam_layer, lam=lam)
    peak, a, b = peak_window(smooth)
    start, end = window_to_samples(a, b, n_samples)
    return smooth, 2 * peak, start, end


def explain_pair(
    model: PairCNN,
    x_pair: np.ndarray,
    samples: Sequence[str],
    lam: float | None = DEFAULT_LAMBDA,
    annotations: pd.DataFrame | None = None,
    method: str = "hirescam",
) -> PairExplanation:
    """Explain one pair: x_pair (2, S) z-scored TF (row 0) and target (row 1) profiles.

    ``annotations`` (indexed by sample name) defaults to :func:`sample_annotations`.
    """
    x_pair = np.asarray(x_pair, dtype=np.float32)
    n = x_pair.shape[-1]
    if x_pair.shape != (2, n) or len(samples) != n:
        raise TfcnnInputError(
            f"a pair is 2 x n_samples with one name per sample; got shape {x_pair.shape} and "
            f"{len(samples)} sample names."
        )
    cam, sal, prob = activation_maps(model, x_pair[None], method=method)
    smooth_layer, peak, start, end = _window(cam[0], n, lam)
    names = [str(s) for s in samples]
    if annotations is None:
        annotations = sample_annotations(names)
    window_names = names[start : end + 1]
    return PairExplanation(
        activation=layer_to_samples(cam[0], n),
        smoothed=smoothed_at_samples(smooth_layer, n),
        saliency=sal[0],
        window_start=start,
        window_end=end,
        window_samples=window_names,
        annotations=None if annotations is None else annotations.reindex(window_names),
        probability=float(prob[0]),
        peak=peak,
        layer_activation=cam[0],
        samples=names,
        method=method,
    )


def annotation_summary(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Counts of each annotation value (group, treatment, tissue, time) in ``frame``."""
    out: dict[str, dict[str, int]] = {}
    for col in ANNOTATION_FIELDS:
        if col in frame:
            counts = frame[col].dropna().astype(str).value_counts()
            if len(counts):
                out[col] = {k: int(v) for k, v in counts.items()}
    return out


def plot_pair(
    explanation: PairExplanation, x_pair: np.ndarray, tf_id: str, target_id: str
) -> Figure:
    """Two profiles with the window shaded, and the activation curves under them."""
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    e = explanation
    n = x_pair.shape[-1]
    cols = np.arange(n)
    labelled = n <= 60 and bool(e.samples)  # sample names as ticks need a layout engine
    fig = Figure(figsize=(10, 5.5), layout="constrained" if labelled else None)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    if not labelled:
        # Fixed margins: a layout engine costs ~0.1 s per figure (the web app draws one
        # per selected pair); the placeholder keeps Shiny from imposing 'tight' layout.
        fig.subplots_adjust(left=0.07, right=0.985, bottom=0.09, top=0.94, hspace=0.06)
        fig.set_layout_engine(PlaceHolderLayoutEngine(True, True))
    for ax in (top, bottom):
        ax.axvspan(e.window_start - 0.5, e.window_end + 0.5, color="gold", alpha=0.3, lw=0)
    top.plot(cols, x_pair[0], color="tab:blue", lw=1.2, label=f"TF {tf_id}")
    top.plot(cols, x_pair[1], color="tab:red", lw=1.2, label=f"target {target_id}")
    r_in = e.window_correlation(np.asarray(x_pair))
    top.set_ylabel("z-score")
    top.set_title(
        f"{tf_id} -> {target_id}: p = {e.probability:.3f}; window "
        f"{e.window_samples[0]} .. {e.window_samples[-1]} ({e.window_length} samples, "
        f"r inside = {r_in:.2f})",
        fontsize=10,
    )
    top.legend(loc="upper right", fontsize=8)
    bottom.step(
        cols, e.activation, where="mid", color="0.5", lw=1, label=f"activation map ({e.method})"
    )
    bottom.plot(cols, e.smoothed, color="black", lw=1.5, label="smoothed")
    sal = np.abs(e.saliency).sum(axis=0)
    if sal.max() > 0:
        bottom.plot(
            cols,
            sal / sal.max(),
            color="tab:green",
            lw=0.8,
            alpha=0.7,
            label="|gradient x input| (scaled)",
        )
    bottom.set_ylabel("activation")
    bottom.set_xlabel("sample column")
    bottom.set_ylim(-0.05, 1.1)
    bottom.legend(loc="upper right", fontsize=8)
    if n <= 60 and e.samples:
        bottom.set_xticks(cols, e.samples, rotation=90, fontsize=6)
    return fig


# -- per model -------------------------------------------------------------------------------
@dataclass
class ModelExplanation:
    """Windows of many pairs, their clusters and where in the samples they fall."""

    windows: pd.DataFrame  # one row per pair: tf, target, probability, window, r, cluster
    profiles: np.ndarray  # (N, 2, L) resampled TF/target windows
    length: int
    explained_variance: np.ndarray  # PCA scree: ratio per component
    clusters: list[dict[str, Any]]
    sample_counts: pd.DataFrame  # per sample: windows covering it (+ annotations)
    window_counts: dict[str, Any]
    samples: list[str]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64) - np.mean(a)
    b = np.asarray(b, dtype=np.float64) - np.mean(b)
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / den) if den > 0 else math.nan


def resample(segment: np.ndarray, length: int) -> np.ndarray:
    """Linear resampling of the last axis to ``length`` points (end points kept)."""
    segment = np.asarray(segment, dtype=np.float64)
    m = segment.shape[-1]
    if m == 1:
        return np.repeat(segment, length, axis=-1)
    src = np.linspace(0.0, 1.0, m)
    dst = np.linspace(0.0, 1.0, length)
    flat = segment.reshape(-1, m)
    return np.stack([np.interp(dst, src, row) for row in flat]).reshape(*segment.shape[:-1], length)


def explain_model(
    model: PairCNN,
    x: np.ndarray,
    samples: Sequence[str],
    pairs: pd.DataFrame | None = None,
    k: int = 3,
    seed: int = 0,
    length: int | None = None,
    lam: float | None = DEFAULT_LAMBDA,
    annotations: pd.DataFrame | None = None,
    max_components: int = 10,
    method: str = "hirescam",
) -> ModelExplanation:
    """Windows of pairs ``x`` (N, 2, S), clustered with k-means; see the module docstring.

    ``pairs`` (optional, N rows with ``tf`` and ``target``) names the pairs. ``length``
    is the common window length (default: the median window length, at least 4).
    Pairs whose activation map has no positive value have no window: they are counted
    (``window_counts["no_activation"]``) and left out of the clusters.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    x = np.asarray(x, dtype=np.float32)
    n_pairs, n_samples = x.shape[0], x.shape[-1]
    names = [str(s) for s in samples]
    if len(names) != n_samples:
        raise TfcnnInputError(f"{len(names)} sample names for {n_samples} columns.")
    if k < 1:
        raise TfcnnInputError(f"k must be at least 1 (got {k}).")
    starts, ends, r_all, prob = pair_windows(model, x, method=method, lam=lam)
    has_map = starts >= 0
    keep = np.flatnonzero(has_map)
    if len(keep) < k:
        raise TfcnnInputError(
            f"only {len(keep)} of {n_pairs} pairs have an activation window; k-means with "
            f"k = {k} needs at least {k}. Give more pairs or a smaller --k."
        )
    lengths = ends - starts + 1
    if length is None:
        length = max(4, int(np.median(lengths[keep])))
    profiles = np.stack([resample(x[i, :, starts[i] : ends[i] + 1], length) for i in keep])
    r_window = np.array(
        [_pearson(x[i, 0, starts[i] : ends[i] + 1], x[i, 1, starts[i] : ends[i] + 1]) for i in keep]
    )
    features = profiles.reshape(len(keep), -1)
    n_comp = min(max_components, features.shape[0], features.shape[1])
    pca = PCA(n_components=n_comp, random_state=seed).fit(features)
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(features)
    # Number clusters by size (largest first) so labels do not depend on k-means' order.
    order = np.argsort(-np.bincount(km.labels_, minlength=k), kind="stable")
    relabel = np.empty(k, dtype=np.int64)
    relabel[order] = np.arange(k)
    labels = relabel[km.labels_]

    if annotations is None:
        annotations = sample_annotations(names)
    clusters = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        tf_vals = np.concatenate(
            [x[keep[m], 0, starts[keep[m]] : ends[keep[m]] + 1] for m in members]
        )
        tg_vals = np.concatenate(
            [x[keep[m], 1, starts[keep[m]] : ends[keep[m]] + 1] for m in members]
        )
        rs = r_window[members]
        finite = rs[np.isfinite(rs)]
        mean_tf = profiles[members, 0].mean(axis=0)
        mean_tg = profiles[members, 1].mean(axis=0)
        cover = np.zeros(n_samples, dtype=np.int64)
        for m in members:
            cover[starts[keep[m]] : ends[keep[m]] + 1] += 1
        clusters.append(
            {
                "cluster": c,
                "n_pairs": len(members),
                "mean_probability": float(prob[keep[members]].mean()),
                "median_window_length": float(np.median(lengths[keep[members]])),
                "pooled_r": _pearson(tf_vals, tg_vals),
                "median_pair_r": float(np.median(finite)) if finite.size else math.nan,
                "fraction_pairs_r_positive": float((finite > 0).mean())
                if finite.size
                else math.nan,
                "mean_profile_r": _pearson(mean_tf, mean_tg),
                "mean_tf": mean_tf.tolist(),
                "mean_target": mean_tg.tolist(),
                "top_samples": _top(cover, names, 5),
            }
        )

    table = pd.DataFrame(
        {
            "tf": pairs["tf"].to_numpy() if pairs is not None else np.arange(n_pairs),
            "target": pairs["target"].to_numpy() if pairs is not None else np.arange(n_pairs),
            "probability": prob,
        }
    )
    table["window_start"] = np.where(has_map, starts, -1)
    table["window_end"] = np.where(has_map, ends, -1)
    table["window_length"] = np.where(has_map, lengths, 0)
    table["first_sample"] = [names[s] if h else "" for s, h in zip(starts, has_map, strict=True)]
    table["last_sample"] = [names[e] if h else "" for e, h in zip(ends, has_map, strict=True)]
    table["window_r"] = r_all
    cl = np.full(n_pairs, -1, dtype=np.int64)
    cl[keep] = labels
    table["cluster"] = cl

    coverage = np.zeros(n_samples, dtype=np.int64)
    for i in keep:
        coverage[starts[i] : ends[i] + 1] += 1
    sample_counts = pd.DataFrame({"sample": names, "windows": coverage})
    sample_counts["fraction_of_pairs"] = coverage / max(len(keep), 1)
    if annotations is not None:
        ann = annotations.reindex(names)
        for col in ANNOTATION_FIELDS:
            if col in ann:
                sample_counts[col] = ann[col].to_numpy()
    window_counts: dict[str, Any] = {
        "n_pairs": n_pairs,
        "with_window": len(keep),
        "no_activation": int(n_pairs - len(keep)),
        "median_window_length": float(np.median(lengths[keep])),
        "samples": dict(zip(names, coverage.tolist(), strict=True)),
    }
    if annotations is not None:
        window_counts.update(_group_counts(annotations.reindex(names), starts[keep], ends[keep]))
    return ModelExplanation(
        windows=table,
        profiles=profiles,
        length=length,
        explained_variance=pca.explained_variance_ratio_,
        clusters=clusters,
        sample_counts=sample_counts,
        window_counts=window_counts,
        samples=names,
    )


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
        r[i] = _pearson(x[i, 0, starts[i] : ends[i] + 1], x[i, 1, starts[i] : ends[i] + 1])
    return starts, ends, r, prob


def correlation_summary(r: np.ndarray) -> dict[str, float | int]:
    """Median and share of positive in-window correlations (NaNs left out)."""
    r = np.asarray(r, dtype=np.float64)
    r = r[np.isfinite(r)]
    return {
        "n": int(r.size),
        "median_r": float(np.median(r)) if r.size else math.nan,
        "fraction_r_positive": float((r > 0).mean()) if r.size else math.nan,
    }


def _top(cover: np.ndarray, names: list[str], n: int) -> list[dict[str, Any]]:
    idx = np.argsort(-cover, kind="stable")[:n]
    return [{"sample": names[i], "windows": int(cover[i])} for i in idx if cover[i] > 0]


def _group_counts(ann: pd.DataFrame, starts: np.ndarray, ends: np.ndarray) -> dict[str, Any]:
    """Per annotation field and value: windows touching it, and its samples' share.

    ``windows``: how many windows include at least one sample with that value;
    ``samples``: how many samples carry it (to compare against: a value with many
    samples is touched by chance more often).
    """
    out: dict[str, Any] = {}
    for col in ("group", "treatment", "tissue"):
        if col not in ann or ann[col].isna().all():
            continue
        values = ann[col].astype(object).where(ann[col].notna(), "unknown").astype(str).to_numpy()
        kinds = sorted(set(values))
        touched = dict.fromkeys(kinds, 0)
        for s, e in zip(starts, ends, strict=True):
            for v in set(values[s : e + 1]):
                touched[v] += 1
        out[f"by_{col}"] = {
            v: {"windows": touched[v], "samples": int((values == v).sum())} for v in kinds
        }
    return out


# -- model-level figures ---------------------------------------------------------------------
SCREE_CAPTION = (
    "PCA scree of the resampled windows (TF and target concatenated): share of variance "
    "per component. An elbow at component k suggests k clusters."
)
PROFILES_CAPTION = (
    "Mean TF (blue) and target (red) profile of each of the {k} k-means clusters of "
    "windows, resampled to a common length; shading is +/- 1 SD. r = correlation of the "
    "two mean profiles; n = pairs."
)
SCATTER_CAPTION = (
    "TF vs target z-scores inside each cluster's windows (all window samples of all "
    "pairs in the cluster, subsampled for drawing); pooled Pearson r and the median of "
    "the per-pair r in the title (the study's Figure 5)."
)
COVERAGE_CAPTION = (
    "How many pairs' windows cover each sample (bars, coloured by sample group where "
    "the sample sheet is known). Samples that many windows share drive many predictions."
)


def plot_scree(ex: ModelExplanation) -> Figure:
    """Explained variance ratio per principal component (with the cumulative share)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    comps = np.arange(1, len(ex.explained_variance) + 1)
    ax.bar(comps, ex.explained_variance, color="tab:blue", label="per component")
    ax.plot(comps, np.cumsum(ex.explained_variance), "o-", color="black", label="cumulative")
    ax.set_xlabel("principal component")
    ax.set_ylabel("share of variance")
    ax.set_xticks(comps)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title(f"PCA of {len(ex.profiles):,} windows (length {ex.length})", fontsize=10)
    return fig


def plot_cluster_profiles(ex: ModelExplanation) -> Figure:
    """Mean TF and target window profile per cluster, +/- 1 SD."""
    from matplotlib.figure import Figure

    k = len(ex.clusters)
    labels = ex.windows.loc[ex.windows["cluster"] >= 0, "cluster"].to_numpy()
    fig = Figure(figsize=(3.6 * k, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, k, sharey=True))
    pos = np.arange(ex.length)
    for ax, c in zip(axes, ex.clusters, strict=True):
        members = ex.profiles[labels == c["cluster"]]
        for row, color, name in ((0, "tab:blue", "TF"), (1, "tab:red", "target")):
            mean, sd = members[:, row].mean(axis=0), members[:, row].std(axis=0)
            ax.plot(pos, mean, color=color, lw=1.5, label=name)
            ax.fill_between(pos, mean - sd, mean + sd, color=color, alpha=0.15, lw=0)
        ax.set_title(
            f"cluster {c['cluster']}: n = {c['n_pairs']:,}, r = {c['mean_profile_r']:.2f}",
            fontsize=9,
        )
        ax.set_xlabel("position in window (resampled)")
    axes[0].set_ylabel("z-score")
    axes[0].legend(fontsize=8)
    return fig


def plot_cluster_scatter(ex: ModelExplanation, x: np.ndarray, max_points: int = 4000) -> Figure:
    """TF vs target values inside each cluster's windows, with pooled and per-pair r."""
    from matplotlib.figure import Figure

    k = len(ex.clusters)
    fig = Figure(figsize=(3.4 * k, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, k, sharex=True, sharey=True))
    w = ex.windows
    rng = np.random.default_rng(0)
    for ax, c in zip(axes, ex.clusters, strict=True):
        rows = np.flatnonzero(w["cluster"].to_numpy() == c["cluster"])
        tf_vals = np.concatenate(
            [x[i, 0, w.at[i, "window_start"] : w.at[i, "window_end"] + 1] for i in rows]
        )
        tg_vals = np.concatenate(
            [x[i, 1, w.at[i, "window_start"] : w.at[i, "window_end"] + 1] for i in rows]
        )
        if tf_vals.size > max_points:
            pick = rng.choice(tf_vals.size, max_points, replace=False)
            tf_vals, tg_vals = tf_vals[pick], tg_vals[pick]
        ax.scatter(tf_vals, tg_vals, s=3, alpha=0.3, color="tab:purple", lw=0)
        ax.axhline(0, color="0.8", lw=0.5)
        ax.axvline(0, color="0.8", lw=0.5)
        ax.set_title(
            f"cluster {c['cluster']}: pooled r = {c['pooled_r']:.2f}\n"
            f"median pair r = {c['median_pair_r']:.2f}",
            fontsize=9,
        )
        ax.set_xlabel("TF z-score")
    axes[0].set_ylabel("target z-score")
    return fig


def plot_coverage(ex: ModelExplanation) -> Figure:
    """Windows covering each sample, coloured by group (or treatment) when known."""
    from matplotlib.figure import Figure

    sc = ex.sample_counts
    n = len(sc)
    fig = Figure(figsize=(max(8, min(0.12 * n, 24)), 4), layout="constrained")
    ax = fig.subplots()
    colour_by = next((c for c in ("group", "treatment") if c in sc and sc[c].notna().any()), None)
    if colour_by is None:
        ax.bar(np.arange(n), sc["windows"], color="tab:blue", width=1.0)
    else:
        import matplotlib as mpl

        values = sc[colour_by].astype(object).where(sc[colour_by].notna(), "unknown").astype(str)
        kinds = list(dict.fromkeys(values))
        cmap = mpl.colormaps["tab20"]
        for j, kind in enumerate(kinds):
            idx = np.flatnonzero(values.to_numpy() == kind)
            ax.bar(idx, sc["windows"].to_numpy()[idx], color=cmap(j % 20), width=1.0, label=kind)
        ax.legend(fontsize=7, ncol=min(len(kinds), 6), title=colour_by, title_fontsize=7)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_xlabel("sample column")
    ax.set_ylabel("windows covering the sample")
    ax.set_title(
        f"Where the windows of {ex.window_counts['with_window']:,} pairs fall", fontsize=10
    )
    if n <= 140:
        ax.set_xticks(np.arange(n), sc["sample"], rotation=90, fontsize=5)
    return fig
