"""Session set-up: compiled fused kernels go to a temporary cache, not the user's."""

from __future__ import annotations

import os
import shutil
import tempfile

_CACHE: list[str] = []


def pytest_configure() -> None:
    """Point ``TFCNN_CACHE_DIR`` at a fresh folder for this session (subprocesses inherit it)."""
    if "TFCNN_CACHE_DIR" not in os.environ:
        folder = tempfile.mkdtemp(prefix="tfcnn-test-cache-")
        os.environ["TFCNN_CACHE_DIR"] = folder
        _CACHE.append(folder)


def pytest_unconfigure() -> None:
    for folder in _CACHE:
        shutil.rmtree(folder, ignore_errors=True)
