"""Smoke test of benchmarks/bench_engine.py (`make bench`): it runs, and its scorers agree.

Speed goals live in the benchmark, never in unit tests: nothing here looks at a timing.
The script itself exits 1 when the scan and the reference layers disagree by more than
1e-5, so this test fails on a wrong engine, not on a slow one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_engine_quick_runs_and_scorers_agree() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_engine.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard, not a speed goal
        env={**os.environ, "COLUMNS": "200"},  # table rows on one line each
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "agree within 1e-5" in proc.stdout
    assert "tfcnn scan (numba), 8 TFs x all genes" in proc.stdout  # both scan sizes ran
    assert "tfcnn scan (numba), 4 TFs x all genes" in proc.stdout
    assert "tfcnn scan (torch), 8 TFs x all genes" in proc.stdout  # and the PyTorch engine
    assert "same scan, --engine torch" in proc.stdout
