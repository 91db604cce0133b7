"""How far the labels themselves agree: the ceiling any model's AUROC should be read against.

When the known interactions come from several assays (ChIP-seq, DAP-seq, TARGET, ...),
one assay's calls can be scored as a predictor of another's, for the same TF over all
genes: an AUROC within that TF (a gene is "predicted" when the first assay calls it).
If two binding experiments on the same TF agree at an AUROC of 0.55-0.65, a model that
reaches 0.58 within targets is "as informative as a second binding experiment", and a
figure far above the assays' agreement is more likely a leak than a discovery.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..io.interactions import Interactions
from .metrics import auroc

#: TFs need at least this many calls in both assays to be scored.
MIN_CALLS = 5


def assay_agreement(
    interactions: Interactions,
    genes: Sequence[str],
    evidence: Sequence[str] | None = None,
    min_calls: int = MIN_CALLS,
) -> dict[str, Any]:
    """AUROC of assay A's calls as a predictor of assay B's, per TF, over ``genes``.

    Returns ``{"pairs": [{"predictor", "truth", "tfs", "median", "low", "high",
    "per_tf": {tf: auroc}}], "overall": {"median", "q25", "q75", "comparisons"}}`` (over
    every TF and assay pair); empty when the table has no evidence column or fewer than
    two assays share a TF.
    """
    if not interactions.has_evidence:
        return {"pairs": [], "overall": None}
    genes = list(genes)
    index = {g: i for i, g in enumerate(genes)}
    frame = interactions.pairs[["tf", "target", "evidence"]]
    calls: dict[str, dict[str, set[int]]] = {}
    for tf, target, joined in frame.itertuples(index=False, name=None):
        j = index.get(target)
        if j is None or tf not in index or tf == target:
            continue
        for value in str(joined).split(";"):
            if value and (evidence is None or value in evidence):
                calls.setdefault(value, {}).setdefault(tf, set()).add(j)
    assays = sorted(calls)
    out: list[dict[str, Any]] = []
    for a in assays:
        for b in assays:
            if a == b:
                continue
            per_tf = {}
            for tf in sorted(set(calls[a]) & set(calls[b])):
                if min(len(calls[a][tf]), len(calls[b][tf])) < min_calls:
                    continue
                others = np.ones(len(genes), dtype=bool)
                others[index[tf]] = False
                predictor = np.zeros(len(genes))
                predictor[list(calls[a][tf])] = 1.0
                truth = np.zeros(len(genes), dtype=int)
                truth[list(calls[b][tf])] = 1
                agreement = auroc(truth[others], predictor[others])
                if agreement is not None:
                    per_tf[tf] = agreement
            if per_tf:
                values = np.array(list(per_tf.values()))
                out.append(
                    {
                        "predictor": a,
                        "truth": b,
                        "tfs": len(per_tf),
                        "median": float(np.median(values)),
                        "low": float(values.min()),
                        "high": float(values.max()),
                        "per_tf": per_tf,
                    }
                )
    every = np.array([v for p in out for v in p["per_tf"].values()])
    overall = (
        {
            "median": float(np.median(every)),
            "q25": float(np.quantile(every, 0.25)),
            "q75": float(np.quantile(every, 0.75)),
            "comparisons": int(every.size),
        }
        if every.size
        else None
    )
    return {"pairs": out, "overall": overall}
