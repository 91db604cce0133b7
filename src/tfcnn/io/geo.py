"""GEO series-matrix files: the lighter, approximate path to an expression matrix.

The submitters' own processed values (often MAS5), log2-transformed when on a linear
scale and quantile normalised: not RMA from the .cel files (:mod:`tfcnn.io.rma`), so the
result is labelled an approximation.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import TfcnnInputError
from .rma import quantile_normalize
from .textio import read_maybe_gzip, text_lines

if TYPE_CHECKING:
    import pandas as pd

SERIES_MATRIX_NOTE = (
    "APPROXIMATION: built from GEO series-matrix files (the submitters' own processing, "
    "e.g. MAS5), log2-transformed when needed and quantile normalised; this is not RMA "
    "from the .cel files and will not reproduce the study's matrix."
)


#: Cells read as missing (the probe is then dropped), compared lower-cased.
MISSING_VALUES = frozenset({"", "null", "na", "nan", "n/a", "none"})


def _unquote(cell: str) -> str:
    return cell.strip().strip('"').strip()


def _table_lines(path: Path, lines: list[str]) -> tuple[int, int]:
    """0-based indices of the table's header line and of its end marker."""
    begin = next(
        (k for k, line in enumerate(lines) if line.startswith("!series_matrix_table_begin")), -1
    )
    end = next(
        (
            k
            for k in range(begin + 1, len(lines))
            if lines[k].startswith("!series_matrix_table_end")
        ),
        -1,
    )
    if begin < 0 or end < 0:
        raise TfcnnInputError(
            f"{path} is not a GEO series-matrix file (no !series_matrix_table_begin/end)."
        )
    if end == begin + 1:
        raise TfcnnInputError(
            f"{path}, line {end + 1}: the data table is empty (no header line between "
            "!series_matrix_table_begin and !series_matrix_table_end)."
        )
    return begin + 1, end


def _header(path: Path, line_no: int, line: str) -> list[str]:
    """The sample (GSM) columns of the header line, refused when empty or repeated."""
    samples = [_unquote(c) for c in line.split("\t")[1:]]
    if not samples:
        raise TfcnnInputError(
            f"{path}, line {line_no}: the table header has no sample column (tab-separated "
            "GSM ids after ID_REF)."
        )
    seen: dict[str, int] = {}
    for col, name in enumerate(samples, start=2):
        if not name:
            raise TfcnnInputError(f"{path}, line {line_no}: column {col} has no sample name.")
        if name in seen:
            raise TfcnnInputError(
                f"{path}, line {line_no}: sample {name!r} is the header of both column "
                f"{seen[name]} and column {col}; each GSM id may head one column only. Remove "
                "the repeated column."
            )
        seen[name] = col
    return samples


