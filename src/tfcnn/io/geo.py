"""GEO series-matrix files: the lighter, approximate path to an expression matrix.

The submitters' own processed values (often MAS5), log2-transformed when on a linear
scale and quantile normalised: not RMA from the .cel files (:mod:`tfcnn.io.rma`), so the
result is labelled an approximation.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import TfcnnInputError
from .rma import quantile_normalize
from .textio import read_maybe_gzip

if TYPE_CHECKING:
    import pandas as pd

SERIES_MATRIX_NOTE = (
    "APPROXIMATION: built from GEO series-matrix files (the submitters' own processing, "
    "e.g. MAS5), log2-transformed when needed and quantile normalised; this is not RMA "
    "from the .cel files and will not reproduce the study's matrix."
)


def read_series_matrix(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The data table of a GEO series-matrix file (.txt or .txt.gz): probes x GSM ids."""
    import pandas as pd

    path = Path(path)
    text = read_maybe_gzip(path).decode("latin-1")
    begin = text.find("!series_matrix_table_begin")
    end = text.find("!series_matrix_table_end")
    if begin < 0 or end < 0:
        raise TfcnnInputError(
            f"{path} is not a GEO series-matrix file (no !series_matrix_table_begin/end)."
        )
    body = text[text.index("\n", begin) + 1 : end]
    table = pd.read_csv(io.StringIO(body), sep="\t", index_col=0, na_values=["null", "NA", ""])
    table.index = table.index.astype(str)
    table.columns = [str(c).strip('"') for c in table.columns]
    return table


def series_matrix_expression(
    paths: Sequence[str | os.PathLike[str]], sheet: str | os.PathLike[str] | None = None
) -> pd.DataFrame:
    """Combine series-matrix files, log2 when on a linear scale, quantile normalise.

    With ``sheet``, columns follow the sample sheet's order (sheet GSM ids absent from
    the files are left out and listed in ``.attrs['missing']``). Probes with any missing
    value are dropped. The result is labelled an approximation in ``.attrs['note']``.
    """
    import pandas as pd

    from .fetch import read_sample_sheet

    if not paths:
        raise TfcnnInputError("no series-matrix files given.")
    tables = [read_series_matrix(p) for p in paths]
    data = pd.concat(tables, axis=1, join="inner")
    data = data.loc[:, ~data.columns.duplicated()]
    missing: list[str] = []
    if sheet is not None:
        ids = [r.sample_id for r in read_sample_sheet(sheet).rows]
        missing = [i for i in ids if i not in data.columns]
        data = data[[i for i in ids if i in data.columns]]
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
