"""Expression matrices: genes x samples, validated once at load time.

Every loader ends in :class:`ExpressionMatrix`, whose invariants (finite values, unique
normalised gene IDs, no constant rows) the rest of tfcnn relies on, so problems in the
user's file are reported here, with the file, line (or row ID) and column, rather than
surfacing later as NaN scores.

Memory: a matrix holds one float32 copy of its values and, once asked for, one of its
z-scores. Large files are read in chunks (:mod:`tfcnn.io.streaming`), so loading peaks
near 8 bytes per value; files that need a closer look (bad cells, other encodings) are
read whole, which costs more but names the line. A samples x genes file is read with
``transpose``; one that looks transposed, or ambiguous, is refused
(:mod:`tfcnn.io.orientation`). AnnData, loom and 10x inputs: :mod:`tfcnn.io.anndata`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TfcnnInputError
from .datasets import resolve_path
from .ids import normalize_id
from .orientation import check_numeric_ids, check_orientation, is_number
from .textio import check_file, load_text

log = logging.getLogger(__name__)

#: Extensions :func:`read_expression` understands (each text format also as ``.gz``).
TEXT_SEPARATORS: dict[str, str] = {".tsv": "\t", ".txt": "\t", ".tab": "\t", ".csv": ","}
SINGLE_CELL_EXTENSIONS: tuple[str, ...] = (".h5ad", ".loom")
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    *TEXT_SEPARATORS,
    *(f"{ext}.gz" for ext in TEXT_SEPARATORS),
    ".parquet",
    *SINGLE_CELL_EXTENSIONS,
)
MIN_SAMPLES = 3
#: Above this maximum, values probably are on a linear (not log) scale.
LINEAR_SCALE_THRESHOLD = 100.0
_MAX_LISTED = 10
_NA_STRINGS = frozenset({"na", "nan", "-nan", "n/a", "#n/a", "null", "none", "nd", "."})
#: Values z-scored at once (float64 temporaries of a few MB).
_ZSCORE_BLOCK_VALUES = 262_144
_FLOAT32_MAX = float(np.finfo(np.float32).max)


# ---------------------------------------------------------------------------------------
# Row-wise z-scores
# ---------------------------------------------------------------------------------------


def constant_rows(values: np.ndarray) -> np.ndarray:
    """Boolean mask of constant rows (all values exactly equal): they have no z-score."""
    if values.shape[0] == 0 or values.shape[1] == 0:
        return np.zeros(values.shape[0], dtype=bool)
    return values.max(axis=1) == values.min(axis=1)


_constant_rows = constant_rows  # the name other modules' tests may use


def zscore_rows(values: np.ndarray) -> np.ndarray:
    """Z-score each row with the sample SD (ddof=1), exactly like R's ``scale(t(x))``.

    The profiles are compared by shape, not level, so each gene is centred and scaled.
    Computed in float64. Raises ``ValueError`` for non-finite input, fewer than 2
    columns, or a constant row (whose z-score is undefined): this function never
    returns NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"zscore_rows needs a 2-D array, got shape {values.shape}")
    if values.shape[1] < 2:
        raise ValueError("zscore_rows needs at least 2 columns (samples) for a sample SD")
    if not np.all(np.isfinite(values)):
        raise ValueError("zscore_rows got non-finite values")
    if values.shape[0] == 0:
        return values.copy()
    constant = constant_rows(values)
    if constant.any():
        rows = np.flatnonzero(constant)
        raise ValueError(
            f"{rows.size} constant row(s) (first at index {int(rows[0])}) have no z-score"
        )
    # Divide each row by its largest |value| first so squares can neither overflow nor
    # underflow for any finite input (z-scores do not depend on that scale). The mean is
    # removed twice (corrected two-pass algorithm) so nearly constant rows still give
    # deviations that average to ~0.
    scaled = values / np.max(np.abs(values), axis=1, keepdims=True)
    dev = scaled - scaled.mean(axis=1, keepdims=True)
    dev -= dev.mean(axis=1, keepdims=True)
    sd = np.sqrt(np.sum(dev * dev, axis=1) / (values.shape[1] - 1))
    if not np.all(sd > 0):  # cannot happen for non-constant finite rows; never emit NaN
        raise ValueError("zscore_rows: a row has zero standard deviation after scaling")
    return dev / sd[:, None]


