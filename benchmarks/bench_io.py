"""Loading benchmark (`make bench`): peak memory per value of reading an expression matrix.

Writes a SYNTHETIC 20,000 genes x 1,000 samples matrix (fixed seed, 6 decimals) as TSV,
as Parquet, and as a samples x genes TSV (read with ``transpose``), then loads each in
its own fresh process (spawn, so the RSS high-water mark is its own) with
``tfcnn.io.expression.read_expression`` and asks for the z-scores, which is what
``build-pairs`` and ``train`` do. Printed per file: seconds, the growth of peak RSS
(VmHWM, reset after the imports; ``ru_maxrss`` where that is not possible) over the
process's RSS after its imports, and that growth per value
(goal: <= 12 bytes per value, issue 16). The reference, in the same run, is the plain
way: ``pandas.read_csv`` of the TSV, float64 z-scores, float32 copy.

--quick: 2,000 x 100, a smoke run whose numbers mean nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SEED = 16
GOAL_BYTES_PER_VALUE = 12.0


def _status(field: str) -> int | None:
    """A /proc/self/status memory field in bytes (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's RSS high-water mark (Linux clear_refs 5); False if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _rss_peak() -> int:
    hwm = _status("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _write(folder: Path, n_genes: int, n_samples: int) -> dict[str, Path]:
    """The synthetic matrix in three files (genes x samples TSV and Parquet, samples x genes)."""
    import pandas as pd

    rng = np.random.default_rng(SEED)
    values = rng.normal(8.0, 1.5, (n_genes, n_samples)).round(6)
    genes = [f"synthetic_gene_{i:05d}" for i in range(n_genes)]
    samples = [f"synthetic_sample_{j:04d}" for j in range(n_samples)]
    frame = pd.DataFrame(values, index=pd.Index(genes, name="gene"), columns=samples)
    paths = {
        "genes x samples TSV": folder / "synthetic.tsv",
        "genes x samples Parquet": folder / "synthetic.parquet",
        "samples x genes TSV (--transpose)": folder / "synthetic_t.tsv",
    }
    frame.to_csv(paths["genes x samples TSV"], sep="\t", float_format="%.6f")
    frame.to_parquet(paths["genes x samples Parquet"])
    frame.T.rename_axis("sample").to_csv(
        paths["samples x genes TSV (--transpose)"], sep="\t", float_format="%.6f"
    )
    return paths


def _measure(kind: str, path: str) -> tuple[float, int, int]:
    """(seconds, peak RSS growth, values) of one load, in this fresh process."""
    import pandas as pd  # noqa: F401  (imported before the baseline, as tfcnn imports it)

    from tfcnn.io.expression import read_expression, zscore_rows

    # the peak of the imports must not count: reset the high-water mark to the RSS now
    base = _status("VmRSS") if _reset_peak() else None
    if base is None:
        base = _rss_peak()
    start = time.perf_counter()
    if kind == "reference":
        frame = pd.read_csv(path, sep="\t", index_col=0)
        values = frame.to_numpy(dtype=np.float64)
        z = zscore_rows(values).astype(np.float32)
        n = z.size
    else:
        m = read_expression(path, transpose=kind.endswith("(--transpose)"))
        n = m.zscored().size
    seconds = time.perf_counter() - start
    return seconds, _rss_peak() - base, n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    args = parser.parse_args(argv)
    n_genes, n_samples = (2_000, 100) if args.quick else (20_000, 1_000)
    load = os.getloadavg()
    print(
        f"Loading a SYNTHETIC {n_genes:,} x {n_samples:,} matrix ({n_genes * n_samples:,} "
        f"values); load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start."
    )
    ctx = multiprocessing.get_context("spawn")
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="tfcnn-bench-io-") as tmp:
        paths = _write(Path(tmp), n_genes, n_samples)
        runs = [(kind, str(p)) for kind, p in paths.items()]
        runs.append(("reference", str(paths["genes x samples TSV"])))
        print(f"{'file':<36} {'seconds':>8} {'peak RSS growth':>16} {'bytes/value':>12}")
        for kind, path in runs:
            with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                seconds, growth, n = pool.submit(_measure, kind, path).result()
            per_value = growth / n
            label = "reference: pandas.read_csv + float64 z-scores" if kind == "reference" else kind
            print(f"{label:<36} {seconds:>8.2f} {growth / 2**20:>12.1f} MiB {per_value:>12.2f}")
            if kind != "reference":
                worst = max(worst, per_value)
    met = "met" if worst <= GOAL_BYTES_PER_VALUE else "NOT met"
    print(
        f"goal: peak <= {GOAL_BYTES_PER_VALUE:g} bytes per value when loading: worst "
        f"{worst:.2f} ({met}). Load average at the end: {os.getloadavg()[0]:.2f}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
