"""Jobs run in parallel, seeded and resumable, anywhere; only the client writes results.

A job is a JSON-ready config dict whose ``data`` holds the contents (sha256) of its
inputs, never their paths (:func:`.inputs.content_spec`). Its run directory is
``RESULTS/runs/<hash>/``, ``hash`` a digest of the canonical config, holding
``config.json`` and ``metrics.json`` plus the files the job made, written atomically
together. A job whose ``metrics.json`` exists is finished and skipped, so an interrupted
study resumes where it stopped, and reuses a run only for byte-identical inputs.

The inputs are read once on the client and shipped to the workers as data: to local
worker processes once each (the pool's initializer), to a dask.distributed cluster by
``scatter`` (optional dependency, imported lazily). A worker runs the job in a private
temporary folder and returns its metrics and files (:class:`RunResult`); the client
alone writes the results folder, so workers need neither the client's files nor its
working directory nor a shared filesystem.

Every job runs with one torch / BLAS thread, so its numbers do not depend on where it
ran or how many ran beside it. On SIGINT/SIGTERM (:func:`tfcnn.runtime.stop_on_signals`)
local workers are terminated and dask futures cancelled; finished runs stay, nothing is
half-written, and rerunning resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TfcnnInputError
from ..extras import require
from ..io.atomic import atomic_dir, json_safe
from ..runtime import stop_on_signals, torch_threads, worker_pool
from .inputs import StudyInputs, content_key, provide

RUNS_DIR = "runs"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"

Config = dict[str, Any]


@dataclass
class RunResult:
    """What a job sends back: its metrics and the files it made (relative path -> bytes)."""

    metrics: dict[str, Any]
    files: dict[str, bytes]


def config_hash(config: Config) -> str:
    """A short stable digest of a config (canonical JSON, sorted keys)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def run_dir(results: str | os.PathLike[str], config: Config) -> Path:
    return Path(results) / RUNS_DIR / config_hash(config)


def is_finished(results: str | os.PathLike[str], config: Config) -> bool:
    return (run_dir(results, config) / METRICS_FILE).is_file()


def load_run(results: str | os.PathLike[str], config: Config) -> dict[str, Any]:
    """The metrics of a finished run."""
    path = run_dir(results, config) / METRICS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TfcnnInputError(
            f"{path} is unreadable ({exc}); delete its folder and rerun."
        ) from exc


def run_job(config: Config, inputs: StudyInputs | None = None) -> RunResult:
    """Run one job in this process and return its result; writes nothing that stays.

    Called on workers, with the job's ``inputs`` (or after they were provided to the
    process). The job writes its files into a private temporary folder, read back into
    the result and removed. One thread for torch and BLAS while it runs.
    """
    from . import protocols, tuning

    handlers: dict[str, Callable[[Config, Path], dict[str, Any]]] = {
        "protocol": protocols.run_protocol_job,
        "genie3": protocols.run_genie3_job,
        "tune": tuning.run_tune_job,
    }
    kind = config.get("kind")
    if kind not in handlers:
        raise ValueError(f"unknown job kind {kind!r}")
    if inputs is not None:
        provide(inputs)
    folder = Path(tempfile.mkdtemp(prefix="tfcnn-run-"))
    try:
        with torch_threads(1, blas=True):
            metrics = handlers[kind](config, folder)
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return RunResult(metrics=json_safe(metrics), files=files)


def write_run(results: str | os.PathLike[str], config: Config, result: RunResult) -> Path:
    """Write a job's run directory on the client: all of it, or (interrupted) nothing."""
    final = run_dir(results, config)
    with atomic_dir(final, force=True) as tmp:
        for name, data in result.files.items():
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise ValueError(f"a job returned a file outside its folder: {name!r}")
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (tmp / METRICS_FILE).write_text(json.dumps(result.metrics, indent=2) + "\n")
    return final


def _check_inputs(configs: Iterable[Config], inputs: StudyInputs | None) -> None:
    """Every job's data must be the ``inputs`` shipped with it (by content)."""
    keys = {content_key(c["data"]) for c in configs if "data" in c}
    if inputs is None and keys:
        raise ValueError("jobs need `inputs` (tfcnn.study.inputs.read_inputs) to run")
    if inputs is not None and keys - {inputs.key}:
        raise ValueError("a job's data differ from the `inputs` given to run it")


def run_jobs(
    configs: Sequence[Config],
    results: str | os.PathLike[str],
    *,
    inputs: StudyInputs | None = None,
    workers: int = 2,
    scheduler: str | None = None,
    on_done: Callable[[Config, int, int], None] | None = None,
) -> dict[str, int]:
    """Run the unfinished ``configs`` on ``inputs``; returns counts ``skipped`` and ``ran``.

    ``workers`` local processes (1 runs in this process; never more than there are jobs),
    or the dask scheduler at ``scheduler`` (``tcp://host:port``) when given. Each result
    is written as soon as it arrives.
    """
    todo = [c for c in configs if not is_finished(results, c)]
    skipped = len(configs) - len(todo)
    total = len(todo)
    if not todo:
        return {"skipped": skipped, "ran": 0}
    _check_inputs(todo, inputs)
    done = 0

    def finish(config: Config, result: RunResult) -> None:
        nonlocal done
        write_run(results, config, result)
        done += 1
        if on_done:
            on_done(config, done, total)

    with stop_on_signals():
        if scheduler:
            _run_on_dask(todo, inputs, scheduler, finish)
        elif workers <= 1 or total == 1:
            for c in todo:
                finish(c, run_job(c, inputs))
        else:
            initializer = provide if inputs is not None else None
            with worker_pool(min(workers, total), initializer, (inputs,)) as pool:
                futures = {pool.submit(run_job, c): c for c in todo}
                for fut in as_completed(futures):
                    finish(futures[fut], fut.result())
    return {"skipped": skipped, "ran": total}


def _run_on_dask(
    todo: list[Config],
    inputs: StudyInputs | None,
    scheduler: str,
    finish: Callable[[Config, RunResult], None],
) -> None:
    """Ship the inputs once (scatter), submit every job, write results as they return."""
    distributed = require("dask.distributed", "dask", "`scheduler` (a dask cluster)")
    Client, dask_completed = distributed.Client, distributed.as_completed
    with Client(scheduler) as client:
        data = client.scatter(inputs, broadcast=True, hash=False) if inputs is not None else None
        futures = {client.submit(run_job, c, data, pure=False): c for c in todo}
        try:
            for fut in dask_completed(futures):
                finish(futures[fut], fut.result())
        except BaseException:
            # Interrupted or failed: nothing more is wanted from the cluster.
            client.cancel(list(futures), force=True)
            raise
