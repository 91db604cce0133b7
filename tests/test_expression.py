"""Tests for tfcnn.io.expression: loading, validation errors, z-scores.

All matrices except the bundled nitrogen compendium are synthetic, generated here.
"""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tfcnn.errors import TfcnnInputError
from tfcnn.io.expression import (
    ExpressionMatrix,
    from_dataframe,
    read_expression,
    zscore_rows,
)
from tfcnn.io.ids import is_agi

REAL_EXPRESSION = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "tfcnn"
    / "data"
    / "nitrogen_compendium"
    / "expression.tsv"
)


def synthetic_frame(n_genes: int = 12, n_samples: int = 5, seed: int = 0) -> pd.DataFrame:
    """A synthetic log-scale expression table with AGI-style IDs (index) and samples."""
    rng = np.random.default_rng(seed)
    values = rng.normal(8.0, 2.0, size=(n_genes, n_samples))
    genes = [f"AT1G{10 * (i + 1):05d}" for i in range(n_genes)]
    samples = [f"S{j + 1}" for j in range(n_samples)]
    return pd.DataFrame(values, index=pd.Index(genes), columns=samples)


def write_text(path: Path, lines: list[str]) -> Path:
    """Write synthetic lines as a UTF-8 text file."""
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


SYNTH_HEADER = "\tS1\tS2\tS3"
SYNTH_ROWS = [
    "AT1G01010\t1.0\t2.0\t3.5",
    "AT1G01020\t2.0\t1.5\t0.5",
    "AT1G01030\t4.0\t5.0\t4.5",
]


def synth_lines(replace: dict[int, str] | None = None) -> list[str]:
    """Synthetic tab table lines (header = line 1), optionally replacing some lines."""
    lines = [SYNTH_HEADER, *SYNTH_ROWS]
    for line_no, text in (replace or {}).items():
        lines[line_no - 1] = text
    return lines


# --------------------------------------------------------------------------------------
# The real bundled file
# --------------------------------------------------------------------------------------


def test_real_nitrogen_expression_loads() -> None:
    m = read_expression(REAL_EXPRESSION)
    assert (m.n_genes, m.n_samples) == (2286, 131)
    assert m.values.shape == (2286, 131)
    assert m.values.dtype == np.float32  # one float32 copy (issue 16)
    assert len(set(m.genes)) == m.n_genes
    # As published: 2264 AGI codes plus 22 probeset names written upper-case ("245874_AT").
    non_agi = [g for g in m.genes if not is_agi(g)]
    assert len(non_agi) == 22
    assert all(re.fullmatch(r"\d{6}_AT", g) for g in non_agi)
    assert m.samples[0] == "SS_N_0"
    assert m.dropped_constant == ()
    assert np.isfinite(m.values).all()
    assert m.source == str(REAL_EXPRESSION)


# --------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------


def test_all_formats_give_identical_matrices(tmp_path: Path) -> None:
    df = synthetic_frame()
    df.index = [g.lower() if i % 3 == 0 else g for i, g in enumerate(df.index)]  # normalised
    paths = []
    for name, sep in [("m.tsv", "\t"), ("m.txt", "\t"), ("m.tab", "\t"), ("m.csv", ",")]:
        df.to_csv(tmp_path / name, sep=sep)
        paths.append(tmp_path / name)
        gz = tmp_path / f"{name}.gz"
        gz.write_bytes(gzip.compress((tmp_path / name).read_bytes()))
        paths.append(gz)
    df.to_parquet(tmp_path / "index.parquet")  # IDs in a string index
    df.reset_index(names="gene").to_parquet(tmp_path / "column.parquet")  # IDs in column 0
    paths += [tmp_path / "index.parquet", tmp_path / "column.parquet"]

    expected_genes = tuple(g.upper() for g in df.index)
    z_exact = zscore_rows(df.to_numpy()).astype(np.float32)
    for path in paths:
        m = read_expression(path)
        assert m.genes == expected_genes, path
        assert m.samples == tuple(df.columns), path
        # one float32 copy; z-scores from the float64 values, as exact as before (issue 16)
        np.testing.assert_array_equal(m.values, df.to_numpy().astype(np.float32), str(path))
        np.testing.assert_array_equal(m.zscored(), z_exact, err_msg=str(path))
        assert m.source == str(path)
    from_df = from_dataframe(df)
    np.testing.assert_array_equal(from_df.values, df.to_numpy().astype(np.float32))
    np.testing.assert_array_equal(from_df.zscored(), z_exact)


