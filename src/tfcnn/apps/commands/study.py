"""`tfcnn study`, `tfcnn tune grid|regularisation`, `tfcnn report`: the study, made honest.

See :mod:`tfcnn.study` and docs/study.md.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from ...errors import TfcnnInputError
from ..console import console, print_error, user_errors
from ..options import EvidenceOpt, ExcludeOpt, ForceOpt, IdMapOpt, Log2Opt, SeedOpt, ThreadsOpt

if TYPE_CHECKING:
    from ...study.inputs import StudyInputs

OutputOpt = Annotated[
    Path, typer.Option("--output", "-o", help="Results folder (created, or resumed).")
]
ExpressionStudyOpt = Annotated[
    str | None,
    typer.Option(
        "--expression",
        "-x",
        help="Expression matrix or bundled name. Default (with no -x/-i): the bundled "
        "nitrogen compendium, TARGET+CHIPSeq+Litterature positives, negatives excluding "
        "only those pairs (DAP-seq-only pairs may be negatives; --exclude nitrogen-edges "
        "keeps every ConnecTF edge out), as tfcnn demo.",
    ),
]
InteractionsStudyOpt = Annotated[
    str | None, typer.Option("--interactions", "-i", help="Known TF->target pairs.")
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", help="Local worker processes, 1 thread each (default: --threads)."),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="dask.distributed scheduler address (tcp://host:port) instead: inputs are "
        "shipped to its workers and results come back here (docs/dask.md).",
    ),
]
TrainPairsOpt = Annotated[
    int,
    typer.Option(
        "--train-pairs", help="Seeded subsample of training pairs per config (study: 6,900)."
    ),
]
ValPairsOpt = Annotated[
    int, typer.Option("--validation-pairs", help="Seeded subsample of validation pairs (0: all).")
]


def _data(
    expression: str | None,
    interactions: str | None,
    id_map: str | None,
    evidence: str | None,
    exclude: str | None,
    log2: bool,
) -> StudyInputs:
    """The inputs, read once (here, on the client) and checked before any output."""
    from ...study.inputs import read_inputs
    from ...study.protocols import data_spec, default_data_spec

    if expression is None and interactions is None:
        if evidence or id_map or log2:
            raise TfcnnInputError(
                "--evidence/--id-map/--log2 need --expression and --interactions "
                "(without them the bundled nitrogen compendium is used as in tfcnn demo)."
            )
        inputs = read_inputs(default_data_spec(exclude))
        if exclude is not None:
            _check_data(inputs)
        return inputs
    if expression is None or interactions is None:
        raise TfcnnInputError("give both --expression and --interactions, or neither.")
    ev = [v.strip() for v in evidence.split(",") if v.strip()] if evidence else None
    inputs = read_inputs(data_spec(expression, interactions, ev, exclude, id_map, log2))
    _check_data(inputs)
    return inputs


def _check_data(inputs: StudyInputs) -> None:
    """Line the pairs up with the matrix before any output.

    A bad file would otherwise surface only after the results folder exists, or be
    recorded as a failed protocol. Whether each protocol can be built (enough TFs for a
    split, ...) is still decided, and reported, per protocol.
    """
    from ...pairs import align_interactions

    expression, positives, id_map = inputs.expression, inputs.positives, inputs.id_map
    if inputs.exclude is not None:
        align_interactions(inputs.exclude, expression.genes, id_map, expression.source)
    pairs, _ = align_interactions(positives, expression.genes, id_map, expression.source)
    genes = set(expression.genes)
    if not (pairs["tf"].isin(genes) & pairs["target"].isin(genes)).any():
        raise TfcnnInputError(
            f"no known pair from {positives.source} has both genes in {expression.source}; "
            "check that both use the same gene IDs (AGI codes or probesets) or pass --id-map."
        )


def _ints(value: str, option: str) -> list[int]:
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise TfcnnInputError(f"{option} takes comma-separated positive integers (got {value!r}).")
    return out


def _floats(value: str, option: str) -> list[float]:
    try:
        out = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        out = []
    if not out or not all(0.0 <= v < 1.0 for v in out):
        raise TfcnnInputError(f"{option} takes comma-separated rates in [0, 1) (got {value!r}).")
    return out


def _choices(value: str, allowed: tuple[str, ...], option: str) -> list[str]:
    out = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in out if v not in allowed]
    if not out or bad:
        raise TfcnnInputError(
            f"{option} takes a comma-separated subset of {', '.join(allowed)} (got {value!r})."
        )
    return out


def _check_run(workers: int | None, train_pairs: int | None = None) -> None:
    if workers is not None and workers < 1:
        raise TfcnnInputError("--workers must be >= 1.")
    if train_pairs is not None and train_pairs < 10:
        raise TfcnnInputError("--train-pairs must be >= 10.")


def _run(
    output: Path,
    settings: dict[str, Any],
    inputs: StudyInputs,
    workers: int | None,
    threads: int | None,
    scheduler: str | None,
    force: bool,
) -> dict[str, Any]:
    """Run or resume the study; on SIGINT/SIGTERM stop the workers, keep finished runs."""
    from ...runtime import Stopped, default_threads, stop_on_signals
    from ...study import report, study

    start = time.time()
    try:
        with stop_on_signals():
            summary = study.run(
                output,
                settings,
                inputs=inputs,
                workers=workers or default_threads(threads),
                scheduler=scheduler,
                force=force,
                log=lambda m: console.print(escape(m), highlight=False),
            )
            path = report.write_report(output, force=True, summary=summary)
    except Stopped as stop:
        print_error(
            f"{stop}: workers stopped; finished runs are kept in {output}, nothing is "
            "half-written. Rerun the same command to resume."
        )
        raise typer.Exit(code=stop.exit_code) from None
    for line in [*(summary.get("verdict") or []), *filter(None, [summary.get("goal")])]:
        console.print(escape(line), highlight=False)
    if summary.get("warnings"):
        console.print(f"[bold red]warning:[/] {escape(summary['warning_summary'])}")
    console.print(
        f"Finished in {time.time() - start:.0f} s: {summary['run_counts']['ran']} runs ran, "
        f"{summary['run_counts']['skipped']} reused. Report: [bold]{escape(str(path))}[/]"
    )
    return summary


def tune_grid(
    output: OutputOpt,
    expression: ExpressionStudyOpt = None,
    interactions: InteractionsStudyOpt = None,
    id_map: IdMapOpt = None,
    evidence: EvidenceOpt = None,
    exclude: ExcludeOpt = None,
    log2: Log2Opt = False,
    values: Annotated[
        str, typer.Option("--values", help="Filters/units values for all three layers.")
    ] = "8,16,32,64",
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs per config.")] = 30,
    train_pairs: TrainPairsOpt = 6900,
    validation_pairs: ValPairsOpt = 0,
    seed: SeedOpt = 0,
    workers: WorkersOpt = None,
    threads: ThreadsOpt = None,
    scheduler: SchedulerOpt = None,
    force: ForceOpt = False,
) -> None:
    """Filters x units grid (conv 1, conv 2, dense), as the study's Figure 2."""
    from ...study import study

    _check_run(workers, train_pairs)
    if epochs < 1:
        raise TfcnnInputError("--epochs must be >= 1.")
    grid_values = _ints(values, "--values")
    study.check_output(output, force)  # before reading (possibly large) inputs
    inputs = _data(expression, interactions, id_map, evidence, exclude, log2)
    settings = study.default_settings(
        inputs.spec,
        seed=seed,
        replicates=0,
        grid={
            "values": grid_values,
            "epochs": epochs,
            "train_pairs": train_pairs,
            "validation_pairs": validation_pairs or None,
        },
    )
    settings["commands"] = [study.rerun_command(settings, output)]
    console.print(
        f"Grid: {len(grid_values) ** 3} configs, {epochs} epochs, "
        f"{train_pairs:,} training pairs (seeded subsample)"
    )
    _run(output, settings, inputs, workers, threads, scheduler, force)


