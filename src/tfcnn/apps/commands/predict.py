"""`tfcnn predict`: score regulators against targets with a trained model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..console import err_console, user_errors
from ..options import EngineOpt, ForceOpt, IdMapOpt, LayoutOpt, Log2Opt, check_choice

_MAX_LISTED = 20


def predict_cmd(
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="Model directory or registered name (see 'tfcnn models')."
        ),
    ],
    regulators: Annotated[
        str,
        typer.Option(
            "--regulators",
            "-r",
            help="Regulator IDs, inline (separated by commas, spaces, tabs or newlines) or a "
            "file of IDs. AGI codes (any case), ATH1 probesets and gene symbols (FLC), mixed.",
        ),
    ],
    targets: Annotated[
        str | None,
        typer.Option(
            "--targets",
            "-t",
            help="Target IDs, inline or a file. Default: every gene of the scoring matrix.",
        ),
    ] = None,
    expression: Annotated[
        str | None,
        typer.Option(
            "--expression",
            "-x",
            help="Score on this matrix instead of the model's own: its columns are matched "
            "to the model's samples by name. A file or a bundled dataset name.",
        ),
    ] = None,
    log2: Log2Opt = False,
    id_map: IdMapOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the table here, by extension: .csv, .tsv (also .gz), .parquet or .xlsx. "
            "Default: CSV on standard output.",
        ),
    ] = None,
    layout: LayoutOpt = "tfcnn",
    engine: EngineOpt = "auto",
    force: ForceOpt = False,
) -> None:
    """Score regulators against targets: probability, rank, known pair, percentiles."""
    from ...inference.fused import ENGINES
    from ...io.atomic import check_writable
    from ...io.idlists import read_id_list, with_symbols
    from ...io.tables import apply_layout, check_layout, output_format, to_text
    from ...model.registry import resolve_model

    check_layout(layout)
    check_choice(engine, ENGINES, "--engine")
    if output is not None:
        output_format(output, layout)  # an unknown extension is refused before any work
        check_writable(output, force)
    reg_list = read_id_list(regulators, "`regulators`")
    tgt_list = None
    if targets is not None:
        advice = "give target IDs, or leave `targets` out to score against every gene."
        tgt_list = read_id_list(targets, "`targets`", empty_advice=advice)
    model_dir = resolve_model(model)  # a wrong name is refused before torch is imported
    from ...inference.predict import Predictor, write_table

    predictor = Predictor(
        model_dir, expression=expression, id_map=id_map, name=model, log2=log2, engine=engine
    )
    # Gene symbols (FLC) are accepted as IDs: moved to AGI codes, ambiguous ones refused.
    reg_ids = with_symbols(reg_list, predictor.index, "regulator")
    tgt_ids = None if tgt_list is None else with_symbols(tgt_list, predictor.index, "target")
    result = predictor.predict(reg_ids, tgt_ids, workers=None)  # all cores
    for line in result.report_lines()[:_MAX_LISTED]:
        err_console.print(f"[yellow]note:[/] {escape(line)}", highlight=False, soft_wrap=True)
    extra = len(result.report_lines()) - _MAX_LISTED
    if extra > 0:
        err_console.print(f"[yellow]note:[/] ... and {extra} more", highlight=False)
    if output is None:
        columns = ("regulator", "target", "probability")
        table = apply_layout(result.table, layout, columns, keep_others=True)
        sys.stdout.write(to_text(table, "tsv" if layout == "beeline" else "csv"))
        sys.stdout.flush()
    else:
        write_table(result, output, force=force, layout=layout)
    counts: dict[str, int] = {}
    for issue in result.issues:
        counts[issue.problem] = counts.get(issue.problem, 0) + 1
    unused = ", ".join(f"{n} {p}" for p, n in sorted(counts.items())) or "none"
    where = f" -> {escape(str(output))}" if output is not None else ""
    err_console.print(
        f"{len(result.table):,} pairs scored ({result.n_regulators:,} regulators x "
        f"{result.n_targets:,} targets) by the {predictor.engine} engine{where}; IDs not "
        f"used as typed: {unused}.",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add `tfcnn predict` to the CLI."""
    app.command("predict")(user_errors(predict_cmd))
