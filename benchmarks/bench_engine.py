"""Scan benchmark (`make bench`): tfcnn.inference.scan vs scoring materialised pairs, same run.

Measures, each in its own fresh process (so the peak RSS is its own), on a SYNTHETIC
z-scored matrix (genes x 232 samples, fixed seed) and a random published-architecture
network:

* ``scan``: :func:`tfcnn.inference.scan.scan`, every TF of a block x every gene, to Parquet,
  2 blocks at a time with one thread each; run at two sizes, to show its memory does not
  grow with the pairs, with the default engine (the fused numba kernel when numba is
  installed: :mod:`tfcnn.inference.fused`), and once more with ``engine="torch"``
  (:class:`~tfcnn.inference.engine.PairScorer`);
* ``reference``: the same pairs gathered into an (N, 2, 232) tensor and scored with
  ``PairCNNNetwork`` in eval mode, batches of 512, torch.set_num_threads(2) (what
  ``PairCNN.predict_proba`` does), and with the grouped-conv network of
  benchmarks/grouped_reference.py (the plain PyTorch layers).

Probabilities of the scan and the references must agree to 1e-5 (else exit status 1).
The fused kernel's compilation is timed once in a fresh process with an empty cache
(``TFCNN_CACHE_DIR`` points at a temporary folder for the whole run), so the scans after
it load the compiled kernel, as a user's second and later scans do.

Then the goals of issue 17, end to end from the command line: ``tfcnn scan`` of a
SYNTHETIC expression file (TSV) with a model of that width, to Parquet, at widths 232,
1,000 and 5,000 with the default engine, then with ``--engine torch``, each beside
Keras's ``model.predict`` throughput at the same width,
measured in the same run (benchmarks/keras_ref.py: reused from run.py when ``make
bench`` ran it minutes before). Wall time, pairs/s, peak RSS (of the ``tfcnn`` process
alone, from ``wait4``) and the load average are printed for each.

``--large``: the genome-scale run instead (``make bench-large``): 1,600 TFs x 20,000
genes of a SYNTHETIC 20,000 x 1,000 matrix (Parquet), wall time, pairs/s, peak RSS.
Add --quick for a seconds-long smoke run (numbers mean nothing; no Keras).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

SEED = 20190102
WIDTH = 232
THREADS = 2
GOAL_PAIRS_PER_S = 700_000  # the in-process scan of the 2,286-gene matrix (issue 9)
GOAL_PEAK_BYTES = 2 * 2**30


@dataclass(frozen=True)
class CliCase:
    """One ``tfcnn scan`` run from the command line, and its goal (pairs/s; None: none)."""

    width: int
    genes: int
    tfs: int
    goal: float | None
    fmt: str = "tsv"

    @property
    def pairs(self) -> int:
        return self.tfs * (self.genes - 1)


CLI_CASES = (
    CliCase(232, 10_000, 2_000, 1_500_000),
    CliCase(1_000, 5_000, 1_000, 300_000),
    CliCase(5_000, 2_000, 300, 50_000),
)
QUICK_CLI = (CliCase(40, 300, 8, None),)
LARGE = CliCase(1_000, 20_000, 1_600, None, fmt="parquet")


def _peak_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _setup(n_genes: int):
    """Synthetic matrix and a random published network (same seed in every process)."""
    from tfcnn.model.network import CNNConfig, PairCNNNetwork

    rng = np.random.default_rng(SEED)
    z = rng.standard_normal((n_genes, WIDTH), dtype=np.float32)
    z = (z - z.mean(1, keepdims=True)) / z.std(1, ddof=1, keepdims=True)
    torch.manual_seed(SEED)
    net = PairCNNNetwork(CNNConfig(n_samples=WIDTH)).eval()
    with torch.no_grad():  # a trained-looking BN: non-trivial running statistics
        net.norm2.running_mean.uniform_(-0.5, 0.5)
        net.norm2.running_var.uniform_(0.5, 2.0)
    genes = [f"SYN{i:05d}" for i in range(n_genes)]
    return z.astype(np.float32), net, genes


def _compile_seconds() -> dict:
    """Fresh process: build the fused scorer of the published shape (cold cache)."""
    from tfcnn.inference.fused import FusedPairScorer, numba_installed

    if not numba_installed():
        return {"seconds": None}
    _, net, _ = _setup(4)
    t0 = time.perf_counter()
    FusedPairScorer(net)
    return {"seconds": time.perf_counter() - t0}


def _worker(kind: str, n_genes: int, n_tfs: int, sample_out: str) -> dict:
    """Fresh process: time one scorer; return pairs/s, peak RSS growth, a probability sample."""
    z, net, genes = _setup(n_genes)
    tfs = genes[:n_tfs]
    n_pairs = n_tfs * (n_genes - 1)
    used = ""  # the scan's engine
    if kind in ("scan", "scan torch"):
        engine = "torch" if kind == "scan torch" else "auto"
        import pyarrow.parquet as pq

        from tfcnn.inference.scan import scan

        with tempfile.TemporaryDirectory(prefix="tfcnn-bench-scan-") as tmp:
            warm = Path(tmp) / "warm.parquet"
            scan(net, z, genes, warm, tfs=genes[:2], workers=THREADS, engine=engine)
            base = _peak_rss()
            t0 = time.perf_counter()
            cpu0 = os.times()
            out = Path(tmp) / "scan.parquet"
            result = scan(net, z, genes, out, tfs=tfs, workers=THREADS, engine=engine)
            seconds = time.perf_counter() - t0
            cpu1 = os.times()
            peak = _peak_rss()  # before the sample is read back
            first = pq.ParquetFile(result.output).read_row_group(0)  # the first TF block
            np.save(sample_out, first.column("probability").to_numpy()[:4096])
        assert result.pairs == n_pairs
        used = result.engine
    else:
        torch.set_num_threads(THREADS)
        if kind == "grouped":
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from grouped_reference import GroupedPairCNN, ReferenceConfig

            model = GroupedPairCNN(ReferenceConfig(n_samples=WIDTH)).eval()
            model.load_tfcnn_state(net.state_dict())
        else:
            model = net
        zt = torch.from_numpy(z)
        base = _peak_rss()
        t0 = time.perf_counter()
        cpu0 = os.times()
        # the materialised pair tensor (N, 2, W): what scoring without the engine needs
        tf_rows = torch.arange(n_tfs).repeat_interleave(n_genes)
        tg_rows = torch.arange(n_genes).repeat(n_tfs)
        keep = tf_rows != tg_rows
        x = torch.stack([zt[tf_rows[keep]], zt[tg_rows[keep]]], 1)
        out = np.empty(x.shape[0], np.float32)
        with torch.no_grad():
            for lo in range(0, x.shape[0], 512):
                out[lo : lo + 512] = torch.sigmoid(model(x[lo : lo + 512])).numpy()
        seconds = time.perf_counter() - t0
        cpu1 = os.times()
        peak = _peak_rss()
        np.save(sample_out, out[:4096])
    user, system = cpu1.user - cpu0.user, cpu1.system - cpu0.system
    return {
        "pairs": n_pairs,
        "seconds": seconds,
        "pairs_per_s": n_pairs / seconds,
        "peak_rss_increase": peak - base,
        "cpu_per_wall": (user + system) / seconds,
        "engine": used,
    }


def _fresh(*args, fn=_worker) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


# -- the command line, end to end ---------------------------------------------------------
def _cli_inputs(case: CliCase, folder: Path) -> tuple[Path, Path, Path]:
    """A SYNTHETIC expression file, a TF list and a model of the case's width."""
    import pandas as pd

    from tfcnn.model.estimator import PairCNN
    from tfcnn.model.record import TrainingRecord

    rng = np.random.default_rng(SEED + case.width)
    samples = [f"S{i:05d}" for i in range(case.width)]
    genes = [f"SYN{i:06d}" for i in range(case.genes)]
    values = rng.standard_normal((case.genes, case.width), dtype=np.float32)
    frame = pd.DataFrame(values, columns=samples)
    frame.insert(0, "gene", genes)
    expression = folder / f"synthetic_expression.{case.fmt}"
    if case.fmt == "parquet":
        frame.to_parquet(expression, index=False)
    else:
        frame.to_csv(expression, sep="\t", index=False, float_format="%.4f")
    tfs = folder / "tfs.txt"
    tfs.write_text("\n".join(genes[: case.tfs]) + "\n")
    x = rng.standard_normal((256, 2, case.width), dtype=np.float32)
    est = PairCNN(epochs=1, seed=SEED).fit(x, rng.integers(0, 2, 256))
    est.record_ = TrainingRecord(samples=samples)
    model = folder / "model"
    est.save(model, force=True)
    return expression, tfs, model


