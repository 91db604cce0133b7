"""`tfcnn study` / `tfcnn tune` on dask clusters whose workers are other processes in other
folders (issue 17): the inputs go to the workers as data, the results come back, and the
client alone writes the results folder. Results identical to a local run.

Synthetic data only (planted dataset written by the test); each test well under a minute.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.synthetic import planted_dataset, write_pairs, write_tsv
from tfcnn.apps.cli import app

distributed = pytest.importorskip("dask.distributed")
pytestmark = pytest.mark.slow  # worker processes import torch: tens of seconds under load

STUDY = [
    "study", "-o", "res", "-x", "expr.tsv", "-i", "pairs.tsv",
    "--split", "random,tf-holdout", "--negatives", "random", "--replicates", "2",
    "--epochs", "2", "--genie3-trees", "3", "--no-tune", "--bootstrap", "50",
    "--two-tower-seeds", "1",
]  # fmt: skip
GRID = [
    "tune", "grid", "-o", "grid", "-x", "expr.tsv", "-i", "pairs.tsv",
    "--values", "2,4", "--epochs", "1", "--train-pairs", "40",
]  # fmt: skip


@pytest.fixture(scope="module")
def client_dir(tmp_path_factory) -> Path:
    """The client's working directory, holding synthetic inputs named relatively."""
    d = tmp_path_factory.mktemp("client")
    expr, known = planted_dataset(n_tfs=8, targets_per_tf=10, n_background=60, n_samples=12)
    write_tsv(expr, d / "expr.tsv")
    write_pairs(known, d / "pairs.tsv")
    return d


def _cli(args: list[str], cwd: Path) -> str:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, args)
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output
    return re.sub(r"\s+", " ", result.output)


@pytest.fixture(scope="module")
def local(client_dir, tmp_path_factory) -> Path:
    """The same study and grid run here, in this process (the reference)."""
    d = tmp_path_factory.mktemp("local")
    for name in ("expr.tsv", "pairs.tsv"):
        shutil.copy(client_dir / name, d / name)
    _cli([*STUDY, "--workers", "1"], d)
    _cli([*GRID, "--workers", "1"], d)
    return d


def _without_seconds(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_seconds(v) for v in value]
    return value


def runs(results: Path) -> dict[str, dict[str, Any]]:
    """Every run folder: its config, its metrics (timings aside) and its files' bytes."""
    out = {}
    for d in sorted((results / "runs").iterdir()):
        assert not d.name.startswith("."), f"temporary folder left: {d}"
        files = {}
        for p in sorted(d.rglob("*")):
            if p.is_file() and p.name not in ("config.json", "metrics.json"):
                data = p.read_bytes()
                files[p.relative_to(d).as_posix()] = (
                    gzip.decompress(data) if p.suffix == ".gz" else data
                )
        out[d.name] = {
            "config": json.loads((d / "config.json").read_text()),
            "metrics": _without_seconds(json.loads((d / "metrics.json").read_text())),
            "files": files,
        }
    return out


def assert_same_results(a: Path, b: Path) -> None:
    ra, rb = runs(a), runs(b)
    assert ra.keys() == rb.keys() and ra
    for name in ra:
        assert ra[name] == rb[name], name
    sa = json.loads((a / "study.json").read_text())
    sb = json.loads((b / "study.json").read_text())
    assert _without_seconds(sa["protocols"]) == _without_seconds(sb["protocols"])


def no_paths_in_configs(results: Path) -> None:
    """Job configs carry input contents (sha256), never the paths; files came back."""
    made = {p.name for p in (results / "runs").glob("*/*")}
    assert {"test_scores.tsv.gz", "genie3.safetensors"} <= made
    for config in (results / "runs").glob("*/config.json"):
        text = config.read_text()
        assert "expr.tsv" not in text and "pairs.tsv" not in text
        assert '"sha256"' in text


def nothing_written_in(folder: Path) -> None:
    assert not any(folder.iterdir()), sorted(p.name for p in folder.iterdir())


def test_local_cluster_of_processes_in_another_folder(client_dir, local, tmp_path) -> None:
    """LocalCluster(processes=True); each worker process moved to its own empty folder."""
    elsewhere = tmp_path / "workers-cwd"
    elsewhere.mkdir()
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(os.chdir, str(elsewhere))
        cwds = client.run(os.getcwd)
        assert set(cwds.values()) == {str(elsewhere)} and len(cwds) == 2
        pids = client.run(os.getpid)
        assert os.getpid() not in pids.values()  # worker processes, not this one
        study_out = _cli([*STUDY, "--scheduler", cluster.scheduler_address], client_dir)
        grid_out = _cli([*GRID, "--scheduler", cluster.scheduler_address], client_dir)
    assert "5 runs ran" in study_out and "8 runs ran" in grid_out
    nothing_written_in(elsewhere)
    assert_same_results(client_dir / "res", local / "res")
    assert_same_results(client_dir / "grid", local / "grid")
    no_paths_in_configs(client_dir / "res")


def _dask(*args: str) -> list[str]:
    exe = Path(sys.executable).with_name("dask")
    return [str(exe), *args] if exe.exists() else [sys.executable, "-m", "dask", *args]


def test_scheduler_and_worker_processes_started_elsewhere(local, tmp_path) -> None:
    """`dask scheduler` + `dask worker` on 127.0.0.1, started from a folder without inputs."""
    elsewhere = tmp_path / "cluster-cwd"
    scratch = tmp_path / "scratch"
    client = tmp_path / "client"
    for d in (elsewhere, scratch, client):
        d.mkdir()
    for name in ("expr.tsv", "pairs.tsv"):
        shutil.copy(local / name, client / name)
    info = scratch / "scheduler.json"
    common = {"cwd": elsewhere, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        _dask(
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--scheduler-file", str(info),
        ),
        **common,
    )  # fmt: skip
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not info.is_file() and time.monotonic() < deadline:
            assert scheduler.poll() is None, "dask scheduler exited"
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        worker = subprocess.Popen(
            _dask(
                "worker", address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                "--no-dashboard", "--local-directory", str(scratch / "worker"),
            ),
            **common,
        )  # fmt: skip
        with distributed.Client(address) as c:
            c.wait_for_workers(1, timeout=60)
            assert set(c.run(os.getcwd).values()) == {str(elsewhere)}
        out = _cli([*STUDY, "--scheduler", address], client)
        assert "5 runs ran" in out
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
        for proc in (worker, scheduler):
            if proc is not None:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    nothing_written_in(elsewhere)
    assert_same_results(client / "res", local / "res")
    no_paths_in_configs(client / "res")
