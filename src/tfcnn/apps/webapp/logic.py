"""What the web app's server does, as plain functions (tested without a browser).

The Shiny server in :mod:`tfcnn.apps.webapp.app` only wires inputs to these functions and
their results to outputs. Nothing here touches Shiny, so every rule (limits, upload
caps, which models are offered, what the page shows) is testable directly.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...errors import TfcnnInputError
from ...evaluation.evaluate import card_line
from ...explain import explain_pair, plot_pair
from ...inference.predict import (
    DEFAULT_MAX_REGULATORS,
    DEFAULT_MAX_TARGETS,
    XLSX_MAX_ROWS,
    Prediction,
    Predictor,
    QueryLimits,
    to_text,
    write_xlsx,
)
from ...io.idlists import ids_from_bytes, split_ids
from .limits import DEFAULT_MAX_CONCURRENT, DEFAULT_MAX_PAIRS_IN_MEMORY

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 5_000_000
#: Models kept loaded at once by the server (each holds its matrix and engine).
DEFAULT_MAX_MODELS = 4
#: Most (regulator, target) pairs per web query: the table of a query is held in the
#: server's memory for its downloads (about 100 MB per million pairs).
DEFAULT_MAX_PAIRS = 1_000_000
DISPLAY_ROWS = 5_000  # rows sent to the page; downloads hold every row
DISPLAY_ISSUES = 200  # unused IDs listed on the page; the XLSX download lists all
#: XLSX downloads are offered up to this many rows; larger tables as CSV only. Measured:
#: 100,000 rows take openpyxl 16 s and 400 MiB (CSV: 0.35 s).
XLSX_WEB_MAX_ROWS = 100_000
#: A list may hold duplicates and unknown IDs, but more than this many times the query
#: limit is refused before any ID is looked up.
TOKEN_FACTOR = 2
#: Longest text accepted in one ID box (characters); the page refuses longer pastes
#: before sending them (the websocket carries at most 16 MiB).
MAX_TEXT_CHARS = 4_000_000


@dataclass(frozen=True)
class AppSettings:
    """What `tfcnn serve` configures."""

    default_model: str | None = None
    max_regulators: int = DEFAULT_MAX_REGULATORS
    max_targets: int = DEFAULT_MAX_TARGETS
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pairs: int = DEFAULT_MAX_PAIRS
    max_models: int = DEFAULT_MAX_MODELS
    max_concurrent: int = DEFAULT_MAX_CONCURRENT  # queries scored at once, server-wide
    max_pairs_in_memory: int = DEFAULT_MAX_PAIRS_IN_MEMORY  # result pairs held, server-wide

    @property
    def limits(self) -> QueryLimits:
        return QueryLimits(self.max_regulators, self.max_targets)


# -- models --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelChoice:
    """One entry of the model selector."""

    key: str  # what the selector returns: a registry name or a directory
    path: Path  # the model directory, resolved when the server started
    label: str
    origin: str
    description: str
    test_auroc: float | None
    n_samples: int
    n_genes: int
    has_matrix: bool = True  # False: the model carries no expression matrix to score on
    card: str = ""  # the honest figure: within-target AUROC under its protocol
    protocol: str = ""  # split / negatives of the test AUROC

    @property
    def usable(self) -> bool:
        """True when the web app can score with it (it carries its expression matrix)."""
        return self.has_matrix and self.n_genes > 0


def model_choices(default_model: str | None = None) -> list[ModelChoice]:
    """Bundled and user-registered models (and ``default_model`` if it is a directory)."""
    from ...model.estimator import PairCNN
    from ...model.files import EXPRESSION_FILE
    from ...model.registry import list_models

    out = []
    for e in list_models():
        has_matrix = (Path(e.path) / EXPRESSION_FILE).is_file()
        out.append(
            _choice(e.name, e.path, e.origin, e.description, e.test_auroc, e.metadata, has_matrix)
        )
    if default_model and default_model not in {c.key for c in out}:
        path = Path(default_model)
        if not path.is_dir():
            known = ", ".join(c.key for c in out) or "none"
            raise TfcnnInputError(
                f"--model {default_model!r} is neither a registered model nor a model "
                f"directory (registered: {known}); see 'tfcnn models'."
            )
        record = PairCNN.load(path).record_
        meta = record.to_json()
        auroc = record.test_auroc
        prov = (record.provenance or {}).get("description")
        has_matrix = record.zscores is not None
        out.insert(
            0, _choice(str(path), path, "directory", prov or str(path), auroc, meta, has_matrix)
        )
    return out


def default_choice(choices: list[ModelChoice], requested: str | None = None) -> str | None:
    """The model selected when the page opens: the one asked for, else the first usable."""
    if requested:
        return requested
    ranked = [c for c in choices if c.usable] or list(choices)
    return ranked[0].key if ranked else None


def _choice(
    key: str,
    path: Path,
    origin: str,
    description: str,
    auroc: float | None,
    meta: dict[str, Any],
    has_matrix: bool = True,
) -> ModelChoice:
    auroc_text = "test AUROC n/a" if auroc is None else f"test AUROC {auroc:.3f}"
    genes = len(meta.get("genes") or [])
    missing = "" if has_matrix and genes else "; no expression matrix"
    data = meta.get("data") or {}
    protocol = f"{data.get('split', '?')} split, {data.get('negatives', '?')} negatives"
    return ModelChoice(
        key=key,
        path=Path(os.path.realpath(path)),
        label=f"{Path(key).name or key} ({origin}; {auroc_text}{missing})",
        origin=origin,
        description=description,
        test_auroc=auroc,
        n_samples=len(meta.get("samples") or []),
        n_genes=genes,
        has_matrix=has_matrix,
        card=card_line(meta.get("evaluation")),
        protocol=protocol if data else "",
    )


class PredictorCache:
    """One :class:`Predictor` per *offered* model, built on first use (thread-safe).

    Only the keys in ``choices`` (what the page's selector offered) can be loaded: any
    other value is refused with one message, whatever exists on the server, so a client
    can neither load an unlisted model nor probe which paths exist. Entries are keyed by
    the model's real path (two keys for one model share one entry) and the least
    recently used is dropped beyond ``max_models``.
    """

    def __init__(self, choices: list[ModelChoice], max_models: int = DEFAULT_MAX_MODELS) -> None:
        self._lock = threading.Lock()
        self._paths = {c.key: c.path for c in choices}
        self._usable = {c.key: c.usable for c in choices}
        self._items: OrderedDict[Path, Predictor] = OrderedDict()
        self.max_models = max(1, int(max_models))

    @property
    def keys(self) -> list[str]:
        """The model keys this cache accepts (those the page offers)."""
        return list(self._paths)

    def get(self, key: str) -> Predictor:
        """The predictor of an offered model; TfcnnInputError for anything else."""
        path = self._paths.get(key) if isinstance(key, str) else None
        if path is None:
            raise TfcnnInputError(
                "unknown model: choose one of the models listed in the 'Model' selector."
            )
        if not self._usable[key]:
            raise TfcnnInputError(
                f"model {key} carries no expression matrix, so the web app cannot "
                "score with it: choose another model, or use 'tfcnn predict --model "
                f"{key} --expression FILE' with a matrix of the model's samples."
            )
        with self._lock:
            predictor = self._items.get(path)
            if predictor is None:
                predictor = Predictor(path, name=key)
                self._items[path] = predictor
                while len(self._items) > self.max_models:
                    self._items.popitem(last=False)
            self._items.move_to_end(path)
            return predictor

    def __len__(self) -> int:
        return len(self._items)


# -- inputs --------------------------------------------------------------------------------
#: What to do with an uploaded ID file that is not text, or holds no ID.
UPLOAD_ADVICE = "Save the IDs as plain text (one per line, or a CSV column) and upload that file."
UPLOAD_EMPTY_ADVICE = (
    "upload a text file with one ID per line, or IDs separated by commas or spaces."
)


def read_upload(
    file_info: list[dict[str, Any]] | None,
    max_bytes: int,
    what: str,
    upload_root: str | os.PathLike[str] | None,
) -> list[str]:
    """IDs from a Shiny file input value.

    Only files that Shiny itself stored for this session are read: a ``datapath`` must
    be a regular file inside ``upload_root`` (the session's upload folder). A client can
    set the input's value to anything, so any other path is refused without being
    opened or even tested for existence. Refuses, with a message naming the file:
    files over ``max_bytes``, files without any ID, and files that are not text. Files
    are decoded and split as every ID list is (:mod:`tfcnn.io.idlists`).
    """
    if not file_info:
        return []
    if not isinstance(file_info, list | tuple):
        raise TfcnnInputError(f"the {what} file did not arrive; upload it again.")
    tokens: list[str] = []
    for fi in file_info:
        if not isinstance(fi, dict):
            raise TfcnnInputError(f"the {what} file did not arrive; upload it again.")
        name = str(fi.get("name", "file"))[:200]
        path = _uploaded_path(fi.get("datapath"), upload_root)
        if path is None:
            raise TfcnnInputError(f"{what} file {name!r} did not arrive; upload it again.")
        size = path.stat().st_size  # the size on disk, whatever was claimed
        if size > max_bytes:
            raise TfcnnInputError(
                f"{what} file {name!r} is {size / 1e6:.1f} MB; files of at most "
                f"{max_bytes / 1e6:.1f} MB are accepted. Upload a shorter list."
            )
        label = f"{what} file {name!r}"
        tokens += ids_from_bytes(path.read_bytes(), label, UPLOAD_ADVICE, UPLOAD_EMPTY_ADVICE).ids
    return tokens


def _uploaded_path(datapath: Any, upload_root: str | os.PathLike[str] | None) -> Path | None:
    """``datapath`` when it is a regular file Shiny stored under ``upload_root``, else None."""
    if upload_root is None or not isinstance(datapath, str) or not datapath:
        return None
    root_text = Path(os.path.normpath(upload_root))
    root = Path(os.path.realpath(upload_root))
    raw = Path(datapath)
    if not raw.is_absolute() or ".." in raw.parts or "\x00" in datapath:
        return None
    # Decide from the text alone first: nothing outside the folder is ever touched.
    text = Path(os.path.normpath(raw))
    if not (text.is_relative_to(root_text) or text.is_relative_to(root)):
        return None
    real = Path(os.path.realpath(raw))
    if not real.is_relative_to(root) or raw.is_symlink():
        return None
    try:
        mode = real.lstat().st_mode
    except OSError:
        return None
    return real if stat.S_ISREG(mode) else None


def gather_ids(text: str | None, upload: list[str], cap: int, what: str) -> list[str]:
    """Typed IDs then uploaded ones; refuses lists far beyond the query limit early.

    A list may be longer than ``cap`` (duplicates and unknown IDs are reported, not
    scored), but not more than ``TOKEN_FACTOR`` times longer: such a list is refused
    before any ID is looked up, so a huge paste costs the server almost nothing.
    """
    text = text or ""
    accepted = cap * TOKEN_FACTOR
    advice = "Split the list into smaller queries, or use 'tfcnn predict' for large runs."
    if len(text) > MAX_TEXT_CHARS:
        raise TfcnnInputError(
            f"the {what} box holds {len(text):,} characters; at most {MAX_TEXT_CHARS:,} are "
            f"accepted, and at most {cap:,} {what}s are scored per query. {advice}"
        )
    tokens = split_ids(text) + list(upload)
    if len(tokens) > accepted:
        raise TfcnnInputError(
            f"{len(tokens):,} {what} IDs given; at most {cap:,} {what}s are scored per query "
            f"(lists of up to {accepted:,} IDs are accepted, to allow for duplicates and "
            f"unknown IDs). {advice}"
        )
    return tokens


# -- running a query ------------------------------------------------------------------------
@dataclass
class QueryOutcome:
    """A query's result or a message for the page (never a traceback)."""

    prediction: Prediction | None = None
    error: str | None = None

    @property
    def n_pairs(self) -> int:
        """Rows of the result table (0 without a result)."""
        return 0 if self.prediction is None else len(self.prediction.table)


def run_query(
    cache: PredictorCache,
    model_key: str,
    regulators: list[str],
    targets: list[str] | None,
    limits: QueryLimits,
    max_pairs: int | None = None,
) -> QueryOutcome:
    """Resolve, check limits, score; every failure becomes a short message."""
    try:
        if not model_key:
            raise TfcnnInputError(
                "no model selected; train one (tfcnn train) and register it (tfcnn models add), "
                "or start the server with 'tfcnn serve --model DIR'."
            )
        if not regulators:
            raise TfcnnInputError("give at least one regulator ID (type, paste or upload).")
        predictor = cache.get(model_key)
        if max_pairs is not None:
            check_pair_count(predictor, regulators, targets or None, max_pairs)
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


def check_pair_count(
    predictor: Predictor, regulators: list[str], targets: list[str] | None, max_pairs: int
) -> None:
    """Refuse a query of more than ``max_pairs`` pairs before scoring it."""
    n_genes = len(predictor.genes)
    if len(regulators) * (len(targets) if targets else n_genes) <= max_pairs:
        return  # an upper bound: IDs are not even looked up
    n_r = predictor.resolve(regulators, "regulator").rows.size
    n_t = predictor.resolve(targets, "target").rows.size if targets else n_genes
    if n_r * n_t > max_pairs:
        whose = "" if targets else " (no targets given: every gene of the model)"
        raise TfcnnInputError(
            f"this query has {n_r:,} regulators x {n_t:,} targets{whose} = {n_r * n_t:,} "
            f"pairs; the web app scores at most {max_pairs:,} pairs per query. Give fewer "
            "regulators or targets, or use 'tfcnn predict' (no limit) or 'tfcnn scan'."
        )


def summary_text(p: Prediction) -> str:
    """One line above the table."""
    shown = min(len(p.table), DISPLAY_ROWS)
    more = f"; the {shown:,} highest are shown, downloads hold all" if shown < len(p.table) else ""
    return (
        f"{len(p.table):,} pairs scored: {p.n_regulators:,} regulator(s) x "
        f"{p.n_targets:,} target(s){more}."
    )


#: Columns shown on the page, with plain names (downloads keep every column, as named).
PAGE_COLUMNS = {
    "regulator": "regulator",
    "regulator_agi": "regulator AGI",
    "regulator_probeset": "regulator probeset",
    "target": "target",
    "target_agi": "target AGI",
    "target_probeset": "target probeset",
    "probability": "probability",
    "percentile_in_regulator_row": "rank within regulator (percentile)",
    "regulator_base_rate": "regulator high with (share of genes)",
    "pair_in_training": "pair in training",
    "known_interaction": "known pair",
}


def display_table(table: pd.DataFrame, rows: int = DISPLAY_ROWS) -> pd.DataFrame:
    """The rows and columns shown on the page (downloads keep every row and column).

    ID columns that are empty or repeat the scored ID are hidden; numbers are rounded
    (probabilities to 3 decimals, percentiles to 1) and columns get plain names.
    """
    view = table.head(rows)[[c for c in PAGE_COLUMNS if c in table.columns]].copy()
    for role in ("regulator", "target"):
        for col in (f"{role}_agi", f"{role}_probeset"):
            values = view[col].astype(str)
            if not (values != "").any() or values.equals(view[role].astype(str)):
                view = view.drop(columns=col)  # empty, or the same as the ID column
    view["probability"] = view["probability"].round(3)
    if "percentile_in_regulator_row" in view:
        view["percentile_in_regulator_row"] = view["percentile_in_regulator_row"].round(1)
        view["regulator_base_rate"] = view["regulator_base_rate"].round(2)
    return view.rename(columns=PAGE_COLUMNS).reset_index(drop=True)


def unused_for_display(p: Prediction, limit: int = DISPLAY_ISSUES) -> tuple[list, int]:
    """(the unused IDs listed on the page, how many more there are)."""
    return list(p.issues[:limit]), max(0, len(p.issues) - limit)


def offers_xlsx(p: Prediction) -> bool:
    """Whether the page offers the XLSX download (the CSV is always offered)."""
    return len(p.table) <= XLSX_WEB_MAX_ROWS


def csv_bytes(p: Prediction) -> bytes:
    """The full table as CSV (what `tfcnn predict -o x.csv` writes)."""
    return to_text(p.table, "csv").encode("utf-8")


def xlsx_bytes(p: Prediction) -> bytes:
    """The full table (and unused IDs) as an XLSX workbook."""
    if len(p.table) > min(XLSX_MAX_ROWS, XLSX_WEB_MAX_ROWS):
        raise TfcnnInputError(
            f"{len(p.table):,} rows: the web app writes XLSX files of at most "
            f"{XLSX_WEB_MAX_ROWS:,} rows; download the CSV instead (or use 'tfcnn predict "
            "-o file.xlsx')."
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

    # Fixed margins: Shiny replaces a layout engine by 'tight' (with a warning), and
    # fixed margins draw faster (this figure is drawn for every query).
    fig, ax = plt.subplots(figsize=(7, 3.2))
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.16, top=0.92)
    _keep_margins(fig)
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
    """A pair's two z-scored profiles with its activation window; profiles only on failure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_pair = predictor.pair_profiles(regulator, target)
    try:
        explanation = explain_pair(predictor.model, x_pair, predictor.samples)
        return plot_pair(explanation, x_pair, regulator, target), None
    except Exception as exc:  # noqa: BLE001 - fall back to the plain profiles
        log.warning("explain_pair failed for %s -> %s: %s", regulator, target, exc)
        note = f"activation window unavailable ({type(exc).__name__}); profiles only."
    fig, ax = plt.subplots(figsize=(7, 3.2))
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.16, top=0.90)
    _keep_margins(fig)
    xs = np.arange(x_pair.shape[1])
    ax.plot(xs, x_pair[0], label=f"regulator {regulator}", color="#d62728")
    ax.plot(xs, x_pair[1], label=f"target {target}", color="#1f77b4")
    ax.set_xlabel("sample (column of the model's matrix)")
    ax.set_ylabel("z-score")
    ax.set_title(f"{regulator} -> {target}: probability {probability:.4f}", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return fig, note


def _keep_margins(fig) -> None:
    """Keep the fixed margins: Shiny imposes 'tight' layout (~0.05 s a figure) otherwise."""
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    fig.set_layout_engine(PlaceHolderLayoutEngine(adjust_compatible=True, colorbar_gridspec=True))


def env_settings() -> AppSettings:
    """Settings from TFCNN_SERVE_* environment variables (used when run by uvicorn)."""
    return AppSettings(
        default_model=os.environ.get("TFCNN_SERVE_MODEL") or None,
        max_regulators=_env_int("TFCNN_SERVE_MAX_REGULATORS", DEFAULT_MAX_REGULATORS),
        max_targets=_env_int("TFCNN_SERVE_MAX_TARGETS", DEFAULT_MAX_TARGETS),
        max_upload_bytes=_env_int("TFCNN_SERVE_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
        max_pairs=_env_int("TFCNN_SERVE_MAX_PAIRS", DEFAULT_MAX_PAIRS),
    )


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip().replace("_", "")
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise TfcnnInputError(f"{name}={os.environ[name]!r}: give a whole number above 0.")
    return int(value)
