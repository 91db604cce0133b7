"""A study's inputs, read once on the client, identified by their contents, shipped as data.

The settings of a study name its files as typed (``data_spec``: paths or bundled names).
:func:`read_inputs` reads and parses them once, on the client, and records the sha256 of
each file's bytes (with its file type, which decides how the bytes are parsed) under the
spec's ``contents``. Job configs carry :func:`content_spec` (hashes, evidence filter,
log2; no path), so a run's folder name depends on what the data *are*, never on where
they lie: a finished run is reused only for byte-identical inputs.

Jobs find their data through :func:`obtain`: the :class:`StudyInputs` handed to this
process (:func:`provide`: by the pool's initializer, or as a dask argument) under the
same content key, else (on the client only) the files named by the spec, whose hashes
must still match.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TfcnnInputError
from ..io.datasets import resolve_path
from ..io.expression import ExpressionMatrix
from ..io.idmap import IdMap
from ..io.interactions import Interactions
from ..io.textio import check_file

#: The files of a dataset spec, in the order they are read and named in messages.
FILES = ("expression", "interactions", "exclude", "id_map")
CONTENTS = "contents"
_CHUNK = 1 << 20
_KEEP = 4  # datasets kept per process (a study uses one)


@dataclass(frozen=True, eq=False)
class StudyInputs:
    """The parsed inputs of one dataset spec, and the spec with their contents recorded."""

    spec: dict[str, Any]
    expression: ExpressionMatrix
    positives: Interactions
    exclude: Interactions | None
    id_map: IdMap | None

    @property
    def key(self) -> str:
        """What identifies these inputs: the canonical JSON of :func:`content_spec`."""
        return content_key(self.spec)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes (hex), read in 1 MiB chunks.

    The path is checked first as the readers check it (:func:`tfcnn.io.textio.check_file`):
    a missing file, a folder, a pipe or a device gets the usual message naming it.
    """
    check_file(Path(path))
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _file_type(path: Path) -> str:
    """The lower-cased suffixes that decide how a file is parsed (``.tsv.gz``, ``.csv``)."""
    return "".join(path.suffixes[-2:]).lower()


def content_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """What a job config carries about its data: contents, evidence filter, log2; no path.

    A spec without recorded contents (a results folder of an older tfcnn) is returned as
    it is, so that its finished runs are still found by :func:`tfcnn.study.study.collect`.
    """
    if CONTENTS not in spec:
        return spec
    return {CONTENTS: spec[CONTENTS], "evidence": spec.get("evidence"), "log2": spec.get("log2")}


def content_key(spec: dict[str, Any]) -> str:
    return json.dumps(content_spec(spec), sort_keys=True, separators=(",", ":"))


def changed_files(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The files (``expression``, ...) whose recorded contents differ between two specs."""
    a, b = old.get(CONTENTS) or {}, new.get(CONTENTS) or {}
    return [name for name in FILES if a.get(name) != b.get(name)]


def read_inputs(spec: dict[str, Any]) -> StudyInputs:
    """Read and parse the files of ``spec`` once; record each file's sha256 and type.

    A file that changes while it is read is refused. When ``spec`` already records
    contents (a results folder's settings), they must match the files now, or the
    message names the file that changed.
    """
    from ..api import load_expression, load_id_map, load_interactions

    contents: dict[str, Any] = {}
    loaded: dict[str, Any] = {}
    for name in FILES:
        value = spec.get(name)
        if value is None:
            contents[name] = None
            loaded[name] = None
            continue
        path = resolve_path(str(value))
        check_file(path)  # the readers' message for a missing or unreadable file
        before = _identity(path)
        digest = file_sha256(path)
        if name == "expression":
            loaded[name] = load_expression(str(value), log2=bool(spec.get("log2")))
        elif name == "interactions":
            loaded[name] = load_interactions(str(value), evidence=spec.get("evidence"))
        elif name == "exclude":
            loaded[name] = load_interactions(str(value))
        else:
            loaded[name] = load_id_map(str(value))
        if _identity(path) != before:
            raise TfcnnInputError(
                f"{value} changed while it was read (`{name}`); rerun once it is complete."
            )
        contents[name] = {"sha256": digest, "type": _file_type(path)}
    new_spec = {**spec, CONTENTS: contents}
    if spec.get(CONTENTS) is not None:
        changed = changed_files(spec, new_spec)
        if changed:
            raise TfcnnInputError(
                f"{describe_changes(spec, new_spec, changed)} changed since these results "
                "were made; restore the original file to use them, or rerun the study with "
                "`force` to start over."
            )
    inputs = StudyInputs(
        spec=new_spec,
        expression=loaded["expression"],
        positives=loaded["interactions"],
        exclude=loaded["exclude"],
        id_map=loaded["id_map"],
    )
    provide(inputs)
    return inputs


def describe_changes(old: dict[str, Any], new: dict[str, Any], changed: list[str]) -> str:
    """Each changed file, e.g. `expression` (expr.tsv: sha256 0123... then, 4567... now)."""

    def digest(spec: dict[str, Any], name: str) -> str:
        entry = (spec.get(CONTENTS) or {}).get(name)
        if not entry:
            return "no file"
        sha = entry.get("sha256") if isinstance(entry, dict) else None
        return f"sha256 {sha[:12]}..." if isinstance(sha, str) else "unreadable record"

    return ", ".join(
        f"`{name}` ({new.get(name) or old.get(name)}: {digest(old, name)} then, "
        f"{digest(new, name)} now)"
        for name in changed
    )


def _identity(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


_provided: OrderedDict[str, StudyInputs] = OrderedDict()
_lock = threading.Lock()  # a dask worker may run jobs in several threads


def provide(inputs: StudyInputs) -> None:
    """Make ``inputs`` the data of their content key in this process (a few are kept)."""
    key = inputs.key
    with _lock:
        if key not in _provided:
            # Pickling (shipping to a worker) loses the matrix's read-only flag: restore it.
            inputs.expression.values.flags.writeable = False
            _provided[key] = inputs
            while len(_provided) > _KEEP:
                _provided.popitem(last=False)
        _provided.move_to_end(key)


def obtain(spec: dict[str, Any]) -> StudyInputs:
    """The inputs of ``spec``: those provided to this process, else read from its files.

    A job config's spec holds only contents: its data must have been provided (shipped
    with the job); reading them from paths on a worker is exactly what this avoids.
    """
    if CONTENTS in spec:
        with _lock:
            found = _provided.get(content_key(spec))
        if found is not None:
            return found
        if "expression" not in spec:
            raise RuntimeError(
                "the inputs of this job were not shipped to this process "
                f"(contents {content_key(spec)[:200]}); run jobs through tfcnn.study.runner."
            )
    return read_inputs(spec)
