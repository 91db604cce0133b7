"""The JSON description at the top of every versioned tfcnn folder (models, pair sets).

Both kinds of folder hold one JSON file naming its ``format`` and ``format_version``;
:func:`read_manifest` reads it once for all of them, refusing anything damaged, of
another kind or written by a newer tfcnn with one clear message. The JSON is user data:
its size and nesting are bounded before it is parsed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import TfcnnInputError

#: Largest description accepted (a model.json lists its genes: ~25 bytes each).
MAX_MANIFEST_BYTES = 64_000_000


def read_manifest(
    path: Path,
    fmt: str,
    max_version: int,
    what: str,
    error: type[TfcnnInputError] = TfcnnInputError,
) -> dict[str, Any]:
    """The JSON object in ``path``, checked to be a ``fmt`` of version <= ``max_version``.

    ``what`` names the folder kind in messages ("tfcnn model"); ``error`` is the
    exception raised (a subclass of :class:`TfcnnInputError`).
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise error(f"{path} cannot be read ({exc.strerror or exc}).") from exc
    if size > MAX_MANIFEST_BYTES:
        raise error(f"{path} is {size:,} bytes; a {what} description is far smaller.")
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise error(f"{path} is not valid JSON ({str(exc)[:200]}).") from exc
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise error(f"{path} is not a {what} description.")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise error(
            f"{path} has an invalid format_version {version!r}; the file is damaged. Re-create "
            f"the {what}."
        )
    if version > max_version:
        raise error(
            f"{path} has {what} format version {version}: it was written by a newer tfcnn; "
            f"this tfcnn ({__version__}) reads up to {max_version}. Upgrade tfcnn."
        )
    return meta