def tune_regularisation(
    output: OutputOpt,
    expression: ExpressionStudyOpt = None,
    interactions: InteractionsStudyOpt = None,
    id_map: IdMapOpt = None,
    evidence: EvidenceOpt = None,
    exclude: ExcludeOpt = None,
    log2: Log2Opt = False,
    dropouts: Annotated[
        str, typer.Option("--dropouts", help="Dropout rates (0 = off).")
    ] = "0,0.01,0.05,0.1",
    batch_sizes: Annotated[str, typer.Option("--batch-sizes")] = "256,512",
    epochs: Annotated[str, typer.Option("--epochs", help="Epoch counts to try.")] = "30,40",
    train_pairs: TrainPairsOpt = 6900,
    validation_pairs: ValPairsOpt = 0,
    seed: SeedOpt = 0,
    workers: WorkersOpt = None,
    threads: ThreadsOpt = None,
    scheduler: SchedulerOpt = None,
    force: ForceOpt = False,
) -> None:
    """Batch norm 1/2 x dropout x batch size x epochs; top 5 as the study's Table 1."""
    from ...study import study

    _check_run(workers, train_pairs)
    reg_scan = {
        "dropouts": _floats(dropouts, "--dropouts"),
        "batch_sizes": _ints(batch_sizes, "--batch-sizes"),
        "epochs": _ints(epochs, "--epochs"),
        "train_pairs": train_pairs,
        "validation_pairs": validation_pairs or None,
    }
    study.check_output(output, force)  # before reading (possibly large) inputs
    inputs = _data(expression, interactions, id_map, evidence, exclude, log2)
    settings = study.default_settings(
        inputs.spec,
        seed=seed,
        replicates=0,
        regularisation=reg_scan,
    )
    settings["commands"] = [study.rerun_command(settings, output)]
    _run(output, settings, inputs, workers, threads, scheduler, force)


