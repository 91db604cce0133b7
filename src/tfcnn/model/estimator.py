"""`PairCNN`: the pair classifier as a scikit-learn estimator.

Hyperparameters live in ``__init__``, learning happens in :meth:`PairCNN.fit` (or
:meth:`PairCNN.fit_pairs`, which also records the pair set), answers come from
:meth:`PairCNN.predict_proba`; an unfitted model raises ``NotFittedError``, and the
estimator works in ``cross_val_score`` and ``clone``. Defaults are the published study's:
the architecture of :class:`~tfcnn.model.network.CNNConfig`, RMSprop (lr 1e-3, rho 0.9,
eps 1e-7), binary cross-entropy, batch 512, 30 epochs.

Examples are (TF, target) pairs of z-scored profiles, ``X`` of shape (N, 2, n_samples);
labels are 0 (not regulating) and 1 (regulating). Saved models: :mod:`tfcnn.model.files`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

from ..evaluation.metrics import auroc, binary_metrics
from .config import MAX_FILTERS, MAX_KERNEL_WIDTH, MAX_UNITS, CNNConfig
from .network import PairCNNNetwork
from .optimiser import FlatRMSprop
from .record import TrainingRecord, check_finite_probabilities

if TYPE_CHECKING:
    from ..pairs import PairSet

EpochCallback = Callable[[int, dict[str, Any]], None]

#: Hyperparameters that shape the network (saved as model.json's "architecture").
ARCHITECTURE_KEYS = ("filters", "units", "batch_norm", "dropout", "kernel_width")
#: Hyperparameters of training (saved as model.json's "training").
TRAINING_KEYS = ("learning_rate", "rho", "epsilon", "batch_size", "epochs", "seed")


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


class PairCNN(ClassifierMixin, BaseEstimator):
    """A CNN that scores (TF, target) expression-profile pairs as regulatory or not.

    Parameters mirror the study's tuning knobs: ``filters`` for the two separable convs,
    dense ``units``, ``batch_norm`` after conv 1 / conv 2, ``dropout`` rate (0 = off),
    ``kernel_width``; optimiser ``learning_rate``, ``rho``, ``epsilon``; ``batch_size``,
    ``epochs``; ``seed`` makes training reproducible bit for bit for a given thread count.
    The input width (number of samples) is taken from the data in :meth:`fit`.

    Fitted attributes: ``network_`` (the torch module), ``classes_`` ([0, 1]),
    ``history_`` (per-epoch metrics), ``record_`` (:class:`TrainingRecord`: what the model
    knows of its training data; filled by :meth:`fit_pairs` and :func:`tfcnn.api.train`).
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

    def config_for(self, n_samples: int) -> CNNConfig:
        """The architecture for inputs of ``n_samples`` columns (sizes checked, capped)."""
        return CNNConfig(
            n_samples=n_samples,
            filters=tuple(self.filters),  # type: ignore[arg-type]
            units=self.units,
            batch_norm=tuple(self.batch_norm),  # type: ignore[arg-type]
            dropout=self.dropout,
            kernel_width=self.kernel_width,
        )

    def check_settings(self, n_samples: int = 2) -> CNNConfig:
        """The architecture for ``n_samples`` columns; TfcnnInputError naming a bad setting.

        Checked before any data is read or any tensor made: sizes are whole numbers within
        tfcnn's caps, rates and counts in range. (With the default width, only the sizes
        that do not depend on the data are checked.)
        """
        from ..errors import TfcnnInputError

        for name, count in (("epochs", self.epochs), ("batch_size", self.batch_size)):
            if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
                raise TfcnnInputError(f"`{name}` must be a whole number >= 1 (got {count!r}).")
        if self.epochs > 100_000 or self.batch_size > 10_000_000:
            raise TfcnnInputError(
                f"`epochs` ({self.epochs:,}; at most 100,000) or `batch_size` "
                f"({self.batch_size:,}; at most 10,000,000) is too large."
            )
        rates: tuple[tuple[str, float, float, float], ...] = (
            ("learning_rate", self.learning_rate, 0.0, 10.0),
            ("rho", self.rho, 0.0, 1.0),
            ("epsilon", self.epsilon, 0.0, 1.0),
        )
        for name, value, lo, hi in rates:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or not lo < value < hi:
                raise TfcnnInputError(f"`{name}` must be a number in ({lo}, {hi}) (got {value!r}).")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise TfcnnInputError(f"`seed` must be a whole number (got {self.seed!r}).")
        if not 0 <= self.seed < 2**32:
            raise TfcnnInputError(f"`seed` must be in [0, 2**32) (got {self.seed}).")
        sizes = {"units": self.units, "kernel_width": self.kernel_width}
        filters = self.filters
        if not isinstance(filters, list | tuple) or len(filters) != 2:
            raise TfcnnInputError(f"`filters` must be two whole numbers (got {filters!r}).")
        sizes.update({"filters": filters[0], "filters ": filters[1]})
        caps = {"units": MAX_UNITS, "kernel_width": MAX_KERNEL_WIDTH}
        for name, value in sizes.items():
            hi = caps.get(name, MAX_FILTERS)
            ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
            if not ok or not 1 <= value <= hi:
                what = "whole numbers" if name.startswith("filters") else "a whole number"
                raise TfcnnInputError(
                    f"`{name.strip()}` must be {what} from 1 to {hi:,} (got {value!r})."
                )
        dropout = self.dropout
        if isinstance(dropout, bool) or not isinstance(dropout, int | float):
            raise TfcnnInputError(f"`dropout` must be a number in [0, 1) (got {dropout!r}).")
        if not 0.0 <= dropout < 1.0:
            raise TfcnnInputError(f"`dropout` must be in [0, 1) (got {dropout}).")
        try:
            return self.config_for(n_samples)
        except (TypeError, ValueError) as exc:
            raise TfcnnInputError(f"invalid model settings: {exc}") from exc

    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "network_", None) is not None

    def fitted_network(self) -> PairCNNNetwork:
        """The trained torch module (NotFittedError before :meth:`fit`)."""
        net = getattr(self, "network_", None)
        if net is None:
            raise NotFittedError(
                "this PairCNN is not fitted yet; call fit() or load a saved model "
                "(tfcnn.model.load_model)."
            )
        return net

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
        validation data (inference mode) in ``history_``.
        """
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
            rates = (self.learning_rate, self.rho, self.epsilon)
            with FlatRMSprop(net.parameters(), *rates) as opt:
                self._train(net, opt, X_t, y_t, val, on_epoch)
        net.eval()
        self.network_ = net
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = int(X_t.shape[2])
        self.record_ = TrainingRecord()
        return self

    def _train(
        self,
        net: PairCNNNetwork,
        opt: FlatRMSprop,
        X_t: torch.Tensor,
        y_t: torch.Tensor,
        val: tuple[torch.Tensor, np.ndarray] | None,
        on_epoch: EpochCallback | None,
    ) -> None:
        """The epochs of :meth:`fit`, filling ``history_``."""
        shuffle = torch.Generator().manual_seed(self.seed)
        self.history_ = []
        n = X_t.shape[0]
        for epoch in range(1, self.epochs + 1):
            net.train()
            order = torch.randperm(n, generator=shuffle)
            total_loss = 0.0
            logits_seen = torch.empty(n)
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                opt.zero_grad()
                logits = net(torch.index_select(X_t, 0, idx))
                loss = F.binary_cross_entropy_with_logits(logits, y_t[idx])
                loss.backward()
                opt.step()
                total_loss += float(loss.detach()) * len(idx)
                logits_seen[idx] = logits.detach()
            correct = int(((logits_seen >= 0).float() == y_t).sum())
            record: dict[str, Any] = {
                "epoch": epoch,
                "loss": total_loss / n,
                "accuracy": correct / n,
                "auroc": auroc(y_t.numpy(), logits_seen.numpy()),
            }
            if val is not None:
                m = binary_metrics(val[1], _predict(net, val[0]))
                record.update(val_loss=m["loss"], val_accuracy=m["accuracy"], val_auroc=m["auroc"])
            self.history_.append(record)
            if on_epoch is not None:
                on_epoch(epoch, record)

    def fit_pairs(
        self,
        pairs: PairSet,
        on_epoch: EpochCallback | None = None,
        validate: bool = True,
    ) -> PairCNN:
        """Train on a pair set's train split (validating on its validation split).

        The model then carries its genes, samples, z-scored matrix and pair set in
        ``record_``, so it can score any pair of its genes, and say which pairs were known
        or trained on, without the original files.
        """
        x, y = pairs.arrays("train")
        val = pairs.arrays("validation") if validate else None
        self.fit(x, y, validation_data=val, on_epoch=on_epoch)
        self.record_ = TrainingRecord(
            genes=list(pairs.genes),
            samples=list(pairs.samples),
            zscores=np.ascontiguousarray(pairs.zscores, dtype=np.float32),
            pairs=pairs.record(),
            data=pairs.summary(),
        )
        return self

    def predict_proba(self, X: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Probabilities, shape (N, 2): column 0 = not regulating, column 1 = regulating."""
        net = self.fitted_network()
        X_t = _as_tensor(X)
        if X_t.ndim != 3 or X_t.shape[1] != 2 or X_t.shape[2] != net.config.n_samples:
            raise ValueError(
                f"X must have shape (N, 2, {net.config.n_samples}), got {tuple(X_t.shape)}"
            )
        p = check_finite_probabilities(_predict(net, X_t, batch_size))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """Hard labels at ``threshold``."""
        return (self.predict_proba(X)[:, 1] >= threshold).astype(int)

    @property
    def n_samples(self) -> int:
        """Input width the fitted model expects."""
        return self.fitted_network().config.n_samples

    # -- files (see tfcnn.model.files) -----------------------------------------------
    def save(self, path: str | os.PathLike[str], force: bool = False) -> Path:
        """Write the model directory ``path`` (atomically; see :mod:`tfcnn.model.files`)."""
        from .files import save_model

        return save_model(self, path, force=force)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        """Read a model directory written by :meth:`save`, validating everything.

        Any model directory loads (:func:`tfcnn.model.files.load_model`): a two-tower one
        gives a :class:`~tfcnn.model.two_tower.TwoTower`.
        """
        from .files import load_model

        return load_model(path)

    def pair_scorer(self) -> Any:
        """The fast scorer (:class:`tfcnn.inference.engine.PairScorer`) for predict, scan
        and the web app."""
        from ..inference.engine import PairScorer

        net = self.fitted_network()
        net.eval()
        return PairScorer.from_network(net)
