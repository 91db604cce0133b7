"""Negative pairs: never a known pair, drawn by one of three strategies.

* ``random``: any two distinct genes (the study's choice). The regulator of a negative
  is then usually not a TF at all, so a model can score well by recognising TFs: an
  evaluation artefact, kept so users can see it.
* ``tf-matched``: each positive TF paired with genes that are not its known targets, so
  every TF is as frequent among negatives as among positives. When a TF has more known
  targets than there are other genes to draw from, its positives are subsampled to the
  available negatives (reported), keeping the match exact.
* ``degree-matched``: every TF *and* every target exactly as frequent among negatives as
  among positives (see :func:`degree_matched_negatives`), dropping the fewest positives
  that makes this possible. Then no score of the TF alone or of the target alone carries
  any label information.

* ``explicit``: the non-edges an edge table lists itself (a 0/1 label column, as DREAM5's
  gold standards): used as they are, with their balance reported, not imposed.

"Known" pairs are those the caller keeps out of the negative pool: by default the
positives' own evidence types only. Excluding other evidence (e.g. DAP-seq binding when
positives are ChIP-seq and TARGET) would make "bound by DAP-seq" a label shortcut: a
DAP-bound feature then scores well on negatives drawn from unbound pairs only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import TfcnnInputError

NEGATIVE_STRATEGIES = ("random", "tf-matched", "degree-matched", "explicit")


def encode(tf_idx: np.ndarray, target_idx: np.ndarray, n_genes: int) -> np.ndarray:
    return tf_idx.astype(np.int64) * n_genes + target_idx.astype(np.int64)


def random_negatives(
    n: int, n_genes: int, known: set[int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct ordered gene pairs (i != j) that are not known pairs."""
    capacity = n_genes * (n_genes - 1) - len(known)
    if capacity < n:
        raise TfcnnInputError(
            f"only {capacity} unknown gene pairs exist among {n_genes} genes, fewer than the "
            f"{n} negatives needed; use a larger expression matrix."
        )
    chosen: dict[int, None] = {}
    while len(chosen) < n:
        m = 2 * (n - len(chosen)) + 16
        a = rng.integers(0, n_genes, m)
        b = rng.integers(0, n_genes, m)
        for code, i, j in zip(encode(a, b, n_genes).tolist(), a.tolist(), b.tolist(), strict=True):
            if i != j and code not in known and code not in chosen:
                chosen[code] = None
                if len(chosen) == n:
                    break
    codes = np.fromiter(chosen, dtype=np.int64, count=n)
    return codes // n_genes, codes % n_genes


