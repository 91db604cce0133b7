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

Modules: :mod:`~tfcnn.explain.maps` (activation maps, smoothing, windows),
:mod:`~tfcnn.explain.annotations` (sample sheets), :mod:`~tfcnn.explain.pair` (one pair),
:mod:`~tfcnn.explain.clusters` (a model's windows, clustered),
:mod:`~tfcnn.explain.two_tower` (two-tower models: gradient x input per profile; no
activation map, no ``explain model``),
:mod:`~tfcnn.explain.plots` (figures) and :mod:`~tfcnn.explain.report` (the folder that
``tfcnn explain model`` writes).
"""

from __future__ import annotations

from .annotations import ANNOTATION_FIELDS, annotation_summary, sample_annotations
from .clusters import ModelExplanation, correlation_summary, explain_model, resample
from .maps import (
    CAM_METHODS,
    DEFAULT_LAMBDA,
    LAMBDA_GRID,
    activation_maps,
    layer_to_samples,
    normalise_cam,
    pair_windows,
    peak_window,
    pearson,
    smooth_map,
    smooth_maps,
    smoothed_at_samples,
    window_to_samples,
)
from .pair import PairExplanation, check_not_self_pair, explain_pair
from .plots import (
    COVERAGE_CAPTION,
    PLOT_FORMATS,
    PROFILES_CAPTION,
    SCATTER_CAPTION,
    SCREE_CAPTION,
    plot_cluster_profiles,
    plot_cluster_scatter,
    plot_coverage,
    plot_format,
    plot_pair,
    plot_scree,
    save_figure,
)
from .report import EXPLAIN_JSON, check_options, explain_pair_set, write_model_explanation

__all__ = [
    "ANNOTATION_FIELDS",
    "CAM_METHODS",
    "COVERAGE_CAPTION",
    "DEFAULT_LAMBDA",
    "EXPLAIN_JSON",
    "LAMBDA_GRID",
    "PROFILES_CAPTION",
    "SCATTER_CAPTION",
    "SCREE_CAPTION",
    "PLOT_FORMATS",
    "ModelExplanation",
    "PairExplanation",
    "activation_maps",
    "annotation_summary",
    "check_not_self_pair",
    "check_options",
    "correlation_summary",
    "explain_model",
    "explain_pair",
    "explain_pair_set",
    "layer_to_samples",
    "normalise_cam",
    "pair_windows",
    "peak_window",
    "pearson",
    "plot_cluster_profiles",
    "plot_cluster_scatter",
    "plot_coverage",
    "plot_format",
    "plot_pair",
    "plot_scree",
    "resample",
    "sample_annotations",
    "save_figure",
    "smooth_map",
    "smooth_maps",
    "smoothed_at_samples",
    "window_to_samples",
    "write_model_explanation",
]
