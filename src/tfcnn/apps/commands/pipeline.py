"""The core pipeline: `datasets`, `build-pairs`, `train`, `evaluate`, `demo`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from ...errors import TfcnnInputError
from ..console import console, print_error, user_errors
from ..options import (
    EvidenceOpt,
    ExcludeOpt,
    ExpressionOpt,
    ForceOpt,
    IdMapOpt,
    InteractionsOpt,
    LayerOpt,
    Log2Opt,
    ModelOpt,
    NegativeExcludeOpt,
    NegativesOpt,
    OrderByOpt,
    PairsOpt,
    PseudobulkOpt,
    SeedOpt,
    SplitOpt,
    ThreadsOpt,
    TransposeOpt,
    check_choice,
    csv_list,
    expression_options,
    int_pair,
)


def datasets() -> None:
    """List the bundled real datasets with their source and size."""
    from ...io.datasets import list_datasets

    table = Table(title="Bundled datasets (use the name wherever a file is expected)")
    # Names are typed back on the command line: never break them across lines.
    table.add_column("name", no_wrap=True)
    for col in ("file", "size", "description", "source"):
        table.add_column(col, overflow="fold")
    for ds in list_datasets():
        table.add_row(
            escape(ds.name),
            escape(ds.relpath),
            f"{ds.size_bytes / 1e6:.2f} MB",
            escape(ds.description),
            escape(ds.source),
        )
    console.print(table)


def build_pairs_cmd(
    expression: ExpressionOpt,
    interactions: InteractionsOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="Pair set directory to write.")],
    id_map: IdMapOpt = None,
    evidence: EvidenceOpt = None,
    exclude: ExcludeOpt = None,
    negative_exclude: NegativeExcludeOpt = None,
    negatives: NegativesOpt = "random",
    split: SplitOpt = "random",
    log2: Log2Opt = False,
    transpose: TransposeOpt = False,
    layer: LayerOpt = None,
    pseudobulk: PseudobulkOpt = None,
    order_by: OrderByOpt = None,
    seed: SeedOpt = 0,
    force: ForceOpt = False,
) -> None:
    """Build labelled, split (TF, target) examples from a matrix and known pairs."""
    pairs = _build_pairs(
        expression,
        interactions,
        id_map,
        evidence,
        exclude,
        negatives,
        split,
        seed,
        log2,
        output=output,
        force=force,
        negative_exclude=negative_exclude,
        **expression_options(transpose, layer, pseudobulk, order_by),
    )
    _print_pairs_summary(pairs.summary())
    console.print(f"Pair set written to [bold]{escape(str(output))}[/]")


def _build_pairs(
    expression: str,
    interactions: str,
    id_map: str | None,
    evidence: str | None,
    exclude: str | None,
    negatives: str,
    split: str,
    seed: int,
    log2: bool,
    output: Path | None = None,
    force: bool = False,
    negative_exclude: str | None = None,
    **read: Any,
):
    """Check the pair options, then build (and, with ``output``, save) the pair set.

    ``read``: how to read the expression file (:func:`~tfcnn.apps.options.expression_options`).
    """
    from ...api import build_pairs
    from ...pairs import NEGATIVE_STRATEGIES, SPLIT_STRATEGIES

    check_choice(negatives, NEGATIVE_STRATEGIES, "--negatives")
    check_choice(split, SPLIT_STRATEGIES, "--split")
    return build_pairs(
        expression,
        interactions,
        id_map=id_map,
        evidence=csv_list(evidence),
        exclude=exclude,
        negative_exclude=csv_list(negative_exclude),
        negatives=negatives,
        split=split,
        seed=seed,
        log2=log2,
        output=output,
        force=force,
        **read,
    )


def _print_pairs_summary(summary: dict[str, Any]) -> None:
    pos = summary["positives"]
    console.print(
        f"{pos['input_pairs']:,} known pairs -> {pos['kept']:,} positives from "
        f"{summary['n_regulators']} regulators; negatives: {summary['negatives']}; "
        f"split: {summary['split']}"
    )
    for reason, n in pos["dropped"].items():
        if n:
            console.print(f"  dropped {n:,}: {escape(reason)}")
    top = summary["top_regulator"]
    console.print(
        f"  largest regulator {escape(str(top['id']))}: {top['positives']:,} ({top['share']:.0%})"
    )
    table = Table()
    for col in ("split", "positives", "negatives", "regulators (positives)"):
        table.add_column(col, justify="right")
    for name, c in summary["splits"].items():
        table.add_row(
            name, f"{c['positives']:,}", f"{c['negatives']:,}", str(c["regulators_in_positives"])
        )
    console.print(table)


def train(
    output: Annotated[Path, typer.Option("--output", "-o", help="Model directory to write.")],
    pairs: Annotated[
        Path | None,
        typer.Option("--pairs", "-p", help="Pair set from build-pairs (or give -x and -i)."),
    ] = None,
    expression: Annotated[
        str | None, typer.Option("--expression", "-x", help="Build pairs on the fly from this.")
    ] = None,
    interactions: Annotated[
        str | None, typer.Option("--interactions", "-i", help="Known pairs, with --expression.")
    ] = None,
    id_map: IdMapOpt = None,
    evidence: EvidenceOpt = None,
    exclude: ExcludeOpt = None,
    negative_exclude: NegativeExcludeOpt = None,
    negatives: NegativesOpt = "random",
    split: SplitOpt = "random",
    log2: Log2Opt = False,
    transpose: TransposeOpt = False,
    layer: LayerOpt = None,
    pseudobulk: PseudobulkOpt = None,
    order_by: OrderByOpt = None,
    architecture: Annotated[
        str,
        typer.Option(
            help="pair-cnn (the published CNN) or two-tower (a tower per profile and an "
            "interaction head; docs/pair_model.md)."
        ),
    ] = "pair-cnn",
    filters: Annotated[str, typer.Option(help="Filters of conv 1 and conv 2.")] = "4,8",
    units: Annotated[int, typer.Option(help="Units of the dense layer.")] = 8,
    batch_norm1: Annotated[
        bool, typer.Option("--batch-norm1/--no-batch-norm1", help="Batch norm after conv 1.")
    ] = False,
    batch_norm2: Annotated[
        bool, typer.Option("--batch-norm2/--no-batch-norm2", help="Batch norm after conv 2.")
    ] = True,
    dropout: Annotated[
        float | None,
        typer.Option(
            help="Dropout rate (0 = off). pair-cnn: before the output, default 0.01; "
            "two-tower: in the towers and head, default 0.2."
        ),
    ] = None,
    kernel_width: Annotated[
        int, typer.Option(help="Convolution kernel width (pair-cnn; two-tower --tower conv).")
    ] = 5,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Training epochs. pair-cnn: default 30; two-tower: at most this many "
            "(early-stopped on the validation TFs), default 60."
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Batch size (pair-cnn: 512; two-tower: 256).")
    ] = None,
    learning_rate: Annotated[
        float, typer.Option(help="Learning rate (pair-cnn: RMSprop; two-tower: AdamW).")
    ] = 1e-3,
    loss: Annotated[
        str | None,
        typer.Option(
            help="two-tower: ranking (default; each positive against a negative sharing its "
            "target and one sharing its TF) or bce."
        ),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option(help="two-tower: ensemble members, one seed each, logits averaged (3)."),
    ] = None,
    tower: Annotated[
        str | None, typer.Option(help="two-tower: dense (default) or conv towers.")
    ] = None,
    head: Annotated[
        str | None,
        typer.Option(
            help="two-tower: mlp on [u, v, u*v, |u-v|] (default), interaction or bilinear."
        ),
    ] = None,
    shared: Annotated[
        bool | None,
        typer.Option(
            "--shared/--separate",
            help="two-tower: one tower for both roles (default) or one tower per role.",
        ),
    ] = None,
    prior: Annotated[
        str | None,
        typer.Option(
            help="target-frequency: also blend the model with the target's training frequency "
            "(fitted on the validation TFs); outputs keep model, prior and combined side by side."
        ),
    ] = None,
    seed: SeedOpt = 0,
    threads: ThreadsOpt = None,
    force: ForceOpt = False,
) -> None:
    """Train a pair CNN (published architecture by default) or a two-tower model, and
    report test metrics.

    Same seed and same --threads, same weights: the thread count is part of the recipe.
    """
    from ... import api
    from ...io.atomic import check_writable
    from ...model.prior import PRIORS
    from ...runtime import default_threads, torch_threads

    check_writable(output, force)
    # Check every option before reading (possibly large) input files.
    check_choice(architecture, api.ARCHITECTURES, "--architecture")
    if prior is not None:
        check_choice(prior, PRIORS, "--prior")
    if architecture == "pair-cnn":
        _only_for(
            "two-tower",
            {"--loss": loss, "--seeds": seeds, "--tower": tower, "--head": head},
            {"--shared/--separate": shared is not None},
        )
        hyperparameters: dict[str, Any] = dict(
            filters=int_pair(filters, "--filters"),
            units=units,
            batch_norm=(batch_norm1, batch_norm2),
            dropout=0.01 if dropout is None else dropout,
            kernel_width=kernel_width,
            epochs=30 if epochs is None else epochs,
            batch_size=512 if batch_size is None else batch_size,
            learning_rate=learning_rate,
        )
    else:
        _only_for(
            "pair-cnn",
            {},
            {
                "--filters": filters != "4,8",
                "--units": units != 8,
                "--batch-norm1": batch_norm1,
                "--no-batch-norm2": not batch_norm2,
            },
        )
        given = dict(
            loss=loss,
            n_seeds=seeds,
            tower=tower,
            head=head,
            shared=shared,
            dropout=dropout,
            max_epochs=epochs,
            batch_size=batch_size,
        )
        hyperparameters = {k: v for k, v in given.items() if v is not None}
        hyperparameters.update(kernel_width=kernel_width, learning_rate=learning_rate)
    try:
        api.new_model(architecture, seed, **hyperparameters)
    except TfcnnInputError as exc:  # name the options as this command spells them
        renamed = str(exc).replace("`n_seeds`", "`seeds`").replace("`max_epochs`", "`epochs`")
        raise TfcnnInputError(renamed) from None
    if pairs is None:
        if expression is None or interactions is None:
            raise TfcnnInputError("give --pairs, or both --expression and --interactions.")
        data = _build_pairs(
            expression,
            interactions,
            id_map,
            evidence,
            exclude,
            negatives,
            split,
            seed,
            log2,
            negative_exclude=negative_exclude,
            **expression_options(transpose, layer, pseudobulk, order_by),
        )
    else:
        if expression is not None or interactions is not None:
            raise TfcnnInputError("give either --pairs or --expression/--interactions, not both.")
        data = api.load_pairs(pairs)
    with torch_threads(default_threads(threads), blas=True):
        model = api.train(
            data,
            output=output,
            force=force,
            seed=seed,
            progress=True,
            architecture=architecture,
            prior=prior,
            **hyperparameters,
        )
    test = model.record_.metrics["test"]
    console.print(metrics_table(test, "Held-out test split"))
    if test.get("prior"):
        console.print(prior_lines(test["prior"]))
    console.print(f"Model written to [bold]{escape(str(output))}[/]")


def _only_for(architecture: str, values: dict[str, Any], flags: dict[str, bool]) -> None:
    """Refuse options that only another --architecture takes."""
    given = [k for k, v in values.items() if v is not None] + [k for k, v in flags.items() if v]
    if given:
        raise TfcnnInputError(
            f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} to "
            f"--architecture {architecture}."
        )


def prior_lines(prior: dict[str, Any]) -> Group:
    """The prior blend as printed: its weights, and the combination beside the best control."""
    b = prior["blend"]
    lines: list[Any] = [
        f"prior blend, fitted on {b['n_pairs']:,} pairs of {b['n_tfs']} validation TFs: "
        f"prior + model = sigmoid({b['intercept']:+.3f} {b['weight_model']:+.3f} x "
        f"logit(model) {b['weight_prior']:+.3f} x log1p(target frequency))"
    ]
    if b.get("model_weight_clamped"):
        lines.append(
            "[yellow]note:[/] on the validation TFs the model ranked pairs backwards; the blend "
            "does not reverse it (its weight is held at 0), so prior + model is the prior alone."
        )
    if b["weight_prior"] < 0:
        lines.append(
            "[yellow]note:[/] the prior's weight is negative: frequent training targets count "
            "against a pair. With negatives balanced over the whole set, held-out TFs' targets "
            "are anti-balanced, and the blend learns that artefact (docs/pair_model.md)."
        )
    lines += versus_lines(prior, ("within_target", "pooled"), "prior + model")
    return Group(*lines)


def versus_lines(m: dict[str, Any], kinds: tuple[str, ...], who: str = "model") -> list[str]:
    """``who`` minus the best control, with its 95% CI, one line per kind of AUROC."""
    from ...evaluation.evaluate import KIND_LABELS, LABELS

    lines = []
    for kind in kinds:
        v = (m.get("versus_best_control") or {}).get(kind)
        if v and v.get("difference") is not None:
            lines.append(
                f"{who} minus best control ({LABELS.get(v['control'], v['control'])}), "
                f"{KIND_LABELS[kind]} AUROC: {v['difference']:+.3f} "
                f"(95% CI {v['low']:+.3f} to {v['high']:+.3f}; TFs resampled)"
            )
    return lines


def evaluate(
    model: ModelOpt,
    pairs: PairsOpt,
    split: Annotated[str, typer.Option(help="train, validation or test.")] = "test",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the metrics as JSON.")
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Score a model on one split of a pair set: accuracy, loss, AUROC, AUPRC, confusion."""
    from ... import api
    from ...io.atomic import check_writable, write_text

    if output is not None:
        check_writable(output, force)
    result = api.evaluate(model, pairs, split=split)
    console.print(metrics_table(result, escape(f"{split} split of {pairs}")))
    if output is not None:
        write_text(output, json.dumps(result, indent=2) + "\n", force=force)
        console.print(f"Metrics written to [bold]{escape(str(output))}[/]")


