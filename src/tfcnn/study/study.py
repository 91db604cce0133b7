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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import TfcnnInputError
from ..evaluation.metrics import auprc, auroc
from ..io.atomic import write_text
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
CONTROL_MARGIN = 0.02
CHANCE_MARGIN = 0.05


def default_settings(
    data: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    replicates: int = 5,
    epochs: int = 30,
    splits: tuple[str, ...] = protocols.SPLITS,
    negatives: tuple[str, ...] = protocols.NEGATIVES,
    genie3_trees: int = 50,
    grid: dict[str, Any] | None = None,
    regularisation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Study settings; ``data`` defaults to the bundled nitrogen compendium as the demo."""
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
        }
        for split in p["splits"]
        for neg in p["negatives"]
        for r in range(p["replicates"])
    ]


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


def data_summary(settings: dict[str, Any]) -> dict[str, Any]:
    """Genes, samples, positives per TF and the largest TF's share."""
    pairs = protocols.build(settings["data"], "random", "random", settings["seed"], (0.8, 0.1, 0.1))
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
    }


def collect(results: str | os.PathLike[str]) -> dict[str, Any]:
    """Aggregate finished runs: protocols x methods (mean, sd), tuning tables, warnings."""
    results = Path(results)
    settings = read_settings(results)
    summary: dict[str, Any] = {
        "settings": settings,
        "data_summary": data_summary(settings),
        "protocols": [],
        "warnings": [],
        "protocol_errors": [],
        "missing_runs": 0,
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
        if g3_score is not None:
            scores = pd.read_csv(
                runner.run_dir(results, c) / protocols.SCORES_FILE,
                sep="\t",
                dtype={"tf": str, "target": str},
            )
            s = g3_score(scores["tf"], scores["target"])
            m["methods"]["genie3"] = {
                "auroc": auroc(scores["label"], s),
                "auprc": auprc(scores["label"], s),
            }
        m["run"] = runner.config_hash(c)
        groups.setdefault((c["split"], c["negatives"]), []).append((c, m))
    for (split, neg), runs in groups.items():
        row: dict[str, Any] = {
            "split": split,
            "negatives": neg,
            "replicates": len(runs),
            "replicate_kind": "folds by TF" if split == "tf-holdout" else "seeds",
            "n_train": _mean_sd([m["n_train"] for _, m in runs]),
            "n_test": _mean_sd([m["n_test"] for _, m in runs]),
            "test_tfs": _mean_sd([m["counts"]["test"]["regulators_in_positives"] for _, m in runs]),
            "positives_kept": _mean_sd([m["pairs_meta"]["positives"]["kept"] for _, m in runs]),
            "discarded_pair_disjoint": _mean_sd(
                [m["pairs_meta"].get("pair_disjoint_discarded") for _, m in runs]
            ),
            "degree_shortfall": _mean_sd(
                [
                    m["pairs_meta"]["positives"]["dropped"].get(
                        "degree-matched shortfall: no valid swap found"
                    )
                    for _, m in runs
                ]
            ),
            "runs": [m["run"] for _, m in runs],
            "methods": {},
        }
        for name, _ in protocols.METHODS:
            row["methods"][name] = {
                metric: _mean_sd([m["methods"].get(name, {}).get(metric) for _, m in runs])
                for metric in ("auroc", "auprc")
            }
        summary["protocols"].append(row)
        summary["warnings"].extend(control_warnings(row))
    summary["tuning"] = {}
    for scan, table in (
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
            "rows": table(done),
            "n_configs": len(cfgs),
        }
    explain = results / "explain" / "explain.json"
    if explain.is_file():
        summary["explain"] = str(explain.relative_to(results))
    return summary


def control_warnings(row: dict[str, Any]) -> list[str]:
    """Plain-words warnings where a control scores within 0.02 AUROC of the CNN, or above."""
    cnn = row["methods"]["cnn"]["auroc"]["mean"]
    labels = dict(protocols.METHODS)
    out: list[str] = []
    if cnn is None:
        return out
    for c in protocols.CONTROLS:
        v = row["methods"][c]["auroc"]["mean"]
        if v is None or v < cnn - CONTROL_MARGIN:
            continue
        how = "scores higher than" if v > cnn else "scores about as high as"
        chance = " (the CNN itself is near chance here)" if cnn < 0.5 + CHANCE_MARGIN else ""
        out.append(
            f"Split {row['split']} with {row['negatives']} negatives: the {labels[c]} "
            f"(AUROC {v:.3f}) {how} the CNN (AUROC {cnn:.3f}){chance}. This control never "
            "sees the relation between the TF's and the target's profiles, so under this "
            "protocol the CNN's score is no evidence that it reads regulation from expression."
        )
    return out


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
