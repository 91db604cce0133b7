"""The pair models: the network, the scikit-learn estimator, its files, named models.

Modules: :mod:`~tfcnn.model.network` (the layers, Keras semantics),
:mod:`~tfcnn.model.estimator` (:class:`PairCNN`), :mod:`~tfcnn.model.two_tower`
(:class:`TwoTower`, the two-tower pair model), :mod:`~tfcnn.model.prior` (the explicit
target prior), :mod:`~tfcnn.model.record` (what a model
knows of its training data), :mod:`~tfcnn.model.files` (model directories),
:mod:`~tfcnn.model.registry` (bundled and registered names),
:mod:`~tfcnn.model.keras_import` (Keras HDF5 files, with the ``keras`` extra).
"""

from .estimator import PairCNN
from .files import load_model, save_model
from .network import CNNConfig
from .prior import TargetPrior
from .record import TrainingRecord
from .two_tower import TwoTower, TwoTowerConfig

#: A fitted pair model of either kind.
PairModel = PairCNN | TwoTower

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