def metrics_table(m: dict[str, Any], title: str) -> Group:
    """The evaluation as printed: each score beside the node-identity controls, then CIs.

    Within-target AUROC leads (controls that recognise targets score exactly 0.5 there);
    pooled figures follow, then the model's margin over the best control with its 95% CI
    and plain-words warnings; accuracy and the confusion matrix last.
    """
    from ...evaluation.evaluate import LABELS

    def fmt(v: float | None, digits: int = 3) -> str:
        return "n/a" if v is None else f"{v:.{digits}f}"

    table = Table(title=f"{title}: {m['n']:,} pairs ({m['n_positive']:,} positives)")
    table.add_column("score", no_wrap=True)
    table.add_column("AUROC within targets", justify="right")
    for col in ("within TFs", "pooled", "pooled AUPRC"):
        table.add_column(col, justify="right")
    for name, metrics in (m.get("methods") or {}).items():
        label = LABELS.get(name, name)
        table.add_row(
            f"[bold]{escape(label)}[/]" if name == "model" else escape(label),
            fmt(metrics.get("within_target_auroc")),
            fmt(metrics.get("within_tf_auroc")),
            fmt(metrics.get("pooled_auroc")),
            fmt(metrics.get("pooled_auprc")),
        )
    lines: list[Any] = [table]
    lines += versus_lines(m, ("within_target", "within_tf", "pooled"))
    lines += [f"[yellow]warning:[/] {escape(w)}" for w in m.get("warnings") or []]
    c = m["confusion"]
    lines.append(
        f"at probability {m['threshold']}: accuracy {fmt(m['accuracy'])}, loss "
        f"{fmt(m['loss'])}; TP {c['tp']}  FP {c['fp']}  FN {c['fn']}  TN {c['tn']}"
    )
    return Group(*lines)


