"""What the web app's server does, as plain functions (tested without a browser).

The Shiny server in :mod:`tfcnn.webapp.app` only wires inputs to these functions and
their results to outputs. Nothing here touches Shiny, so every rule (limits, upload
caps, which models are offered, what the page shows) is testable directly.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TfcnnInputError
from ..predict import (
    DEFAULT_MAX_REGULATORS,
    DEFAULT_MAX_TARGETS,
    XLSX_MAX_ROWS,
    Prediction,
    Predictor,
    QueryLimits,
    split_ids,
    to_text,
    write_xlsx,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 5_000_000
DISPLAY_ROWS = 5_000  # rows sent to the page; downloads hold every row
#: Refuse absurdly long pasted lists before resolving them (IDs, not pairs).
TOKEN_FACTOR = 4


@dataclass(frozen=True)
class AppSettings:
    """What `tfcnn serve` configures."""

    default_model: str | None = None
    max_regulators: int = DEFAULT_MAX_REGULATORS
    max_targets: int = DEFAULT_MAX_TARGETS
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES

    @property
    def limits(self) -> QueryLimits:
        return QueryLimits(self.max_regulators, self.max_targets)


# -- models --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelChoice:
    """One entry of the model selector."""

    key: str  # what the selector returns: a registry name or a directory
    label: str
    origin: str
    description: str
    test_auroc: float | None
    n_samples: int
    n_genes: int


def model_choices(default_model: str | None = None) -> list[ModelChoice]:
    """Bundled and user-registered models (and ``default_model`` if it is a directory)."""
    from ..model import PairCNN
    from ..registry import list_models

    out = []
    for e in list_models():
        out.append(_choice(e.name, e.origin, e.description, e.test_auroc, e.metadata))
    if default_model and default_model not in {c.key for c in out}:
        path = Path(default_model)
        if not path.is_dir():
            known = ", ".join(c.key for c in out) or "none"
            raise TfcnnInputError(
                f"--model {default_model!r} is neither a registered model nor a model "
                f"directory (registered: {known}); see 'tfcnn models'."
            )
        meta = PairCNN.load(path).metadata_
        auroc = ((meta.get("metrics") or {}).get("test") or {}).get("auroc")
        prov = (meta.get("provenance") or {}).get("description")
        out.insert(0, _choice(str(path), "directory", prov or str(path), auroc, meta))
    return out


def _choice(
    key: str, origin: str, description: str, auroc: float | None, meta: dict[str, Any]
) -> ModelChoice:
    auroc_text = "test AUROC n/a" if auroc is None else f"test AUROC {auroc:.3f}"
    return ModelChoice(
        key=key,
        label=f"{Path(key).name or key} ({origin}; {auroc_text})",
        origin=origin,
        description=description,
        test_auroc=auroc,
        n_samples=len(meta.get("samples") or []),
        n_genes=len(meta.get("genes") or []),
    )


class PredictorCache:
    """One :class:`Predictor` per model, built on first use (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Predictor] = {}

    def get(self, key: str) -> Predictor:
        from ..registry import resolve_model

        with self._lock:
            if key not in self._items:
                self._items[key] = Predictor(resolve_model(key), name=key)
            return self._items[key]


# -- inputs --------------------------------------------------------------------------------
def read_upload(file_info: list[dict[str, Any]] | None, max_bytes: int, what: str) -> list[str]:
    """IDs from a Shiny file input value; refuses files over ``max_bytes``."""
    if not file_info:
        return []
    tokens: list[str] = []
    for fi in file_info:
        name = str(fi.get("name", "file"))
        size = int(fi.get("size") or 0)
        path = Path(str(fi.get("datapath", "")))
        if size > max_bytes or (path.is_file() and path.stat().st_size > max_bytes):
            raise TfcnnInputError(
                f"{what} file {name!r} is {size / 1e6:.1f} MB; files of at most "
                f"{max_bytes / 1e6:.1f} MB are accepted. Upload a shorter list."
            )
        if not path.is_file():
            raise TfcnnInputError(f"{what} file {name!r} did not arrive; upload it again.")
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        tokens += split_ids(text)
    return tokens


def gather_ids(text: str | None, upload: list[str], cap: int, what: str) -> list[str]:
    """Typed IDs then uploaded ones; refuses lists far beyond the query limit early."""
    tokens = split_ids(text or "") + list(upload)
    if len(tokens) > cap * TOKEN_FACTOR:
        raise TfcnnInputError(
            f"{len(tokens):,} {what} IDs given; at most {cap:,} {what}s are scored per query. "
            "Split the list into smaller queries."
        )
    return tokens


# -- running a query ------------------------------------------------------------------------
@dataclass
class QueryOutcome:
    """A query's result or a message for the page (never a traceback)."""

    prediction: Prediction | None = None
    error: str | None = None


def run_query(
    cache: PredictorCache,
    model_key: str,
    regulators: list[str],
    targets: list[str] | None,
    limits: QueryLimits,
) -> QueryOutcome:
    """Resolve, check limits, score; every failure becomes a short message."""
    try:
        if not model_key:
            raise TfcnnInputError("no model selected; register one with 'tfcnn models add'.")
        if not regulators:
            raise TfcnnInputError("give at least one regulator ID (type, paste or upload).")
        predictor = cache.get(model_key)
        return QueryOutcome(prediction=predictor.predict(regulators, targets or None, limits))
    except TfcnnInputError as exc:
        return QueryOutcome(error=str(exc))
    except MemoryError:
        return QueryOutcome(error="the query needs more memory than this server has; split it.")
    except Exception as exc:  # noqa: BLE001 - the page must never show a traceback
        log.exception("query failed")
        return QueryOutcome(
            error=f"internal error ({type(exc).__name__}); the details are in the server's log."
        )


