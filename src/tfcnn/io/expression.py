"""Expression matrices: genes x samples, validated once at load time.

Every loader ends in :class:`ExpressionMatrix`, whose invariants (finite float64 values,
unique normalised gene IDs, no constant rows) the rest of tfcnn relies on, so problems
in the user's file are reported here, with the file, line (or row ID) and column, rather
than surfacing later as NaN scores.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TfcnnInputError
from .datasets import resolve_path
from .ids import normalize_id
from .textio import check_file, load_text

log = logging.getLogger(__name__)

#: Extensions :func:`read_expression` understands (each text format also as ``.gz``).
TEXT_SEPARATORS: dict[str, str] = {".tsv": "\t", ".txt": "\t", ".tab": "\t", ".csv": ","}
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    *TEXT_SEPARATORS,
    *(f"{ext}.gz" for ext in TEXT_SEPARATORS),
    ".parquet",
)
MIN_SAMPLES = 3
#: Above this maximum, values probably are on a linear (not log) scale.
LINEAR_SCALE_THRESHOLD = 100.0
_MAX_LISTED = 10
_NA_STRINGS = frozenset({"na", "nan", "-nan", "n/a", "#n/a", "null", "none", "nd", "."})


# ---------------------------------------------------------------------------------------
# Row-wise z-scores
# ---------------------------------------------------------------------------------------


def _constant_rows(values: np.ndarray) -> np.ndarray:
    """Boolean mask of constant rows (all values exactly equal): they have no z-score."""
    if values.shape[0] == 0 or values.shape[1] == 0:
        return np.zeros(values.shape[0], dtype=bool)
    return values.max(axis=1) == values.min(axis=1)


def zscore_rows(values: np.ndarray) -> np.ndarray:
    """Z-score each row with the sample SD (ddof=1), exactly like R's ``scale(t(x))``.

    The profiles are compared by shape, not level, so each gene is centred and scaled.
    Raises ``ValueError`` for non-finite input, fewer than 2 columns, or a constant row
    (whose z-score is undefined): this function never returns NaN.
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
    constant = _constant_rows(values)
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


