"""`run`: every protocol, baseline, control and tuning scan for one dataset.

Settings are stored in ``RESULTS/study-config.json``, with the sha256 of every input
file (see :mod:`.inputs`); runs in ``RESULTS/runs/`` (see :mod:`.runner`); :func:`collect`
turns finished runs into ``RESULTS/study.json``, the numbers the report shows. A folder
made from other input contents is never resumed (nor mixed): it is refused, or with
``force`` started over.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import TfcnnInputError
from ..evaluation.evaluate import (
    CONTROLS,
    HEADLINE,
    LABELS,
    MATCH_MARGIN,
    compare_with_controls,
    strictness,
)
from ..evaluation.ranking import GROUPINGS, grouped_auprc, paired_bootstrap, ranking_metrics
from ..io.atomic import write_text
from ..pairs import PairSet
from . import protocols, runner, tuning
from .inputs import (
    CONTENTS,
    StudyInputs,
    changed_files,
    content_spec,
    describe_changes,
    read_inputs,
)

SETTINGS_FILE = "study-config.json"
SUMMARY_FILE = "study.json"
CONTROL_MARGIN = MATCH_MARGIN
METRICS_VERSION = 2
#: Bootstrap replicates (TFs resampled) of the protocols' 95% CIs (``--bootstrap``).
COLLECT_BOOTSTRAP = 500
#: Per-replicate metrics averaged in the report (mean, sd over replicates).
RUN_METRICS = (
    "within_target_auroc",
    "within_tf_auroc",
    "pooled_auroc",
    "within_target_auprc",
    "pooled_auprc",
)
_CHANCE = "_chance"


def default_settings(
    data: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    replicates: int = 5,
    epochs: int = 30,
    splits: tuple[str, ...] = protocols.SPLITS,
    negatives: tuple[str, ...] = protocols.NEGATIVES,
    genie3_trees: int = 50,
    bootstrap: int = COLLECT_BOOTSTRAP,
    grid: dict[str, Any] | None = None,
    regularisation: dict[str, Any] | None = None,
    models: tuple[str, ...] = protocols.DEFAULT_MODELS,
    two_tower: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Study settings; ``data`` defaults to the bundled nitrogen compendium as the demo.

    ``models``: the learned models of every protocol run ("pair-cnn", "two-tower");
    ``two_tower``: :class:`~tfcnn.model.two_tower.TwoTower` settings (its ``max_epochs``
    defaults to ``epochs``).
    """
    if data is None:
        data = protocols.default_data_spec()
    return {
        "tfcnn_version": __version__,
        "data": data,
        "seed": seed,
        "protocols": {
            "replicates": replicates,
            "epochs": epochs,
            "splits": list(splits),
            "negatives": list(negatives),
            "fractions": [0.8, 0.1, 0.1],
            "genie3_trees": genie3_trees,
            "bootstrap": bootstrap,
            "models": list(models),
            **({"two_tower": dict(two_tower or {})} if "two-tower" in models else {}),
        }
        if replicates > 0
        else None,
        "grid": grid,
        "regularisation": regularisation,
    }


def protocol_configs(settings: dict[str, Any]) -> list[dict[str, Any]]:
    p = settings.get("protocols")
    if not p:
        return []
    return [
        {
            "kind": "protocol",
            "data": content_spec(settings["data"]),
            "split": split,
            "negatives": neg,
            "replicate": r,
            "n_replicates": p["replicates"],
            "seed": settings["seed"],
            "epochs": p["epochs"],
            "fractions": p["fractions"],
            # v2: within-target / within-TF metrics, TF-bootstrap CIs, per-split
            # degree-matched folds (runs of earlier versions are not reused)
            "metrics_version": METRICS_VERSION,
            "bootstrap": p.get("bootstrap", COLLECT_BOOTSTRAP),
            # the CNN alone: no key, so such runs keep the hashes they had before issue 15
            **(
                {"models": models(settings), "two_tower": p.get("two_tower") or {}}
                if "two-tower" in models(settings)
                else {}
            ),
        }
        for split in p["splits"]
        for neg in p["negatives"]
        for r in range(p["replicates"])
    ]


def models(settings: dict[str, Any]) -> list[str]:
    """The learned models of a study's protocol runs (settings without ``models``, made
    before issue 15: the CNN alone)."""
    return list((settings.get("protocols") or {}).get("models") or ["pair-cnn"])


