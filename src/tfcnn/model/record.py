"""`TrainingRecord`: what a fitted model knows of the data it learned from.

A model is only usable beyond its weights when it remembers its inputs: the gene IDs and
sample names of its matrix (to score new pairs by name), the z-scored matrix itself (to
score without the original file), the pair set (to say which queried pairs were known
or trained on), a summary of the data, its held-out metrics and the distribution of its
training probabilities. The record is typed, written beside the weights (model.json plus
two safetensors files) and checked field by field when read: a model file is user data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ModelFormatError

#: Arrays of the pair record: gene rows of each training pair, labels, splits (0 train,
#: 1 validation, 2 test), and the codes (``tf_row * n_genes + target_row``) of every
#: known pair kept out of the negatives.
PAIR_ARRAYS = ("tf", "target", "label", "split")
PAIR_KEYS = (*PAIR_ARRAYS, "known")
_DTYPES = {"tf": np.int32, "target": np.int32, "label": np.int8, "split": np.int8}

#: model.json keys the record reads and writes (other keys are kept in ``extra``).
_JSON_FIELDS = (
    "genes",
    "samples",
    "data",
    "metrics",
    "training_distribution",
    "provenance",
    "keras",
    "evaluation",
)


@dataclass
class TrainingRecord:
    """The training data a model carries (see the module docstring)."""

    genes: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    zscores: np.ndarray | None = None  # genes x samples, float32
    pairs: dict[str, np.ndarray] | None = None  # PAIR_KEYS
    data: dict[str, Any] = field(default_factory=dict)  # pair-set summary
    metrics: dict[str, Any] = field(default_factory=dict)  # {"validation": ..., "test": ...}
    training_distribution: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None  # for imported models: where it came from
    keras: dict[str, Any] | None = None  # for models imported from Keras files
    evaluation: dict[str, Any] | None = None  # the model card: strictest protocol figures
    extra: dict[str, Any] = field(default_factory=dict)  # model.json keys of newer versions

    @property
    def caveat(self) -> str | None:
        """The input caveat an imported model carries (``provenance.caveat``), if any."""
        caveat = (self.provenance or {}).get("caveat")
        return str(caveat) if caveat else None

    @property
    def test_auroc(self) -> float | None:
        """The held-out test AUROC recorded at training time, if any."""
        value = (self.metrics.get("test") or {}).get("auroc")
        return float(value) if isinstance(value, int | float) else None

    def check(self, n_samples: int, where: str) -> None:
        """Refuse a record whose parts disagree with each other or the input width."""
        if self.zscores is not None:
            if self.zscores.shape != (len(self.genes), n_samples):
                raise ModelFormatError(
                    f"{where} holds a {self.zscores.shape} matrix but the model lists "
                    f"{len(self.genes)} genes and takes {n_samples} samples."
                )
            if self.zscores.dtype != np.float32 or not np.isfinite(self.zscores).all():
                raise ModelFormatError(f"{where}: z-scores must be finite float32.")
        if self.samples and len(self.samples) != n_samples:
            raise ModelFormatError(
                f"{where} lists {len(self.samples)} samples but the model takes {n_samples}."
            )
        if self.pairs is not None:
            check_pairs(self.pairs, len(self.genes), where)

    def to_json(self) -> dict[str, Any]:
        """The model.json fields of this record (arrays are saved separately)."""
        out: dict[str, Any] = dict(self.extra)
        for key in _JSON_FIELDS:
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if key in ("genes", "samples") else value
        return out

    @classmethod
    def from_json(cls, meta: dict[str, Any], where: str) -> TrainingRecord:
        """A record from model.json fields, every type checked."""
        rec = cls(extra={k: v for k, v in meta.items() if k not in _JSON_FIELDS})
        for key in ("genes", "samples"):
            value = meta.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ModelFormatError(
                    f"{where}: '{key}' must be a list of names; the file is damaged."
                )
            setattr(rec, key, value)
        for key in ("data", "metrics"):
            value = meta.get(key, {})
            if not isinstance(value, dict):
                raise ModelFormatError(f"{where}: '{key}' must be a JSON object.")
            setattr(rec, key, value)
        for key in ("training_distribution", "provenance", "keras", "evaluation"):
            value = meta.get(key)
            if value is not None and not isinstance(value, dict):
                raise ModelFormatError(f"{where}: '{key}' must be a JSON object.")
            setattr(rec, key, value)
        if len(set(rec.genes)) != len(rec.genes):
            raise ModelFormatError(f"{where}: 'genes' lists a gene twice; the file is damaged.")
        return rec


def pair_arrays(
    tf: np.ndarray, target: np.ndarray, label: np.ndarray, split: np.ndarray, known: np.ndarray
) -> dict[str, np.ndarray]:
    """The pair record of a model, with the dtypes its file stores."""
    out = {
        k: np.asarray(v, dtype=_DTYPES[k])
        for k, v in zip(PAIR_ARRAYS, (tf, target, label, split), strict=True)
    }
    out["known"] = np.unique(np.asarray(known, dtype=np.int64))
    return out


def check_pairs(arrays: dict[str, np.ndarray], n_genes: int, where: str) -> None:
    """Refuse a pair record whose arrays disagree or name rows outside the gene list."""
    if set(arrays) != set(PAIR_KEYS):
        raise ModelFormatError(
            f"{where} holds arrays {sorted(arrays)}; expected {sorted(PAIR_KEYS)}. The file is "
            "damaged: re-save the model."
        )
    n = arrays["tf"].shape
    for k, v in arrays.items():
        if v.ndim != 1 or v.dtype.kind not in "iu" or (k in PAIR_ARRAYS and v.shape != n):
            raise ModelFormatError(f"{where}: array {k!r} has the wrong type or length.")
    for k, hi in (("tf", n_genes), ("target", n_genes), ("label", 2), ("split", 3)):
        v = arrays[k]
        if v.size and (int(v.min()) < 0 or int(v.max()) >= hi):
            raise ModelFormatError(f"{where}: array {k!r} holds values outside [0, {hi}).")
    known = arrays["known"]
    if known.size and (int(known.min()) < 0 or int(known.max()) >= n_genes * n_genes):
        raise ModelFormatError(f"{where}: known pair codes lie outside the gene list.")


def check_finite_probabilities(p: np.ndarray) -> np.ndarray:
    """``p`` unchanged, or a clear error when a model gives NaN or infinite probabilities.

    Loading refuses non-finite weights, but finite weights can still overflow (e.g. a
    negative batch-norm variance, or huge weights on these inputs): never write a NaN score.
    """
    if not np.isfinite(p).all():
        raise ModelFormatError(
            "the model gives non-finite probabilities for some pairs: its weights are "
            "damaged (e.g. a negative batch-norm variance) or overflow on these inputs. "
            "Re-train or re-import it."
        )
    return p
