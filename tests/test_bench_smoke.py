"""Smoke test of the benchmark script (`make bench`): it runs and writes its JSON.

Only the script's plumbing is checked here; speed goals live in benchmarks/, never in
unit tests, so nothing below looks at a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "run.py"


def run_quick(script: Path, out: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``script --quick --output out`` from the repository root; it must succeed."""
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--output", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,  # a hang guard, not a speed goal
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.slow
def test_bench_quick_writes_expected_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = run_quick(SCRIPT, out)
    results = json.loads(out.read_text())

    assert set(results) >= {"meta", "training", "scoring", "variant"}
    assert results["keras"]["available"] is False  # --quick: no TensorFlow install
    assert [g["met"] for g in results["goals"]] == [None, None]  # not judged without Keras
    meta = results["meta"]
    assert meta["quick"] is True
    assert meta["synthetic_inputs"] is True
    assert meta["threads_requested"] == 2
    assert set(results["training"]) >= {
        "tfcnn_s",
        "reference_s",
        "reference_measured_epochs",
        "reference_extrapolated",
        "speedup",
    }
    assert set(results["scoring"]) >= {
        "tfcnn_pairs_per_s",
        "reference_pairs_per_s",
        "throughput_ratio",
        "max_abs_diff",
        "outputs_agree",
        "tfcnn_peak_rss_increase_mib",
        "reference_peak_rss_increase_mib",
    }
    assert results["scoring"]["outputs_agree"] is True
    assert set(results["variant"]) >= {"tfcnn_s", "epochs", "cost_ratio_vs_published"}
    command = results["command"]  # the goals use training as the tfcnn command runs it
    assert [g["tfcnn_s"] for g in results["goals"]] == [
        command["published_s"],
        command["variant_s"],
    ]
    assert [g["library_default_s"] for g in results["goals"]] == [
        results["training"]["tfcnn_s"],
        results["variant"]["tfcnn_s"],
    ]
    assert "SYNTHETIC" in proc.stdout


LOAD_SCRIPT = ROOT / "benchmarks" / "bench_load.py"


@pytest.mark.slow
def test_bench_load_quick_serves_every_query_and_prints_the_goals(tmp_path: Path) -> None:
    """`bench_load.py --quick`: a real `tfcnn serve`, 3 sessions x 2 queries, no error."""
    out = tmp_path / "load.json"
    proc = run_quick(LOAD_SCRIPT, out)
    results = json.loads(out.read_text())
    assert results["meta"]["quick"] is True
    assert results["queries_planned"] == results["queries_done"] == 6
    assert results["errors"] == 0 and results["error_messages"] == []
    assert set(results["latency_s"]) == {"p50", "p95", "max"}
    assert set(results["rss"]) >= {"idle_mib", "after_warm_up_mib", "peak_mib", "end_mib"}
    assert all(r["error"] is None for r in results["records"])
    for line in ("errors: 0 (goal 0)", "p95: ", "(goal < 5 s)", "memory (server RSS): start "):
        assert line in proc.stdout


BUSY_SCRIPT = ROOT / "benchmarks" / "bench_busy.py"


@pytest.mark.slow
def test_bench_busy_quick_prints_the_ratio_and_load(tmp_path: Path) -> None:
    """`bench_busy.py --quick`: the demo idle, then beside 1 hog; ratio, goal, load."""
    out = tmp_path / "busy.json"
    proc = run_quick(BUSY_SCRIPT, out, timeout=600)
    results = json.loads(out.read_text())
    meta = results["meta"]
    assert (meta["quick"], meta["epochs"], meta["hogs"]) == (True, 1, 1) and meta["cores"] >= 1
    assert results["same_table"] is True  # the load never changes the numbers
    for run in ("idle", "busy"):
        assert results[run]["seconds"] > 0 and len(results[run]["load_before"]) == 3
    idle, busy = results["idle"]["seconds"], results["busy"]["seconds"]
    assert results["ratio"] == pytest.approx(busy / idle)
    for line in ("slowdown beside 1 CPU-bound process:", "fair share of", "goal <= 5x"):
        assert line in proc.stdout
    assert "load average" in proc.stdout
