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
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file
from sklearn.exceptions import NotFittedError

from .. import __version__
from ..errors import ModelFormatError
from ..io.atomic import atomic_dir, json_safe
from .estimator import TRAINING_KEYS, PairCNN
from .network import PairCNNNetwork
from .stored import (
    EXPRESSION_FILE,
    META_FILE,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    PAIRS_FILE,
    RESERVED_KEYS,
    WEIGHTS_FILE,
    architecture_kind,
    cnn_config,
    read_model_json,
    read_record,
    read_weights,
)
from .two_tower import TRAINING_KEYS as TWO_TOWER_TRAINING_KEYS
from .two_tower import TwoTower, TwoTowerConfig, TwoTowerEnsemble, from_settings


def network_from_architecture(architecture: dict[str, Any]) -> PairCNNNetwork | TwoTowerEnsemble:
    """An (untrained) network of either kind from an architecture object (sizes checked)."""
    if architecture_kind(architecture) == "two-tower":
        return TwoTowerEnsemble(TwoTowerConfig.from_dict(architecture))
    return PairCNNNetwork(cnn_config(architecture))


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
        **{k: v for k, v in record.to_json().items() if k not in RESERVED_KEYS},
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
    record, history = read_record(path, meta, net.config.n_samples)
    expected = {
        k: tuple(v.shape)
        for k, v in net.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    weights = read_weights(weights_path, expected)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    net.eval()
    n_samples = net.config.n_samples
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
    config = cnn_config(meta["architecture"])
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