def zscore_rows_float32(values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """:func:`zscore_rows` as float32, a block of rows at a time (float64 per block only),
    into ``out`` when given."""
    if out is None:
        out = np.empty(values.shape, np.float32)
    step = max(1, _ZSCORE_BLOCK_VALUES // max(values.shape[1], 1))
    for a in range(0, values.shape[0], step):
        out[a : a + step] = zscore_rows(values[a : a + step])
    if values.shape[0] == 0 and values.ndim == 2 and values.shape[1] < 2:
        zscore_rows(values)  # same errors as for rows
    return out


def _storage(values: np.ndarray) -> np.ndarray:
    """The stored copy of finite float64 values: float32, or float64 when some value is
    beyond float32's range (so nothing becomes infinite)."""
    if values.size and float(np.abs(values).max()) > _FLOAT32_MAX:
        out = values.copy()
    else:
        out = values.astype(np.float32)
    out.flags.writeable = False
    return out


def _frozen(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    return values


# ---------------------------------------------------------------------------------------
# The matrix
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ExpressionMatrix:
    """A validated genes x samples expression matrix.

    ``values`` has shape ``(n_genes, n_samples)``, all finite, no constant rows, and is
    read-only: float32 (float64 only when some value is beyond float32's range). Given
    float64 values, the matrix stores a float32 copy and computes its z-scores from the
    float64 values at once, so they are as exact as before the copy; a read-only float32
    array is taken as it is (no copy; its rows must not be constant). ``genes`` are unique
    IDs normalised with :func:`tfcnn.io.ids.normalize_id`. ``dropped_constant`` lists IDs
    the loader removed because their profile was constant; ``transposed``: the file was
    read samples x genes. Equality is identity (``eq=False``): comparing arrays field by
    field is ambiguous.
    """

    values: np.ndarray
    genes: tuple[str, ...]
    samples: tuple[str, ...]
    source: str
    dropped_constant: tuple[str, ...] = ()
    transposed: bool = False

    def __post_init__(self) -> None:
        """Check the invariants (violations are programming errors, not input errors)."""
        values = np.asarray(self.values)
        owned = values.dtype == np.float32 and not values.flags.writeable
        if not owned:
            values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(f"values must be 2-D, got shape {values.shape}")
        object.__setattr__(self, "genes", tuple(self.genes))
        object.__setattr__(self, "samples", tuple(self.samples))
        object.__setattr__(self, "dropped_constant", tuple(self.dropped_constant))
        if values.shape != (len(self.genes), len(self.samples)):
            raise ValueError(
                f"values shape {values.shape} does not match "
                f"{len(self.genes)} genes x {len(self.samples)} samples"
            )
        if len(set(self.genes)) != len(self.genes):
            raise ValueError("gene IDs must be unique")
        if not np.all(np.isfinite(values)):
            raise ValueError("values must all be finite")
        if owned:
            object.__setattr__(self, "values", values)
            return
        if values.shape[1] >= 2 and constant_rows(values).any():
            raise ValueError("values must not contain constant rows")
        object.__setattr__(self, "values", _storage(values))
        if values.shape[1] >= 2:
            self.__dict__["_zscored"] = _frozen(zscore_rows_float32(values))

    @classmethod
    def _owned(
        cls,
        values: np.ndarray,
        genes: Sequence[str],
        samples: Sequence[str],
        source: str,
        dropped: Sequence[str] = (),
        zscores: np.ndarray | None = None,
        transposed: bool = False,
    ) -> ExpressionMatrix:
        """A matrix on arrays the caller made for it (no copy), with z-scores if known."""
        if values.dtype != np.float32:
            values = values.astype(np.float32) if values.size == 0 else values
        out = cls(
            _frozen(values),
            tuple(genes),
            tuple(samples),
            source,
            tuple(dropped),
            transposed,
        )
        if zscores is not None:
            out.__dict__["_zscored"] = _frozen(zscores)
        return out

    @property
    def n_genes(self) -> int:
        """Number of genes (rows)."""
        return len(self.genes)

    @property
    def n_samples(self) -> int:
        """Number of samples (columns)."""
        return len(self.samples)

    @cached_property
    def gene_index(self) -> dict[str, int]:
        """Map gene ID -> row number (built once)."""
        return {gene: i for i, gene in enumerate(self.genes)}

    def index_of(self, ids: Iterable[str]) -> np.ndarray:
        """Row numbers of ``ids`` (normalised first); raise naming the IDs that are missing."""
        wanted = [normalize_id(i) for i in ids]
        index = self.gene_index
        missing = [i for i in dict.fromkeys(wanted) if i not in index]
        if missing:
            raise TfcnnInputError(
                f"{len(missing)} gene ID(s) are not in the expression matrix {self.source}: "
                f"{_list_some(missing)}. Check the IDs (and that both use the same ID type, "
                "AGI codes or probesets; an ID map can translate between them)."
            )
        return np.fromiter((index[i] for i in wanted), dtype=np.intp, count=len(wanted))

    def zscored(self) -> np.ndarray:
        """Row-wise z-scores (ddof=1, like R's ``scale``) as read-only float32, cached."""
        cached = self.__dict__.get("_zscored")
        if cached is None:
            cached = _frozen(zscore_rows_float32(self.values))
            self.__dict__["_zscored"] = cached
        return cached

    def _derived(
        self, rows: np.ndarray | None, genes: Sequence[str], dropped: Sequence[str]
    ) -> ExpressionMatrix:
        """The same samples, rows ``rows`` (None: all) renamed ``genes``; z-scores reused."""
        values = self.values if rows is None else self.values[rows]
        cached = self.__dict__.get("_zscored")
        z = None if cached is None else (cached if rows is None else cached[rows])
        if values.dtype == np.float32:
            return ExpressionMatrix._owned(
                values if rows is not None else values.copy(),
                genes,
                self.samples,
                self.source,
                dropped,
                z,
                self.transposed,
            )
        out = ExpressionMatrix(
            values, tuple(genes), self.samples, self.source, tuple(dropped), self.transposed
        )
        if z is not None:  # z-scores are per row: reuse the exact ones
            out.__dict__["_zscored"] = _frozen(np.array(z))
        return out

    def subset(self, genes: Iterable[str]) -> ExpressionMatrix:
        """A new matrix with only ``genes``, in that order (missing IDs raise)."""
        rows = self.index_of(genes)
        if len(set(rows.tolist())) != rows.size:
            raise ValueError("subset got the same gene more than once")
        return self._derived(rows, [self.genes[r] for r in rows], self.dropped_constant)

    def select_samples(self, samples: Iterable[str]) -> ExpressionMatrix:
        """A new matrix with only ``samples`` (by name), in that order.

        Used to line a matrix up with a model's training samples. Genes whose profile is
        constant over those samples have no z-score: they are dropped with a warning and
        added to ``dropped_constant``.
        """
        names = [str(s) for s in samples]
        where = {s: i for i, s in enumerate(self.samples)}
        missing = [s for s in names if s not in where]
        if missing:
            raise TfcnnInputError(
                f"{self.source} lacks {len(missing)} of the {len(names)} samples needed: "
                f"{_list_some(missing, 5)}; give a matrix with those sample columns."
            )
        values = self.values[:, [where[s] for s in names]]
        constant = constant_rows(values)
        genes, dropped = list(self.genes), list(self.dropped_constant)
        if constant.any():
            if constant.all():
                raise TfcnnInputError(
                    f"{self.source}: all {len(genes)} gene profiles are constant over the "
                    f"{len(names)} samples used; nothing is left to compare."
                )
            new = [g for g, k in zip(genes, constant, strict=True) if k]
            log.warning(
                "%s: dropping %d gene(s) whose profile is constant over the %d samples "
                "used (no variance): %s",
                self.source,
                len(new),
                len(names),
                _list_some(new, 5),
            )
            values = values[~constant]
            genes = [g for g, k in zip(genes, constant, strict=True) if not k]
            dropped += new
        if values.dtype != np.float32:
            return ExpressionMatrix(
                values, tuple(genes), tuple(names), self.source, tuple(dropped), self.transposed
            )
        return ExpressionMatrix._owned(
            values, genes, names, self.source, dropped, transposed=self.transposed
        )

    def rename(self, mapping: Mapping[str, str]) -> ExpressionMatrix:
        """A new matrix with genes renamed by ``mapping``; genes not in it are dropped.

        Used to move to another ID space (e.g. probesets -> AGI codes). New IDs are
        normalised; two genes renamed to the same ID is an error.
        """
        keep = [i for i, gene in enumerate(self.genes) if gene in mapping]
        if not keep:
            raise TfcnnInputError(
                f"None of the {self.n_genes} genes in {self.source} could be renamed "
                f"(e.g. {_list_some(list(self.genes[:3]))}); check that the ID map matches "
                "the ID type of the expression file."
            )
        new_ids = [normalize_id(mapping[self.genes[i]]) for i in keep]
        seen: dict[str, str] = {}
        for i, new in zip(keep, new_ids, strict=True):
            if new in seen:
                raise TfcnnInputError(
                    f"Renaming the genes of {self.source}: both {seen[new]!r} and "
                    f"{self.genes[i]!r} map to {new!r}; use a one-to-one ID map."
                )
            seen[new] = self.genes[i]
        dropped = tuple(normalize_id(mapping[g]) for g in self.dropped_constant if g in mapping)
        return self._derived(np.asarray(keep, dtype=np.intp), new_ids, dropped)


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------


def _list_some(items: list[str], limit: int = _MAX_LISTED) -> str:
    """Quote up to ``limit`` items and say how many more there are."""
    shown = ", ".join(repr(x) for x in items[:limit])
    if len(items) > limit:
        shown += f" and {len(items) - limit} more"
    return shown


def _extension(path: Path) -> str:
    """The supported extension ``path`` ends with (lower-cased), or raise."""
    name = path.name.lower()
    for ext in sorted(SUPPORTED_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    raise TfcnnInputError(
        f"{path}: unknown expression file type. Supported extensions: "
        f"{', '.join(SUPPORTED_EXTENSIONS)}, or a 10x folder (matrix.mtx, features.tsv, "
        "barcodes.tsv). Export or rename the file accordingly."
    )


def read_expression(
    path: str | os.PathLike[str],
    log2: bool = False,
    *,
    transpose: bool = False,
    layer: str | None = None,
    pseudobulk: str | None = None,
    order_by: str | None = None,
) -> ExpressionMatrix:
    """Load an expression matrix.

    Tables: genes x samples, first column gene IDs, one column per sample (with
    ``transpose``: samples x genes, first column sample IDs or none, DREAM5 style), by
    extension: ``.tsv``/``.txt``/``.tab`` (tab), ``.csv`` (comma), each optionally
    ``.gz``, and ``.parquet``. ``.h5ad``, ``.loom`` and 10x folders (cells x genes; the
    ``tfcnn[sc]`` extra): ``layer``, ``pseudobulk`` and ``order_by``, see
    :func:`tfcnn.io.anndata.read_single_cell`. With ``log2`` the values are
    log2-transformed (all must be > 0). Bad cells are reported with file, line and
    column; constant rows are dropped with a warning (see :class:`ExpressionMatrix`).
    """
    path = Path(path)
    if path.is_dir() or path.name.lower().endswith(SINGLE_CELL_EXTENSIONS):
        from .anndata import read_single_cell

        return read_single_cell(
            path, layer=layer, pseudobulk=pseudobulk, order_by=order_by, log2=log2
        )
    ext = _extension(path)
    for name, value in (("layer", layer), ("pseudobulk", pseudobulk), ("order_by", order_by)):
        if value is not None:
            raise TfcnnInputError(
                f"`{name}` applies to single-cell files (.h5ad, .loom, a 10x folder); "
                f"{path} is a table. Drop `{name}`."
            )
    check_file(path)
    from . import streaming

    try:
        if ext == ".parquet":
            streamed = streaming.read_parquet(path, transpose, log2)
            return _from_stream(streamed, path, transpose, log2)
        sep = TEXT_SEPARATORS[ext.removesuffix(".gz")]
        layout = _text_layout(streaming.head_rows(streaming._head_text(path), sep), transpose)
        if layout is None:
            raise streaming.Fallback("header")
        streamed = streaming.read_text(path, sep, layout, transpose, log2)
        return _from_stream(streamed, path, transpose, log2)
    except (streaming.Fallback, TfcnnInputError) as exc:
        log.debug("%s: read whole (%s)", path, exc)
    if ext == ".parquet":
        return _read_parquet(path, log2, transpose)
    return _read_text_table(path, TEXT_SEPARATORS[ext.removesuffix(".gz")], log2, transpose)


def load_expression(
    expression: ExpressionMatrix | str | os.PathLike[str],
    log2: bool = False,
    **options: Any,
) -> ExpressionMatrix:
    """A matrix from a path or bundled dataset name (see :func:`read_expression`, whose
    keyword ``options`` it passes on), or the matrix itself (``log2`` and ``options``
    then do nothing: they applied when it was read)."""
    if isinstance(expression, ExpressionMatrix):
        return expression
    return read_expression(resolve_path(expression), log2=log2, **options)


def from_dataframe(
    df: pd.DataFrame, source: str = "<dataframe>", log2: bool = False, transpose: bool = False
) -> ExpressionMatrix:
    """Build a validated matrix from a DataFrame (index = gene IDs, columns = samples;
    with ``transpose``, index = samples, columns = genes)."""
    ids = ["" if pd.isna(i) else str(i) for i in df.index]
    samples = [str(c) for c in df.columns]
    table = _Table(ids, samples, lambda: _to_float(df, source, samples, _row_labeller(ids)))
    return _assemble(table, source, log2, transpose, _row_labeller(ids))


def from_values(
    values: np.ndarray,
    genes: Sequence[str],
    samples: Sequence[str],
    source: str,
    log2: bool = False,
) -> ExpressionMatrix:
    """Build a validated matrix from a genes x samples array (float32 or float64)."""
    ids = [str(g) for g in genes]

    def convert() -> np.ndarray:
        v = np.asarray(values)
        if not np.isfinite(v).all():
            r, c = (int(x[0]) for x in np.nonzero(~np.isfinite(v)))
            raise TfcnnInputError(
                f"{source}: gene {ids[r]!r}, sample {str(samples[c])!r}: value {v[r, c]} is not "
                "finite. Expression values must be finite numbers."
            )
        return v

    table = _Table(ids, [str(s) for s in samples], convert)
    return _assemble(table, source, log2, False, lambda i: f"gene {i + 1} ({ids[i]!r})")


def _row_labeller(ids: list[str]) -> Callable[[int], str]:
    """Describe a data row by its ID, for tables without line numbers."""
    return lambda i: f"row {i + 1} (ID {ids[i].strip()!r})"


@dataclass
class _Table:
    """A table as in the file: row labels (None: the rows have none), column labels, and
    how to get its values (float64 or float32, finite; raising naming a bad cell)."""

    rows: list[str] | None
    columns: list[str]
    values: Callable[[], np.ndarray]


def _axes(
    table: _Table, source: str, transpose: bool, row_where: Callable[[int], str]
) -> tuple[list[str], list[str]]:
    """Checked gene IDs and sample names from a table's labels."""
    if not transpose:
        assert table.rows is not None
        genes = _check_ids(table.rows, source, row_where, "in the first column", "the line")
        check_numeric_ids(genes, source, row_where, table.columns, transpose)
        samples = _check_samples(table.columns, source, lambda j: j + 2, "column")
    else:
        offset = 1 if table.rows is None else 2

        def col_where(j: int) -> str:
            return f"column {j + offset} of the header"

        genes = _check_ids(table.columns, source, col_where, "in the header", "the column")
        check_numeric_ids(genes, source, col_where, table.rows or [], transpose)
        names = table.rows or [f"sample_{i + 1}" for i in range(_n_rows(table))]
        samples = _check_samples(names, source, lambda i: row_where(i).split()[-1], "line")
    check_orientation(genes, samples, source, transpose)
    return genes, samples


def _n_rows(table: _Table) -> int:
    return int(table.values().shape[0])


def _assemble(
    table: _Table,
    source: str,
    log2: bool,
    transpose: bool,
    row_where: Callable[[int], str],
) -> ExpressionMatrix:
    """Validate labels and values, log-transform, drop constant rows, build."""
    genes, samples = _axes(table, source, transpose, row_where)
    values = np.asarray(table.values())  # the file's orientation
    if values.shape[0] == 0 or values.shape[1] == 0:
        raise TfcnnInputError(f"{source} has no genes (rows); expected one row per gene.")
    if log2:
        nonpos = values <= 0
        if nonpos.any():
            rows, cols = np.nonzero(nonpos)
            r, c = int(rows[0]), int(cols[0])
            raise TfcnnInputError(
                f"{source}: {row_where(r)}, column {table.columns[c].strip()!r}: value "
                f"{values[r, c]:g} is <= 0 and has no log2 ({rows.size} such cell(s)). Drop "
                "`log2` if the values are already log-scaled, or remove/offset the "
                "non-positive values."
            )
        values = np.log2(values)
    else:
        _warn_linear(source, float(values.max()) if values.size else 0.0)
    if transpose:
        values = values.T
    constant = constant_rows(values)
    dropped = _warn_constant(source, genes, constant)
    if constant.any():
        values = values[~constant]
        genes = [g for g, k in zip(genes, constant, strict=True) if not k]
    if values.dtype == np.float32:
        z = zscore_rows_float32(values)
        return ExpressionMatrix._owned(
            np.ascontiguousarray(values), genes, samples, source, dropped, z, transpose
        )
    return ExpressionMatrix(values, tuple(genes), tuple(samples), source, dropped, transpose)


def _warn_linear(source: str, largest: float) -> None:
    if largest > LINEAR_SCALE_THRESHOLD:
        log.warning(
            "%s: the largest value is %g; values look like a linear scale. If so, pass "
            "`log2` so they are log2-transformed.",
            source,
            largest,
        )


def _warn_constant(source: str, genes: Sequence[str], constant: np.ndarray) -> tuple[str, ...]:
    """The IDs of constant rows (warned about); an error when every row is constant."""
    if not constant.any():
        return ()
    if constant.all():
        raise TfcnnInputError(
            f"{source}: all {len(genes)} gene profiles are constant across samples, so "
            "nothing is left to compare; check the file (wrong columns?)."
        )
    dropped = tuple(g for g, k in zip(genes, constant, strict=True) if k)
    log.warning(
        "%s: dropping %d gene(s) with a constant profile (no variance): %s",
        source,
        len(dropped),
        _list_some(list(dropped), 5),
    )
    return dropped


def _text_layout(rows: list[list[str]], transpose: bool) -> tuple[list[str], bool] | None:
    """From a text file's first records: the value columns' names and whether each row
    starts with an ID field; None when the fast path should not try the file."""
    if not rows or not any(c.strip() for c in rows[0]):
        return None
    header = rows[0]
    data = [r for r in rows[1:] if any(r)]
    if not data:
        return None
    if any(len(r) not in (len(header), len(header) + 1) for r in data):
        return None
    if len(data[0]) == len(header) + 1:  # R's write.table: no header cell above the IDs
        return ([c for c in header], True) if data[0][-1].strip() else None
    if transpose and all(is_number(r[0]) for r in data):
        return (list(header), False)  # DREAM5: one column per gene, no row IDs
    if len(header) - 1 < MIN_SAMPLES and not transpose:
        return None
    return (list(header[1:]), True)


def _from_stream(streamed: Any, path: Path, transpose: bool, log2: bool) -> ExpressionMatrix:
    """The matrix from a streamed read; any check failing sends the caller to the
    thorough reader (which names the line)."""
    from .streaming import Fallback

    source = str(path)
    n_rows = streamed.values.shape[0] + int(streamed.constant.sum())
    rows = streamed.row_ids
    if rows is not None and len(rows) != n_rows:
        raise Fallback("row count")
    if not transpose:
        if n_rows == 0 or streamed.constant.all():
            raise Fallback("no rows, or all constant")
        table = _Table(rows, streamed.columns, lambda: streamed.values)
        genes, samples = _axes(table, source, False, lambda i: f"line {i + 2}")
        if not log2:
            _warn_linear(source, streamed.max_value)
        keep = ~streamed.constant
        dropped = _warn_constant(source, genes, streamed.constant)
        kept = [g for g, k in zip(genes, keep, strict=True) if k]
        return ExpressionMatrix._owned(
            streamed.values, kept, samples, source, dropped, streamed.zscores, False
        )
    if streamed.values.shape[0] == 0:
        raise Fallback("no rows")
    table = _Table(rows, streamed.columns, lambda: streamed.values)
    genes, samples = _axes(table, source, True, lambda i: f"line {i + 2}")
    if not log2:
        _warn_linear(source, streamed.max_value)
    values = streamed.values.T  # a view: no second copy (Fortran order is fine)
    constant = constant_rows(values)
    dropped = _warn_constant(source, genes, constant)
    if constant.any():
        values = values[~constant]
        genes = [g for g, k in zip(genes, constant, strict=True) if not k]
    z = zscore_rows_float32(values)
    return ExpressionMatrix._owned(values, genes, samples, source, dropped, z, True)


def _read_parquet(path: Path, log2: bool, transpose: bool) -> ExpressionMatrix:
    """Parquet: IDs from a non-default string index, else from the first column."""
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a corrupt file
        raise TfcnnInputError(
            f"{path}: cannot read it as Parquet ({exc}); check that it is a Parquet file."
        ) from exc
    has_string_index = not isinstance(df.index, pd.RangeIndex) and (
        pd.api.types.is_string_dtype(df.index.dtype)
        or (df.index.dtype == object and all(isinstance(i, str) for i in df.index))
    )
    if not has_string_index:
        if df.shape[1] == 0:
            raise TfcnnInputError(f"{path}: the Parquet file has no columns.")
        df = df.set_index(df.columns[0])
    return from_dataframe(df, source=str(path), log2=log2, transpose=transpose)


def _read_text_table(path: Path, sep: str, log2: bool, transpose: bool) -> ExpressionMatrix:
    """Parse a delimited text file, keeping physical line numbers (header = 1) for errors."""
    text = load_text(path)
    if not text.strip():
        raise TfcnnInputError(f"{path} is empty; expected a header line and one line per gene.")
    try:
        from .streaming import head_rows

        first_rows = head_rows(text, sep)
    except csv.Error as exc:
        raise TfcnnInputError(
            f"{path}: cannot read the first lines as a {_sep_name(sep)} table ({exc}); "
            "check for unbalanced quotes."
        ) from exc
    header = first_rows[0]
    if not any(cell.strip() for cell in header):
        raise TfcnnInputError(
            f"{path}: line 1 is empty; the first line must be the header (sample names)."
        )
    data_rows = [(n, r) for n, r in enumerate(first_rows[1:], start=2) if any(r)]
    if not data_rows and len(first_rows) < 50:
        raise TfcnnInputError(f"{path} has a header but no data lines; expected one line per gene.")
    n_cols = len(header)
    labelled = True
    if data_rows:
        line_no, first = data_rows[0]
        if len(first) == n_cols + 1:
            if first[-1].strip() == "":
                raise TfcnnInputError(
                    f"{path}: line {line_no} has one more field than the header and it is "
                    "empty (a trailing separator?); remove the trailing separators."
                )
            header = ["", *header]  # R's write.table: no header cell above the row names
            n_cols += 1
        elif transpose and all(is_number(r[0]) for _, r in data_rows):
            labelled = False  # DREAM5: one column per gene, no row IDs
    first_value = 1 if labelled else 0
    if not transpose and n_cols - 1 < MIN_SAMPLES:
        raise TfcnnInputError(
            f"{path}: the header has {max(n_cols - 1, 0)} sample column(s); need at least "
            f"{MIN_SAMPLES}.{_separator_hint(header, sep)}"
        )
    options: dict[str, Any] = dict(
        sep=sep,
        header=None,
        names=range(n_cols),
        skiprows=1,
        na_filter=False,
        skip_blank_lines=False,
        engine="c",
        float_precision="round_trip",
    )
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, **options)
    except (pd.errors.ParserError, ValueError) as exc:
        raise TfcnnInputError(
            f"{path}: cannot parse it as a {_sep_name(sep)} table: {exc}. Every line "
            "must have the same number of fields as the header."
        ) from exc
    lines = np.arange(len(df)) + 2  # header is line 1; blank lines are kept as rows
    if '"' in text:  # a quoted field may span lines: count physical lines instead
        starts = _record_start_lines(text, sep)
        if starts.size == len(df):
            lines = starts
    del text
    blank = df.apply(lambda c: c.astype(str).str.strip() == "").all(axis=1).to_numpy()
    df = df.loc[~blank]
    lines = lines[~blank]
    if len(df) == 0:
        raise TfcnnInputError(f"{path} has a header but no data lines; expected one line per gene.")
    ids = df.iloc[:, 0].tolist() if labelled else None
    columns = header[first_value:]
    block = df.iloc[:, first_value:]

    def where(i: int) -> str:
        return f"line {lines[i]}"

    table = _Table(ids, columns, lambda: _to_float(block, str(path), columns, where))
    return _assemble(table, str(path), log2, transpose, where)


def _record_start_lines(text: str, sep: str) -> np.ndarray:
    """Physical line (1-based) on which each record after the header starts."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    starts, prev = [], 0
    for _ in reader:
        starts.append(prev + 1)
        prev = reader.line_num
    return np.asarray(starts[1:], dtype=np.int64)


def _sep_name(sep: str) -> str:
    """Human name of a separator."""
    return "tab-separated" if sep == "\t" else "comma-separated"


def _separator_hint(header: list[str], sep: str) -> str:
    """Suggest the right file type when the header looks split on another separator."""
    joined = sep.join(header)
    for other, name in (("\t", "tab"), (";", "semicolon"), (",", "comma")):
        if other != sep and other in joined:
            want = ".tsv" if other == "\t" else ".csv" if other == "," else ".csv (comma)"
            return (
                f" The header contains {name}s, so the file may be {name}-separated; "
                f"save it as {want} with matching separators."
            )
    return " Check the separator: .tsv/.txt/.tab files must be tab-separated, .csv comma."


def _describe_bad_cell(raw: object, parsed: float) -> str:
    """Say what is wrong with one cell that did not give a finite number."""
    if not isinstance(raw, str):
        if pd.isna(raw):
            return "missing value (NaN/NA)"
        if np.isinf(parsed):
            return f"value {raw!r} is infinite"
        return f"value {raw!r} is not a number"
    stripped = raw.strip()
    if stripped == "":
        return "empty cell (or the line has fewer fields than the header)"
    if np.isinf(parsed):
        return f"value {raw!r} is infinite"
    if stripped.lower() in _NA_STRINGS or _is_nan_literal(stripped):
        return f"missing value {raw!r}"
    hint = " (use '.' as the decimal separator)" if "," in stripped else ""
    return f"value {raw!r} is not a number{hint}"


def _is_nan_literal(text: str) -> bool:
    """True if ``text`` parses as a float NaN (e.g. ``nan``, ``+NaN``)."""
    try:
        return bool(np.isnan(float(text)))
    except ValueError:
        return False


def _to_float(
    block: pd.DataFrame, source: str, columns: Sequence[str], where: Callable[[int], str]
) -> np.ndarray:
    """The cells as finite float64, converted column by column (vectorised); the first
    cell that is not a finite number is named with its line (or row) and column."""
    if all(dtype == np.float64 for dtype in block.dtypes):
        values = block.to_numpy(dtype=np.float64)
    else:
        values = np.empty(block.shape, dtype=np.float64)
        for j in range(block.shape[1]):
            col = block.iloc[:, j]
            if pd.api.types.is_numeric_dtype(col.dtype):
                values[:, j] = col.to_numpy(dtype=np.float64, na_value=np.nan)
                continue
            # pandas decides which cells are numbers (it refuses "1_000", Unicode
            # digits); Python's float() gives their correctly rounded value (pandas' own
            # parser can be one unit in the last place off).
            coerced = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
            ok = np.isfinite(coerced)
            coerced[ok] = [float(v) for v in col.to_numpy(dtype=object)[ok]]
            values[:, j] = coerced
    bad = ~np.isfinite(values)
    if bad.any():
        rows, cols = np.nonzero(bad)  # row-major: the first is the earliest in the file
        r, c = int(rows[0]), int(cols[0])
        others = rows.size - 1
        more = f" ({others} more bad cell(s) after it)" if others else ""
        raise TfcnnInputError(
            f"{source}: {where(r)}, column {str(columns[c]).strip()!r}: "
            f"{_describe_bad_cell(block.iat[r, c], values[r, c])}{more}. Expression values "
            "must be finite numbers; fix the cell or remove that gene, then try again."
        )
    return values


def _check_ids(
    ids: list[str],
    source: str,
    where: Callable[[int], str],
    place: str = "in the first column",
    remove: str = "the line",
) -> list[str]:
    """Normalise gene IDs; reject empty and duplicate ones (naming both places)."""
    genes = [normalize_id(i) for i in ids]
    for i, gene in enumerate(genes):
        if gene == "":
            raise TfcnnInputError(
                f"{source}: {where(i)} has an empty gene ID {place}; fill it in or remove {remove}."
            )
    index = pd.Index(genes)
    if not index.is_unique:
        dup_pos = np.flatnonzero(index.duplicated(keep=False))
        first = genes[int(dup_pos[0])]
        places = [int(p) for p in dup_pos if genes[int(p)] == first]
        n_dup = int(index.duplicated().sum())
        raise TfcnnInputError(
            f"{source}: gene ID {first!r} appears more than once ({where(places[0])} and "
            f"{where(places[1])}); {n_dup} duplicate row(s) in total. Each gene must appear "
            "once: average or remove the duplicates (IDs are compared after trimming and "
            "upper-casing AGI codes)."
        )
    return genes


def _check_samples(
    samples: list[str], source: str, number: Callable[[int], object], unit: str
) -> list[str]:
    """Trim sample names; need at least 3, none empty, none repeated. ``number`` and
    ``unit`` place a name in the file ("column 3", "line 4")."""
    samples = [s.strip() for s in samples]
    if len(samples) < MIN_SAMPLES:
        raise TfcnnInputError(
            f"{source}: {len(samples)} sample column(s); need at least {MIN_SAMPLES} "
            "(first column gene IDs, then one column per sample)."
        )
    for j, name in enumerate(samples):
        if name == "":
            raise TfcnnInputError(
                f"{source}: sample {unit} {number(j)} has an empty name; give every sample a name."
            )
    seen: dict[str, int] = {}
    for j, name in enumerate(samples):
        if name in seen:
            raise TfcnnInputError(
                f"{source}: sample name {name!r} is used by {unit}s {number(seen[name])} and "
                f"{number(j)}; sample names must be unique."
            )
        seen[name] = j
    return samples
