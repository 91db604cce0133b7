"""`PairSet`: labelled (TF, target) examples with splits, traceable to their genes.

Each example is the two z-scored profiles (sample SD, as R's ``scale``), shape (2, S),
gathered from one genes x samples matrix. A pair set is saved as a folder of three
files (the table, the matrix, a JSON description) and read back checked.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from ..errors import TfcnnInputError
from ..io.atomic import atomic_dir
from ..io.manifest import read_manifest

SPLITS = ("train", "validation", "test")
PAIRS_FORMAT = "tfcnn-pairs"
PAIRS_FORMAT_VERSION = 1
TABLE_FILE, EXAMPLES_FILE, META_FILE = "pairs.tsv", "expression.safetensors", "pairset.json"


@dataclass
class PairSet:
    """Labelled pairs (``table``: tf, target, label, split, kind) over a z-scored matrix.

    ``zscores`` (genes x samples, float32) holds every gene's z-scored profile once;
    the examples ``x`` (N, 2, S) are gathered from it on first use. ``known`` holds the
    codes (``tf_row * n_genes + target_row``) of every known pair that was kept out of
    the negatives (all input interactions and exclusions on the matrix's genes), or
    None when not recorded (pair sets written before it was).
    """

    table: pd.DataFrame
    zscores: np.ndarray
    genes: tuple[str, ...]
    samples: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    known: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.genes = tuple(self.genes)
        self.samples = tuple(self.samples)
        if self.zscores.shape != (len(self.genes), len(self.samples)):
            raise ValueError(
                f"z-scores have shape {self.zscores.shape}, expected "
                f"({len(self.genes)}, {len(self.samples)}) for its genes and samples"
            )
        index = {g: i for i, g in enumerate(self.genes)}
        tf = self.table["tf"].map(index)
        target = self.table["target"].map(index)
        unknown = tf.isna() | target.isna()
        if unknown.any():
            row = self.table[unknown].iloc[0]
            raise ValueError(
                f"{int(unknown.sum())} pairs name genes outside the matrix, e.g. "
                f"{row['tf']} -> {row['target']}"
            )
        self._tf_index = tf.to_numpy(np.int64)
        self._target_index = target.to_numpy(np.int64)
        self._x: np.ndarray | None = None
        if self.known is not None:
            known = np.asarray(self.known)
            n = len(self.genes)
            if (
                known.ndim != 1
                or known.dtype.kind not in "iu"
                or (known.size and (known.min() < 0 or known.max() >= n * n))
            ):
                raise ValueError("known pair codes must be integers in [0, n_genes ** 2)")
            self.known = np.unique(known.astype(np.int64))

    def record(self) -> dict[str, np.ndarray]:
        """What a model trained on this set keeps of it: gene rows, labels, splits, known pairs.

        ``known`` holds every known pair (also those only excluded from the negatives)
        and every positive, as codes ``tf_row * n_genes + target_row``.
        """
        from ..model.record import pair_arrays

        split = self.table["split"].map({s: i for i, s in enumerate(SPLITS)}).to_numpy()
        pos = self.labels == 1
        positives = self.tf_rows[pos] * len(self.genes) + self.target_rows[pos]
        known = positives if self.known is None else np.union1d(self.known, positives)
        return pair_arrays(self.tf_rows, self.target_rows, self.labels, split, known)

    @property
    def tf_rows(self) -> np.ndarray:
        """Row of each example's TF in ``zscores`` / ``genes``."""
        return self._tf_index

    @property
    def target_rows(self) -> np.ndarray:
        """Row of each example's target in ``zscores`` / ``genes``."""
        return self._target_index

    @property
    def x(self) -> np.ndarray:
        """The examples, (N, 2, S) float32: TF profile row 0, target profile row 1."""
        if self._x is None:
            z = np.asarray(self.zscores, dtype=np.float32)
            self._x = np.stack([z[self._tf_index], z[self._target_index]], axis=1)
        return self._x

    def with_labels(self, labels: np.ndarray) -> PairSet:
        """The same pairs with other labels (e.g. permuted, as a negative control)."""
        return PairSet(
            table=self.table.assign(label=np.asarray(labels, dtype=np.int64)),
            zscores=self.zscores,
            genes=self.genes,
            samples=self.samples,
            meta=dict(self.meta),
            known=self.known,
        )

    def __len__(self) -> int:
        return len(self.table)

    @property
    def labels(self) -> np.ndarray:
        return self.table["label"].to_numpy(dtype=np.int64)

    def mask(self, split: str) -> np.ndarray:
        """Boolean mask of the examples in ``split`` (train / validation / test)."""
        if split not in SPLITS:
            raise TfcnnInputError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
        return (self.table["split"] == split).to_numpy()

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of one split."""
        m = self.mask(split)
        return self.x[m], self.labels[m]

    def counts(self) -> dict[str, dict[str, int]]:
        """Positives, negatives and distinct regulators per split."""
        out = {}
        for s in SPLITS:
            t = self.table[self.table["split"] == s]
            out[s] = {
                "positives": int((t["label"] == 1).sum()),
                "negatives": int((t["label"] == 0).sum()),
                "regulators_in_positives": int(t.loc[t["label"] == 1, "tf"].nunique()),
            }
        return out

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary for reports and model metadata."""
        return {
            **self.meta,
            "n_examples": len(self),
            "n_samples": len(self.samples),
            "splits": self.counts(),
        }

    # -- persistence -----------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], force: bool = False) -> Path:
        """Write ``path/`` with pairs.tsv, expression.safetensors and pairset.json."""
        meta = {
            "format": PAIRS_FORMAT,
            "format_version": PAIRS_FORMAT_VERSION,
            **self.meta,
            "samples": list(self.samples),
            "genes": list(self.genes),
        }
        tensors = {"zscores": np.ascontiguousarray(self.zscores, dtype=np.float32)}
        if self.known is not None:
            tensors["known"] = np.ascontiguousarray(self.known, dtype=np.int64)
        with atomic_dir(path, force=force) as tmp:
            self.table.to_csv(tmp / TABLE_FILE, sep="\t", index=False)
            save_file(tensors, str(tmp / EXAMPLES_FILE))
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PairSet:
        """Read a pair set written by :meth:`save`, checking that its parts agree."""
        path = Path(path)
        if not path.is_dir():
            raise TfcnnInputError(
                f"{path} is not a pair set: expected a directory written by "
                f"'tfcnn build-pairs' holding {TABLE_FILE}, {EXAMPLES_FILE} and {META_FILE}."
            )
        for name in (TABLE_FILE, EXAMPLES_FILE, META_FILE):
            if not (path / name).is_file():
                raise TfcnnInputError(
                    f"pair set {path} has no {name}; rebuild it with 'tfcnn build-pairs'."
                )
        meta = read_manifest(path / META_FILE, PAIRS_FORMAT, PAIRS_FORMAT_VERSION, "tfcnn pair set")
        try:
            tensors = load_file(str(path / EXAMPLES_FILE))
            zscores = tensors["zscores"]
        except (SafetensorError, OSError, KeyError) as exc:
            raise TfcnnInputError(
                f"{path / EXAMPLES_FILE} is unreadable ({exc}); rebuild the pair set."
            ) from exc
        table = _read_table(path / TABLE_FILE)
        samples, genes = meta.pop("samples", []), meta.pop("genes", [])
        for key, value in (("samples", samples), ("genes", genes)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TfcnnInputError(
                    f"{path / META_FILE}: '{key}' must be a list of names; rebuild the pair set."
                )
        meta.pop("format", None)
        meta.pop("format_version", None)
        try:
            return cls(
                table=table,
                zscores=zscores,
                genes=tuple(genes),
                samples=tuple(samples),
                meta=meta,
                known=tensors.get("known"),
            )
        except ValueError as exc:
            raise TfcnnInputError(f"pair set {path} is inconsistent: {exc}.") from exc


def _read_table(path: Path) -> pd.DataFrame:
    """The pairs.tsv of a pair set, with its columns and values checked."""
    try:
        table = pd.read_csv(path, sep="\t", dtype={"tf": str, "target": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TfcnnInputError(f"{path} is not a readable pair table ({exc}).") from exc
    missing = {"tf", "target", "label", "split"} - set(table.columns)
    if missing:
        raise TfcnnInputError(f"{path} lacks columns {sorted(missing)}.")
    labels = pd.to_numeric(table["label"], errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise TfcnnInputError(
            f"{path} line {row + 2}: label {table['label'].iloc[row]!r} is not 0 or 1."
        )
    bad_split = ~table["split"].isin(SPLITS)
    if bad_split.any():
        row = int(np.flatnonzero(bad_split.to_numpy())[0])
        raise TfcnnInputError(
            f"{path} line {row + 2}: split {table['split'].iloc[row]!r} is not one of "
            f"{', '.join(SPLITS)}."
        )
    return table.assign(label=labels.astype(np.int64))


def check_splits(pairs: PairSet) -> None:
    for s, c in pairs.counts().items():
        if c["positives"] == 0 or c["negatives"] == 0:
            raise TfcnnInputError(
                f"the {s} split has {c['positives']} positives and {c['negatives']} negatives; "
                "each split needs both. Use more known pairs or `split` random."
            )
