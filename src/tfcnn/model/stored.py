"""Reading a model directory as data, without PyTorch or scikit-learn.

:func:`~tfcnn.model.files.load_model` builds the estimator and its PyTorch network from
what this module reads and checks: ``model.json`` (:func:`read_model_json`), the weights
against the shapes the architecture names (:func:`read_weights`) and the training record
with its arrays (:func:`read_record`). :func:`load_stored_cnn` stops there: a
:class:`StoredCNN` holds a pair CNN's architecture, weights and record, which is all the
fused kernel (:mod:`tfcnn.inference.fused`) needs to score. Importing torch and
scikit-learn costs a process about 3-5 s, so `tfcnn scan` with the fused kernel reads its
model this way.

The checks are the same either way: no path written in model.json is ever opened, every
type and size is checked before anything is allocated, weights must be finite float32
(batch-norm variances non-negative), and a damaged or hostile file is refused with a
message naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy

from ..errors import ModelFormatError
from ..io.manifest import read_manifest
from .config import CNNConfig
from .prior import TargetPrior
from .record import PAIR_KEYS, TrainingRecord, check_pairs

MODEL_FORMAT = "tfcnn-model"
MODEL_FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "model.json"
EXPRESSION_FILE = "expression.safetensors"
PAIRS_FILE = "pairs.safetensors"

#: model.json's keys that are not fields of the training record.
RESERVED_KEYS = (
    "format",
    "format_version",
    "tfcnn_version",
    "architecture",
    "training",
    "history",
)
KINDS = ("pair-cnn", "two-tower")


def architecture_kind(architecture: dict[str, Any], where: str = "model.json") -> str:
    """The model kind an architecture object names ("pair-cnn" when it names none)."""
    kind = architecture.get("kind", "pair-cnn")
    if kind not in KINDS:
        raise ModelFormatError(
            f"{where}: architecture kind {kind!r} is unknown (known: {', '.join(KINDS)}); "
            "it may come from a newer tfcnn."
        )
    return str(kind)


def cnn_config(architecture: dict[str, Any]) -> CNNConfig:
    """The pair CNN's configuration of an architecture object (ValueError if invalid)."""
    return CNNConfig.from_dict({k: v for k, v in architecture.items() if k != "kind"})


def architecture_width(architecture: dict[str, Any]) -> int:
    """Input width (samples) an architecture object declares, checked without weights."""
    if architecture_kind(architecture) == "two-tower":
        from .two_tower import TwoTowerConfig

        return TwoTowerConfig.from_dict(architecture).n_samples
    return cnn_config(architecture).n_samples


def read_model_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """model.json of a model directory, checked to be a tfcnn model of a known version."""
    path = Path(path)
    if not path.exists():
        raise ModelFormatError(f"model {path} does not exist.")
    if not path.is_dir():
        raise ModelFormatError(
            f"{path} is a file, not a tfcnn model: a model is a directory holding "
            f"{META_FILE} and {WEIGHTS_FILE}. Other formats (pickle, .pt, .h5) are "
            "never loaded."
        )
    for name in (META_FILE, WEIGHTS_FILE):
        if not (path / name).is_file():
            raise ModelFormatError(f"model {path} has no {name}; is it a tfcnn model?")
    meta = read_manifest(
        path / META_FILE, MODEL_FORMAT, MODEL_FORMAT_VERSION, "tfcnn model", ModelFormatError
    )
    for key in ("architecture", "training"):
        if not isinstance(meta.get(key), dict):
            raise ModelFormatError(
                f"{path / META_FILE}: '{key}' must be a JSON object (got "
                f"{type(meta.get(key)).__name__}); the file is damaged. Re-save or "
                "re-download the model."
            )
    return meta


