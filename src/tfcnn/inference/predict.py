"""Query a model: score regulators against targets, with every unusable ID reported.

This is what ``tfcnn predict`` and the web app (``tfcnn serve``) call. A query is two ID
lists (regulators, targets) as typed or read from files: separated by commas, spaces,
tabs or newlines; AGI codes in any case and ATH1 probesets, mixed. Each ID is moved into
the scoring matrix's ID space through the bundled ``ath1-map`` when needed. IDs that are
unknown, duplicated or have no one-to-one mapping are listed in the report, never
dropped silently; a query with no usable ID is a :class:`~tfcnn.errors.TfcnnInputError`.

The result table has one row per (regulator, target) pair, self-pairs excluded: both ID
forms where known, the probability, its rank within the query, whether the model's
training interactions list the pair (``yes`` / ``no`` / ``unknown`` when they cannot be
read back exactly), and the probability's percentile within the model's training
distribution of positives and of negatives.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import TfcnnInputError
from ..evaluation.card import card_line
from ..evaluation.metrics import percentile_in
from ..io import tables
from ..io.datasets import DATASETS, resolve_path
from ..io.expression import ExpressionMatrix
from ..io.idlists import split_ids
from ..io.idmap import IdMap, read_id_map
from ..io.ids import id_namespace, is_agi, is_probeset, normalize_id
from ..io.interactions import Interactions
from ..io.symbols import symbols
from ..io.tables import XLSX_MAX_ROWS, table_format, to_text, write_xlsx  # noqa: F401
from ..model.estimator import PairCNN
from ..model.record import check_finite_probabilities
from ..runtime import map_in_order, torch_threads
from .decompose import (
    RowStatsCache,
    column_stats,
    percentile_in_columns,
    percentile_in_rows,
)
from .engine import GeneTerms, PairScorer
from .fused import KernelTerms, grid_scorer, resolve_engine
from .matrix import ScoringMatrix, scoring_matrix

log = logging.getLogger(__name__)

DEFAULT_MAX_REGULATORS = 2_000
DEFAULT_MAX_TARGETS = 25_000
_STR_DTYPE = pd.Series([""]).dtype  # pandas' default string dtype
_BLOCK_PAIRS = 16_384  # pairs per engine call (a block of regulators x all targets)
_MIN_BLOCK_REGULATORS = 8  # each block re-reads its targets' terms: not too few regulators
_REFERENCE_CELLS = 8_000_000  # training TFs x genes kept per model (float32: 32 MB)
_GATHER_CHUNK = 8_192  # pairs gathered at once by score() (15 MB at 232 samples)

COLUMNS = (
    "regulator",
    "regulator_agi",
    "regulator_probeset",
    "regulator_symbol",
    "target",
    "target_agi",
    "target_probeset",
    "target_symbol",
    "probability",
    "rank",
    "known_interaction",
    "percentile_in_regulator_row",
    "percentile_in_target_column",
    "regulator_base_rate",
    "regulator_mean_probability",
    "target_mean_probability",
    "regulator_scores_most_genes_high",
    "regulator_in_training",
    "target_in_training",
    "pair_in_training",
    "percentile_vs_train_positives",
    "percentile_vs_train_negatives",
)

#: What each column means, for the CLI's --help, the XLSX legend sheet and the web page.
COLUMN_HELP = {
    "regulator": "the regulator (TF) as scored, in the matrix's ID space",
    "target": "the target gene as scored",
    "regulator_symbol": "the regulator's gene symbol, as AtRegNet names its AGI code ('' "
    "when it names none; tfcnn.io.symbols)",
    "target_symbol": "the target's gene symbol, as AtRegNet names its AGI code",
    "probability": "the model's probability of regulation for this pair",
    "rank": "rank of the probability within this query (1 = highest)",
    "known_interaction": "the pair is among the interactions the model was given (yes/no)",
    "percentile_in_regulator_row": "percentile of this pair among the regulator's scores "
    "with every gene: what the score says beyond the TF (rank by this)",
    "percentile_in_target_column": "percentile among the reference TFs' scores with this "
    "target (the query's regulators and the model's training TFs)",
    "regulator_base_rate": "share of all genes this regulator scores above 0.5",
    "regulator_mean_probability": "mean probability of this regulator with every gene",
    "target_mean_probability": "mean probability of this target over the reference TFs",
    "regulator_scores_most_genes_high": "the regulator scores above 0.5 with more than half "
    "of all genes: its probabilities rank targets at best",
    "regulator_in_training": "the regulator was a TF of the model's training pairs",
    "target_in_training": "the target appeared in the model's training pairs",
    "pair_in_training": "the pair itself was a training (or held-out) positive or negative: "
    "a training pair is memorised, not predicted",
    "percentile_vs_train_positives": "percentile of the probability among the training "
    "positives' probabilities",
    "percentile_vs_train_negatives": "the same among the training negatives",
}


# -- ID resolution ----------------------------------------------------------------------
@dataclass(frozen=True)
class IdIssue:
    """One query ID that was not used as typed: why, and what happened to it."""

    role: str  # "regulator" or "target"
    query_id: str
    problem: str  # "unknown", "unmappable" or "duplicate"
    detail: str


@dataclass
class ResolvedIds:
    """Query IDs moved into the scoring matrix's ID space, in query order, no repeats."""

    rows: np.ndarray  # row numbers in the scoring matrix
    issues: list[IdIssue]
    n_given: int


