"""Sample annotations (group, treatment, tissue, time) from the bundled sample sheets."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import TfcnnInputError

ANNOTATION_FIELDS = ("group", "treatment", "tissue", "time")


def sample_annotations(samples: Sequence[str]) -> pd.DataFrame | None:
    """Annotations for sample names from a bundled sample sheet, or None if none fits.

    Returns a frame indexed by ``samples`` with columns ``source`` and the subset of
    ``group``, ``treatment``, ``tissue``, ``time`` the sheet provides (unknown samples:
    missing values). Sheets are tried in order; the first matching at least half of the
    names wins:

    * ``nitrogen-meta`` (the nitrogen compendium; names are its ``condName``):
      ``group`` is the name's series prefix (``SS_N``, ``SS_C``, ``TS_N``, ``TS_C``),
      ``treatment`` is ``steady-state`` / ``time-series`` (column ``isTs``) and, for
      time series, ``time`` is the cumulative ``del.t`` since the series' first
      condition (units as distributed).
    * ``atgenexpress-samples`` (names are GSM ids): ``treatment`` (or, where empty,
      ``source``), ``tissue`` and ``time`` (hours) as in the sheet; duplicated GSM ids
      keep their first complete row.
    """
    names = [str(s) for s in samples]
    for loader in (_nitrogen_sheet, _atgenexpress_sheet):
        sheet = loader()
        if sheet is None:
            continue
        hits = sum(n in sheet.index for n in names)
        if names and hits * 2 >= len(names):
            return sheet.reindex(names)
    return None


def _nitrogen_sheet() -> pd.DataFrame | None:
    from ..io.datasets import dataset_path

    try:
        meta = pd.read_csv(dataset_path("nitrogen-meta"), sep="\t", dtype=str)
    except (TfcnnInputError, OSError):  # pragma: no cover - broken installation
        return None
    meta = meta.drop_duplicates("condName").set_index("condName")
    group = pd.Series(
        [re.sub(r"(_\d+)+$", "", str(n)) for n in meta.index], index=meta.index, dtype=object
    )
    is_ts = meta["isTs"].str.upper().eq("TRUE")
    time = pd.Series(np.nan, index=meta.index)
    for name in meta.index[is_ts]:  # walk prevCol back to the series' first condition
        t, cur, seen = 0.0, name, set()
        while cur in meta.index and cur not in seen:
            seen.add(cur)
            prev, dt = meta.at[cur, "prevCol"], meta.at[cur, "del.t"]
            if not isinstance(prev, str) or prev == "NA":
                break
            t += float(dt)
            cur = prev
        time[name] = t
    return pd.DataFrame(
        {
            "source": "nitrogen-meta",
            "group": group,
            "treatment": np.where(is_ts, "time-series", "steady-state"),
            "time": time,
        },
        index=meta.index,
    )


def _atgenexpress_sheet() -> pd.DataFrame | None:
    from ..io.datasets import dataset_path

    try:
        sheet = pd.read_csv(dataset_path("atgenexpress-samples"), dtype=str)
    except (TfcnnInputError, OSError, pd.errors.ParserError):  # pragma: no cover
        return None
    if "sample_id" not in sheet:  # pragma: no cover - unexpected file
        return None
    sheet["sample_id"] = sheet["sample_id"].str.strip()
    treatment = sheet["treatment"].where(sheet["treatment"].notna(), sheet["source"])
    out = pd.DataFrame(
        {
            "source": "atgenexpress-samples",
            "treatment": treatment,
            "tissue": sheet["tissue"],
            "time": pd.to_numeric(sheet["time"], errors="coerce"),
            "_missing": sheet[["treatment", "tissue", "time"]].isna().sum(axis=1),
        }
    )
    out.index = sheet["sample_id"]
    out = out.sort_values("_missing", kind="stable")
    out = out[~out.index.duplicated(keep="first")].drop(columns="_missing")
    return out


def annotation_summary(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Counts of each annotation value (group, treatment, tissue, time) in ``frame``."""
    out: dict[str, dict[str, int]] = {}
    for col in ANNOTATION_FIELDS:
        if col in frame:
            counts = frame[col].dropna().astype(str).value_counts()
            if len(counts):
                out[col] = {k: int(v) for k, v in counts.items()}
    return out
