"""The `tfcnn` command line: a thin layer over :mod:`tfcnn.api`.

Options keep one name across all commands: --expression, --interactions, --id-map,
--pairs, --model, --output, --seed, --force. Bad input ends with a one-paragraph
message and exit code 2.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from .. import __version__
from ..errors import TfcnnInputError

app = typer.Typer(
    name="tfcnn",
    help="Predict transcription factor -> target regulation from expression profiles "
    "with a small pair CNN (MacLean 2019), and evaluate it honestly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

# -- shared options (same names everywhere) ---------------------------------------------
ExpressionOpt = Annotated[
    str,
    typer.Option(
        "--expression",
        "-x",
        help="Expression matrix (genes x samples; TSV/CSV[.gz]/Parquet) or a bundled "
        "dataset name, e.g. nitrogen-expression.",
    ),
]
InteractionsOpt = Annotated[
    str,
    typer.Option(
        "--interactions",
        "-i",
        help="Known TF->target pairs: an AtRegNet file (confirmed + direct rows are used) or "
        "a TF/target table; or a bundled name (atregnet, nitrogen-edges).",
    ),
]
IdMapOpt = Annotated[
    str | None,
    typer.Option(
        "--id-map",
        help="AGI <-> ATH1 probeset map (two-column or TAIR affy_ATH1_array_elements); "
        "bundled: ath1-map. Needed when expression and interactions use different IDs.",
    ),
]
EvidenceOpt = Annotated[
    str | None,
    typer.Option(
        "--evidence",
        help="Comma-separated evidence values to keep, for tables with an 'evidence' column "
        "(e.g. TARGET,CHIPSeq,Litterature).",
    ),
]
ExcludeOpt = Annotated[
    str | None,
    typer.Option("--exclude", help="Further known pairs never to use as negatives."),
]
PairsOpt = Annotated[
    Path, typer.Option("--pairs", "-p", help="Pair set directory written by build-pairs.")
]
ModelOpt = Annotated[Path, typer.Option("--model", "-m", help="Model directory.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same result).")]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace an existing output instead of refusing.")
]
Log2Opt = Annotated[bool, typer.Option("--log2", help="Take log2 of the expression values first.")]
NegativesOpt = Annotated[
    str,
    typer.Option(
        "--negatives",
        help="random (any gene pair, the study's choice) or tf-matched (each TF with its "
        "non-targets).",
    ),
]
SplitOpt = Annotated[
    str,
    typer.Option(
        "--split", help="random (80/10/10 of pairs, the study) or tf-holdout (whole TFs)."
    ),
]


def _setup_logging(verbose: bool) -> None:
    logger = logging.getLogger("tfcnn")
    logger.handlers.clear()
    handler = RichHandler(console=err_console, show_time=False, show_path=False)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False


def user_errors(func: F) -> F:
    """Turn bad-input errors into a clear message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TfcnnInputError as exc:
            _print_error(str(exc))
            raise typer.Exit(code=2) from None
        except OSError as exc:
            # A path the system refuses (unreadable file, output under a regular file, no
            # permission, disk full): the user's to fix, so no traceback either.
            where = f"{exc.filename}: " if exc.filename else ""
            _print_error(f"{where}{exc.strerror or exc}; check the path and its permissions.")
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def _print_error(message: str) -> None:
    # The message holds user text (paths, IDs): escape it, or '[...]' is read as markup.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def _int_pair(value: str, option: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in value.split(","))
    except ValueError:
        a = b = 0
    if min(a, b) < 1:
        raise TfcnnInputError(
            f"{option} takes two comma-separated positive integers such as 4,8 (got {value!r})."
        )
    return a, b


def _check_choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise TfcnnInputError(f"{option} must be one of {', '.join(choices)} (got {value!r}).")
    return value


