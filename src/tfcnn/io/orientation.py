"""Which axis of a matrix holds the genes: told from ID patterns, or from known pairs.

tfcnn reads genes x samples (one row per gene). scanpy/AnnData, pySCENIC's CSV input
and DREAM5's expression files are samples x genes; read the wrong way round, the
samples become "genes" and a later step blames the IDs. So a matrix is checked when it
is read: IDs that are numbers are refused (they are values: a samples x genes file
without row names, DREAM5's layout), and a matrix whose column names look like gene IDs
while its row IDs do not (or whose row IDs look like samples or cell barcodes) is
refused as transposed, naming ``transpose``. When both axes look like genes, the file is
ambiguous and refused with both readings. Against known pairs,
:func:`check_against_pairs` does the same with the pairs' gene IDs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence

from ..errors import TfcnnInputError
from .ids import AGI_PATTERN, PROBESET_PATTERN, normalize_id

#: IDs that name genes, whatever the species (matched trimmed, case as given).
GENE_PATTERNS = (
    AGI_PATTERN,
    PROBESET_PATTERN,
    re.compile(r"^ENS[A-Z]*G[0-9]{6,}(\.[0-9]+)?\Z", re.ASCII),  # Ensembl genes
    re.compile(r"^Y[A-P][LR][0-9]{3}[WC](-[A-Z])?\Z", re.ASCII),  # yeast systematic ORFs
    re.compile(r"^b[0-9]{4}\Z", re.ASCII),  # E. coli b-numbers
    re.compile(r"^[NX][MR]_[0-9]+(\.[0-9]+)?\Z", re.ASCII),  # RefSeq transcripts
    re.compile(r"^(FBgn|WBGene)[0-9]+\Z", re.ASCII),  # FlyBase, WormBase
)
#: DREAM5's anonymous gene names (G1 ... G6000): genes only where the other axis is
#: numbers, since short names like "G1" may also name sample groups.
DREAM5_GENE = re.compile(r"^G[0-9]+\Z", re.ASCII)
#: IDs that name samples or cells: GEO/SRA runs, 10x barcodes, cell_1 / sample_1.
SAMPLE_PATTERNS = (
    re.compile(r"^(GSM|SRR|ERR|DRR|SRX|SAMN)[0-9]+\Z", re.ASCII),
    re.compile(r"^([A-Za-z0-9]+[_:])?[ACGTN]{10,}(-[0-9]+)?\Z", re.ASCII),
    re.compile(r"^(cell|sample|barcode)[ _.-]?[0-9]+\Z", re.ASCII | re.IGNORECASE),
)
#: Share of an axis that must match for it to count as genes (or samples).
MAJORITY = 0.5
_SHOWN = 3


def share(ids: Sequence[str], patterns: Sequence[re.Pattern[str]]) -> float:
    """The share of ``ids`` matching any of ``patterns`` (0 for no IDs)."""
    if not ids:
        return 0.0
    hits = sum(any(p.match(str(i).strip()) for p in patterns) for i in ids)
    return hits / len(ids)


def is_number(text: str) -> bool:
    """True when ``text`` reads as a number (``'0.5'``, ``'12'``, ``'-1e3'``, ``'nan'``)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _some(ids: Sequence[str]) -> str:
    return ", ".join(repr(str(i)) for i in ids[:_SHOWN]) + (", ..." if len(ids) > _SHOWN else "")


def _fix(transpose: bool) -> str:
    if transpose:
        return "drop `transpose`: the file already has one row per gene"
    return (
        "pass `transpose` for a samples x genes file (scanpy/AnnData CSV exports, pySCENIC's "
        "CSV input, DREAM5 expression files)"
    )


