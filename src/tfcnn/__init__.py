"""tfcnn: which transcription factors regulate which genes, from expression profiles.

The public API, in the order the data flows (each name is imported on first use, so
``import tfcnn`` stays light)::

    import tfcnn

    pairs = tfcnn.build_pairs("nitrogen-expression", "nitrogen-edges",
                              evidence=["TARGET", "CHIPSeq", "Litterature"],
                              negatives="degree-matched", split="tf-holdout")
    model = tfcnn.train(pairs, epochs=30)              # a PairCNN (scikit-learn estimator)
    report = tfcnn.evaluate(model, pairs)              # within-target AUROC beside controls
    table = tfcnn.predict(model, "AT1G49720").table    # every gene, decomposed scores

Modules by job: :mod:`tfcnn.io` (files), :mod:`tfcnn.pairs`, :mod:`tfcnn.model`,
:mod:`tfcnn.evaluation`, :mod:`tfcnn.inference`, :mod:`tfcnn.explain`, :mod:`tfcnn.study`,
:mod:`tfcnn.apps` (command line, web app); :mod:`tfcnn.api` holds the one-call functions.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0.dev0"

#: Public name -> module that defines it.
_EXPORTS = {
    "ExpressionMatrix": "tfcnn.io.expression",
    "Interactions": "tfcnn.io.interactions",
    "PairSet": "tfcnn.pairs",
    "PairCNN": "tfcnn.model",
    "TwoTower": "tfcnn.model",
    "TrainingRecord": "tfcnn.model",
    "TfcnnInputError": "tfcnn.errors",
    "load_expression": "tfcnn.api",
    "load_interactions": "tfcnn.api",
    "build_pairs": "tfcnn.api",
    "tf_group_folds": "tfcnn.pairs",
    "build_tf_folds": "tfcnn.pairs",
    "load_model": "tfcnn.api",
    "train": "tfcnn.api",
    "evaluate": "tfcnn.api",
    "predict": "tfcnn.api",
    "explain_pair": "tfcnn.api",
    "expand": "tfcnn.api",
    "evaluate_regulon": "tfcnn.evaluation.regulon",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tfcnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