@functools.lru_cache(maxsize=4)
def _bundled_id_map() -> IdMap:
    return read_id_map(resolve_path("ath1-map"))


def default_id_map() -> IdMap:
    """The bundled AGI <-> ATH1 map (read once per process)."""
    return _bundled_id_map()


# -- known interactions -----------------------------------------------------------------
def _bundled_file(source: str) -> Path | None:
    """The bundled dataset a model's metadata names, or None.

    Model files are data: a path written in model.json is never opened. A recorded
    source is only matched, by its tail, against tfcnn's own bundled datasets.
    """
    norm = source.replace("\\", "/")
    for ds in DATASETS.values():
        if norm.endswith("/" + ds.relpath) or norm == ds.relpath or norm == ds.name:
            return ds.path if ds.path.is_file() else None
    return None


def _known_pairs(
    model: PairCNN, genes: Sequence[str], id_map: IdMap | None
) -> tuple[np.ndarray | None, str]:
    """Codes (tf_row * n_genes + target_row) of the training interactions, or None + why.

    Read from the model's own ``pairs.safetensors`` (gene names moved onto ``genes``);
    for older models, from a bundled dataset the metadata names. Never from a path.
    """
    from ..io.interactions import from_pairs, read_interactions
    from ..pairs import align_interactions

    record = model.record_
    model_genes = list(record.genes)
    index = {g: i for i, g in enumerate(genes)}

    def codes_of(known: Interactions) -> np.ndarray | str:
        try:
            frame, _ = align_interactions(known, genes, id_map, "the scoring matrix")
        except TfcnnInputError as exc:
            return str(exc)
        tf = frame["tf"].map(index)
        target = frame["target"].map(index)
        ok = tf.notna() & target.notna()
        return np.unique(tf[ok].to_numpy(np.int64) * len(genes) + target[ok].to_numpy(np.int64))

    if record.pairs is not None and model_genes:
        codes = record.pairs["known"].astype(np.int64)
        names = np.array(model_genes, dtype=object)
        n_model = len(model_genes)
        trained = from_pairs(
            zip(names[codes // n_model].tolist(), names[codes % n_model].tolist(), strict=True),
            source="the model's training interactions",
        )
        found = codes_of(trained)
        if isinstance(found, str):
            return None, found
        return found, f"the model's training interactions ({codes.size:,} pairs)"

    info = record.data.get("interactions")
    source = info.get("source") if isinstance(info, dict) else None
    if not source or not isinstance(info, dict):
        return None, "the model does not record the interactions it was trained with"
    path = _bundled_file(str(source))
    if path is None:
        return None, (
            "the model does not carry its training interactions (it was saved by an older "
            "tfcnn) and they are not a bundled dataset; retrain it to record them"
        )
    evidence = info.get("evidence")
    evidence = [str(v) for v in evidence] if isinstance(evidence, list) else None
    expected = info.get("n_pairs")
    if isinstance(expected, bool) or not isinstance(expected, int):
        expected = None
    try:
        known = read_interactions(path)
        if evidence and expected is not None and len(known) != int(expected):
            known = known.filter_evidence(list(evidence))
    except TfcnnInputError as exc:
        return None, f"the training interactions ({path.name}) could not be read: {exc}"
    if expected is not None and int(expected) != len(known):
        why = (
            "the model does not record which evidence values it used"
            if known.has_evidence and not evidence
            else "the file differs from the one the model was trained with"
        )
        return None, (
            f"{path.name} now gives {len(known):,} pairs but the model was trained with "
            f"{int(expected):,} ({why}), so which pairs were known cannot be told"
        )
    recorded_map = info.get("id_map")
    if recorded_map:
        if _bundled_file(str(recorded_map)) != resolve_path("ath1-map"):
            return None, f"the ID map the model was trained with ({recorded_map}) is not bundled"
        id_map = default_id_map()
    found = codes_of(known)
    if isinstance(found, str):
        return None, found
    return found, f"{path.name} ({len(known):,} pairs)"


# -- the query --------------------------------------------------------------------------
@dataclass(frozen=True)
class QueryLimits:
    """Largest query accepted (the web app's guard; None = no limit)."""

    max_regulators: int | None = DEFAULT_MAX_REGULATORS
    max_targets: int | None = DEFAULT_MAX_TARGETS


NO_LIMITS = QueryLimits(None, None)


@dataclass
class Prediction:
    """A scored query: the table, the IDs that could not be used, and notes."""

    table: pd.DataFrame
    issues: list[IdIssue]
    notes: list[str]
    n_regulators: int
    n_targets: int
    n_self_pairs_skipped: int
    known_source: str | None  # what 'known_interaction' was read from, or None
    model_name: str = ""
    #: Rows of ``table`` that were training pairs (memorised, not predicted); None when
    #: the model carries no training pairs. Counted while the table is built, so a
    #: server need not scan the table again.
    n_training_pairs: int | None = None

    def issues_frame(self) -> pd.DataFrame:
        """The unusable / duplicated IDs as a table (role, query_id, problem, detail)."""
        return pd.DataFrame(
            [(i.role, i.query_id, i.problem, i.detail) for i in self.issues],
            columns=["role", "query_id", "problem", "detail"],
        )

    def report_lines(self) -> list[str]:
        """One line per unusable ID and per note, for the CLI and the page."""
        lines = [f"{i.role} {i.query_id!r}: {i.problem} ({i.detail})" for i in self.issues]
        return lines + list(self.notes)


class Predictor:
    """A model and its scoring matrix, ready to answer many queries (the app keeps one).

    ``expression`` (optional) scores on another matrix than the model's own, lined up
    with the model's samples by :func:`~tfcnn.inference.matrix.scoring_matrix`; ``log2``
    applies to it. ``id_map`` defaults to the bundled ATH1 map.
    """

    def __init__(
        self,
        model: PairCNN | str | os.PathLike[str],
        expression: ExpressionMatrix | str | os.PathLike[str] | None = None,
        id_map: IdMap | str | os.PathLike[str] | None = None,
        name: str = "",
        log2: bool = False,
        engine: str = "auto",
    ) -> None:
        from .. import api

        self.model = api.load_model(model)
        net = getattr(self.model, "network_", None)
        #: The engine that scores grids: ``numba`` (the fused kernel, as ``scan``) or
        #: ``torch``; ``engine`` asks as ``scan --engine`` does (an error if it cannot run).
        self.engine = resolve_engine(engine, net if isinstance(self.model, PairCNN) else None)
        self._compiled: tuple[Any, GeneTerms | KernelTerms] | None = None
        self._compile_lock = threading.Lock()
        self._pair_scorer: Any = None
        self._id_columns: tuple[np.ndarray | pa.Array, ...] | None = None
        # Per model and matrix, kept across queries (a server asks about the same TFs):
        self.row_cache = RowStatsCache()
        self._reference: np.ndarray | None = None  # training TFs x all genes
        self._reference_lock = threading.Lock()
        self.name = name or (str(model) if not isinstance(model, PairCNN) else "model")
        self.matrix: ScoringMatrix = scoring_matrix(
            self.model, expression, log2=log2, name=self.name
        )
        self.notes: list[str] = list(self.matrix.notes)
        self.genes = self.matrix.genes
        self.zscores = self.matrix.zscores
        self.matrix_source = self.matrix.source
        self.index = self.matrix.index
        self.namespace = id_namespace(self.genes)
        if id_map is None:
            self.id_map = default_id_map() if self.namespace in ("agi", "probeset") else None
        else:
            self.id_map = api.load_id_map(id_map)
        self.agi, self.probeset = self._both_forms()
        known, why = _known_pairs(self.model, self.genes, self.id_map)
        self.known_codes = known
        self.known_source = why if known is not None else None
        if known is None:
            self.notes.append(f"known_interaction is 'unknown': {why}.")
        self.training = self._training_rows()
        self.card = card_line(self.model.record_.evaluation)
        self.notes.insert(0, f"{self.name or 'the model'}: {self.card}.")
        self.distribution = self.model.record_.training_distribution
        if not self.distribution:
            self.notes.append(
                "the model stores no training distribution: the percentile columns are empty."
            )

    def _both_forms(self) -> tuple[np.ndarray, np.ndarray]:
        """Per matrix gene, its AGI code and ATH1 probeset ('' where not known)."""
        n = len(self.genes)
        genes = np.array(self.genes, dtype=object)
        empty = np.full(n, "", dtype=object)
        m = self.id_map
        if self.namespace == "agi":
            other = [m.agi_to_probeset.get(g, "") for g in self.genes] if m else [""] * n
            return genes, np.array(other, dtype=object)
        if self.namespace == "probeset":
            other = [m.probeset_to_agi.get(g, "") for g in self.genes] if m else [""] * n
            return np.array(other, dtype=object), genes
        return empty, empty

    def _matrix_rows(self, names: Sequence[str]) -> np.ndarray:
        """Row of each gene name in the scoring matrix (-1 when absent or unmappable)."""
        out = np.full(len(names), -1, dtype=np.int64)
        for i, name in enumerate(names):
            key = normalize_id(name)
            row = self.index.get(key)
            if row is None:
                row = self._translate(key)[2]
            if row is not None:
                out[i] = row
        return out

    def _training_rows(self) -> dict[str, np.ndarray] | None:
        """The model's pair record in scoring-matrix rows: TFs, targets and pair codes."""
        record = self.model.record_
        if record.pairs is None or not record.genes:
            return None
        rows = self._matrix_rows(record.genes)
        tf, target = rows[record.pairs["tf"]], rows[record.pairs["target"]]
        ok = (tf >= 0) & (target >= 0)
        label, split = record.pairs["label"][ok], record.pairs["split"][ok]
        tf, target = tf[ok], target[ok]
        codes = tf * len(self.genes) + target
        train = split == 0
        return {
            "tfs": np.unique(tf[train]),
            "positive_tfs": np.unique(tf[train & (label == 1)]),
            "targets": np.unique(target[train]),
            "train_positive": codes[train & (label == 1)],
            "train_negative": codes[train & (label == 0)],
            "held_out_positive": codes[~train & (label == 1)],
            "held_out_negative": codes[~train & (label == 0)],
        }

    def example_ids(self, n_regulators: int = 3, n_targets: int = 5) -> tuple[list[str], list[str]]:
        """A few regulators and targets to try: TFs with known targets when available."""
        genes = self.genes
        if self.known_codes is not None and self.known_codes.size:
            tf_rows, counts = np.unique(self.known_codes // len(genes), return_counts=True)
            order = tf_rows[np.argsort(-counts, kind="stable")][:n_regulators]
            regs = [genes[int(r)] for r in order]
            first = int(order[0])
            tgt_rows = self.known_codes[self.known_codes // len(genes) == first] % len(genes)
            known_t = [genes[int(r)] for r in tgt_rows[: max(1, n_targets - 2)]]
            rest = [g for g in genes if g not in regs and g not in known_t]
            return regs, (known_t + rest[: n_targets - len(known_t)])
        return list(genes[:n_regulators]), list(genes[n_regulators : n_regulators + n_targets])

    # -- IDs ----------------------------------------------------------------------------
    def resolve(self, tokens: Iterable[str], role: str) -> ResolvedIds:
        """Move query IDs into the matrix's ID space, listing every one not used as typed."""
        rows: list[int] = []
        seen: dict[int, str] = {}
        issues: list[IdIssue] = []
        n_given = 0
        for raw in tokens:
            n_given += 1
            key = normalize_id(raw)
            row = self.index.get(key)
            if row is None:
                problem, detail, row = self._translate(key)
                if row is None:
                    issues.append(IdIssue(role, raw, problem, detail))
                    continue
            if row in seen:
                issues.append(
                    IdIssue(
                        role,
                        raw,
                        "duplicate",
                        f"same gene as {seen[row]!r} ({self.genes[row]}); scored once",
                    )
                )
                continue
            seen[row] = raw
            rows.append(row)
        return ResolvedIds(np.asarray(rows, dtype=np.int64), issues, n_given)

    def _translate(self, key: str) -> tuple[str, str, int | None]:
        """(problem, detail, row) for an ID not in the matrix as typed."""
        where = f"not in {self.matrix_source}"
        own = "agi" if is_agi(key) else "probeset" if is_probeset(key) else None
        if own is None:
            shape = "not an AGI code or ATH1 probeset; " if self.namespace != "other" else ""
            return "unknown", shape + where, None
        m = self.id_map
        if own == self.namespace or self.namespace == "other" or m is None:
            return "unknown", where, None
        table = m.probeset_to_agi if own == "probeset" else m.agi_to_probeset
        mapped = table.get(key)
        if mapped is None:
            return "unmappable", f"no one-to-one {self.namespace} ID: {m.why_unmapped(key)}", None
        row = self.index.get(mapped)
        if row is None:
            return "unknown", f"maps to {mapped}, which is {where}", None
        return "", "", row

    # -- scoring ------------------------------------------------------------------------
    def _engine(self) -> tuple[Any, GeneTerms | KernelTerms]:
        """The grid scorer and every gene's terms, built on first use (once, also when
        several queries of a server arrive together)."""
        with self._compile_lock:
            if self._compiled is None:
                scorer = grid_scorer(self.engine, self.model.fitted_network())
                self._compiled = (scorer, scorer.gene_terms(self.zscores))
            return self._compiled

    def _pairs_scorer(self) -> PairScorer:
        """The model's own scorer, which also scores lists of pairs (``predict_pairs``)."""
        if self._pair_scorer is None:
            self._pair_scorer = self.model.pair_scorer()
        return self._pair_scorer

    def score_grid(
        self,
        reg_rows: np.ndarray,
        target_rows: np.ndarray,
        on_progress: Callable[[int, int], None] | None = None,
        workers: int | None = 1,
    ) -> np.ndarray:
        """Probabilities of every regulator x target pair, shape (regulators, targets).

        Scored by the fused kernel (:mod:`tfcnn.inference.fused`) or the torch engine
        (:mod:`tfcnn.inference.engine`), see :attr:`engine`; no pair tensor is built. A
        block of regulators at a time, each block on one thread; ``workers`` blocks at
        once (None: one per CPU). One worker suits a server, where concurrent queries are
        the parallelism. The result does not depend on ``workers``.
        ``on_progress(pairs_done, pairs_total)`` is called after each block.
        """
        scorer, terms = self._engine()
        reg_rows = np.asarray(reg_rows, dtype=np.int64)
        target_rows = np.asarray(target_rows, dtype=np.int64)
        out = np.empty((reg_rows.size, target_rows.size), dtype=np.float64)
        # Blocks do not depend on ``workers``: a block's shape can change float rounding.
        step = max(_MIN_BLOCK_REGULATORS, _BLOCK_PAIRS // max(1, target_rows.size))
        blocks = [(lo, min(reg_rows.size, lo + step)) for lo in range(0, reg_rows.size, step)]
        results = map_in_order(
            lambda b: scorer.score_block(terms, reg_rows[b[0] : b[1]], target_rows),
            blocks,
            workers or os.cpu_count() or 1,
        )
        for (lo, hi), proba in zip(blocks, results, strict=True):
            out[lo:hi] = check_finite_probabilities(proba)
            if on_progress is not None:
                on_progress(hi * target_rows.size, out.size)
        return out

    def score(self, tf_rows: np.ndarray, target_rows: np.ndarray) -> np.ndarray:
        """Probabilities of the pairs (tf_rows[i], target_rows[i]), in chunks (by the
        model's own scorer, whatever :attr:`engine` scores grids)."""
        scorer = self._pairs_scorer()
        n = np.asarray(tf_rows).size
        out = np.empty(n, dtype=np.float64)
        z = self.zscores
        with torch_threads(1):
            for start in range(0, n, _GATHER_CHUNK):
                stop = min(n, start + _GATHER_CHUNK)
                x = np.stack([z[tf_rows[start:stop]], z[target_rows[start:stop]]], axis=1)
                out[start:stop] = check_finite_probabilities(scorer.predict_pairs(x))
        return out

    def predict(
        self,
        regulators: str | Sequence[str],
        targets: str | Sequence[str] | None = None,
        limits: QueryLimits = NO_LIMITS,
        on_progress: Callable[[int, int], None] | None = None,
        workers: int | None = 1,
    ) -> Prediction:
        """Score every regulator against every target (all matrix genes when None).

        ``regulators`` / ``targets``: text as typed (any separators) or a list of IDs.
        ``workers``: see :meth:`score_grid` (1 by default: right for a server).
        """
        reg_tokens = split_ids(regulators) if isinstance(regulators, str) else list(regulators)
        regs = self.resolve(reg_tokens, "regulator")
        issues = list(regs.issues)
        if targets is None or (isinstance(targets, str) and not targets.strip()):
            tgts = ResolvedIds(np.arange(len(self.genes), dtype=np.int64), [], len(self.genes))
            all_targets = True
        else:
            tgt_tokens = split_ids(targets) if isinstance(targets, str) else list(targets)
            tgts = self.resolve(tgt_tokens, "target")
            issues += tgts.issues
            all_targets = False
        if regs.rows.size == 0:
            raise TfcnnInputError(
                _no_usable("regulator", regs, issues, self.matrix_source, self.genes)
            )
        if tgts.rows.size == 0:
            raise TfcnnInputError(
                _no_usable("target", tgts, issues, self.matrix_source, self.genes)
            )
        for what, count, cap in (
            ("regulators", regs.rows.size, limits.max_regulators),
            ("targets", tgts.rows.size, limits.max_targets),
        ):
            if cap is not None and count > cap:
                raise TfcnnInputError(
                    f"{count:,} {what} in this query; at most {cap:,} are allowed per query. "
                    "Split the query into smaller ones, or use 'tfcnn predict' for large runs."
                )
        n_r, n_t = regs.rows.size, tgts.rows.size
        tf_rows = np.repeat(regs.rows, n_t)
        target_rows = np.tile(tgts.rows, n_r)
        keep = tf_rows != target_rows
        n_self = int((~keep).sum())
        tf_rows, target_rows = tf_rows[keep], target_rows[keep]
        if tf_rows.size == 0:
            raise TfcnnInputError(
                "every pair of this query has the same gene as regulator and target; "
                "give other targets."
            )
        grid = self.score_grid(regs.rows, tgts.rows, on_progress, workers)
        prob = grid.ravel()[keep]
        parts, tf_notes = self._decompose(regs.rows, tgts.rows, grid, all_targets, workers)
        table, n_training = self._table(
            tf_rows, target_rows, prob, {k: v[keep] for k, v in parts.items()}
        )
        notes = list(self.notes) + tf_notes
        if all_targets:
            notes.append(f"no targets given: scored against all {n_t:,} genes of the matrix.")
        if n_self:
            notes.append(f"{n_self:,} self-pair(s) (regulator = target) not scored.")
        return Prediction(
            table=table,
            issues=issues,
            notes=notes,
            n_regulators=n_r,
            n_targets=n_t,
            n_self_pairs_skipped=n_self,
            known_source=self.known_source,
            model_name=self.name,
            n_training_pairs=n_training,
        )

    def _decompose(
        self,
        reg_rows: np.ndarray,
        target_rows: np.ndarray,
        grid: np.ndarray,
        all_targets: bool,
        workers: int | None,
    ) -> tuple[dict[str, np.ndarray], list[str]]:
        """Per pair of the grid (regulators x targets, raveled): the decomposed score.

        See :mod:`tfcnn.inference.decompose`; returns the columns and one note per
        regulator that scores above 0.5 with most genes.
        """
        n_genes = len(self.genes)
        position = {int(r): i for i, r in enumerate(reg_rows)}
        if all_targets:
            scores = lambda rows: grid[[position[int(r)] for r in rows]]  # noqa: E731
        else:
            everything = np.arange(n_genes, dtype=np.int64)
            scores = lambda rows: self.score_grid(rows, everything, workers=workers)  # noqa: E731
        stats = self.row_cache.stats(scores, reg_rows, n_genes)
        n_r, n_t = grid.shape
        which = np.repeat(np.arange(n_r), n_t)
        # Reference TFs of each target's column: the query's regulators and training TFs.
        extra = np.empty(0, dtype=np.int64)
        if self.training is not None:
            extra = np.setdiff1d(self.training["positive_tfs"], reg_rows)
        ref_rows = np.concatenate([reg_rows, extra])
        ref_grid = (
            grid
            if extra.size == 0
            else np.vstack([grid, self._training_reference(extra, target_rows, workers)])
        )
        target_mean, reference = column_stats(ref_grid, ref_rows, target_rows)
        columns = np.tile(np.arange(n_t), n_r)
        parts = {
            "percentile_in_regulator_row": percentile_in_rows(
                stats, which, np.tile(target_rows, n_r)
            ),
            "percentile_in_target_column": percentile_in_columns(reference, n_r).ravel(),
            "regulator_base_rate": stats.base_rate[which],
            "regulator_mean_probability": stats.mean[which],
            "target_mean_probability": target_mean[columns],
            "regulator_scores_most_genes_high": stats.shortcut[which],
        }
        notes = [
            f"WARNING: regulator {self.genes[int(r)]} scores above 0.5 with "
            f"{stats.base_rate[i]:.1%} of all {n_genes - 1:,} other genes: its probabilities "
            "rank its targets at best (the model recognises this TF, not the pair). Read "
            "percentile_in_regulator_row, not the probability."
            for i, r in enumerate(reg_rows)
            if stats.shortcut[i]
        ]
        return parts, notes

    def _training_reference(
        self, tf_rows: np.ndarray, target_rows: np.ndarray, workers: int | None
    ) -> np.ndarray:
        """Scores of training TFs ``tf_rows`` x ``target_rows`` for the column reference.

        The training TFs' rows over all genes are scored once and kept when they fit in
        :data:`_REFERENCE_CELLS` values and the query asks for at least a quarter of the
        genes (so a small one-off query never pays for every gene); otherwise each query
        scores its own columns.
        """
        assert self.training is not None
        tfs = self.training["positive_tfs"]
        n_genes = len(self.genes)
        small = self._reference is None and 4 * target_rows.size < n_genes
        if small or tfs.size * n_genes > _REFERENCE_CELLS:
            return self.score_grid(tf_rows, target_rows, workers=workers)
        with self._reference_lock:
            if self._reference is None:
                everything = np.arange(n_genes, dtype=np.int64)
                grid = self.score_grid(tfs, everything, workers=workers)
                self._reference = grid.astype(np.float32)  # the engine's own precision
            reference = self._reference
        return reference[np.searchsorted(tfs, tf_rows)][:, target_rows].astype(np.float64)

    def _flags(
        self, tf_rows: np.ndarray, target_rows: np.ndarray
    ) -> tuple[dict[str, pd.Series], int | None]:
        """Whether each pair's TF, target and the pair itself were in the training data,
        and how many pairs were training pairs (None: the model carries none)."""
        n = tf_rows.size
        if self.training is None:
            unknown = _string_source(["unknown"])
            # one column each: the table takes them without copying (see _table)
            columns = {
                k: _strings(unknown, np.zeros(n, np.int64)) for k in ("regulator", "target", "pair")
            }
            return columns, None
        t = self.training
        codes = tf_rows * len(self.genes) + target_rows
        pair = np.zeros(n, dtype=np.int64)
        for i, key in enumerate(
            ("train_positive", "train_negative", "held_out_positive", "held_out_negative"), 1
        ):
            pair[(pair == 0) & np.isin(codes, t[key])] = i
        yes_no = _string_source(["no", "yes"])
        n_training = int(np.count_nonzero((pair == 1) | (pair == 2)))
        columns = {
            "regulator": _strings(yes_no, np.isin(tf_rows, t["tfs"]).astype(np.int64)),
            "target": _strings(yes_no, np.isin(target_rows, t["targets"]).astype(np.int64)),
            "pair": _strings(
                _string_source(
                    [
                        "no",
                        "train positive",
                        "train negative",
                        "held-out positive",
                        "held-out negative",
                    ]
                ),
                pair,
            ),
        }
        return columns, n_training

    def _table(
        self,
        tf_rows: np.ndarray,
        target_rows: np.ndarray,
        prob: np.ndarray,
        parts: dict[str, np.ndarray],
    ) -> tuple[pd.DataFrame, int | None]:
        """The result table, sorted by probability (rank 1 = highest), and how many of its
        pairs were training pairs (None: unknown)."""
        order = np.argsort(-prob, kind="stable")
        tf_rows, target_rows, prob = tf_rows[order], target_rows[order], prob[order]
        parts = {k: v[order] for k, v in parts.items()}
        flags, n_training = self._flags(tf_rows, target_rows)
        if self._id_columns is None:  # built once: every query's table takes from them
            named = symbols()
            gene_symbols = [named.get(str(a), "") for a in self.agi]
            self._id_columns = tuple(
                _string_source(values)
                for values in (self.genes, self.agi, self.probeset, gene_symbols)
            )
        genes, agi, probeset, symbol = self._id_columns
        rank = pd.Series(prob).rank(method="min", ascending=False).to_numpy(np.int64)
        if self.known_codes is None:
            known = _strings(_string_source(["unknown"]), np.zeros(prob.size, np.int64))
        else:
            codes = tf_rows * len(self.genes) + target_rows
            known = _strings(_string_source(["no", "yes"]), np.isin(codes, self.known_codes))
        if self.distribution:
            pct_pos = percentile_in(self.distribution, "positive", prob)
            pct_neg = percentile_in(self.distribution, "negative", prob)
        else:
            pct_pos = pct_neg = np.full(prob.size, np.nan)
        table = pd.DataFrame(
            {
                "regulator": _strings(genes, tf_rows),
                "regulator_agi": _strings(agi, tf_rows),
                "regulator_probeset": _strings(probeset, tf_rows),
                "regulator_symbol": _strings(symbol, tf_rows),
                "target": _strings(genes, target_rows),
                "target_agi": _strings(agi, target_rows),
                "target_probeset": _strings(probeset, target_rows),
                "target_symbol": _strings(symbol, target_rows),
                "probability": prob,
                "rank": rank,
                "known_interaction": known,
                "percentile_in_regulator_row": np.round(parts["percentile_in_regulator_row"], 2),
                "percentile_in_target_column": np.round(parts["percentile_in_target_column"], 2),
                "regulator_base_rate": np.round(parts["regulator_base_rate"], 4),
                "regulator_mean_probability": np.round(parts["regulator_mean_probability"], 4),
                "target_mean_probability": np.round(parts["target_mean_probability"], 4),
                "regulator_scores_most_genes_high": parts["regulator_scores_most_genes_high"],
                "regulator_in_training": flags["regulator"],
                "target_in_training": flags["target"],
                "pair_in_training": flags["pair"],
                "percentile_vs_train_positives": np.round(pct_pos, 2),
                "percentile_vs_train_negatives": np.round(pct_neg, 2),
            },
            columns=list(COLUMNS),
            copy=False,  # every column is this query's own array; consolidating them cost 15%
        )
        return table, n_training

    def pair_profiles(self, regulator: str, target: str) -> np.ndarray:
        """The (2, n_samples) z-scored input of one pair (for plots and explanations)."""
        return self.matrix.pair(regulator, target)[0]

    @property
    def samples(self) -> list[str]:
        """Sample names of the scoring matrix, in the model's order."""
        return list(self.matrix.samples)


def _string_source(values: Iterable[object]) -> np.ndarray | pa.Array:
    """Strings that :func:`_strings` takes table columns from, in the form pandas' default
    string dtype takes fastest: Python strings (pandas 2's object dtype) or Arrow."""
    strings = [str(v) for v in values]
    if _STR_DTYPE == np.dtype(object):
        return np.array(strings, dtype=object)
    return pa.array(strings, pa.large_string())


def _strings(source: np.ndarray | pa.Array, rows: np.ndarray) -> pd.Series:
    """``source[rows]`` as a pandas string column (``source`` from :func:`_string_source`).

    Object strings share the few Python strings of ``source`` (a pointer copy: ~12x
    faster than building one string per row); Arrow strings are taken in Arrow.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if isinstance(source, np.ndarray):
        return pd.Series(source[rows], dtype=object)
    return pd.Series(pd.array(source.take(pa.array(rows)), dtype=_STR_DTYPE))


def _no_usable(
    role: str, ids: ResolvedIds, issues: list[IdIssue], source: str, genes: Sequence[str]
) -> str:
    mine = [i for i in issues if i.role == role]
    if ids.n_given == 0:
        return f"no {role} ID given; give at least one {role} (AGI code or ATH1 probeset)."
    listed = "; ".join(f"{i.query_id!r}: {i.problem} ({i.detail})" for i in mine[:5])
    more = f" and {len(mine) - 5} more" if len(mine) > 5 else ""
    example = ", ".join(genes[:2])
    return (
        f"none of the {ids.n_given} {role} ID(s) can be scored: {listed}{more}. IDs must be "
        f"genes of {source} (e.g. {example})."
    )


def predict(
    model: PairCNN | str | os.PathLike[str],
    regulators: str | Sequence[str],
    targets: str | Sequence[str] | None = None,
    *,
    expression: ExpressionMatrix | str | os.PathLike[str] | None = None,
    id_map: IdMap | str | os.PathLike[str] | None = None,
    limits: QueryLimits = NO_LIMITS,
    log2: bool = False,
) -> Prediction:
    """One-off query: load ``model`` (path or registered name) and score the pairs."""
    return Predictor(model, expression=expression, id_map=id_map, log2=log2).predict(
        regulators, targets, limits=limits
    )


# -- writing: tfcnn.io.tables (table_format, to_text, write_xlsx, XLSX_MAX_ROWS are
# imported above for this module's callers) ----------------------------------------------
def write_table(
    prediction: Prediction,
    path: str | os.PathLike[str],
    force: bool = False,
    layout: str = "tfcnn",
) -> Path:
    """Write the result table by extension (:mod:`tfcnn.io.tables`: .csv, .tsv, .parquet,
    .xlsx, text also .gz), atomically; ``layout`` renames regulator, target and
    probability (pyscenic, beeline); .xlsx adds the unusable IDs as a second sheet."""
    table = tables.apply_layout(
        prediction.table, layout, ("regulator", "target", "probability"), keep_others=True
    )
    return tables.write_table(
        table, path, force=force, layout=layout, issues=prediction.issues_frame()
    )