def test_r_style_header_without_id_cell(tmp_path: Path) -> None:
    lines = synth_lines({1: "S1\tS2\tS3"})
    m = read_expression(write_text(tmp_path / "r.tsv", lines))
    assert m.samples == ("S1", "S2", "S3")
    assert m.genes[0] == "AT1G01010"
    np.testing.assert_array_equal(m.values[0], [1.0, 2.0, 3.5])


def test_blank_lines_skipped_and_bom_ignored(tmp_path: Path) -> None:
    path = tmp_path / "b.tsv"
    path.write_bytes(("\ufeff" + "\n".join(synth_lines()) + "\n\n\n").encode("utf-8"))
    m = read_expression(path)
    assert m.n_genes == 3 and m.samples == ("S1", "S2", "S3")


def test_latin1_fallback(tmp_path: Path) -> None:
    path = tmp_path / "latin.tsv"
    path.write_bytes("\n".join(synth_lines({1: "\tr\xe9p1\tS2\tS3"})).encode("latin-1"))
    assert read_expression(path).samples[0] == "r\xe9p1"


def test_utf16_with_bom_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "u16.txt"
    path.write_bytes("\n".join(synth_lines()).encode("utf-16"))
    assert read_expression(path).n_genes == 3


# --------------------------------------------------------------------------------------
# Rejections
# --------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TfcnnInputError, match=r"nope\.tsv: file not found"):
        read_expression(tmp_path / "nope.tsv")


def test_unknown_extension(tmp_path: Path) -> None:
    path = write_text(tmp_path / "m.xlsx", synth_lines())
    with pytest.raises(TfcnnInputError, match=r"m\.xlsx.*Supported extensions: \.tsv, .*\.parquet"):
        read_expression(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "e.tsv"
    path.write_text("  \n", encoding="utf-8")
    with pytest.raises(TfcnnInputError, match=r"e\.tsv is empty"):
        read_expression(path)


def test_header_only(tmp_path: Path) -> None:
    path = write_text(tmp_path / "h.csv", ["gene,S1,S2,S3"])
    with pytest.raises(TfcnnInputError, match=r"h\.csv has a header but no data lines"):
        read_expression(path)


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    lines = [*synth_lines(), "at1g01020\t9\t8\t7"]  # duplicate after upper-casing
    path = write_text(tmp_path / "d.tsv", lines)
    with pytest.raises(TfcnnInputError, match=r"d\.tsv: gene ID 'AT1G01020'.*line 3 and line 5"):
        read_expression(path)


def test_empty_id(tmp_path: Path) -> None:
    path = write_text(tmp_path / "i.tsv", synth_lines({3: "  \t2.0\t1.5\t0.5"}))
    with pytest.raises(TfcnnInputError, match=r"i\.tsv: line 3 has an empty gene ID"):
        read_expression(path)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("abc", r"value 'abc' is not a number"),
        ("1,5", r"value '1,5' is not a number \(use '\.' as the decimal separator\)"),
        ("", r"empty cell"),
        ("NA", r"missing value 'NA'"),
        ("NaN", r"missing value 'NaN'"),
        ("inf", r"value 'inf' is infinite"),
        ("-Infinity", r"value '-Infinity' is infinite"),
    ],
)
def test_bad_cell_names_line_column_value(tmp_path: Path, cell: str, message: str) -> None:
    path = write_text(tmp_path / "bad.tsv", synth_lines({3: f"AT1G01020\t2.0\t{cell}\t0.5"}))
    with pytest.raises(TfcnnInputError, match=rf"bad\.tsv: line 3, column 'S2': {message}"):
        read_expression(path)


