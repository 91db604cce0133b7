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
from .pairset import PairSet, check_splits
from .splits import SPLIT_STRATEGIES, assign_splits, pair_disjoint_splits

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
    """
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
    rng = np.random.default_rng(seed)
    genes = list(expression.genes)
    n_genes = len(genes)
    index = {g: i for i, g in enumerate(genes)}

    pos, dropped = align_interactions(interactions, genes, id_map, expression.source)
    n_input = len(interactions)
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
    excluded = (
        [] if exclude is None else [exclude] if isinstance(exclude, Interactions) else exclude
    )
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

    capped: dict[str, int] = {}
    if negatives == "random":
        neg_tf, neg_target = random_negatives(pos_tf.size, n_genes, known, rng)
    elif negatives == "degree-matched":
        keep, neg_tf, neg_target, _ = degree_matched_negatives(
            pos_tf, pos_target, n_genes, known, rng
        )
        pos_tf, pos_target = pos_tf[keep], pos_target[keep]
        dropped["degree-matched: left out so every TF and target is exactly balanced"] = int(
            (~keep).sum()
        )
        if (~keep).any():
            log.warning(
                "degree-matched negatives: %d of %d positives were left out so that every TF "
                "and every target has exactly as many negatives as positives",
                int((~keep).sum()),
                keep.size,
            )
    else:
        keep, neg_tf, neg_target, capped = tf_matched_negatives(
            pos_tf, pos_target, n_genes, known, rng
        )
        pos_tf, pos_target = pos_tf[keep], pos_target[keep]
    dropped["capped: TF has too few non-targets for tf-matched negatives"] = sum(capped.values())
    if capped:
        log.warning(
            "%d positives of %d TF(s) were left out so that each TF has as many negatives "
            "as positives (too few genes that are not its known targets), e.g. %s",
            sum(capped.values()),
            len(capped),
            ", ".join(f"{genes[int(t)]} ({n})" for t, n in list(capped.items())[:3]),
        )

    balance = balance_report(pos_tf, pos_target, neg_tf, neg_target)
    tf_idx = np.concatenate([pos_tf, neg_tf])
    target_idx = np.concatenate([pos_target, neg_target])
    labels = np.concatenate([np.ones(pos_tf.size, np.int64), np.zeros(neg_tf.size, np.int64)])
    kind = np.array(["positive"] * pos_tf.size + [f"negative-{negatives}"] * neg_tf.size)
    groups = tf_idx if split == "tf-holdout" else None
    if split != "random" and np.unique(pos_tf).size < 3:
        raise TfcnnInputError(
            f"{split} needs known targets for at least 3 TFs (found {np.unique(pos_tf).size})"
            "; use `split` random."
        )
    n_discarded = 0
    if split == "pair-disjoint":
        split_names = pair_disjoint_splits(tf_idx, target_idx, labels, n_genes, fractions, rng)
        kept = split_names != None  # noqa: E711 (object array)
        n_discarded = int((~kept).sum())
        dropped["pair-disjoint: TF and target in different splits"] = int(
            (~kept & (labels == 1)).sum()
        )
        tf_idx, target_idx, labels = tf_idx[kept], target_idx[kept], labels[kept]
        kind, split_names = kind[kept], split_names[kept]
    else:
        split_names = assign_splits(labels, groups, tuple(fractions), rng)

    gene_arr = np.array(genes, dtype=object)
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
    meta = {
        "expression": {
            "source": expression.source,
            "n_genes": n_genes,
            "n_samples": expression.n_samples,
            "dropped_constant": len(expression.dropped_constant),
        },
        "interactions": {
            "source": interactions.source,
            "n_pairs": n_input,
            # Enough to read the same pairs back (e.g. to flag known pairs in predictions).
            "evidence": sorted(_evidence_values(interactions))
            if interactions.has_evidence
            else None,
            "id_map": id_map.source if id_map is not None else None,
        },
        "excluded_from_negatives": [e.source for e in excluded] or None,
        "negative_pool": {
            "excluded_evidence": sorted(
                {v for e in [interactions, *excluded] for v in _evidence_values(e)}
            ),
            "excluded_pairs": len(known),
        },
        "balance": {"before_split": balance},
        "negatives": negatives,
        "split": split,
        "fractions": list(fractions),
        "seed": seed,
        **({"pair_disjoint_discarded": n_discarded} if split == "pair-disjoint" else {}),
        "positives": {"input_pairs": n_input, "kept": n_pos_kept, "dropped": dropped},
        "n_regulators": len(tf_counts),
        "top_regulator": {"id": top_tf, "positives": top_n, "share": round(top_n / n_pos_kept, 4)},
    }
    result = PairSet(
        table=table,
        zscores=expression.zscored(),
        genes=tuple(genes),
        samples=tuple(expression.samples),
        meta=meta,
        known=np.fromiter(known, dtype=np.int64, count=len(known)),
    )
    check_splits(result)
    return result


def _evidence_values(interactions: Interactions) -> set[str]:
    """The evidence values of a table with an evidence column (empty without one)."""
    if not interactions.has_evidence:
        return set()
    return {v for joined in interactions.pairs["evidence"] for v in str(joined).split(";") if v}
