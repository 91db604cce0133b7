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
from .model.prior import model_prior
from .model.two_tower import TwoTower
from .pairs import PairSet, build_pair_set
from .progress import epoch_progress

if TYPE_CHECKING:
    from .explain import PairExplanation
    from .inference.expand import Expansion
    from .inference.predict import Prediction

PathLike = str | os.PathLike[str]
#: The model kinds ``train`` makes (``architecture``): the published CNN, the two-tower model.
ARCHITECTURES = ("pair-cnn", "two-tower")


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


def load_model(model: PathLike | PairCNN | TwoTower) -> PairCNN | TwoTower:
    """A fitted model (either kind) from a model directory or registered name, or the
    object itself."""
    if isinstance(model, PairCNN | TwoTower):
        return model
    from .model.files import load_model as read_model
    from .model.registry import resolve_model

    return read_model(resolve_model(model))


def new_model(
    architecture: str = "pair-cnn", seed: int = 0, **hyperparameters: Any
) -> PairCNN | TwoTower:
    """An unfitted model of ``architecture`` ("pair-cnn" or "two-tower"), settings checked.

    ``hyperparameters`` are :class:`PairCNN` or :class:`TwoTower` arguments; one the class
    does not take is refused, naming the class's settings.
    """
    if architecture not in ARCHITECTURES:
        raise TfcnnInputError(
            f"`architecture` must be one of {', '.join(ARCHITECTURES)} (got {architecture!r})."
        )
    cls: type[PairCNN] | type[TwoTower] = PairCNN if architecture == "pair-cnn" else TwoTower
    known = [k for k in cls().get_params() if k != "seed"]
    unknown = sorted(set(hyperparameters) - set(known))
    if unknown:
        raise TfcnnInputError(
            f"{', '.join(f'`{k}`' for k in unknown)} is not a setting of a {architecture} model "
            f"(its settings: {', '.join(known)})."
        )
    model = cls(seed=seed, **hyperparameters)
    model.check_settings()
    return model


