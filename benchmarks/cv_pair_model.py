"""Five-fold TF hold-out of the two-tower model and the published CNN on bundled data.

Quality, not speed: the figures of docs/pair_model.md ("Measured with tfcnn") come from
this script. It uses only the product's calls:

1. ``tfcnn.pairs.build_tf_folds``: the bundled nitrogen compendium, positives of evidence
   TARGET + CHIPSeq + Litterature, folds grouped by TF, degree-matched negatives drawn
   within each fold's splits (every TF and target exactly balanced where it is tested),
   or ``--negatives tf-matched`` (each TF with its own non-targets, drawn once);
2. ``tfcnn.api.train`` per fold: ``two-tower`` (defaults, ``prior="target-frequency"``)
   and ``pair-cnn`` (the published configuration), both with the same seed;
3. the test pairs of all folds scored together by
   ``tfcnn.evaluation.evaluate.compare_with_controls`` (AUROCs computed within each fold,
   TFs resampled for the CIs), beside Pearson r, the TF-neighbour transfer (a relational
   baseline without training) and the node-identity controls.

Prints a table and writes JSON (``--output``). ``--folds 2 --epochs 3`` is a quick check
whose numbers mean nothing. Deterministic for a seed and thread count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.table import Table

from tfcnn import api
from tfcnn.evaluation.baselines import pearson_scores
from tfcnn.evaluation.evaluate import CONTROLS, compare_with_controls, node_controls
from tfcnn.evaluation.ranking import auroc_per_fold, grouped_auroc
from tfcnn.io.atomic import write_text
from tfcnn.model.prior import model_prior, target_frequency
from tfcnn.pairs import build_tf_folds
from tfcnn.study.protocols import neighbour_transfer

EVIDENCE = ["TARGET", "CHIPSeq", "Litterature"]


def _fold_scores(
    fold: Any, seed: int, epochs: int | None, models: list[str], control_seed: int
) -> dict[str, np.ndarray]:
    """Scores of one fold's test pairs: the models, the blend, Pearson r, the controls."""
    cnn_settings: dict[str, Any] = {} if epochs is None else {"epochs": epochs}
    tt_settings: dict[str, Any] = {} if epochs is None else {"max_epochs": epochs}
    two_tower = api.train(
        fold, architecture="two-tower", prior="target-frequency", seed=seed, **tt_settings
    )
    x, _ = fold.arrays("test")
    t = fold.table[fold.mask("test")]
    probability = two_tower.predict_proba(x)[:, 1]
    scores = {
        "two-tower": probability,
        "pearson": pearson_scores(x),
        **node_controls(fold, "test", seed=control_seed),
    }
    if "CNN" in models:
        cnn = api.train(fold, architecture="pair-cnn", seed=seed, **cnn_settings)
        scores["CNN"] = cnn.predict_proba(x)[:, 1]
    blend = model_prior(two_tower)
    if blend is not None:
        frequency = target_frequency(two_tower.record_, t["target"].astype(str).tolist())
        scores["prior + two-tower"] = blend.combine(probability, frequency)
        scores["prior weight"] = np.full(probability.size, blend.weight_prior)
    return scores


