"""The Keras reference of `make bench`: measured in the same run, in its own environment.

TensorFlow and Keras 2 (tf-keras) are a benchmark-only dependency, never tfcnn's: they
are installed from PyPI into ``.bench/keras-venv`` (gitignored) the first time, from
``benchmarks/keras_reference/requirements.txt``. The measurement itself
(``keras_reference/keras_bench.py``) runs in a subprocess of that environment, from a
fresh empty temporary directory (a cluttered working directory slowed Keras down by
40% in an earlier measurement), with ``--threads`` TensorFlow threads; each figure is the
median of ``--repeats`` runs.

``reference(...)`` returns the figures, reusing those that ``run.py`` measured earlier in
the same ``make bench`` (``.bench/keras.json``, at most an hour old, same script and
options), so the scan lines and the training lines share one Keras run. When TensorFlow
cannot be installed or run, it raises :class:`KerasUnavailable` with the reason: the
benchmarks then say so and print no Keras ratio (no number is ever made up).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = ROOT / ".bench" / "keras-venv"
REQUIREMENTS = HERE / "keras_reference" / "requirements.txt"
SCRIPT = HERE / "keras_reference" / "keras_bench.py"
PUBLISHED_MODEL = ROOT / "src" / "tfcnn" / "data" / "published_model" / "convnet_model.hdf5"
CACHE = ROOT / ".bench" / "keras.json"
MAX_AGE_S = 3600.0


class KerasUnavailable(RuntimeError):
    """TensorFlow / Keras could not be installed or run here (the message says why)."""


def _stamp() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


def venv_python() -> Path:
    """The reference environment's Python, installing it first if needed (minutes, once)."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".requirements-stamp"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == _stamp():
        return python
    if VENV.exists():
        shutil.rmtree(VENV)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(REQUIREMENTS),
        ],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise KerasUnavailable(
                f"could not install the Keras reference ({' '.join(cmd[-3:])}): " + " | ".join(tail)
            )
    stamp.write_text(_stamp() + "\n")
    return python


def _options_key(options: dict[str, Any]) -> str:
    script = hashlib.sha256(SCRIPT.read_bytes()).hexdigest()[:16]
    return json.dumps({"script": script, **options}, sort_keys=True)


def measure(
    tasks: tuple[str, ...],
    *,
    pairs_file: Path | None = None,
    widths: tuple[int, ...] = (232,),
    predict_pairs: int = 200_000,
    epochs: int = 30,
    repeats: int = 3,
    threads: int = 2,
    timeout: float = 1800.0,
) -> dict[str, Any]:
    """Run the Keras reference now (see the module docstring); its JSON, plus load averages."""
    python = venv_python()
    with tempfile.TemporaryDirectory(prefix="tfcnn-keras-") as tmp:
        work = Path(tmp) / "clean"
        work.mkdir()
        out = Path(tmp) / "keras.json"
        cmd = [
            str(python),
            str(SCRIPT),
            "--out",
            str(out),
            "--model",
            str(PUBLISHED_MODEL),
            "--tasks",
            ",".join(tasks),
            "--widths",
            ",".join(str(w) for w in widths),
            "--predict-pairs",
            str(predict_pairs),
            "--epochs",
            str(epochs),
            "--repeats",
            str(repeats),
            "--threads",
            str(threads),
        ]
        if pairs_file is not None:
            cmd += ["--pairs", str(pairs_file)]
        # The reference sets its own threads; tfcnn's test settings must not reach it.
        dropped = ("PYTHONPATH", "VIRTUAL_ENV", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
        env = {k: v for k, v in os.environ.items() if k not in dropped}
        env.update(PYTHONNOUSERSITE="1", TF_CPP_MIN_LOG_LEVEL="2")
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise KerasUnavailable("the Keras reference failed: " + " | ".join(tail))
        result = json.loads(out.read_text())
    result.update(
        load_before=list(load_before),
        load_after=list(os.getloadavg()),
        wall_s=time.perf_counter() - t0,
        measured_at=time.time(),
    )
    return result


def reference(tasks: tuple[str, ...], **options: Any) -> dict[str, Any]:
    """Keras figures for ``tasks``: from this ``make bench`` run if already measured, else now.

    ``options`` as :func:`measure`. Results are cached in ``.bench/keras.json`` for
    :data:`MAX_AGE_S` seconds, per task and options; ``TFCNN_BENCH_FRESH_KERAS=1``
    forces a new measurement.
    """
    key = _options_key({k: str(v) for k, v in options.items() if k != "pairs_file"})
    cache: dict[str, Any] = {}
    if CACHE.exists():
        try:
            cache = json.loads(CACHE.read_text())
        except ValueError:
            cache = {}
    entry = cache.get(key)
    fresh = os.environ.get("TFCNN_BENCH_FRESH_KERAS") != "1"
    if (
        fresh
        and entry is not None
        and time.time() - entry.get("measured_at", 0) < MAX_AGE_S
        and all(_task_key(t) in entry for t in tasks)
    ):
        return {**entry, "reused": True, "age_s": time.time() - entry["measured_at"]}
    result = measure(tasks, **options)
    result["reused"] = False
    cache[key] = {**(entry or {}), **result}
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps(cache, indent=2) + "\n")
    return result


def provenance(keras: dict[str, Any]) -> str:
    """Where a Keras figure comes from: this run, or a measurement reused from the cache
    (``make bench`` measures once and shares it; a lone script may reuse an older one)."""
    if not keras.get("reused"):
        return "same run"
    minutes = keras.get("age_s", 0.0) / 60
    return f"measured {minutes:.0f} min earlier, reused; TFCNN_BENCH_FRESH_KERAS=1 re-measures"


def _task_key(task: str) -> str:
    return {"predict": "predict", "train": "train_published", "train64": "train_64_64_64"}[task]
