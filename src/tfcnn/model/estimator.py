"""`PairCNN`: the pair classifier as a scikit-learn-style estimator, and its model files.

Hyperparameters live in ``__init__``, learning happens in :meth:`PairCNN.fit`, answers
come from :meth:`PairCNN.predict_proba`. Defaults are the published study's: the
architecture of :class:`~tfcnn.model.network.CNNConfig`, RMSprop (lr 1e-3, rho 0.9, eps 1e-7),
binary cross-entropy, batch 512, 30 epochs.

A saved model is a directory with two files, and nothing else is ever read:

* ``weights.safetensors``: the tensors (no pickle anywhere);
* ``model.json``: format version, architecture, training hyperparameters, the gene IDs
  and sample names of the training matrix, a summary of the training data, the
  per-epoch history and the held-out metrics;
* ``expression.safetensors`` (optional): the z-scored training matrix (genes x samples,
  rows in the order of ``genes`` in model.json), so the model can score any pair of its
  own genes without the original expression file;
* ``pairs.safetensors`` (optional): the pair set the model learned from, as gene rows
  (``tf``, ``target``, ``label``, ``split``: 0 train, 1 validation, 2 test) and the codes
  of every known pair (``known``: ``tf_row * n_genes + target_row``), so a query can say
  which pairs were known or trained on without reading any other file.

A model file is data only: no path written in model.json is ever opened.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file, save_file

from .. import __version__
from ..errors import ModelFormatError
from ..evaluation.metrics import auroc, binary_metrics
from ..io.atomic import atomic_dir, json_safe
from ..runtime import keep_freed_memory
from .network import CNNConfig, PairCNNNetwork

MODEL_FORMAT = "tfcnn-model"
MODEL_FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "model.json"
EXPRESSION_FILE = "expression.safetensors"
PAIRS_FILE = "pairs.safetensors"
PAIR_ARRAYS = ("tf", "target", "label", "split")

EpochCallback = Callable[[int, dict[str, Any]], None]


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(torch.float32)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _predict(net: PairCNNNetwork, X: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Positive-class probabilities in inference mode, in batches.

    Small batches are faster on CPU: large intermediate tensors are returned to the OS
    and faulted in again on every batch (measured: 512 -> ~3x the pairs/s of 8192).
    """
    net.eval()
    out = np.empty(X.shape[0], dtype=np.float64)
    with torch.no_grad():
        for start in range(0, X.shape[0], batch_size):
            logits = net(X[start : start + batch_size])
            out[start : start + batch_size] = torch.sigmoid(logits).double().numpy()
    return out


