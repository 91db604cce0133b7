"""Jobs run in parallel, seeded and resumable; each stores its config and metrics.

A job is a JSON-ready config dict. Its run directory is ``RESULTS/runs/<hash>/`` where
``hash`` is a digest of the canonical config, holding ``config.json`` and
``metrics.json`` (plus job-specific files), written atomically together. A job whose
``metrics.json`` exists is finished and skipped, so an interrupted study resumes where
it stopped. Jobs run in a local process pool (one torch thread per worker) or, with a
scheduler address, on a dask.distributed cluster (optional dependency, imported lazily).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from ..errors import TfcnnInputError
from ..io.atomic import atomic_dir, json_safe
from ..runtime import pin_threads, torch_threads

RUNS_DIR = "runs"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"

Config = dict[str, Any]


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


def execute(config: Config, results: str) -> str:
    """Run one job in this process and write its run directory; returns the run hash.

    Called in worker processes: one thread for torch and BLAS while the job runs
    (:func:`tfcnn.runtime.torch_threads`), dispatched on ``kind``.
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
    final = run_dir(results, config)
    if (final / METRICS_FILE).is_file():
        return final.name
    with atomic_dir(final, force=True) as tmp, torch_threads(1, blas=True):
        metrics = handlers[kind](config, tmp)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (tmp / METRICS_FILE).write_text(json.dumps(json_safe(metrics), indent=2) + "\n")
    return final.name


def run_jobs(
    configs: Sequence[Config],
    results: str | os.PathLike[str],
    *,
    workers: int = 2,
    scheduler: str | None = None,
    on_done: Callable[[Config, int, int], None] | None = None,
) -> dict[str, int]:
    """Run the unfinished ``configs``; returns counts of jobs ``skipped`` and ``ran``.

    ``workers`` local processes (1 runs in this process), or the dask scheduler at
    ``scheduler`` (``tcp://host:port``) when given.
    """
    results = str(results)
    todo = [c for c in configs if not is_finished(results, c)]
    skipped = len(configs) - len(todo)
    total = len(todo)
    if not todo:
        return {"skipped": skipped, "ran": 0}
    done = 0
    if scheduler:
        try:
            from dask.distributed import Client
            from dask.distributed import as_completed as dask_completed
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise TfcnnInputError(
                "--scheduler needs dask.distributed; install it (pip install 'dask[distributed]')."
            ) from exc
        with Client(scheduler) as client:
            futures = {client.submit(execute, c, results, pure=False): c for c in todo}
            for fut in dask_completed(futures):
                fut.result()
                done += 1
                if on_done:
                    on_done(futures[fut], done, total)
    elif workers <= 1:
        for c in todo:
            execute(c, results)
            done += 1
            if on_done:
                on_done(c, done, total)
    else:
        with ProcessPoolExecutor(
            max_workers=workers, initializer=pin_threads, initargs=(1,)
        ) as pool:
            futures = {pool.submit(execute, c, results): c for c in todo}
            for fut in as_completed(futures):
                fut.result()
                done += 1
                if on_done:
                    on_done(futures[fut], done, total)
    return {"skipped": skipped, "ran": total}
