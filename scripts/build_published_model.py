"""Rebuild the bundled model `published-2019` from the study's Keras file.

Usage (from the repository root):

    .venv/bin/python scripts/build_published_model.py [--force]

Reads src/tfcnn/data/published_model/convnet_model.hdf5 (the study's file, unchanged),
converts it with tfcnn.model.keras_import, records the provenance (with the top validation
accuracy read from the study's tuning log, tuning_runs.csv) and writes
src/tfcnn/data/models/published-2019/ (model.json + weights.safetensors).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from tfcnn.model.keras_import import PUBLISHED_2019_PROVENANCE, import_keras

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "tfcnn" / "data" / "published_model"
DEST = ROOT / "src" / "tfcnn" / "data" / "models" / "published-2019"


def top_validation_accuracy(path: Path) -> tuple[float, int]:
    """Highest metric_val_acc in the study's tuning log, and the number of runs."""
    with path.open(newline="", encoding="utf-8") as fh:
        values = [float(r["metric_val_acc"]) for r in csv.DictReader(fh) if r["metric_val_acc"]]
    return max(values), len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="replace an existing model")
    args = parser.parse_args()
    top, runs = top_validation_accuracy(SOURCE / "tuning_runs.csv")
    if abs(top - PUBLISHED_2019_PROVENANCE["tuning_top_validation_accuracy"]) > 1e-9:
        raise SystemExit(f"tuning_runs.csv tops at {top}, the provenance text says otherwise")
    prov = dict(PUBLISHED_2019_PROVENANCE)
    prov["tuning_runs"] = runs
    import_keras(SOURCE / "convnet_model.hdf5", DEST, provenance=prov, force=args.force)
    # Package data must be world-readable (the atomic temp directory is created 0700).
    DEST.chmod(0o755)
    for f in DEST.iterdir():
        f.chmod(0o644)
    print(f"wrote {DEST} (tuning log: {runs} runs, top validation accuracy {top})")


if __name__ == "__main__":
    main()