def genie3_config(settings: dict[str, Any]) -> dict[str, Any] | None:
    p = settings.get("protocols")
    if not p or not p.get("genie3_trees"):
        return None
    return {
        "kind": "genie3",
        "data": content_spec(settings["data"]),
        "seed": settings["seed"],
        "n_estimators": p["genie3_trees"],
    }


def tuning_configs(settings: dict[str, Any], scan: str) -> list[dict[str, Any]]:
    g = settings.get(scan)
    if not g:
        return []
    data = content_spec(settings["data"])
    if scan == "grid":
        return tuning.grid_configs(
            data,
            values=tuple(g["values"]),
            epochs=g["epochs"],
            train_pairs=g["train_pairs"],
            validation_pairs=g.get("validation_pairs"),
            seed=settings["seed"],
        )
    return tuning.regularisation_configs(
        data,
        dropouts=tuple(g["dropouts"]),
        batch_sizes=tuple(g["batch_sizes"]),
        epochs=tuple(g["epochs"]),
        train_pairs=g["train_pairs"],
        validation_pairs=g.get("validation_pairs"),
        seed=settings["seed"],
    )


def all_configs(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Every job of a study: GENIE3 and the protocols first (the honest numbers), then the
    tuning scans (largest grid configs first, so the pool ends on short jobs)."""
    g3 = genie3_config(settings)
    grid = sorted(
        tuning_configs(settings, "grid"),
        key=lambda c: -(c["params"]["filters"][0] * c["params"]["filters"][1]),
    )
    return (
        ([g3] if g3 else [])
        + protocol_configs(settings)
        + grid
        + tuning_configs(settings, "regularisation")
    )


def _comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as they decide the runs: no version or command, data by contents only."""
    out = {k: v for k, v in settings.items() if k not in ("tfcnn_version", "commands")}
    if isinstance(out.get("data"), dict):
        out["data"] = content_spec(out["data"])
    if isinstance(out.get("protocols"), dict):  # a study made before issue 15: the CNN alone
        out["protocols"] = {**out["protocols"], "models": models(settings)}
    return out


def prepare_output(output: str | os.PathLike[str], settings: dict[str, Any], force: bool) -> Path:
    """Create or resume ``output``: a study folder with the same settings and the same
    input contents is resumed; other contents are refused (``force``: started over)."""
    out = Path(output)
    old = check_output(out, force)
    if old and not force:
        _check_resumable(out, old, settings)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / SETTINGS_FILE, json.dumps(settings, indent=2) + "\n", force=True)
    return out


def check_output(output: str | os.PathLike[str], force: bool) -> dict[str, Any] | None:
    """Refuse an ``output`` that cannot hold these results, before any input is read;
    return the settings of the results folder it already is (None: new or forced)."""
    out = Path(output)
    if not out.exists():
        return None
    if not out.is_dir():
        raise TfcnnInputError(f"{out} is a file; give a folder as --output.")
    if (out / SETTINGS_FILE).is_file():
        try:
            return read_settings(out)
        except TfcnnInputError:
            if not force:
                raise
            return None
    if any(out.iterdir()) and not force:
        raise TfcnnInputError(
            f"{out} exists and is not a tfcnn results folder; choose another --output "
            "or pass --force."
        )
    return None


