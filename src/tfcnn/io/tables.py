"""Result tables written by extension and in the column layout other tools read.

Formats, by the output's name: ``.parquet``; ``.csv``; ``.tsv`` / ``.txt`` / ``.tab``
(tab-separated), each text format optionally ``.gz``; ``.xlsx`` up to Excel's
1,048,575 rows. An unknown extension is refused (:func:`output_format`) before any work.

Layouts (:data:`LAYOUTS`) rename the three columns of an edge list:

* ``tfcnn``: ``tf, target, probability``;
* ``pyscenic``: ``TF, target, importance``, the adjacencies ``pyscenic ctx`` reads (it
  takes the separator from the extension, ``.tsv`` or ``.csv``, and the columns by
  position, so further columns may follow);
* ``beeline``: ``Gene1, Gene2, EdgeWeight``, BEELINE's ``rankedEdges.csv``, which BEELINE
  reads tab-separated whatever the extension: written tab-separated.

Every table is written atomically (:mod:`tfcnn.io.atomic`), streamed block by block when
it comes in blocks (:class:`TableWriter`), so a genome-wide scan never holds it whole
(except for ``.xlsx``, which openpyxl writes at once).
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import TfcnnInputError
from ..extras import require
from .atomic import atomic_path

XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit, less the header row
#: Extension -> (format, separator); each text format also with ``.gz``.
_TEXT = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".tab": "\t"}
EXTENSIONS: tuple[str, ...] = (
    ".parquet",
    *_TEXT,
    *(f"{ext}.gz" for ext in _TEXT),
    ".xlsx",
)
#: Column names of an edge list in each layout (TF, target, score).
LAYOUTS: dict[str, tuple[str, str, str]] = {
    "tfcnn": ("tf", "target", "probability"),
    "pyscenic": ("TF", "target", "importance"),
    "beeline": ("Gene1", "Gene2", "EdgeWeight"),
}


@dataclass(frozen=True)
class OutputFormat:
    """How a table is written: ``kind`` (parquet, csv, tsv or xlsx), ``gzip``."""

    kind: str
    gzip: bool = False

    @property
    def sep(self) -> str:
        return "\t" if self.kind == "tsv" else ","


def output_format(path: str | os.PathLike[str], layout: str = "tfcnn") -> OutputFormat:
    """The format of ``path`` by its extension (and ``layout``: beeline text is tab-
    separated); an unknown extension is refused, naming the ones written."""
    check_layout(layout)
    name = Path(path).name.lower()
    for ext in sorted(EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            base = ext.removesuffix(".gz")
            if base in _TEXT:
                kind = "tsv" if _TEXT[base] == "\t" or layout == "beeline" else "csv"
                return OutputFormat(kind, ext.endswith(".gz"))
            if base == ".xlsx":  # refused before any work when openpyxl is missing
                _require_openpyxl(path)
            return OutputFormat(base.lstrip("."))
    suffix = "".join(Path(path).suffixes[-2:]) or "(no extension)"
    raise TfcnnInputError(
        f"{path}: unknown table format {suffix!r}; end the file name in .csv, .tsv or .xlsx, "
        f"or {', '.join(e for e in EXTENSIONS if e not in ('.csv', '.tsv', '.xlsx'))}."
    )


def _require_openpyxl(path: str | os.PathLike[str]) -> None:
    """openpyxl writes .xlsx; it comes with the ``web`` extra."""
    require("openpyxl", "web", f"{os.fspath(path)}: writing .xlsx")


def table_format(path: str | os.PathLike[str]) -> str:
    """csv, tsv, xlsx or parquet from a file name's extension (see :func:`output_format`)."""
    return output_format(path).kind


def check_layout(layout: str) -> str:
    """``layout`` if it is one of :data:`LAYOUTS`, else a :class:`TfcnnInputError`."""
    if layout not in LAYOUTS:
        raise TfcnnInputError(f"`layout` must be one of {', '.join(LAYOUTS)} (got {layout!r}).")
    return layout


def edge_columns(layout: str) -> tuple[str, str, str]:
    """The (TF, target, score) column names of ``layout``."""
    return LAYOUTS[check_layout(layout)]


def apply_layout(
    table: pd.DataFrame,
    layout: str,
    columns: tuple[str, str, str] = LAYOUTS["tfcnn"],
    keep_others: bool = False,
) -> pd.DataFrame:
    """``table`` with its (TF, target, score) ``columns`` renamed for ``layout``; the
    ``tfcnn`` layout keeps the table as it is, the others keep only those three columns
    (first) unless ``keep_others``."""
    if check_layout(layout) == "tfcnn":
        return table
    renamed = table.rename(columns=dict(zip(columns, LAYOUTS[layout], strict=True)))
    first = list(LAYOUTS[layout])
    rest = [c for c in renamed.columns if c not in first] if keep_others else []
    return renamed[first + rest]


