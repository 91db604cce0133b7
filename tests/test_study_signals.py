"""SIGINT/SIGTERM to `study`, `tune` and `demo` (issue 12, case 10): the command stops its
worker processes, keeps finished runs, leaves nothing half-written, and a rerun resumes.

Real signals to a real `python -m tfcnn` process; synthetic data written by the tests
(the demo uses the bundled data, as it always does). Linux (/proc) only.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.synthetic import planted_dataset, write_pairs, write_tsv

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _write(d: Path, **size: int) -> Path:
    expr, known = planted_dataset(**size)
    write_tsv(expr, d / "expr.tsv")
    write_pairs(known, d / "pairs.tsv")
    return d


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Big enough that a tuning run takes a moment (so a signal lands mid-scan)."""
    size = {"n_tfs": 10, "targets_per_tf": 30, "n_background": 200, "n_samples": 40}
    return _write(tmp_path_factory.mktemp("synthetic"), **size)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    size = {"n_tfs": 8, "targets_per_tf": 15, "n_background": 80, "n_samples": 16}
    return _write(tmp_path_factory.mktemp("small"), **size)


def _state(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of a live process, None when gone (zombies count as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[1]), fields[0]) if fields[0] not in "ZX" else None


def children(pid: int) -> set[int]:
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            s = _state(int(d.name))
            if s is not None and s[0] == pid:
                out.add(int(d.name))
    return out


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "tfcnn", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished(out: Path) -> set[str]:
    return {p.parent.name for p in (out / "runs").glob("*/metrics.json")}


def wait_for(condition, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"exited early ({proc.returncode}):\n{proc.communicate()[0]}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def stop(proc: subprocess.Popen[str], signum: int) -> tuple[str, set[int]]:
    """Send ``signum`` to the command's process only; wait; return output and its workers."""
    workers = children(proc.pid)
    assert workers, "no worker processes to stop"
    proc.send_signal(signum)
    try:
        output = proc.communicate(timeout=60)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        gone(workers)
        pytest.fail("the command did not stop within 60 s")
    assert proc.returncode == 128 + signum, output
    gone(workers)
    return re.sub(r"\s+", " ", output), workers


def gone(workers: set[int], timeout: float = 15) -> None:
    """Assert the workers exit within ``timeout`` s (killed here if not, then reported)."""
    deadline = time.monotonic() + timeout
    while any(_state(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [w for w in workers if _state(w)]
    for w in alive:  # never leave them running on the machine
        os.kill(w, signal.SIGKILL)
    assert not alive, "workers still running after the command"


def complete_runs_only(out: Path) -> None:
    runs = out / "runs"
    assert not [p.name for p in runs.iterdir() if p.name.startswith(".")], "half-written run"
    for d in runs.iterdir():
        assert {p.name for p in d.iterdir()} >= {"config.json", "metrics.json"}, d


STUDY = [
    "--split", "random,tf-holdout", "--negatives", "random,tf-matched", "--replicates", "2",
    "--epochs", "10", "--genie3-trees", "5", "--no-tune", "--workers", "2", "--bootstrap", "50",
    "--two-tower-seeds", "1",
]  # fmt: skip


@pytest.mark.slow
def test_sigterm_stops_study_workers_and_the_rerun_resumes(small, tmp_path) -> None:
    out = tmp_path / "res"
    args = ["study", "-o", str(out), "-x", str(small / "expr.tsv"), "-i", str(small / "pairs.tsv")]
    proc = start([*args, *STUDY], tmp_path)
    wait_for(lambda: len(finished(out)) >= 1 if (out / "runs").is_dir() else False, proc)
    output, _ = stop(proc, signal.SIGTERM)
    assert "SIGTERM" in output and "resume" in output
    kept = finished(out)
    assert 1 <= len(kept) < 9, output
    time.sleep(1.5)  # nothing is still being written by anyone
    assert finished(out) == kept
    complete_runs_only(out)
    assert not (out / "study.json").exists()

    again = start([*args, *STUDY], tmp_path)
    text = re.sub(r"\s+", " ", again.communicate(timeout=600)[0])
    assert again.returncode == 0, text
    assert f"{9 - len(kept)} runs ran, {len(kept)} reused" in text


def start_grid(files: Path, out: Path) -> subprocess.Popen[str]:
    """`tune grid` (8 configs, 2 workers) started; returns once both workers run jobs.

    300 epochs keep the workers busy for several seconds (the grid takes ~12 s idle; at
    30 epochs training got fast enough that the grid could end before the signal)."""
    args = [
        "tune", "grid", "-o", str(out), "-x", str(files / "expr.tsv"),
        "-i", str(files / "pairs.tsv"), "--values", "4,8", "--epochs", "300",
        "--train-pairs", "300", "--workers", "2",
    ]  # fmt: skip
    proc = start(args, out.parent)
    wait_for(lambda: len(children(proc.pid)) >= 2 and (out / "runs").is_dir(), proc)
    return proc


@pytest.mark.slow
def test_sigint_stops_tune_workers(files, tmp_path) -> None:
    out = tmp_path / "grid"
    proc = start_grid(files, out)
    time.sleep(1.0)
    output, _ = stop(proc, signal.SIGINT)
    assert "SIGINT" in output
    assert len(finished(out)) < 8
    complete_runs_only(out)


@pytest.mark.slow
def test_workers_die_with_a_killed_parent(files, tmp_path) -> None:
    """Even SIGKILL (no cleanup possible) does not leave workers running on their own."""
    proc = start_grid(files, tmp_path / "grid")
    workers = children(proc.pid)
    proc.kill()
    proc.wait(timeout=30)
    gone(workers)
    assert proc.stdout is not None
    proc.stdout.close()


@pytest.mark.slow
def test_sigterm_stops_the_demo_and_leaves_no_output(tmp_path) -> None:
    out = tmp_path / "demo"
    proc = start(["demo", "--epochs", "2", "--threads", "2", "-o", str(out)], tmp_path)
    wait_for(lambda: len(children(proc.pid)) >= 2, proc)
    time.sleep(1.0)
    output, _ = stop(proc, signal.SIGTERM)
    assert "SIGTERM" in output and "nothing was written" in output
    assert not out.exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".demo")]