def run_cli_scan(case: CliCase, engine: str = "auto") -> dict:
    """``tfcnn scan`` as a user runs it; wall time, CPU and peak RSS of that process."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="tfcnn-bench-cli-") as tmp:
        folder = Path(tmp)
        expression, tfs, model = _cli_inputs(case, folder)
        out = folder / "scan.parquet"
        tfcnn = Path(sys.executable).with_name("tfcnn")
        cmd = [str(tfcnn), "scan", "--model", str(model), "--expression", str(expression)]
        cmd += ["--tfs", str(tfs), "--output", str(out), "--engine", engine]
        load_before = list(os.getloadavg())
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        stdout, stderr = proc.communicate()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise RuntimeError(f"tfcnn scan failed ({code}): {stderr.decode()[-2000:]}")
        rows = pq.ParquetFile(out).metadata.num_rows
        said = " ".join(stdout.decode().split())
        used = next((e for e in ("numba", "torch") if f"by the {e} engine" in said), "?")
    if rows != case.pairs:
        raise RuntimeError(f"tfcnn scan wrote {rows:,} rows, expected {case.pairs:,}")
    peak = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return {
        "width": case.width,
        "genes": case.genes,
        "tfs": case.tfs,
        "input": case.fmt,
        "pairs": case.pairs,
        "seconds": seconds,
        "pairs_per_s": case.pairs / seconds,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_bytes": int(peak),
        "goal_pairs_per_s": case.goal,
        "engine": used,
        "load_before": load_before,
        "load_after": list(os.getloadavg()),
    }


def _keras_predict(console: Console) -> dict:
    """Keras's predict pairs/s per width, measured in this run (see keras_ref.py)."""
    from keras_ref import KerasUnavailable, reference
    from run import KERAS_OPTIONS

    try:
        with console.status("the Keras reference (predict; reused when run.py measured it)"):
            keras = reference(("predict",), **KERAS_OPTIONS)
    except (KerasUnavailable, OSError, subprocess.SubprocessError) as exc:
        return {"available": False, "reason": str(exc)}
    return {"available": True, **keras}


