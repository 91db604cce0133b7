"""An explicit target prior, kept apart from the model and blended on validation TFs.

The **target-frequency prior** of a gene is how often it was the target of a *training*
positive (the same number as tfcnn's target-frequency control). It is a node-level
score: it can help a pooled ranking (hub targets) but says nothing within a target.

:class:`TargetPrior` combines it with a model's probability ``p`` by a logistic blend::

    combined = sigmoid(intercept + w_model * logit(p) + w_prior * log1p(frequency))

fitted on **validation TFs only** (pairs of the validation split whose TF is not a
training TF; :func:`tfcnn.model.two_tower.validation_mask`), never on test pairs. Every
output keeps the parts side by side: the model's probability, the prior (frequency) and
the combined probability.

``w_model`` is kept >= 0: the validation TFs are few (a handful per fold), and a blend
that turned the model's ranking upside down because of them would second-guess the
model rather than add the prior to it (measured on the bundled compendium: one fold of
five gave a negative weight and inverted a model whose test AUROC was above 0.5). When
the unconstrained fit wants ``w_model < 0``, the constrained optimum (the loss is convex)
has ``w_model = 0``: the blend is the prior alone, and ``model_weight_clamped`` says so.

A caveat measured on the bundled compendium (docs/pair_model.md): when negatives are
degree-matched over the whole pair set, a TF-held-out split is not balanced (a target with
more positives among training TFs has fewer among held-out ones), so the blend learns a
*negative* prior weight from that artefact. Read the weights the model records.

Works with either model kind: the blend's coefficients are saved in model.json ("prior")
and the frequencies are read back from the model's own training pairs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelFormatError, TfcnnInputError

if TYPE_CHECKING:
    from ..pairs import PairSet
    from .record import TrainingRecord

PRIORS = ("target-frequency",)
_EPS = 1e-6


@dataclass(frozen=True)
class TargetPrior:
    """A fitted blend of a model's probability and the target-frequency prior."""

    kind: str
    intercept: float
    weight_model: float
    weight_prior: float
    n_pairs: int  # validation pairs it was fitted on
    n_tfs: int  # their TFs (none of them a training TF)
    model_weight_clamped: bool = False  # the fit wanted w_model < 0: set to 0

    @staticmethod
    def features(probability: np.ndarray, frequency: np.ndarray) -> np.ndarray:
        """The blend's inputs: logit of the model's probability, log1p of the frequency."""
        p = np.clip(np.asarray(probability, dtype=np.float64), _EPS, 1 - _EPS)
        f = np.asarray(frequency, dtype=np.float64)
        return np.column_stack([np.log(p / (1 - p)), np.log1p(f)])

    def combine(self, probability: np.ndarray, frequency: np.ndarray) -> np.ndarray:
        """The combined probability of each pair."""
        x = self.features(probability, frequency)
        z = self.intercept + x @ np.array([self.weight_model, self.weight_prior])
        return 1.0 / (1.0 + np.exp(-z))

    @classmethod
    def fit(
        cls, probability: np.ndarray, frequency: np.ndarray, y: np.ndarray, n_tfs: int
    ) -> TargetPrior:
        """Logistic regression (L2, C = 1) of the labels on :meth:`features`, ``w_model >= 0``."""
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(y)
        if y.size == 0 or y.min() == y.max():
            raise TfcnnInputError(
                "the prior blend needs validation pairs of both classes; the validation split "
                "has " + ("none." if y.size == 0 else "only one class.")
            )
        x = cls.features(probability, frequency)
        lr = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
        intercept, (w_model, w_prior) = float(lr.intercept_[0]), lr.coef_[0]
        clamped = bool(w_model < 0)
        if clamped:  # the constrained optimum lies on w_model = 0
            lr = LogisticRegression(C=1.0, max_iter=1000).fit(x[:, 1:], y)
            intercept, w_model, w_prior = float(lr.intercept_[0]), 0.0, lr.coef_[0][0]
        return cls(
            kind="target-frequency",
            intercept=intercept,
            weight_model=float(w_model),
            weight_prior=float(w_prior),
            n_pairs=int(y.size),
            n_tfs=int(n_tfs),
            model_weight_clamped=clamped,
        )

    def to_json(self) -> dict[str, Any]:
        """model.json's "prior" object."""
        return {**asdict(self), "fitted_on": "validation TFs (not in training)"}

    @classmethod
    def from_json(cls, d: Any, where: str) -> TargetPrior:
        """A prior from model.json, every type checked (ModelFormatError naming the file)."""
        if not isinstance(d, Mapping):
            raise ModelFormatError(f"{where}: 'prior' must be a JSON object.")
        if d.get("kind") not in PRIORS:
            raise ModelFormatError(
                f"{where}: prior kind {d.get('kind')!r} is unknown (known: {', '.join(PRIORS)})."
            )
        values: dict[str, Any] = {"kind": d["kind"]}
        for key in ("intercept", "weight_model", "weight_prior"):
            v = d.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ModelFormatError(f"{where}: prior {key} must be a finite number.")
            values[key] = float(v)
        for key in ("n_pairs", "n_tfs"):
            v = d.get(key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ModelFormatError(f"{where}: prior {key} must be a whole number >= 0.")
            values[key] = v
        clamped = d.get("model_weight_clamped", False)
        if not isinstance(clamped, bool):
            raise ModelFormatError(f"{where}: prior model_weight_clamped must be true or false.")
        if values["weight_model"] < 0:
            raise ModelFormatError(f"{where}: prior weight_model must be >= 0.")
        return cls(**values, model_weight_clamped=clamped)


def model_prior(model: Any) -> TargetPrior | None:
    """The prior blend a fitted model carries (``record_.extra["prior"]``), if any."""
    record = getattr(model, "record_", None)
    raw = None if record is None else record.extra.get("prior")
    return None if raw is None else TargetPrior.from_json(raw, "the model's prior")


def target_frequency(record: TrainingRecord, targets: Sequence[str]) -> np.ndarray:
    """How often each named gene was a training positive's target in ``record`` (0: never)."""
    if record.pairs is None or not record.genes:
        raise TfcnnInputError(
            "the model does not carry its training pairs, so the target-frequency prior "
            "cannot be computed; retrain it with tfcnn."
        )
    p = record.pairs
    train_pos = (p["split"] == 0) & (p["label"] == 1)
    counts = np.bincount(p["target"][train_pos].astype(np.int64), minlength=len(record.genes))
    index = {g: i for i, g in enumerate(record.genes)}
    rows = np.array([index.get(str(t), -1) for t in targets], dtype=np.int64)
    out = np.zeros(rows.size, dtype=np.float64)
    out[rows >= 0] = counts[rows[rows >= 0]]
    return out


def fit_prior(model: Any, pairs: PairSet, kind: str = "target-frequency") -> TargetPrior:
    """Fit the blend of a model trained on ``pairs`` on its validation TFs only.

    Refused when the validation split holds no TF outside training (a random split): the
    blend would then be fitted on TFs the model already knows.
    """
    from .two_tower import validation_mask

    if kind not in PRIORS:
        raise TfcnnInputError(f"`prior` must be one of {', '.join(PRIORS)} (got {kind!r}).")
    mask, held_out = validation_mask(pairs)
    if not held_out:
        raise TfcnnInputError(
            "`prior` is fitted on validation TFs that are not training TFs, and this pair set "
            "has none (its split is not by TF); build the pairs with `split` tf-holdout."
        )
    probability = model.predict_proba(pairs.x[mask])[:, 1]
    targets = pairs.table.loc[mask, "target"].astype(str).tolist()
    frequency = target_frequency(model.record_, targets)
    n_tfs = int(np.unique(pairs.tf_rows[mask]).size)
    return TargetPrior.fit(probability, frequency, pairs.labels[mask], n_tfs)
