"""Named models: `models` (list), `models add`, and `import-keras` (Keras HDF5 -> tfcnn)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ...errors import TfcnnInputError
from ..console import console, user_errors
from ..options import ForceOpt, ModelOpt

models_app = typer.Typer(
    help="List bundled and registered models; register your own.", no_args_is_help=False
)


def models_list(ctx: typer.Context) -> None:
    """List bundled and registered models: provenance, the honest figure, pooled AUROC."""
    if ctx.invoked_subcommand is not None:
        return
    from ...evaluation.card import card_line
    from ...model.registry import list_models, user_models_dir

    entries = list_models()
    table = Table(title="Models (use the name wherever --model is asked)")
    table.add_column("name", no_wrap=True)
    for col in ("origin", "samples", "honest figure", "pooled test AUROC", "description"):
        table.add_column(col, overflow="fold")
    for e in entries:
        auroc = e.test_auroc
        data = e.metadata.get("data") or {}
        pooled = "n/a" if auroc is None else f"{auroc:.3f}"
        if data and auroc is not None:
            pooled += f" ({data.get('split')} split, {data.get('negatives')} negatives)"
        reported = (e.metadata.get("provenance") or {}).get("reported_accuracy")
        if auroc is None and reported is not None:
            pooled = f"reported accuracy {reported} (random negatives; not measured by tfcnn)"
        table.add_row(
            escape(e.name),
            e.origin,
            str(e.n_samples) + ("" if e.metadata.get("samples") else " (names not recorded)"),
            escape(card_line(e.metadata.get("evaluation"))),
            pooled,
            escape(e.description),
        )
    console.print(table)
    if not entries:
        console.print("No models yet: train one with 'tfcnn train' and register it.")
    console.print(f"User models live in {escape(str(user_models_dir()))} (set TFCNN_HOME to move).")


def models_add(
    model: ModelOpt,
    name: Annotated[str, typer.Option("--name", help="Name to register the model under.")],
    force: ForceOpt = False,
) -> None:
    """Register a trained model directory under a name (it is validated and copied)."""
    from ...model.registry import register_model

    dest = register_model(model, name, force=force)
    console.print(f"Registered [bold]{escape(name)}[/] at {escape(str(dest))}")


def import_keras_cmd(
    keras: Annotated[
        Path, typer.Option("--keras", help="Keras 2 HDF5 file written by model.save().")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model directory to write.")],
    provenance: Annotated[
        Path | None,
        typer.Option(
            "--provenance",
            help="JSON file with a provenance object (description, study, training_data, "
            "caveat, ...) to record in model.json.",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Also register the model under this name (tfcnn models)."),
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Import a Keras pair CNN (the published MacLean 2019 layout) weight for weight."""
    from ...io.atomic import check_writable
    from ...model.keras_import import import_keras

    check_writable(output, force)
    if not keras.is_file():
        raise TfcnnInputError(
            f"{keras}: file not found (or not a file); give the Keras .h5/.hdf5 file."
        )
    prov = None
    if provenance is not None:
        try:
            prov = json.loads(provenance.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TfcnnInputError(f"{provenance} is not valid JSON ({exc}).") from exc
        if not isinstance(prov, dict):
            raise TfcnnInputError(f"{provenance} must hold a JSON object.")
    est = import_keras(keras, output, provenance=prov, force=force)
    cfg = est.network_.config
    console.print(
        f"Imported {escape(str(keras))}: input 2 x {cfg.n_samples}, filters {cfg.filters}, "
        f"units {cfg.units}, batch norm {cfg.batch_norm}, dropout {cfg.dropout}"
    )
    console.print(f"Model written to [bold]{escape(str(output))}[/]")
    if name is not None:
        from ...model.registry import register_model

        dest = register_model(output, name, force=force)
        console.print(f"Registered [bold]{escape(name)}[/] at {escape(str(dest))}")


def register(app: typer.Typer) -> None:
    """Add `models`, `models add` and `import-keras` to the CLI."""
    models_app.callback(invoke_without_command=True)(user_errors(models_list))
    models_app.command("add")(user_errors(models_add))
    app.add_typer(models_app, name="models")
    app.command("import-keras")(user_errors(import_keras_cmd))