def _goal_line(run: dict, keras: dict | None, label: str) -> str:
    load = ", ".join(f"{v:.2f}" for v in run["load_before"])
    mib = run["peak_rss_bytes"] / 2**20
    mem_ok = run["peak_rss_bytes"] < GOAL_PEAK_BYTES
    text = (
        f"{label}: {run['pairs']:,} pairs in {run['seconds']:,.1f} s = "
        f"{run['pairs_per_s']:,.0f} pairs/s (CPU {run['cpu_s']:,.1f} s)"
    )
    ref = (keras or {}).get("predict", {}).get(str(run["width"])) if keras else None
    if ref and keras is not None:
        from keras_ref import provenance

        text += (
            f"; Keras predict ({provenance(keras)}): {ref['pairs_per_s']:,.0f} pairs/s -> "
            f"{run['pairs_per_s'] / ref['pairs_per_s']:.1f}x Keras"
        )
    elif keras is not None:
        text += f"; Keras: {keras.get('reason', 'not measured at this width')}"
    if run["goal_pairs_per_s"] is not None:
        ok = run["pairs_per_s"] >= run["goal_pairs_per_s"]
        text += f"; goal >= {run['goal_pairs_per_s']:,.0f} pairs/s: " + (
            "[green]met[/green]" if ok else "[red]NOT met[/red]"
        )
    text += f"; peak RSS {mib:,.0f} MiB (goal < 2 GiB: " + (
        "[green]met[/green])" if mem_ok else "[red]NOT met[/red])"
    )
    return text + f"; load average {load}"


