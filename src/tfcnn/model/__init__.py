"""The pair models: the network, the scikit-learn estimator, its files, named models.

Modules: :mod:`~tfcnn.model.config` (the pair CNN's sizes and weight shapes, as data),
:mod:`~tfcnn.model.network` (the layers, Keras semantics),
:mod:`~tfcnn.model.estimator` (:class:`PairCNN`), :mod:`~tfcnn.model.two_tower`
(:class:`TwoTower`, the two-tower pair model), :mod:`~tfcnn.model.prior` (the explicit
target prior), :mod:`~tfcnn.model.record` (what a model
knows of its training data), :mod:`~tfcnn.model.files` (model directories),
:mod:`~tfcnn.model.stored` (reading them as data, without torch),
:mod:`~tfcnn.model.registry` (bundled and registered names),
:mod:`~tfcnn.model.keras_import` (Keras HDF5 files, with the ``keras`` extra).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import CNNConfig
    from .estimator import PairCNN
    from .files import load_model, save_model
    from .prior import TargetPrior
    from .record import TrainingRecord
    from .two_tower import TwoTower, TwoTowerConfig

    #: A fitted pair model of either kind.
    PairModel = PairCNN | TwoTower

# Imported on first use, so that a light module of this package (config, record, stored:
# what scoring a saved model needs) imports without torch and scikit-learn.
_LAZY = {
    "CNNConfig": "config",
    "PairCNN": "estimator",
    "load_model": "files",
    "save_model": "files",
    "TargetPrior": "prior",
    "TrainingRecord": "record",
    "TwoTower": "two_tower",
    "TwoTowerConfig": "two_tower",
}


def __getattr__(name: str) -> Any:
    if name == "PairModel":
        return __getattr__("PairCNN") | __getattr__("TwoTower")
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_LAZY[name]}", __name__), name)


__all__ = [
    "CNNConfig",
    "PairCNN",
    "PairModel",
    "TargetPrior",
    "TrainingRecord",
    "TwoTower",
    "TwoTowerConfig",
    "load_model",
    "save_model",
]
