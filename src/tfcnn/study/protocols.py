"""Evaluation protocols, baselines and controls, all scored on identical test pairs.

A protocol is a split strategy crossed with a negatives strategy:

* split ``random`` (80/10/10 of pairs, the study), ``tf-holdout`` (grouped k-fold by TF:
  each fold's TFs are never seen in training) or ``pair-disjoint`` (neither gene of a
  test pair appears in training; pairs spanning splits are discarded);
* negatives ``random`` (the study), ``tf-matched`` or ``degree-matched``
  (see :mod:`tfcnn.pairs`).

Replicates: ``tf-holdout`` uses the folds of one pair set (seed ``seed``); the other
splits redraw negatives and split with seed ``seed + replicate``. The CNN is seeded
with ``seed + replicate``; so is the two-tower model (issue 15; ``models`` of the job's
config), trained on the same pair set with its own early stopping on the validation
TFs, at most ``epochs`` epochs per ensemble member.

On each replicate's test pairs, beside the CNN: Pearson r, Spearman rho, |Pearson r|,
logistic regression on those correlations (fit on the training pairs), a GENIE3-style
tree-ensemble score (see :func:`tfcnn.evaluation.baselines.genie3_importances`; computed once per
dataset, added when results are collected), and three controls that cannot read the
TF/target relation: TF-only and target-only MLPs on one profile, and the target's
frequency among training positives.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors.numpy import save_file

from ..errors import TfcnnInputError
from ..evaluation import baselines
from ..evaluation.evaluate import CONTROLS, DEFAULT_BOOTSTRAP, compare_with_controls, node_controls
from ..evaluation.metrics import binary_metrics, probability_distribution
from ..evaluation.ranking import grouped_auprc, ranking_metrics
from ..model.estimator import PairCNN
from ..model.two_tower import TwoTower
from ..pairs import PairSet, build_pair_set, build_tf_folds
from . import inputs

SPLITS = ("random", "tf-holdout", "pair-disjoint")
NEGATIVES = ("random", "tf-matched", "degree-matched")
#: The learned pair models a study can train (``--models``) and their method names.
MODELS = {"pair-cnn": "cnn", "two-tower": "two_tower"}
#: The study's default: both, the published CNN first (the reference of every table).
DEFAULT_MODELS = ("pair-cnn", "two-tower")
METHODS: tuple[tuple[str, str], ...] = (
    ("cnn", "CNN"),
    ("two_tower", "two-tower model"),
    ("pearson", "Pearson r"),
    ("spearman", "Spearman rho"),
    ("abs_pearson", "|Pearson r|"),
    ("logistic_correlation", "logistic regr. on correlations"),
    ("genie3", "GENIE3-style trees"),
    ("neighbour_transfer", "TF-neighbour transfer"),
    ("tf_only", "TF-only control"),
    ("target_only", "target-only control"),
    ("target_frequency", "target-frequency control"),
)
#: Baselines that runs of older versions lack: shown only where a run has their scores.
NEWER_BASELINES = frozenset({"neighbour_transfer"})
SCORES_FILE = "test_scores.tsv.gz"
GENIE3_FILE = "genie3.safetensors"


def data_spec(
    expression: str,
    interactions: str,
    evidence: list[str] | None = None,
    exclude: str | None = None,
    id_map: str | None = None,
    log2: bool = False,
) -> dict[str, Any]:
    """The JSON-ready description of a dataset as typed (paths or bundled names).

    Study settings keep it, with each file's sha256 added by
    :func:`.inputs.read_inputs`; job configs carry only the contents
    (:func:`.inputs.content_spec`), never the paths.
    """
    return {
        "expression": str(expression),
        "interactions": str(interactions),
        "evidence": list(evidence) if evidence else None,
        "exclude": str(exclude) if exclude else None,
        "id_map": str(id_map) if id_map else None,
        "log2": bool(log2),
    }


#: What the negatives of the default data may not be, in words (report, docs, CLI help).
NEGATIVES_POLICY = (
    "negatives exclude only pairs carrying the positives' own evidence; pairs known only "
    "from other assays (e.g. DAP-seq) may be drawn as negatives, so that no negative is "
    "picked for being 'never bound anywhere'"
)


def default_data_spec(exclude: str | None = None) -> dict[str, Any]:
    """The bundled nitrogen compendium with the demo's positives (see :mod:`.demo`).

    Negatives exclude only the positives' own pairs (TARGET, ChIP-seq, literature):
    excluding every ConnecTF edge (DAP-seq included) would make negatives systematically
    genes no assay ever bound, a label shortcut (a DAP-seq-bound feature then scores
    0.588 instead of 0.511, issue 14). ``exclude`` names a file of further pairs to keep
    out anyway (``"nitrogen-edges"``: the former policy).
    """
    from .demo import DEMO_EVIDENCE

    return data_spec("nitrogen-expression", "nitrogen-edges", list(DEMO_EVIDENCE), exclude=exclude)


def _load(spec: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """The parsed inputs of ``spec``: shipped to this process by content, or (on the
    client) read from the files it names (see :mod:`.inputs`)."""
    data = inputs.obtain(spec)
    return data.expression, data.positives, data.exclude, data.id_map


def build(spec: dict[str, Any], negatives: str, split: str, seed: int, fractions) -> PairSet:
    """A pair set of the dataset ``spec`` (its inputs are read once, see :mod:`.inputs`)."""
    expression, positives, exclude, id_map = _load(spec)
    return build_pair_set(
        expression,
        positives,
        negatives=negatives,
        split=split,
        seed=seed,
        fractions=tuple(fractions),
        exclude=exclude,
        id_map=id_map,
    )


def replicate_pairs(config: dict[str, Any]) -> PairSet:
    """The pair set of one protocol replicate (fold or seed), see the module docstring.

    ``tf-holdout`` folds come from :func:`tfcnn.pairs.build_tf_folds`: with
    degree-matched negatives they are drawn within each split of the fold, so every TF
    and every target is balanced where it is tested (balance over the whole set would
    leave the held-out TFs' targets unbalanced, and target-level scores off chance).
    """
    spec, split, negatives = config["data"], config["split"], config["negatives"]
    seed, rep, fractions = config["seed"], config["replicate"], config["fractions"]
    if split == "tf-holdout":
        expression, positives, exclude, id_map = _load(spec)
        [fold] = build_tf_folds(
            expression,
            positives,
            config["n_replicates"],
            negatives=negatives,
            seed=seed,
            validation_fraction=fractions[1],
            exclude=exclude,
            id_map=id_map,
            only=rep,
        )
        return fold
    return build(spec, negatives, split, seed + rep, fractions)


def histogram(y: np.ndarray, p: np.ndarray, bins: int = 50) -> dict[str, Any]:
    """Counts of predicted probabilities per class in ``bins`` equal bins of [0, 1]."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    dist = probability_distribution(y, p)
    return {
        "edges": edges.tolist(),
        "negative": np.histogram(p[y == 0], edges)[0].tolist(),
        "positive": np.histogram(p[y == 1], edges)[0].tolist(),
        "share_negatives_below_0.05": dist["share_negatives_below_0.05"],
        "share_positives_above_0.95": dist["share_positives_above_0.95"],
    }


def score_test_pairs(
    pairs: PairSet, model: PairCNN, seed: int, two_tower: TwoTower | None = None
) -> dict[str, np.ndarray]:
    """Every method's score of the test pairs: the CNN (and the two-tower model when
    given), the baselines, the controls."""
    x_train, y_train = pairs.arrays("train")
    x_test, _ = pairs.arrays("test")
    learned = {"cnn": model.predict_proba(x_test)[:, 1]}
    if two_tower is not None:
        learned["two_tower"] = two_tower.predict_proba(x_test)[:, 1]
    return {
        **learned,
        "pearson": baselines.pearson_scores(x_test),
        "spearman": baselines.spearman_scores(x_test),
        "abs_pearson": baselines.absolute_correlation_scores(x_test),
        "logistic_correlation": baselines.logistic_correlation_scores(
            x_train, y_train, x_test, seed=seed
        ),
        "neighbour_transfer": neighbour_transfer(pairs),
        **node_controls(pairs, "test", seed=seed),
    }


def neighbour_transfer(pairs: PairSet, split: str = "test") -> np.ndarray:
    """:func:`~tfcnn.evaluation.baselines.neighbour_transfer_scores` of ``split``'s pairs,
    from the training pairs' labels."""
    train, test = pairs.mask("train"), pairs.mask(split)
    return baselines.neighbour_transfer_scores(
        pairs.zscores,
        pairs.tf_rows[train],
        pairs.target_rows[train],
        pairs.labels[train],
        pairs.tf_rows[test],
        pairs.target_rows[test],
    )


def job_models(config: dict[str, Any]) -> list[str]:
    """The learned models of a protocol job (``models``; absent: the CNN alone, as every
    job before issue 15, so their runs keep their hashes)."""
    return list(config.get("models") or ["pair-cnn"])


def fit_two_tower(pairs: PairSet, config: dict[str, Any], seed: int) -> tuple[TwoTower, str]:
    """The two-tower model of one replicate: ``two_tower`` settings of the config, at
    most ``epochs`` epochs per member, early-stopped on the validation TFs.

    The ranking loss (the default) needs negatives sharing a TF or target with the
    positives; a pair set without any (possible with random negatives on small data)
    is trained with ``bce`` instead, and the returned note says so.
    """
    from ..api import new_model

    settings = {"max_epochs": int(config["epochs"]), **config.get("two_tower", {})}
    model = new_model("two-tower", seed, **settings)
    try:
        return model.fit_pairs(pairs), ""
    except ValueError as exc:
        if model.loss != "ranking" or "ranking loss" not in str(exc):
            raise
    model.set_params(loss="bce")
    note = "ranking loss impossible (no negative shares a TF or target with a positive): bce"
    return model.fit_pairs(pairs), note


def run_protocol_job(config: dict[str, Any], out: Path) -> dict[str, Any]:
    """Train the CNN (and the two-tower model, see ``models``) on one replicate, score
    every method on its test pairs.

    Metrics come from :func:`tfcnn.evaluation.evaluate.compare_with_controls`: pooled,
    within-target and within-TF AUROC and AUPRC of every method, each learned model minus
    the best node-identity control with a 95% CI (bootstrap over TFs) and plain-words
    warnings (the two-tower model's under ``models``).
    """
    start = time.time()
    try:
        pairs = replicate_pairs(config)
    except TfcnnInputError as exc:
        # The protocol cannot be built on this dataset (e.g. too few TFs for a split):
        # recorded, shown in the report, and the other protocols still run.
        return {"error": str(exc)}
    seed = int(config["seed"]) + int(config["replicate"])
    x_train, y_train = pairs.arrays("train")
    x_val, y_val = pairs.arrays("validation")
    _, y_test = pairs.arrays("test")
    model = PairCNN(seed=seed, epochs=int(config["epochs"]), **config.get("cnn", {}))
    model.fit(x_train, y_train, validation_data=(x_val, y_val))
    two_tower, two_tower_note, fit_start = None, "", time.time()
    if "two-tower" in job_models(config):
        two_tower, two_tower_note = fit_two_tower(pairs, config, seed)
    two_tower_seconds = time.time() - fit_start
    t = pairs.table
    test_rows = t[pairs.mask("test")]
    scores = score_test_pairs(pairs, model, seed, two_tower)
    table = test_rows[["tf", "target", "label"]].reset_index(drop=True)
    for name, s in scores.items():
        table[name] = s
    table.to_csv(out / SCORES_FILE, sep="\t", index=False)
    evaluation = compare_with_controls(
        y_test,
        test_rows["tf"].to_numpy(),
        test_rows["target"].to_numpy(),
        scores,
        "cnn",
        CONTROLS,
        n_boot=int(config.get("bootstrap", DEFAULT_BOOTSTRAP)),
        seed=seed,
        auprc=False,
        also=[MODELS[m] for m in job_models(config) if m != "pair-cnn"],
    )
    _add_auprc(evaluation["methods"], scores, test_rows, set(MODELS.values()))
    counts = pairs.counts()
    train_tfs = set(t.loc[t["split"] == "train", "tf"])
    train_genes = train_tfs | set(t.loc[t["split"] == "train", "target"])
    return {
        **evaluation,
        "cnn_test": binary_metrics(y_test, scores["cnn"]),
        "counts": counts,
        "n_train": int(y_train.size),
        "n_test": int(y_test.size),
        "test_tfs_seen_in_training": int(test_rows["tf"].isin(train_tfs).sum()),
        "test_pairs_with_a_gene_in_training": int(
            (test_rows["tf"].isin(train_genes) | test_rows["target"].isin(train_genes)).sum()
        ),
        "pairs_meta": {k: v for k, v in pairs.meta.items() if k != "expression"},
        "history": model.history_,
        "test_distribution": histogram(y_test, scores["cnn"]),
        **(
            _two_tower_facts(two_tower, two_tower_note, two_tower_seconds)
            if two_tower is not None
            else {}
        ),
        "seconds": round(time.time() - start, 1),
    }


def _two_tower_facts(model: TwoTower, note: str, seconds: float) -> dict[str, Any]:
    """What a protocol run records of its two-tower model: settings, epochs, stopping,
    training time (wall, one thread)."""
    params = model.get_params()
    return {
        "two_tower": {
            "seconds": round(seconds, 1),
            "settings": {k: v for k, v in params.items() if k != "seed"},
            "best_epochs": [int(e) for e in model.best_epochs_],
            "epochs_run": [
                max((h["epoch"] for h in model.history_ if h["member"] == m), default=0)
                for m in range(model.n_seeds)
            ],
            "validation": model.validation_,
            "note": note,
        }
    }


def _add_auprc(
    methods: dict[str, dict[str, Any]],
    scores: dict[str, np.ndarray],
    rows: pd.DataFrame,
    models: set[str],
) -> None:
    """AUPRCs: pooled for every method, within targets and TFs for the learned ``models``.

    Within groups, AUPRC is one average precision per target (a loop of thousands):
    about 6 s of a 40 s run for the eight methods; the controls' AUROCs already say
    whether they match the model.
    """
    y, tf, target = rows["label"].to_numpy(), rows["tf"].to_numpy(), rows["target"].to_numpy()
    for name, score in scores.items():
        if name in models:
            methods[name].update(ranking_metrics(y, score, tf, target))
        else:
            ap, chance = grouped_auprc(y, score, tf, target, "pooled")
            methods[name].update({"pooled_auprc": ap, "pooled_auprc_chance": chance})


def run_genie3_job(config: dict[str, Any], out: Path) -> dict[str, Any]:
    """GENIE3-style importances of every candidate regulator for every gene."""
    start = time.time()
    pairs = build(config["data"], "random", "random", int(config["seed"]), (0.8, 0.1, 0.1))
    index = {g: i for i, g in enumerate(pairs.genes)}
    regulators = sorted(set(pairs.table.loc[pairs.table["label"] == 1, "tf"]))
    reg_idx = np.array([index[g] for g in regulators], dtype=np.int64)
    imp = baselines.genie3_importances(
        pairs.zscores,
        reg_idx,
        np.arange(len(pairs.genes)),
        seed=int(config["seed"]),
        n_estimators=int(config["n_estimators"]),
    )
    save_file({"importances": np.ascontiguousarray(imp, dtype=np.float32)}, str(out / GENIE3_FILE))
    return {
        "regulators": regulators,
        "genes": list(pairs.genes),
        "n_estimators": int(config["n_estimators"]),
        "seconds": round(time.time() - start, 1),
    }


def genie3_lookup(run_path: Path, metrics: dict[str, Any]):
    """A function (tf, target) Series -> GENIE3 scores, 0 when the TF is no candidate."""
    from safetensors.numpy import load_file

    imp = load_file(str(run_path / GENIE3_FILE))["importances"]
    reg = {g: i for i, g in enumerate(metrics["regulators"])}
    gene = {g: i for i, g in enumerate(metrics["genes"])}

    def score(tf: pd.Series, target: pd.Series) -> np.ndarray:
        r = tf.map(reg)
        c = target.map(gene)
        ok = r.notna() & c.notna()
        out = np.zeros(len(tf), dtype=np.float64)
        out[ok.to_numpy()] = imp[r[ok].astype(int).to_numpy(), c[ok].astype(int).to_numpy()]
        return out

    return score