def test_bad_cell_line_number_counts_blank_lines(tmp_path: Path) -> None:
    lines = [SYNTH_HEADER, SYNTH_ROWS[0], "", SYNTH_ROWS[1], "AT1G01040\t1\t2\tx"]
    path = write_text(tmp_path / "gap.csv", [line.replace("\t", ",") for line in lines])
    with pytest.raises(TfcnnInputError, match=r"gap\.csv: line 5, column 'S3': value 'x'"):
        read_expression(path)


def test_first_bad_cell_reported_with_count(tmp_path: Path) -> None:
    lines = synth_lines({2: "AT1G01010\tNA\t2\tfoo", 4: "AT1G01030\tbar\t5.0\t4.5"})
    path = write_text(tmp_path / "many.tsv", lines)
    with pytest.raises(TfcnnInputError, match=r"line 2, column 'S1'.*\(2 more bad cell"):
        read_expression(path)


def test_short_line_is_reported(tmp_path: Path) -> None:
    path = write_text(tmp_path / "short.tsv", synth_lines({4: "AT1G01030\t4.0\t5.0"}))
    with pytest.raises(TfcnnInputError, match=r"line 4, column 'S3': empty cell"):
        read_expression(path)


def test_long_line_is_reported(tmp_path: Path) -> None:
    path = write_text(tmp_path / "long.tsv", synth_lines({3: "AT1G01020\t1\t2\t3\t4"}))
    with pytest.raises(TfcnnInputError, match=r"long\.tsv: cannot parse.*line 3"):
        read_expression(path)


def test_fewer_than_three_samples(tmp_path: Path) -> None:
    path = write_text(tmp_path / "two.tsv", ["\tS1\tS2", "AT1G01010\t1\t2", "AT1G01020\t2\t1"])
    with pytest.raises(TfcnnInputError, match=r"two\.tsv: the header has 2 sample column"):
        read_expression(path)


def test_wrong_separator_hint(tmp_path: Path) -> None:
    lines = [line.replace("\t", ";") for line in synth_lines()]
    path = write_text(tmp_path / "semi.csv", lines)
    with pytest.raises(TfcnnInputError, match=r"semi\.csv.*semicolon-separated"):
        read_expression(path)


def test_trailing_separator_on_data_lines(tmp_path: Path) -> None:
    lines = [synth_lines()[0], *(row + "\t" for row in SYNTH_ROWS)]
    path = write_text(tmp_path / "trail.tsv", lines)
    with pytest.raises(TfcnnInputError, match=r"trail\.tsv: line 2 .*trailing separator"):
        read_expression(path)


def test_duplicate_sample_names(tmp_path: Path) -> None:
    path = write_text(tmp_path / "ds.tsv", synth_lines({1: "\tS1\tS2\tS1"}))
    with pytest.raises(TfcnnInputError, match=r"sample name 'S1' is used by columns 2 and 4"):
        read_expression(path)


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40, r"an Excel workbook \(\.xlsx\)"),
        (b"gene,S1,S2,S3\nAT1G01010,1\x00,2,3\n", r"binary \(a NUL byte at byte 26\)"),
    ],
)
def test_binary_renamed_csv(tmp_path: Path, content: bytes, kind: str) -> None:
    path = tmp_path / "sheet.csv"
    path.write_bytes(content)
    with pytest.raises(TfcnnInputError, match=rf"sheet\.csv is {kind}.*not a text file.*CSV"):
        read_expression(path)


def test_bad_gzip(tmp_path: Path) -> None:
    path = write_text(tmp_path / "plain.tsv.gz", synth_lines())
    with pytest.raises(TfcnnInputError, match=r"plain\.tsv\.gz: not a valid gzip file"):
        read_expression(path)


def test_parquet_bad_cell_names_row_id(tmp_path: Path) -> None:
    df = synthetic_frame()
    df.iloc[1, 2] = np.nan
    df.to_parquet(tmp_path / "nan.parquet")
    with pytest.raises(
        TfcnnInputError, match=r"nan\.parquet: row 2 \(ID 'AT1G00020'\), column 'S3': missing"
    ):
        read_expression(tmp_path / "nan.parquet")