def train(
    pairs: PathLike | PairSet,
    *,
    output: PathLike | None = None,
    force: bool = False,
    seed: int = 0,
    progress: bool = False,
    label: str = "training",
    architecture: str = "pair-cnn",
    prior: str | None = None,
    **hyperparameters: Any,
) -> PairCNN | TwoTower:
    """Fit a model on the train split, monitor validation, score the test split.

    ``architecture``: "pair-cnn" (:class:`PairCNN`, the published CNN; the default) or
    "two-tower" (:class:`~tfcnn.model.two_tower.TwoTower`); ``hyperparameters`` are that
    class's arguments (filters, units, epochs, ... or loss, n_seeds, tower, head, ...).
    ``prior`` ("target-frequency"): also fit the explicit target prior's blend on the
    validation TFs (:mod:`tfcnn.model.prior`); the evaluations then report the model, the
    prior and the combination side by side. The test and validation metrics, the data
    summary, gene IDs and sample names are stored in the model's metadata, and the model
    is saved to ``output`` when given.
    """
    from .model.prior import PRIORS, fit_prior

    model = new_model(architecture, seed, **hyperparameters)  # checked before reading
    if prior is not None and prior not in PRIORS:
        raise TfcnnInputError(f"`prior` must be one of {', '.join(PRIORS)} (got {prior!r}).")
    if output is not None:
        check_writable(output, force)  # fail before spending minutes on training
    data = load_pairs(pairs)
    model.check_settings(len(data.samples))
    epochs = model.epochs if isinstance(model, PairCNN) else model.max_epochs * model.n_seeds
    with epoch_progress(epochs, label=label, enabled=progress) as on_epoch:
        model.fit_pairs(data, on_epoch=on_epoch)
    if prior is not None:
        model.record_.extra["prior"] = fit_prior(model, data, prior).to_json()
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
    model: PathLike | PairCNN | TwoTower,
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

    A model with a prior blend (``train(prior=...)``) also gets the combined score as
    method "prior + model" beside "model" (its probability) and the target-frequency
    control (the prior itself), and a "prior" section: the blend's weights and the
    combination's margin over the best control.
    """
    est = load_model(model)
    data = load_pairs(pairs)
    # Name the files when they were given as paths (not for in-memory objects).
    the_model = "the model" if isinstance(model, PairCNN | TwoTower) else f"model {model}"
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
    probability = est.predict_proba(x)[:, 1]
    result = evaluate_pairs(probability, data, split, controls=controls, n_boot=n_boot, seed=seed)
    blend = model_prior(est)
    if blend is not None:
        _add_prior(result, est, blend, probability, data, split, controls, n_boot, seed)
    return result


def _add_prior(
    result: dict[str, Any],
    est: PairCNN | TwoTower,
    blend: Any,
    probability: Any,
    data: PairSet,
    split: str,
    controls: bool,
    n_boot: int,
    seed: int,
) -> None:
    """The prior + model combination beside the model in an evaluation (in place)."""
    from .evaluation.evaluate import CONTROLS, compare_with_controls, node_controls
    from .model.prior import target_frequency

    t = data.table[data.mask(split)]
    frequency = target_frequency(est.record_, t["target"].astype(str).tolist())
    combined = blend.combine(probability, frequency)
    scores = {"prior + model": combined, "model": probability}
    if controls:
        scores.update(node_controls(data, split, seed=seed))
    y = t["label"].to_numpy()
    tf, target = t["tf"].to_numpy(), t["target"].to_numpy()
    kept = CONTROLS if controls else ()
    versus = compare_with_controls(
        y, tf, target, scores, "prior + model", kept, n_boot=n_boot, seed=seed
    )
    result["methods"]["prior + model"] = versus["methods"]["prior + model"]
    result["prior"] = {
        "blend": blend.to_json(),
        "parts": "model = the model's probability; prior = the target's training frequency "
        "(the target-frequency control); prior + model = the blend",
        "versus_best_control": versus["versus_best_control"],
        "warnings": versus["warnings"],
    }


def scores_table(model: PairCNN, pairs: PairSet, split: str = "test"):
    """Per-pair probabilities and Pearson r of one split, for tracing predictions to genes."""
    m = pairs.mask(split)
    x = pairs.x[m]
    table = pairs.table.loc[m, ["tf", "target", "label", "kind"]].copy()
    table["probability"] = model.predict_proba(x)[:, 1]
    table["pearson_r"] = pearson_scores(x)
    return table.reset_index(drop=True)


def predict(
    model: PathLike | PairCNN | TwoTower,
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

    name = "the model" if isinstance(model, PairCNN | TwoTower) else str(model)
    return Predictor(load_model(model), expression=expression, name=name, log2=log2).predict(
        regulators, targets
    )


def explain_pair(
    model: PathLike | PairCNN | TwoTower,
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


def expand(
    model: PathLike | PairCNN | TwoTower,
    tf: str,
    *,
    method: str = "combined",
    min_known: int = 5,
    output: PathLike | None = None,
    force: bool = False,
) -> Expansion:
    """Regulon expansion: rank every other gene by its similarity to a seen TF's known targets.

    ``tf`` must be a TF of the model's training pairs with at least ``min_known`` training
    targets. ``method``: "embedding" (learned target-tower embedding, two-tower models),
    "coexpression", "model" (the model's own score of the pair) or "combined" (mean of the
    available parts' percentiles). Every part is kept as its own column, beside its
    percentile within the TF's row. See :mod:`tfcnn.inference.expand`; the table is
    written to ``output`` (by extension) when given.
    """
    from .inference.expand import expand_regulon

    if output is not None:
        check_writable(output, force)
    result = expand_regulon(load_model(model), tf, method=method, min_known=min_known)
    if output is not None:
        result.write(output, force=force)
    return result
