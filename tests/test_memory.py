"""tfcnn.runtime: the glibc malloc settings are applied once, and can be turned off."""

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
