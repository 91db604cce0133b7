"""Building a :class:`~tfcnn.pairs.PairSet` from an expression matrix and known pairs.

Positives are known interactions whose two genes are both in the expression matrix;
negatives come from :mod:`.negatives`, splits from :mod:`.splits`. Every positive left
out (IDs that cannot be mapped, genes missing from the matrix, self-pairs, positives the
negatives strategy cannot match) is counted in ``meta["positives"]["dropped"]``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TfcnnInputError
from ..io.expression import ExpressionMatrix
from ..io.idmap import IdMap
from ..io.ids import id_namespace
from ..io.interactions import Interactions
from .negatives import (
    NEGATIVE_STRATEGIES,
    balance_report,
    degree_matched_negatives,
    encode,
    random_negatives,
    tf_matched_negatives,
)
from .pairset import SPLITS, PairSet, check_splits
from .splits import (
    SPLIT_STRATEGIES,
    assign_splits,
    pair_disjoint_splits,
    tf_fold_layouts,
    tf_group_folds,
)

log = logging.getLogger(__name__)


def align_interactions(
    interactions: Interactions,
    genes: Iterable[str],
    id_map: IdMap | None,
    expression_source: str = "the expression matrix",
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Express interaction pairs in the matrix's ID space (AGI or probeset).

    Returns the (tf, target) frame in that space and counts of pairs lost in mapping.
    """
    pairs = interactions.pairs[["tf", "target"]].copy()
    genes = list(genes)
    expr_ns = id_namespace(genes)
    ids = pd.unique(pd.concat([pairs["tf"], pairs["target"]]))
    int_ns = id_namespace(list(ids))
    report = {"no one-to-one ID mapping": 0}
    if expr_ns == int_ns or "other" in (expr_ns, int_ns):
        return pairs, report
    if id_map is None:
        raise TfcnnInputError(
            f"{expression_source} is keyed by {expr_ns} IDs but the interactions "
            f"({interactions.source}) use {int_ns} IDs: pass `id_map` (for ATH1 arrays "
            "the bundled map is 'ath1-map')."
        )
    mapping, _ = id_map.translate(ids, to=expr_ns)  # type: ignore[arg-type]  # agi/probeset here
    tf = pairs["tf"].map(mapping)
    target = pairs["target"].map(mapping)
    ok = tf.notna() & target.notna()
    report["no one-to-one ID mapping"] = int((~ok).sum())
    return pd.DataFrame({"tf": tf[ok], "target": target[ok]}).drop_duplicates(), report


@dataclass
class _Positives:
    """Known pairs on the matrix, as gene rows, with what was left out and why."""

    tf: np.ndarray
    target: np.ndarray
    known: set[int]  # codes of every pair kept out of the negatives
    dropped: dict[str, int]
    excluded: list[Interactions]


def _positives(
    expression: ExpressionMatrix,
    interactions: Interactions,
    exclude: Interactions | Sequence[Interactions] | None,
    id_map: IdMap | None,
) -> _Positives:
    genes = list(expression.genes)
    n_genes = len(genes)
    index = {g: i for i, g in enumerate(genes)}
    pos, dropped = align_interactions(interactions, genes, id_map, expression.source)
    self_pair = pos["tf"] == pos["target"]
    dropped["self-pair (TF = target)"] = int(self_pair.sum())
    self_in_matrix = int(pos.loc[self_pair, "tf"].isin(index).sum())
    pos = pos[~self_pair]
    tf_in = pos["tf"].isin(index)
    target_in = pos["target"].isin(index)
    dropped["TF not in expression matrix"] = int((~tf_in).sum())
    dropped["target not in expression matrix (TF present)"] = int((tf_in & ~target_in).sum())
    pos = pos[tf_in & target_in]
    if pos.empty:
        if self_in_matrix and not (tf_in & target_in).any():
            raise TfcnnInputError(
                f"every known pair of {interactions.source} that names genes of "
                f"{expression.source} is a self-pair (TF = target), and self-pairs are not "
                "used: give interactions between different genes."
            )
        raise TfcnnInputError(
            f"no known pair from {interactions.source} has both genes in {expression.source}; "
            "check that both use the same gene IDs (AGI codes or probesets) or pass `id_map`."
        )
    pos = pos.drop_duplicates()
    pos_tf = pos["tf"].map(index).to_numpy(np.int64)
    pos_target = pos["target"].map(index).to_numpy(np.int64)
    known = set(encode(pos_tf, pos_target, n_genes).tolist())
    if exclude is None:
        excluded: list[Interactions] = []
    else:
        excluded = [exclude] if isinstance(exclude, Interactions) else list(exclude)
    for extra in [interactions, *excluded]:
        frame, _ = align_interactions(extra, genes, id_map, expression.source)
        frame = frame[frame["tf"].isin(index) & frame["target"].isin(index)]
        known.update(
            encode(
                frame["tf"].map(index).to_numpy(np.int64),
                frame["target"].map(index).to_numpy(np.int64),
                n_genes,
            ).tolist()
        )
    return _Positives(pos_tf, pos_target, known, dropped, excluded)


