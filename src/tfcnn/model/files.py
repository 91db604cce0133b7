"""Model directories: what a saved :class:`~tfcnn.model.estimator.PairCNN` or
:class:`~tfcnn.model.two_tower.TwoTower` is made of.

A saved model is a directory of up to four files, and nothing else is ever read:

* ``model.json``: format version, architecture, training hyperparameters, per-epoch
  history, and the :class:`~tfcnn.model.record.TrainingRecord` fields (gene IDs and
  sample names of the training matrix, a summary of the data, held-out metrics, the
  training probability distribution, provenance);
* ``weights.safetensors``: the tensors (no pickle anywhere);
* ``expression.safetensors`` (optional): the z-scored training matrix (genes x samples,
  rows in the order of ``genes``), so the model scores its own genes without the file;
* ``pairs.safetensors`` (optional): the pair set it learned from (gene rows, labels,
  splits) and every known pair, so a query can say which pairs were known or trained on.

model.json's "architecture" has a ``kind``: ``"pair-cnn"`` when absent (every model
saved before there were two kinds), ``"two-tower"`` for :class:`TwoTower`, whose weights
hold every ensemble member (``members.0.*``, ``members.1.*``, ...). An optional "prior"
object holds a :class:`~tfcnn.model.prior.TargetPrior` blend.

A model file is data only: no path written in model.json is ever opened, every type and
size is checked before anything is allocated, and weights must be finite (batch-norm
variances non-negative), so a damaged or hostile file is refused with a message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file, save_file
from sklearn.exceptions import NotFittedError

from .. import __version__
from ..errors import ModelFormatError
from ..io.atomic import atomic_dir, json_safe
from ..io.manifest import read_manifest
from .estimator import TRAINING_KEYS, PairCNN
from .network import CNNConfig, PairCNNNetwork
from .prior import TargetPrior
from .record import PAIR_KEYS, TrainingRecord, check_pairs
from .two_tower import TRAINING_KEYS as TWO_TOWER_TRAINING_KEYS
from .two_tower import TwoTower, TwoTowerConfig, TwoTowerEnsemble, from_settings

MODEL_FORMAT = "tfcnn-model"
MODEL_FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "model.json"
EXPRESSION_FILE = "expression.safetensors"
PAIRS_FILE = "pairs.safetensors"

_RESERVED = ("format", "format_version", "tfcnn_version", "architecture", "training", "history")
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


def network_from_architecture(architecture: dict[str, Any]) -> PairCNNNetwork | TwoTowerEnsemble:
    """An (untrained) network of either kind from an architecture object (sizes checked)."""
    if architecture_kind(architecture) == "two-tower":
        return TwoTowerEnsemble(TwoTowerConfig.from_dict(architecture))
    arch = {k: v for k, v in architecture.items() if k != "kind"}
    return PairCNNNetwork(CNNConfig.from_dict(arch))


def architecture_width(architecture: dict[str, Any]) -> int:
    """Input width (samples) an architecture object declares, checked without weights."""
    if architecture_kind(architecture) == "two-tower":
        return TwoTowerConfig.from_dict(architecture).n_samples
    return CNNConfig.from_dict({k: v for k, v in architecture.items() if k != "kind"}).n_samples


def save_model(est: PairCNN | TwoTower, path: str | os.PathLike[str], force: bool = False) -> Path:
    """Write ``path/`` (weights, model.json and the record's arrays), atomically."""
    try:
        net = est.fitted_network()
    except NotFittedError as exc:
        raise ModelFormatError(str(exc)) from exc
    record = est.record_
    record.check(net.config.n_samples, "the model's training record")
    keys = TWO_TOWER_TRAINING_KEYS if isinstance(est, TwoTower) else TRAINING_KEYS
    tensors = {
        k: v.detach().contiguous().clone()
        for k, v in net.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    meta = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "tfcnn_version": __version__,
        "architecture": net.config.to_dict(),
        "training": {k: getattr(est, k) for k in keys},
        "history": est.history_,
        **{k: v for k, v in record.to_json().items() if k not in _RESERVED},
    }
    with atomic_dir(path, force=force) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": MODEL_FORMAT})
        if record.zscores is not None:
            z = np.ascontiguousarray(record.zscores, dtype=np.float32)
            save_numpy({"zscores": z}, str(tmp / EXPRESSION_FILE))
        if record.pairs is not None:
            arrays = {k: np.ascontiguousarray(v) for k, v in record.pairs.items()}
            save_numpy(arrays, str(tmp / PAIRS_FILE))
        (tmp / META_FILE).write_text(json.dumps(json_safe(meta), indent=2) + "\n")
    return Path(path)


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


def load_model(path: str | os.PathLike[str]) -> PairCNN | TwoTower:
    """Read a model directory written by :func:`save_model` (either kind), validating
    everything."""
    path = Path(path)
    meta = read_model_json(path)
    meta_path, weights_path = path / META_FILE, path / WEIGHTS_FILE
    kind = architecture_kind(meta["architecture"], str(meta_path))
    est: PairCNN | TwoTower
    net: PairCNNNetwork | TwoTowerEnsemble
    try:
        if kind == "two-tower":
            est = from_settings(meta["architecture"], meta["training"])
            net = TwoTowerEnsemble(est.config_for(meta["architecture"]["n_samples"]))
        else:
            est, net = _pair_cnn(meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{meta_path}: invalid architecture/training ({exc}).") from exc
    history = meta.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise ModelFormatError(f"{meta_path}: 'history' must be a list of objects.")
    record = TrainingRecord.from_json(
        {k: v for k, v in meta.items() if k not in _RESERVED}, str(meta_path)
    )
    if "prior" in record.extra:
        TargetPrior.from_json(record.extra["prior"], str(meta_path))
    tensors = _read_tensors(weights_path, net)
    net.load_state_dict(tensors, strict=False)
    net.eval()
    n_samples = net.config.n_samples
    if (path / EXPRESSION_FILE).exists():
        record.zscores = _read_arrays(path / EXPRESSION_FILE, ("zscores",), "expression")["zscores"]
    if (path / PAIRS_FILE).exists():
        record.pairs = _read_arrays(path / PAIRS_FILE, PAIR_KEYS, "pairs")
        check_pairs(record.pairs, len(record.genes), str(path / PAIRS_FILE))
    record.check(n_samples, str(path / EXPRESSION_FILE))
    est.network_ = net
    est.classes_ = np.array([0, 1])
    est.n_features_in_ = n_samples
    est.history_ = history
    est.record_ = record
    if isinstance(est, TwoTower):
        kept = [r.get("epoch") for r in history if r.get("kept")]
        est.best_epochs_ = [int(e) for e in kept if isinstance(e, int)]
        est.validation_ = None
    return est


def _pair_cnn(meta: dict[str, Any]) -> tuple[PairCNN, PairCNNNetwork]:
    """The estimator and network a pair-cnn model.json describes (ValueError if not)."""
    config = CNNConfig.from_dict({k: v for k, v in meta["architecture"].items() if k != "kind"})
    training = meta["training"]
    est = PairCNN(
        filters=config.filters,
        units=config.units,
        batch_norm=config.batch_norm,
        dropout=config.dropout,
        kernel_width=config.kernel_width,
        **{k: _training_value(training, k) for k in TRAINING_KEYS},
    )
    return est, PairCNNNetwork(config)


def _training_value(training: dict[str, Any], key: str) -> Any:
    """One training hyperparameter, checked to be a number of the right kind."""
    value = training[key]
    integer = key in ("batch_size", "epochs", "seed")
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or (isinstance(value, float) and not np.isfinite(value)):
        raise ValueError(f"training {key} = {value!r} is not a {'whole ' if integer else ''}number")
    return value


def _read_tensors(
    weights_path: Path, net: PairCNNNetwork | TwoTowerEnsemble
) -> dict[str, torch.Tensor]:
    """The weights, checked against the architecture: names, shapes, finite values."""
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFormatError(
            f"{weights_path} is not a readable safetensors file ({exc}); it may be "
            "truncated. Re-save or re-download the model."
        ) from exc
    expected = {
        k: tuple(v.shape)
        for k, v in net.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if got != expected:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
        raise ModelFormatError(
            f"{weights_path} does not match the architecture in {META_FILE}: "
            f"missing {missing}, unexpected {extra}, wrong shape {wrong}."
        )
    for k, v in tensors.items():
        if v.dtype != torch.float32 or not torch.isfinite(v).all():
            raise ModelFormatError(f"{weights_path}: tensor {k} is not finite float32.")
        if k.endswith("running_var") and (v < 0).any():
            raise ModelFormatError(
                f"{weights_path}: tensor {k} has negative variances; the model would give "
                "no probabilities. Re-train or re-import it."
            )
    return tensors


def _read_arrays(path: Path, keys: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    try:
        arrays = load_numpy(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFormatError(
            f"{path} is not a readable {what} file ({exc}); it may be truncated. Re-save or "
            "re-download the model."
        ) from exc
    if set(arrays) != set(keys):
        raise ModelFormatError(
            f"{path} holds arrays {sorted(arrays)}; expected {sorted(keys)}. Re-save the model."
        )
    return arrays
