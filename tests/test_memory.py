"""tfcnn.runtime: the glibc malloc settings are applied once, and can be turned off; threads."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

CHECK = """
import sys
from tfcnn import runtime as memory
first = memory.keep_freed_memory()
again = memory.keep_freed_memory()
print(first, again)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc only")
def test_settings_apply_once_on_glibc() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]


def test_opt_out_leaves_the_allocator_alone() -> None:
    env_check = "import os; os.environ['TFCNN_KEEP_MALLOC'] = '1'\n" + CHECK
    out = subprocess.run([sys.executable, "-c", env_check], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


# -- threads ---------------------------------------------------------------------------------
THREADS = """
import torch
from threadpoolctl import threadpool_info
from tfcnn.runtime import pin_threads, torch_threads

def blas() -> set[int]:
    return {p["num_threads"] for p in threadpool_info()}

import numpy  # loads numpy's BLAS, so threadpoolctl sees a pool to limit
torch.set_num_threads(2)
outside = blas()
with torch_threads(1):
    inside = torch.get_num_threads()
with torch_threads(1, blas=True):
    limited = (torch.get_num_threads(), blas())
after = (torch.get_num_threads(), blas() == outside)
pin_threads(1)
print(inside, limited, after, (torch.get_num_threads(), blas()))
"""


def test_threads_are_set_for_a_block_or_pinned_for_the_process() -> None:
    out = subprocess.run([sys.executable, "-c", THREADS], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1 (1, {1}) (2, True) (1, {1})"
