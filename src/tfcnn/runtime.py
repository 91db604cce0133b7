"""Keep freed memory for reuse instead of returning it to the system after every batch.

Training allocates and frees the same large tensors (activations and gradients, ~15 MB
each at 64 filters) every batch. With glibc's default settings, freeing them at the top
of the heap returns the pages to the system (trimming), and chunks above the mmap
threshold are unmapped; the next batch then faults every page back in and zeroes it.
Measured on the 64/64/64 configuration, 2 threads, 6,900 pairs x 232: 19% of the
training CPU time was kernel time, and about half the training time went away with the
settings below (``benchmarks/run.py``, row 3).

:func:`keep_freed_memory` sets, once per process, glibc's mmap threshold to its maximum
(32 MiB, so such tensors come from the heap) and its trim threshold to 1 GiB (so the heap
is not shrunk between batches). The process keeps up to that much freed memory mapped
for reuse. It does nothing on other C libraries or when ``TFCNN_KEEP_MALLOC=1`` asks to
leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's upper limit for this setting on 64-bit systems
TRIM_THRESHOLD = 2**30

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Tune glibc malloc for repeated large allocations (once); True when it applied."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("TFCNN_KEEP_MALLOC") == "1" or platform.libc_ver()[0] != "glibc":
        return _done
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return _done
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    _done = ok
    return _done
