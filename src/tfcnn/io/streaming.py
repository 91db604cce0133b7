"""Read a large matrix file in chunks into one float32 copy (and its z-scores).

The fast path of :func:`tfcnn.io.expression.read_expression`. Text (TSV/CSV, optionally
gzip) and Parquet files are read a chunk of rows at a time (about 262,000 values), in
float64, and each chunk goes straight into preallocated float32 arrays: for a
genes x samples file, the values and the row z-scores (computed from the float64 chunk,
so they equal a float64 load's to the last float32 bit); for a samples x genes file
(``transpose``), the values only. Nothing else of matrix size is held, so loading peaks
near 8 bytes per value instead of about 50.

This path never words an error. Anything unusual (a bad cell, a value out of float32's
range, blank or multi-line records, another encoding, a duplicate ID...) makes it give
up (:class:`Fallback`), and the caller reads the file again the thorough way, which
names the file, line and column.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

#: Values per chunk (float64: 2 MB).
CHUNK_VALUES = 262_144
#: Largest magnitude stored as float32 (larger values are read the thorough way, as float64).
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Bytes read ahead to check the header and the text encoding.
HEAD_BYTES = 1 << 16
#: ... and at most this much to find the first lines of a wide (samples x genes) file.
MAX_HEAD_BYTES = 64 << 20
#: A gzip file expanding more than this many times is left to the bounded reader.
MAX_GZIP_RATIO = 200


class Fallback(Exception):
    """The fast path cannot read this file; read it the thorough way."""


@dataclass
class Streamed:
    """What the fast path read, in the file's orientation.

    ``row_ids``: the first-column labels of every data row (None: the file has none);
    ``columns``: the value columns' names; ``values``: float32, one row per kept data
    row; ``zscores``: their row z-scores (None when ``transpose``); ``constant``: per data
    row, whether its profile was constant (dropped from ``values``; only without
    ``transpose``); ``max_value``: the largest value before ``log2``.
    """

    row_ids: list[str] | None
    columns: list[str]
    values: np.ndarray
    zscores: np.ndarray | None
    constant: np.ndarray
    max_value: float
    extra: dict[str, Any] = field(default_factory=dict)


class _Sink:
    """Receives float64 chunks; keeps float32 values (and z-scores, row by row)."""

    def __init__(self, bound: int, n_cols: int, zscore: bool, log2: bool) -> None:
        self.values = np.empty((bound, n_cols), np.float32)
        self.zscores = np.empty((bound, n_cols), np.float32) if zscore else None
        self.log2 = log2
        self.n = 0
        self.constant: list[np.ndarray] = []
        self.max_value = -np.inf

    def checked(self, block: np.ndarray) -> np.ndarray:
        """``block`` (float64) checked, and log2-transformed if asked."""
        if block.size == 0:
            return block
        if not np.isfinite(block).all():
            raise Fallback("non-finite value")
        self.max_value = max(self.max_value, float(block.max()))
        if self.log2:
            if (block <= 0).any():
                raise Fallback("value <= 0 with log2")
            block = np.log2(block)
        if np.abs(block).max() > FLOAT32_MAX:
            raise Fallback("value beyond float32")
        return block

    def region(self, rows: int) -> np.ndarray:
        """The float32 rows the next ``rows`` data rows are written to, column by column
        (for files stored by column); then :meth:`commit` them."""
        if self.n + rows > self.values.shape[0]:
            raise Fallback("more rows than stored")
        return self.values[self.n : self.n + rows]

    def commit(self, rows: int) -> None:
        """Keep the non-constant rows of :meth:`region` and z-score them (from float32)."""
        from .expression import constant_rows, zscore_rows_float32

        part = self.values[self.n : self.n + rows]
        const = constant_rows(part)
        if self.zscores is None:
            self.n += rows
            return
        self.constant.append(const)
        if const.any():
            part[: int((~const).sum())] = part[~const]
            part = part[: int((~const).sum())]
        zscore_rows_float32(part, out=self.zscores[self.n : self.n + part.shape[0]])
        self.n += part.shape[0]

    def add(self, block: np.ndarray) -> None:
        """Keep a chunk of float64 rows (z-scores from the float64 values)."""
        from .expression import constant_rows, zscore_rows

        block = self.checked(block)
        if block.size == 0:
            return
        if self.zscores is not None:
            const = constant_rows(block)
            self.constant.append(const)
            block = block[~const]
        end = self.n + block.shape[0]
        if end > self.values.shape[0]:
            raise Fallback("more rows than lines counted")
        self.values[self.n : end] = block
        if self.zscores is not None and block.shape[0]:
            self.zscores[self.n : end] = zscore_rows(block)
        self.n = end

    def result(self, row_ids: list[str] | None, columns: list[str]) -> Streamed:
        values = self.values[: self.n]
        z = None if self.zscores is None else self.zscores[: self.n]
        constant = np.concatenate(self.constant) if self.constant else np.zeros(0, bool)
        return Streamed(row_ids, columns, values, z, constant, self.max_value)


def _regular_file(path: Path) -> None:
    """Only regular files are streamed (pipes and devices go to the bounded reader)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise Fallback("not a regular file")
    except OSError as exc:
        raise Fallback(str(exc)) from None


