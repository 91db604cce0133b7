"""Execute a notebook with nbclient and fail on the first error (``make notebook``, CI).

``python scripts/run_notebook.py docs/tutorial.ipynb [--timeout S] [--output F]``: runs every
cell in a fresh kernel from the notebook's folder, prints the wall time, and exits 1 if a
cell raises or the whole run exceeds the timeout. The notebook file is not modified.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError


def run(path: Path, timeout: float, output: Path | None = None) -> float:
    """Execute ``path``; return the wall time in seconds (raises on a failing cell).

    ``output``: also write the executed notebook there (to read its outputs)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=int(timeout),  # per cell; the total is checked below
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        if output is not None:
            nbformat.write(nb, output)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--timeout", type=float, default=180.0, help="Seconds for the whole run.")
    parser.add_argument("--output", type=Path, help="Write the executed notebook here.")
    args = parser.parse_args()
    try:
        elapsed = run(args.notebook, args.timeout, args.output)
    except (CellExecutionError, CellTimeoutError) as exc:
        print(f"{args.notebook}: a cell failed:\n{exc}", file=sys.stderr)
        return 1
    print(f"{args.notebook}: executed in {elapsed:.1f} s (limit {args.timeout:.0f} s)")
    if elapsed > args.timeout:
        print(f"{args.notebook}: slower than {args.timeout:.0f} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
