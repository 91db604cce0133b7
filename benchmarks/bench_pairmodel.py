"""Two-tower scan benchmark (`make bench`): pairs/s beside the CNN engine, same run.

Scores 1,600 TFs x 20,000 genes of a SYNTHETIC z-scored matrix (232 samples, fixed seed)
with :func:`tfcnn.inference.scan.scan` (blocks of 32 TFs, 2 at a time with one torch
thread each, to Parquet), for:

* ``cnn``: a random published-architecture network (the CNN engine,
  :class:`tfcnn.inference.engine.PairScorer`), the reference of this run;
* ``two-tower``: the default two-tower model (shared dense tower 128 -> 32, MLP head 64,
  3 members; random weights: the cost does not depend on them), scored by
  :class:`tfcnn.model.two_tower.TwoTowerScorer` (towers once per gene, the head block-wise);
* ``two-tower, 1 member`` and ``two-tower, bilinear head`` (3 members), to show what the
  ensemble and the head cost.

``min_prob`` 1.0 keeps (almost) no rows, so the figure is the scoring, not the writing of
32 million rows. Before timing, each fast scorer is checked against the plain network
(``predict_proba``) on 2,000 pairs: they must agree to 1e-5 (else exit status 1). The load
average is printed at the start and the end, and the share of CPU other processes used.
``--quick``: 64 TFs x 2,000 genes x 40 samples (seconds; numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import busy_cpu_seconds  # noqa: E402

SEED = 20190102
THREADS = 2
FULL = {"tfs": 1_600, "genes": 20_000, "width": 232}
QUICK = {"tfs": 64, "genes": 2_000, "width": 40}


def _matrix(genes: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    z = rng.standard_normal((genes, width), dtype=np.float32)
    return ((z - z.mean(1, keepdims=True)) / z.std(1, ddof=1, keepdims=True)).astype(np.float32)


def _models(width: int) -> dict[str, tuple[torch.nn.Module, object]]:
    """name -> (network for scan, estimator-like object with predict_proba)."""
    from tfcnn.model.estimator import PairCNN
    from tfcnn.model.network import CNNConfig, PairCNNNetwork
    from tfcnn.model.two_tower import TwoTower, TwoTowerConfig, TwoTowerEnsemble

    torch.manual_seed(SEED)
    cnn = PairCNNNetwork(CNNConfig(n_samples=width)).eval()
    with torch.no_grad():  # a trained-looking BN: non-trivial running statistics
        assert cnn.norm2 is not None
        cnn.norm2.running_mean.uniform_(-0.5, 0.5)
        cnn.norm2.running_var.uniform_(0.5, 2.0)
    est = PairCNN()
    est.network_ = cnn
    out: dict[str, tuple[torch.nn.Module, object]] = {"cnn": (cnn, est)}
    for name, settings in (
        ("two-tower", {}),
        ("two-tower, 1 member", {"members": 1}),
        ("two-tower, bilinear head", {"head": "bilinear"}),
    ):
        net = TwoTowerEnsemble(TwoTowerConfig(n_samples=width, **settings)).eval()
        tt = TwoTower(n_seeds=net.config.members, head=net.config.head)
        tt.network_ = net
        out[name] = (net, tt)
    return out


def _agreement(net: torch.nn.Module, est: object, z: np.ndarray) -> float:
    """Largest |fast scorer - predict_proba| over 2,000 pairs of 20 TFs x 100 genes."""
    from tfcnn.model.two_tower import scorer_for

    scorer = scorer_for(net)
    terms = scorer.gene_terms(z)
    tf_rows, target_rows = np.arange(20), np.arange(100, 200)
    fast = scorer.score_block(terms, tf_rows, target_rows)
    x = np.stack([z[np.repeat(tf_rows, 100)], z[np.tile(target_rows, 20)]], axis=1)
    direct = est.predict_proba(x)[:, 1].reshape(fast.shape)  # type: ignore[attr-defined]
    return float(np.abs(fast - direct).max())


def _time_scan(net: torch.nn.Module, z: np.ndarray, genes: list[str], tfs: int, tmp: str) -> dict:
    from tfcnn.inference.scan import scan
    from tfcnn.model.two_tower import scorer_for

    with torch.no_grad():
        t0 = time.perf_counter()
        scorer_for(net).gene_terms(z)  # what the towers (or conv 1 terms) cost, once per gene
        terms_s = time.perf_counter() - t0
    common = {"workers": THREADS, "min_prob": 1.0, "force": True}
    scan(net, z, genes, Path(tmp) / "warm.parquet", tfs=genes[:2], **common)
    cpu0, busy0 = os.times(), busy_cpu_seconds()
    t0 = time.perf_counter()
    result = scan(net, z, genes, Path(tmp) / "scan.parquet", tfs=genes[:tfs], **common)
    seconds = time.perf_counter() - t0
    cpu1, busy1 = os.times(), busy_cpu_seconds()
    own = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    other = None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0) - own)
    return {
        "pairs": result.pairs,
        "seconds": seconds,
        "pairs_per_s": result.pairs / seconds,
        "gene_terms_s": terms_s,
        "cpu_s": own,
        "other_processes_cpu_share": None if other is None else other / (seconds * os.cpu_count()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument(
        "--output", type=Path, default=Path(".bench/pairmodel.json"), help="JSON results file"
    )
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    console = Console()
    load_start = list(os.getloadavg())
    console.print(
        f"[bold]two-tower scan benchmark[/bold]: SYNTHETIC z-scored matrix, {size['genes']:,} "
        f"genes x {size['width']} samples (seed {SEED}); {size['tfs']:,} TFs x all genes; "
        f"tfcnn.inference.scan with {THREADS} workers of one thread; random weights. "
        f"Load average at start: {', '.join(f'{v:.2f}' for v in load_start)}",
        highlight=False,
    )
    z = _matrix(size["genes"], size["width"])
    genes = [f"SYN{i:05d}" for i in range(size["genes"])]
    results: dict[str, dict] = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="tfcnn-bench-pairmodel-") as tmp:
        for name, (net, est) in _models(size["width"]).items():
            diff = _agreement(net, est, z)
            failed |= diff > 1e-5
            with console.status(f"scanning with {name}"):
                results[name] = {**_time_scan(net, z, genes, size["tfs"], tmp), "max_diff": diff}
    ref = results["cnn"]["pairs_per_s"]
    table = Table(title="Scan of every TF x gene pair, measured in this run")
    for col in ("model", "per-gene terms (s)", "scan (s)", "pairs/s", "vs CNN", "max |diff|"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r['gene_terms_s']:.2f}",
            f"{r['seconds']:.1f}",
            f"{r['pairs_per_s']:,.0f}",
            f"{r['pairs_per_s'] / ref:.2f}x",
            f"{r['max_diff']:.1e}",
        )
    console.print(table)
    load_end = list(os.getloadavg())
    shares = [r["other_processes_cpu_share"] for r in results.values()]
    worst = max((s for s in shares if s is not None), default=None)
    console.print(
        f"{results['cnn']['pairs']:,} pairs per model; load average at end: "
        f"{', '.join(f'{v:.2f}' for v in load_end)}"
        + ("" if worst is None else f"; other processes used up to {worst:.0%} of the CPU"),
        highlight=False,
    )
    if worst is not None and worst > 0.10:
        console.print(
            "[red]other processes used more than 10% of the CPU: these timings are inflated; "
            "rerun on an idle machine.[/red]"
        )
    if failed:
        console.print("[red]a fast scorer disagrees with predict_proba by more than 1e-5[/red]")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "quick": args.quick,
        "synthetic_inputs": True,
        "threads": THREADS,
        **size,
        "load_average_start": load_start,
        "load_average_end": load_end,
    }
    args.output.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
