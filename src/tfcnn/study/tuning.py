"""The study's tuning scans: the architecture grid and the regularisation scan.

* grid: filters of conv 1, filters of conv 2 and dense units, each in {8, 16, 32, 64}
  (64 configurations), 30 epochs; validation accuracy, loss and AUROC at the last epoch.
* regularisation: batch norm after conv 1 / conv 2 on or off, dropout {0.01, 0.05, 0.1}
  or off, batch size {256, 512}, epochs {30, 40} (64 configurations), on the default
  architecture; the top 5 by validation accuracy, as the study's Table 1.

Both use the study's protocol (random split, random negatives) on a seeded subsample
of ``train_pairs`` training pairs (the study's grid used 6,900), validated on a seeded
subsample of ``validation_pairs`` validation pairs (None: the whole validation split).
Every configuration is one resumable job (see :mod:`.runner`); its ``data`` is the
contents spec of the dataset (:func:`.inputs.content_spec`: sha256 of each input, no
path), so the job runs wherever its inputs are shipped.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..model.estimator import PairCNN
from .protocols import build

GRID_VALUES = (8, 16, 32, 64)
DROPOUTS = (0.0, 0.01, 0.05, 0.1)
BATCH_SIZES = (256, 512)
EPOCHS = (30, 40)


def grid_configs(
    data: dict[str, Any],
    *,
    values: tuple[int, ...] = GRID_VALUES,
    epochs: int = 30,
    train_pairs: int = 6900,
    validation_pairs: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One job per (filters 1, filters 2, units) in ``values``^3."""
    return [
        _config(
            data,
            "grid",
            seed,
            train_pairs,
            validation_pairs,
            filters=[f1, f2],
            units=u,
            epochs=epochs,
        )
        for f1, f2, u in itertools.product(values, values, values)
    ]


def regularisation_configs(
    data: dict[str, Any],
    *,
    dropouts: tuple[float, ...] = DROPOUTS,
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    epochs: tuple[int, ...] = EPOCHS,
    train_pairs: int = 6900,
    validation_pairs: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One job per (norm 1, norm 2, dropout, batch size, epochs)."""
    out = []
    for bn1, bn2, d, b, e in itertools.product(
        (False, True), (False, True), dropouts, batch_sizes, epochs
    ):
        out.append(
            _config(
                data,
                "regularisation",
                seed,
                train_pairs,
                validation_pairs,
                batch_norm=[bn1, bn2],
                dropout=d,
                batch_size=b,
                epochs=e,
            )
        )
    return out


def _config(
    data: dict[str, Any],
    scan: str,
    seed: int,
    train_pairs: int,
    validation_pairs: int | None,
    **params: Any,
) -> dict[str, Any]:
    return {
        "validation_pairs": validation_pairs,
        "kind": "tune",
        "scan": scan,
        "data": data,
        "split": "random",
        "negatives": "random",
        "seed": seed,
        "train_pairs": train_pairs,
        "params": params,
    }


def run_tune_job(config: dict[str, Any], out: Path) -> dict[str, Any]:
    """Train one configuration; validation metrics at the last epoch and the history."""
    start = time.time()
    seed = int(config["seed"])
    pairs = build(config["data"], config["negatives"], config["split"], seed, (0.8, 0.1, 0.1))
    x, y = pairs.arrays("train")
    n_available = int(y.size)
    n = min(int(config["train_pairs"]), n_available)
    pick = np.sort(np.random.default_rng(seed).choice(y.size, size=n, replace=False))
    x, y = x[pick], y[pick]
    params = dict(config["params"])
    for key in ("filters", "batch_norm"):
        if key in params:
            params[key] = tuple(params[key])
    xv, yv = pairs.arrays("validation")
    n_val = min(int(config.get("validation_pairs") or yv.size), yv.size)
    pick_v = np.sort(np.random.default_rng(seed + 1).choice(yv.size, size=n_val, replace=False))
    model = PairCNN(seed=seed, **params)
    model.fit(x, y, validation_data=(xv[pick_v], yv[pick_v]))
    last = model.history_[-1]
    return {
        "val_accuracy": last["val_accuracy"],
        "val_loss": last["val_loss"],
        "val_auroc": last["val_auroc"],
        "train_accuracy": last["accuracy"],
        "n_train": n,
        "n_train_available": n_available,
        "n_validation": n_val,
        "history": model.history_,
        "seconds": round(time.time() - start, 1),
    }


def grid_table(rows: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """(config, metrics) of grid runs -> rows sorted by validation accuracy."""
    out = [
        {
            "filters_1": c["params"]["filters"][0],
            "filters_2": c["params"]["filters"][1],
            "units": c["params"]["units"],
            "val_accuracy": m["val_accuracy"],
            "val_loss": m["val_loss"],
            "val_auroc": m["val_auroc"],
        }
        for c, m in rows
    ]
    return sorted(out, key=lambda r: -(r["val_accuracy"] or 0))


def regularisation_table(rows: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict]:
    """(config, metrics) of regularisation runs -> Table 1 rows by validation accuracy."""
    out = []
    for c, m in rows:
        p = c["params"]
        out.append(
            {
                "val_accuracy": m["val_accuracy"],
                "val_loss": m["val_loss"],
                "norm_1": bool(p["batch_norm"][0]),
                "norm_2": bool(p["batch_norm"][1]),
                "dropout_used": p["dropout"] > 0,
                "rate": p["dropout"],
                "batch_size": p["batch_size"],
                "epochs": p["epochs"],
                "val_auroc": m["val_auroc"],
            }
        )
    return sorted(out, key=lambda r: -(r["val_accuracy"] or 0))
