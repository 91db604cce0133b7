"""Regulon expansion: for a TF seen in training, rank the other genes by likeness to its
known targets (``tfcnn expand``, :func:`tfcnn.api.expand`).

A TF's known targets and known non-targets are its *training* positives and negatives
(the model's own pair record). Each other gene ``g`` gets up to three parts:

* ``embedding`` (two-tower models): mean cosine similarity of ``g``'s target-tower
  embedding (members averaged) to the known targets' minus that to the known non-targets;
* ``coexpression``: mean of the ``KNN`` largest Pearson correlations of ``g`` with the
  known targets minus the same with the known non-targets;
* ``model``: the model's own probability for the pair (TF, ``g``).

Each part is turned into its **percentile within the TF's row**, among the genes that are
not the TF's training pairs (nor the TF itself): a TF's scores are on their own scale,
and what matters is how a gene ranks for *this* TF (the decomposition idea of
:mod:`tfcnn.inference.decompose`). ``combined`` is the mean of the available parts'
percentiles, fixed a priori (not tuned on any test fold).

Evaluation: :func:`tfcnn.evaluation.regulon.evaluate_regulon` hides part of every TF's
pairs and scores the hidden ones with exactly these functions. Caveat (docs/pair_model.md):
a TF's hidden targets come from the same experiments as its known ones, so what such an
evaluation measures is recovery of the rest of the same target list, not independent
validation of new targets.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TfcnnInputError
from ..io.ids import normalize_id

METHODS = ("combined", "embedding", "coexpression", "model")
PARTS = ("embedding", "coexpression", "model")
KNN = 10
DEFAULT_MIN_KNOWN = 5


@dataclass
class KnownPairs:
    """A TF's training pairs: rows (in the gene list) of its known targets and non-targets."""

    targets: np.ndarray
    non_targets: np.ndarray


def known_pairs(
    tf: np.ndarray, target: np.ndarray, label: np.ndarray, tf_rows: Sequence[int] | np.ndarray
) -> dict[int, KnownPairs]:
    """Each TF's known targets and non-targets from (tf, target, label) training pairs."""
    out = {}
    for row in tf_rows:
        mine = tf == row
        out[int(row)] = KnownPairs(
            np.unique(target[mine & (label == 1)]), np.unique(target[mine & (label == 0)])
        )
    return out


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit length (dot products are then Pearson r)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _top_mean(sim: np.ndarray, k: int) -> np.ndarray:
    """Mean of the ``k`` largest values of each row (all of them when fewer)."""
    k = min(k, sim.shape[1])
    return -np.partition(-sim, k - 1, axis=1)[:, :k].mean(axis=1)


def raw_parts(
    known: KnownPairs,
    profiles: np.ndarray,
    embeddings: np.ndarray | None,
    model_row: np.ndarray | None,
    parts: Sequence[str] = PARTS,
) -> dict[str, np.ndarray]:
    """Each part's raw score for every gene (G,), for one TF (see the module docstring).

    ``profiles``: unit rows of the expression matrix (:func:`unit_rows`);
    ``embeddings``: unit rows of the target-tower embeddings, or None; ``model_row``: the
    model's probabilities of (TF, every gene), or None.
    """
    out: dict[str, np.ndarray] = {}
    pos, neg = known.targets, known.non_targets
    if "coexpression" in parts:
        score = _top_mean(profiles @ profiles[pos].T, KNN)
        if neg.size:
            score = score - _top_mean(profiles @ profiles[neg].T, KNN)
        out["coexpression"] = score
    if "embedding" in parts and embeddings is not None:
        score = (embeddings @ embeddings[pos].T).mean(axis=1)
        if neg.size:
            score = score - (embeddings @ embeddings[neg].T).mean(axis=1)
        out["embedding"] = score
    if "model" in parts and model_row is not None:
        out["model"] = np.asarray(model_row, dtype=np.float64)
    return out