def _print_version(value: bool) -> None:
    # Eager, so `tfcnn --version` works without a command (a callback body would not run).
    if value:
        console.print(f"tfcnn {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show progress notes.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    _setup_logging(verbose)


@app.command()
@user_errors
def datasets() -> None:
    """List the bundled real datasets with their source and size."""
    from ..io.datasets import list_datasets

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


@app.command("build-pairs")
@user_errors
def build_pairs_cmd(
    expression: ExpressionOpt,
    interactions: InteractionsOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="Pair set directory to write.")],
    id_map: IdMapOpt = None,
    evidence: EvidenceOpt = None,
    exclude: ExcludeOpt = None,
    negatives: NegativesOpt = "random",
    split: SplitOpt = "random",
    log2: Log2Opt = False,
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
):
    """Check the pair options, then build (and, with ``output``, save) the pair set."""
    from ..api import build_pairs
    from ..pairs import NEGATIVE_STRATEGIES, SPLIT_STRATEGIES

    _check_choice(negatives, NEGATIVE_STRATEGIES, "--negatives")
    _check_choice(split, SPLIT_STRATEGIES, "--split")
    return build_pairs(
        expression,
        interactions,
        id_map=id_map,
        evidence=_csv(evidence),
        exclude=exclude,
        negatives=negatives,
        split=split,
        seed=seed,
        log2=log2,
        output=output,
        force=force,
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


@app.command()
@user_errors
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
    negatives: NegativesOpt = "random",
    split: SplitOpt = "random",
    log2: Log2Opt = False,
    filters: Annotated[str, typer.Option(help="Filters of conv 1 and conv 2.")] = "4,8",
    units: Annotated[int, typer.Option(help="Units of the dense layer.")] = 8,
    batch_norm1: Annotated[
        bool, typer.Option("--batch-norm1/--no-batch-norm1", help="Batch norm after conv 1.")
    ] = False,
    batch_norm2: Annotated[
        bool, typer.Option("--batch-norm2/--no-batch-norm2", help="Batch norm after conv 2.")
    ] = True,
    dropout: Annotated[
        float, typer.Option(help="Dropout rate before the output (0 = off).")
    ] = 0.01,
    kernel_width: Annotated[int, typer.Option(help="Convolution kernel width.")] = 5,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 30,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 512,
    learning_rate: Annotated[float, typer.Option(help="RMSprop learning rate.")] = 1e-3,
    seed: SeedOpt = 0,
    force: ForceOpt = False,
) -> None:
    """Train a pair CNN (published architecture by default) and report test metrics."""
    from .. import api
    from ..io.atomic import check_writable

    check_writable(output, force)
    # Check every option before reading (possibly large) input files.
    filter_pair = _int_pair(filters, "--filters")
    if not 0.0 <= dropout < 1.0:
        raise TfcnnInputError(f"--dropout must be in [0, 1) (got {dropout}).")
    if min(epochs, batch_size, units, kernel_width) < 1:
        raise TfcnnInputError("--epochs, --batch-size, --units and --kernel-width must be >= 1.")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise TfcnnInputError(f"--learning-rate must be a positive number (got {learning_rate}).")
    if pairs is None:
        if expression is None or interactions is None:
            raise TfcnnInputError("give --pairs, or both --expression and --interactions.")
        data = _build_pairs(
            expression, interactions, id_map, evidence, exclude, negatives, split, seed, log2
        )
    else:
        if expression is not None or interactions is not None:
            raise TfcnnInputError("give either --pairs or --expression/--interactions, not both.")
        data = api.load_pairs(pairs)
    model = api.train(
        data,
        output=output,
        force=force,
        seed=seed,
        progress=True,
        filters=filter_pair,
        units=units,
        batch_norm=(batch_norm1, batch_norm2),
        dropout=dropout,
        kernel_width=kernel_width,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
    )
    console.print(metrics_table(model.metadata_["metrics"]["test"], "Held-out test split"))
    console.print(f"Model written to [bold]{escape(str(output))}[/]")