def summary_text(p: Prediction) -> str:
    """One line above the table."""
    shown = min(len(p.table), DISPLAY_ROWS)
    more = f"; the {shown:,} highest are shown, downloads hold all" if shown < len(p.table) else ""
    return (
        f"{len(p.table):,} pairs scored: {p.n_regulators:,} regulator(s) x "
        f"{p.n_targets:,} target(s){more}."
    )


def display_table(table: pd.DataFrame, rows: int = DISPLAY_ROWS) -> pd.DataFrame:
    """The rows and columns shown on the page (downloads keep every row and column).

    ID columns that are empty or repeat the scored ID are hidden; probabilities are
    rounded to 4 decimals.
    """
    view = table.head(rows).copy()
    for role in ("regulator", "target"):
        for col in (f"{role}_agi", f"{role}_probeset"):
            values = view[col].astype(str)
            if not (values != "").any() or values.equals(view[role].astype(str)):
                view = view.drop(columns=col)  # empty, or the same as the ID column
    view["probability"] = view["probability"].round(4)
    return view.reset_index(drop=True)


def csv_bytes(p: Prediction) -> bytes:
    """The full table as CSV (what `tfcnn predict -o x.csv` writes)."""
    return to_text(p.table, "csv").encode("utf-8")


def xlsx_bytes(p: Prediction) -> bytes:
    """The full table (and unused IDs) as an XLSX workbook."""
    if len(p.table) > XLSX_MAX_ROWS:
        raise TfcnnInputError(
            f"{len(p.table):,} rows do not fit in one Excel sheet; download the CSV instead."
        )
    buf = io.BytesIO()
    write_xlsx(p.table, buf, p.issues_frame())
    return buf.getvalue()


# -- plots ---------------------------------------------------------------------------------
def distribution_figure(p: Prediction, distribution: dict | None):
    """The query's probabilities over the model's training distribution, by class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    bins = np.linspace(0, 1, 21)
    if distribution:
        for cls, colour in (("negative", "#1f77b4"), ("positive", "#d62728")):
            q = np.asarray(distribution.get(cls, {}).get("quantiles") or [], dtype=float)
            if q.size:
                # 101 quantiles: each percent of the class between two neighbours.
                share, _ = np.histogram(q[1:] / 2 + q[:-1] / 2, bins=bins)
                ax.stairs(
                    share / max(share.sum(), 1),
                    bins,
                    color=colour,
                    linewidth=2,
                    label=f"training {cls}s (n={distribution[cls].get('n', '?'):,})",
                )
    share, _ = np.histogram(p.table["probability"].to_numpy(), bins=bins)
    ax.stairs(
        share / max(share.sum(), 1),
        bins,
        fill=True,
        alpha=0.35,
        color="#555555",
        label=f"this query ({len(p.table):,} pairs)",
    )
    ax.set_xlabel("predicted probability of regulation")
    ax.set_ylabel("share of pairs")
    ax.set_xlim(0, 1)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    if not distribution:
        ax.set_title("the model stores no training distribution", fontsize=9)
    return fig


def pair_figure(predictor: Predictor, regulator: str, target: str, probability: float):
    """A pair's two z-scored profiles; shaded activation window when tfcnn.explain exists."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_pair = predictor.pair_profiles(regulator, target)
    explain = _explain_module()
    if explain is None:
        note = "activation windows appear here once tfcnn.explain is installed."
    else:
        try:
            explanation = explain.explain_pair(predictor.model, x_pair, predictor.samples)
            fig = explain.plot_pair(explanation, x_pair, regulator, target)
            if fig is not None:
                return fig, None
            note = "the explanation gave no figure; profiles only."
        except Exception as exc:  # noqa: BLE001 - fall back to the plain profiles
            log.warning("explain_pair failed for %s -> %s: %s", regulator, target, exc)
            note = f"activation window unavailable ({type(exc).__name__}); profiles only."
    fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    xs = np.arange(x_pair.shape[1])
    ax.plot(xs, x_pair[0], label=f"regulator {regulator}", color="#d62728")
    ax.plot(xs, x_pair[1], label=f"target {target}", color="#1f77b4")
    ax.set_xlabel("sample (column of the model's matrix)")
    ax.set_ylabel("z-score")
    ax.set_title(f"{regulator} -> {target}: probability {probability:.4f}", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return fig, note


def explain_available() -> bool:
    """True when tfcnn.explain (activation windows) can be used."""
    return _explain_module() is not None


def _explain_module():
    """tfcnn.explain if present (written separately); None otherwise."""
    try:
        import importlib

        module = importlib.import_module("tfcnn.explain")
    except ImportError:
        return None
    if not (hasattr(module, "explain_pair") and hasattr(module, "plot_pair")):
        return None
    return module


def env_settings() -> AppSettings:
    """Settings from TFCNN_SERVE_* environment variables (used when run by uvicorn)."""
    return AppSettings(
        default_model=os.environ.get("TFCNN_SERVE_MODEL") or None,
        max_regulators=int(os.environ.get("TFCNN_SERVE_MAX_REGULATORS", DEFAULT_MAX_REGULATORS)),
        max_targets=int(os.environ.get("TFCNN_SERVE_MAX_TARGETS", DEFAULT_MAX_TARGETS)),
        max_upload_bytes=int(
            os.environ.get("TFCNN_SERVE_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES)
        ),
    )
