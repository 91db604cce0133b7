"""Options shared by the commands (one name and one help text each), and their parsers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import TfcnnInputError

ExpressionOpt = Annotated[
    str,
    typer.Option(
        "--expression",
        "-x",
        help="Expression matrix (genes x samples; TSV/CSV[.gz]/Parquet; samples x genes with "
        "--transpose), single-cell data (.h5ad, .loom, a 10x folder: see --pseudobulk) or a "
        "bundled dataset name, e.g. nitrogen-expression.",
    ),
]
TransposeOpt = Annotated[
    bool,
    typer.Option(
        "--transpose",
        help="The expression table is samples x genes (scanpy/AnnData CSV exports, pySCENIC's "
        "CSV input, DREAM5 expression files): read it transposed.",
    ),
]
LayerOpt = Annotated[
    str | None,
    typer.Option("--layer", help=".h5ad/.loom: the layer to read (default: X, the main matrix)."),
]
PseudobulkOpt = Annotated[
    str | None,
    typer.Option(
        "--pseudobulk",
        help="Single-cell files: average the cells of each group of this obs column (cell "
        "type, cluster, time point) into one sample. Needed above 10,000 cells.",
    ),
]
OrderByOpt = Annotated[
    str | None,
    typer.Option(
        "--order-by",
        help="Single-cell files: order the samples by this obs column (a pseudotime: the "
        "groups' mean). A convolution reads the samples in order.",
    ),
]
LayoutOpt = Annotated[
    str,
    typer.Option(
        "--layout",
        help="Columns written: tfcnn (tf,target,probability), pyscenic (TF,target,importance: "
        "what pyscenic ctx reads), beeline (Gene1,Gene2,EdgeWeight, tab-separated: BEELINE's "
        "rankedEdges.csv).",
    ),
]


def expression_options(
    transpose: bool = False,
    layer: str | None = None,
    pseudobulk: str | None = None,
    order_by: str | None = None,
) -> dict[str, Any]:
    """How to read an expression file, as keyword arguments of ``load_expression``."""
    return {"transpose": transpose, "layer": layer, "pseudobulk": pseudobulk, "order_by": order_by}


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
NegativeExcludeOpt = Annotated[
    str | None,
    typer.Option(
        "--negative-exclude",
        help="Comma-separated evidence types of --interactions whose pairs are never drawn "
        "as negatives, beyond the positives' own (default: none; excluding an assay not used "
        "as positives makes 'bound in that assay' a label shortcut).",
    ),
]
PairsOpt = Annotated[
    Path, typer.Option("--pairs", "-p", help="Pair set directory written by build-pairs.")
]
ModelOpt = Annotated[Path, typer.Option("--model", "-m", help="Model directory.")]
SeedOpt = Annotated[
    int,
    typer.Option(
        "--seed",
        min=0,
        max=2**32 - 1,
        help="Random seed (same seed and thread count, same result).",
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        max=1024,
        help="CPU threads to use (default: the cores this process may run on). train: torch "
        "threads, part of the recipe (same seed + same threads = same weights); demo, study, "
        "tune: parallel runs of one thread each, so their numbers never depend on it.",
    ),
]
EngineOpt = Annotated[
    str,
    typer.Option(
        help="What scores the pairs: 'numba' (one compiled kernel, about 2x faster; the "
        "fast extra), 'torch', or 'auto' (numba when installed and the model fits). "
        "They agree to float rounding; scan never resumes a run across engines."
    ),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace an existing output instead of refusing.")
]
Log2Opt = Annotated[bool, typer.Option("--log2", help="Take log2 of the expression values first.")]
NegativesOpt = Annotated[
    str,
    typer.Option(
        "--negatives",
        help="random (any gene pair, the study's choice), tf-matched (each TF with its "
        "non-targets), degree-matched (every TF's and every target's frequency kept) or "
        "explicit (the edge table's own label-0 rows, e.g. DREAM5 gold standards).",
    ),
]
SplitOpt = Annotated[
    str,
    typer.Option(
        "--split",
        help="random (80/10/10 of pairs, the study), tf-holdout (whole TFs) or pair-disjoint "
        "(no gene of a test pair in training).",
    ),
]


def csv_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def int_pair(value: str, option: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in value.split(","))
    except ValueError:
        a = b = 0
    if min(a, b) < 1:
        raise TfcnnInputError(
            f"{option} takes two comma-separated positive integers such as 4,8 (got {value!r})."
        )
    return a, b


def check_choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise TfcnnInputError(f"{option} must be one of {', '.join(choices)} (got {value!r}).")
    return value
