"""Result tables by extension and layout, and scan outputs that other tools read.

Everything is synthetic: random networks and matrices made here (see tests/test_scan.py),
pySCENIC adjacencies and BEELINE rankedEdges read back as those tools read them.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.test_scan import GENES, N_GENES, _net, _saved_model, _z
from tfcnn.errors import TfcnnInputError
from tfcnn.inference.scan import scan
from tfcnn.io.tables import LAYOUTS, apply_layout, output_format, write_table


def test_output_format_by_extension_and_layout(tmp_path: Path) -> None:
    cases = {
        "a.parquet": ("parquet", False),
        "a.csv": ("csv", False),
        "a.TSV": ("tsv", False),
        "a.txt.gz": ("tsv", True),
        "a.csv.gz": ("csv", True),
        "a.xlsx": ("xlsx", False),
    }
    for name, (kind, gz) in cases.items():
        fmt = output_format(tmp_path / name)
        assert (fmt.kind, fmt.gzip) == (kind, gz), name
    # BEELINE reads rankedEdges.csv tab-separated
    assert output_format(tmp_path / "rankedEdges.csv", "beeline").sep == "\t"
    with pytest.raises(TfcnnInputError, match=r"unknown table format '\.json'.*\.parquet"):
        output_format(tmp_path / "out.json")
    with pytest.raises(TfcnnInputError, match="`layout` must be one of tfcnn, pyscenic, beeline"):
        output_format(tmp_path / "out.csv", "arboreto")


def test_write_table_round_trips_every_format(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {"tf": ["G1", "G1", "G2"], "target": ["G2", "G3", "G1"], "probability": [0.9, 0.2, 0.5]}
    )
    readers = {
        "t.parquet": pd.read_parquet,
        "t.csv": pd.read_csv,
        "t.tsv.gz": lambda p: pd.read_csv(p, sep="\t"),
        "t.xlsx": pd.read_excel,
    }
    for name, read in readers.items():
        back = read(write_table(table, tmp_path / name))
        pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert gzip.decompress((tmp_path / "t.tsv.gz").read_bytes()).startswith(b"tf\ttarget\t")
    pyscenic = apply_layout(table, "pyscenic")
    assert list(pyscenic.columns) == ["TF", "target", "importance"]


def test_scan_writes_each_format_and_layout(tmp_path: Path) -> None:
    """The silent misread of issue 16: `scan -o out.tsv` wrote Parquet bytes."""
    net, z = _net(3), _z(3)
    ref = scan(net, z, GENES, tmp_path / "ref.parquet", tfs=GENES[:4]).output
    want = pq.read_table(ref).to_pandas()
    tsv = scan(net, z, GENES, tmp_path / "out.tsv", tfs=GENES[:4]).output
    assert not tsv.read_bytes().startswith(b"PAR1")
    got = pd.read_csv(tsv, sep="\t")
    assert list(got.columns) == ["tf", "target", "probability"]
    np.testing.assert_allclose(got.probability, want.probability, rtol=1e-6)
    # pySCENIC: `pyscenic ctx` reads the adjacencies by position, separator by extension
    adj = scan(net, z, GENES, tmp_path / "adj.csv", tfs=GENES[:4], layout="pyscenic").output
    back = pd.read_csv(adj, sep=",", dtype={0: str, 1: str, 2: np.float64}, keep_default_na=False)
    assert list(back.columns) == ["TF", "target", "importance"] and len(back) == len(want)
    # BEELINE: rankedEdges.csv read with sep='\t'
    ranked = scan(
        net, z, GENES, tmp_path / "rankedEdges.csv", tfs=GENES[:4], layout="beeline"
    ).output
    edges = pd.read_csv(ranked, sep="\t", header=0, index_col=None)
    assert list(edges.columns) == ["Gene1", "Gene2", "EdgeWeight"]
    assert list(edges.Gene1) == list(want.tf)
    xlsx = scan(net, z, GENES, tmp_path / "small.xlsx", tfs=GENES[:2], top_k=3).output
    assert len(pd.read_excel(xlsx)) == 6
    parquet = scan(net, z, GENES, tmp_path / "p.parquet", tfs=GENES[:2], layout="beeline")
    assert pq.read_schema(parquet.output).names == list(LAYOUTS["beeline"])


def test_unknown_extension_and_oversized_xlsx_are_refused_before_work(tmp_path: Path) -> None:
    calls: list[int] = []
    with pytest.raises(TfcnnInputError, match="unknown table format"):
        scan(_net(), _z(), GENES, tmp_path / "out.json", on_block=lambda *a: calls.append(1))
    assert not calls and not list(tmp_path.iterdir())


def test_cli_scan_layout_and_bad_extension(tmp_path: Path) -> None:
    from tfcnn.apps.cli import app

    model = _saved_model(tmp_path / "model")
    out = tmp_path / "adj.tsv"
    args = ["scan", "-m", str(model), "-o", str(out), "--layout", "pyscenic", "--top-k", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == ["TF", "target", "importance"]
    assert len(table) == 2 * N_GENES
    bad = CliRunner().invoke(app, ["scan", "-m", str(model), "-o", str(tmp_path / "x.json")])
    assert bad.exit_code == 2 and "unknown table format" in bad.output
    assert not (tmp_path / "x.json").exists()
    bad = CliRunner().invoke(app, [*args[:5], str(tmp_path / "y.csv"), "--layout", "grn"])
    assert bad.exit_code == 2 and "layout" in bad.output