def demo(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Results folder (default: results/demo, -2, ...)."),
    ] = None,
    seed: SeedOpt = 0,
    epochs: Annotated[int, typer.Option(help="Training epochs per model.")] = 30,
    threads: ThreadsOpt = None,
    force: ForceOpt = False,
) -> None:
    """Train on the bundled nitrogen compendium under four protocols, side by side.

    The four models train as parallel one-thread runs (--threads at a time), so the
    numbers are the same whatever --threads is.
    """
    from ...runtime import Stopped, stop_on_signals
    from ...study.demo import run_demo

    if epochs < 1:
        raise TfcnnInputError("--epochs must be >= 1.")
    try:
        with stop_on_signals():
            run_demo(
                output, seed=seed, epochs=epochs, force=force, console=console, threads=threads
            )
    except Stopped as stop:
        print_error(f"{stop}: the demo's workers were stopped; nothing was written.")
        raise typer.Exit(code=stop.exit_code) from None


def register(app: typer.Typer) -> None:
    """Add the pipeline commands to the CLI."""
    app.command("datasets")(user_errors(datasets))
    app.command("build-pairs")(user_errors(build_pairs_cmd))
    app.command("train")(user_errors(train))
    app.command("evaluate")(user_errors(evaluate))
    app.command("demo")(user_errors(demo))
