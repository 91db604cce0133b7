"""The pair CNN's architecture as plain data: sizes, Keras constants, and the names and
shapes of its weights, without PyTorch.

:class:`CNNConfig` is what ``model.json`` stores under "architecture" for a pair CNN. It
checks every size before anything is allocated, because a model file is user data.
:meth:`CNNConfig.state_shapes` names the tensors a saved model must hold, so a model file
can be checked, and scored by the fused kernel, without importing torch (see
:mod:`tfcnn.model.stored`); :class:`~tfcnn.model.network.PairCNNNetwork` is the same
architecture as PyTorch layers.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass

import numpy as np

KERAS_BN_EPS = 1e-3
KERAS_BN_MOMENTUM = 0.99

#: Size caps, checked before any tensor is made (a model file or option could ask for more).
MAX_SAMPLES = 100_000
MAX_FILTERS = 1_024
MAX_UNITS = 4_096
MAX_KERNEL_WIDTH = 1_024
MAX_PARAMETERS = 50_000_000


def _is_count(value: object) -> bool:
    """A whole number (Python or numpy), not a bool nor a float that happens to be whole."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


@dataclass(frozen=True)
class CNNConfig:
    """Architecture hyperparameters; the defaults are the published model for 232 samples."""

    n_samples: int = 232
    filters: tuple[int, int] = (4, 8)
    units: int = 8
    batch_norm: tuple[bool, bool] = (False, True)
    dropout: float = 0.01
    kernel_width: int = 5
    kernel_height: int = 2

    def __post_init__(self) -> None:
        # Strict types and sizes before anything is allocated: a model.json is user data.
        if not isinstance(self.filters, list | tuple) or len(self.filters) != 2:
            raise ValueError(f"filters must be two positive integers (got {self.filters!r}).")
        if not isinstance(self.batch_norm, list | tuple) or len(self.batch_norm) != 2:
            raise ValueError(f"batch_norm must be two booleans (got {self.batch_norm!r}).")
        object.__setattr__(self, "filters", tuple(self.filters))
        object.__setattr__(self, "batch_norm", tuple(self.batch_norm))
        if not all(isinstance(b, bool | np.bool_) for b in self.batch_norm):
            raise ValueError(f"batch_norm must be two booleans (got {self.batch_norm!r}).")
        object.__setattr__(self, "batch_norm", tuple(bool(b) for b in self.batch_norm))
        for name, value, hi in (
            ("n_samples", self.n_samples, MAX_SAMPLES),
            ("filters[0]", self.filters[0], MAX_FILTERS),
            ("filters[1]", self.filters[1], MAX_FILTERS),
            ("units", self.units, MAX_UNITS),
            ("kernel_width", self.kernel_width, MAX_KERNEL_WIDTH),
            ("kernel_height", self.kernel_height, 2),
        ):
            if not _is_count(value) or not 1 <= value <= hi:
                raise ValueError(f"{name} must be a whole number from 1 to {hi} (got {value!r}).")
        for name in ("n_samples", "units", "kernel_width", "kernel_height"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))
        if self.n_samples < 2:
            raise ValueError(f"n_samples must be at least 2 (got {self.n_samples}).")
        if (
            isinstance(self.dropout, bool)
            or not isinstance(self.dropout, int | float)
            or not 0.0 <= self.dropout < 1.0
        ):
            raise ValueError(f"dropout must be in [0, 1) (got {self.dropout!r}).")
        object.__setattr__(self, "dropout", float(self.dropout))
        if self.n_parameters > MAX_PARAMETERS:
            raise ValueError(
                f"this architecture has {self.n_parameters:,} weights, more than tfcnn "
                f"accepts ({MAX_PARAMETERS:,}); use fewer filters or units."
            )

    @property
    def n_parameters(self) -> int:
        """Trainable weights (without batch-norm statistics): sizes are capped by this."""
        f1, f2 = self.filters
        k = self.kernel_height * self.kernel_width
        conv = (k + f1 + f1) + (f1 * k + f1 * f2 + f2)
        norm = 2 * f1 * self.batch_norm[0] + 2 * f2 * self.batch_norm[1]
        return conv + norm + self.flat_features * self.units + self.units + self.units + 1

    @property
    def pooled_width(self) -> int:
        """Width after the 2x2 max-pool (floored, as Keras 'valid')."""
        return self.n_samples // 2

    @property
    def flat_features(self) -> int:
        """Features entering the first dense layer (height 1 after pooling)."""
        return self.pooled_width * self.filters[1]

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        d["filters"] = list(self.filters)
        d["batch_norm"] = list(self.batch_norm)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CNNConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown architecture keys: {sorted(unknown)}")
        d = dict(d)
        if "filters" in d:
            d["filters"] = tuple(d["filters"])
        if "batch_norm" in d:
            d["batch_norm"] = tuple(d["batch_norm"])
        return cls(**d)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every weight a saved model holds (PyTorch's state-dict names,
        without batch norm's ``num_batches_tracked`` counters)."""
        f1, f2 = self.filters
        kh, kw = self.kernel_height, self.kernel_width
        shapes: dict[str, tuple[int, ...]] = {
            "conv1.depthwise": (1, kh, kw),
            "conv1.pointwise": (f1, 1),
            "conv1.bias": (f1,),
        }
        stats = ("weight", "bias", "running_mean", "running_var")
        if self.batch_norm[0]:
            shapes.update({f"norm1.{s}": (f1,) for s in stats})
        shapes.update(
            {"conv2.depthwise": (f1, kh, kw), "conv2.pointwise": (f2, f1), "conv2.bias": (f2,)}
        )
        if self.batch_norm[1]:
            shapes.update({f"norm2.{s}": (f2,) for s in stats})
        shapes.update(
            {
                "dense.weight": (self.units, self.flat_features),
                "dense.bias": (self.units,),
                "out.weight": (1, self.units),
                "out.bias": (1,),
            }
        )
        return shapes


def same_padding(kernel: int) -> tuple[int, int]:
    """Keras/TensorFlow 'same' padding (before, after): the odd extra goes after."""
    total = kernel - 1
    return total // 2, total - total // 2