def test_parquet_string_cell_and_duplicate_id(tmp_path: Path) -> None:
    df = synthetic_frame().astype(object)
    df.iloc[0, 0] = "oops"
    df.reset_index(names="gene").astype(str).to_parquet(tmp_path / "s.parquet")
    with pytest.raises(
        TfcnnInputError, match=r"row 1 \(ID 'AT1G00010'\), column 'S1': value 'oops'"
    ):
        read_expression(tmp_path / "s.parquet")
    dup = synthetic_frame()
    dup.index = [dup.index[0], dup.index[0], *dup.index[2:]]
    dup.to_parquet(tmp_path / "dup.parquet")
    with pytest.raises(TfcnnInputError, match=r"'AT1G00010' appears more than once \(row 1 "):
        read_expression(tmp_path / "dup.parquet")


def test_parquet_empty(tmp_path: Path) -> None:
    synthetic_frame().iloc[:0].to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(TfcnnInputError, match=r"empty\.parquet has no genes"):
        read_expression(tmp_path / "empty.parquet")


def test_not_parquet(tmp_path: Path) -> None:
    path = write_text(tmp_path / "fake.parquet", synth_lines())
    with pytest.raises(TfcnnInputError, match=r"fake\.parquet: cannot read it as Parquet"):
        read_expression(path)


# --------------------------------------------------------------------------------------
# log2, scale warning, constant rows
# --------------------------------------------------------------------------------------


def test_log2_transform(tmp_path: Path) -> None:
    lines = [SYNTH_HEADER, "AT1G01010\t1\t2\t8", "AT1G01020\t1024\t0.5\t4"]
    m = read_expression(write_text(tmp_path / "lin.tsv", lines), log2=True)
    np.testing.assert_array_equal(m.values, [[0.0, 1.0, 3.0], [10.0, -1.0, 2.0]])


@pytest.mark.parametrize("bad", ["0", "-3"])
def test_log2_rejects_non_positive(tmp_path: Path, bad: str) -> None:
    lines = [SYNTH_HEADER, "AT1G01010\t1\t2\t8", f"AT1G01020\t4\t{bad}\t4"]
    path = write_text(tmp_path / "neg.tsv", lines)
    with pytest.raises(TfcnnInputError, match=rf"line 3, column 'S2': value {bad} is <= 0"):
        read_expression(path, log2=True)
    assert read_expression(path).n_genes == 2  # fine without log2


def test_linear_scale_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = [SYNTH_HEADER, "AT1G01010\t150\t2000\t8", "AT1G01020\t40\t12\t4"]
    path = write_text(tmp_path / "lin.tsv", lines)
    with caplog.at_level(logging.WARNING, logger="tfcnn"):
        read_expression(path)
    # the parameter, or its flag once a CLI run in this process has set up its log filter
    assert "linear scale" in caplog.text and ("`log2`" in caplog.text or "--log2" in caplog.text)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tfcnn"):
        read_expression(path, log2=True)
        read_expression(write_text(tmp_path / "log.tsv", synth_lines()))
    assert "linear scale" not in caplog.text


def test_constant_rows_dropped_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [
        *synth_lines(),
        "AT1G01040\t5\t5\t5",
        "AT1G01050\t0.1\t0.1\t0.1",  # constant even though the float mean is inexact
    ]
    path = write_text(tmp_path / "const.tsv", lines)
    with caplog.at_level(logging.WARNING, logger="tfcnn"):
        m = read_expression(path)
    assert "dropping 2 gene(s) with a constant profile" in caplog.text
    assert "'AT1G01040'" in caplog.text
    assert m.dropped_constant == ("AT1G01040", "AT1G01050")
    assert m.genes == ("AT1G01010", "AT1G01020", "AT1G01030")
    assert np.isfinite(m.zscored()).all()