def study_cmd(
    output: OutputOpt,
    expression: ExpressionStudyOpt = None,
    interactions: InteractionsStudyOpt = None,
    id_map: IdMapOpt = None,
    evidence: EvidenceOpt = None,
    exclude: ExcludeOpt = None,
    log2: Log2Opt = False,
    split: Annotated[
        str, typer.Option("--split", help="Comma-separated split protocols.")
    ] = "random,tf-holdout,pair-disjoint",
    negatives: Annotated[
        str, typer.Option("--negatives", help="Comma-separated negative strategies.")
    ] = "random,tf-matched,degree-matched",
    replicates: Annotated[
        int, typer.Option("--replicates", help="Seeds per protocol / folds for tf-holdout.")
    ] = 5,
    epochs: Annotated[
        int,
        typer.Option(
            "--epochs",
            help="CNN epochs per protocol run (the study's 30); the two-tower model's "
            "maximum per seed (it stops early on its validation TFs).",
        ),
    ] = 30,
    genie3_trees: Annotated[
        int, typer.Option("--genie3-trees", help="Trees per target (0 = no GENIE3).")
    ] = 50,
    bootstrap: Annotated[
        int,
        typer.Option("--bootstrap", help="Bootstrap replicates (TFs resampled) of the 95% CIs."),
    ] = 500,
    models: Annotated[
        str,
        typer.Option(
            "--models",
            help="Learned models of every protocol run, on the same pairs and seed: "
            "pair-cnn (the published CNN, always included) and two-tower (issue 15; "
            "its own early stopping, at most --epochs epochs per seed).",
        ),
    ] = "pair-cnn,two-tower",
    two_tower_seeds: Annotated[
        int,
        typer.Option("--two-tower-seeds", help="Seeds (ensemble members) of each two-tower model."),
    ] = 3,
    tune: Annotated[
        bool, typer.Option("--tune/--no-tune", help="Also run both tuning scans.")
    ] = True,
    tune_train_pairs: Annotated[
        int,
        typer.Option("--tune-train-pairs", help="Training pairs per tuning config (subsample)."),
    ] = 500,
    tune_validation_pairs: Annotated[
        int, typer.Option("--tune-validation-pairs", help="Validation pairs (0: all).")
    ] = 500,
    tune_epochs: Annotated[
        int, typer.Option("--tune-epochs", help="Grid epochs (study: 30).")
    ] = 10,
    seed: SeedOpt = 0,
    workers: WorkersOpt = None,
    threads: ThreadsOpt = None,
    scheduler: SchedulerOpt = None,
    force: ForceOpt = False,
) -> None:
    """Everything for one dataset: protocols x baselines x controls, tuning, report."""
    from ...study import protocols, study

    _check_run(workers, tune_train_pairs)
    if replicates < 2 or epochs < 1 or tune_epochs < 1 or genie3_trees < 0 or bootstrap < 20:
        raise TfcnnInputError(
            "--replicates must be >= 2, --epochs/--tune-epochs >= 1, --genie3-trees >= 0, "
            "--bootstrap >= 20."
        )
    tuning = {
        "train_pairs": tune_train_pairs,
        "validation_pairs": tune_validation_pairs or None,
    }
    splits = tuple(_choices(split, protocols.SPLITS, "--split"))
    negative_kinds = tuple(_choices(negatives, protocols.NEGATIVES, "--negatives"))
    chosen = _choices(models, tuple(protocols.MODELS), "--models")
    if "pair-cnn" not in chosen:
        raise TfcnnInputError(
            f"--models must include pair-cnn, the reference of every table (got {models!r})."
        )
    model_kinds = tuple(m for m in protocols.MODELS if m in chosen)  # the CNN first
    two_tower = {"n_seeds": two_tower_seeds} if "two-tower" in model_kinds else None
    if two_tower is not None:
        from ...api import new_model
        from ...model.two_tower import MAX_MEMBERS

        if not 1 <= two_tower_seeds <= MAX_MEMBERS:
            raise TfcnnInputError(f"--two-tower-seeds must be from 1 to {MAX_MEMBERS}.")

        new_model("two-tower", seed, max_epochs=epochs, **two_tower)  # settings checked
    study.check_output(output, force)  # before reading (possibly large) inputs
    inputs = _data(expression, interactions, id_map, evidence, exclude, log2)
    settings = study.default_settings(
        inputs.spec,
        seed=seed,
        replicates=replicates,
        epochs=epochs,
        splits=splits,
        negatives=negative_kinds,
        genie3_trees=genie3_trees,
        bootstrap=bootstrap,
        models=model_kinds,
        two_tower=two_tower,
        grid={"values": [8, 16, 32, 64], "epochs": tune_epochs, **tuning} if tune else None,
        regularisation={
            "dropouts": [0.0, 0.01, 0.05, 0.1],
            "batch_sizes": [256, 512],
            "epochs": [30, 40],
            **tuning,
        }
        if tune
        else None,
    )
    settings["commands"] = [study.rerun_command(settings, output)]
    n_tune = 128 if tune else 0
    p = settings["protocols"]
    console.print(
        f"Study: {len(p['splits']) * len(p['negatives'])}"
        f" protocols x {replicates} replicates ({epochs} epochs each; models "
        f"{', '.join(model_kinds)})"
        + (
            f"; tuning {n_tune} configs on {tune_train_pairs:,} training pairs "
            f"(seeded subsample; the study's grid used 6,900)"
            if tune
            else ""
        )
    )
    _run(output, settings, inputs, workers, threads, scheduler, force)


def report_cmd(
    results: Annotated[Path, typer.Argument(help="Results folder of tfcnn study / tune.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="HTML file (default RESULTS/report.html)."),
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Write a self-contained HTML report (figures embedded) of a results folder."""
    from ...study import report

    path = report.write_report(results, force=force, output=str(output) if output else None)
    console.print(f"Report written to [bold]{escape(str(path))}[/]")


def register(app: typer.Typer) -> None:
    """Add `study`, `tune grid`, `tune regularisation` and `report` to the CLI."""
    tune_app = typer.Typer(
        help="The study's tuning scans (parallel, seeded, resumable).", no_args_is_help=True
    )
    app.add_typer(tune_app, name="tune")
    tune_app.command("grid")(user_errors(tune_grid))
    tune_app.command("regularisation")(user_errors(tune_regularisation))
    app.command("study")(user_errors(study_cmd))
    app.command("report")(user_errors(report_cmd))
