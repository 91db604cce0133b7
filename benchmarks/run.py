"""Speed benchmarks for tfcnn (`make bench`). Speed goals live here, never in unit tests.

Every figure is printed beside a reference measured in the same run, as a ratio:

1. training, published configuration: PairCNN.fit vs the same loop on a grouped-conv2d
   network (benchmarks/grouped_reference.py), same weights at start, same data order;
2. scoring: PairCNN.predict_proba vs the grouped-conv reference in eval mode with the
   same weights (outputs must agree to 1e-5), throughput and peak-RSS growth, each model
   in a fresh process so the RSS high-water mark is its own;
3. the 64/64/64 variant's training time, against the published configuration's;
4. both trainings again in a fresh process with glibc malloc tuned as the ``tfcnn``
   command tunes it (``PairCNN.fit`` does not); the training goals use these.

All inputs are synthetic (fixed seed). Figures from the project brief (Keras 2/TF) are
printed as context only: they were not measured here. Results: .bench/results.json.
Run with --quick for a seconds-long smoke test of the script (tiny sizes).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from grouped_reference import (
    GroupedPairCNN,
    ReferenceConfig,
    reference_predict_proba,
    train_reference,
)
from keras_ref import KerasUnavailable, provenance, reference
from machine import busy_cpu_seconds
from rich.console import Console
from rich.table import Table

from tfcnn.model.estimator import PairCNN
from tfcnn.model.network import PairCNNNetwork

THREADS = 2
SEED = 20190101
AGREEMENT_TOLERANCE = 1e-5
#: Expected wall time on an idle 2-core machine, Keras included (two idle runs of
#: 2026-11-30 took 296 s and 339 s, the second with the median-of-3 fits of line 4).
RUNTIME_TARGET_S = 420.0
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / ".bench" / "results.json"

#: Training goals (issue 17), as fractions of the Keras time measured in the same run.
GOAL_TRAIN_PUBLISHED = 0.5
GOAL_TRAIN_VARIANT = 0.7
#: The Keras reference's options (shared with bench_engine.py, which reuses its figures).
KERAS_OPTIONS: dict[str, Any] = dict(
    widths=(232, 1_000, 5_000), predict_pairs=200_000, epochs=30, repeats=3, threads=THREADS
)
KERAS_QUICK: dict[str, Any] = dict(
    widths=(232,),
    predict_pairs=20_000,
    epochs=2,
    repeats=1,
    threads=THREADS,  # QUICK.epochs
)


@dataclass(frozen=True)
class Sizes:
    train_pairs: int = 6_900
    width: int = 232
    epochs: int = 30
    reference_budget_s: float = 40.0  # reference training stops after the epoch past this
    score_pairs: int = 200_000
    score_repeats: int = 3
    fit_repeats: int = 3  # (e): median of this many fits, as the Keras reference's
    score_budget_s: float = 15.0  # no further repeat once a scorer has used this much
    variant_epochs: int = 30  # the full 30 epochs, measured (not extrapolated)
    variant_filters: tuple[int, int] = (64, 64)
    variant_units: int = 64


QUICK = Sizes(
    train_pairs=600,
    width=40,
    epochs=2,
    reference_budget_s=5.0,
    score_pairs=5_000,
    score_repeats=1,
    fit_repeats=1,
    score_budget_s=5.0,
    variant_epochs=2,  # as many as the published run, so a --keras comparison is like for like
)


# -- synthetic data -----------------------------------------------------------------------
def synthetic_pairs(n: int, width: int, seed: int, chunk: int = 8192):
    """``n`` SYNTHETIC pairs (N, 2, width) float32 and labels (N,) in {0, 1}.

    Row 0 is a random "TF" profile, row 1 a "target" that weakly follows it (label 1) or
    not (label 0); 15% of labels are then flipped, so training does not drive the loss to
    zero. Rows are z-scored, as tfcnn's inputs are. Written chunk by chunk into one
    preallocated array, so generating 200k pairs leaves no large temporaries behind (they
    would raise the RSS high-water mark the scoring benchmark reads).
    """
    X = np.empty((n, 2, width), dtype=np.float32)
    y = np.empty(n, dtype=np.int64)
    streams = np.random.SeedSequence(seed).spawn((n + chunk - 1) // chunk)
    for i, stream in enumerate(streams):
        rng = np.random.default_rng(stream)
        lo, hi = i * chunk, min(n, (i + 1) * chunk)
        m = hi - lo
        tf = rng.standard_normal((m, width), dtype=np.float32)
        noise = rng.standard_normal((m, width), dtype=np.float32)
        coupled = rng.integers(0, 2, m)
        target = np.where(coupled[:, None] == 1, 0.3 * tf + noise, noise)
        for row, values in ((0, tf), (1, target)):
            values = values - values.mean(axis=1, keepdims=True)
            X[lo:hi, row] = values / values.std(axis=1, keepdims=True)
        y[lo:hi] = np.where(rng.random(m) < 0.15, 1 - coupled, coupled)
    return X, y


# -- measurements -------------------------------------------------------------------------
def _estimator(sizes: Sizes, epochs: int, variant: bool = False) -> PairCNN:
    """PairCNN with the published defaults (or the 64/64/64 variant)."""
    if variant:
        return PairCNN(
            filters=sizes.variant_filters, units=sizes.variant_units, epochs=epochs, seed=SEED
        )
    return PairCNN(epochs=epochs, seed=SEED)


def _reference_config(est: PairCNN, width: int) -> ReferenceConfig:
    return ReferenceConfig(
        n_samples=width,
        filters=tuple(est.filters),
        units=est.units,
        batch_norm=tuple(est.batch_norm),
        dropout=est.dropout,
        kernel_width=est.kernel_width,
    )


def _reference_for(est: PairCNN, width: int) -> GroupedPairCNN:
    """A grouped-conv reference with ``est``'s architecture and initial weights.

    Initial weights are those PairCNN.fit draws (same seed), and the global RNG is left as
    fit leaves it before its first batch, so dropout masks and the shuffle order match:
    both loops then do the same arithmetic up to float rounding.
    """
    ref = GroupedPairCNN(_reference_config(est, width))
    torch.manual_seed(est.seed)
    initial = PairCNNNetwork(est.config_for(width)).state_dict()  # consumes the RNG as fit
    return ref.load_tfcnn_state(initial)


def _warm_up(sizes: Sizes) -> None:
    """One tiny fit of each kind, so one-off library start-up is not timed."""
    X, y = synthetic_pairs(min(1024, sizes.train_pairs), sizes.width, SEED + 99)
    PairCNN(epochs=1, seed=SEED).fit(X, y)
    _estimator(sizes, 1, variant=True).fit(X, y)
    est = PairCNN(epochs=1, seed=SEED)
    with torch.random.fork_rng(devices=[]):
        ref = _reference_for(est, sizes.width)
        train_reference(ref, torch.from_numpy(X), torch.from_numpy(y).float(), epochs=1)


def bench_training(sizes: Sizes, X: np.ndarray, y: np.ndarray) -> tuple[dict, PairCNN]:
    est = _estimator(sizes, sizes.epochs)
    cpu0, t0 = os.times(), time.perf_counter()
    est.fit(X, y)
    fast_s = time.perf_counter() - t0
    fast_sys_share = _sys_share(cpu0, os.times())

    with torch.random.fork_rng(devices=[]):
        ref = _reference_for(est, X.shape[2])
        history, ref_measured_s = train_reference(
            ref,
            torch.from_numpy(X),
            torch.from_numpy(y).float(),
            epochs=sizes.epochs,
            batch_size=est.batch_size,
            learning_rate=est.learning_rate,
            rho=est.rho,
            epsilon=est.epsilon,
            seed=est.seed,
            time_budget=sizes.reference_budget_s,
        )
    ref_epochs = len(history)
    ref_s = ref_measured_s * sizes.epochs / ref_epochs
    return {
        "config": "published: filters 4,8; units 8; BN after conv 2; dropout 0.01; batch 512",
        "pairs": int(X.shape[0]),
        "width": int(X.shape[2]),
        "epochs": sizes.epochs,
        "tfcnn_s": fast_s,
        "reference_s": ref_s,
        "reference_measured_epochs": ref_epochs,
        "reference_measured_s": ref_measured_s,
        "reference_extrapolated": ref_epochs < sizes.epochs,
        "tfcnn_sys_share": fast_sys_share,
        "speedup": ref_s / fast_s,
        "sanity_loss_at_epoch": {
            "epoch": ref_epochs,
            "tfcnn": est.history_[ref_epochs - 1]["loss"],
            "reference": history[-1]["loss"],
        },
        "tfcnn_final_train_auroc": est.history_[-1]["auroc"],
    }, est


def _peak_rss_bytes() -> int:
    """Process peak RSS (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _score_worker(
    kind: str, model_dir: str, n: int, width: int, repeats: int, budget_s: float, out: str
) -> dict:
    """Runs in a fresh process: time one scorer on the synthetic scoring set.

    The RSS baseline is taken after the inputs are generated, the model loaded and a
    small warm-up batch scored, so the increase is what scoring the whole set adds.
    Scores the set ``repeats`` times, or fewer once ``budget_s`` seconds are used up.
    """
    torch.set_num_threads(THREADS)
    X, _ = synthetic_pairs(n, width, SEED + 1)
    est = PairCNN.load(model_dir)
    if kind == "tfcnn":

        def score(data):
            return est.predict_proba(data)

    else:
        ref = GroupedPairCNN(_reference_config(est, width)).eval()
        ref.load_tfcnn_state(est.network_.state_dict())

        def score(data):
            return reference_predict_proba(ref, data)

    score(X[:1024])
    baseline = _peak_rss_bytes()
    seconds = []
    cpu0 = os.times()
    while len(seconds) < repeats and sum(seconds) < budget_s:
        t0 = time.perf_counter()
        proba = score(X)
        seconds.append(time.perf_counter() - t0)
    peak = _peak_rss_bytes()
    sys_share = _sys_share(cpu0, os.times())
    np.save(out, proba[:, 1])
    return {
        "seconds": seconds,
        "threads": torch.get_num_threads(),
        "rss_baseline_bytes": baseline,
        "rss_peak_bytes": peak,
        "sys_share": sys_share,
        "input_bytes": int(X.nbytes),
    }


def _in_fresh_process(fn, *args):
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def bench_scoring(sizes: Sizes, est: PairCNN) -> dict:
    with tempfile.TemporaryDirectory(prefix="tfcnn-bench-") as tmp:
        model_dir = str(Path(tmp) / "model")
        est.save(model_dir)
        runs = {}
        for kind in ("tfcnn", "reference"):
            out = str(Path(tmp) / f"{kind}.npy")
            runs[kind] = _in_fresh_process(
                _score_worker,
                kind,
                model_dir,
                sizes.score_pairs,
                sizes.width,
                sizes.score_repeats,
                sizes.score_budget_s,
                out,
            )
            runs[kind]["proba"] = np.load(out)
    diff = float(np.max(np.abs(runs["tfcnn"].pop("proba") - runs["reference"].pop("proba"))))
    result: dict[str, Any] = {
        "pairs": sizes.score_pairs,
        "width": sizes.width,
        "input_mib": runs["tfcnn"]["input_bytes"] / 2**20,
        "max_abs_diff": diff,
        "tolerance": AGREEMENT_TOLERANCE,
        "outputs_agree": diff <= AGREEMENT_TOLERANCE,
    }
    for kind, run in runs.items():
        median_s = statistics.median(run["seconds"])
        result[f"{kind}_repeats"] = len(run["seconds"])
        result[f"{kind}_seconds"] = run["seconds"]
        result[f"{kind}_pairs_per_s"] = sizes.score_pairs / median_s
        result[f"{kind}_peak_rss_increase_mib"] = (
            run["rss_peak_bytes"] - run["rss_baseline_bytes"]
        ) / 2**20
        result[f"{kind}_worker_threads"] = run["threads"]
        result[f"{kind}_sys_share"] = run["sys_share"]
    result["throughput_ratio"] = result["tfcnn_pairs_per_s"] / result["reference_pairs_per_s"]
    ref_rss = result["reference_peak_rss_increase_mib"]
    result["rss_ratio"] = result["tfcnn_peak_rss_increase_mib"] / ref_rss if ref_rss > 0 else None
    return result


def bench_variant(sizes: Sizes, X: np.ndarray, y: np.ndarray, training: dict) -> dict:
    est = _estimator(sizes, sizes.variant_epochs, variant=True)
    cpu0, t0 = os.times(), time.perf_counter()
    est.fit(X, y)
    seconds = time.perf_counter() - t0
    sys_share = _sys_share(cpu0, os.times())
    per_epoch = seconds / sizes.variant_epochs
    published_per_epoch = training["tfcnn_s"] / training["epochs"]
    return {
        "config": "filters {},{}; units {}; otherwise published".format(
            *sizes.variant_filters, sizes.variant_units
        ),
        "label": "{}/{}/{}".format(*sizes.variant_filters, sizes.variant_units),
        "epochs": sizes.variant_epochs,
        "tfcnn_s": seconds,
        "tfcnn_s_per_epoch": per_epoch,
        "published_tfcnn_s_per_epoch": published_per_epoch,
        "cost_ratio_vs_published": per_epoch / published_per_epoch,
        "tfcnn_30_epochs_extrapolated_s": per_epoch * 30,
        "variant_extrapolated": sizes.variant_epochs != 30,
        "tfcnn_sys_share": sys_share,
    }


def _command_fits(sizes: Sizes) -> dict:
    """Both trainings in this (fresh) process with glibc malloc tuned as the ``tfcnn``
    command tunes it at start-up (:func:`tfcnn.runtime.keep_freed_memory`); ``fit`` itself
    leaves the allocator alone, so (1) and (3) are the library's default figures. Each is
    the median of ``sizes.fit_repeats`` fits, the statistic of the Keras reference."""
    from tfcnn.runtime import keep_freed_memory

    tuned = keep_freed_memory()
    torch.set_num_threads(THREADS)
    X, y = synthetic_pairs(sizes.train_pairs, sizes.width, SEED)
    _warm_up(sizes)
    result: dict[str, Any] = {"allocator_tuned": tuned}
    for key, variant, epochs in (
        ("published_s", False, sizes.epochs),
        ("variant_s", True, sizes.variant_epochs),
    ):
        times, cpu0 = [], os.times()
        for _ in range(sizes.fit_repeats):
            est = _estimator(sizes, epochs, variant=variant)
            t0 = time.perf_counter()
            est.fit(X, y)
            times.append(time.perf_counter() - t0)
        result[key] = statistics.median(times)
        result[key.replace("_s", "_runs_s")] = times
        result[key.replace("_s", "_sys_share")] = _sys_share(cpu0, os.times())
    return result


def bench_command_fits(sizes: Sizes) -> dict:
    """Training as the ``tfcnn`` command runs it: :func:`_command_fits` in a fresh process."""
    return _in_fresh_process(_command_fits, sizes)


# -- the Keras reference (benchmarks/keras_ref.py) ---------------------------------------
def bench_keras(console: Console, args: argparse.Namespace, X: np.ndarray, y: np.ndarray) -> dict:
    """Keras's figures from this run, or why there are none (never a made-up number)."""
    wanted = args.keras if args.keras is not None else not args.quick
    if not wanted or os.environ.get("TFCNN_BENCH_NO_KERAS") == "1":
        why = "--quick" if args.quick else "--no-keras or TFCNN_BENCH_NO_KERAS=1"
        return {"available": False, "reason": f"not measured ({why})"}
    options = KERAS_QUICK if args.quick else KERAS_OPTIONS
    with tempfile.TemporaryDirectory(prefix="tfcnn-bench-pairs-") as tmp:
        pairs = Path(tmp) / "pairs.npz"
        np.savez(pairs, X=X, y=y)  # the same SYNTHETIC pairs tfcnn trained on
        try:
            with console.status("4. the Keras reference (own venv, clean folder, median of 3)"):
                result = reference(("train", "train64", "predict"), pairs_file=pairs, **options)
        except (KerasUnavailable, OSError, subprocess.SubprocessError) as exc:
            return {"available": False, "reason": str(exc)}
    return {"available": True, **result}


def goals(training: dict, variant: dict, command: dict, keras: dict) -> list[dict]:
    """The issue's training goals: tfcnn's time over Keras's, both from this run.

    tfcnn's figure is training as the ``tfcnn`` command runs it (``command``: its malloc
    setting); the library's default figure is printed beside it.
    """
    lines = []
    for label, tfcnn_s, library_s, key, goal in (
        (
            f"train published config, {training['epochs']} epochs",
            command["published_s"],
            training["tfcnn_s"],
            "train_published",
            GOAL_TRAIN_PUBLISHED,
        ),
        (
            f"train 64/64/64, {variant['epochs']} epochs",
            command["variant_s"],
            variant["tfcnn_s"],
            "train_64_64_64",
            GOAL_TRAIN_VARIANT,
        ),
    ):
        ref = keras.get(key) if keras.get("available") else None
        ratio = tfcnn_s / ref["median_s"] if ref else None
        lines.append(
            {
                "goal": f"{label}: tfcnn <= {goal}x the Keras time",
                "tfcnn_s": tfcnn_s,
                "library_default_s": library_s,
                "keras_s": ref["median_s"] if ref else None,
                "ratio": ratio,
                "target_ratio": goal,
                "met": None if ratio is None else ratio <= goal,
                "note": None if ref else keras.get("reason"),
                "keras_from": provenance(keras) if ref else None,
            }
        )
    return lines


def render_keras(console: Console, keras: dict, scoring: dict) -> None:
    if not keras.get("available"):
        console.print(f"Keras reference: {keras.get('reason')}", highlight=False)
        return
    table = Table(
        title=f"Keras reference, measured in this run: TensorFlow {keras['tensorflow']}, "
        f"tf-keras {keras['keras']}, {keras['threads']} threads, own venv, clean folder, "
        f"median of {keras['repeats']}"
    )
    table.add_column("figure")
    table.add_column("Keras", justify="right")
    for key, label in (
        ("train_published", "train published config"),
        ("train_64_64_64", "train 64/64/64"),
    ):
        if key in keras:
            k = keras[key]
            table.add_row(
                f"{label}, {k['epochs']} epochs on {k['pairs']:,} pairs", _fmt_s(k["median_s"])
            )
    for width, p in keras.get("predict", {}).items():
        table.add_row(
            f"predict, width {width} ({p['model']}; batch {p['batch']:,})",
            f"{p['pairs_per_s']:,.0f} pairs/s",
        )
    console.print(table)
    published = keras.get("predict", {}).get("232")
    if published:
        console.print(
            f"predict_proba (2.) vs Keras predict at width 232: "
            f"{scoring['tfcnn_pairs_per_s'] / published['pairs_per_s']:.2f}x",
            highlight=False,
        )
    reused = f" ({provenance(keras)})" if keras.get("reused") else ""
    console.print(
        f"load average before / after the Keras run: {_load(keras['load_before'])} / "
        f"{_load(keras['load_after'])}{reused}",
        highlight=False,
    )


def _load(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def print_goal(console: Console, line: dict) -> None:
    """One goal line: measured figure, reference from the same run, ratio, met or not."""
    if line["met"] is None:
        verdict = "[yellow]not judged[/yellow] (no Keras figure: " + str(line["note"]) + ")"
    else:
        verdict = "[green]met[/green]" if line["met"] else "[red]NOT met[/red]"
    keras = "n/a" if line["keras_s"] is None else _fmt_s(line["keras_s"])
    ratio = "n/a" if line["ratio"] is None else f"{line['ratio']:.2f}x"
    library = line.get("library_default_s")
    own = _fmt_s(line["tfcnn_s"])
    if library is not None:
        own += f" as the tfcnn command runs it ({_fmt_s(library)} with fit's default allocator)"
    console.print(
        f"goal: {line['goal']}: tfcnn {own}, Keras {keras} ({line.get('keras_from')}) "
        f"-> {ratio}: {verdict}; load average {_load(list(os.getloadavg()))}",
        highlight=False,
    )


# -- other load on the machine ------------------------------------------------------------
def _sys_share(before: os.times_result, after: os.times_result) -> float | None:
    """Kernel share of this process's CPU time between two os.times() readings."""
    user, system = after.user - before.user, after.system - before.system
    return system / (user + system) if user + system > 0 else None


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# -- output ---------------------------------------------------------------------------------
def _fmt_s(x: float) -> str:
    return f"{x:,.2f} s"


def _ratio(x: float | None, meaning: str) -> str:
    return "n/a" if x is None else f"{x:,.2f}x {meaning}"


def render(console: Console, results: dict) -> None:
    meta, tr, sc, va = results["meta"], results["training"], results["scoring"], results["variant"]
    console.print(
        "[bold]tfcnn benchmarks[/bold]"
        + ("  [yellow](--quick: tiny sizes, smoke test only)[/yellow]" if meta["quick"] else "")
    )
    console.print(
        f"torch {meta['torch']}, torch.set_num_threads({THREADS}) -> {meta['torch_threads']} "
        f"threads; {meta['cpu_count']} CPUs visible; {meta['machine']}"
    )
    console.print(f"inputs: SYNTHETIC pairs generated here (numpy seed {SEED}), not real data")
    console.print(
        f"load average at the start: {_load(meta['load_average_start'])}; at the end: "
        f"{_load(meta['load_average_end'])} (1, 5, 15 min; {meta['cpu_count']} CPUs)",
        highlight=False,
    )

    table = Table(title="Measured in this run (ratio = against the reference column)")
    table.add_column("benchmark")
    table.add_column("tfcnn", justify="right")
    table.add_column("reference, same run", justify="right")
    table.add_column("ratio", justify="right")
    extrapolated = " (extrap.)" if tr["reference_extrapolated"] else ""
    table.add_row(
        f"1. train published config, {tr['epochs']} epochs (a)",
        _fmt_s(tr["tfcnn_s"]),
        f"grouped conv2d: {_fmt_s(tr['reference_s'])}{extrapolated}",
        _ratio(tr["speedup"], "faster"),
    )
    table.add_row(
        f"2. score {sc['pairs']:,} pairs: throughput (b)",
        f"{sc['tfcnn_pairs_per_s']:,.0f} pairs/s",
        f"grouped conv2d: {sc['reference_pairs_per_s']:,.0f} pairs/s",
        _ratio(sc["throughput_ratio"], "faster"),
    )
    table.add_row(
        "   peak RSS increase (c)",
        f"{sc['tfcnn_peak_rss_increase_mib']:,.1f} MiB",
        f"grouped conv2d: {sc['reference_peak_rss_increase_mib']:,.1f} MiB",
        _ratio(sc["rss_ratio"], "of ref."),
    )
    table.add_row(
        f"3. train {va['label']}, {va['epochs']} epochs (d)",
        f"{_fmt_s(va['tfcnn_s'])} ({_fmt_s(va['tfcnn_s_per_epoch'])}/ep)",
        f"tfcnn published: {_fmt_s(va['published_tfcnn_s_per_epoch'])}/ep",
        _ratio(va["cost_ratio_vs_published"], "per epoch"),
    )
    cm = results["command"]
    table.add_row(
        "4. train as the tfcnn command does (e)",
        f"{_fmt_s(cm['published_s'])} / {_fmt_s(cm['variant_s'])}",
        f"(1) / (3): {_fmt_s(tr['tfcnn_s'])} / {_fmt_s(va['tfcnn_s'])}",
        _ratio(cm["variant_s"] / va["tfcnn_s"], "of (3)"),
    )
    console.print(table)

    sanity = tr["sanity_loss_at_epoch"]
    if tr["reference_extrapolated"]:
        ref_note = (
            f"the reference was too slow for the time budget: {tr['reference_measured_epochs']}"
            f" of {tr['epochs']} epochs measured ({_fmt_s(tr['reference_measured_s'])}), "
            f"EXTRAPOLATED linearly to {tr['epochs']} epochs"
        )
    else:
        ref_note = f"all {tr['epochs']} reference epochs measured"
    agree = (
        f"[green]agree within {sc['tolerance']:g}[/green]"
        if sc["outputs_agree"]
        else f"[bold red]DISAGREE: exceeds {sc['tolerance']:g}[/bold red]"
    )
    notes = [
        f"(a) PairCNN.fit on {tr['pairs']:,} synthetic pairs x {tr['width']} samples "
        f"({tr['config']}) vs the same loop on benchmarks/grouped_reference.py; {ref_note}. "
        "Both start from the same weights with the same shuffles and dropout masks; "
        f"training loss after epoch {sanity['epoch']}: tfcnn {sanity['tfcnn']:.6g}, "
        f"reference {sanity['reference']:.6g}.",
        f"(b) predict_proba on {sc['pairs']:,} synthetic pairs x {sc['width']}, median of "
        f"{sc['tfcnn_repeats']} (tfcnn) and {sc['reference_repeats']} (reference) passes; "
        "the reference has the trained model's weights copied in (eval "
        f"mode). max |p_tfcnn - p_reference| = {sc['max_abs_diff']:.2e}: {agree}.",
        "(c) growth of the process peak RSS (ru_maxrss, a high-water mark) while scoring; "
        "each scorer runs in its own fresh process, and its baseline already holds the "
        f"{sc['input_mib']:,.0f} MiB input array and the model.",
        f"(d) {va['config']}; tfcnn only. The reference column is tfcnn's own published "
        + (
            f"configuration from (a), per epoch. 30 epochs would take about "
            f"{_fmt_s(va['tfcnn_30_epochs_extrapolated_s'])} (extrapolated)."
            if va["variant_extrapolated"]
            else f"configuration from (a), per epoch. All 30 epochs were run: "
            f"{_fmt_s(va['tfcnn_s'])}."
        ),
        f"(e) the published configuration and the 64/64/64 variant again, median of "
        f"{len(cm['published_runs_s'])} fits each, in a fresh process "
        "with glibc malloc tuned as the tfcnn command tunes it at start-up "
        "(tfcnn.runtime.keep_freed_memory: "
        + ("applied" if cm["allocator_tuned"] else "NOT applied on this system")
        + "); PairCNN.fit leaves the allocator alone, so (1) and (3) are what a Python "
        "caller gets unless it calls that function. The goal lines below use (e).",
    ]
    for note in notes:
        console.print(note, highlight=False)

    render_keras(console, results["keras"], sc)
    for line in results["goals"]:
        print_goal(console, line)

    shares = [
        ("training (1)", tr["tfcnn_sys_share"]),
        ("scoring (2)", sc["tfcnn_sys_share"]),
        ("reference scoring (2)", sc["reference_sys_share"]),
        ("64/64/64 (3)", va["tfcnn_sys_share"]),
        ("published (e)", cm["published_sys_share"]),
        ("64/64/64 (e)", cm["variant_sys_share"]),
    ]
    console.print(
        "kernel (sys) share of CPU time: "
        + ", ".join(f"{name} {x:.0%}" for name, x in shares if x is not None)
        + ". A large share usually means page faults from big short-lived allocations.",
        highlight=False,
    )

    other = meta["other_processes_cpu_share"]
    if other is not None:
        if other > 0.1:
            console.print(
                f"[bold red]WARNING: other processes used {other:.0%} of the machine's CPU "
                "during this run; timings are inflated. Rerun on an idle machine.[/bold red]"
            )
        else:
            console.print(f"other processes used {other:.0%} of the machine's CPU during the run")
    console.print(
        f"total runtime {_fmt_s(meta['total_runtime_s'])}; results: {results['output_path']}",
        highlight=False,
    )
    if meta["total_runtime_s"] > RUNTIME_TARGET_S:
        console.print(
            f"[yellow]The run took longer than its {RUNTIME_TARGET_S:.0f} s target (an idle "
            "2-core machine is expected).[/yellow]"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, to smoke-test the script (seconds)"
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="JSON file (default: %(default)s)"
    )
    parser.add_argument(
        "--keras",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the Keras reference (default: yes, except with --quick; it installs "
        "TensorFlow into .bench/keras-venv the first time)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    console = Console()

    torch.set_num_threads(THREADS)
    start = time.perf_counter()
    load_start = list(os.getloadavg())
    busy0, own0 = busy_cpu_seconds(), _own_cpu_s()

    X, y = synthetic_pairs(sizes.train_pairs, sizes.width, SEED)
    with console.status("warming up"):
        _warm_up(sizes)
    with console.status("1. training: tfcnn, then the grouped-conv reference"):
        training, est = bench_training(sizes, X, y)
    with console.status("2. scoring (two fresh processes)"):
        scoring = bench_scoring(sizes, est)
    with console.status("3. training the 64/64/64 variant"):
        variant = bench_variant(sizes, X, y, training)
    with console.status("4. both trainings as the tfcnn command runs them (fresh process)"):
        command = bench_command_fits(sizes)

    keras = bench_keras(console, args, X, y)

    elapsed = time.perf_counter() - start
    busy1, own1 = busy_cpu_seconds(), _own_cpu_s()
    other_share = None
    if busy0 is not None and busy1 is not None:
        machine_cpu_s = busy1 - busy0
        other_cpu_s = max(0.0, machine_cpu_s - (own1 - own0))
        other_share = other_cpu_s / (elapsed * (os.cpu_count() or 1))

    results = {
        "meta": {
            "quick": args.quick,
            "synthetic_inputs": True,
            "seed": SEED,
            "sizes": asdict(sizes),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "threads_requested": THREADS,
            "cpu_count": os.cpu_count(),
            "machine": f"{platform.machine()} {platform.system()} {platform.release()}",
            "python": platform.python_version(),
            "other_processes_cpu_share": other_share,
            "load_average_start": load_start,
            "load_average_end": list(os.getloadavg()),
            "total_runtime_s": elapsed,
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "training": training,
        "scoring": scoring,
        "variant": variant,
        "command": command,
        "keras": keras,
        "goals": goals(training, variant, command, keras),
        "output_path": str(args.output),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    render(console, results)
    if not scoring["outputs_agree"]:
        console.print("[bold red]tfcnn and the reference disagree beyond tolerance.[/bold red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