def read_series_matrix(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The data table of a GEO series-matrix file (.txt or .txt.gz): probes x GSM ids.

    Missing cells (``null``, ``NA``, empty: see :data:`MISSING_VALUES`) are NaN. A row
    with another number of fields than the header, a cell that is not a number, an
    infinite one (``inf``, ``1e309``), a repeated probe ID or GSM column is refused with
    the file, line and column.
    """
    import pandas as pd

    path = Path(path)
    lines = text_lines(read_maybe_gzip(path).decode("latin-1"))
    head, end = _table_lines(path, lines)
    samples = _header(path, head + 1, lines[head])
    ids: list[str] = []
    cells: list[list[str]] = []
    line_of: dict[str, int] = {}
    for k in range(head + 1, end):
        if not lines[k].strip():
            continue
        fields = lines[k].split("\t")
        if len(fields) != len(samples) + 1:
            raise TfcnnInputError(
                f"{path}, line {k + 1}: {len(fields)} field(s) but the header (line "
                f"{head + 1}) has {len(samples) + 1}; the row is cut short or has extra fields. "
                "Download the file again."
            )
        probe = _unquote(fields[0])
        if not probe:
            raise TfcnnInputError(f"{path}, line {k + 1}: empty probe ID in the first column.")
        if probe in line_of:
            raise TfcnnInputError(
                f"{path}: probe {probe!r} appears more than once (line {line_of[probe]} and "
                f"line {k + 1}); each probe may have one row. Remove the repeated row."
            )
        line_of[probe] = k + 1
        ids.append(probe)
        cells.append([_unquote(c) for c in fields[1:]])
    if not ids:
        raise TfcnnInputError(f"{path}: the data table (line {head + 1}) has no probe rows.")
    values = _numbers(path, np.array(cells, dtype=object), samples, [line_of[i] for i in ids])
    table = pd.DataFrame(values, index=pd.Index(ids, name="ID_REF"), columns=samples)
    return table


def _numbers(path: Path, cells: np.ndarray, samples: list[str], lines: list[int]) -> np.ndarray:
    """Cells as float64 (missing -> NaN); text and infinite values refused by line/column."""
    import pandas as pd

    flat = pd.Series(cells.ravel())
    missing = flat.str.lower().isin(MISSING_VALUES).to_numpy()
    numbers = pd.to_numeric(flat.where(~missing), errors="coerce").to_numpy(dtype=np.float64)
    where = np.flatnonzero((np.isnan(numbers) & ~missing) | np.isinf(numbers))
    if where.size:
        row, col = divmod(int(where[0]), len(samples))
        cell = cells[row, col]
        try:
            why = "is infinite (or too large for a float)" if math.isinf(float(cell)) else ""
        except ValueError:
            why = ""
        raise TfcnnInputError(
            f"{path}, line {lines[row]}, column {samples[col]!r}: value {cell[:40]!r} "
            f"{why or 'is not a number'} ({where.size:,} such cell(s)). Give finite numbers, "
            "or null for a missing value."
        )
    return numbers.reshape(cells.shape)


def _join(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """The files' tables side by side on their common probes; a GSM in several files once.

    A GSM id in two files must hold the same values there (it is then kept once);
    otherwise both files are named.
    """
    import pandas as pd

    tables: list[pd.DataFrame] = []
    source: dict[str, Path] = {}
    for p in paths:
        table = read_series_matrix(p)
        repeated = [c for c in table.columns if c in source]
        for gsm in repeated:
            first = next(t for t in tables if gsm in t.columns)[gsm]
            common = first.index.intersection(table.index)
            if not np.allclose(
                first[common].to_numpy(), table.loc[common, gsm].to_numpy(), equal_nan=True
            ):
                raise TfcnnInputError(
                    f"sample {gsm} is in both {source[gsm]} and {p} with different values; "
                    "give only one of the two files, or remove the column from one."
                )
        source.update({c: Path(p) for c in table.columns if c not in source})
        tables.append(table.drop(columns=repeated))
    return pd.concat(tables, axis=1, join="inner")


def series_matrix_expression(
    paths: Sequence[str | os.PathLike[str]], sheet: str | os.PathLike[str] | None = None
) -> pd.DataFrame:
    """Combine series-matrix files, log2 when on a linear scale, quantile normalise.

    Each file is checked as :func:`read_series_matrix` says; files are joined on their
    common probes, and a GSM id in several files (with the same values) is kept once.

    With ``sheet``, columns follow the sample sheet's order (sheet GSM ids absent from
    the files are left out and listed in ``.attrs['missing']``). Probes with any missing
    value are dropped. The result is labelled an approximation in ``.attrs['note']``.
    """
    import pandas as pd

    from .fetch import read_sample_sheet

    if not paths:
        raise TfcnnInputError("no series-matrix files given.")
    data = _join(paths)
    missing: list[str] = []
    if sheet is not None:
        ids = [r.sample_id for r in read_sample_sheet(sheet).rows]
        missing = [i for i in ids if i not in data.columns]
        data = data[[i for i in ids if i in data.columns]]
        if data.shape[1] == 0:
            raise TfcnnInputError(
                f"none of the {len(ids)} samples of the sheet {sheet} is a column of the "
                "series-matrix files; check that they are the sheet's series."
            )
    data = data.dropna(axis=0, how="any").astype(np.float64)
    values = data.to_numpy()
    if values.size == 0:
        raise TfcnnInputError("the series-matrix files share no complete probe rows.")
    logged = bool(np.nanmax(values) > 100.0)
    if logged:
        if (values <= 0).any():
            values = np.where(values <= 0, np.nan, values)
            keep = ~np.isnan(values).any(axis=1)
            data, values = data[keep], values[keep]
        values = np.log2(values)
    out = pd.DataFrame(quantile_normalize(values), index=data.index, columns=data.columns)
    out.index.name = "probeset"
    out.attrs.update(note=SERIES_MATRIX_NOTE, missing=missing, log2_applied=logged)
    return out