def _load(path: Path, what: str) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file, or a message saying it cannot be read."""
    try:
        return load_numpy(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFormatError(
            f"{path} is not a readable {what} file ({exc}); it may be truncated. Re-save or "
            "re-download the model."
        ) from exc


def read_weights(
    weights_path: Path, expected: Mapping[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    """The weights, checked against the architecture's ``expected`` shapes: names,
    shapes, finite float32 values, non-negative batch-norm variances."""
    arrays = _load(weights_path, "safetensors")
    got = {k: tuple(v.shape) for k, v in arrays.items()}
    if got != dict(expected):
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
        raise ModelFormatError(
            f"{weights_path} does not match the architecture in {META_FILE}: "
            f"missing {missing}, unexpected {extra}, wrong shape {wrong}."
        )
    for k, v in arrays.items():
        if v.dtype != np.float32 or not np.isfinite(v).all():
            raise ModelFormatError(f"{weights_path}: tensor {k} is not finite float32.")
        if k.endswith("running_var") and (v < 0).any():
            raise ModelFormatError(
                f"{weights_path}: tensor {k} has negative variances; the model would give "
                "no probabilities. Re-train or re-import it."
            )
    return arrays


def read_arrays(path: Path, keys: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """A safetensors file of exactly the arrays ``keys`` (``what`` names it in messages)."""
    arrays = _load(path, what)
    if set(arrays) != set(keys):
        raise ModelFormatError(
            f"{path} holds arrays {sorted(arrays)}; expected {sorted(keys)}. Re-save the model."
        )
    return arrays


def read_record(
    path: Path, meta: dict[str, Any], n_samples: int
) -> tuple[TrainingRecord, list[dict[str, Any]]]:
    """The training record of a model directory (with its matrix and pairs when saved)
    and the per-epoch history, checked against the model's width ``n_samples``."""
    meta_path = path / META_FILE
    history = meta.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise ModelFormatError(f"{meta_path}: 'history' must be a list of objects.")
    record = TrainingRecord.from_json(
        {k: v for k, v in meta.items() if k not in RESERVED_KEYS}, str(meta_path)
    )
    if "prior" in record.extra:
        TargetPrior.from_json(record.extra["prior"], str(meta_path))
    if (path / EXPRESSION_FILE).exists():
        record.zscores = read_arrays(path / EXPRESSION_FILE, ("zscores",), "expression")["zscores"]
    if (path / PAIRS_FILE).exists():
        record.pairs = read_arrays(path / PAIRS_FILE, PAIR_KEYS, "pairs")
        check_pairs(record.pairs, len(record.genes), str(path / PAIRS_FILE))
    record.check(n_samples, str(path / EXPRESSION_FILE))
    return record, history


@dataclass
class StoredCNN:
    """A saved pair CNN as data: its architecture, weights (PyTorch's state-dict names) and
    training record. Enough to score pairs with the fused kernel, nothing to train.

    ``record_`` and ``n_samples`` are named as on :class:`~tfcnn.model.estimator.PairCNN`,
    so the matrix a model scores on is found the same way for both
    (:func:`~tfcnn.inference.matrix.scoring_matrix`).
    """

    config: CNNConfig
    state: dict[str, np.ndarray]
    record_: TrainingRecord = field(default_factory=TrainingRecord)

    @property
    def n_samples(self) -> int:
        """Samples per profile."""
        return self.config.n_samples

    @property
    def network_(self) -> StoredCNN:
        """What a scan scores (as ``PairCNN.network_``): the stored network itself."""
        return self


def load_stored_cnn(path: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> StoredCNN:
    """Read a pair CNN's model directory without PyTorch, checking everything that
    :func:`~tfcnn.model.files.load_model` checks except the training hyperparameters
    (which scoring does not use). ``meta``: its model.json, if already read by
    :func:`read_model_json`. A two-tower model is refused (ValueError): load it with
    ``load_model``."""
    path = Path(path)
    meta = read_model_json(path) if meta is None else meta
    meta_path = path / META_FILE
    if architecture_kind(meta["architecture"], str(meta_path)) != "pair-cnn":
        raise ValueError(f"{path} is not a pair CNN; load it with tfcnn.model.load_model.")
    try:
        config = cnn_config(meta["architecture"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{meta_path}: invalid architecture/training ({exc}).") from exc
    record, _ = read_record(path, meta, config.n_samples)
    state = read_weights(path / WEIGHTS_FILE, config.state_shapes())
    return StoredCNN(config=config, state=state, record_=record)
