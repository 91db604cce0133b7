"""One evaluation for every command that reports a metric: the model beside its controls.

A model's test pairs are scored by the model, by baselines that read expression (Pearson
r) and by **node-identity controls** that cannot read any TF/target relation:

* ``tf_only``: a small MLP on the TF's profile alone, fit on the training pairs;
* ``target_only``: the same on the target's profile alone;
* ``target_frequency``: how often the target was a positive's target in training
  (expression not used at all).

Every score gets pooled, within-target and within-TF AUROC and AUPRC
(:mod:`tfcnn.evaluation.ranking`). For each of the three AUROCs, the model is compared
with the best control: the difference and its 95% CI from a paired bootstrap that
resamples TFs. The headline is the within-target figure (controls that recognise
targets score exactly 0.5 there); plain-words warnings say where a control matches or
beats the model, so no number is read without its shortcut beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .baselines import pearson_scores, single_profile_scores, target_frequency_scores
from .metrics import binary_metrics
from .ranking import GROUPINGS, paired_bootstrap, ranking_metrics

if TYPE_CHECKING:
    from ..pairs import PairSet

CONTROLS = ("tf_only", "target_only", "target_frequency")
LABELS = {
    "model": "model",
    "cnn": "CNN",
    "two_tower": "two-tower model",
    "pearson": "Pearson r",
    "tf_only": "TF-only control",
    "target_only": "target-only control",
    "target_frequency": "target-frequency control",
}
KIND_LABELS = {"within_target": "within-target", "within_tf": "within-TF", "pooled": "pooled"}
#: The figure users should read first: immune to target identity, TF identity averaged out.
HEADLINE = "within_target"
#: A control within this much of the model (AUROC) "matches" it.
MATCH_MARGIN = 0.02
DEFAULT_BOOTSTRAP = 1000


def node_controls(pairs: PairSet, split: str = "test", seed: int = 0) -> dict[str, np.ndarray]:
    """The three node-identity controls' scores on ``split``, fit on the train split."""
    x_train, y_train = pairs.arrays("train")
    mask = pairs.mask(split)
    x_test = pairs.x[mask]
    t = pairs.table
    train_targets = t.loc[(t["split"] == "train") & (t["label"] == 1), "target"]
    return {
        "tf_only": single_profile_scores(x_train, y_train, x_test, row=0, seed=seed),
        "target_only": single_profile_scores(x_train, y_train, x_test, row=1, seed=seed),
        "target_frequency": target_frequency_scores(train_targets, t.loc[mask, "target"]),
    }


def compare_with_controls(
    y: np.ndarray,
    tf: np.ndarray,
    target: np.ndarray,
    scores: Mapping[str, np.ndarray],
    model: str,
    controls: Sequence[str] = CONTROLS,
    fold: np.ndarray | None = None,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    auprc: bool = True,
    also: Sequence[str] = (),
) -> dict[str, Any]:
    """Ranking metrics of every score, and ``model`` minus the best control with CIs.

    Returns ``{"methods": {name: metrics}, "versus_best_control": {kind: {...}},
    "warnings": [...]}``; ``kind`` is pooled / within_target / within_tf.
    ``auprc=False`` leaves the AUPRCs out. ``also``: further models compared
    with the same best controls in the same bootstrap (the same resampled TFs), each
    under ``"models"``: ``{name: {"versus_best_control": ..., "warnings": [...]}}``.
    """
    methods = {
        name: ranking_metrics(y, s, tf, target, fold, auprc=auprc) for name, s in scores.items()
    }
    versus: dict[str, Any] = {}
    present = [c for c in controls if c in scores]
    best: dict[str, str] = {}
    for kind in GROUPINGS:
        values = {c: methods[c][f"{kind}_auroc"] for c in present}
        known = {c: v for c, v in values.items() if v is not None}
        if known:
            best[kind] = max(known, key=lambda c: known[c])
    models = [model, *(m for m in also if m != model)]
    pairs_to_compare = sorted({(m, c) for m in models for c in best.values()})
    boot = paired_bootstrap(
        y, scores, pairs_to_compare, tf, target, fold, GROUPINGS, n_boot=n_boot, seed=seed
    )
    for m in models:
        versus[m] = {
            kind: {
                "control": control,
                "model_auroc": methods[m][f"{kind}_auroc"],
                "control_auroc": methods[control][f"{kind}_auroc"],
                **boot[kind][f"{m} - {control}"],
            }
            for kind, control in best.items()
        }
    out: dict[str, Any] = {
        "methods": methods,
        "versus_best_control": versus[model],
        "warnings": control_warnings(methods[model], versus[model], LABELS.get(model, model)),
        "bootstrap": {"replicates": n_boot, "resampled": "TFs", "seed": seed},
    }
    if len(models) > 1:
        out["models"] = {
            m: {
                "versus_best_control": versus[m],
                "warnings": control_warnings(methods[m], versus[m], LABELS.get(m, m)),
            }
            for m in models[1:]
        }
    return out


