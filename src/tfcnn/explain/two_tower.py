"""Explanations for two-tower models: gradient x input per sample of each profile.

A two-tower model has no convolutional layer shared by the two profiles (each tower reads
one profile; a conv tower's map covers one profile only), so the CNN's activation map
does not apply. What is explained instead, for one pair:

* **saliency** (2, S): the gradient of the ensemble's mean logit with respect to each
  input value, times that value. Row 0 is the TF profile, read by the TF tower; row 1 is
  the target profile, read by the target tower (one tower with a role offset when
  shared). A sample with a large value drives that tower's embedding, and through the
  head the score, most.
* **activation** (S): ``|saliency|`` summed over the two rows and divided by its maximum;
  smoothed and windowed exactly as the CNN's map (Whittaker-Henderson smoothing, the
  highest peak's half-maximum window), but at sample resolution (there is no pooling).

Not explained: which embedding dimensions or head units carry the score, interactions
between the two profiles beyond the first-order gradient, and ``tfcnn explain model``
(it clusters the windows of a CNN's last conv layer, which a two-tower model does not
have: it is refused with a message).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TfcnnInputError
from .annotations import sample_annotations
from .maps import normalise_cam, peak_window, smooth_map

METHOD = "gradient-x-input"


def is_two_tower(model: Any) -> bool:
    """True for a :class:`~tfcnn.model.two_tower.TwoTower` model."""
    return getattr(model, "kind", "pair-cnn") == "two-tower"


def refuse_two_tower(model: Any, what: str) -> None:
    """Refuse a CNN-only explanation for a two-tower model, saying what is available."""
    if is_two_tower(model):
        raise TfcnnInputError(
            f"{what} reads a CNN's last convolutional layer, which a two-tower model does not "
            "have. For a two-tower model use 'tfcnn explain pair' (gradient x input per "
            "sample of each profile; docs/pair_model.md)."
        )


def explain_two_tower_pair(
    model: Any,
    x_pair: np.ndarray,
    samples: Sequence[str],
    lam: float | None,
    annotations: pd.DataFrame | None = None,
) -> Any:
    """A :class:`~tfcnn.explain.pair.PairExplanation` of one pair (2, S) of a two-tower
    model (called by :func:`tfcnn.explain.pair.explain_pair`, which checks the shapes)."""
    from .pair import PairExplanation

    saliency, prob = model.input_gradients(x_pair[None])
    activation = normalise_cam(np.abs(saliency[0]).sum(axis=0))[0]
    smoothed = smooth_map(activation, lam=lam)
    peak, start, end = peak_window(smoothed)
    names = [str(s) for s in samples]
    if annotations is None:
        annotations = sample_annotations(names)
    window = names[start : end + 1]
    return PairExplanation(
        activation=activation,
        smoothed=np.asarray(smoothed, dtype=np.float64),
        saliency=saliency[0],
        window_start=int(start),
        window_end=int(end),
        window_samples=window,
        annotations=None if annotations is None else annotations.reindex(window),
        probability=float(prob[0]),
        peak=int(peak),
        layer_activation=activation,
        method=METHOD,
        samples=names,
    )