def _check_resumable(out: Path, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Refuse to resume ``out`` with other input contents (named) or other settings."""
    if CONTENTS not in old["data"]:
        raise TfcnnInputError(
            f"{out} was made by a tfcnn that did not record the contents of its inputs, so "
            "its runs cannot be checked against these files; choose another --output, or "
            "pass `force` to start over there."
        )
    changed = changed_files(old["data"], new["data"])
    if changed:
        what = describe_changes(old["data"], new["data"], changed)
        raise TfcnnInputError(
            f"{out} was made from other input data: {what}. "
            "Runs on other data are never mixed: restore the original file, choose another "
            "--output, or pass `force` to start over there with these inputs (runs on the "
            "old contents are then never used)."
        )
    if old.get("protocols") and new.get("protocols") and models(old) != models(new):
        raise TfcnnInputError(
            f"{out} holds a study of other models ({','.join(models(old))}; now "
            f"{','.join(models(new))}): its protocol runs would not compare them on the same "
            f"pairs. Rerun with `models` {','.join(models(old))}, choose another --output, or "
            "pass `force` to use these models there."
        )
    if _comparable(old) != _comparable(new):
        raise TfcnnInputError(
            f"{out} holds a study with other settings ({out / SETTINGS_FILE}); choose another "
            "--output, or pass `force` to use these settings there (finished runs "
            "with identical configs and inputs are still reused)."
        )


def run(
    output: str | os.PathLike[str],
    settings: dict[str, Any],
    *,
    inputs: StudyInputs | None = None,
    workers: int = 2,
    scheduler: str | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run (or resume) every job of ``settings`` in ``output``; write study.json.

    The inputs are read once here (or given as ``inputs``, read by
    :func:`.inputs.read_inputs` from ``settings["data"]``), and their contents recorded
    in the settings; the jobs get them as data, wherever they run.
    """
    as_typed = {k: v for k, v in settings["data"].items() if k != CONTENTS}
    if inputs is None:
        inputs = read_inputs(as_typed)
    elif {k: v for k, v in inputs.spec.items() if k != CONTENTS} != as_typed:
        raise ValueError("`inputs` were read from other files than `settings` name")
    settings = {**settings, "data": inputs.spec}
    out = prepare_output(output, settings, force)
    configs = all_configs(settings)
    finished = sum(runner.is_finished(out, c) for c in configs)
    log(f"{len(configs)} runs ({finished} already finished, skipped) in {out / runner.RUNS_DIR}")

    def on_done(config: dict[str, Any], done: int, total: int) -> None:
        log(f"  [{done}/{total}] {describe(config)}")

    counts = runner.run_jobs(
        configs, out, inputs=inputs, workers=workers, scheduler=scheduler, on_done=on_done
    )
    summary = collect(out)
    summary["run_counts"] = counts
    write_text(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n", force=True)
    return summary


def describe(config: dict[str, Any]) -> str:
    kind = config["kind"]
    if kind == "protocol":
        return (
            f"protocol split={config['split']} negatives={config['negatives']} "
            f"replicate {config['replicate'] + 1}/{config['n_replicates']}"
        )
    if kind == "tune":
        return f"tune {config['scan']} {json.dumps(config['params'], sort_keys=True)}"
    return f"GENIE3 ({config['n_estimators']} trees per target)"


def read_settings(results: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings of a results folder, checked to be what `study`/`tune` wrote."""
    path = Path(results) / SETTINGS_FILE
    if not path.is_file():
        raise TfcnnInputError(
            f"{results} is not a tfcnn results folder (no {SETTINGS_FILE}); create one with "
            "'tfcnn study' or 'tfcnn tune'."
        )
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise TfcnnInputError(f"{path} is not valid JSON ({str(exc)[:200]}).") from exc
    data = settings.get("data") if isinstance(settings, dict) else None
    ok = (
        isinstance(data, dict)
        and all(isinstance(data.get(k), str) for k in ("expression", "interactions"))
        and isinstance(contents := data.get(CONTENTS, {}), dict)
        and all(isinstance(v, dict | None) for v in contents.values())
        and isinstance(settings.get("seed"), int)
        and all(isinstance(settings.get(k), dict | None) for k in _SECTIONS)
    )
    if not ok:
        raise TfcnnInputError(
            f"{path} is not the settings file of a tfcnn study (it lacks 'data', 'seed' or "
            "a section); it was edited or damaged. Rerun 'tfcnn study' or 'tfcnn tune' with "
            "--force into this folder, or choose another one."
        )
    return settings


_SECTIONS = ("protocols", "grid", "regularisation")


def _mean_sd(values: list[float | None]) -> dict[str, Any]:
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return {"mean": None, "sd": None, "n": 0, "values": []}
    return {
        "mean": float(np.mean(v)),
        "sd": float(np.std(v, ddof=1)) if len(v) > 1 else None,
        "n": len(v),
        "values": [float(x) for x in v],
    }


def data_summary(settings: dict[str, Any], pairs: PairSet | None = None) -> dict[str, Any]:
    """Genes, samples, positives per TF, the largest TF's share, the negatives policy."""
    if pairs is None:
        pairs = reference_pairs(settings)
    pos = pairs.table[pairs.table["label"] == 1]
    per_tf = pos["tf"].value_counts()
    return {
        "data": settings["data"],
        "n_genes": len(pairs.genes),
        "n_samples": len(pairs.samples),
        "positives": pairs.meta["positives"],
        "n_regulators": int(per_tf.size),
        "positives_per_tf": {str(k): int(v) for k, v in per_tf.items()},
        "top_regulator": pairs.meta["top_regulator"],
        "median_positives_per_tf": float(per_tf.median()),
        "distinct_targets": int(pos["target"].nunique()),
        "negative_pool": pairs.meta.get("negative_pool"),
    }


def reference_pairs(settings: dict[str, Any]) -> PairSet:
    """The dataset's pair set under the paper's protocol: what the data summary describes."""
    return protocols.build(settings["data"], "random", "random", settings["seed"], (0.8, 0.1, 0.1))


def collect(results: str | os.PathLike[str]) -> dict[str, Any]:
    """Aggregate finished runs: protocols x methods, CIs, ceiling, verdict, tuning tables.

    Per protocol, every replicate's test pairs are pooled (each replicate its own fold:
    pairs scored by different models are never compared) and evaluated once with
    :func:`tfcnn.evaluation.evaluate.compare_with_controls`: pooled, within-target and
    within-TF AUROC of every method, the CNN minus the best control with a 95% CI from a
    bootstrap over TFs, and warnings; plus the CI of the CNN's own AUROCs. Per-replicate
    figures (mean, sd) come from the runs.
    """
    results = Path(results)
    settings = read_settings(results)
    reference = reference_pairs(settings)
    summary: dict[str, Any] = {
        "settings": settings,
        "data_summary": data_summary(settings, reference),
        "protocols": [],
        "warnings": [],
        "protocol_errors": [],
        "missing_runs": 0,
        "ceiling": ceiling(settings, reference.genes),
    }
    g3 = genie3_config(settings)
    g3_score = None
    if g3 and runner.is_finished(results, g3):
        g3_score = protocols.genie3_lookup(
            runner.run_dir(results, g3), runner.load_run(results, g3)
        )
        summary["genie3"] = {
            "n_estimators": g3["n_estimators"],
            "path": str(runner.run_dir(results, g3).relative_to(results)),
        }
    elif g3:
        summary["missing_runs"] += 1
    groups: dict[tuple[str, str], list[tuple[dict, dict]]] = {}
    for c in protocol_configs(settings):
        if not runner.is_finished(results, c):
            summary["missing_runs"] += 1
            continue
        m = runner.load_run(results, c)
        if "error" in m:
            summary["protocol_errors"].append(
                {"split": c["split"], "negatives": c["negatives"], "error": m["error"]}
            )
            continue
        m["run"] = runner.config_hash(c)
        groups.setdefault((c["split"], c["negatives"]), []).append((c, m))
    tables = {}
    n_boot = int((settings.get("protocols") or {}).get("bootstrap", COLLECT_BOOTSTRAP))
    for (split, neg), runs in groups.items():
        table = protocol_scores(results, runs, g3_score)
        tables[(split, neg)] = table
        row = _protocol_row(split, neg, runs, table, settings["seed"], n_boot)
        summary["protocols"].append(row)
        summary["warnings"].extend(
            f"Split {split} with {neg} negatives: {w}" for w in row["combined"]["warnings"]
        )
        for name, other in (row["combined"].get("models") or {}).items():
            summary["warnings"].extend(
                f"Split {split} with {neg} negatives ({LABELS.get(name, name)}): {w}"
                for w in other["warnings"]
            )
    summary["warning_summary"] = warning_summary(summary["protocols"])
    summary["verdict"] = verdict(summary["protocols"], tables, summary["ceiling"], n_boot)
    summary["goal"] = goal(summary["protocols"], tables, n_boot)
    summary["tuning"] = {}
    for scan, table_of in (
        ("grid", tuning.grid_table),
        ("regularisation", tuning.regularisation_table),
    ):
        cfgs = tuning_configs(settings, scan)
        if not cfgs:
            continue
        done = [(c, runner.load_run(results, c)) for c in cfgs if runner.is_finished(results, c)]
        summary["missing_runs"] += len(cfgs) - len(done)
        first = done[0][1] if done else {}
        summary["tuning"][scan] = {
            "settings": settings[scan],
            "n_train": first.get("n_train"),
            "n_train_available": first.get("n_train_available"),
            "n_validation": first.get("n_validation"),
            "rows": table_of(done),
            "n_configs": len(cfgs),
        }
    explain = results / "explain" / "explain.json"
    if explain.is_file():
        summary["explain"] = str(explain.relative_to(results))
    return summary


def protocol_scores(
    results: Path,
    runs: list[tuple[dict[str, Any], dict[str, Any]]],
    g3_score: Any = None,
) -> pd.DataFrame:
    """Every replicate's test-pair scores of one protocol; ``fold`` = the replicate."""
    frames = []
    for c, _ in runs:
        scores = pd.read_csv(
            runner.run_dir(results, c) / protocols.SCORES_FILE,
            sep="\t",
            dtype={"tf": str, "target": str},
        )
        scores["fold"] = int(c["replicate"])
        if g3_score is not None:
            scores["genie3"] = g3_score(scores["tf"], scores["target"])
        frames.append(scores)
    return pd.concat(frames, ignore_index=True)


def _arrays(table: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return (
        table["label"].to_numpy(),
        table["tf"].to_numpy(),
        table["target"].to_numpy(),
        table["fold"].to_numpy(),
    )


def combined_evaluation(
    table: pd.DataFrame,
    model: str = "cnn",
    n_boot: int = COLLECT_BOOTSTRAP,
    seed: int = 0,
    also: Sequence[str] = (),
) -> dict[str, Any]:
    """``model`` beside every method and control on all replicates' test pairs, with CIs.

    :func:`~tfcnn.evaluation.evaluate.compare_with_controls` (AUROCs; AUPRCs are the
    replicates' means) plus ``model_ci``: the 95% CI of the model's own AUROCs. The
    models ``also`` get the same under ``models`` (margins from the same bootstrap).
    """
    y, tf, target, fold = _arrays(table)
    names = [n for n, _ in protocols.METHODS if n in table.columns]
    scores = {n: table[n].to_numpy(dtype=np.float64) for n in names}
    out = compare_with_controls(
        y,
        tf,
        target,
        scores,
        model,
        CONTROLS,
        fold=fold,
        n_boot=n_boot,
        seed=seed,
        auprc=False,
        also=also,
    )
    out["model_ci"] = auroc_ci(y, scores[model], tf, target, fold, n_boot, seed)
    for name, other in (out.get("models") or {}).items():
        other["model_ci"] = auroc_ci(y, scores[name], tf, target, fold, n_boot, seed)
    return out


def method_names(present: Any) -> list[str]:
    """The methods of :data:`.protocols.METHODS` to show: every baseline and control, and
    the learned models other than the CNN, and the baselines added since runs were first
    kept (:data:`.protocols.NEWER_BASELINES`), only when they are in ``present``."""
    optional = set(protocols.MODELS.values()) - {"cnn"} | protocols.NEWER_BASELINES
    return [n for n, _ in protocols.METHODS if n not in optional or n in set(present)]


def auroc_ci(
    y: np.ndarray,
    score: np.ndarray,
    tf: np.ndarray,
    target: np.ndarray,
    fold: np.ndarray | None,
    n_boot: int,
    seed: int,
) -> dict[str, dict[str, float | None]]:
    """95% CI (TFs resampled) of a score's pooled, within-target and within-TF AUROC.

    A constant score has AUROC exactly 0.5 in every group of every bootstrap replicate,
    so the paired CI of "score minus a constant", shifted by 0.5, is the CI of the AUROC.
    """
    boot = paired_bootstrap(
        y,
        {"score": score, _CHANCE: np.zeros_like(score)},
        [("score", _CHANCE)],
        tf,
        target,
        fold,
        GROUPINGS,
        n_boot=n_boot,
        seed=seed,
    )
    out: dict[str, dict[str, float | None]] = {}
    for kind in GROUPINGS:
        d = boot[kind][f"score - {_CHANCE}"]
        out[kind] = {
            k: (None if d[k] is None else 0.5 + d[k]) for k in ("difference", "low", "high")
        }
        out[kind]["auroc"] = out[kind].pop("difference")
    return out


def _protocol_row(
    split: str,
    neg: str,
    runs: list[tuple[dict[str, Any], dict[str, Any]]],
    table: pd.DataFrame,
    seed: int,
    n_boot: int,
) -> dict[str, Any]:
    """One protocol: counts, per-replicate means, and the evaluation of all its pairs."""
    if "genie3" in table.columns:
        for c, m in runs:
            sub = table[table["fold"] == int(c["replicate"])]
            y, tf, target, _ = _arrays(sub)
            g3 = sub["genie3"].to_numpy(dtype=np.float64)
            m["methods"]["genie3"] = ranking_metrics(y, g3, tf, target, auprc=False)
            m["methods"]["genie3"]["pooled_auprc"] = grouped_auprc(y, g3, tf, target, "pooled")[0]
    y_all, cnn_all = table["label"].to_numpy(), table["cnn"].to_numpy(dtype=np.float64)
    first_meta = runs[0][1]["pairs_meta"]
    return {
        "split": split,
        "negatives": neg,
        "replicates": len(runs),
        "replicate_kind": "folds by TF" if split == "tf-holdout" else "seeds",
        "n_train": _mean_sd([m["n_train"] for _, m in runs]),
        "n_test": _mean_sd([m["n_test"] for _, m in runs]),
        "test_pairs_total": int(len(table)),
        "test_tfs": _mean_sd([m["counts"]["test"]["regulators_in_positives"] for _, m in runs]),
        "test_tfs_total": int(table.loc[table["label"] == 1, "tf"].nunique()),
        "positives_kept": _mean_sd([m["pairs_meta"]["positives"]["kept"] for _, m in runs]),
        "discarded_pair_disjoint": _mean_sd(
            [m["pairs_meta"].get("pair_disjoint_discarded") for _, m in runs]
        ),
        "degree_dropped": _mean_sd(
            [
                sum(
                    v
                    for k, v in m["pairs_meta"]["positives"]["dropped"].items()
                    if k.startswith("degree-matched")
                )
                for _, m in runs
            ]
        ),
        "negative_policy": (first_meta.get("negative_pool") or {}).get("policy"),
        "runs": [m["run"] for _, m in runs],
        "methods": {
            name: {
                metric: _mean_sd([m["methods"].get(name, {}).get(metric) for _, m in runs])
                for metric in RUN_METRICS
            }
            for name in method_names(table.columns)
        },
        "combined": combined_evaluation(
            table,
            "cnn",
            n_boot,
            seed,
            also=[n for n in protocols.MODELS.values() if n != "cnn" and n in table.columns],
        ),
        **(
            {"two_tower": [m["two_tower"] for _, m in runs]}
            if all("two_tower" in m for _, m in runs)
            else {}
        ),
        "cnn_test_distribution": protocols.histogram(y_all, cnn_all),
    }


def warning_summary(rows: list[dict[str, Any]]) -> str | None:
    """One sentence for all protocols' warnings (the cells are marked in the tables),
    with a clause per further learned model (the two-tower model's rows of Table 1)."""
    flagged = [r for r in rows if r["combined"]["warnings"]]
    if not rows:
        return None
    no_margin = [
        r
        for r in rows
        if (v := r["combined"]["versus_best_control"].get(HEADLINE))
        and v.get("low") is not None
        and v["low"] <= 0
    ]
    others = _other_models_clause(rows)
    if not flagged:
        return (
            "Under every protocol the CNN beats the best control that ignores the TF-target "
            f"relation, within targets and pooled{others}."
        )
    return (
        f"Under {len(flagged)} of {len(rows)} protocols a control that never sees the "
        "TF-target relation matches or beats the CNN (marked cells"
        + (
            f"; within targets the CNN's margin over the best control includes 0 in "
            f"{len(no_margin)} of them"
            if no_margin
            else ""
        )
        + f"): there the CNN's numbers are no evidence that it reads regulation{others}."
    )


def _other_models_clause(rows: list[dict[str, Any]]) -> str:
    """'; for the two-tower model, under 2 of 4 protocols' (empty without other models)."""
    names = list(dict.fromkeys(n for r in rows for n in r["combined"].get("models") or {}))
    parts = []
    for name in names:
        evaluated = [
            r["combined"]["models"][name] for r in rows if name in r["combined"].get("models", {})
        ]
        flagged = sum(1 for ev in evaluated if ev["warnings"])
        parts.append(
            f"; a control matches or beats the {LABELS.get(name, name)} under {flagged} of "
            f"{len(evaluated)} protocols"
        )
    return "".join(parts)


def _protocol_words(split: str, negatives: str) -> str:
    words = {
        "random": "random split",
        "tf-holdout": "TFs held out",
        "pair-disjoint": "no gene of a test pair seen in training",
    }
    return f"{words.get(split, split)}, {negatives} negatives"


def verdict(
    rows: list[dict[str, Any]],
    tables: dict[tuple[str, str], pd.DataFrame],
    ceiling_: dict[str, Any] | None,
    n_boot: int = COLLECT_BOOTSTRAP,
) -> list[str]:
    """Three plain-words lines: what the best model does beyond the best control, where.

    The protocol is the strictest one run (:func:`tfcnn.evaluation.evaluate.strictness`);
    the best model is the method (CNN or baseline, not a control) with the highest
    within-target AUROC there; the paper's protocol (random split and negatives) is the
    contrast.
    """
    if not rows:
        return []
    strict = max(rows, key=lambda r: strictness(r["split"], r["negatives"]))
    methods = strict["combined"]["methods"]
    candidates = {
        n: methods[n][f"{HEADLINE}_auroc"]
        for n, _ in protocols.METHODS
        if n in methods and n not in CONTROLS and methods[n][f"{HEADLINE}_auroc"] is not None
    }
    if not candidates:
        return []
    best = max(candidates, key=lambda n: candidates[n])
    ev = model_evaluation(strict, tables, best, n_boot)
    label = dict(protocols.METHODS)[best]
    ci = ev["model_ci"][HEADLINE]
    v = ev["versus_best_control"].get(HEADLINE) or {}
    line1 = (
        "Under the strictest protocol run here "
        f"({_protocol_words(strict['split'], strict['negatives'])}), "
        f"the best model is {label}: it ranks a gene's true regulators above other TFs "
        f"with within-target AUROC {ci['auroc']:.3f} (95% CI {ci['low']:.3f}-{ci['high']:.3f}; "
        "chance 0.5"
        + (f"; the CNN {candidates['cnn']:.3f}" if best != "cnn" and "cnn" in candidates else "")
        + ")."
    )
    if v.get("difference") is None:
        line2 = "No control could be compared with it under this protocol."
    else:
        beyond = (
            ("a small" if v["difference"] < 0.1 else "a") + " pair-specific signal"
            if v["low"] > 0
            else "not distinguishable from what node identity alone gives"
        )
        line2 = (
            f"Beyond the best control that never sees the TF-target relation "
            f"({LABELS.get(v['control'], v['control'])}, {v['control_auroc']:.3f}) it adds "
            f"{v['difference']:+.3f} (95% CI {v['low']:+.3f} to {v['high']:+.3f}): {beyond}"
            + (
                f"; independent binding assays agree with each other at "
                f"{ceiling_['overall']['q25']:.2f}-{ceiling_['overall']['q75']:.2f}."
                if ceiling_ and ceiling_.get("overall")
                else "."
            )
        )
    paper = next((r for r in rows if r["split"] == "random" and r["negatives"] == "random"), None)
    line3 = ""
    if paper is not None:
        pm = paper["combined"]["methods"]
        pv = paper["combined"]["versus_best_control"].get("pooled") or {}
        cnn_pooled = pm["cnn"]["pooled_auroc"]
        if pv.get("control_auroc") is not None and cnn_pooled is not None:
            line3 = (
                f"Under the paper's protocol (random split, random negatives) the CNN's "
                f"pooled AUROC is {cnn_pooled:.3f}, but the "
                f"{LABELS.get(pv['control'], pv['control'])} reaches {pv['control_auroc']:.3f}: "
                "that high figure comes from recognising TFs and targets, not regulation."
            )
    return [line1, line2] + ([line3] if line3 else [])


def model_evaluation(
    row: dict[str, Any],
    tables: dict[tuple[str, str], pd.DataFrame],
    name: str,
    n_boot: int = COLLECT_BOOTSTRAP,
) -> dict[str, Any]:
    """A method's ``model_ci`` and ``versus_best_control`` under one protocol: the CNN's
    and the other learned models' from the row, a baseline's computed now."""
    if name == "cnn":
        return row["combined"]
    if name in (row["combined"].get("models") or {}):
        return row["combined"]["models"][name]
    return combined_evaluation(tables[(row["split"], row["negatives"])], name, n_boot)


#: Issue 15's goal: within-target AUROC under TF hold-out with degree-matched negatives,
#: over all folds together and in every fold.
GOAL_PROTOCOL = ("tf-holdout", "degree-matched")
GOAL_WITHIN_TARGET = 0.58
GOAL_EVERY_FOLD = 0.52


def goal(
    rows: list[dict[str, Any]],
    tables: dict[tuple[str, str], pd.DataFrame],
    n_boot: int = COLLECT_BOOTSTRAP,
) -> str | None:
    """Issue 15's goal in plain sentences, from the best model (not a control) by
    within-target AUROC under TF hold-out with degree-matched negatives: all folds
    together, then the lowest fold (a replicate of that protocol is a fold); None when
    that protocol was not run."""
    row = next((r for r in rows if (r["split"], r["negatives"]) == GOAL_PROTOCOL), None)
    if row is None:
        return None
    methods = row["combined"]["methods"]
    candidates = {
        n: v
        for n, _ in protocols.METHODS
        if n in methods and n not in CONTROLS and (v := methods[n][f"{HEADLINE}_auroc"]) is not None
    }
    if not candidates:
        return None
    best = max(candidates, key=lambda n: candidates[n])
    ci = model_evaluation(row, tables, best, n_boot)["model_ci"][HEADLINE]
    reached = "reached" if candidates[best] >= GOAL_WITHIN_TARGET else "not reached"
    interval = "n/a" if ci["low"] is None else f"{ci['low']:.3f}-{ci['high']:.3f}"
    folds = row["methods"].get(best, {}).get(f"{HEADLINE}_auroc", {}).get("values") or []
    every = ""
    if folds:
        lowest = min(folds)
        met = "reached" if lowest >= GOAL_EVERY_FOLD else "not reached"
        every = (
            f" Every fold >= {GOAL_EVERY_FOLD:.2f}: {met} (lowest {lowest:.3f} of {len(folds)})."
        )
    return (
        f"Goal: within-target AUROC >= {GOAL_WITHIN_TARGET:.2f}: {reached} (best: "
        f"{dict(protocols.METHODS)[best]} {candidates[best]:.3f}, 95% CI {interval}; "
        f"TFs held out, degree-matched negatives).{every}"
    )


def ceiling(settings: dict[str, Any], genes: Sequence[str]) -> dict[str, Any] | None:
    """How well the interactions' assays agree with each other: the labels' ceiling.

    See :func:`tfcnn.evaluation.ceiling.assay_agreement`. Computed on every evidence
    type of the interactions file (not only the positives'), over the matrix's genes;
    None when the file has fewer than two evidence types sharing a TF.
    """
    from ..api import load_interactions
    from ..evaluation.ceiling import assay_agreement

    spec = settings["data"]
    every = load_interactions(spec["interactions"])
    if not every.has_evidence:
        return None
    result = assay_agreement(every, genes)  # the table's own IDs (none match: no ceiling)
    if not result["pairs"]:
        return None
    for p in result["pairs"]:
        p.pop("per_tf", None)
    result["measured_by"] = (
        "tfcnn.evaluation.ceiling.assay_agreement(load_interactions("
        f"{spec['interactions']!r}), genes of {spec['expression']!r})"
    )
    return result


def rerun_command(settings: dict[str, Any], output: str | os.PathLike[str]) -> str:
    """The command line that recreates a results folder with these settings."""
    import shlex

    q = shlex.quote
    data = settings["data"]
    args: list[str] = []
    default = protocols.default_data_spec()
    if {k: v for k, v in data.items() if k != CONTENTS} != default:
        args += ["-x", q(data["expression"]), "-i", q(data["interactions"])]
        if data["evidence"]:
            args += ["--evidence", q(",".join(data["evidence"]))]
        if data["exclude"]:
            args += ["--exclude", q(data["exclude"])]
        if data["id_map"]:
            args += ["--id-map", q(data["id_map"])]
        if data["log2"]:
            args.append("--log2")
    args += ["--seed", str(settings["seed"])]
    p, grid, reg = settings.get("protocols"), settings.get("grid"), settings.get("regularisation")

    def sizes(t: dict[str, Any], prefix: str) -> list[str]:
        return [
            f"--{prefix}train-pairs",
            str(t["train_pairs"]),
            f"--{prefix}validation-pairs",
            str(t.get("validation_pairs") or 0),
        ]

    if p:
        args = ["tfcnn", "study", "--output", q(str(output)), *args]
        args += ["--split", ",".join(p["splits"]), "--negatives", ",".join(p["negatives"])]
        args += ["--replicates", str(p["replicates"]), "--epochs", str(p["epochs"])]
        args += ["--genie3-trees", str(p.get("genie3_trees") or 0)]
        args += ["--models", ",".join(models(settings))]
        if "two-tower" in models(settings):
            seeds = (p.get("two_tower") or {}).get("n_seeds")
            if seeds is not None:
                args += ["--two-tower-seeds", str(seeds)]
        if p.get("bootstrap", COLLECT_BOOTSTRAP) != COLLECT_BOOTSTRAP:
            args += ["--bootstrap", str(p["bootstrap"])]
        if grid:
            args += [*sizes(grid, "tune-"), "--tune-epochs", str(grid["epochs"])]
        else:
            args.append("--no-tune")
    elif grid:
        args = ["tfcnn", "tune", "grid", "--output", q(str(output)), *args]
        args += ["--values", ",".join(map(str, grid["values"])), "--epochs", str(grid["epochs"])]
        args += sizes(grid, "")
    elif reg:
        args = ["tfcnn", "tune", "regularisation", "--output", q(str(output)), *args]
        args += ["--dropouts", ",".join(map(str, reg["dropouts"]))]
        args += ["--batch-sizes", ",".join(map(str, reg["batch_sizes"]))]
        args += ["--epochs", ",".join(map(str, reg["epochs"])), *sizes(reg, "")]
    return " ".join(args)