def check_numeric_ids(
    ids: Sequence[str],
    source: str,
    where: Callable[[int], str],
    other_axis: Sequence[str],
    transpose: bool,
) -> None:
    """Refuse gene IDs that parse as numbers, naming the first (they are values, not IDs)."""
    for i, gene in enumerate(ids):
        if is_number(gene):
            hint = ""
            if not transpose and share(other_axis, (*GENE_PATTERNS, DREAM5_GENE)) >= MAJORITY:
                hint = (
                    f" The header names genes ({_some(other_axis)}) and the rows have no IDs: "
                    "the file is samples x genes without row names (DREAM5's layout); "
                    "pass `transpose`."
                )
            hint = hint or (
                " Check the layout; if the IDs really are numbers (Entrez IDs), prefix them "
                "(e.g. GeneID:7157)."
            )
            raise TfcnnInputError(
                f"{source}: {where(i)}: gene ID {gene!r} is a number, and numbers are not "
                "taken as gene IDs (they are usually values of a file read the wrong way "
                f"round).{hint}"
            )


def check_orientation(
    genes: Sequence[str], samples: Sequence[str], source: str, transpose: bool
) -> None:
    """Refuse a matrix that looks transposed, or ambiguous (both axes gene IDs).

    ``genes`` and ``samples`` are the labels as read (after ``transpose``, if given).
    """
    g_genes, g_samples = share(genes, GENE_PATTERNS), share(samples, GENE_PATTERNS)
    s_genes, s_samples = share(genes, SAMPLE_PATTERNS), share(samples, SAMPLE_PATTERNS)
    rows, cols = ("columns", "rows") if transpose else ("rows", "columns")
    if g_genes >= MAJORITY and g_samples >= MAJORITY:
        raise TfcnnInputError(
            f"{source} is ambiguous: its {rows} ({_some(genes)}) and its {cols} "
            f"({_some(samples)}) are both named like gene IDs. Read as genes x samples it "
            f"has {len(genes):,} genes and {len(samples):,} samples; read the other way "
            f"round it has {len(samples):,} genes and {len(genes):,} samples. A gene x gene "
            "table (correlations, adjacencies) is not an expression matrix: give one with "
            "genes on one axis and samples on the other."
        )
    looks_genes = g_samples >= MAJORITY and g_genes < MAJORITY
    looks_samples = s_genes >= MAJORITY and s_samples < MAJORITY and g_genes < MAJORITY
    if looks_genes or looks_samples:
        what = (
            f"its {cols} are named like gene IDs ({_some(samples)}) and its {rows} are not "
            f"({_some(genes)})"
            if looks_genes
            else f"its {rows} are named like samples or cells ({_some(genes)})"
        )
        raise TfcnnInputError(
            f"{source} looks transposed: {what}. tfcnn reads genes x samples, one row per "
            f"gene; {_fix(transpose)}."
        )


def check_against_pairs(
    genes: Collection[str],
    samples: Sequence[str],
    pair_ids: Collection[str],
    source: str,
    pairs_source: str,
    transposed: bool,
) -> None:
    """Refuse a matrix whose sample names, not its genes, are the known pairs' genes.

    ``transposed``: the matrix was read with ``transpose``. Matching both axes as well
    is ambiguous and refused with both readings.
    """
    wanted = {normalize_id(i) for i in pair_ids}
    as_rows = len(wanted & set(genes))
    as_cols = len(wanted & {normalize_id(s) for s in samples})
    if as_cols < 3 or as_cols * 2 < as_rows:
        return
    if as_rows >= 3:
        raise TfcnnInputError(
            f"{source} is ambiguous against {pairs_source}: {as_rows:,} of the "
            f"{len(wanted):,} genes named there are row IDs of the matrix (as read) and "
            f"{as_cols:,} are column names (read the other way round). Give a matrix with "
            "genes on one axis and samples on the other."
        )
    raise TfcnnInputError(
        f"{source} looks transposed: {as_cols:,} of the {len(wanted):,} genes named in "
        f"{pairs_source} are its column names (e.g. "
        f"{_some(sorted(wanted & {normalize_id(s) for s in samples}))}) and "
        f"{as_rows:,} are its row IDs. tfcnn reads genes x samples, one row per gene; "
        f"{_fix(transposed)}."
    )