def test_constant_after_log2(tmp_path: Path) -> None:
    lines = [*synth_lines(), "AT1G01040\t4\t4\t4"]
    m = read_expression(write_text(tmp_path / "c.tsv", lines), log2=True)
    assert m.dropped_constant == ("AT1G01040",)


def test_all_constant_is_an_error(tmp_path: Path) -> None:
    lines = [SYNTH_HEADER, "AT1G01010\t1\t1\t1", "AT1G01020\t2\t2\t2"]
    with pytest.raises(TfcnnInputError, match=r"allconst\.tsv: all 2 gene profiles are constant"):
        read_expression(write_text(tmp_path / "allconst.tsv", lines))


# --------------------------------------------------------------------------------------
# z-scores
# --------------------------------------------------------------------------------------


def test_zscored_matches_hand_computation_ddof1() -> None:
    df = pd.DataFrame(
        [[1.0, 2.0, 3.0, 6.0], [10.0, 0.0, 5.0, 5.0]],
        index=["AT1G01010", "AT1G01020"],
        columns=["a", "b", "c", "d"],
    )
    m = from_dataframe(df)
    z = m.zscored()
    # Row 1: mean 3, deviations -2 -1 0 3, sum of squares 14, sd = sqrt(14 / 3).
    sd1 = np.sqrt(14.0 / 3.0)
    # Row 2: mean 5, deviations 5 -5 0 0, sum of squares 50, sd = sqrt(50 / 3).
    sd2 = np.sqrt(50.0 / 3.0)
    expected = np.array([[-2.0, -1.0, 0.0, 3.0], [5.0, -5.0, 0.0, 0.0]])
    expected /= np.array([[sd1], [sd2]])
    assert z.dtype == np.float32
    np.testing.assert_allclose(z, expected, rtol=1e-6)
    np.testing.assert_allclose(z.mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(z.std(axis=1, ddof=1), 1.0, rtol=1e-6)
    assert m.zscored() is z  # cached
    assert not z.flags.writeable
    # Not the population SD (ddof=0), which would differ by sqrt(4/3).
    assert not np.allclose(
        z, (df - df.mean(axis=1).to_numpy()[:, None]) / df.std(axis=1, ddof=0).to_numpy()[:, None]
    )


def test_zscore_rows_rejects_constant_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="constant row"):
        zscore_rows(np.array([[1.0, 2.0, 3.0], [0.1, 0.1, 0.1]]))
    with pytest.raises(ValueError, match="at least 2 columns"):
        zscore_rows(np.array([[1.0], [2.0]]))
    with pytest.raises(ValueError, match="non-finite"):
        zscore_rows(np.array([[1.0, np.nan, 3.0]]))


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(2, 12)),
        elements=st.one_of(finite, st.floats(-10, 10), st.sampled_from([0.0, 1.0, 0.1, 1e-300])),
    ).filter(lambda a: bool((a.max(axis=1) > a.min(axis=1)).all()))
)
def test_zscore_rows_property(values: np.ndarray) -> None:
    z = zscore_rows(values)
    assert z.shape == values.shape
    assert np.isfinite(z).all()
    np.testing.assert_allclose(z.mean(axis=1), 0.0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=1, ddof=1), 1.0, rtol=1e-9)


# --------------------------------------------------------------------------------------
# Matrix methods
# --------------------------------------------------------------------------------------


def test_index_of_subset_rename() -> None:
    m = from_dataframe(synthetic_frame(n_genes=15))
    idx = m.index_of(["at1g00030", "AT1G00010"])
    assert idx.tolist() == [2, 0]
    assert m.gene_index["AT1G00150"] == 14

    with pytest.raises(TfcnnInputError, match=r"12 gene ID\(s\) are not in .*and 2 more"):
        m.index_of([f"AT5G{i:05d}" for i in range(12)])

    z_before = m.zscored()
    sub = m.subset(["AT1G00030", "AT1G00010"])
    assert sub.genes == ("AT1G00030", "AT1G00010")
    np.testing.assert_array_equal(sub.values, m.values[[2, 0]])
    np.testing.assert_array_equal(sub.zscored(), z_before[[2, 0]])

    renamed = m.rename({"AT1G00010": "261585_at", "AT1G00020": "261568_at"})
    assert renamed.genes == ("261585_at", "261568_at")
    np.testing.assert_array_equal(renamed.values, m.values[:2])
    with pytest.raises(TfcnnInputError, match=r"map to '261585_at'"):
        m.rename({"AT1G00010": "261585_at", "AT1G00020": "261585_at"})
    with pytest.raises(TfcnnInputError, match=r"None of the 15 genes"):
        m.rename({"nothing": "x"})