def tf_matched_negatives(
    pos_tf: np.ndarray,
    pos_target: np.ndarray,
    n_genes: int,
    known: set[int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """One negative per positive, same TF: (positives kept, neg TFs, neg targets, capped)."""
    keep = np.ones(pos_tf.size, dtype=bool)
    neg_tf, neg_target = [], []
    capped: dict[str, int] = {}
    all_genes = np.arange(n_genes)
    known_arr = np.fromiter(known, dtype=np.int64, count=len(known))
    for tf in np.unique(pos_tf):
        rows = np.flatnonzero(pos_tf == tf)
        lo, hi = tf * n_genes, (tf + 1) * n_genes
        blocked = known_arr[(known_arr >= lo) & (known_arr < hi)] - lo
        free = np.ones(n_genes, dtype=bool)
        free[blocked] = False
        free[tf] = False
        candidates = all_genes[free]
        k = rows.size
        if candidates.size < k:
            dropped = rng.choice(rows, size=k - candidates.size, replace=False)
            keep[dropped] = False
            capped[str(tf)] = int(k - candidates.size)
            k = candidates.size
        neg_tf.append(np.full(k, tf))
        neg_target.append(rng.choice(candidates, size=k, replace=False))
    return keep, np.concatenate(neg_tf), np.concatenate(neg_target), capped


def degree_matched_negatives(
    pos_tf: np.ndarray,
    pos_target: np.ndarray,
    n_genes: int,
    known: set[int],
    rng: np.random.Generator,
    swaps_per_edge: float = 10.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Exactly degree-matched negatives: (positives kept, neg TFs, neg targets, balance).

    Every kept TF and every kept target has as many negatives as positives; no negative
    is a known pair (``known``: codes ``tf * n_genes + target``), a self-pair or a
    duplicate; and the fewest positives are dropped that make this possible (hub TFs
    with more targets than non-targets force some out).

    Choosing the kept positives and the negatives together is a maximum circulation:
    every allowed negative edge runs TF -> target and every positive edge target -> TF,
    each of capacity 1; a circulation balances each node, and its size is the number of
    kept positives. The constraint matrix is a network matrix (totally unimodular), so
    the integer program solves exactly (HiGHS, :func:`scipy.optimize.milp`): first the
    largest size, then, at that size, a seeded random objective picks which positives go
    and a first negative graph; degree-preserving double-edge swaps then mix the
    negatives. The balance is exact by construction and checked.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    pos_tf = np.asarray(pos_tf, dtype=np.int64)
    pos_target = np.asarray(pos_target, dtype=np.int64)
    forbidden = set(known) | set(encode(pos_tf, pos_target, n_genes).tolist())
    tfs, tf_node = np.unique(pos_tf, return_inverse=True)
    targets, target_node = np.unique(pos_target, return_inverse=True)
    # Candidates: a TF with positives x a target with positives (any other gene would have
    # negatives but no positives), neither known nor a self-pair.
    cand_tf = np.repeat(np.arange(tfs.size), targets.size)
    cand_target = np.tile(np.arange(targets.size), tfs.size)
    codes = encode(tfs[cand_tf], targets[cand_target], n_genes)
    allowed = (tfs[cand_tf] != targets[cand_target]) & ~np.isin(
        codes, np.fromiter(forbidden, np.int64, count=len(forbidden))
    )
    cand_tf, cand_target = cand_tf[allowed], cand_target[allowed]
    n_pos, n_neg = pos_tf.size, cand_tf.size
    if n_neg == 0:
        raise TfcnnInputError(
            "degree-matched negatives are impossible here: every pair of a TF and a target "
            "with known targets is itself known. Use `negatives` tf-matched or random."
        )
    # Row per node: (positive degree) - (negative degree) = 0.
    rows = np.concatenate([tf_node, tfs.size + target_node, cand_tf, tfs.size + cand_target])
    cols = np.concatenate(
        [np.arange(n_pos), np.arange(n_pos), n_pos + np.arange(n_neg), n_pos + np.arange(n_neg)]
    )
    vals = np.concatenate([np.ones(2 * n_pos), -np.ones(2 * n_neg)])
    n_var = n_pos + n_neg
    balance = LinearConstraint(
        coo_matrix((vals, (rows, cols)), shape=(tfs.size + targets.size, n_var)).tocsr(), 0, 0
    )

    def solve(objective: np.ndarray, extra: list[LinearConstraint]) -> np.ndarray:
        res = milp(
            c=objective,
            constraints=[balance, *extra],
            integrality=np.ones(n_var, dtype=np.uint8),
            bounds=Bounds(0.0, 1.0),
        )
        if res.status != 0 or res.x is None:
            raise TfcnnInputError(f"degree-matched negatives: the solver failed ({res.message}).")
        return np.rint(res.x).astype(bool)

    largest = int(solve(np.concatenate([-np.ones(n_pos), np.zeros(n_neg)]), [])[:n_pos].sum())
    if largest == 0:
        raise TfcnnInputError(
            "degree-matched negatives are impossible here: no positive can be balanced. "
            "Use `negatives` tf-matched or random."
        )
    size = LinearConstraint(
        coo_matrix((np.ones(n_pos), (np.zeros(n_pos), np.arange(n_pos))), shape=(1, n_var)),
        largest,
        largest,
    )
    chosen = solve(rng.random(n_var), [size])
    keep = chosen[:n_pos]
    neg_tf = tfs[cand_tf[chosen[n_pos:]]]
    neg_target = targets[cand_target[chosen[n_pos:]]]
    neg_tf, neg_target = _mix(neg_tf, neg_target, forbidden, n_genes, rng, swaps_per_edge)
    order = rng.permutation(neg_tf.size)
    neg_tf, neg_target = neg_tf[order], neg_target[order]
    report = balance_report(pos_tf[keep], pos_target[keep], neg_tf, neg_target)
    report["positives_dropped_for_balance"] = int((~keep).sum())
    neg_codes = encode(neg_tf, neg_target, n_genes)
    if (
        report["tf_balanced"] != 1.0
        or report["target_balanced"] != 1.0
        or np.unique(neg_codes).size != neg_codes.size
        or any(c in forbidden for c in neg_codes.tolist())
        or np.any(neg_tf == neg_target)
    ):  # pragma: no cover - a tfcnn bug if it happens
        raise RuntimeError("degree-matched negatives failed their own checks")
    return keep, neg_tf, neg_target, report


def _mix(
    tf: np.ndarray,
    target: np.ndarray,
    forbidden: set[int],
    n_genes: int,
    rng: np.random.Generator,
    swaps_per_edge: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Degree-preserving double-edge swaps (a, b), (c, d) -> (a, d), (c, b), seeded."""
    tf_l, tg_l = tf.tolist(), target.tolist()
    n = len(tf_l)
    attempts = int(round(swaps_per_edge * n))
    if n < 2 or attempts == 0:
        return tf, target
    present = set(encode(tf, target, n_genes).tolist())
    firsts, seconds = rng.integers(0, n, attempts).tolist(), rng.integers(0, n, attempts).tolist()
    for a, b in zip(firsts, seconds, strict=True):
        ta, ga, tb, gb = tf_l[a], tg_l[a], tf_l[b], tg_l[b]
        if ta == tb or ga == gb or ta == gb or tb == ga:
            continue
        new_a, new_b = ta * n_genes + gb, tb * n_genes + ga
        if new_a in present or new_b in present or new_a in forbidden or new_b in forbidden:
            continue
        present.difference_update((ta * n_genes + ga, tb * n_genes + gb))
        present.update((new_a, new_b))
        tg_l[a], tg_l[b] = gb, ga
    return np.asarray(tf_l, dtype=np.int64), np.asarray(tg_l, dtype=np.int64)


def balance_report(
    pos_tf: np.ndarray, pos_target: np.ndarray, neg_tf: np.ndarray, neg_target: np.ndarray
) -> dict[str, Any]:
    """How closely the negatives match the positives' TF and target frequencies.

    A node is balanced when it has as many negatives as positives; shares are over the
    nodes with at least one of either. Reported for every strategy, so the achieved
    balance is a number, not a name.
    """

    def share(p: np.ndarray, q: np.ndarray) -> tuple[float, int]:
        nodes = np.union1d(p, q)
        if nodes.size == 0:
            return 1.0, 0
        cp = pd.Series(p).value_counts().reindex(nodes, fill_value=0).to_numpy()
        cn = pd.Series(q).value_counts().reindex(nodes, fill_value=0).to_numpy()
        return float(np.mean(cp == cn)), int(np.abs(cp - cn).sum())

    tf_share, tf_off = share(pos_tf, neg_tf)
    target_share, target_off = share(pos_target, neg_target)
    return {
        "tf_balanced": round(tf_share, 4),
        "target_balanced": round(target_share, 4),
        "tf_imbalance": tf_off,
        "target_imbalance": target_off,
    }