class PairCNN:
    """A CNN that scores (TF, target) expression-profile pairs as regulatory or not.

    Parameters mirror the study's tuning knobs: ``filters`` for the two separable convs,
    dense ``units``, ``batch_norm`` after conv 1 / conv 2, ``dropout`` rate (0 = off),
    ``kernel_width``; optimiser ``learning_rate``, ``rho``, ``epsilon``; ``batch_size``,
    ``epochs``; ``seed`` makes training reproducible bit for bit on the same machine.
    The input width (number of samples) is taken from the data in :meth:`fit`.
    """

    def __init__(
        self,
        filters: tuple[int, int] = (4, 8),
        units: int = 8,
        batch_norm: tuple[bool, bool] = (False, True),
        dropout: float = 0.01,
        kernel_width: int = 5,
        learning_rate: float = 1e-3,
        rho: float = 0.9,
        epsilon: float = 1e-7,
        batch_size: int = 512,
        epochs: int = 30,
        seed: int = 0,
    ) -> None:
        self.filters = filters
        self.units = units
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.kernel_width = kernel_width
        self.learning_rate = learning_rate
        self.rho = rho
        self.epsilon = epsilon
        self.batch_size = batch_size
        self.epochs = epochs
        self.seed = seed
        self.network_: PairCNNNetwork | None = None
        self.history_: list[dict[str, Any]] = []
        self.metadata_: dict[str, Any] = {}
        self.zscores_: np.ndarray | None = None  # genes x samples, genes in metadata_
        #: training pairs as gene rows (PAIR_ARRAYS) plus "known" pair codes, or None
        self.pairs_: dict[str, np.ndarray] | None = None

    # -- scikit-learn protocol -------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters, as scikit-learn expects."""
        return {k: getattr(self, k) for k in self.training_keys() + self.architecture_keys()}

    def set_params(self, **params: Any) -> PairCNN:
        """Set hyperparameters, as scikit-learn expects."""
        for k, v in params.items():
            if k not in self.get_params():
                raise ValueError(f"unknown PairCNN parameter {k!r}")
            setattr(self, k, v)
        return self

    @staticmethod
    def architecture_keys() -> list[str]:
        return ["filters", "units", "batch_norm", "dropout", "kernel_width"]

    @staticmethod
    def training_keys() -> list[str]:
        return ["learning_rate", "rho", "epsilon", "batch_size", "epochs", "seed"]

    def config_for(self, n_samples: int) -> CNNConfig:
        """The architecture for inputs of ``n_samples`` columns."""
        return CNNConfig(
            n_samples=n_samples,
            filters=tuple(self.filters),
            units=int(self.units),
            batch_norm=tuple(self.batch_norm),
            dropout=float(self.dropout),
            kernel_width=int(self.kernel_width),
        )

    @property
    def is_fitted(self) -> bool:
        return self.network_ is not None

    def _check_fitted(self) -> PairCNNNetwork:
        if self.network_ is None:
            raise RuntimeError("this PairCNN is not fitted yet; call fit() or PairCNN.load().")
        return self.network_

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> PairCNN:
        """Train on pairs ``X`` (N, 2, n_samples) with labels ``y`` (N,) in {0, 1}.

        Records per-epoch loss, accuracy and AUROC on the training batches (as Keras
        reports them: running over the epoch, in training mode) and, when given, on the
        validation data (inference mode) in ``history_``. Tunes glibc malloc to keep freed
        memory for reuse (see :mod:`tfcnn.runtime`).
        """
        keep_freed_memory()
        X_t, y_t = _as_tensor(X), torch.as_tensor(np.asarray(y), dtype=torch.float32)
        if X_t.ndim != 3 or X_t.shape[1] != 2:
            raise ValueError(f"X must have shape (N, 2, n_samples), got {tuple(X_t.shape)}")
        if y_t.shape != (X_t.shape[0],):
            raise ValueError(f"y must have shape ({X_t.shape[0]},), got {tuple(y_t.shape)}")
        if not torch.all((y_t == 0) | (y_t == 1)):
            raise ValueError("y must contain only 0 and 1")
        if self.batch_size < 1 or self.epochs < 1:
            raise ValueError("batch_size and epochs must be positive")
        val = None
        if validation_data is not None:
            val = (_as_tensor(validation_data[0]), np.asarray(validation_data[1]))

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = PairCNNNetwork(self.config_for(X_t.shape[2]))
            opt = torch.optim.RMSprop(
                net.parameters(), lr=self.learning_rate, alpha=self.rho, eps=self.epsilon
            )
            shuffle = torch.Generator().manual_seed(self.seed)
            self.history_ = []
            n = X_t.shape[0]
            for epoch in range(1, self.epochs + 1):
                net.train()
                order = torch.randperm(n, generator=shuffle)
                total_loss, total_correct = 0.0, 0
                logits_seen = torch.empty(n)
                for start in range(0, n, self.batch_size):
                    idx = order[start : start + self.batch_size]
                    opt.zero_grad(set_to_none=True)
                    logits = net(X_t[idx])
                    loss = F.binary_cross_entropy_with_logits(logits, y_t[idx])
                    loss.backward()
                    opt.step()
                    with torch.no_grad():
                        total_loss += float(loss) * len(idx)
                        total_correct += int(((logits >= 0).float() == y_t[idx]).sum())
                        logits_seen[idx] = logits
                record: dict[str, Any] = {
                    "epoch": epoch,
                    "loss": total_loss / n,
                    "accuracy": total_correct / n,
                    "auroc": auroc(y_t.numpy(), logits_seen.numpy()),
                }
                if val is not None:
                    m = binary_metrics(val[1], _predict(net, val[0]))
                    record.update(
                        val_loss=m["loss"], val_accuracy=m["accuracy"], val_auroc=m["auroc"]
                    )
                self.history_.append(record)
                if on_epoch is not None:
                    on_epoch(epoch, record)
        net.eval()
        self.network_ = net
        return self

    def predict_proba(self, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Probabilities, shape (N, 2): column 0 = not regulating, column 1 = regulating."""
        p = _predict(self._check_fitted(), _as_tensor(X), batch_size)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """Hard labels at ``threshold``."""
        return (self.predict_proba(X)[:, 1] >= threshold).astype(int)

    # -- persistence -----------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], force: bool = False) -> Path:
        """Write ``path/`` with weights.safetensors + model.json (atomically)."""
        net = self._check_fitted()
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
            "training": {k: getattr(self, k) for k in self.training_keys()},
            "history": self.history_,
            **{k: v for k, v in self.metadata_.items() if k not in _RESERVED_META},
        }
        if self.zscores_ is not None:
            genes = meta.get("genes") or []
            if self.zscores_.shape != (len(genes), net.config.n_samples):
                raise ValueError(
                    f"zscores_ has shape {self.zscores_.shape}, expected ({len(genes)}, "
                    f"{net.config.n_samples}) from metadata_['genes'] and the input width"
                )
        with atomic_dir(path, force=force) as tmp:
            save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": MODEL_FORMAT})
            if self.zscores_ is not None:
                z = np.ascontiguousarray(self.zscores_, dtype=np.float32)
                save_numpy({"zscores": z}, str(tmp / EXPRESSION_FILE))
            if self.pairs_ is not None:
                _check_pairs(self.pairs_, len(meta.get("genes") or []), "pairs_")
                arrays = {k: np.ascontiguousarray(v) for k, v in self.pairs_.items()}
                save_numpy(arrays, str(tmp / PAIRS_FILE))
            (tmp / META_FILE).write_text(json.dumps(json_safe(meta), indent=2) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PairCNN:
        """Read a model directory written by :meth:`save`, validating everything."""
        path = Path(path)
        if not path.exists():
            raise ModelFormatError(f"model {path} does not exist.")
        if not path.is_dir():
            raise ModelFormatError(
                f"{path} is a file, not a tfcnn model: a model is a directory holding "
                f"{META_FILE} and {WEIGHTS_FILE}. Other formats (pickle, .pt, .h5) are "
                "never loaded."
            )
        meta_path, weights_path = path / META_FILE, path / WEIGHTS_FILE
        for p in (meta_path, weights_path):
            if not p.is_file():
                raise ModelFormatError(f"model {path} has no {p.name}; is it a tfcnn model?")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"{meta_path} is not valid JSON ({exc}).") from exc
        if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
            raise ModelFormatError(f"{meta_path} is not a tfcnn model description.")
        version = meta.get("format_version")
        if not isinstance(version, int) or version > MODEL_FORMAT_VERSION:
            raise ModelFormatError(
                f"{meta_path} has model format version {version!r}; this tfcnn "
                f"({__version__}) reads up to {MODEL_FORMAT_VERSION}. Upgrade tfcnn."
            )
        for key in ("architecture", "training"):
            if not isinstance(meta.get(key), dict):
                raise ModelFormatError(
                    f"{meta_path}: '{key}' must be a JSON object (got "
                    f"{type(meta.get(key)).__name__}); the file is damaged. Re-save or "
                    "re-download the model."
                )
        try:
            config = CNNConfig.from_dict(meta["architecture"])
            training = meta["training"]
            est = cls(
                filters=config.filters,
                units=config.units,
                batch_norm=config.batch_norm,
                dropout=config.dropout,
                kernel_width=config.kernel_width,
                **{k: training[k] for k in cls.training_keys()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{meta_path}: invalid architecture/training ({exc}).") from exc
        net = PairCNNNetwork(config)
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
        net.load_state_dict(tensors, strict=False)
        net.eval()
        est.network_ = net
        est.history_ = list(meta.get("history", []))
        est.metadata_ = {k: v for k, v in meta.items() if k not in _RESERVED_META}
        if (path / EXPRESSION_FILE).exists():
            est.zscores_ = _load_zscores(path / EXPRESSION_FILE, est.metadata_, config)
        if (path / PAIRS_FILE).exists():
            est.pairs_ = _load_pairs(path / PAIRS_FILE, est.metadata_)
        return est

    @property
    def n_samples(self) -> int:
        """Input width the fitted model expects."""
        return self._check_fitted().config.n_samples


def _load_zscores(path: Path, meta: dict[str, Any], config: CNNConfig) -> np.ndarray:
    """The model's own z-scored matrix, checked against its gene list and input width."""
    try:
        z = load_numpy(str(path))["zscores"]
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise ModelFormatError(f"{path} is not a readable expression file ({exc}).") from exc
    genes = meta.get("genes")
    if not isinstance(genes, list) or z.shape != (len(genes), config.n_samples):
        n = len(genes) if isinstance(genes, list) else "?"
        raise ModelFormatError(
            f"{path} holds a {z.shape} matrix but model.json lists {n} genes and the model "
            f"takes {config.n_samples} samples."
        )
    if z.dtype != np.float32 or not np.isfinite(z).all():
        raise ModelFormatError(f"{path}: z-scores must be finite float32.")
    return z


def pair_arrays(
    tf: np.ndarray, target: np.ndarray, label: np.ndarray, split: np.ndarray, known: np.ndarray
) -> dict[str, np.ndarray]:
    """The ``pairs_`` record of a model, with the dtypes its file stores."""
    return {
        "tf": np.asarray(tf, dtype=np.int32),
        "target": np.asarray(target, dtype=np.int32),
        "label": np.asarray(label, dtype=np.int8),
        "split": np.asarray(split, dtype=np.int8),
        "known": np.asarray(known, dtype=np.int64),
    }


def _check_pairs(arrays: dict[str, np.ndarray], n_genes: int, where: str) -> None:
    """Refuse a pairs record whose arrays disagree or name rows outside the gene list."""
    want = {"tf": "i", "target": "i", "label": "i", "split": "i", "known": "i"}
    if set(arrays) != set(want):
        raise ModelFormatError(
            f"{where} holds arrays {sorted(arrays)}; expected {sorted(want)}. The file is "
            "damaged: re-save the model."
        )
    n = arrays["tf"].shape
    for k, v in arrays.items():
        if v.ndim != 1 or v.dtype.kind != want[k] or (k in PAIR_ARRAYS and v.shape != n):
            raise ModelFormatError(f"{where}: array {k!r} has the wrong type or length.")
    for k, hi in (("tf", n_genes), ("target", n_genes), ("label", 2), ("split", 3)):
        v = arrays[k]
        if v.size and (int(v.min()) < 0 or int(v.max()) >= hi):
            raise ModelFormatError(f"{where}: array {k!r} holds values outside [0, {hi}).")
    known = arrays["known"]
    if known.size and (int(known.min()) < 0 or int(known.max()) >= n_genes * n_genes):
        raise ModelFormatError(f"{where}: known pair codes lie outside the gene list.")


def _load_pairs(path: Path, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """The model's training pairs, checked against its gene list."""
    try:
        arrays = load_numpy(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFormatError(f"{path} is not a readable pairs file ({exc}).") from exc
    genes = meta.get("genes")
    _check_pairs(arrays, len(genes) if isinstance(genes, list) else 0, str(path))
    return arrays


_RESERVED_META = {
    "format",
    "format_version",
    "tfcnn_version",
    "architecture",
    "training",
    "history",
}