# ---------------------------------------------------------------------------------------
# The matrix
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ExpressionMatrix:
    """A validated genes x samples expression matrix.

    ``values`` is float64 of shape ``(n_genes, n_samples)``, all finite, no constant rows,
    and read-only; ``genes`` are unique IDs normalised with :func:`tfcnn.io.ids.normalize_id`.
    ``dropped_constant`` lists IDs the loader removed because their profile was constant.
    Equality is identity (``eq=False``): comparing arrays field by field is ambiguous.
    """

    values: np.ndarray
    genes: tuple[str, ...]
    samples: tuple[str, ...]
    source: str
    dropped_constant: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Check the invariants (violations are programming errors, not input errors)."""
        values = np.array(self.values, dtype=np.float64, copy=True)
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
        if values.shape[1] >= 2 and _constant_rows(values).any():
            raise ValueError("values must not contain constant rows")
        values.flags.writeable = False
        object.__setattr__(self, "values", values)

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
            cached = zscore_rows(self.values).astype(np.float32)
            cached.flags.writeable = False
            self.__dict__["_zscored"] = cached
        return cached

    def subset(self, genes: Iterable[str]) -> ExpressionMatrix:
        """A new matrix with only ``genes``, in that order (missing IDs raise)."""
        rows = self.index_of(genes)
        if len(set(rows.tolist())) != rows.size:
            raise ValueError("subset got the same gene more than once")
        out = ExpressionMatrix(
            values=self.values[rows],
            genes=tuple(self.genes[r] for r in rows),
            samples=self.samples,
            source=self.source,
            dropped_constant=self.dropped_constant,
        )
        cached = self.__dict__.get("_zscored")
        if cached is not None:  # z-scores are per row, so a row subset can reuse them
            sub = cached[rows]
            sub.flags.writeable = False
            out.__dict__["_zscored"] = sub
        return out

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
        constant = _constant_rows(values)
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
        return ExpressionMatrix(
            values=values,
            genes=tuple(genes),
            samples=tuple(names),
            source=self.source,
            dropped_constant=tuple(dropped),
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
        return ExpressionMatrix(
            values=self.values[keep],
            genes=tuple(new_ids),
            samples=self.samples,
            source=self.source,
            dropped_constant=dropped,
        )


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
        f"{', '.join(SUPPORTED_EXTENSIONS)}. Export or rename the file accordingly."
    )


def read_expression(path: str | os.PathLike[str], log2: bool = False) -> ExpressionMatrix:
    """Load a genes x samples matrix: first column gene IDs, one column per sample.

    Formats by extension: ``.tsv``/``.txt``/``.tab`` (tab), ``.csv`` (comma), each
    optionally ``.gz``, and ``.parquet``. With ``log2`` the values are log2-transformed
    (all must be > 0). Bad cells are reported with file, line and column; constant rows
    are dropped with a warning (see :class:`ExpressionMatrix`).
    """
    path = Path(path)
    ext = _extension(path)
    check_file(path)
    if ext == ".parquet":
        return _read_parquet(path, log2)
    sep = TEXT_SEPARATORS[ext.removesuffix(".gz")]
    return _read_text_table(path, sep, log2)


def load_expression(
    expression: ExpressionMatrix | str | os.PathLike[str], log2: bool = False
) -> ExpressionMatrix:
    """A matrix from a path or bundled dataset name (see :func:`read_expression`), or the
    matrix itself (``log2`` then does nothing: it was applied when it was read)."""
    if isinstance(expression, ExpressionMatrix):
        return expression
    return read_expression(resolve_path(expression), log2=log2)


def from_dataframe(
    df: pd.DataFrame, source: str = "<dataframe>", log2: bool = False
) -> ExpressionMatrix:
    """Build a validated matrix from a DataFrame (index = gene IDs, columns = samples)."""
    ids = ["" if pd.isna(i) else str(i) for i in df.index]
    samples = [str(c) for c in df.columns]
    return _build(ids, samples, df, source, log2, _row_labeller(ids))


def _row_labeller(ids: list[str]) -> Callable[[int], str]:
    """Describe a data row by its ID, for tables without line numbers."""
    return lambda i: f"row {i + 1} (ID {ids[i].strip()!r})"


def _read_parquet(path: Path, log2: bool) -> ExpressionMatrix:
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
    return from_dataframe(df, source=str(path), log2=log2)


def _read_text_table(path: Path, sep: str, log2: bool) -> ExpressionMatrix:
    """Parse a delimited text file, keeping physical line numbers (header = 1) for errors."""
    text = load_text(path)
    if not text.strip():
        raise TfcnnInputError(f"{path} is empty; expected a header line and one line per gene.")
    try:
        first_rows = list(itertools.islice(csv.reader(io.StringIO(text), delimiter=sep), 50))
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
    if n_cols - 1 < MIN_SAMPLES:
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
    )
    # Fast path: parse the numbers directly. Anything unusual (bad cells, NaN/inf, blank
    # lines) falls back to reading strings, which locates the problem line and column.
    df: pd.DataFrame | None = None
    try:
        df = pd.read_csv(io.StringIO(text), dtype={0: object}, **options)
    except (pd.errors.ParserError, ValueError, TypeError):
        df = None
    # Only int or float columns are numbers: pandas reads a column of TRUE/FALSE as bool.
    if df is not None and not all(
        pd.api.types.is_float_dtype(t) or pd.api.types.is_integer_dtype(t)
        for t in df.dtypes.iloc[1:]
    ):
        df = None
    if df is not None and (
        len(df) == 0 or not np.isfinite(df.iloc[:, 1:].to_numpy(dtype=np.float64)).all()
    ):
        df = None
    if df is None:
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
    maybe_blank = (df.iloc[:, 0].astype(str).str.strip() == "").to_numpy()
    if maybe_blank.any():
        rest = df.loc[maybe_blank]
        blank = np.zeros(len(df), dtype=bool)
        blank[maybe_blank] = (
            rest.apply(lambda c: c.astype(str).str.strip() == "").all(axis=1).to_numpy()
        )
        df = df.loc[~blank]
        lines = lines[~blank]
    if len(df) == 0:
        raise TfcnnInputError(f"{path} has a header but no data lines; expected one line per gene.")
    ids = df.iloc[:, 0].tolist()
    samples = header[1:]
    block = df.iloc[:, 1:]
    return _build(ids, samples, block, str(path), log2, lambda i: f"line {lines[i]}")


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


def _to_float(block: pd.DataFrame) -> np.ndarray:
    """Convert column by column (vectorised); cells that fail become NaN to be located."""
    if all(dtype == np.float64 for dtype in block.dtypes):
        return block.to_numpy(dtype=np.float64)
    out = np.empty(block.shape, dtype=np.float64)
    for j in range(block.shape[1]):
        col = block.iloc[:, j]
        if not pd.api.types.is_numeric_dtype(col.dtype):
            col = pd.to_numeric(col, errors="coerce")
        out[:, j] = col.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _build(
    ids: list[str],
    samples: list[str],
    block: pd.DataFrame,
    source: str,
    log2: bool,
    where: Callable[[int], str],
) -> ExpressionMatrix:
    """Validate IDs, samples and cells, log-transform, drop constant rows, build."""
    genes = _check_ids(ids, source, where)
    samples = _check_samples(samples, source)
    if block.shape[0] == 0:
        raise TfcnnInputError(f"{source} has no genes (rows); expected one row per gene.")
    values = _to_float(block)
    bad = ~np.isfinite(values)
    if bad.any():
        rows, cols = np.nonzero(bad)  # row-major: the first is the earliest in the file
        r, c = int(rows[0]), int(cols[0])
        others = rows.size - 1
        more = f" ({others} more bad cell(s) after it)" if others else ""
        raise TfcnnInputError(
            f"{source}: {where(r)}, column {samples[c]!r}: "
            f"{_describe_bad_cell(block.iat[r, c], values[r, c])}{more}. Expression values "
            "must be finite numbers; fix the cell or remove that gene, then try again."
        )
    if log2:
        nonpos = values <= 0
        if nonpos.any():
            rows, cols = np.nonzero(nonpos)
            r, c = int(rows[0]), int(cols[0])
            raise TfcnnInputError(
                f"{source}: {where(r)}, column {samples[c]!r}: value {values[r, c]:g} is <= 0 "
                f"and has no log2 ({rows.size} such cell(s)). Drop `log2` if the values are "
                "already log-scaled, or remove/offset the non-positive values."
            )
        values = np.log2(values)
    elif values.size and float(values.max()) > LINEAR_SCALE_THRESHOLD:
        log.warning(
            "%s: the largest value is %g; values look like a linear scale. If so, pass "
            "`log2` so they are log2-transformed.",
            source,
            float(values.max()),
        )
    constant = _constant_rows(values)
    dropped: tuple[str, ...] = ()
    if constant.any():
        dropped = tuple(g for g, k in zip(genes, constant, strict=True) if k)
        if constant.all():
            raise TfcnnInputError(
                f"{source}: all {len(genes)} gene profiles are constant across samples, so "
                "nothing is left to compare; check the file (wrong columns?)."
            )
        log.warning(
            "%s: dropping %d gene(s) with a constant profile (no variance): %s",
            source,
            len(dropped),
            _list_some(list(dropped), 5),
        )
        keep = ~constant
        values = values[keep]
        genes = [g for g, k in zip(genes, keep, strict=True) if k]
    return ExpressionMatrix(
        values=values,
        genes=tuple(genes),
        samples=tuple(samples),
        source=source,
        dropped_constant=dropped,
    )


def _check_ids(ids: list[str], source: str, where: Callable[[int], str]) -> list[str]:
    """Normalise gene IDs; reject empty and duplicate ones (naming both places)."""
    genes = [normalize_id(i) for i in ids]
    for i, gene in enumerate(genes):
        if gene == "":
            raise TfcnnInputError(
                f"{source}: {where(i)} has an empty gene ID in the first column; "
                "fill it in or remove the line."
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


def _check_samples(samples: list[str], source: str) -> list[str]:
    """Trim sample names; need at least 3, none empty, none repeated."""
    samples = [s.strip() for s in samples]
    if len(samples) < MIN_SAMPLES:
        raise TfcnnInputError(
            f"{source}: {len(samples)} sample column(s); need at least {MIN_SAMPLES} "
            "(first column gene IDs, then one column per sample)."
        )
    for j, name in enumerate(samples):
        if name == "":
            raise TfcnnInputError(
                f"{source}: sample column {j + 2} has an empty name in the header; "
                "give every sample column a name."
            )
    seen: dict[str, int] = {}
    for j, name in enumerate(samples):
        if name in seen:
            raise TfcnnInputError(
                f"{source}: sample name {name!r} is used by columns {seen[name] + 2} and "
                f"{j + 2}; sample names must be unique."
            )
        seen[name] = j
    return samples
