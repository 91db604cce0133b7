"""Which way round a matrix is: samples x genes files with ``transpose``, and refusals.

Every file here is synthetic and written by the test, in the layouts other tools use:
scanpy/AnnData CSV exports and pySCENIC's CSV input (cells x genes, first column cell
IDs), DREAM5 expression files (samples x genes, header G1..Gn, no row names).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfcnn.errors import TfcnnInputError
from tfcnn.io.expression import read_expression, zscore_rows
from tfcnn.io.interactions import from_pairs
from tfcnn.io.orientation import check_against_pairs

RNG = np.random.default_rng(16)
AGI = [f"AT1G{i:05d}" for i in range(10, 130, 10)]  # 12 synthetic AGI-shaped IDs
CELLS = [f"AAACCTGAGAA{a}{b}C-1" for a in "ACG" for b in "TG"]  # 10x-style barcodes


def _frame(rows: list[str], cols: list[str]) -> pd.DataFrame:
    return pd.DataFrame(RNG.normal(8, 1, (len(rows), len(cols))), index=rows, columns=cols)


def test_cells_x_genes_csv_reads_with_transpose(tmp_path: Path) -> None:
    cells = [f"synthetic_cell_{i}" for i in range(6)]
    frame = _frame(cells, AGI)  # pySCENIC / scanpy CSV: one row per cell
    path = tmp_path / "synthetic_cells_x_genes.csv"
    frame.to_csv(path)
    m = read_expression(path, transpose=True)
    assert m.genes == tuple(AGI) and m.samples == tuple(cells) and m.transposed
    np.testing.assert_array_equal(m.values, frame.to_numpy().T.astype(np.float32))
    np.testing.assert_allclose(m.zscored(), zscore_rows(frame.to_numpy().T), atol=1e-6)
    # without it: refused, naming the fix (the silent misread of issue 16)
    with pytest.raises(
        TfcnnInputError,
        match=r"looks transposed: its columns are named like "
        r"gene IDs \('AT1G00010'.*pass `transpose`",
    ):
        read_expression(path)
    # and the same file gzipped, as Parquet, and through the thorough reader (a blank line)
    gz = tmp_path / "synthetic_cells_x_genes.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    pq = tmp_path / "synthetic_cells_x_genes.parquet"
    frame.to_parquet(pq)
    blank = tmp_path / "synthetic_blank.csv"
    blank.write_text(path.read_text().replace("\n", "\n\n", 2))
    for other in (gz, pq, blank):
        again = read_expression(other, transpose=True)
        assert again.genes == m.genes and again.samples == m.samples, other
        np.testing.assert_array_equal(again.values, m.values)
        np.testing.assert_array_equal(again.zscored(), m.zscored())


def test_cell_barcodes_as_rows_are_refused(tmp_path: Path) -> None:
    frame = _frame(CELLS, [f"Gene{c}" for c in "ABCDEFG"])  # symbols match no gene pattern
    path = tmp_path / "synthetic_barcodes.tsv"
    frame.to_csv(path, sep="\t")
    with pytest.raises(TfcnnInputError, match=r"its rows are named like samples or cells"):
        read_expression(path)
    assert read_expression(path, transpose=True).n_genes == 7


def test_dream5_expression_file_without_row_names(tmp_path: Path) -> None:
    genes = [f"G{i}" for i in range(1, 9)]
    values = RNG.normal(0.5, 0.2, (5, 8))
    text = (
        "\t".join(genes)
        + "\n"
        + "".join("\t".join(f"{v:.6f}" for v in row) + "\n" for row in values)
    )
    path = tmp_path / "synthetic_net1_expression_data.tsv"
    path.write_text(text)
    with pytest.raises(TfcnnInputError) as err:
        read_expression(path)  # the first column's numbers would become "gene IDs"
    message = str(err.value)
    assert "line 2: gene ID '" in message and "is a number" in message
    assert "DREAM5" in message and "pass `transpose`" in message
    m = read_expression(path, transpose=True)
    assert m.genes == tuple(genes)
    assert m.samples == tuple(f"sample_{i}" for i in range(1, 6))
    np.testing.assert_allclose(m.values, np.round(values, 6).T, rtol=1e-6)


def test_numeric_gene_ids_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "synthetic_entrez.tsv"
    _frame(["7157", "672", "675"], ["S1", "S2", "S3"]).to_csv(path, sep="\t")
    with pytest.raises(TfcnnInputError, match=r"line 2: gene ID '7157' is a number.*GeneID:7157"):
        read_expression(path)


def test_ambiguous_and_needless_transpose(tmp_path: Path) -> None:
    path = tmp_path / "synthetic_gene_by_gene.tsv"
    _frame(AGI[:6], AGI[6:]).to_csv(path, sep="\t")
    for transpose in (False, True):
        with pytest.raises(TfcnnInputError) as err:
            read_expression(path, transpose=transpose)
        message = str(err.value)
        assert "is ambiguous" in message
        assert "as genes x samples it has 6 genes and 6 samples" in message.lower()
        assert "read the other way round it has 6 genes and 6 samples" in message
    genes_x_samples = tmp_path / "synthetic_genes_x_samples.tsv"
    _frame(AGI, ["S1", "S2", "S3", "S4"]).to_csv(genes_x_samples, sep="\t")
    with pytest.raises(TfcnnInputError, match=r"looks transposed.*drop `transpose`"):
        read_expression(genes_x_samples, transpose=True)


def test_pairs_tell_a_transposed_matrix(tmp_path: Path) -> None:
    """Gene symbols match no pattern: the known pairs tell which axis holds the genes."""
    symbols = [f"Sym{c}" for c in "ABCDEFGH"]
    samples = [f"cond{c}" for c in "UVWXYZ"]
    pairs = from_pairs([("SymA", "SymB"), ("SymA", "SymC"), ("SymD", "SymE")], "synthetic")
    ids = set(pairs.tfs) | set(pairs.targets)
    check_against_pairs(symbols, samples, ids, "m.tsv", "p.tsv", False)  # right way round
    with pytest.raises(
        TfcnnInputError,
        match=r"m.tsv looks transposed: 5 of the 5 genes .*"
        r"p.tsv are its column names.*pass `transpose`",
    ):
        check_against_pairs(samples, symbols, ids, "m.tsv", "p.tsv", False)
    with pytest.raises(TfcnnInputError, match="is ambiguous against p.tsv"):
        check_against_pairs(symbols, symbols, ids, "m.tsv", "p.tsv", False)
