"""What the web app's server does, as plain functions (tested without a browser).

The Shiny server in :mod:`tfcnn.apps.webapp.app` only wires inputs to these functions and
their results to outputs. Nothing here touches Shiny, so every rule (limits, upload
caps, which models are offered, what the page shows) is testable directly.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import os
import re
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...errors import TfcnnInputError
from ...evaluation.card import card_line
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
from ...io.idlists import ids_from_bytes, split_ids, with_symbols
from ...palette import OKABE_ITO, TARGET_COLOUR, TF_COLOUR, WINDOW_COLOUR
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
    within_target: float | None = None  # the card's within-target AUROC
    versus_control: tuple[str, float, float, float] | None = None  # control, diff, CI low/high

    @property
    def usable(self) -> bool:
        """True when the web app can score with it (it carries its expression matrix)."""
        return self.has_matrix and self.n_genes > 0


#: Where ``tfcnn demo`` (so ``make demo``) writes, relative to the folder it ran in:
#: results/demo, results/demo-2, ... each with models/<protocol>/.
DEMO_RESULTS = Path("results")
_DEMO_RUN = re.compile(r"^demo(?:-(\d+))?$")


def demo_model_dirs(base: str | os.PathLike[str] = DEMO_RESULTS) -> list[Path]:
    """The models of the newest ``tfcnn demo`` run under ``base``, strictest protocol first.

    ``make demo`` then ``tfcnn serve`` in the same folder must find them: the demo's
    models carry their expression matrix, unlike the bundled published model.
    """
    try:
        runs = [
            (int(m.group(1) or 1), entry)
            for entry in Path(base).iterdir()
            if (m := _DEMO_RUN.match(entry.name)) and (entry / "models").is_dir()
        ]
    except OSError:
        return []
    if not runs:
        return []
    newest = max(runs)[1] / "models"
    found = [d for d in newest.iterdir() if (d / "model.json").is_file()]

    def strictest_first(d: Path) -> tuple[bool, bool, str]:
        return ("tf-holdout" not in d.name, "tf-matched" not in d.name, d.name)

    return sorted(found, key=strictest_first)


def model_choices(
    default_model: str | None = None, results: str | os.PathLike[str] | None = DEMO_RESULTS
) -> list[ModelChoice]:
    """Bundled and registered models, the newest demo run's (under ``results``), and
    ``default_model`` if it is a directory."""
    from ...model.registry import list_models
    from ...model.stored import EXPRESSION_FILE

    out = []
    for e in list_models():
        has_matrix = (Path(e.path) / EXPRESSION_FILE).is_file()
        out.append(
            _choice(e.name, e.path, e.origin, e.description, e.test_auroc, e.metadata, has_matrix)
        )
    seen = {c.path for c in out}
    for d in demo_model_dirs(results) if results is not None else []:
        try:
            choice = _dir_choice(str(d), d, f"trained by tfcnn demo ({d.parent.parent})")
        except TfcnnInputError as exc:  # a damaged demo folder: skipped, never fatal
            log.warning("demo model %s skipped: %s", d, exc)
            continue
        if choice.path not in seen:
            out.append(choice)
            seen.add(choice.path)
    if default_model and default_model not in {c.key for c in out}:
        path = Path(default_model)
        if not path.is_dir():
            known = ", ".join(c.key for c in out) or "none"
            raise TfcnnInputError(
                f"--model {default_model!r} is neither a registered model nor a model "
                f"directory (registered: {known}); see 'tfcnn models'."
            )
        out.insert(0, _dir_choice(str(path), path, "directory"))
    return out


def _dir_choice(key: str, path: Path, origin: str) -> ModelChoice:
    """The choice for a model directory (read to check it, never followed elsewhere)."""
    from ...model.estimator import PairCNN

    record = PairCNN.load(path).record_
    prov = (record.provenance or {}).get("description")
    meta = record.to_json()
    return _choice(
        key, path, origin, prov or key, record.test_auroc, meta, record.zscores is not None
    )


def no_usable_model_hint(
    choices: list[ModelChoice], results: str | os.PathLike[str] | None = DEMO_RESULTS
) -> str | None:
    """What to do when no offered model can score here (None when one can)."""
    if any(c.usable for c in choices):
        return None
    offered = ", ".join(c.key for c in choices) or "none"
    demo = Path(results or DEMO_RESULTS) / "demo" / "models"
    return (
        f"No model offered here can score in the web app (offered: {offered}; the web app "
        "needs a model that carries its expression matrix). Run 'make demo' (or 'tfcnn demo') "
        f"and start 'tfcnn serve' in the same folder: it offers the models under {demo}/. "
        f"Or name one: tfcnn serve --model {demo}/tf-holdout-split__tf-matched-negatives"
    )


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
    genes = len(meta.get("genes") or [])
    samples = len(meta.get("samples") or []) or int(
        (meta.get("architecture") or {}).get("n_samples") or 0
    )
    missing = "" if has_matrix and genes else "; no expression matrix"
    data = meta.get("data") or {}
    protocol = f"{data.get('split', '?')} split, {data.get('negatives', '?')} negatives"
    card = meta.get("evaluation")
    within = (card or {}).get("within_target_auroc")
    versus = None
    if card and card.get("difference_within_target") is not None:
        low, high = card.get("difference_ci") or [None, None]
        if low is not None and high is not None:
            diff = float(card["difference_within_target"])
            versus = (str(card.get("best_control") or "control"), diff, float(low), float(high))
    if within is not None:
        headline = f"within-target AUROC {within:.3f}"
    elif auroc is not None:
        headline = f"pooled AUROC {auroc:.3f}, no honest figure"
    else:
        headline = "not evaluated"
    return ModelChoice(
        key=key,
        path=Path(os.path.realpath(path)),
        label=f"{Path(key).name or key} ({origin}; {headline}{missing})",
        origin=origin,
        description=description,
        test_auroc=auroc,
        n_samples=samples,
        n_genes=genes,
        has_matrix=has_matrix,
        card=card_line(card),
        protocol=protocol if data else "",
        within_target=within,
        versus_control=versus,
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
            others = [k for k, ok in self._usable.items() if ok]
            instead = (
                f"choose another model ({', '.join(others)})"
                if others
                else "run 'make demo' and start 'tfcnn serve' in the same folder (it then "
                "offers the demo's models)"
            )
            raise TfcnnInputError(
                f"model {key} carries no expression matrix, so the web app cannot "
                f"score with it: {instead}, or use 'tfcnn predict --model "
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
        regulators = with_symbols(regulators, predictor.index, "regulator")  # FLC -> AT5G10140
        if targets:
            targets = with_symbols(targets, predictor.index, "target")
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


#: Columns shown on the page: plain name -> what it means (the legend under the table).
#: Downloads keep every column, as named in ``COLUMN_HELP``.
LEGEND = {
    "regulator (TF)": "the transcription factor, as its AGI code (or probeset) with its gene "
    "symbol where AtRegNet names one",
    "target": "the gene it may regulate",
    "probability": "the model's score for the pair, 0 to 1 (3 decimals). Read it beside the "
    "next two columns: a TF the model recognises scores most genes high",
    "percentile among the TF's genes": "where this pair ranks among the TF's scores with every "
    "gene the model covers (100 = its highest): what the score says beyond the TF itself",
    "TF scores high with (% of genes)": "share of all covered genes this TF scores above 0.5; "
    "above 50% the probabilities of this TF read its identity, not the pair",
    "in training": "'training pair (memorised)': the model was shown this pair's answer, so "
    "its score is memorised, not predicted; 'held-out pair': kept out of training for "
    "testing; 'no': a new pair",
    "known pair": "the pair is among the interactions the model was trained from (yes/no; "
    "'unknown' when that cannot be told)",
    "regulator probeset": "the TF's ATH1 probeset",
    "target probeset": "the target's ATH1 probeset",
}
_IN_TRAINING = {
    "train positive": "training pair (memorised)",
    "train negative": "training pair (memorised)",
    "held-out positive": "held-out pair",
    "held-out negative": "held-out pair",
}


def display_table(table: pd.DataFrame, rows: int = DISPLAY_ROWS) -> pd.DataFrame:
    """The rows and columns shown on the page (downloads keep every row and column).

    Plain column names (:data:`LEGEND`), the probability next to the IDs (a phone shows
    the first three columns), symbols beside the IDs, probabilities with 3 decimals and
    percentages as whole numbers. Row ``i`` is row ``i`` of ``table``. Probeset columns
    are shown only when they add something (an AGI model's probesets).
    """
    head = table.head(rows)
    view = pd.DataFrame(index=pd.RangeIndex(len(head)))
    for role, name in (("regulator", "regulator (TF)"), ("target", "target")):
        ids = head[role].astype(str).to_numpy()
        sym = head.get(f"{role}_symbol", pd.Series([""] * len(head))).astype(str).to_numpy()
        view[name] = [f"{i} ({s})" if s and s != i else i for i, s in zip(ids, sym, strict=True)]
    view["probability"] = [f"{v:.3f}" for v in head["probability"].to_numpy(float)]
    if "percentile_in_regulator_row" in head:
        view["percentile among the TF's genes"] = _whole(head["percentile_in_regulator_row"])
        view["TF scores high with (% of genes)"] = _whole(head["regulator_base_rate"] * 100)
    if "pair_in_training" in head:
        view["in training"] = (
            head["pair_in_training"].astype(str).map(lambda v: _IN_TRAINING.get(v, v)).to_numpy()
        )
    view["known pair"] = head["known_interaction"].astype(str).to_numpy()
    for role in ("regulator", "target"):
        other = head[f"{role}_probeset"].astype(str)
        if (other != "").any() and not other.equals(head[role].astype(str)):
            view[f"{role} probeset"] = other.to_numpy()
    return view


def _whole(values: pd.Series) -> pd.Series:
    """Whole numbers (nullable: an undefined percentile stays empty)."""
    return pd.Series(np.round(values.to_numpy(float)), dtype="Float64").astype("Int64").to_numpy()


def legend_items(view: pd.DataFrame) -> list[tuple[str, str]]:
    """(column, meaning) for the columns of a displayed table."""
    return [(c, LEGEND[c]) for c in view.columns if c in LEGEND]


def shortcut_flags(p: Prediction) -> list[str]:
    """One plain-words flag per regulator that scores most genes high (issue 14's warning).

    Such a TF's probabilities read its identity, not the pair.
    """
    t = p.table
    if "regulator_scores_most_genes_high" not in t or t.empty:
        return []
    # drawn on the server's event loop for every query: only the flagged rows' three
    # columns are copied (~1 ms for 100,000 rows, not ~10)
    hub = t["regulator_scores_most_genes_high"].to_numpy(dtype=bool)
    if not hub.any():
        return []
    columns = [c for c in ("regulator", "regulator_base_rate", "regulator_symbol") if c in t]
    firsts = t.loc[hub, columns].drop_duplicates("regulator")  # in order of first row
    flags = []
    for row in firsts.itertuples(index=False):
        tf, share = row.regulator, float(row.regulator_base_rate)
        sym = str(row.regulator_symbol) if "regulator_symbol" in columns else ""
        name = f"{tf} ({sym})" if sym else str(tf)
        flags.append(
            f"Shortcut: {name} scores above 0.5 with {share:.0%} of all the genes the model "
            "covers. Its scores are reading the TF's identity, not the pair: the model "
            "recognises this TF and rates almost any gene high with it. Do not take its "
            "probabilities as evidence of regulation; at most, rank its genes by "
            "'percentile among the TF's genes'."
        )
    return flags


def training_note(p: Prediction) -> str | None:
    """How many result pairs the model was trained on (memorised, not predicted)."""
    # counted when the table was built (off the event loop), not by scanning it here
    n_train = p.n_training_pairs
    if not n_train:
        return None
    were = "was a training pair" if n_train == 1 else "were training pairs"
    return (
        f"{n_train:,} of these {len(p.table):,} pairs {were}, marked 'training pair "
        "(memorised)': the model was shown the answer while it learned, so such scores "
        "are memorised, not predicted. Judge the model on the other pairs."
    )


def coverage_text(choice: ModelChoice) -> str:
    """What the model can score, said before any query."""
    if not choice.usable:
        return (
            f"This model carries no expression matrix (it expects {choice.n_samples} samples), "
            "so it cannot score here."
        )
    return (
        f"Covers {choice.n_genes:,} genes x {choice.n_samples} samples: only these "
        f"{choice.n_genes:,} genes can be scored, as regulators or targets (IDs outside them "
        "are listed as not used). IDs: AGI codes, ATH1 probesets or gene symbols."
    )


def figures_text(choice: ModelChoice) -> dict[str, str]:
    """The honest figure, the headline one, and a caveat in plain words (model header)."""
    auroc = "n/a" if choice.test_auroc is None else f"{choice.test_auroc:.3f}"
    protocol = f" ({choice.protocol})" if choice.protocol else ""
    verdict = "not measured: this model records no comparison with controls."
    if choice.within_target is None:
        honest = f"none recorded ({choice.card}): treat the headline figure as an upper bound."
    else:
        honest = f"within-target AUROC {choice.within_target:.3f}{protocol}; 0.5 = a coin toss."
        if choice.versus_control is not None:
            control, diff, low, high = choice.versus_control
            control = control.replace("_", " ").replace("tf ", "TF ")
            ci = f"{diff:+.3f}, 95% CI {low:+.3f} to {high:+.3f}"
            if low > 0:
                verdict = (
                    f"some sign: it beats the best control that never reads the pair "
                    f"({control}) by {ci}."
                )
            elif high < 0:
                verdict = (
                    f"no sign: a control that never reads the pair ({control}) does better ({ci})."
                )
            else:
                verdict = (
                    "no sign: it cannot be told apart from a control that never reads the "
                    f"pair ({control}): {ci}."
                )
    shortcut = (
        "It was measured with the study's shortcut-prone protocol (random split, random "
        "negatives). "
        if "random split" in choice.protocol and "random negatives" in choice.protocol
        else ""
    )
    caveat = (
        f"Why two figures: {shortcut}The headline AUROC pools pairs of many TFs and targets, so "
        "a model earns it by recognising which genes are TFs or popular targets, without "
        "reading the pair. The within-target AUROC compares only pairs that share a target, "
        "and the controls score pairs without reading them: trust the model only where it "
        "beats them."
    )
    return {
        "verdict": verdict,
        "honest": honest,
        "headline": f"held-out test AUROC {auroc}{protocol}",
        "caveat": caveat,
    }


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
#: One colour, one meaning, in every plot of the page (Okabe-Ito: safe for colour-blind
#: readers). Red and green are never a pair here.
COLOURS = {
    "tf": TF_COLOUR,  # blue: the regulator (TF) profile
    "target": TARGET_COLOUR,  # orange: the target profile
    "positive": OKABE_ITO["bluish_green"],  # training positives (known regulatory pairs)
    "negative": OKABE_ITO["reddish_purple"],  # training negatives
    "query": "#999999",  # grey: this query's pairs
    "window": WINDOW_COLOUR,  # yellow: the samples the model weighted most
    "other": OKABE_ITO["black"],  # activation curves
}
COLOUR_KEY = (
    "Colours, the same in every plot: blue = the TF (regulator), orange = the target, "
    "green = training positives, purple = training negatives, grey = this query, "
    "yellow band = the samples the model weighted most."
)


#: A plot's size on the page in pixels (width, height; None: not known yet).
PlotSize = tuple[float | None, float | None]


#: The histogram bins of the distribution plot (probability 0-1 in steps of 0.05).
_BINS = np.linspace(0, 1, 21)


def _shares(values: np.ndarray) -> np.ndarray:
    share, _ = np.histogram(values, bins=_BINS)
    return share / max(share.sum(), 1)


def distribution_figure(p: Prediction, distribution: dict | None, size: PlotSize | None = None):
    """The query's probabilities over the model's training distribution, by class.

    ``size``: the plot's size on the page, so that margins and text fit it (a phone).
    """
    query = _shares(p.table["probability"].to_numpy())
    return _distribution_axes(distribution, size, query, f"this query ({len(p.table):,} pairs)")


def _distribution_axes(
    distribution: dict | None,
    size: PlotSize | None,
    query: np.ndarray,
    query_label: str,
    top: float | None = None,
):
    """The distribution figure; ``top`` fixes the y axis (else it fits the bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Fixed margins: Shiny replaces a layout engine by 'tight' (with a warning), and
    # fixed margins draw faster (this figure is drawn for every query).
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for cls, share, n in _training_shares(distribution):
        ax.stairs(share, _BINS, color=COLOURS[cls], linewidth=2, label=f"training {cls}s (n={n:,})")
    ax.stairs(query, _BINS, fill=True, alpha=0.5, color=COLOURS["query"], label=query_label)
    ax.set_xlabel("predicted probability of regulation")
    ax.set_ylabel("share of pairs")
    ax.set_xlim(0, 1)
    if top is not None:
        ax.set_ylim(0, top)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    if not distribution:
        ax.set_title("the model stores no training distribution", fontsize=9)
    _fit(fig, size)
    return fig


def _training_shares(distribution: dict | None) -> list[tuple[str, np.ndarray, Any]]:
    """(class, share per bin, n) of the training classes the model stores."""
    stored = distribution or {}
    out = []
    for cls in ("negative", "positive"):
        q = np.asarray(stored.get(cls, {}).get("quantiles") or [], dtype=float)
        if q.size:
            # 101 quantiles: each percent of the class between two neighbours.
            out.append((cls, _shares(q[1:] / 2 + q[:-1] / 2), stored[cls].get("n", "?")))
    return out


@functools.cache
def _pixels_class() -> Any:
    """An artist that copies an RGBA picture onto the canvas, unscaled (a figure image
    would resample it through masked arrays: ~25 ms a draw)."""
    from matplotlib.artist import Artist

    class Pixels(Artist):
        zorder = -1  # under the axes

        def __init__(self, pixels: np.ndarray) -> None:
            super().__init__()
            self._pixels = pixels

        def draw(self, renderer: Any) -> None:
            gc = renderer.new_gc()
            renderer.draw_image(gc, 0, 0, self._pixels[::-1])  # rows from the bottom
            gc.restore()

    return Pixels


class DistributionPlots:
    """The distribution plot for the web app, drawn in a fraction of the time.

    Everything but the query's bars (the training curves, axes, labels, legend) depends
    only on the model, the plot's size and the y axis, so it is drawn once and kept as
    pixels (the last ``max_backgrounds`` kinds). A query's figure is that picture plus
    one patch, which Shiny saves in ~22 ms instead of ~80: the event loop that draws it
    serves every session. The y axis runs to the bars' top rounded up to 0.05; the legend
    says "this query" (the count is in the summary above the table).
    """

    def __init__(self, max_backgrounds: int = 8) -> None:
        self._lock = threading.Lock()
        self._backgrounds: OrderedDict[tuple, tuple[np.ndarray, Any]] = OrderedDict()
        self.max_backgrounds = max(1, int(max_backgrounds))

    def figure(
        self, p: Prediction, distribution: dict | None, size: PlotSize | None, pixelratio: float
    ):
        """The figure for Shiny's ``render.plot`` (saved at ``pixelratio``)."""
        from matplotlib.figure import Figure

        query = _shares(p.table["probability"].to_numpy())
        highest = max(
            [float(query.max())] + [float(s.max()) for _, s, _ in _training_shares(distribution)]
        )
        top = max(0.05, math.ceil(highest * 1.05 / 0.05 - 1e-9) * 0.05)
        ratio = float(pixelratio or 1)
        key = (p.model_name, size, ratio, round(top, 2))
        with self._lock:
            hit = self._backgrounds.get(key)
            if hit is None:
                hit = self._draw_background(distribution, size, ratio, top)
                self._backgrounds[key] = hit
                while len(self._backgrounds) > self.max_backgrounds:
                    self._backgrounds.popitem(last=False)
            self._backgrounds.move_to_end(key)
        pixels, (inches, dpi, position) = hit
        fig = Figure(figsize=inches, dpi=dpi)
        fig.add_artist(_pixels_class()(pixels))  # 1:1 at the dpi Shiny saves at
        ax = fig.add_subplot()  # a subplot: Shiny maps its coordinates
        ax.set_position(position)
        ax.set_axis_off()
        ax.set_xlim(0, 1)
        ax.set_ylim(0, top)
        ax.stairs(query, _BINS, fill=True, alpha=0.5, color=COLOURS["query"])
        _keep_margins(fig)
        return fig

    @staticmethod
    def _draw_background(
        distribution: dict | None, size: PlotSize | None, ratio: float, top: float
    ) -> tuple[np.ndarray, Any]:
        """The figure without the query's bars, as pixels at the dpi Shiny will save at."""
        import matplotlib.pyplot as plt

        fig = _distribution_axes(distribution, size, np.zeros(len(_BINS) - 1), "this query", top)
        inches, dpi = tuple(fig.get_size_inches()), fig.get_dpi()
        position = fig.axes[0].get_position()
        fig.set_dpi(dpi * ratio)
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba()).copy()
        plt.close(fig)
        return pixels, (inches, dpi, position)


def pair_figure(
    predictor: Predictor,
    regulator: str,
    target: str,
    probability: float,
    size: PlotSize | None = None,
):
    """A pair's two z-scored profiles with its activation window; profiles only on failure.

    In the page's colours (:data:`COLOURS`), fitted to ``size`` like the other plot.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_pair = predictor.pair_profiles(regulator, target)
    try:
        explanation = explain_pair(predictor.model, x_pair, predictor.samples)
        fig = _in_page_colours(plot_pair(explanation, x_pair, regulator, target))
        _fit(fig, size)
        return fig, None
    except Exception as exc:  # noqa: BLE001 - fall back to the plain profiles
        log.warning("explain_pair failed for %s -> %s: %s", regulator, target, exc)
        note = f"activation window unavailable ({type(exc).__name__}); profiles only."
    fig, ax = plt.subplots(figsize=(7, 3.2))
    xs = np.arange(x_pair.shape[1])
    ax.plot(xs, x_pair[0], label=f"TF {regulator}", color=COLOURS["tf"])
    ax.plot(xs, x_pair[1], label=f"target {target}", color=COLOURS["target"])
    ax.set_xlabel("sample (column of the model's matrix)")
    ax.set_ylabel("z-score")
    ax.set_title(f"{regulator} -> {target}: probability {probability:.4f}", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    fig.suptitle(note, fontsize=8, color="#D55E00")  # the explanation failed
    _fit(fig, size)
    return fig, note


def _in_page_colours(fig):
    """Recolour :func:`tfcnn.explain.plot_pair`'s figure with the page's colours.

    Lines are matched by their legend labels (``TF ...``, ``target ...``); the shaded
    window becomes the page's yellow; curves of neither gene are black or grey.
    """
    from matplotlib.patches import Polygon, Rectangle

    for ax in fig.axes:
        for line in ax.get_lines():
            label = str(line.get_label())
            if label.startswith("TF "):
                line.set_color(COLOURS["tf"])
            elif label.startswith("target "):
                line.set_color(COLOURS["target"])
            elif label.startswith("|gradient"):
                line.set_color(COLOURS["query"])
            else:
                line.set_color(COLOURS["other"])
        for patch in ax.patches:
            if isinstance(patch, Polygon | Rectangle):
                patch.set_facecolor(COLOURS["window"])
                patch.set_alpha(0.45)
        if ax.get_legend() is not None:
            ax.legend(loc="upper right", fontsize=8)
    return fig


def _fit(fig, size: PlotSize | None) -> None:
    """Margins in inches for the size the page draws ``fig`` at (96 px an inch).

    Fractions of the width would cut the axis labels off a phone-wide plot; titles are
    wrapped to the width too. A figure with its own layout engine keeps its margins.
    """
    import textwrap

    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    engine = fig.get_layout_engine()
    own_layout = engine is not None and not isinstance(engine, PlaceHolderLayoutEngine)
    w_px, h_px = size or (None, None)
    w = max(2.0, (w_px or fig.get_figwidth() * 96) / 96)
    h = max(1.5, (h_px or fig.get_figheight() * 96) / 96)
    fig.set_size_inches(w, h)
    narrow = w < 5
    title_lines = 0
    for ax in fig.axes:
        if ax.get_title():
            points = min(ax.title.get_fontsize(), 8 if narrow else 10)
            wrapped = textwrap.fill(ax.get_title(), max(24, int(w * 72 / (points * 0.7))))
            ax.set_title(wrapped, fontsize=points)
            title_lines = max(title_lines, wrapped.count("\n") + 1)
        if narrow:
            ax.tick_params(labelsize=7)
            if ax.get_legend() is not None:
                for text in ax.get_legend().get_texts():
                    text.set_fontsize(7)
    if own_layout:
        return  # its engine places the (wrapped) text itself
    top = 0.12 + 0.17 * title_lines + (0.1 if fig.get_suptitle() else 0)
    fig.subplots_adjust(left=0.62 / w, right=1 - 0.12 / w, bottom=0.5 / h, top=1 - top / h)
    _keep_margins(fig)


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
