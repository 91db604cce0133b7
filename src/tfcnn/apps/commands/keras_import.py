"""`tfcnn import-keras`: convert a Keras 2 HDF5 pair CNN into a tfcnn model directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ...errors import TfcnnInputError
from ..cli import ForceOpt, console, user_errors


@user_errors
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
    """Add `import-keras` to the CLI."""
    app.command("import-keras")(import_keras_cmd)
