"""Busy-machine benchmark (`make bench`, issue 17): does training collapse beside other work?

Runs `tfcnn demo --epochs 2` (real bundled data, its default --threads: the cores this
process may use, each of the four models a one-thread run) on an idle machine, then
again beside six CPU-bound processes of the benchmark's own (busy Python loops), and
prints the ratio of the two wall times. With C cores and the demo as one more runnable
job beside H hogs, a fair share of the machine makes it (H + 1) / C times slower: 3.5x
for 6 hogs on 2 cores. The goal is at most 5x. Before issue 17, each training used two
torch threads whose OpenMP workers spin-waited for a core, and the demo took 15-25x as
long beside other work.

Also checked: both runs print the same table (the numbers do not depend on the load);
printed: the load average before and after each run, and the share of the machine's CPU
that processes other than the demo and the hogs used during each run (a busy machine
inflates both figures; rerun when it is above 10%). JSON to .bench/busy.json (--output).
Exit status 1 only when the harness fails (the demo exits non-zero); an unmet goal is
printed as NOT met.

--quick: `--epochs 1` beside one hog, a smoke test whose numbers mean nothing (the test
suite runs it; one hog keeps it short).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import busy_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
GOAL = 5.0


def children_cpu() -> float:
    """CPU seconds used by this process's waited-for children (the demo runs)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_demo(epochs: int, output: Path, hogs: list[subprocess.Popen[bytes]]) -> dict:
    """Time one `tfcnn demo` (a fresh process); the CPU the rest of the machine used."""
    load_before = os.getloadavg()
    busy0, own0 = busy_cpu_seconds(), children_cpu()
    hog0 = sum(hog_cpu(h.pid) for h in hogs)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "tfcnn", "demo", "--epochs", str(epochs), "-o", str(output)],
        cwd=output.parent,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"tfcnn demo failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    busy1, own1 = busy_cpu_seconds(), children_cpu()
    hog1 = sum(hog_cpu(h.pid) for h in hogs)
    other = None
    if busy0 is not None and busy1 is not None:
        spent = (busy1 - busy0) - (own1 - own0) - (hog1 - hog0)
        other = max(0.0, spent) / (seconds * cores())
    return {
        "seconds": seconds,
        "demo_cpu_s": own1 - own0,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "other_cpu_share": other,
        "table": json.loads((output / "metrics.json").read_text())["protocols"],
    }


def table_differences(a: list[dict], b: list[dict]) -> list[str]:
    """Cells of the demo's table that differ between two runs (as JSON text, so that a
    NaN equals a NaN)."""
    out = []
    for ra, rb in zip(a, b, strict=True):
        for key in sorted(set(ra) | set(rb)):
            va, vb = json.dumps(ra.get(key)), json.dumps(rb.get(key))
            if va != vb:
                out.append(f"{ra.get('protocol')} {key}: {va} vs {vb}")
    return out


def hog_cpu(pid: int) -> float:
    """CPU seconds of a running hog (from /proc; 0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Pure CPU; the loop also ends when the benchmark is gone (never left running on its own).
HOG = """
import os
parent = os.getppid()
while os.getppid() == parent:
    for _ in range(1_000_000):
        pass
"""


def start_hogs(n: int) -> list[subprocess.Popen[bytes]]:
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(n)]
    time.sleep(1.0)  # all of them runnable before the demo starts
    return hogs


def stop_hogs(hogs: list[subprocess.Popen[bytes]]) -> None:
    for h in hogs:
        h.terminate()
    for h in hogs:
        try:
            h.wait(timeout=10)
        except subprocess.TimeoutExpired:
            h.kill()
            h.wait()


def fmt_load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in load)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch, 1 hog (smoke test)")
    parser.add_argument("--epochs", type=int, default=None, help="demo epochs (default 2)")
    parser.add_argument("--hogs", type=int, default=None, help="CPU-bound processes (default 6)")
    parser.add_argument("--output", type=Path, default=ROOT / ".bench" / "busy.json")
    args = parser.parse_args()
    # SIGTERM runs the cleanup (hogs stopped, the demo killed) as an exception would.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    epochs = args.epochs or (1 if args.quick else 2)
    n_hogs = args.hogs if args.hogs is not None else (1 if args.quick else 6)
    c = cores()
    fair = max(1.0, (n_hogs + 1) / c)
    hogs_text = f"{n_hogs} CPU-bound process" + ("" if n_hogs == 1 else "es")
    print(
        f"busy-machine benchmark: tfcnn demo --epochs {epochs} (real bundled data), idle, "
        f"then beside {hogs_text}; {c} cores usable"
        + (" [--quick: numbers mean nothing]" if args.quick else "")
    )
    with tempfile.TemporaryDirectory(prefix="tfcnn-bench-busy-") as tmp:
        idle = run_demo(epochs, Path(tmp) / "idle", [])
        hogs = start_hogs(n_hogs)
        try:
            busy = run_demo(epochs, Path(tmp) / "busy", hogs)
        finally:
            stop_hogs(hogs)
    ratio = busy["seconds"] / idle["seconds"]
    differences = table_differences(idle.pop("table"), busy.pop("table"))
    same = not differences
    met = ratio <= GOAL
    for name, r in (("idle", idle), (f"beside {hogs_text}", busy)):
        other = r["other_cpu_share"]
        warn = " (machine busy: rerun when idle)" if other is not None and other > 0.10 else ""
        print(
            f"  {name}: {r['seconds']:.1f} s wall, {r['demo_cpu_s']:.1f} s CPU; load average "
            f"{fmt_load(r['load_before'])} before, {fmt_load(r['load_after'])} after; "
            + (f"other processes used {other:.0%} of the CPU{warn}" if other is not None else "")
        )
    print(f"  same table in both runs: {'yes' if same else 'NO: ' + '; '.join(differences)}")
    print(
        f"slowdown beside {hogs_text}: {ratio:.2f}x (fair share of {c} cores "
        f"among {n_hogs + 1} runnable jobs: {fair:.1f}x; goal <= {GOAL:.0f}x): "
        + ("met" if met else "NOT met")
    )
    result = {
        "meta": {"quick": args.quick, "epochs": epochs, "hogs": n_hogs, "cores": c},
        "idle": idle,
        "busy": busy,
        "ratio": ratio,
        "fair_share_ratio": fair,
        "goal_ratio": GOAL,
        "goal_met": met,
        "same_table": same,
        "table_differences": differences,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
