"""`benchmarks/bench_io.py --quick` runs and prints the goal line (its numbers mean nothing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_io_quick_prints_bytes_per_value_and_the_goal() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_io.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "SYNTHETIC 2,000 x 100 matrix" in out and "load average" in out
    for line in ("genes x samples TSV", "genes x samples Parquet", "(--transpose)", "reference"):
        assert line in out
    assert "goal: peak <= 12 bytes per value" in out