def cli_section(console: Console, cases: tuple[CliCase, ...], keras: dict | None) -> list[dict]:
    runs = []
    for case in cases:
        with console.status(f"tfcnn scan from the command line, width {case.width}"):
            run = run_cli_scan(case)
            torch_run = run_cli_scan(case, "torch") if run["engine"] != "torch" else None
        runs.append(run)
        label = (
            f"goal: tfcnn scan, width {case.width:,} (CLI: {case.genes:,} genes "
            f"{case.fmt.upper()} -> Parquet, {case.tfs:,} TFs, {run['engine']} engine)"
        )
        console.print(_goal_line(run, keras, label), highlight=False)
        if torch_run is not None:
            runs.append(torch_run)
            console.print(
                f"  same scan, --engine torch: {torch_run['pairs_per_s']:,.0f} pairs/s "
                f"({torch_run['seconds']:,.1f} s, CPU {torch_run['cpu_s']:,.1f} s, peak RSS "
                f"{torch_run['peak_rss_bytes'] / 2**20:,.0f} MiB); {run['engine']} / torch "
                f"{run['pairs_per_s'] / torch_run['pairs_per_s']:.2f}x",
                highlight=False,
            )
    return runs


def main_large(console: Console) -> int:
    """The genome-scale run (``make bench-large``)."""
    case = LARGE
    console.print(
        f"[bold]genome-scale scan[/bold]: tfcnn scan from the command line, {case.tfs:,} TFs x "
        f"{case.genes:,} genes of a SYNTHETIC {case.genes:,} x {case.width:,} matrix "
        f"(Parquet, seed {SEED + case.width}), a model of width {case.width:,}, "
        f"{os.cpu_count()} CPUs; load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    run = run_cli_scan(case)
    mib = run["peak_rss_bytes"] / 2**20
    console.print(
        f"{run['engine']} engine: wall time {run['seconds']:,.1f} s; {run['pairs']:,} pairs = "
        f"{run['pairs_per_s']:,.0f} pairs/s; peak RSS {mib:,.0f} MiB; CPU {run['cpu_s']:,.1f} s; "
        "load average "
        f"before / after: {', '.join(f'{v:.2f}' for v in run['load_before'])} / "
        f"{', '.join(f'{v:.2f}' for v in run['load_after'])}",
        highlight=False,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument(
        "--large", action="store_true", help="the genome-scale run only (make bench-large)"
    )
    args = parser.parse_args(argv)
    console = Console()
    with tempfile.TemporaryDirectory(prefix="tfcnn-bench-kernels-") as cache:
        os.environ["TFCNN_CACHE_DIR"] = cache  # spawned processes and tfcnn commands inherit it
        compiled = _fresh(fn=_compile_seconds)
        if compiled["seconds"] is None:
            console.print("fused kernel: numba is not installed; every scan uses PyTorch")
        else:
            console.print(
                f"fused kernel: compiling it for the published shape took "
                f"{compiled['seconds']:.1f} s (once per model shape; later runs load it from "
                "the cache, as here)",
                highlight=False,
            )
        return main_large(console) if args.large else _main(args, console)


def _main(args: argparse.Namespace, console: Console) -> int:
    if args.quick:
        n_genes, sizes, ref_tfs = 300, (4, 8), 4
    else:
        n_genes, sizes, ref_tfs = 2_286, (400, 1_600), 100
    console.print(
        f"[bold]scan benchmark[/bold]: SYNTHETIC z-scored matrix, {n_genes:,} genes x "
        f"{WIDTH} samples (seed {SEED}); random published-architecture network; "
        f"{THREADS} threads. Every scorer runs in its own fresh process."
    )
    with tempfile.TemporaryDirectory(prefix="tfcnn-bench-") as tmp:
        runs = {}
        for n_tfs in sizes:
            runs[f"scan {n_tfs}"] = _fresh("scan", n_genes, n_tfs, f"{tmp}/scan{n_tfs}.npy")
        torch_tfs = sizes[-1]
        runs["scan torch"] = _fresh("scan torch", n_genes, torch_tfs, f"{tmp}/scantorch.npy")
        runs["network"] = _fresh("network", n_genes, ref_tfs, f"{tmp}/network.npy")
        runs["grouped"] = _fresh("grouped", n_genes, ref_tfs, f"{tmp}/grouped.npy")
        samples = {k: np.load(f"{tmp}/{k.replace(' ', '')}.npy") for k in runs}
    n_cmp = min(len(v) for v in samples.values())  # same first pairs in every scorer
    diff = max(
        float(np.abs(v[:n_cmp] - samples["network"][:n_cmp]).max()) for v in samples.values()
    )
    big = runs[f"scan {sizes[-1]}"]
    ref, grouped = runs["network"], runs["grouped"]
    table = Table(title="Scan throughput and memory, measured in this run")
    for col in ("scorer", "pairs", "seconds", "pairs/s", "peak RSS increase", "CPU/wall"):
        table.add_column(col, justify="right" if col != "scorer" else "left")
    labels = {
        "network": "reference: materialised pairs, PairCNNNetwork (as predict_proba)",
        "grouped": "reference: materialised pairs, grouped conv2d",
    }
    for key, run in runs.items():
        n = torch_tfs if key == "scan torch" else key[5:]
        table.add_row(
            labels[key]
            if key in labels
            else f"tfcnn scan ({run['engine']}), {n} TFs x all genes -> Parquet",
            f"{run['pairs']:,}",
            f"{run['seconds']:.2f}",
            f"{run['pairs_per_s']:,.0f}",
            f"{run['peak_rss_increase'] / 2**20:,.1f} MiB",
            f"{run['cpu_per_wall']:.2f}",
        )
    console.print(table)
    console.print(
        f"scan vs reference (PairCNNNetwork): {big['pairs_per_s'] / ref['pairs_per_s']:.2f}x "
        f"faster; vs grouped conv2d: {big['pairs_per_s'] / grouped['pairs_per_s']:.2f}x faster; "
        f"peak RSS increase {big['peak_rss_increase'] / 2**20:,.0f} MiB vs "
        f"{ref['peak_rss_increase'] / 2**20:,.0f} MiB for {ref['pairs']:,} materialised pairs",
        highlight=False,
    )
    if big["engine"] != "torch":
        console.print(
            f"{big['engine']} engine vs torch engine, same scan: "
            f"{big['pairs_per_s'] / runs['scan torch']['pairs_per_s']:.2f}x",
            highlight=False,
        )
    small = runs[f"scan {sizes[0]}"]
    console.print(
        f"scan peak RSS increase: {small['peak_rss_increase'] / 2**20:,.0f} MiB for "
        f"{small['pairs']:,} pairs, {big['peak_rss_increase'] / 2**20:,.0f} MiB for "
        f"{big['pairs']:,} pairs (streamed: it does not grow with the number of pairs)",
        highlight=False,
    )
    ok_speed = big["pairs_per_s"] >= GOAL_PAIRS_PER_S
    ok_mem = big["peak_rss_increase"] < GOAL_PEAK_BYTES
    console.print(
        f"in-process scan goal >= {GOAL_PAIRS_PER_S:,} pairs/s: "
        + ("[green]met[/green]" if ok_speed else "[red]NOT met[/red]")
        + "; goal peak < 2 GiB: "
        + ("[green]met[/green]" if ok_mem else "[red]NOT met[/red]")
        + ". CPU/wall < 2 means the cores were shared with other processes; load average "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    keras = None if args.quick else _keras_predict(console)
    if args.quick:
        console.print("Keras reference: not measured (--quick); goals not judged.")
    cli_section(console, QUICK_CLI if args.quick else CLI_CASES, keras)
    ok = diff <= 1e-5
    console.print(
        f"max |p_scan - p_reference| on the first {n_cmp:,} pairs: {diff:.2e} "
        + ("[green](agree within 1e-5)[/green]" if ok else "[bold red]DISAGREE[/bold red]"),
        highlight=False,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
