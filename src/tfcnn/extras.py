"""Optional dependencies: one message naming the extra to install when one is missing.

The core install runs build-pairs, train, evaluate, predict, scan and study; the web app,
Keras import, dask clusters and single-cell inputs need extras; ``fast`` (numba) makes
``scan`` about twice as fast. A command that needs a
missing extra stops with :class:`~tfcnn.errors.TfcnnInputError` (exit code 2 on the CLI).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import TfcnnInputError

#: extra name -> the modules it provides (checked in this order).
EXTRAS: dict[str, tuple[str, ...]] = {
    "web": ("shiny", "openpyxl"),
    "keras": ("h5py",),
    "dask": ("dask", "distributed"),
    "sc": ("anndata", "h5py"),
    "fast": ("numba",),
}


def install_hint(extra: str) -> str:
    """The pip command that installs ``extra`` (quoted for any POSIX shell)."""
    return f"pip install 'tfcnn[{extra}]'"


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or say which extra provides it (``feature``: what needs it)."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise TfcnnInputError(
            f"{feature} needs the optional package {module!r} (not installed: {exc}). "
            f"Install it with: {install_hint(extra)}"
        ) from None


def require_extra(extra: str, feature: str) -> None:
    """Check that every module of ``extra`` imports, naming the extra if one does not."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    for module in EXTRAS[extra]:
        require(module, extra, feature)
