"""Process-wide runtime settings: how many threads torch and BLAS use, and glibc malloc.

**Threads.** tfcnn's parallel work is many small independent tasks (engine blocks, scan
blocks, study jobs). Each runs with one torch thread and the tasks run side by side,
which beats threads inside each small step and makes results independent of the
machine. :func:`torch_threads` sets the thread count for a block of code and restores
it, :func:`pin_threads` sets it for a worker process's lifetime, and :func:`map_in_order`
runs tasks in a thread pool, each on one torch thread, yielding results in order.

**Memory.** Training allocates and frees the same large tensors (activations and
gradients, ~15 MB each at 64 filters) every batch. With glibc's default settings,
freeing them at the top of the heap returns the pages to the system (trimming), and
chunks above the mmap threshold are unmapped; the next batch then faults every page
back in and zeroes it. Measured on the 64/64/64 configuration, 2 threads, 6,900 pairs x
232: 19% of the training CPU time was kernel time, and about half the training time
went away with the settings below (``benchmarks/run.py``, row 3).

:func:`keep_freed_memory` sets, once per process, glibc's mmap threshold to its maximum
(32 MiB, so such tensors come from the heap) and its trim threshold to 1 GiB (so the heap
is not shrunk between batches). The process keeps up to that much freed memory mapped
for reuse. It does nothing on other C libraries or when ``TFCNN_KEEP_MALLOC=1`` asks to
leave the allocator alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

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


@contextlib.contextmanager
def torch_threads(n: int, *, blas: bool = False) -> Iterator[None]:
    """Run the block with ``n`` intra-op torch threads, then restore the caller's setting.

    With ``blas``, numpy's and scikit-learn's BLAS / OpenMP pools are limited to ``n``
    threads too (threadpoolctl).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        if blas:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(n):
                yield
        else:
            yield
    finally:
        torch.set_num_threads(before)


def pin_threads(n: int = 1) -> None:
    """``n`` threads for torch and for BLAS / OpenMP, for the rest of this process.

    For worker processes (a pool's initializer), whose only job is the tasks they run.
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)


def map_in_order(fn: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[R]:
    """``fn(item)`` for every item, yielded in item order; ``workers`` run at once.

    Each call runs with one torch thread (:func:`torch_threads`), in a thread pool when
    ``workers`` > 1, so results do not depend on ``workers``. At most ``2 * workers`` calls
    are in flight or waiting to be consumed, so memory stays bounded.
    """

    def one(item: T) -> R:
        with torch_threads(1):
            return fn(item)

    if workers <= 1 or len(items) <= 1:
        for item in items:
            yield one(item)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(one, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