_DM_DROPPED = "degree-matched: left out so every TF and target is exactly balanced"


def _degree_matched_within(
    pos: _Positives,
    pos_split: np.ndarray,
    n_genes: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Exactly degree-matched negatives drawn inside each split of the positives.

    Balance over the whole set does not balance a split grouped by TF: a target with
    more positives than negatives among the training TFs has fewer among the held-out
    ones, so a target-level score learned in training turns anti-predictive on the test
    split (measured on the bundled compendium: target frequency 0.43 pooled AUROC,
    target-only control 0.36). Drawn within each split, every TF and every target is
    balanced where it is evaluated. Returns (positives kept, neg TFs, neg targets, neg
    splits, balance per split).
    """
    keep = np.zeros(pos.tf.size, dtype=bool)
    neg_tf, neg_target, neg_split, balance = [], [], [], {}
    for name in SPLITS:
        rows = np.flatnonzero(pos_split == name)
        if rows.size == 0:
            continue
        try:
            kept, n_tf, n_target, report = degree_matched_negatives(
                pos.tf[rows], pos.target[rows], n_genes, pos.known, rng
            )
        except TfcnnInputError as exc:
            n_tfs = np.unique(pos.tf[rows]).size
            raise TfcnnInputError(
                f"the {name} split ({n_tfs} TF(s)): {exc} Negatives are drawn within each "
                "split so that every TF and target is balanced where it is tested; a split "
                "needs TFs whose targets differ. Use data with more TFs, fewer folds, or "
                "`negatives` tf-matched."
            ) from exc
        keep[rows[kept]] = True
        neg_tf.append(n_tf)
        neg_target.append(n_target)
        neg_split.append(np.full(n_tf.size, name, dtype=object))
        balance[name] = report
    return (
        keep,
        np.concatenate(neg_tf),
        np.concatenate(neg_target),
        np.concatenate(neg_split),
        balance,
    )


def build_pair_set(
    expression: ExpressionMatrix,
    interactions: Interactions,
    *,
    negatives: str = "random",
    split: str = "random",
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    exclude: Interactions | Sequence[Interactions] | None = None,
    id_map: IdMap | None = None,
) -> PairSet:
    """Positives from ``interactions``, seeded negatives and splits, on ``expression``.

    Negatives are never a pair of ``interactions`` (all its rows, including those that
    could not be used as positives) nor of ``exclude``: further pairs to keep out of the
    negative pool. Keep that to the evidence the positives stand for: excluding other
    evidence (binding assays not used as positives, say) makes it a label shortcut.

    With ``split="tf-holdout"`` and degree-matched negatives, the TFs are split first and
    negatives drawn within each split (see :func:`_degree_matched_within`).
    """
    _check_strategies(negatives, split, fractions)
    rng = np.random.default_rng(seed)
    n_genes = len(expression.genes)
    pos = _positives(expression, interactions, exclude, id_map)
    if split != "random" and np.unique(pos.tf).size < 3:
        raise TfcnnInputError(
            f"{split} needs known targets for at least 3 TFs (found {np.unique(pos.tf).size})"
            "; use `split` random."
        )
    dropped = pos.dropped
    if split == "tf-holdout" and negatives == "degree-matched":
        pos_split = assign_splits(np.ones(pos.tf.size), pos.tf, tuple(fractions), rng)
        keep, neg_tf, neg_target, neg_split, per_split = _degree_matched_within(
            pos, pos_split, n_genes, rng
        )
        _report_dropped(dropped, _DM_DROPPED, keep)
        tf_idx, target_idx, labels = _labelled(pos, keep, neg_tf, neg_target)
        split_names = np.concatenate([pos_split[keep], neg_split])
        drawn = _Drawn(tf_idx, target_idx, labels, split_names, negatives, split, seed, fractions)
        return _finish(expression, interactions, id_map, pos, drawn, per_split, {})
    if negatives == "random":
        keep = np.ones(pos.tf.size, dtype=bool)
        neg_tf, neg_target = random_negatives(pos.tf.size, n_genes, pos.known, rng)
    elif negatives == "explicit":
        keep = np.ones(pos.tf.size, dtype=bool)
        neg_tf, neg_target = _explicit_negatives(expression, interactions, id_map, pos.known)
    elif negatives == "degree-matched":
        keep, neg_tf, neg_target, _ = degree_matched_negatives(
            pos.tf, pos.target, n_genes, pos.known, rng
        )
        _report_dropped(dropped, _DM_DROPPED, keep)
    else:
        keep, neg_tf, neg_target, capped = tf_matched_negatives(
            pos.tf, pos.target, n_genes, pos.known, rng
        )
        dropped["capped: TF has too few non-targets for tf-matched negatives"] = sum(
            capped.values()
        )
        if capped:
            log.warning(
                "%d positives of %d TF(s) were left out so that each TF has as many negatives "
                "as positives (too few genes that are not its known targets), e.g. %s",
                sum(capped.values()),
                len(capped),
                ", ".join(f"{expression.genes[int(t)]} ({n})" for t, n in list(capped.items())[:3]),
            )
    balance = balance_report(pos.tf[keep], pos.target[keep], neg_tf, neg_target)
    tf_idx, target_idx, labels = _labelled(pos, keep, neg_tf, neg_target)
    extra: dict[str, Any] = {}
    if split == "pair-disjoint":
        split_names = pair_disjoint_splits(tf_idx, target_idx, labels, n_genes, fractions, rng)
        kept = split_names != None  # noqa: E711 (object array)
        extra["pair_disjoint_discarded"] = int((~kept).sum())
        dropped["pair-disjoint: TF and target in different splits"] = int(
            (~kept & (labels == 1)).sum()
        )
        tf_idx, target_idx, labels = tf_idx[kept], target_idx[kept], labels[kept]
        split_names = split_names[kept]
    else:
        groups = tf_idx if split == "tf-holdout" else None
        split_names = assign_splits(labels, groups, tuple(fractions), rng)
    drawn = _Drawn(tf_idx, target_idx, labels, split_names, negatives, split, seed, fractions)
    return _finish(expression, interactions, id_map, pos, drawn, {"before_split": balance}, extra)


def _labelled(
    pos: _Positives, keep: np.ndarray, neg_tf: np.ndarray, neg_target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(TF rows, target rows, labels): the kept positives (label 1), then the negatives (0)."""
    tf_idx = np.concatenate([pos.tf[keep], neg_tf])
    target_idx = np.concatenate([pos.target[keep], neg_target])
    labels = np.r_[np.ones(int(keep.sum()), np.int64), np.zeros(neg_tf.size, np.int64)]
    return tf_idx, target_idx, labels


def build_tf_folds(
    expression: ExpressionMatrix,
    interactions: Interactions,
    n_folds: int = 5,
    *,
    negatives: str = "degree-matched",
    seed: int = 0,
    validation_fraction: float = 0.1,
    exclude: Interactions | Sequence[Interactions] | None = None,
    id_map: IdMap | None = None,
    only: int | None = None,
) -> list[PairSet]:
    """``n_folds`` pair sets holding whole TFs out (cross-validation grouped by TF).

    TFs are dealt to folds as :func:`~tfcnn.pairs.splits.tf_group_folds` does. With
    degree-matched negatives, each fold's negatives are drawn within each of its splits
    (train, validation, test), so every TF and every target is exactly balanced where it
    is trained and where it is tested; other negatives are drawn once for all folds.
    ``only``: build just that fold (a list of one; each fold has its own seeded draw, so
    it equals the same fold built with the others, at a fraction of the cost).
    """
    if negatives != "degree-matched":
        base = build_pair_set(
            expression,
            interactions,
            negatives=negatives,
            split="random",
            seed=seed,
            exclude=exclude,
            id_map=id_map,
        )
        folds = tf_group_folds(base, n_folds, seed=seed, validation_fraction=validation_fraction)
        return folds if only is None else [folds[only]]
    _check_strategies(negatives, "tf-holdout", (0.8, 0.1, 0.1))
    pos = _positives(expression, interactions, exclude, id_map)
    n_genes = len(expression.genes)
    # TFs are dealt by the positives that exact balance can keep (a hub TF's excess would
    # otherwise crowd the validation split down to one or two TFs).
    balanced, _, _, _ = degree_matched_negatives(
        pos.tf, pos.target, n_genes, pos.known, np.random.default_rng(seed)
    )
    tfs, layouts = tf_fold_layouts(
        np.r_[pos.tf[balanced], pos.tf[balanced]],
        np.r_[np.ones(int(balanced.sum())), np.zeros(int(balanced.sum()))],
        n_folds,
        seed=seed,
        validation_fraction=validation_fraction,
    )
    missing = np.setdiff1d(pos.tf, tfs)  # TFs none of whose positives can be balanced
    where = np.searchsorted(tfs, pos.tf).clip(0, tfs.size - 1)
    out = []
    for k, layout in enumerate(layouts):
        if only is not None and k != only:
            continue
        rng = np.random.default_rng([seed, k])
        pos_split = np.array(SPLITS, dtype=object)[layout[where]]
        pos_split[np.isin(pos.tf, missing)] = "none"  # cannot be balanced in any split
        dropped = dict(pos.dropped)
        keep, neg_tf, neg_target, neg_split, per_split = _degree_matched_within(
            pos, pos_split, n_genes, rng
        )
        _report_dropped(dropped, _DM_DROPPED, keep)
        fold_pos = _Positives(pos.tf, pos.target, pos.known, dropped, pos.excluded)
        tf_idx, target_idx, labels = _labelled(pos, keep, neg_tf, neg_target)
        split_names = np.concatenate([pos_split[keep], neg_split])
        drawn = _Drawn(
            tf_idx, target_idx, labels, split_names, negatives, "tf-kfold", seed, (0.8, 0.1, 0.1)
        )
        fold = {"fold": k, "n_folds": n_folds}
        out.append(_finish(expression, interactions, id_map, fold_pos, drawn, per_split, fold))
    return out


def _explicit_negatives(
    expression: ExpressionMatrix,
    interactions: Interactions,
    id_map: IdMap | None,
    known: set[int],
) -> tuple[np.ndarray, np.ndarray]:
    """The table's own non-edges (label 0 rows, e.g. DREAM5 gold standards) on the matrix.

    They are used as they are: no TF or target balance is imposed (the pair set reports
    how balanced they are), so an assay's choice of what to test can still be a shortcut.
    """
    genes = list(expression.genes)
    index = {g: i for i, g in enumerate(genes)}
    frame, _ = align_interactions(
        interactions.negatives_as_interactions(), genes, id_map, expression.source
    )
    frame = frame[
        frame["tf"].isin(index) & frame["target"].isin(index) & (frame["tf"] != frame["target"])
    ]
    tf = frame["tf"].map(index).to_numpy(np.int64)
    target = frame["target"].map(index).to_numpy(np.int64)
    ok = ~np.isin(encode(tf, target, len(genes)), np.fromiter(known, np.int64, len(known)))
    if not ok.any():
        raise TfcnnInputError(
            f"{interactions.source}: none of its label 0 rows (explicit non-edges) names two "
            f"genes of {expression.source}; use another `negatives` strategy."
        )
    return tf[ok], target[ok]


def _check_strategies(negatives: str, split: str, fractions: tuple[float, ...]) -> None:
    if negatives not in NEGATIVE_STRATEGIES:
        raise TfcnnInputError(
            f"unknown negatives {negatives!r}; choose {' or '.join(NEGATIVE_STRATEGIES)}."
        )
    if split not in SPLIT_STRATEGIES:
        raise TfcnnInputError(f"unknown split {split!r}; choose {' or '.join(SPLIT_STRATEGIES)}.")
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise TfcnnInputError(
            f"split fractions must be three positive numbers summing to 1, got {fractions}."
        )


def _report_dropped(dropped: dict[str, int], reason: str, keep: np.ndarray) -> None:
    dropped[reason] = int((~keep).sum())
    if (~keep).any():
        log.warning(
            "degree-matched negatives: %d of %d positives were left out so that every TF and "
            "every target has exactly as many negatives as positives",
            int((~keep).sum()),
            keep.size,
        )


@dataclass(frozen=True)
class _Drawn:
    """Labelled pairs as drawn (gene rows, labels, split names) and how they were drawn."""

    tf: np.ndarray
    target: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    negatives: str
    split: str
    seed: int
    fractions: tuple[float, ...]


def _finish(
    expression: ExpressionMatrix,
    interactions: Interactions,
    id_map: IdMap | None,
    pos: _Positives,
    drawn: _Drawn,
    balance: dict[str, Any],
    extra: dict[str, Any],
) -> PairSet:
    """The pair set: table, its summary (meta) and the known pairs; splits checked."""
    tf_idx, target_idx, labels, split_names = drawn.tf, drawn.target, drawn.labels, drawn.splits
    negatives, split, seed, fractions = drawn.negatives, drawn.split, drawn.seed, drawn.fractions
    genes = list(expression.genes)
    gene_arr = np.array(genes, dtype=object)
    kind = np.where(labels == 1, "positive", f"negative-{negatives}")
    table = pd.DataFrame(
        {
            "tf": gene_arr[tf_idx],
            "target": gene_arr[target_idx],
            "label": labels,
            "split": split_names,
            "kind": kind,
        }
    )
    tf_counts = Counter(table.loc[table["label"] == 1, "tf"])
    top_tf, top_n = tf_counts.most_common(1)[0]
    n_pos_kept = int((labels == 1).sum())
    n_input = len(interactions)
    meta = {
        "expression": {
            "source": expression.source,
            "n_genes": len(genes),
            "n_samples": expression.n_samples,
            "dropped_constant": len(expression.dropped_constant),
        },
        "interactions": {
            "source": interactions.source,
            "n_pairs": n_input,
            # Enough to read the same pairs back (e.g. to flag known pairs in predictions).
            "evidence": (
                sorted(_evidence_values(interactions)) if interactions.has_evidence else None
            ),
            "id_map": id_map.source if id_map is not None else None,
        },
        "excluded_from_negatives": [e.source for e in pos.excluded] or None,
        "negative_pool": {
            "excluded_evidence": sorted(
                {v for e in [interactions, *pos.excluded] for v in _evidence_values(e)}
            ),
            "excluded_pairs": len(pos.known),
            "policy": (
                "only the positives' own pairs (their evidence types) are kept out of negatives"
                if not pos.excluded
                else "the positives' own pairs and those of "
                + ", ".join(str(e.source) for e in pos.excluded)
                + " are kept out of negatives"
            ),
        },
        "balance": balance,
        "negatives": negatives,
        "split": split,
        "fractions": list(fractions),
        "seed": seed,
        **extra,
        "positives": {"input_pairs": n_input, "kept": n_pos_kept, "dropped": pos.dropped},
        "n_regulators": len(tf_counts),
        "top_regulator": {"id": top_tf, "positives": top_n, "share": round(top_n / n_pos_kept, 4)},
    }
    result = PairSet(
        table=table,
        zscores=expression.zscored(),
        genes=tuple(genes),
        samples=tuple(expression.samples),
        meta=meta,
        known=np.fromiter(pos.known, dtype=np.int64, count=len(pos.known)),
    )
    check_splits(result)
    return result


def _evidence_values(interactions: Interactions) -> set[str]:
    """The evidence values of a table with an evidence column (empty without one)."""
    if not interactions.has_evidence:
        return set()
    return {v for joined in interactions.pairs["evidence"] for v in str(joined).split(";") if v}
