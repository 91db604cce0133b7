"""One pair explained: its activation map, window and the samples in it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import TfcnnInputError
from ..io.ids import normalize_id
from .annotations import annotation_summary, sample_annotations
from .maps import (
    DEFAULT_LAMBDA,
    activation_maps,
    layer_to_samples,
    peak_window,
    pearson,
    smooth_map,
    smoothed_at_samples,
    window_to_samples,
)
from .two_tower import explain_two_tower_pair, is_two_tower

if TYPE_CHECKING:
    from ..model.estimator import PairCNN


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
        return pearson(
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


def check_not_self_pair(tf: str, target: str) -> None:
    """Refuse a pair whose regulator is its target: self-pairs are never scored.

    Training, ``predict`` and ``scan`` all leave them out; a score for one would be the
    model's output on an input it never meets, not evidence of self-regulation.
    """
    if normalize_id(tf) == normalize_id(target):
        raise TfcnnInputError(
            f"`tf` and `target` are the same gene ({normalize_id(tf)}): self-pairs are never "
            "scored (training, predict and scan leave them out). Give two different genes."
        )


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
    A two-tower model is explained by gradient x input (:mod:`tfcnn.explain.two_tower`).
    """
    x_pair = np.asarray(x_pair, dtype=np.float32)
    n = x_pair.shape[-1]
    if x_pair.shape != (2, n) or len(samples) != n:
        raise TfcnnInputError(
            f"a pair is 2 x n_samples with one name per sample; got shape {x_pair.shape} and "
            f"{len(samples)} sample names."
        )
    if is_two_tower(model):
        return explain_two_tower_pair(model, x_pair, samples, lam, annotations)
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
