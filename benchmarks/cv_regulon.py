"""Regulon expansion (TF seen in training) on bundled data: issue 15's third goal.

Quality, not speed. The bundled nitrogen compendium with positives TARGET + CHIPSeq +
Litterature and exactly degree-matched negatives (``tfcnn.api.build_pairs``), then
``tfcnn.evaluation.regulon.evaluate_regulon`` with its defaults: part k of every TF's
pairs hidden in fold k, the rest known; every method scores the hidden pairs as
``tfcnn expand`` does. Prints pooled, within-target and within-TF AUROC per method and
the within-target CI; ``--output`` writes the JSON summary. ``--quick``: 2 folds and a
tiny model (numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from tfcnn import api
from tfcnn.evaluation.regulon import evaluate_regulon

EVIDENCE = ["TARGET", "CHIPSeq", "Litterature"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--negatives", default="degree-matched")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    console = Console()
    start, load0 = time.perf_counter(), os.getloadavg()[0]
    pairs = api.build_pairs(
        "nitrogen-expression",
        "nitrogen-edges",
        evidence=EVIDENCE,
        negatives=args.negatives,
        seed=args.seed,
    )
    quick = {"n_folds": 2, "model_params": {"n_seeds": 1, "max_epochs": 2}, "n_boot": 20}
    options = quick if args.quick else {}
    result = evaluate_regulon(pairs, seed=args.seed, log=console.print, **options)
    summary = result.to_json()
    table = Table(title=f"Regulon expansion (TF seen), {args.negatives} negatives")
    for column in ("method", "within-target", "95% CI", "within-TF", "pooled"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, m in summary["metrics"].items():
        low, high = m.get("within_target_auroc_ci") or (float("nan"), float("nan"))
        table.add_row(
            name,
            f"{m['within_target_auroc']:.3f}",
            f"[{low:.3f}, {high:.3f}]",
            f"{m['within_tf_auroc']:.3f}",
            f"{m['pooled_auroc']:.3f}",
        )
    console.print(table)
    elapsed = time.perf_counter() - start
    load = (load0, os.getloadavg()[0])
    console.print(f"{elapsed / 60:.1f} min, load average {load[0]:.1f} -> {load[1]:.1f}")
    if args.output is not None:
        settings = vars(args) | {"output": str(args.output)}
        summary |= {"minutes": elapsed / 60, "load_average": load, "settings": settings}
        tmp = args.output.with_name(args.output.name + ".tmp")
        tmp.write_text(json.dumps(summary, indent=1, default=float))
        tmp.replace(args.output)


if __name__ == "__main__":
    main()
