"""The functional API: one call per CLI command, same names, same options.

Every function accepts either file paths (or bundled dataset names such as
``"nitrogen-expression"``) or already-loaded objects, so notebooks and the CLI share
one code path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import TfcnnInputError
from .evaluation.baselines import pearson_scores
from .evaluation.evaluate import DEFAULT_BOOTSTRAP, evaluate_pairs, model_card
from .evaluation.metrics import probability_distribution
from .io.atomic import check_writable
from .io.datasets import resolve_path
from .io.expression import ExpressionMatrix, load_expression
from .io.idmap import IdMap, read_id_map
from .io.interactions import Interactions, read_interactions
from .io.orientation import check_against_pairs
from .model.estimator import PairCNN
from .pairs import PairSet, build_pair_set
from .progress import epoch_progress

if TYPE_CHECKING:
    from .explain import PairExplanation
    from .inference.predict import Prediction

PathLike = str | os.PathLike[str]


def load_interactions(
    interactions: PathLike | Interactions, evidence: Sequence[str] | None = None
) -> Interactions:
    """Known interactions from a path / bundled name (AtRegNet or a TF/target table)."""
    if isinstance(interactions, Interactions):
        return interactions.filter_evidence(evidence) if evidence else interactions
    return read_interactions(resolve_path(str(interactions)), evidence=evidence)


def load_id_map(id_map: PathLike | IdMap | None) -> IdMap | None:
    """An AGI <-> probeset map from a path / bundled name, or None."""
    if id_map is None or isinstance(id_map, IdMap):
        return id_map
    return read_id_map(resolve_path(str(id_map)))


def build_pairs(
    expression: PathLike | ExpressionMatrix,
    interactions: PathLike | Interactions,
    *,
    id_map: PathLike | IdMap | None = None,
    evidence: Sequence[str] | None = None,
    exclude: PathLike | Interactions | None = None,
    negative_exclude: Sequence[str] | None = None,
    negatives: str = "random",
    split: str = "random",
    seed: int = 0,
    log2: bool = False,
    transpose: bool = False,
    layer: str | None = None,
    pseudobulk: str | None = None,
    order_by: str | None = None,
    output: PathLike | None = None,
    force: bool = False,
) -> PairSet:
    """Build (and optionally save) the labelled, split pair set. See :mod:`tfcnn.pairs`.

    ``transpose``, ``layer``, ``pseudobulk`` and ``order_by`` say how to read an
    expression file (see :func:`tfcnn.io.expression.read_expression`); a matrix whose
    sample names, rather than its genes, are the interactions' genes is refused.

    Negatives are never a pair of the positives' own evidence types (``evidence``). By
    default nothing else is kept out of the negative pool: excluding other assays' edges
    (e.g. DAP-seq binding when positives are ChIP-seq and TARGET) would let "bound in
    that assay" separate positives from negatives. ``negative_exclude`` names further
    evidence types of ``interactions`` to keep out anyway, ``exclude`` a file of pairs.
    """
    expr = load_expression(
        expression,
        log2=log2,
        transpose=transpose,
        layer=layer,
        pseudobulk=pseudobulk,
        order_by=order_by,
    )
    known = load_interactions(interactions, evidence=evidence)
    check_against_pairs(
        expr.genes,
        expr.samples,
        set(known.tfs) | set(known.targets),
        expr.source,
        known.source,
        expr.transposed,
    )
    excl = [load_interactions(exclude)] if exclude is not None else []
    if negative_exclude:
        if not isinstance(interactions, Interactions) and not known.has_evidence:
            raise TfcnnInputError(
                f"`negative_exclude` names evidence types, but {interactions} has no evidence "
                "column; give a file of pairs to keep out as `exclude` instead."
            )
        base = interactions if isinstance(interactions, Interactions) else None
        excl.append(
            base.filter_evidence(negative_exclude)
            if base is not None
            else load_interactions(interactions, evidence=negative_exclude)
        )
    pairs = build_pair_set(
        expr,
        known,
        negatives=negatives,
        split=split,
        seed=seed,
        exclude=excl,
        id_map=load_id_map(id_map),
    )
    if output is not None:
        pairs.save(output, force=force)
    return pairs


def load_pairs(pairs: PathLike | PairSet) -> PairSet:
    """A pair set from a directory written by :func:`build_pairs`, or the object itself."""
    return pairs if isinstance(pairs, PairSet) else PairSet.load(pairs)


def load_model(model: PathLike | PairCNN) -> PairCNN:
    """A fitted model from a model directory or registered name, or the object itself."""
    if isinstance(model, PairCNN):
        return model
    from .model.registry import resolve_model

    return PairCNN.load(resolve_model(model))


def train(
    pairs: PathLike | PairSet,
    *,
    output: PathLike | None = None,
    force: bool = False,
    seed: int = 0,
    progress: bool = False,
    label: str = "training",
    **hyperparameters: Any,
) -> PairCNN:
    """Fit a :class:`PairCNN` on the train split, monitor validation, score the test split.

    ``hyperparameters`` are :class:`PairCNN` arguments (filters, units, epochs, ...).
    The test and validation metrics, the data summary, gene IDs and sample names are
    stored in the model's metadata, and the model is saved to ``output`` when given.
    """
    model = PairCNN(seed=seed, **hyperparameters)
    model.check_settings()  # before reading anything
    if output is not None:
        check_writable(output, force)  # fail before spending minutes on training
    data = load_pairs(pairs)
    model.check_settings(len(data.samples))
    with epoch_progress(model.epochs, label=label, enabled=progress) as on_epoch:
        model.fit_pairs(data, on_epoch=on_epoch)
    x_train, y_train = data.arrays("train")
    model.record_.metrics = {
        "validation": evaluate(model, data, split="validation", controls=False, seed=seed),
        "test": evaluate(model, data, split="test", seed=seed),
    }
    model.record_.evaluation = model_card(model.record_.metrics["test"])
    model.record_.training_distribution = probability_distribution(
        y_train, model.predict_proba(x_train)[:, 1]
    )
    if output is not None:
        model.save(output, force=force)
    return model


def evaluate(
    model: PathLike | PairCNN,
    pairs: PathLike | PairSet,
    split: str = "test",
    *,
    controls: bool = True,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics of ``model`` on one split of ``pairs``, beside controls that cannot read pairs.

    Accuracy, loss and confusion at 0.5; pooled, within-target and within-TF AUROC and
    AUPRC of the model, of Pearson r and of the node-identity controls (TF-only,
    target-only, target frequency); the model's margin over the best control with 95%
    CIs (TFs resampled); and plain-words warnings. See :mod:`tfcnn.evaluation.evaluate`.
    """
    est = load_model(model)
    data = load_pairs(pairs)
    # Name the files when they were given as paths (not for in-memory objects).
    the_model = "the model" if isinstance(model, PairCNN) else f"model {model}"
    the_pairs = "the pair set" if isinstance(pairs, PairSet) else f"pair set {pairs}"
    if est.n_samples != len(data.samples):
        raise TfcnnInputError(
            f"{the_model} expects {est.n_samples} samples per profile but {the_pairs} has "
            f"{len(data.samples)}; evaluate on pairs built from the model's expression matrix."
        )
    trained_samples = est.record_.samples
    if trained_samples and list(trained_samples) != list(data.samples):
        diff = next(
            i for i, (a, b) in enumerate(zip(trained_samples, data.samples, strict=True)) if a != b
        )
        raise TfcnnInputError(
            f"sample {diff + 1} differs: {the_model} was trained with "
            f"'{trained_samples[diff]}', {the_pairs} has '{data.samples[diff]}'. Columns must "
            "be the same, in order."
        )
    x, y = data.arrays(split)
    if y.size == 0:
        raise TfcnnInputError(f"the pair set has no {split} examples.")
    if split != "train" and not data.mask("train").any():
        raise TfcnnInputError("the pair set has no train examples to fit the controls on.")
    return evaluate_pairs(
        est.predict_proba(x)[:, 1], data, split, controls=controls, n_boot=n_boot, seed=seed
    )


