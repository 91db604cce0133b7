"""Interaction readers: the real AtRegNet and ConnecTF files, and synthetic tables."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.synthetic import ATREGNET_HEADER
from tfcnn.errors import TfcnnInputError
from tfcnn.io.datasets import dataset_path
from tfcnn.io.ids import is_agi
from tfcnn.io.interactions import (
    Interactions,
    SkippedRow,
    from_pairs,
    read_atregnet,
    read_interactions,
    read_pairs_table,
)

LEAFY = "AT5G61850"
STUDY_EVIDENCE = ["TARGET", "CHIPSeq", "Litterature"]


def _lines_by_pair(inter: Interactions) -> dict[tuple[str, str], int]:
    p = inter.pairs
    return dict(zip(zip(p["tf"], p["target"], strict=True), p["line"], strict=True))


@pytest.fixture(scope="module")
def atregnet() -> Interactions:
    return read_atregnet(dataset_path("atregnet"))


@pytest.fixture(scope="module")
def connectf_all() -> Interactions:
    return read_pairs_table(dataset_path("nitrogen-edges"))


@pytest.fixture(scope="module")
def atregnet_lines() -> list[bytes]:
    """Physical lines of the real file, read independently of the csv parser."""
    return dataset_path("atregnet").read_bytes().split(b"\n")


# ------------------------------------------------------------------ real AtRegNet


def test_atregnet_acceptance_counts(atregnet: Interactions) -> None:
    assert len(atregnet) == 4344
    assert len(atregnet.tfs) == 280
    assert int((atregnet.pairs["tf"] == LEAFY).sum()) == 2679
    assert all(is_agi(x) for x in atregnet.pairs["tf"])
    assert all(is_agi(x) for x in atregnet.pairs["target"])
    assert not atregnet.pairs.duplicated(["tf", "target"]).any()
    assert "evidence" not in atregnet.pairs.columns


def test_atregnet_summary_and_bookkeeping(atregnet: Interactions) -> None:
    s = atregnet.summary()
    assert s["pairs"] == 4344 and s["tfs"] == 280
    assert s["top_tf"] == LEAFY and s["top_tf_pairs"] == 2679
    assert s["top_tf_share"] == pytest.approx(2679 / 4344)
    assert s["skipped"] == {
        "TF complex (slash-joined loci)": 22,
        "no target (N/A)": 4,
        "malformed AGI code": 1,
    }
    # Self-pairs are kept here (the pair-building stage drops them): without them the
    # file would give 4,335 pairs from 279 TFs, not the study's 4,344 / 280.
    assert s["self_pairs"] == atregnet.n_self_pairs == 9
    assert (LEAFY, LEAFY) in atregnet.as_set()
    # 5,090 confirmed direct records = 4,344 pairs + 719 repeats + 27 skipped.
    assert atregnet.n_records == 5090
    assert atregnet.n_duplicates == 719
    assert atregnet.n_records == len(atregnet) + atregnet.n_duplicates + len(atregnet.skipped)


def test_atregnet_skipped_rows_with_line_numbers(
    atregnet: Interactions, atregnet_lines: list[bytes]
) -> None:
    got = {row.line: row for row in atregnet.skipped}
    # Pinned by `grep -n` on the file: AP3/PI and GL1/GL3 complexes, N/A targets,
    # the malformed AT5G286660 (lines 16618+ come after records spanning lines).
    expected = (
        {line: "TF complex (slash-joined loci)" for line in (242, 525, 534, 535)}
        | {line: "TF complex (slash-joined loci)" for line in range(767, 785)}
        | {line: "no target (N/A)" for line in (16618, 16619, 16621, 16622)}
        | {16904: "malformed AGI code"}
    )
    assert {line: row.reason for line, row in got.items()} == expected
    assert got[242] == SkippedRow(
        242, "TF complex (slash-joined loci)", "At3g54340/At5g20240", "At1g69120"
    )
    assert got[767].tf == "At3g27920/At5g41315"
    assert got[16618].target == "N/A"
    assert got[16904].tf == "AT5G286660"
    # Independent check: the physical line holds the raw fields reported.
    for line, row in got.items():
        fields = atregnet_lines[line - 1].decode("latin-1").split("\t")
        assert fields[1] == row.tf and fields[4] == row.target, line


def test_atregnet_line_column_matches_physical_lines(
    atregnet: Interactions, atregnet_lines: list[bytes]
) -> None:
    pairs = atregnet.pairs.set_index(["tf", "target"])["line"]
    # FLC At5g10140 -> At1g65480 is the first data row (mixed-case codes).
    assert pairs[("AT5G10140", "AT1G65480")] == 2
    # 'AT1G77570 ' has a trailing space; the line comes after two records spanning lines.
    assert pairs[("AT1G77570", "AT5G44030")] == 15977
    for line in pairs.sample(200, random_state=0):
        raw = atregnet_lines[line - 1].decode("latin-1").split("\t")
        assert raw[7].strip().lower() == "confirmed"


def test_atregnet_warning_summarises_skips(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tfcnn.io.interactions"):
        read_atregnet(dataset_path("atregnet"))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    msg = warnings[0].getMessage()
    assert "27" in msg and "TF complex" in msg and "16904" in msg and "AtRegNet.tsv" in msg


def test_atregnet_other_filters(atregnet: Interactions) -> None:
    indirect = read_atregnet(dataset_path("atregnet"), target_type="Indirect ")
    assert 0 < len(indirect) < 30
    assert not indirect.as_set() <= atregnet.as_set()
    with pytest.raises(TfcnnInputError, match="'at'/'directly'"):
        # 'Directly' appears only in a row whose Confirmation is 'At': nothing kept.
        read_atregnet(dataset_path("atregnet"), target_type="directly")


def test_read_interactions_detects_atregnet(atregnet: Interactions) -> None:
    auto = read_interactions(dataset_path("atregnet"))
    assert auto.as_set() == atregnet.as_set()
    with pytest.raises(TfcnnInputError, match="no evidence column"):
        read_interactions(dataset_path("atregnet"), evidence=["TARGET"])


# ------------------------------------------------------------------ real ConnecTF


def test_connectf_study_evidence() -> None:
    inter = read_interactions(dataset_path("nitrogen-edges"), evidence=STUDY_EVIDENCE)
    assert len(inter) == 18005
    assert len(inter.tfs) == 54
    assert inter.n_self_pairs == 11
    no_self = {(tf, t) for tf, t in inter.as_set() if tf != t}
    assert len(no_self) == 17994
    assert len({tf for tf, _ in no_self}) == 53
    assert set(inter.summary()["evidence"]) == set(STUDY_EVIDENCE)


def test_connectf_unfiltered_and_filter_evidence(connectf_all: Interactions) -> None:
    assert connectf_all.n_records == 59525
    assert len(connectf_all.tfs) == 100
    assert connectf_all.summary()["evidence"]["DAPSeq"] == 41046
    multi = connectf_all.pairs[connectf_all.pairs["evidence"].str.contains(";")]
    assert len(multi) > 0
    for joined in multi["evidence"].head(50):
        parts = joined.split(";")
        assert parts == sorted(set(parts))
    filtered = connectf_all.filter_evidence(STUDY_EVIDENCE)
    direct = read_pairs_table(dataset_path("nitrogen-edges"), evidence=STUDY_EVIDENCE)
    assert filtered.as_set() == direct.as_set()
    assert filtered.n_records == direct.n_records
    assert filtered.n_duplicates == direct.n_duplicates
    assert filtered.pairs.equals(direct.pairs)
    assert all("DAPSeq" not in e for e in filtered.pairs["evidence"])


def test_connectf_evidence_errors(connectf_all: Interactions) -> None:
    with pytest.raises(TfcnnInputError, match="DAPSeq") as err:
        connectf_all.filter_evidence(["chipseq"])  # case-sensitive
    assert "connectf_edges.tsv" in str(err.value)
    with pytest.raises(TfcnnInputError, match="empty evidence"):
        connectf_all.filter_evidence([])


# ------------------------------------------------------------------ synthetic AtRegNet


def _atregnet_row(tf: str, target: str, ttype: str = "Direct", conf: str = "Confirmed") -> str:
    fields = ["X", tf, "MYB", "Y", target, "No", ttype, conf, "NA", "Activation", "Ref", "NA", "1"]
    return "\t".join(fields)


def _write(path: Path, text: str, encoding: str = "latin-1") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_synthetic_atregnet_quoted_tab_and_newline(tmp_path: Path) -> None:
    quoted = "\t".join(
        ["X", "AT1G00010", "MYB", "Y", "AT1G00020", "No", "Direct", "Confirmed", "NA", "Act"]
        + ['"Smith et al.\t 2001.\nPlant J\n(2001)"', "NA", "1"]
    )
    lines = [
        "\t".join(ATREGNET_HEADER),
        _atregnet_row("At1g00010", "AT1G00030 "),  # line 2, mixed case, trailing space
        quoted,  # lines 3-5
        _atregnet_row("AT1G00040", "AT1G00050", ttype="direct ", conf=" confirmed"),  # 6
        _atregnet_row("AT1G00040", "AT1G00060", ttype="Directly"),  # 7: not 'direct'
        _atregnet_row("AT1G00040", "AT1G00070", conf="Unconfirmed "),  # 8
        _atregnet_row("AT1G00080/AT1G00090", "AT1G00100"),  # 9
        _atregnet_row("AT1G00010", "N/A"),  # 10
        _atregnet_row("AT1G0001", "AT1G00020"),  # 11: malformed
        "",  # 12: blank
        _atregnet_row("at1g00010", "at1g00030"),  # 13: duplicate of line 2
        _atregnet_row("AT1G00110", "AT1G00110"),  # 14: self-pair, kept
        _atregnet_row("AT1G00010", "AT1G00120 ") + "\u00e9",  # 15: Latin-1 byte
    ]
    path = _write(tmp_path / "mini.tsv", "\n".join(lines) + "\n")
    inter = read_interactions(path)
    assert _lines_by_pair(inter) == {
        ("AT1G00010", "AT1G00030"): 2,
        ("AT1G00010", "AT1G00020"): 3,
        ("AT1G00040", "AT1G00050"): 6,
        ("AT1G00110", "AT1G00110"): 14,
        ("AT1G00010", "AT1G00120"): 15,
    }
    assert [(s.line, s.reason) for s in inter.skipped] == [
        (9, "TF complex (slash-joined loci)"),
        (10, "no target (N/A)"),
        (11, "malformed AGI code"),
    ]
    assert inter.n_duplicates == 1
    assert inter.n_records == 9
    assert inter.tfs == ("AT1G00010", "AT1G00040", "AT1G00110")


def test_atregnet_missing_columns_rejected(tmp_path: Path) -> None:
    header = [h for h in ATREGNET_HEADER if h not in ("Confirmation", "TargetType")]
    path = _write(tmp_path / "shifted.tsv", "\t".join(header) + "\n" + "a\tb\n")
    with pytest.raises(TfcnnInputError) as err:
        read_atregnet(path)
    msg = str(err.value)
    assert "shifted.tsv" in msg and "TargetType" in msg and "Confirmation" in msg
    assert "TFLocus" not in msg.split("(found")[0]


def test_atregnet_short_row_and_unclosed_quote(tmp_path: Path) -> None:
    head = "\t".join(ATREGNET_HEADER)
    short = _write(
        tmp_path / "short.tsv",
        f"{head}\n{_atregnet_row('AT1G00010', 'AT1G00020')}\nFLC\tAT1G00010\n",
    )
    with pytest.raises(TfcnnInputError, match=r"short\.tsv, line 3"):
        read_atregnet(short)
    unclosed = _write(
        tmp_path / "quote.tsv",
        f'{head}\n{_atregnet_row("AT1G00010", "AT1G00020")}\nX\t"AT1G00010\n'
        + "\n".join(_atregnet_row("AT1G00010", "AT1G00020") for _ in range(3)),
    )
    with pytest.raises(TfcnnInputError, match=r"quote\.tsv, line 3"):
        read_atregnet(unclosed)


def test_atregnet_nothing_kept_lists_values(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "a.tsv",
        "\t".join(ATREGNET_HEADER)
        + "\n"
        + _atregnet_row("AT1G00010", "AT1G00020", conf="Unconfirmed"),
    )
    with pytest.raises(TfcnnInputError, match="'unconfirmed'/'direct'"):
        read_atregnet(path)


# ------------------------------------------------------------------ plain tables


@pytest.mark.parametrize(
    ("name", "text", "lines"),
    [
        ("h.tsv", "TF\tTarget\n At1g00010 \tAT1G00020\nAT1G00010\tat1g00030\n", [2, 3]),
        ("h.csv", "regulator,gene,score\nAT1G00010,AT1G00020,1\nAT1G00010,AT1G00030,2\n", [2, 3]),
        ("n.tsv", "At1g00010\tAT1G00020\nAT1G00010\tAT1G00030\t0.5\n", [1, 2]),
        ("n.csv", "AT1G00010,AT1G00020\r\nAT1G00010 ,at1g00030\r\n", [1, 2]),
        ("q.csv", '"tf","target"\n"AT1G00010","AT1G00020"\n"AT1G00010","AT1G00030"\n', [2, 3]),
        (
            "sniffed.txt",
            "tf_locus,target_locus\nAT1G00010,AT1G00020\nAT1G00010,AT1G00030\n",
            [2, 3],
        ),
        (
            "c.tsv",
            "# edges\n\nSource\tTarget\nAT1G00010\tAT1G00020\n\nAT1G00010\tAT1G00030\n",
            [4, 6],
        ),
    ],
)
def test_plain_tables(tmp_path: Path, name: str, text: str, lines: list[int]) -> None:
    inter = read_interactions(_write(tmp_path / name, text, "utf-8"))
    assert inter.as_set() == {("AT1G00010", "AT1G00020"), ("AT1G00010", "AT1G00030")}
    assert inter.pairs["line"].tolist() == lines
    assert inter.n_duplicates == 0 and inter.skipped == () and not inter.has_evidence


def test_plain_table_gzip_and_evidence(tmp_path: Path) -> None:
    text = (
        "tf\ttarget\tevidence\n"
        "AT1G00010\tAT1G00020\tChIP\n"
        "AT1G00010\tAT1G00020\tDAP\n"
        "AT1G00010\tAT1G00030\tDAP\n"
        "AT1G00040\tAT1G00020\tChIP\n"
        "AT1G00010\tAT1G00020\tChIP\n"
    )
    path = tmp_path / "e.tsv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    inter = read_interactions(path)
    assert inter.pairs["evidence"].tolist() == ["ChIP;DAP", "DAP", "ChIP"]
    assert inter.n_records == 5 and inter.n_duplicates == 2
    chip = read_interactions(path, evidence=["ChIP"])
    assert chip.as_set() == {("AT1G00010", "AT1G00020"), ("AT1G00040", "AT1G00020")}
    assert chip.pairs["evidence"].tolist() == ["ChIP", "ChIP"]
    assert chip.n_records == 3 and chip.n_duplicates == 1
    dap = inter.filter_evidence(["DAP"])
    assert dap.pairs["line"].tolist() == [3, 4]
    with pytest.raises(TfcnnInputError, match="ChIP, DAP"):
        read_pairs_table(path, evidence=["chip"])


def test_plain_table_without_evidence_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.tsv", "tf\ttarget\nAT1G00010\tAT1G00020\n")
    with pytest.raises(TfcnnInputError, match=r"p\.tsv.*no 'evidence' column"):
        read_pairs_table(path, evidence=["TARGET"])


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("tf\ttarget\nAT1G00010\tAT1G00020\nAT1G00030\n", r"line 3: 1 field"),
        ("tf\ttarget\nAT1G00010\tAT1G00020\nAT1G00030\t \n", r"line 3: empty target"),
        ("tf\ttarget\nN/A\tAT1G00020\n", r"line 2: empty TF"),
        ("from\tto\nAT1G00010\tAT1G00020\n", r"line 1: .*neither a header"),
        ("tf\ttarget\n", r"no TF -> target rows"),
        ("\n\n", r"empty"),
        ("# nothing\n\n", r"only blank or comment"),
        ("AT1G00010 AT1G00020\n", r"separator"),
    ],
)
def test_plain_table_bad_input(tmp_path: Path, text: str, pattern: str) -> None:
    path = _write(tmp_path / "bad.tsv", text, "utf-8")
    with pytest.raises(TfcnnInputError, match=pattern) as err:
        read_interactions(path)
    assert "bad.tsv" in str(err.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(TfcnnInputError, match="not found"):
        read_interactions(tmp_path / "nope.tsv")
    with pytest.raises(TfcnnInputError, match="not a file"):
        read_pairs_table(tmp_path)


# ------------------------------------------------------------------ from_pairs


def test_from_pairs_normalises_and_dedupes() -> None:
    inter = from_pairs([("At5g10140", " AT1G65480 "), ("AT5G10140", "at1g65480"), ("TF1", "g1")])
    assert inter.as_set() == {("AT5G10140", "AT1G65480"), ("TF1", "g1")}
    assert inter.pairs["line"].tolist() == [1, 3]
    assert len(inter) == 2 and inter.n_duplicates == 1 and inter.n_records == 3
    assert inter.tfs == ("AT5G10140", "TF1")
    assert inter.summary()["top_tf"] == "AT5G10140"
    assert "pairs=2" in repr(inter)
    with pytest.raises(TfcnnInputError, match="not evidence|no 'evidence'"):
        inter.filter_evidence(["x"])


@pytest.mark.parametrize(
    "bad", [[("AT1G00010",)], ["AB"], [("AT1G00010", "")], [(None, None, None)]]
)
def test_from_pairs_rejects_bad_items(bad: list) -> None:
    with pytest.raises(TfcnnInputError, match="pair 1"):
        from_pairs(bad, source="mine")


def test_empty_from_pairs() -> None:
    inter = from_pairs([])
    assert len(inter) == 0 and inter.tfs == ()
    assert inter.summary()["top_tf"] is None


# ------------------------------------------------------------------ property: line tracking

_agi = st.builds(
    lambda c, n, lower: f"at{c}g{n:05d}" if lower else f"AT{c}G{n:05d}",
    st.sampled_from("12345"),
    st.integers(0, 99999),
    st.booleans(),
)
_note = st.text(alphabet='ab \t\n"é', max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_agi, _agi, _note), min_size=1, max_size=15))
def test_line_numbers_survive_quoted_multiline_fields(rows: list[tuple[str, str, str]]) -> None:
    """Whatever tabs, newlines and quotes the notes hold, each pair keeps its start line."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(["tf", "target", "note"])
    expected: dict[tuple[str, str], int] = {}
    line = 2
    for tf, target, note in rows:
        expected.setdefault((tf.upper(), target.upper()), line)
        before = buf.tell()
        writer.writerow([tf, target, note])
        line += buf.getvalue()[before:].count("\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prop.tsv"
        path.write_text(buf.getvalue(), encoding="utf-8", newline="")
        inter = read_pairs_table(path)
    assert _lines_by_pair(inter) == expected