def _cached_fold(fold: Any, k: int, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """One fold's scores, from ``args.cache`` when it holds this fold at these settings."""
    t = fold.table[["tf", "target", "label", "split"]].astype(str)
    digest = hashlib.sha256(pd.util.hash_pandas_object(t, index=False).to_numpy()).hexdigest()
    train = "" if args.train_seed == args.seed else f"-train{args.train_seed}"
    base = f"fold{k}-of{args.folds}-{args.negatives}-seed{args.seed}{train}"
    tail = f"-epochs{args.epochs}-{digest[:16]}"
    # A run of both models also holds the two-tower scores a two-tower-only run needs.
    keys = [base + tail] if "CNN" in args.models else [base + "-two-tower-only" + tail, base + tail]
    path = None if args.cache is None else args.cache / f"{keys[0]}.npz"
    for key in keys if args.cache is not None else []:
        found = args.cache / f"{key}.npz"
        if found.exists():
            with np.load(found) as z:
                return {name: z[name] for name in z.files}
    scores = _fold_scores(fold, args.train_seed, args.epochs, args.models, args.seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, **scores)
        tmp.replace(path)
    return scores


def _test_arrays(folds: list[Any]) -> tuple[np.ndarray, ...]:
    """(labels, TFs, targets, fold numbers) of every fold's test pairs, in fold order."""
    tests = [f.table[f.mask("test")] for f in folds]
    return (
        np.concatenate([t["label"].to_numpy() for t in tests]),
        np.concatenate([t["tf"].astype(str).to_numpy() for t in tests]),
        np.concatenate([t["target"].astype(str).to_numpy() for t in tests]),
        np.concatenate([np.full(len(t), k) for k, t in enumerate(tests)]),
    )


def _write_json(path: Path, body: dict[str, Any]) -> None:
    write_text(path, json.dumps(body, indent=1, default=float), force=True)


def _replicates(folds: list[Any], args: argparse.Namespace, console: Console) -> None:
    """Two-tower within-target AUROC of each train seed (folds fixed), their mean and sd,
    and the AUROC of the replicates' probabilities averaged (a bigger ensemble)."""
    y, tf, target, fold_id = _test_arrays(folds)
    runs = {}
    for seed in args.replicates:
        args.train_seed = seed
        runs[seed] = np.concatenate(
            [_cached_fold(f, k, args)["two-tower"] for k, f in enumerate(folds)]
        )
    runs["average"] = np.mean([runs[s] for s in args.replicates], axis=0)
    out: dict[str, Any] = {}
    for name, score in runs.items():
        overall = grouped_auroc(y, score, tf, target, fold=fold_id)
        per_fold = auroc_per_fold(y, score, tf, target, fold_id)
        out[str(name)] = {"within_target": overall, "per_fold": per_fold}
        label = f"train seed {name}" if name != "average" else "probabilities averaged"
        folds_text = " ".join(f"{v:.3f}" for v in per_fold if v is not None)
        console.print(f"{label}: within-target {overall:.3f} (folds {folds_text})")
    values = [out[str(s)]["within_target"] for s in args.replicates]
    mean, sd = float(np.mean(values)), float(np.std(values, ddof=1))
    console.print(f"{len(values)} replicates: mean {mean:.3f}, sd {sd:.3f}")
    if args.output is not None:
        body = {"negatives": args.negatives, "replicates": out, "mean": mean, "sd": sd}
        _write_json(args.output, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="folds and negatives")
    parser.add_argument(
        "--train-seed",
        type=int,
        default=None,
        help="the models' seed (default: --seed); the two-tower ensembles 3 members from it",
    )
    parser.add_argument("--models", nargs="+", default=["two-tower", "CNN"])
    parser.add_argument(
        "--negatives", default="degree-matched", choices=["degree-matched", "tf-matched"]
    )
    parser.add_argument("--epochs", type=int, default=None, help="cap (quick checks only)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=None, help="keep fold scores here (reused)")
    parser.add_argument(
        "--only", type=int, nargs="+", default=None, help="fill --cache for these folds, then stop"
    )
    parser.add_argument(
        "--replicates",
        type=int,
        nargs="+",
        default=None,
        help="train seeds: summarise these replicates (mean, sd, per fold) and their average",
    )
    args = parser.parse_args()
    if args.train_seed is None:
        args.train_seed = args.seed
    if "two-tower" not in args.models or not set(args.models) <= {"two-tower", "CNN"}:
        parser.error("--models: two-tower, optionally with CNN")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    console = Console()
    start, load0 = time.perf_counter(), os.getloadavg()[0]
    expression = api.load_expression("nitrogen-expression")
    known = api.load_interactions("nitrogen-edges", evidence=EVIDENCE)
    folds = build_tf_folds(expression, known, args.folds, negatives=args.negatives, seed=args.seed)
    parts: dict[str, list[np.ndarray]] = {}
    if args.only is not None:  # another process aggregates from the cache
        for k in args.only:
            _cached_fold(folds[k], k, args)
        return
    if args.replicates is not None:
        _replicates(folds, args, console)
        return
    for k, fold in enumerate(folds):
        t = fold.table[fold.mask("test")]
        for name, s in _cached_fold(fold, k, args).items():
            parts.setdefault(name, []).append(np.asarray(s, dtype=np.float64))
        # no training, so computed here rather than cached: the study's relational yardstick
        parts.setdefault("TF-neighbour transfer", []).append(neighbour_transfer(fold))
        console.print(f"fold {k}: {len(t):,} test pairs, {t['tf'].nunique()} TFs")
    prior_weights = [float(w[0]) for w in parts.pop("prior weight", [])]
    scores = {name: np.concatenate(v) for name, v in parts.items()}
    y, tf, target, fold_id = _test_arrays(folds)
    result: dict[str, Any] = {}
    for model in ("two-tower", "CNN", "prior + two-tower"):
        if model in scores:
            result[model] = compare_with_controls(
                y, tf, target, scores, model, CONTROLS, fold_id, args.bootstrap, args.seed
            )
    per_fold = {name: auroc_per_fold(y, s, tf, target, fold_id) for name, s in scores.items()}
    methods = result["two-tower"]["methods"]
    table = Table(title=f"{args.folds}-fold TF hold-out, {args.negatives} negatives, test pairs")
    for column in ("method", "within-target", "within-TF", "pooled", "within-target per fold"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, m in methods.items():
        table.add_row(
            name,
            *(f"{m[f'{kind}_auroc']:.3f}" for kind in ("within_target", "within_tf", "pooled")),
            " ".join(f"{v:.3f}" for v in per_fold[name]),
        )
    console.print(table)
    for model, r in result.items():
        v = r["versus_best_control"]["within_target"]
        console.print(
            f"{model} minus {v['control']} (within-target): {v['difference']:+.3f} "
            f"[{v['low']:+.3f}, {v['high']:+.3f}]"
        )
    elapsed = time.perf_counter() - start
    load = (load0, os.getloadavg()[0])
    console.print(f"prior weights per fold: {[round(w, 3) for w in prior_weights]}")
    console.print(f"{elapsed / 60:.1f} min, load average {load[0]:.1f} -> {load[1]:.1f}")
    if args.output is not None:
        out = {
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
            | {"evidence": EVIDENCE},
            "comparisons": result,
            "within_target_per_fold": per_fold,
            "prior_weights": prior_weights,
            "pairs": int(y.size),
            "minutes": elapsed / 60,
            "load_average": load,
        }
        _write_json(args.output, out)


if __name__ == "__main__":
    main()