def to_text(table: pd.DataFrame, fmt: str = "csv") -> str:
    """The table as CSV or TSV text (probabilities at full precision)."""
    return csv_text(table, "\t" if fmt == "tsv" else ",")


def csv_text(frame: pd.DataFrame, sep: str, header: bool = True) -> str:
    """``frame`` as delimited text: byte for byte what
    ``frame.to_csv(sep=sep, index=False, header=header, lineterminator="\\n")`` writes.

    Arrow's writer does the work (about 6x faster on a 100,000-row prediction table, and
    without holding the GIL: the web app's event loop keeps serving while a download is
    written) when every column holds strings, booleans, integers or floats and no value
    needs quotes; pandas writes any other table. Floats are spelled by numpy as pandas
    spells them, each distinct value once.
    """
    fast = _arrow_csv(frame, sep, header)
    if fast is not None:
        return fast
    return frame.to_csv(sep=sep, index=False, header=header, lineterminator="\n")


def _arrow_csv(frame: pd.DataFrame, sep: str, header: bool) -> str | None:
    """:func:`csv_text` through Arrow, or None when pandas must write it."""
    import pyarrow.csv as pacsv

    names = [str(c) for c in frame.columns]
    quoted = (sep, '"', "\n", "\r")
    if (
        frame.columns.nlevels != 1
        or frame.shape[1] < 2  # csv writes a lone empty field as "" (pandas' job)
        or any(q in name for name in names for q in quoted)
    ):
        return None
    arrays = []
    for j in range(frame.shape[1]):
        column = _arrow_column(frame.iloc[:, j])
        if column is None:
            return None
        arrays.append(column)
    head = sep.join(names) + "\n" if header else ""
    if len(frame) == 0:
        return head
    out = io.BytesIO()
    options = pacsv.WriteOptions(include_header=False, delimiter=sep, quoting_style="none")
    table = pa.Table.from_arrays(arrays, names=[f"c{j}" for j in range(len(arrays))])
    try:
        pacsv.write_csv(table, out, options)
    except pa.ArrowInvalid:  # a value holds the separator, a quote or a line break
        return None
    return head + out.getvalue().decode("utf-8")


def _arrow_column(series: pd.Series) -> pa.Array | None:
    """One column as Arrow strings or integers spelled as pandas writes them; None for
    anything else (pandas writes it)."""
    values = series.array
    kind = series.dtype.kind if isinstance(series.dtype, np.dtype) else None
    if kind == "b":
        return pa.array(np.where(series.to_numpy(), "True", "False"))
    if kind in ("i", "u"):
        return pa.array(series.to_numpy())
    if kind == "f":
        v = series.to_numpy()
        missing = np.isnan(v)
        bits = v.view(np.int32 if v.dtype.itemsize == 4 else np.int64)
        # distinct bit patterns (so -0.0 keeps its sign), each spelled once as numpy
        # spells it for pandas; for float64 that is Python's repr, which is faster
        unique, inverse = np.unique(bits[~missing], return_inverse=True)
        floats = unique.view(v.dtype)
        if v.dtype == np.float64:
            spelled = pa.array(list(map(repr, floats.tolist())), type=pa.string())
        else:
            spelled = pa.array(floats.astype(str))
        index = np.zeros(len(v), dtype=np.int64)
        index[~missing] = inverse.reshape(-1)
        return spelled.take(pa.array(index, mask=missing))
    if kind == "O" or isinstance(series.dtype, pd.StringDtype):
        if pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty"):
            return None  # pandas writes str(x) (bytes as b'...', numbers...)
        try:
            return pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all strings (pandas: str(x))
            return None
    return None


def write_xlsx(
    table: pd.DataFrame,
    path: str | os.PathLike[str] | IO[bytes],
    issues: pd.DataFrame | None = None,
    sheet: str = "predictions",
) -> None:
    """Write the table (and, when given, the unusable IDs) to an .xlsx file via openpyxl."""
    _require_openpyxl(path if isinstance(path, str | os.PathLike) else "an .xlsx table")
    if len(table) > XLSX_MAX_ROWS:
        raise TfcnnInputError(
            f"{len(table):,} rows do not fit in one Excel sheet (at most {XLSX_MAX_ROWS:,}); "
            "write .csv, .tsv or .parquet instead."
        )
    # openpyxl writes each sheet through a temporary file. When that fails (a full disk),
    # it leaves its zip archive and sheet streams half open, and their finalizers print
    # "Exception ignored" tracebacks when collected: collect them here, quietly, and
    # raise one clean error instead.
    saved_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_spreadsheet_cleanup(saved_hook)
    failure: OSError | None = None
    try:
        try:
            with pd.ExcelWriter(path, engine="openpyxl") as writer:
                table.to_excel(writer, sheet_name=sheet, index=False)
                if issues is not None and len(issues):
                    issues.to_excel(writer, sheet_name="unused IDs", index=False)
        except OSError as exc:
            name = os.fspath(path) if isinstance(path, str | os.PathLike) else None
            failure = OSError(exc.errno, exc.strerror or str(exc), name)
        gc.collect()
    finally:
        sys.unraisablehook = saved_hook
    if failure is not None:
        raise failure


