"""Named models: bundled with tfcnn, or registered by the user.

Wherever a command takes ``--model``, it accepts a model directory or a name from
this registry. Bundled models live in the package (``tfcnn/data/models/NAME``); user
models are copied into ``models/NAME`` under the data home (:func:`data_home`:
``$TFCNN_HOME``, else the platform's user data directory) by :func:`register_model`,
after they load and validate.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import platformdirs

from ..errors import TfcnnInputError
from ..io.atomic import atomic_dir
from .record import TrainingRecord
from .stored import architecture_kind, architecture_width, read_model_json

log = logging.getLogger(__name__)
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def bundled_models_dir() -> Path:
    """Where models shipped with tfcnn live."""
    return Path(str(files("tfcnn") / "data" / "models"))


def data_home() -> Path:
    """tfcnn's own data folder: ``$TFCNN_HOME`` when set, else the platform's user data
    directory (``platformdirs.user_data_dir("tfcnn")``, e.g. ``~/.local/share/tfcnn``
    on Linux), so nothing is written into the home folder itself."""
    home = os.environ.get("TFCNN_HOME")
    return Path(home) if home else Path(platformdirs.user_data_dir("tfcnn", appauthor=False))


def user_models_dir() -> Path:
    """Where registered models live: ``models`` under :func:`data_home`."""
    return data_home() / "models"


@dataclass(frozen=True)
class ModelEntry:
    """One named model, where it lives, and what its model.json says about it."""

    name: str
    path: Path
    origin: str  # "bundled" or "user"
    metadata: dict[str, Any]
    n_samples: int  # input width (sample names may be unrecorded, as for published-2019)
    kind: str = "pair-cnn"  # "pair-cnn" or "two-tower"

    @property
    def description(self) -> str:
        """One line: provenance when recorded, else the training data (and the kind)."""
        prov = self.metadata.get("provenance") or {}
        if prov.get("description"):
            return str(prov["description"])
        data = self.metadata.get("data") or {}
        expr = (data.get("expression") or {}).get("source", "?")
        kind = "two-tower model " if self.kind == "two-tower" else ""
        return (
            f"{kind}trained on {Path(str(expr)).name}; negatives {data.get('negatives', '?')}, "
            f"split {data.get('split', '?')}"
        )

    @property
    def test_auroc(self) -> float | None:
        return ((self.metadata.get("metrics") or {}).get("test") or {}).get("auroc")


def _entries(folder: Path, origin: str) -> list[ModelEntry]:
    """The models in ``folder``, from their model.json alone (weights are not loaded)."""
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            meta = read_model_json(path)
            kind = architecture_kind(meta["architecture"], str(path))
            width = architecture_width(meta["architecture"])
            record = TrainingRecord.from_json(meta, str(path))
        except (TfcnnInputError, TypeError, ValueError):
            log.warning("skipped %s: not a readable tfcnn model", path)
            continue  # a broken user entry is skipped here; resolve_model reports it
        out.append(ModelEntry(path.name, path, origin, record.to_json(), width, kind))
    return out


def list_models() -> list[ModelEntry]:
    """Bundled models first, then user-registered ones."""
    return _entries(bundled_models_dir(), "bundled") + _entries(user_models_dir(), "user")


def resolve_model(value: str | os.PathLike[str]) -> Path:
    """A model directory from a path, or from a bundled / registered name."""
    path = Path(value)
    if path.exists():
        return path
    name = str(value)
    for folder in (user_models_dir(), bundled_models_dir()):
        candidate = folder / name
        if name and "/" not in name and candidate.is_dir():
            return candidate
    known = ", ".join(e.name for e in list_models()) or "none"
    raise TfcnnInputError(
        f"model {name!r} does not exist: it is neither a model directory nor a registered "
        f"model name (known models: {known}); see 'tfcnn models'."
    )


def register_model(path: str | os.PathLike[str], name: str, force: bool = False) -> Path:
    """Validate a model directory and copy it into the user registry under ``name``."""
    if not name or set(name.lower()) - _NAME_CHARS or name.startswith("."):
        raise TfcnnInputError(
            f"model name {name!r} may only use letters, digits, '-', '_' and '.'."
        )
    if (bundled_models_dir() / name).exists():
        raise TfcnnInputError(f"{name!r} is a bundled model's name; choose another.")
    from .files import load_model

    load_model(path)  # refuses anything that is not a valid model (of either kind)
    dest = user_models_dir() / name
    with atomic_dir(dest, force=force) as tmp:
        for item in Path(path).iterdir():
            if item.is_file():
                shutil.copy2(item, tmp / item.name)
    return dest
