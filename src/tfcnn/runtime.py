"""Process-wide runtime settings: how many threads torch and BLAS use, and glibc malloc.

**Threads.** tfcnn's parallel work is many small independent tasks (engine blocks, scan
blocks, study jobs). Each runs with one torch thread and the tasks run side by side,
which beats threads inside each small step and makes results independent of the
machine. :func:`torch_threads` sets the thread count for a block of code and restores
it, :func:`pin_threads` sets it for a worker process's lifetime, and :func:`map_in_order`
runs tasks in a thread pool, each on one torch thread, yielding results in order.
Commands that train choose their thread count deliberately (``--threads``, default
:func:`available_cores`: the cores this process may run on, not the machine's count),
because the thread count is part of the recipe: the same seed on another number of
threads gives other (equally valid) weights.

**Worker processes and signals.** :func:`worker_pool` runs jobs in child processes with
one thread each; :func:`stop_on_signals` turns SIGTERM (and SIGINT) into :class:`Stopped`,
so the caller's cleanup runs: the pool then terminates its workers instead of leaving
them running (a SIGTERM would otherwise kill only the parent).

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
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, TypeVar

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


def map_in_order(
    fn: Callable[[T], R], items: Sequence[T], workers: int, *, uses_torch: bool = True
) -> Iterator[R]:
    """``fn(item)`` for every item, yielded in item order; ``workers`` run at once.

    Each call runs with one torch thread (:func:`torch_threads`; with ``uses_torch``
    False, for work that never touches torch, torch is left alone and not imported), in a
    thread pool when ``workers`` > 1, so results do not depend on ``workers``. At most
    ``2 * workers`` calls are in flight or waiting to be consumed, so memory stays bounded.
    """

    def one(item: T) -> R:
        with torch_threads(1) if uses_torch else contextlib.nullcontext():
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


def available_cores() -> int:
    """The number of CPUs this process may run on (its affinity mask, e.g. under taskset,
    cgroups cpusets or a batch scheduler), not the machine's total."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def default_threads(threads: int | None) -> int:
    """``threads`` when given, else :func:`available_cores`."""
    if threads is None:
        return available_cores()
    if threads < 1:
        raise ValueError(f"`threads` must be >= 1 (got {threads}).")
    return threads


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by :func:`stop_on_signals` when a signal asks to stop."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        """The conventional shell exit code: 128 + the signal number."""
        return 128 + self.signum


@contextlib.contextmanager
def stop_on_signals(signums: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """Within the block, the first of ``signums`` raises :class:`Stopped` in the main thread.

    Later signals are ignored while the caller cleans up (so a second Ctrl-C cannot cut
    the cleanup short); the previous handlers are restored on exit. Outside the main
    thread (where handlers cannot be set) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def handler(signum: int, frame: Any) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise Stopped(signum)

    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


_PR_SET_PDEATHSIG = 1


def _start_worker(
    parent: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]
) -> None:
    """Set up a pool worker: default signals, exit with the parent, one thread."""
    # The parent decides when workers stop: a Ctrl-C reaches the whole process group, and
    # a handler inherited from the parent (fork) must not outlive it here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if platform.system() == "Linux":  # die with the parent, even if it is SIGKILLed
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    pin_threads(1)
    if initializer is not None:
        initializer(*initargs)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a pool's workers now (running jobs are lost; queued ones cancelled)."""
    # ProcessPoolExecutor has no public way to stop its workers before Python 3.14
    # (terminate_workers); its process table is the only handle on them.
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            p.terminate()
    for p in procs:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)


@contextlib.contextmanager
def worker_pool(
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Iterator[ProcessPoolExecutor]:
    """A process pool of ``workers`` one-thread workers that never outlive the block.

    ``initializer(*initargs)`` runs once in each worker (e.g. to receive the inputs, once
    per worker rather than with every job). On leaving the block by an exception (an
    error, Ctrl-C, or :class:`Stopped` from :func:`stop_on_signals`) the workers are
    terminated at once and queued jobs are cancelled; otherwise the pool is shut down
    after its jobs finish.
    """
    pool = ProcessPoolExecutor(
        max_workers=workers,
        initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )
    try:
        yield pool
    except BaseException:
        _terminate(pool)
        raise
    pool.shutdown(wait=True)