@app.command()
@user_errors
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
    from .. import api
    from ..io.atomic import check_writable, write_text

    if output is not None:
        check_writable(output, force)
    result = api.evaluate(model, pairs, split=split)
    console.print(metrics_table(result, escape(f"{split} split of {pairs}")))
    if output is not None:
        write_text(output, json.dumps(result, indent=2) + "\n", force=force)
        console.print(f"Metrics written to [bold]{escape(str(output))}[/]")


def metrics_table(m: dict[str, Any], title: str) -> Table:
    """Metrics as a two-column table, with the confusion matrix and Pearson baseline."""

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    c = m["confusion"]
    rows = [
        ("pairs (positives)", f"{m['n']:,} ({m['n_positive']:,})"),
        ("accuracy", fmt(m["accuracy"])),
        ("loss (binary cross-entropy)", fmt(m["loss"])),
        ("AUROC", fmt(m["auroc"])),
        ("AUPRC", fmt(m["auprc"])),
        (
            f"confusion at {m['threshold']}",
            f"TP {c['tp']}  FP {c['fp']}  FN {c['fn']}  TN {c['tn']}",
        ),
    ]
    if "baselines" in m:
        rows.append(("Pearson r AUROC (same pairs)", fmt(m["baselines"]["pearson"]["auroc"])))
        rows.append(
            ("target-frequency control AUROC", fmt(m["baselines"]["target_frequency"]["auroc"]))
        )
    for row in rows:
        table.add_row(*row)
    return table


@app.command()
@user_errors
def demo(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Results folder (default: results/demo, -2, ...)."),
    ] = None,
    seed: SeedOpt = 0,
    epochs: Annotated[int, typer.Option(help="Training epochs per model.")] = 30,
    force: ForceOpt = False,
) -> None:
    """Train on the bundled nitrogen compendium under four protocols, side by side."""
    from ..study.demo import run_demo

    if epochs < 1:
        raise TfcnnInputError("--epochs must be >= 1.")
    run_demo(output, seed=seed, epochs=epochs, force=force, console=console)


models_app = typer.Typer(
    help="List bundled and registered models; register your own.", no_args_is_help=False
)
app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
@user_errors
def models_list(ctx: typer.Context) -> None:
    """List bundled and registered models with their provenance and test AUROC."""
    if ctx.invoked_subcommand is not None:
        return
    from ..model.registry import list_models, user_models_dir

    entries = list_models()
    table = Table(title="Models (use the name wherever --model is asked)")
    for col in ("name", "origin", "samples", "test AUROC", "description"):
        table.add_column(col, overflow="fold")
    for e in entries:
        auroc = e.test_auroc
        table.add_row(
            escape(e.name),
            e.origin,
            str(e.n_samples) + ("" if e.metadata.get("samples") else " (names not recorded)"),
            "n/a" if auroc is None else f"{auroc:.3f}",
            escape(e.description),
        )
    console.print(table)
    if not entries:
        console.print("No models yet: train one with 'tfcnn train' and register it.")
    console.print(f"User models live in {escape(str(user_models_dir()))} (set TFCNN_HOME to move).")


@models_app.command("add")
@user_errors
def models_add(
    model: ModelOpt,
    name: Annotated[str, typer.Option("--name", help="Name to register the model under.")],
    force: ForceOpt = False,
) -> None:
    """Register a trained model directory under a name (it is validated and copied)."""
    from ..model.registry import register_model

    dest = register_model(model, name, force=force)
    console.print(f"Registered [bold]{escape(name)}[/] at {escape(str(dest))}")


# Feature commands live in their own modules (tfcnn/commands/NAME.py), each with a
# register(app) function; list them here.
COMMAND_MODULES: tuple[str, ...] = (
    "keras_import",
    "predict",
    "serve",
    "fetch",
    "rma",
    "scan",
    "study",
    "explain",
)
for _module in COMMAND_MODULES:
    importlib.import_module(f"tfcnn.apps.commands.{_module}").register(app)


def main() -> None:
    """Console-script entry point."""
    from ..runtime import keep_freed_memory

    keep_freed_memory()  # training and scanning reuse large buffers: see tfcnn.runtime
    app()


if __name__ == "__main__":
    main()