def _quiet_spreadsheet_cleanup(fallback: Any) -> Any:
    """An unraisable hook that drops openpyxl's / zipfile's cleanup errors, passes others."""

    def hook(unraisable: Any) -> None:
        where = repr(unraisable.object)
        if not any(k in where for k in ("ZipFile", "openpyxl", "get_stream", "xmlfile")):
            fallback(unraisable)

    return hook


def write_table(
    table: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    layout: str = "tfcnn",
    issues: pd.DataFrame | None = None,
) -> Path:
    """Write ``table`` by extension, atomically (``issues``: a second .xlsx sheet)."""
    fmt = output_format(path, layout)
    with TableWriter(path, fmt, force=force, sheet="predictions", issues=issues) as writer:
        writer.write(table)
    return Path(path)


class TableWriter:
    """Write a table in blocks (DataFrames or Arrow tables with the same columns) to a
    temporary file, renamed into place when the ``with`` block ends without error."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        fmt: OutputFormat,
        *,
        force: bool = False,
        sheet: str = "edges",
        issues: pd.DataFrame | None = None,
    ) -> None:
        self.path = Path(path)
        self.fmt = fmt
        self.force = force
        self.sheet = sheet
        self.issues = issues
        self.rows = 0
        self._stack = contextlib.ExitStack()
        self._parquet: Any = None
        self._text: IO[str] | None = None
        self._frames: list[pd.DataFrame] = []
        self._tmp: Path | None = None

    def __enter__(self) -> TableWriter:
        self._tmp = self._stack.enter_context(atomic_path(self.path, force=self.force))
        return self

    def write(self, block: pd.DataFrame | pa.Table) -> None:
        """Append a block (the first one fixes the columns)."""
        assert self._tmp is not None, "use TableWriter in a with block"
        self.rows += block.num_rows if isinstance(block, pa.Table) else len(block)
        if self.fmt.kind == "parquet":
            table = (
                block
                if isinstance(block, pa.Table)
                else pa.Table.from_pandas(block, preserve_index=False)
            )
            if self._parquet is None:
                import pyarrow.parquet as pq

                self._parquet = self._stack.enter_context(
                    pq.ParquetWriter(self._tmp, table.schema, compression="snappy")
                )
            self._parquet.write_table(table, row_group_size=max(1, table.num_rows))
            return
        frame = block.to_pandas() if isinstance(block, pa.Table) else block
        if self.fmt.kind == "xlsx":
            if self.rows > XLSX_MAX_ROWS:
                raise TfcnnInputError(
                    f"{self.path}: more than {XLSX_MAX_ROWS:,} rows do not fit in one Excel "
                    "sheet; write .csv, .tsv or .parquet instead."
                )
            self._frames.append(frame)
            return
        header = self._text is None
        if self._text is None:
            raw = cast(
                IO[bytes],
                gzip.GzipFile(self._tmp, "wb", mtime=0) if self.fmt.gzip else open(self._tmp, "wb"),  # noqa: SIM115 (closed by the exit stack)
            )
            self._stack.enter_context(raw)
            self._text = self._stack.enter_context(
                io.TextIOWrapper(raw, encoding="utf-8", newline="")
            )
        self._text.write(csv_text(frame, self.fmt.sep, header=header))

    def _finish(self) -> None:
        if self.fmt.kind == "xlsx":
            frames = self._frames
            table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
            assert self._tmp is not None
            write_xlsx(table, self._tmp, self.issues, sheet=self.sheet)
        elif self._text is None and self._parquet is None:
            raise ValueError("TableWriter: no block was written (write an empty one)")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            try:
                self._finish()
            except BaseException as error:
                self._stack.__exit__(type(error), error, error.__traceback__)
                raise
        self._stack.__exit__(exc_type, exc, tb)


@contextlib.contextmanager
def table_writer(
    path: str | os.PathLike[str], layout: str = "tfcnn", force: bool = False, sheet: str = "edges"
) -> Iterator[TableWriter]:
    """A :class:`TableWriter` for ``path`` (format by extension and ``layout``)."""
    with TableWriter(path, output_format(path, layout), force=force, sheet=sheet) as writer:
        yield writer