def _open(path: Path) -> io.BufferedIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _count_lines(path: Path) -> int:
    """Newlines in the (decompressed) file, plus one for a last line without one."""
    limit = max(16 << 20, MAX_GZIP_RATIO * os.path.getsize(path))
    total = 0
    count = 0
    last = b"\n"
    try:
        with _open(path) as fh:
            while chunk := fh.read(16 << 20):
                count += chunk.count(b"\n")
                total += len(chunk)
                last = chunk[-1:]
                if path.name.lower().endswith(".gz") and total > limit:
                    raise Fallback("gzip expands too much")
    except (OSError, EOFError) as exc:
        raise Fallback(str(exc)) from None
    return count + (last != b"\n")


def _head_text(path: Path) -> str:
    """The first lines as text, when they are plain UTF-8 (else :class:`Fallback`)."""
    from .textio import decode_text

    try:
        with _open(path) as fh:
            head = fh.read(HEAD_BYTES)
            while head.count(b"\n") < 3 and len(head) < MAX_HEAD_BYTES:  # wide files
                chunk = fh.read(HEAD_BYTES)
                if not chunk:
                    break
                head += chunk
            more = bool(fh.read(1))
    except (OSError, EOFError) as exc:
        raise Fallback(str(exc)) from None
    if more:
        head = head[: head.rfind(b"\n") + 1]
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Fallback("not UTF-8") from None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Fallback("UTF-16")
    try:
        return decode_text(path, head)  # refuses binary content: left to the bounded reader
    except Exception:
        raise Fallback("not text") from None


