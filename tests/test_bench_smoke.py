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


@pytest.mark.slow
def test_bench_quick_writes_expected_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard, not a speed goal (the quick run takes seconds)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())

    assert set(results) >= {"meta", "training", "scoring", "variant"}
    assert "external_context_not_measured" in results
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
    assert "SYNTHETIC" in proc.stdout


LOAD_SCRIPT = ROOT / "benchmarks" / "bench_load.py"


@pytest.mark.slow
def test_bench_load_quick_serves_every_query_and_prints_the_goals(tmp_path: Path) -> None:
    """`bench_load.py --quick`: a real `tfcnn serve`, 3 sessions x 2 queries, no error."""
    out = tmp_path / "load.json"
    proc = subprocess.run(
        [sys.executable, str(LOAD_SCRIPT), "--quick", "--output", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard, not a speed goal
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    assert results["meta"]["quick"] is True
    assert results["queries_planned"] == results["queries_done"] == 6
    assert results["errors"] == 0 and results["error_messages"] == []
    assert set(results["latency_s"]) == {"p50", "p95", "max"}
    assert set(results["rss"]) >= {"idle_mib", "after_warm_up_mib", "peak_mib", "end_mib"}
    assert all(r["error"] is None for r in results["records"])
    for line in ("errors: 0 (goal 0)", "p95: ", "(goal < 5 s)", "memory (server RSS): start "):
        assert line in proc.stdout