def scores_table(model: PairCNN, pairs: PairSet, split: str = "test"):
    """Per-pair probabilities and Pearson r of one split, for tracing predictions to genes."""
    m = pairs.mask(split)
    x = pairs.x[m]
    table = pairs.table.loc[m, ["tf", "target", "label", "kind"]].copy()
    table["probability"] = model.predict_proba(x)[:, 1]
    table["pearson_r"] = pearson_scores(x)
    return table.reset_index(drop=True)


def predict(
    model: PathLike | PairCNN,
    regulators: str | Sequence[str],
    targets: str | Sequence[str] | None = None,
    *,
    expression: PathLike | ExpressionMatrix | None = None,
    log2: bool = False,
) -> Prediction:
    """Score every regulator against every target (all genes when ``targets`` is None).

    The table gives, beside each probability, what it says beyond the TF and the target
    (see :mod:`tfcnn.inference.decompose`) and whether the pair was in the training data;
    ``notes`` hold the model's honest figure and per-TF shortcut warnings.
    """
    from .inference.predict import Predictor

    name = "the model" if isinstance(model, PairCNN) else str(model)
    return Predictor(load_model(model), expression=expression, name=name, log2=log2).predict(
        regulators, targets
    )


def explain_pair(
    model: PathLike | PairCNN,
    tf: str,
    target: str,
    *,
    expression: PathLike | ExpressionMatrix | None = None,
    log2: bool = False,
    method: str = "hirescam",
) -> PairExplanation:
    """Which samples drove one pair's score (activation map, smoothed, peak window)."""
    from .explain import check_not_self_pair
    from .explain import explain_pair as explain
    from .inference.matrix import scoring_matrix

    est = load_model(model)
    check_not_self_pair(tf, target)
    matrix = scoring_matrix(est, expression, log2=log2)
    x, tf_id, target_id = matrix.pair(tf, target)
    check_not_self_pair(tf_id, target_id)  # two spellings (AGI, probeset) of one gene
    return explain(est, x, matrix.samples, method=method)