def test_matrix_is_read_only_and_checks_invariants() -> None:
    m = from_dataframe(synthetic_frame())
    with pytest.raises(ValueError):
        m.values[0, 0] = 1.0
    with pytest.raises(ValueError, match="constant rows"):
        ExpressionMatrix(np.ones((2, 3)), ("A", "B"), ("x", "y", "z"), "synthetic")
    with pytest.raises(ValueError, match="unique"):
        ExpressionMatrix(np.eye(3)[:2], ("A", "A"), ("x", "y", "z"), "synthetic")


def test_from_dataframe_rejects_nan_by_row_id() -> None:
    df = synthetic_frame()
    df.iloc[3, 1] = np.inf
    with pytest.raises(
        TfcnnInputError, match=r"<dataframe>: row 4 \(ID 'AT1G00040'\), column 'S2'"
    ):
        from_dataframe(df)


SPELLINGS = [
    "1e-3",
    "+2.5",
    "-0",
    ".5",
    "5.",
    "1E+02",
    "0.1000000000000000055511151231257827",
    "7",
    "-3.25e1",
    "2.2250738585072014e-308",
    "123456789.123456789",
    "4.94e-10",
]


@pytest.mark.parametrize("sep, ext", [("\t", "tsv"), (",", "csv")])
def test_fast_text_reader_reads_numbers_as_the_thorough_reader(
    tmp_path: Path, sep: str, ext: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunked fast path (numpy's C parser) gives the same float32 values and
    z-scores, bit for bit, as the line-by-line reader (Python's float) on number
    spellings that both accept; chunks smaller than the file are exercised too."""
    from tfcnn.io import expression as expr
    from tfcnn.io import streaming

    rng = np.random.default_rng(3)
    lines = [sep.join(["gene"] + [f"synthetic_s{j}" for j in range(6)])]
    for i in range(40):
        cells = [SPELLINGS[(i + j) % len(SPELLINGS)] for j in range(5)] + [f"{rng.normal():.9g}"]
        lines.append(sep.join([f"SYN{i:03d}"] + cells))
    path = tmp_path / f"synthetic.{ext}"
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(streaming, "CHUNK_VALUES", 6 * 7)  # chunks of 7 rows
    fast = read_expression(path)
    calls: list[str] = []
    original = streaming._parse_lines
    monkeypatch.setattr(streaming, "_parse_lines", lambda *a: calls.append("fast") or original(*a))
    assert read_expression(path).genes == fast.genes
    assert calls, "the fast path was not taken"
    thorough = expr._read_text_table(path, sep, False, False)
    assert thorough.genes == fast.genes
    np.testing.assert_array_equal(fast.values, thorough.values)
    np.testing.assert_array_equal(fast.zscored(), thorough.zscored())


def test_fast_text_reader_refuses_what_float_refuses(tmp_path: Path) -> None:
    """A cell numpy's parser might take but Python's float does not (a hex float, an
    empty cell, C's NaN payloads) leaves the fast path; the thorough reader names the
    cell."""
    for bad in ("0x1p3", "", "nan(1)", "NAN()"):
        path = tmp_path / "synthetic.tsv"
        rows = ["gene\tsynthetic_a\tsynthetic_b\tsynthetic_c"]
        rows += [f"SYN{i}\t{i}.5\t{i + 2}\t{i * 3}" for i in range(9)]
        rows.append(f"SYN9\t1.5\t{bad}\t2")
        path.write_text("\n".join(rows) + "\n")
        with pytest.raises(TfcnnInputError, match="line 11"):
            read_expression(path)