def row_percentile(score: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Mid-rank percentile (0-100) of every value among ``score[reference]``."""
    ref = np.sort(score[reference])
    lo = np.searchsorted(ref, score, "left")
    hi = np.searchsorted(ref, score, "right")
    return 100.0 * (lo + hi) / 2.0 / max(1, ref.size)


def reference_mask(n_genes: int, tf_row: int, known: KnownPairs) -> np.ndarray:
    """Genes a TF's row is ranked among: all but the TF and its training pairs."""
    ref = np.ones(n_genes, dtype=bool)
    ref[known.targets] = False
    ref[known.non_targets] = False
    ref[tf_row] = False
    return ref


def scored_parts(raw: dict[str, np.ndarray], reference: np.ndarray) -> dict[str, np.ndarray]:
    """Percentiles of every part and their mean ("combined"), over the reference genes."""
    pct = {f"{k}_percentile": row_percentile(v, reference) for k, v in raw.items()}
    pct["combined"] = np.mean(list(pct.values()), axis=0)
    return pct


def model_parts(model: Any, zscores: np.ndarray) -> tuple[Any, Any, np.ndarray | None]:
    """The model's fast scorer, its per-gene terms, and unit target embeddings (two-tower)."""
    scorer = model.pair_scorer()
    terms = scorer.gene_terms(zscores)
    embeddings = None
    if hasattr(model, "embed"):
        _, v = model.embed(zscores)
        embeddings = unit_rows(v.mean(axis=0))
    return scorer, terms, embeddings


@dataclass
class Expansion:
    """A TF's regulon expansion: the ranked table, how it was made, and notes."""

    tf: str
    method: str
    table: pd.DataFrame
    n_known_targets: int
    n_known_non_targets: int
    notes: list[str] = field(default_factory=list)

    def write(self, path: str | os.PathLike[str], force: bool = False) -> Path:
        """Write the table by extension (.csv, .tsv, .parquet, .xlsx), atomically."""
        from ..io.tables import write_table

        return write_table(self.table, path, force=force)


def expand_regulon(
    model: Any, tf: str, *, method: str = "combined", min_known: int = DEFAULT_MIN_KNOWN
) -> Expansion:
    """Rank every gene but ``tf`` and its training pairs by likeness to its known targets.

    Refused (TfcnnInputError) when the model carries no matrix or pair record, when ``tf``
    is not a gene of it, and when ``tf`` has fewer than ``min_known`` known training
    targets (an unseen TF has none: score it with ``predict`` instead).
    """
    from ..model.prior import target_frequency

    if method not in METHODS:
        raise TfcnnInputError(f"`method` must be one of {', '.join(METHODS)} (got {method!r}).")
    if isinstance(min_known, bool) or not isinstance(min_known, int) or min_known < 1:
        raise TfcnnInputError(f"`min_known` must be a whole number >= 1 (got {min_known!r}).")
    record = model.record_
    if record.zscores is None or record.pairs is None or not record.genes:
        raise TfcnnInputError(
            "the model carries no expression matrix or training pairs, so it knows no TF's "
            "targets; regulon expansion needs a model trained by tfcnn (train / fit_pairs)."
        )
    if method == "embedding" and not hasattr(model, "embed"):
        raise TfcnnInputError(
            "`method` embedding needs a two-tower model (a pair CNN has no embedding); use "
            "coexpression, model or combined."
        )
    genes = list(record.genes)
    index = {g: i for i, g in enumerate(genes)}
    key = normalize_id(tf)
    if key not in index:
        raise TfcnnInputError(
            f"`tf` {tf!r} is not a gene of the model's matrix ({len(genes):,} genes, e.g. "
            f"{', '.join(genes[:2])})."
        )
    row = index[key]
    p = record.pairs
    train = p["split"] == 0
    known = known_pairs(p["tf"][train], p["target"][train], p["label"][train], [row])[row]
    if known.targets.size < min_known:
        raise TfcnnInputError(
            f"`tf` {key} has {known.targets.size} known training target(s) in this model, "
            f"fewer than `min_known` ({min_known}): regulon expansion ranks genes by their "
            "likeness to a TF's known targets, so it needs a TF seen in training with enough "
            "of them. Score an unseen TF with `tfcnn predict` instead."
        )
    z = np.asarray(record.zscores, dtype=np.float32)
    scorer, terms, embeddings = model_parts(model, z)
    model_row = scorer.score_block(terms, np.array([row]), np.arange(len(genes)))[0]
    raw = raw_parts(known, unit_rows(z), embeddings, model_row)
    reference = reference_mask(len(genes), row, known)
    pct = scored_parts(raw, reference)
    score = pct["combined"] if method == "combined" else pct[f"{method}_percentile"]
    keep = np.flatnonzero(reference)
    order = keep[np.argsort(-score[keep], kind="stable")]
    codes = set(p["known"].tolist())
    table = pd.DataFrame(
        {
            "tf": key,
            "gene": np.array(genes, dtype=object)[order],
            "score": np.round(score[order], 3),
            "rank": np.arange(1, order.size + 1),
            "known_interaction": [
                "yes" if row * len(genes) + g in codes else "no" for g in order.tolist()
            ],
            "model_probability": raw["model"][order],
            "model_percentile": np.round(pct["model_percentile"][order], 3),
            "coexpression": np.round(raw["coexpression"][order], 4),
            "coexpression_percentile": np.round(pct["coexpression_percentile"][order], 3),
        }
    )
    if "embedding" in raw:
        table["embedding_similarity"] = np.round(raw["embedding"][order], 4)
        table["embedding_percentile"] = np.round(pct["embedding_percentile"][order], 3)
    table["target_frequency"] = target_frequency(record, table["gene"].tolist())
    used = ", ".join(k for k in PARTS if k in raw)
    notes = [
        f"{key}: {known.targets.size} known training targets and {known.non_targets.size} "
        f"known non-targets define the regulon; they and {key} itself are not ranked.",
        f"score = {'the mean of the percentiles of ' + used if method == 'combined' else method}"
        f" within {key}'s row, among the {keep.size:,} other genes (100 = most alike).",
        "known_interaction 'yes': a known pair the model was not trained on (held out). "
        "Hidden targets come from the same assays as the known ones: a high rank says a gene "
        "resembles this TF's known targets, not that it is independently validated.",
    ]
    return Expansion(
        key, method, table, int(known.targets.size), int(known.non_targets.size), notes
    )
