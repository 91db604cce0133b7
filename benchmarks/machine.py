"""What the whole machine is doing, for the benchmarks' "other processes used X%" lines."""

from __future__ import annotations

import os
from pathlib import Path


def busy_cpu_seconds() -> float | None:
    """Non-idle CPU seconds of the whole machine since boot (Linux /proc/stat), else None.

    All CPUs together, minus idle and iowait: compare two readings with this process's own
    CPU time to tell how much other processes used.
    """
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    except OSError:
        return None
    values = [int(v) for v in fields]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")