def control_warnings(
    model_metrics: Mapping[str, float | None], versus: Mapping[str, Any], who: str = "model"
) -> list[str]:
    """Plain-words warnings where a node-identity control matches or beats the model."""
    out: list[str] = []
    head = versus.get(HEADLINE)
    if head and head.get("difference") is not None and head["low"] <= 0:
        out.append(
            f"Within targets the {who} does not beat the best control that ignores the "
            f"TF-target relation ({LABELS.get(head['control'], head['control'])} "
            f"{head['control_auroc']:.3f}, {who} {head['model_auroc']:.3f}; difference "
            f"{head['difference']:+.3f}, 95% CI {head['low']:+.3f} to {head['high']:+.3f}): "
            "these numbers are no evidence that it reads regulation from the pair."
        )
    pooled = versus.get("pooled")
    if pooled and pooled["control_auroc"] is not None and pooled["model_auroc"] is not None:
        if pooled["control_auroc"] >= pooled["model_auroc"] - MATCH_MARGIN:
            verb = "beats" if pooled["control_auroc"] > pooled["model_auroc"] else "matches"
            out.append(
                f"The {LABELS.get(pooled['control'], pooled['control'])} {verb} the {who}'s "
                f"pooled AUROC ({pooled['control_auroc']:.3f} vs {pooled['model_auroc']:.3f}): "
                "the pooled figure can be earned by recognising TFs or targets alone."
            )
    p, w = model_metrics.get("pooled_auroc"), model_metrics.get(f"{HEADLINE}_auroc")
    if p is not None and w is not None and p - w >= 0.1:
        out.append(
            f"Pooled AUROC {p:.3f} but within-target {w:.3f}: most of the pooled score comes "
            "from which TFs and targets the pairs involve, not from the pair itself."
        )
    return out


def evaluate_pairs(
    probabilities: np.ndarray,
    pairs: PairSet,
    split: str = "test",
    *,
    model: str = "model",
    controls: bool = True,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Everything a command reports for a model's ``probabilities`` on ``split`` of ``pairs``.

    Binary metrics at 0.5 (accuracy, loss, confusion), then the ranking metrics of the
    model, Pearson r and (with ``controls``) the node-identity controls, the model's
    margin over the best control with bootstrap CIs, and plain-words warnings.
    """
    x, y = pairs.arrays(split)
    result: dict[str, Any] = binary_metrics(y, probabilities)
    result["split"] = split
    t = pairs.table[pairs.mask(split)]
    tf, target = t["tf"].to_numpy(), t["target"].to_numpy()
    scores = {model: np.asarray(probabilities, dtype=np.float64), "pearson": pearson_scores(x)}
    if controls:
        scores.update(node_controls(pairs, split, seed=seed))
    ranking = compare_with_controls(
        y, tf, target, scores, model, CONTROLS if controls else (), n_boot=n_boot, seed=seed
    )
    result.update(ranking)
    result["protocol"] = {
        "split": pairs.meta.get("split"),
        "negatives": pairs.meta.get("negatives"),
        "balance": (pairs.meta.get("balance") or {}).get("before_split"),
    }
    return result


#: Protocols from the most shortcut-prone to the strictest, for model cards.
_SPLIT_RANK = {"random": 0, "tf-holdout": 1, "tf-kfold": 1, "pair-disjoint": 2}
_NEGATIVES_RANK = {"random": 0, "tf-matched": 1, "degree-matched": 2}


def strictness(split: str | None, negatives: str | None) -> int:
    """A protocol's rank: negatives weigh first (they close the shortcuts), then the split."""
    return 3 * _NEGATIVES_RANK.get(negatives or "", -1) + _SPLIT_RANK.get(split or "", -1)


def model_card(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """What every saved model records of its evaluation: protocol and headline figures."""
    protocol = evaluation.get("protocol") or {}
    versus = evaluation.get("versus_best_control") or {}
    methods = evaluation.get("methods") or {}
    model = next(iter(methods), None)
    figures = methods.get(model, {}) if model else {}
    head = versus.get(HEADLINE) or {}
    return {
        "protocol": {"split": protocol.get("split"), "negatives": protocol.get("negatives")},
        "strictness": strictness(protocol.get("split"), protocol.get("negatives")),
        "within_target_auroc": figures.get("within_target_auroc"),
        "within_tf_auroc": figures.get("within_tf_auroc"),
        "pooled_auroc": figures.get("pooled_auroc"),
        "best_control": head.get("control"),
        "best_control_within_target_auroc": head.get("control_auroc"),
        "difference_within_target": head.get("difference"),
        "difference_ci": [head.get("low"), head.get("high")],
        "warnings": list(evaluation.get("warnings") or []),
    }
