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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.test_scan import GENES, N_GENES, _net, _saved_model, _z
from tfcnn.errors import TfcnnInputError
from tfcnn.inference.scan import scan
from tfcnn.io.tables import LAYOUTS, apply_layout, csv_text, output_format, write_table


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


# -- delimited text: Arrow's writer, byte for byte what pandas writes ----------------------
_TEXTS = st.text(alphabet=st.sampled_from(list('ab Z_1.-é,\t"\n\r')), max_size=6)
_CELLS = {
    "text": st.one_of(st.none(), _TEXTS),
    "float64": st.floats(allow_nan=True, allow_infinity=True, width=64),
    "float32": st.floats(allow_nan=True, allow_infinity=True, width=32),
    "int": st.integers(-(2**62), 2**62),
    "bool": st.booleans(),
}


@st.composite
def _frames(draw: st.DrawFn) -> pd.DataFrame:
    """SYNTHETIC tables of the column kinds tfcnn writes, awkward values included."""
    kinds = draw(st.lists(st.sampled_from(sorted(_CELLS)), min_size=1, max_size=5))
    n = draw(st.integers(0, 12))
    data = {}
    for j, kind in enumerate(kinds):
        values = draw(st.lists(_CELLS[kind], min_size=n, max_size=n))
        dtype = {"float64": np.float64, "float32": np.float32, "int": np.int64, "bool": bool}
        data[f"{kind}_{j}"] = pd.Series(values, dtype=dtype.get(kind, object))
    return pd.DataFrame(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames(), sep=st.sampled_from([",", "\t"]), header=st.booleans())
def test_csv_text_is_what_pandas_writes(frame: pd.DataFrame, sep: str, header: bool) -> None:
    """Whichever writer takes the table (Arrow, or pandas for values that need quotes,
    one-column tables, other kinds), the text is pandas' to the byte."""
    expected = frame.to_csv(sep=sep, index=False, header=header, lineterminator="\n")
    assert csv_text(frame, sep, header=header) == expected


def test_csv_text_takes_the_arrow_path_for_plain_tables() -> None:
    """The fast path is really taken for a prediction-like table (and spells floats as
    pandas does: tiny, huge, negative zero, whole, float32)."""
    from tfcnn.io.tables import _arrow_csv

    rng = np.random.default_rng(0)
    p = rng.random(500).astype(np.float32).astype(np.float64)
    p[:8] = [1e-5, 1e16, -0.0, 0.0, 100.0, np.inf, np.nan, 5e-324]
    frame = pd.DataFrame(
        {
            "tf": [f"SYN{i % 7}" for i in range(500)],
            "target": [f"SYN{i}" if i % 9 else None for i in range(500)],
            "probability": p,
            "p32": p.astype(np.float32),
            "rank": np.arange(500),
            "flag": np.arange(500) % 3 == 0,
        }
    )
    for sep in (",", "\t"):
        fast = _arrow_csv(frame, sep, True)
        assert fast is not None
        assert fast == frame.to_csv(sep=sep, index=False, lineterminator="\n")
    for odd in ([b"raw", None] * 250, list(range(500))):  # pandas spells them: str(x)
        other = frame.assign(target=pd.Series(odd, dtype=object))
        assert _arrow_csv(other, ",", True) is None
        assert csv_text(other, ",") == other.to_csv(index=False, lineterminator="\n")
    quoted = frame.assign(tf="a,b")
    assert _arrow_csv(quoted, ",", True) is None  # needs quotes: pandas writes it
    assert csv_text(quoted, ",") == quoted.to_csv(index=False, lineterminator="\n")