def read_text(
    path: Path,
    sep: str,
    layout: tuple[list[str], bool],
    transpose: bool,
    log2: bool,
) -> Streamed:
    """Stream a delimited text file whose header was checked (``layout``: the header's
    value-column names and whether the rows start with an ID field).

    Line by line: each line's fields are counted and checked, then a chunk of lines is
    parsed at once by numpy's C reader (correctly rounded, as Python's ``float``; a chunk
    it refuses is parsed line by line, which refuses it the same way). Quotes,
    blank-but-not-empty lines, non-ASCII or ``_`` in the values, a field count other than
    the header's: :class:`Fallback`.
    """
    _regular_file(path)
    columns, labelled = layout
    n_lines = _count_lines(path)
    first = 1 if labelled else 0
    n_seps = len(columns) + first - 1
    sink = _Sink(max(n_lines - 1, 0), len(columns), zscore=not transpose, log2=log2)
    ids: list[str] = []
    rows_per_chunk = max(1, CHUNK_VALUES // max(len(columns), 1))
    pending: list[str] = []
    try:
        raw = cast(IO[bytes], _open(path))
        with io.TextIOWrapper(raw, encoding="utf-8-sig", newline=None) as fh:
            next(fh, None)  # the header (checked by the caller)
            for line in fh:
                line = line.rstrip("\n")
                if not line:
                    continue
                if '"' in line:
                    raise Fallback("quoted fields")
                if line.count(sep) != n_seps:
                    raise Fallback("field count")
                tail = line
                if labelled:
                    cut = line.find(sep) if n_seps else len(line)
                    ids.append(line[:cut])
                    tail = line[cut:]
                if "_" in tail or not tail.isascii():
                    raise Fallback("not a plain number")
                pending.append(tail[1:] if labelled else tail)
                if len(pending) >= rows_per_chunk:
                    sink.add(_parse_lines(pending, sep, len(columns)))
                    pending = []
        if pending:
            sink.add(_parse_lines(pending, sep, len(columns)))
    except (ValueError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise Fallback(str(exc)) from None
    return sink.result(ids if labelled else None, columns)


def _parse_lines(lines: list[str], sep: str, n_cols: int) -> np.ndarray:
    """Lines of ``n_cols`` numbers each -> float64 (rows, n_cols); ValueError if any
    field is not a number Python's ``float`` reads."""
    try:
        block = np.loadtxt(
            lines, dtype=np.float64, delimiter=sep, comments=None, quotechar=None, ndmin=2
        )
    except ValueError:
        block = None
    if block is None or block.shape != (len(lines), n_cols):
        # numpy's reader refused the chunk: parse it line by line, which raises
        # the same ValueError for the same field
        block = np.array([line.split(sep) for line in lines], dtype=np.float64)
    return block


def read_parquet(path: Path, transpose: bool, log2: bool) -> Streamed:
    """Stream a Parquet file: IDs from its stored string index, else its first column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _regular_file(path)
    try:
        pf = pq.ParquetFile(path, pre_buffer=False)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise Fallback(str(exc)) from None
    schema = pf.schema_arrow
    meta = schema.pandas_metadata or {}
    index = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    names = list(schema.names)
    if len(index) > 1 or not names:
        raise Fallback("several index columns")
    id_col = index[0] if index else names[0]
    if not pa.types.is_string(schema.field(id_col).type) and not pa.types.is_large_string(
        schema.field(id_col).type
    ):
        raise Fallback("IDs are not strings")
    value_cols = [n for n in names if n != id_col]
    for name in value_cols:
        kind = schema.field(name).type
        if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
            raise Fallback("a column is not numeric")
    sink = _Sink(pf.metadata.num_rows, len(value_cols), zscore=not transpose, log2=log2)
    ids: list[str] = []
    try:
        for group in range(pf.num_row_groups):
            rows = pf.metadata.row_group(group).num_rows
            labels = pf.read_row_group(group, columns=[id_col]).column(0).to_pylist()
            if any(v is None for v in labels):
                raise Fallback("empty ID")
            ids.extend(labels)
            if rows * max(len(value_cols), 1) <= 4 * CHUNK_VALUES:  # small: by rows, exact
                table = pf.read_row_group(group, columns=value_cols)
                sink.add(_columns_float64(table, 0, len(value_cols)))
                continue
            step = max(1, CHUNK_VALUES // max(rows, 1))  # large: a few columns at a time
            region = sink.region(rows)
            for a in range(0, len(value_cols), step):
                part = pf.read_row_group(group, columns=value_cols[a : a + step])
                region[:, a : a + step] = sink.checked(_columns_float64(part, 0, part.num_columns))
                del part
                pa.default_memory_pool().release_unused()
            sink.commit(rows)
    except (pa.ArrowException, OSError) as exc:
        raise Fallback(str(exc)) from None
    return sink.result(ids, [str(c) for c in value_cols])


def _columns_float64(table: Any, start: int, stop: int) -> np.ndarray:
    """Columns ``start:stop`` of an Arrow table as one float64 array (rows x columns)."""
    block = np.empty((table.num_rows, stop - start), np.float64)
    for j in range(start, stop):
        column = table.column(j)
        if column.null_count:
            raise Fallback("missing value")
        block[:, j - start] = column.to_numpy()
    return block


def head_rows(text: str, sep: str, n: int = 50) -> list[list[str]]:
    """The first ``n`` records of ``text`` (csv rules)."""
    import csv
    import itertools

    return list(itertools.islice(csv.reader(io.StringIO(text), delimiter=sep), n))
