"""`TwoTower`: a pair model that reads the TF/target relation, as a scikit-learn estimator.

Each z-scored profile goes through a **tower** (a dense MLP or a 1-D convolution), giving
an embedding ``u`` for the TF and ``v`` for the target. With ``shared=True`` (the default)
one tower serves both roles and a learned role offset tells them apart; with
``shared=False`` each role has its own tower. An **interaction head** scores the pair:

* ``"mlp"`` (default): an MLP on ``[u, v, u*v, |u-v|]``;
* ``"interaction"``: an MLP on ``[u*v, |u-v|]`` only (no node-level input to the head);
* ``"bilinear"``: ``u^T W v + b``.

Why two towers can read a relation that the stacked-profile CNN cannot: a held-out TF's
profile lands near training TFs with similar profiles and inherits their target
preferences, so what is learned is a relation between the two profiles, not the identity
of either (docs/pair_model.md).

**Losses.** ``"bce"``: binary cross-entropy on the labelled pairs. ``"ranking"`` (default):
each positive is compared with one negative that shares its target and one that shares its
TF, drawn afresh every epoch, and ``softplus(s_neg - s_pos)`` is minimised. It rewards only
what separates a positive from negatives *of the same node*, which is what within-target
and within-TF AUROC measure, so it cannot profit from node identity by construction. It
needs the TF and target of every pair: :meth:`TwoTower.fit_pairs` takes them from the pair
set; :meth:`TwoTower.fit` takes ``tf_ids`` / ``target_ids`` or derives them from identical
profile rows (two genes with the very same profile are then one node, which the model
could not tell apart anyway).

**Early stopping** watches the within-target AUROC of validation pairs (pairs of
validation TFs, never test TFs), smoothed over ``smooth`` epochs, not before
``min_epochs``, with ``patience``; the best epoch's weights are kept. ``n_seeds`` members
(seeds ``seed``, ``seed + 1``, ...) are trained and their logits averaged.

Defaults are the measured choice of the research prototype (scratch ``pairmodel``): shared
dense tower 128 -> 32 (GELU), MLP head (64), dropout 0.2, input dropout 0.1 and Gaussian
noise 0.1 on the profiles, AdamW (lr 1e-3, weight decay 1e-4), batch 256, at most 60
epochs, patience 10, minimum 5 epochs, 3-epoch smoothing, ranking loss, 3 seeds.
Deterministic for a seed and thread count.

**Fast inference** (:class:`TwoTowerScorer`, from :meth:`TwoTower.pair_scorer`): the towers
run once per gene; the head's first layer is split by input block, ``W [u, v, u*v, |u-v|]
= A u + B v + [C D] [u*v, |u-v|]``, so ``A u`` is computed once per TF and ``B v`` once per
gene, and a pair costs one ``2d x h`` product plus the output layer (the bilinear head:
one matrix product per block). It has the interface of
:class:`tfcnn.inference.engine.PairScorer` (``gene_terms``, ``score_block``,
``predict_pairs``), so ``predict``, ``scan`` and the web app score either kind.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..errors import TfcnnInputError
from .config import MAX_FILTERS, MAX_KERNEL_WIDTH, MAX_PARAMETERS, MAX_SAMPLES, MAX_UNITS
from .record import TrainingRecord, check_finite_probabilities

if TYPE_CHECKING:
    from ..pairs import PairSet

KIND = "two-tower"
TOWERS = ("dense", "conv")
HEADS = ("mlp", "interaction", "bilinear")
LOSSES = ("bce", "ranking")
VAL_METRICS = ("within_target", "within_tf", "loss")
#: Size caps, checked before any tensor is made (a model file or option could ask for more).
MAX_EMBED = 1_024
MAX_MEMBERS = 32

#: Estimator arguments saved as model.json's "architecture" (with ``n_samples``, ``kind``).
ARCHITECTURE_KEYS = (
    "tower",
    "shared",
    "hidden",
    "embed_dim",
    "conv_channels",
    "kernel_width",
    "head",
    "head_hidden",
    "dropout",
)
#: Estimator arguments saved as model.json's "training".
TRAINING_KEYS = (
    "input_dropout",
    "noise",
    "loss",
    "learning_rate",
    "weight_decay",
    "batch_size",
    "max_epochs",
    "patience",
    "min_epochs",
    "smooth",
    "val_metric",
    "n_seeds",
    "seed",
)

EpochCallback = Callable[[int, dict[str, Any]], None]


def _is_count(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _is_number(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(float(value))
    )


# -- architecture --------------------------------------------------------------------------
@dataclass(frozen=True)
class TwoTowerConfig:
    """Architecture of a two-tower ensemble; checked (types, caps) before anything is made."""

    n_samples: int = 131
    tower: str = "dense"
    shared: bool = True
    hidden: int = 128
    embed_dim: int = 32
    conv_channels: int = 8
    kernel_width: int = 5
    head: str = "mlp"
    head_hidden: int = 64
    dropout: float = 0.2
    members: int = 3

    def __post_init__(self) -> None:
        if self.tower not in TOWERS:
            raise ValueError(f"tower must be one of {', '.join(TOWERS)} (got {self.tower!r}).")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)} (got {self.head!r}).")
        if not isinstance(self.shared, bool | np.bool_):
            raise ValueError(f"shared must be true or false (got {self.shared!r}).")
        object.__setattr__(self, "shared", bool(self.shared))
        for name, hi in (
            ("n_samples", MAX_SAMPLES),
            ("hidden", MAX_UNITS),
            ("embed_dim", MAX_EMBED),
            ("conv_channels", MAX_FILTERS),
            ("kernel_width", MAX_KERNEL_WIDTH),
            ("head_hidden", MAX_UNITS),
            ("members", MAX_MEMBERS),
        ):
            value = getattr(self, name)
            if not _is_count(value) or not 1 <= value <= hi:
                raise ValueError(f"{name} must be a whole number from 1 to {hi:,} (got {value!r}).")
            object.__setattr__(self, name, int(value))
        if self.n_samples < 2:
            raise ValueError(f"n_samples must be at least 2 (got {self.n_samples}).")
        if not _is_number(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {self.dropout!r}).")
        object.__setattr__(self, "dropout", float(self.dropout))
        if self.n_parameters > MAX_PARAMETERS:
            raise ValueError(
                f"this architecture has {self.n_parameters:,} weights over its {self.members} "
                f"members, more than tfcnn accepts ({MAX_PARAMETERS:,}); use smaller layers "
                "or fewer seeds."
            )

    @property
    def conv_width(self) -> int:
        """Positions after the conv tower's convolution and 2-wide max-pool."""
        k = self.kernel_width
        return (self.n_samples + 2 * (k // 2) - k + 1) // 2

    @property
    def n_parameters(self) -> int:
        """Trainable weights of all members: sizes are capped by this."""
        d, h = self.embed_dim, self.hidden
        if self.tower == "dense":
            tower = self.n_samples * h + h
        else:
            c = self.conv_channels
            tower = self.kernel_width * c + c + c * max(1, self.conv_width) * h + h
        tower += h * d + d
        towers = tower + 2 * d if self.shared else 2 * tower
        hh = self.head_hidden
        head = {
            "mlp": 4 * d * hh + hh + hh + 1,
            "interaction": 2 * d * hh + hh + hh + 1,
            "bilinear": d * d + 1,
        }[self.head]
        return self.members * (towers + head)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with ``kind`` = "two-tower"."""
        return {"kind": KIND, **{f: getattr(self, f) for f in self.__dataclass_fields__}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TwoTowerConfig:
        """Inverse of :meth:`to_dict`; unknown keys and another ``kind`` are errors."""
        d = dict(d)
        kind = d.pop("kind", None)
        if kind != KIND:
            raise ValueError(f"architecture kind must be {KIND!r} (got {kind!r})")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown architecture keys: {sorted(unknown)}")
        return cls(**d)


class _DenseTower(nn.Module):
    def __init__(self, cfg: TwoTowerConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(cfg.n_samples, cfg.hidden),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.embed_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _ConvTower(nn.Module):
    def __init__(self, cfg: TwoTowerConfig) -> None:
        super().__init__()
        k = cfg.kernel_width
        self.conv = nn.Conv1d(1, cfg.conv_channels, k, padding=k // 2)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.conv_channels * cfg.conv_width, cfg.hidden),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.embed_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool1d(F.gelu(self.conv(x.unsqueeze(1))), 2)
        return self.mlp(h.flatten(1))


def _tower(cfg: TwoTowerConfig) -> nn.Module:
    return _DenseTower(cfg) if cfg.tower == "dense" else _ConvTower(cfg)


class TwoTowerNet(nn.Module):
    """One member: towers + interaction head; ``forward`` takes (N, 2, S), returns logits (N,)."""

    def __init__(self, cfg: TwoTowerConfig) -> None:
        super().__init__()
        self.config = cfg
        self.tf_tower = _tower(cfg)
        # A shared tower is registered once (a second name would save the tensors twice).
        self.target_tower = None if cfg.shared else _tower(cfg)
        d, hh = cfg.embed_dim, cfg.head_hidden
        self.role = nn.Parameter(torch.zeros(2, d)) if cfg.shared else None
        self.head: nn.Sequential | None = None
        self.bilinear: nn.Parameter | None = None
        self.bias: nn.Parameter | None = None
        if cfg.head == "bilinear":
            self.bilinear = nn.Parameter(torch.empty(d, d))
            self.bias = nn.Parameter(torch.zeros(()))
            nn.init.normal_(self.bilinear, std=1.0 / d)
        else:
            width = 4 * d if cfg.head == "mlp" else 2 * d
            self.head = nn.Sequential(
                nn.Linear(width, hh), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(hh, 1)
            )

    def head_layers(self) -> tuple[nn.Linear, nn.Linear]:
        """The MLP head's first and output layers (MLP and interaction heads)."""
        assert self.head is not None
        first, last = self.head[0], self.head[3]
        assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
        return first, last

    def embed_tf(self, z: torch.Tensor) -> torch.Tensor:
        """Embedding of profiles (G, S) in the TF role."""
        u = self.tf_tower(z)
        return u + self.role[0] if self.role is not None else u

    def embed_target(self, z: torch.Tensor) -> torch.Tensor:
        """Embedding of profiles (G, S) in the target role."""
        tower = self.tf_tower if self.target_tower is None else self.target_tower
        v = tower(z)
        return v + self.role[1] if self.role is not None else v

    def head_logits(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Logits of pairs of embeddings (..., d) -> (...)."""
        if self.bilinear is not None and self.bias is not None:
            return ((u @ self.bilinear) * v).sum(-1) + self.bias
        assert self.head is not None
        if self.config.head == "mlp":
            feats = torch.cat([u, v, u * v, (u - v).abs()], dim=-1)
        else:
            feats = torch.cat([u * v, (u - v).abs()], dim=-1)
        return self.head(feats).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_logits(self.embed_tf(x[:, 0]), self.embed_target(x[:, 1]))


class TwoTowerEnsemble(nn.Module):
    """The fitted model: ``members`` networks whose logits are averaged.

    ``config`` (with ``n_samples`` and ``to_dict``) and ``state_dict`` are what a model file
    and a scan's workers need to rebuild it.
    """

    def __init__(self, config: TwoTowerConfig, members: list[TwoTowerNet] | None = None) -> None:
        super().__init__()
        self.config = config
        if members is None:
            members = [TwoTowerNet(config) for _ in range(config.members)]
        if len(members) != config.members:
            raise ValueError(f"{len(members)} members given for {config.members}")
        self.members = nn.ModuleList(members)

    @property
    def nets(self) -> list[TwoTowerNet]:
        """The members, typed."""
        return [m for m in self.members if isinstance(m, TwoTowerNet)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean member logit of pairs (N, 2, S)."""
        if x.ndim != 3 or x.shape[1] != 2 or x.shape[2] != self.config.n_samples:
            raise ValueError(
                f"expected input of shape (N, 2, {self.config.n_samples}), got {tuple(x.shape)}"
            )
        return torch.stack([net(x) for net in self.nets]).mean(0)


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(torch.float32)
    # np.require copies read-only arrays (memory-mapped files): torch needs writable memory
    return torch.from_numpy(np.require(x, np.float32, ["C", "W"]))


def _logits(net: nn.Module, X: torch.Tensor, batch: int = 4096) -> np.ndarray:
    """Inference-mode logits in batches (float64)."""
    net.eval()
    out = np.empty(X.shape[0], dtype=np.float64)
    with torch.no_grad():
        for s in range(0, X.shape[0], batch):
            out[s : s + batch] = net(X[s : s + batch]).double().numpy()
    return out


def profile_ids(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Node ids of each pair's TF and target, from identical profile rows of ``X`` (N, 2, S).

    A gene's profile is the same in both roles, so equal rows (byte for byte) are one node.
    """
    x = np.ascontiguousarray(X, dtype=np.float32)
    n, _, s = x.shape
    rows = np.concatenate([x[:, 0], x[:, 1]])
    keys = rows.view(np.dtype((np.void, 4 * s))).ravel()
    _, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.ravel().astype(np.int64)
    return inverse[:n], inverse[n:]


def _partners(keys: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each positive: the span (start, stop) of negatives sharing its key, and the rows.

    Returns (starts, stops, negative rows sorted by key); a positive with no such negative
    has start == stop.
    """
    neg = np.flatnonzero(y == 0)
    pos = np.flatnonzero(y == 1)
    order = np.argsort(keys[neg], kind="stable")
    sorted_keys, rows = keys[neg][order], neg[order]
    starts = np.searchsorted(sorted_keys, keys[pos], "left")
    stops = np.searchsorted(sorted_keys, keys[pos], "right")
    return starts, stops, rows


def _validation_score(
    net: nn.Module, val: tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray], metric: str
) -> float:
    """Validation figure (higher is better): grouped AUROC, or minus the log loss."""
    from ..evaluation.ranking import grouped_auroc

    xv, yv, tfv, tgv = val
    logits = _logits(net, xv)
    if metric == "loss":
        p = np.clip(1.0 / (1.0 + np.exp(-logits)), 1e-7, 1 - 1e-7)
        return float(np.mean(yv * np.log(p) + (1 - yv) * np.log(1 - p)))
    kind = "within_target" if metric == "within_target" else "within_tf"
    value = grouped_auroc(yv, logits, tfv, tgv, kind)
    return 0.5 if value is None else value


# -- the estimator ------------------------------------------------------------------------
class TwoTower(ClassifierMixin, BaseEstimator):
    """Two-tower pair classifier (see the module docstring); hyperparameters in ``__init__``.

    Fitted attributes: ``network_`` (:class:`TwoTowerEnsemble`), ``classes_`` ([0, 1]),
    ``history_`` (per member and epoch: loss, accuracy, validation figure; ``kept`` marks
    the epoch whose weights were kept), ``best_epochs_``, ``validation_`` (which
    validation pairs early stopping used), ``record_`` (:class:`TrainingRecord`).
    """

    kind = KIND

    def __init__(
        self,
        tower: str = "dense",
        shared: bool = True,
        hidden: int = 128,
        embed_dim: int = 32,
        conv_channels: int = 8,
        kernel_width: int = 5,
        head: str = "mlp",
        head_hidden: int = 64,
        dropout: float = 0.2,
        input_dropout: float = 0.1,
        noise: float = 0.1,
        loss: str = "ranking",
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 256,
        max_epochs: int = 60,
        patience: int = 10,
        min_epochs: int = 5,
        smooth: int = 3,
        val_metric: str = "within_target",
        n_seeds: int = 3,
        seed: int = 0,
    ) -> None:
        self.tower = tower
        self.shared = shared
        self.hidden = hidden
        self.embed_dim = embed_dim
        self.conv_channels = conv_channels
        self.kernel_width = kernel_width
        self.head = head
        self.head_hidden = head_hidden
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.noise = noise
        self.loss = loss
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_epochs = min_epochs
        self.smooth = smooth
        self.val_metric = val_metric
        self.n_seeds = n_seeds
        self.seed = seed

    # -- settings -----------------------------------------------------------------------
    def config_for(self, n_samples: int) -> TwoTowerConfig:
        """The architecture for inputs of ``n_samples`` columns (sizes checked, capped)."""
        return TwoTowerConfig(
            n_samples=n_samples,
            members=self.n_seeds,
            **{k: getattr(self, k) for k in ARCHITECTURE_KEYS},
        )

    def check_settings(self, n_samples: int = 2) -> TwoTowerConfig:
        """The architecture for ``n_samples`` columns; TfcnnInputError naming a bad setting.

        Checked before any data is read or any tensor made.
        """
        choices = (
            ("tower", self.tower, TOWERS),
            ("head", self.head, HEADS),
            ("loss", self.loss, LOSSES),
            ("val_metric", self.val_metric, VAL_METRICS),
        )
        for name, value, allowed in choices:
            if value not in allowed:
                raise TfcnnInputError(
                    f"`{name}` must be one of {', '.join(allowed)} (got {value!r})."
                )
        if not isinstance(self.shared, bool | np.bool_):
            raise TfcnnInputError(f"`shared` must be true or false (got {self.shared!r}).")
        counts: tuple[tuple[str, Any, int, int], ...] = (
            ("batch_size", self.batch_size, 1, 10_000_000),
            ("max_epochs", self.max_epochs, 1, 100_000),
            ("patience", self.patience, 1, 100_000),
            ("min_epochs", self.min_epochs, 0, 100_000),
            ("smooth", self.smooth, 1, 1_000),
            ("n_seeds", self.n_seeds, 1, MAX_MEMBERS),
            ("seed", self.seed, 0, 2**32 - 1 - MAX_MEMBERS),
        )
        for name, value, lo, hi in counts:
            if not _is_count(value) or not lo <= value <= hi:
                raise TfcnnInputError(
                    f"`{name}` must be a whole number from {lo} to {hi:,} (got {value!r})."
                )
        rates: tuple[tuple[str, Any, float, float, bool], ...] = (
            ("learning_rate", self.learning_rate, 0.0, 10.0, False),
            ("weight_decay", self.weight_decay, 0.0, 10.0, True),
            ("dropout", self.dropout, 0.0, 1.0, True),
            ("input_dropout", self.input_dropout, 0.0, 1.0, True),
            ("noise", self.noise, 0.0, 100.0, True),
        )
        for name, value, start, stop, closed in rates:
            ok = _is_number(value) and (start <= value < stop if closed else start < value < stop)
            if not ok:
                low = "[" if closed else "("
                raise TfcnnInputError(
                    f"`{name}` must be a number in {low}{start}, {stop}) (got {value!r})."
                )
        try:
            return self.config_for(n_samples)
        except (TypeError, ValueError) as exc:
            raise TfcnnInputError(f"invalid model settings: {exc}") from exc

    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "network_", None) is not None

    def fitted_network(self) -> TwoTowerEnsemble:
        """The trained ensemble (NotFittedError before :meth:`fit`)."""
        msg = "this %(name)s is not fitted yet; call fit() or load a saved model (load_model)."
        check_is_fitted(self, msg=msg)
        return self.network_

    @property
    def n_samples(self) -> int:
        """Input width the fitted model expects."""
        return self.fitted_network().config.n_samples

    # -- training -----------------------------------------------------------------------
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        tf_ids: np.ndarray | None = None,
        target_ids: np.ndarray | None = None,
        validation_data: tuple[np.ndarray, ...] | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> TwoTower:
        """Train on pairs ``X`` (N, 2, n_samples) with labels ``y`` (N,) in {0, 1}.

        ``tf_ids`` / ``target_ids`` (N,): node ids of each pair (any hashable codes), used by
        the ranking loss; derived from identical profile rows when not given.
        ``validation_data``: ``(X_val, y_val)`` or ``(X_val, y_val, tf_ids_val,
        target_ids_val)`` of validation TFs only (never test TFs), for early stopping;
        without it, every member trains ``max_epochs`` epochs.
        """
        X_t = _as_tensor(X)
        y_np = np.asarray(y)
        if X_t.ndim != 3 or X_t.shape[1] != 2:
            raise ValueError(f"X must have shape (N, 2, n_samples), got {tuple(X_t.shape)}")
        if y_np.shape != (X_t.shape[0],):
            raise ValueError(f"y must have shape ({X_t.shape[0]},), got {y_np.shape}")
        if not np.isin(y_np, (0, 1)).all():
            raise ValueError("y must contain only 0 and 1")
        y_np = y_np.astype(np.int64)
        config = self.check_settings(int(X_t.shape[2]))
        if self.loss == "ranking":
            if tf_ids is None or target_ids is None:
                tf_ids, target_ids = profile_ids(X_t.numpy())
            tf_codes = np.unique(np.asarray(tf_ids), return_inverse=True)[1].ravel()
            tg_codes = np.unique(np.asarray(target_ids), return_inverse=True)[1].ravel()
            ranking = (_partners(tg_codes, y_np), _partners(tf_codes, y_np))
            if not any((stops > starts).any() for starts, stops, _ in ranking):
                raise ValueError(
                    "the ranking loss needs negatives that share a TF or a target with the "
                    "positives, and these pairs have none; use loss='bce'."
                )
        else:
            ranking = None
        val = self._validation(validation_data, int(X_t.shape[2]))
        history: list[dict[str, Any]] = []
        best: list[int] = []
        nets = []
        done = 0
        with torch.random.fork_rng(devices=[]):
            for m in range(self.n_seeds):
                torch.manual_seed(self.seed + m)
                net = TwoTowerNet(config)

                def step(record: dict[str, Any], m: int = m) -> None:
                    nonlocal done
                    done += 1
                    record["member"] = m
                    history.append(record)
                    if on_epoch is not None:
                        on_epoch(done, record)

                best.append(self._fit_member(net, X_t, y_np, ranking, val, self.seed + m, step))
                nets.append(net)
        ensemble = TwoTowerEnsemble(config, nets)
        ensemble.eval()
        for r in history:
            r["kept"] = r["epoch"] == best[r["member"]]
        self.network_ = ensemble
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = int(X_t.shape[2])
        self.history_ = history
        self.best_epochs_ = best
        self.validation_ = (
            {"pairs": int(val[0].shape[0]), "metric": self.val_metric} if val else None
        )
        self.record_ = TrainingRecord()
        return self

    def _validation(
        self, data: tuple[np.ndarray, ...] | None, n_samples: int
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray] | None:
        if data is None:
            return None
        if len(data) not in (2, 4):
            raise ValueError("validation_data must be (X, y) or (X, y, tf_ids, target_ids)")
        xv = _as_tensor(data[0])
        yv = np.asarray(data[1]).astype(np.int64)
        if xv.ndim != 3 or xv.shape[1:] != (2, n_samples) or yv.shape != (xv.shape[0],):
            raise ValueError("validation pairs must have the training pairs' shape")
        if yv.size == 0:
            return None
        if len(data) == 4:
            tfv, tgv = np.asarray(data[2]), np.asarray(data[3])
        else:
            tfv, tgv = profile_ids(xv.numpy())
        return xv, yv, tfv, tgv

    def _augment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Input dropout and Gaussian noise on the z-scored profiles (training only)."""
        if self.input_dropout > 0:
            keep = (torch.rand(x.shape, generator=gen) >= self.input_dropout).to(x.dtype)
            x = x * keep / (1.0 - self.input_dropout)
        if self.noise > 0:
            x = x + self.noise * torch.randn(x.shape, generator=gen)
        return x

    def _fit_member(
        self,
        net: TwoTowerNet,
        X_t: torch.Tensor,
        y_np: np.ndarray,
        ranking: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...] | None,
        val: tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray] | None,
        seed: int,
        step: Callable[[dict[str, Any]], None],
    ) -> int:
        """Train one member in place; returns the epoch whose weights it keeps."""
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(
            net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        y_t = torch.from_numpy(y_np.astype(np.float32))
        pos = np.flatnonzero(y_np == 1)
        scores: list[float] = []
        best_score, best_state, best_epoch, since = -np.inf, None, 0, 0
        for epoch in range(1, self.max_epochs + 1):
            net.train()
            if ranking is None:
                loss, accuracy = self._bce_epoch(net, opt, X_t, y_t, rng, gen)
            else:
                loss, accuracy = self._ranking_epoch(net, opt, X_t, pos, ranking, rng, gen)
            record: dict[str, Any] = {"epoch": epoch, "loss": loss, "accuracy": accuracy}
            if val is not None:
                score = _validation_score(net, val, self.val_metric)
                scores.append(score)
                # The validation TFs are few: single-epoch figures are noisy, so early
                # stopping reads the mean of the last `smooth` epochs.
                smoothed = float(np.mean(scores[-self.smooth :]))
                record[f"val_{self.val_metric}"] = score
                record["val_smoothed"] = smoothed
                if epoch >= self.min_epochs:
                    if smoothed > best_score + 1e-6:
                        best_score, best_epoch, since = smoothed, epoch, 0
                        best_state = copy.deepcopy(net.state_dict())
                    else:
                        since += 1
            step(record)
            if val is not None and since >= self.patience:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        else:
            best_epoch = epoch
        net.eval()
        return best_epoch

    def _bce_epoch(
        self,
        net: TwoTowerNet,
        opt: torch.optim.Optimizer,
        X_t: torch.Tensor,
        y_t: torch.Tensor,
        rng: np.random.Generator,
        gen: torch.Generator,
    ) -> tuple[float, float]:
        n = X_t.shape[0]
        order = torch.from_numpy(rng.permutation(n))
        total, correct = 0.0, 0
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            logits = net(self._augment(X_t[idx], gen))
            loss = F.binary_cross_entropy_with_logits(logits, y_t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            correct += int(((logits.detach() >= 0).float() == y_t[idx]).sum())
        return total / n, correct / n

    def _ranking_epoch(
        self,
        net: TwoTowerNet,
        opt: torch.optim.Optimizer,
        X_t: torch.Tensor,
        pos: np.ndarray,
        ranking: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...],
        rng: np.random.Generator,
        gen: torch.Generator,
    ) -> tuple[float, float]:
        """One pass over the positives, each against a target- and a TF-sharing negative."""
        drawn = []
        for starts, stops, rows in ranking:  # (by target, by TF)
            has = stops > starts
            if rows.size == 0:
                drawn.append(np.full(pos.size, -1, dtype=np.int64))
                continue
            pick = starts + np.floor(rng.random(pos.size) * (stops - starts)).astype(np.int64)
            drawn.append(np.where(has, rows[np.minimum(pick, rows.size - 1)], -1))
        order = rng.permutation(pos.size)
        bs = max(1, self.batch_size // 3)
        total, wins, compared = 0.0, 0, 0
        for start in range(0, pos.size, bs):
            o = order[start : start + bs]
            negs = [d[o] for d in drawn]
            keep = [g >= 0 for g in negs]
            rows = np.concatenate([pos[o]] + [g[k] for g, k in zip(negs, keep, strict=True)])
            logits = net(self._augment(X_t[torch.from_numpy(rows)], gen))
            s_pos, offset, diffs = logits[: o.size], o.size, []
            for k in keep:
                count = int(k.sum())
                diffs.append(logits[offset : offset + count] - s_pos[torch.from_numpy(k)])
                offset += count
            diff = torch.cat(diffs)
            if diff.numel() == 0:
                continue
            loss = F.softplus(diff).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * diff.numel()
            wins += int((diff.detach() < 0).sum())
            compared += diff.numel()
        return total / max(1, compared), wins / max(1, compared)

    def fit_pairs(
        self,
        pairs: PairSet,
        on_epoch: EpochCallback | None = None,
        validate: bool = True,
    ) -> TwoTower:
        """Train on a pair set's train split, early-stopping on its validation split.

        Early stopping uses the validation pairs whose TF is not a training TF (validation
        TFs, as under tf-holdout); when every validation TF is also a training TF (a random
        split), all validation pairs, and ``validation_`` says so. The model then carries
        its genes, samples, z-scored matrix and pair set in ``record_``, like PairCNN.
        """
        x, y = pairs.arrays("train")
        train = pairs.mask("train")
        val_data = None
        held_out = False
        if validate:
            vmask, held_out = validation_mask(pairs)
            if vmask.any():
                val_data = (
                    pairs.x[vmask],
                    pairs.labels[vmask],
                    pairs.tf_rows[vmask],
                    pairs.target_rows[vmask],
                )
        self.fit(
            x,
            y,
            pairs.tf_rows[train],
            pairs.target_rows[train],
            validation_data=val_data,
            on_epoch=on_epoch,
        )
        if self.validation_ is not None:
            self.validation_["tfs"] = (
                "validation TFs (not in training)" if held_out else "training TFs (random split)"
            )
        self.record_ = TrainingRecord(
            genes=list(pairs.genes),
            samples=list(pairs.samples),
            zscores=np.ascontiguousarray(pairs.zscores, dtype=np.float32),
            pairs=pairs.record(),
            data=pairs.summary(),
        )
        return self

    # -- prediction ---------------------------------------------------------------------
    def _checked(self, X: np.ndarray) -> torch.Tensor:
        net = self.fitted_network()
        X_t = _as_tensor(X)
        if X_t.ndim != 3 or X_t.shape[1] != 2 or X_t.shape[2] != net.config.n_samples:
            raise ValueError(
                f"X must have shape (N, 2, {net.config.n_samples}), got {tuple(X_t.shape)}"
            )
        return X_t

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Mean member logit of each pair, shape (N,)."""
        return _logits(self.fitted_network(), self._checked(X))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities, shape (N, 2): column 1 = sigmoid of the mean member logit."""
        logits = self.decision_function(X)
        p = check_finite_probabilities(1.0 / (1.0 + np.exp(-logits)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """Hard labels at ``threshold``."""
        return (self.predict_proba(X)[:, 1] >= threshold).astype(int)

    def embed(self, zscores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of profiles (G, S) in the TF and target roles, each (members, G, d)."""
        net = self.fitted_network()
        z = _as_tensor(zscores)
        with torch.no_grad():
            u = torch.stack([m.embed_tf(z) for m in net.nets])
            v = torch.stack([m.embed_target(z) for m in net.nets])
        return u.numpy(), v.numpy()

    def input_gradients(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient x input of the mean logit for pairs (N, 2, S), and the probabilities.

        Row 0 of each pair is the TF profile (what drives the TF tower's part of the
        score), row 1 the target's. Inference mode (no dropout).
        """
        net = self.fitted_network()
        net.eval()
        x = self._checked(X).clone().requires_grad_(True)
        with torch.enable_grad():
            logits = net(x)
            (grad,) = torch.autograd.grad(logits.sum(), (x,))
        saliency = (grad * x.detach()).double().numpy()
        return saliency, torch.sigmoid(logits.detach()).double().numpy()

    def pair_scorer(self) -> TwoTowerScorer:
        """The fast scorer for predict, scan and the web app (towers once per gene)."""
        return TwoTowerScorer(self.fitted_network())

    # -- files (see tfcnn.model.files) -----------------------------------------------
    def save(self, path: str | os.PathLike[str], force: bool = False) -> Path:
        """Write the model directory ``path`` (atomically; see :mod:`tfcnn.model.files`)."""
        from .files import save_model

        return save_model(self, path, force=force)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TwoTower:
        """Read a two-tower model directory, validating everything."""
        from .files import load_model

        model = load_model(path)
        if not isinstance(model, TwoTower):
            raise TfcnnInputError(f"{path} holds a pair-cnn model, not a two-tower one.")
        return model


def validation_mask(pairs: PairSet) -> tuple[np.ndarray, bool]:
    """Validation pairs for early stopping and the prior blend, and whether TFs are held out.

    The validation pairs whose TF is not a training TF; when there are none (a random
    split), all validation pairs (and False).
    """
    vmask = pairs.mask("validation")
    train_tfs = np.unique(pairs.tf_rows[pairs.mask("train")])
    held = vmask & ~np.isin(pairs.tf_rows, train_tfs)
    return (held, True) if held.any() else (vmask, False)


def training_settings(training: Mapping[str, Any]) -> dict[str, Any]:
    """The "training" object of a two-tower model.json, every value's type checked."""
    out: dict[str, Any] = {}
    for key in TRAINING_KEYS:
        if key not in training:
            raise ValueError(f"training {key} is missing")
        value = training[key]
        if key in ("loss", "val_metric"):
            ok = isinstance(value, str)
        elif key in ("learning_rate", "weight_decay", "input_dropout", "noise"):
            ok = _is_number(value)
        else:
            ok = _is_count(value)
        if not ok:
            raise ValueError(f"training {key} = {value!r} has the wrong type")
        out[key] = value
    unknown = set(training) - set(TRAINING_KEYS)
    if unknown:
        raise ValueError(f"unknown training keys: {sorted(unknown)}")
    return out


def from_settings(architecture: Mapping[str, Any], training: Mapping[str, Any]) -> TwoTower:
    """An unfitted estimator from a model.json's architecture and training objects."""
    config = TwoTowerConfig.from_dict(architecture)
    settings = training_settings(training)
    if settings["n_seeds"] != config.members:
        raise ValueError(
            f"training n_seeds ({settings['n_seeds']}) differs from the architecture's "
            f"members ({config.members})"
        )
    est = TwoTower(**{k: getattr(config, k) for k in ARCHITECTURE_KEYS}, **settings)
    est.check_settings(config.n_samples)
    return est


# -- fast inference ------------------------------------------------------------------------
#: Pairs per chunk of the head (its (pairs, hidden) intermediates stay in the CPU caches).
CHUNK_PAIRS = 1024
#: Targets per chunk (a block's TFs are taken ``CHUNK_PAIRS // this`` at a time).
CHUNK_TARGETS = 128


@dataclass
class TowerTerms:
    """Per-gene terms of a two-tower ensemble: embeddings and the head's per-node parts.

    ``u``/``v``: (members, G, d) TF- and target-role embeddings; ``a`` / ``b``: (members, G,
    h) the per-node parts of the head's first layer for the TF and the target role (see
    :class:`_Head`); None for the bilinear head.
    """

    u: torch.Tensor
    v: torch.Tensor
    a: torch.Tensor | None
    b: torch.Tensor | None


@dataclass(frozen=True)
class _Head:
    """One member's head, split for block scoring.

    The first layer of the MLP head is ``Wa u + Wb v + Wc (u*v) + Wd |u-v| + bias`` (the
    interaction head has no ``Wa``, ``Wb``). With ``|x| = 2 relu(x) - x``, ``Wd |u-v| =
    2 Wd relu(u-v) - Wd u + Wd v``, so every term but two is per node: ``tf_side`` = ``(Wa -
    Wd)^T`` (d, h), ``target_side`` = ``(Wb + Wd)^T``, and a pair costs ``relu(u-v) @ relu_w``
    (``2 Wd^T``) plus ``(u*v) @ prod_w`` (``Wc^T``): two (d x h) products on contiguous
    rows, no concatenation. ``out`` (h,): output weights. Bilinear head: ``prod_w`` is the
    (d, d) matrix and the rest is None.
    """

    prod_w: torch.Tensor
    bias: float
    relu_w: torch.Tensor | None = None
    out: torch.Tensor | None = None
    tf_side: torch.Tensor | None = None
    target_side: torch.Tensor | None = None
    first_bias: torch.Tensor | None = None


def _split_head(net: TwoTowerNet) -> _Head:
    d = net.config.embed_dim
    if net.bilinear is not None and net.bias is not None:
        return _Head(net.bilinear.detach().clone(), float(net.bias))
    first, last = net.head_layers()
    w = first.weight.detach()
    if net.config.head == "mlp":
        wa, wb, wc, wd = (w[:, i * d : (i + 1) * d] for i in range(4))
        tf_side, target_side = wa - wd, wb + wd
    else:
        wc, wd = w[:, :d], w[:, d:]
        tf_side, target_side = -wd, wd
    return _Head(
        prod_w=wc.t().contiguous(),
        bias=float(last.bias),
        relu_w=(2.0 * wd).t().contiguous(),
        out=last.weight.detach()[0].clone(),
        tf_side=tf_side.t().contiguous(),
        target_side=target_side.t().contiguous(),
        first_bias=first.bias.detach().clone(),
    )


class TwoTowerScorer:
    """Inference-only form of a :class:`TwoTowerEnsemble`, with PairScorer's interface.

    :meth:`gene_terms` runs the towers once per gene; :meth:`score_block` scores every TF of
    a block against a target set from those terms; :meth:`predict_pairs` scores arbitrary
    (N, 2, S) pairs. Probabilities equal :meth:`TwoTower.predict_proba` to float rounding.
    Chunk sizes are fixed, so results do not depend on the machine.
    """

    def __init__(self, net: TwoTowerEnsemble, chunk: int = CHUNK_PAIRS) -> None:
        net.eval()
        self.net = net
        self.config = net.config
        self.chunk = max(1, int(chunk))
        with torch.no_grad():
            self._heads = [_split_head(m) for m in net.nets]

    def gene_terms(self, z: np.ndarray | torch.Tensor) -> TowerTerms:
        """Towers of every row of a z-scored matrix (genes x samples), once per gene."""
        zt = _as_tensor(z)
        width = self.config.n_samples
        if zt.ndim != 2 or zt.shape[1] != width:
            raise ValueError(f"gene terms need a (genes, {width}) matrix, not {tuple(zt.shape)}")
        us, vs, as_, bs = [], [], [], []
        with torch.no_grad():
            for m, head in zip(self.net.nets, self._heads, strict=True):
                u, v = m.embed_tf(zt), m.embed_target(zt)
                us.append(u)
                vs.append(v)
                if head.tf_side is not None and head.target_side is not None:
                    assert head.first_bias is not None
                    as_.append(u @ head.tf_side)
                    bs.append(v @ head.target_side + head.first_bias)
        a = torch.stack(as_) if as_ else None
        b = torch.stack(bs) if bs else None
        return TowerTerms(torch.stack(us), torch.stack(vs), a, b)

    def _logits_block(
        self, terms: TowerTerms, tf_idx: torch.Tensor, tg_idx: torch.Tensor
    ) -> torch.Tensor:
        """Mean member logits of every TF x target pair, (len(tf_idx), len(tg_idx))."""
        n_tf, n_tg = len(tf_idx), len(tg_idx)
        out = torch.zeros(n_tf, n_tg)
        step_t = max(1, min(n_tg, CHUNK_TARGETS))
        step_f = max(1, self.chunk // step_t)
        d = self.config.embed_dim
        for mi, head in enumerate(self._heads):
            u_all, v_all = terms.u[mi], terms.v[mi]
            if head.out is None:  # bilinear: one product per block
                u = u_all.index_select(0, tf_idx)
                out += (u @ head.prod_w) @ v_all.index_select(0, tg_idx).t() + head.bias
                continue
            assert terms.a is not None and terms.b is not None and head.relu_w is not None
            h = head.prod_w.shape[1]
            relu = torch.empty(step_f * step_t * d)
            prod = torch.empty(step_f * step_t * d)
            pre = torch.empty(step_f * step_t * h)
            for f0 in range(0, n_tf, step_f):
                fi = tf_idx[f0 : f0 + step_f]
                k = len(fi)
                u = u_all.index_select(0, fi)[:, None, :]
                a = terms.a[mi].index_select(0, fi)[:, None, :]
                for t0 in range(0, n_tg, step_t):
                    ti = tg_idx[t0 : t0 + step_t]
                    c, n = len(ti), k * len(ti)
                    v = v_all.index_select(0, ti)[None, :, :]
                    r = relu[: n * d].view(k, c, d)
                    torch.sub(u, v, out=r).relu_()
                    m = prod[: n * d].view(k, c, d)
                    torch.mul(u, v, out=m)
                    p = pre[: n * h].view(k, c, h)
                    torch.add(a, terms.b[mi].index_select(0, ti)[None], out=p)
                    p2 = p.view(n, h)
                    p2.addmm_(r.view(n, d), head.relu_w)
                    p2.addmm_(m.view(n, d), head.prod_w)
                    logits = F.gelu(p2) @ head.out
                    out[f0 : f0 + k, t0 : t0 + c] += logits.view(k, c) + head.bias
        return out / len(self._heads)

    def score_block(
        self, terms: TowerTerms, tf_rows: np.ndarray, target_rows: np.ndarray
    ) -> np.ndarray:
        """Probabilities of every (TF, target) pair: float32 (len(tf_rows), len(target_rows))."""
        tf_idx = torch.as_tensor(np.ascontiguousarray(tf_rows, dtype=np.int64))
        tg_idx = torch.as_tensor(np.ascontiguousarray(target_rows, dtype=np.int64))
        if len(tf_idx) == 0 or len(tg_idx) == 0:
            return np.empty((len(tf_idx), len(tg_idx)), dtype=np.float32)
        with torch.no_grad():
            return torch.sigmoid(self._logits_block(terms, tf_idx, tg_idx)).numpy()

    def score_pairs(
        self, terms: TowerTerms, tf_rows: np.ndarray, target_rows: np.ndarray
    ) -> np.ndarray:
        """Probabilities of the pairs ``(tf_rows[i], target_rows[i])`` of ``terms``' genes."""
        tf_idx = torch.as_tensor(np.ascontiguousarray(tf_rows, dtype=np.int64))
        tg_idx = torch.as_tensor(np.ascontiguousarray(target_rows, dtype=np.int64))
        if tf_idx.shape != tg_idx.shape or tf_idx.ndim != 1:
            raise ValueError("`tf_rows` and `target_rows` must be 1-D and of equal length")
        out = torch.zeros(len(tf_idx))
        with torch.no_grad():
            for lo in range(0, len(tf_idx), self.chunk):
                fi, ti = tf_idx[lo : lo + self.chunk], tg_idx[lo : lo + self.chunk]
                for mi, head in enumerate(self._heads):
                    u, v = terms.u[mi].index_select(0, fi), terms.v[mi].index_select(0, ti)
                    if head.out is None:
                        out[lo : lo + len(fi)] += ((u @ head.prod_w) * v).sum(1) + head.bias
                        continue
                    assert terms.a is not None and terms.b is not None
                    assert head.relu_w is not None
                    pre = terms.a[mi].index_select(0, fi) + terms.b[mi].index_select(0, ti)
                    pre.addmm_((u - v).relu_(), head.relu_w).addmm_(u * v, head.prod_w)
                    out[lo : lo + len(fi)] += F.gelu(pre) @ head.out + head.bias
            return torch.sigmoid(out / len(self._heads)).numpy()

    def predict_pairs(self, X: np.ndarray | torch.Tensor) -> np.ndarray:
        """Probabilities for arbitrary pairs ``X`` (N, 2, S), float32, in chunks."""
        logits = _logits(self.net, _as_tensor(X))  # the ensemble checks the shape
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def scorer_for(net: nn.Module) -> Any:
    """The fast scorer of a fitted network of either kind (a scan worker's entry point)."""
    from ..inference.engine import PairScorer
    from .network import PairCNNNetwork

    if isinstance(net, TwoTowerEnsemble):
        return TwoTowerScorer(net)
    if isinstance(net, PairCNNNetwork):
        return PairScorer.from_network(net)
    raise TypeError(f"no fast scorer for {type(net).__name__}")
