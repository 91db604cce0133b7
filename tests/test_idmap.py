"""Tests for tfcnn.io.idmap: the bundled two-column map and a synthetic TAIR-format file."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tfcnn.errors import TfcnnInputError
from tfcnn.io.idmap import IdMap, read_id_map

REAL_MAP = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "tfcnn"
    / "data"
    / "arabidopsis"
    / "ath1_probeset_to_agi.csv"
)

# Synthetic text in the column layout of TAIR's affy_ATH1_array_elements-2010-12-20.txt
# (tab-separated; '|' below stands for a tab). The rows are made up for the test, a few
# reusing real-looking names; they exercise controls, ';' multi-locus probesets,
# no_match/empty loci, a locus hit by two probesets, lower-case AGI codes, quotes in the
# description and a repeated line.
SYNTHETIC_TAIR = """\
array_element_name|array_element_type|organism|is_control|locus|description|chromosome|start|stop
AFFX-BioB-5_at|control|E. coli|yes|no_match||||
AFFX-Athal-Actin_3_at|control|Arabidopsis thaliana|YES|AT5G09810||5||
AFFX-Dap-X-3_at|control|B. subtilis|1|||||
261585_at|gene|Arabidopsis thaliana|no|AT1G01010|NAC "domain" 1, 5' end|1|3631|5899
261585_at|gene|Arabidopsis thaliana|no|AT1G01010|NAC "domain" 1, 5' end|1|3631|5899
261568_at|gene|Arabidopsis thaliana|no|at1g01030|lower-case locus|1||
250000_s_at|gene|Arabidopsis thaliana|no|AT2G00010;AT2G00020|two loci|2||
250005_at|gene|Arabidopsis thaliana|no|AT2G00010|the unique probeset of a locus|2||
250001_at|gene|Arabidopsis thaliana|no|no_match||||
250002_at|gene|Arabidopsis thaliana|no|||||
250003_at|gene|Arabidopsis thaliana|no|AT3G00030||3||
250004_x_at|gene|Arabidopsis thaliana|no|AT3G00030||3||
250006_at|gene|Arabidopsis thaliana|FALSE| AT4G00040 ||4||
"""
TAIR_HEADER = SYNTHETIC_TAIR.splitlines()[0].replace("|", "\t")


@pytest.fixture
def synthetic_tair(tmp_path: Path) -> Path:
    """A small synthetic file in TAIR's tab-separated array-elements layout."""
    path = tmp_path / "synthetic_affy_ATH1_array_elements.txt"
    path.write_text(SYNTHETIC_TAIR.replace("|", "\t"), encoding="utf-8")
    return path


def test_real_two_column_map() -> None:
    m = read_id_map(REAL_MAP)
    assert len(m.agi_to_probeset) == 19966
    assert len(m.probeset_to_agi) == 19966
    assert m.summary() == {
        "one_to_one": 19966,
        "multi_locus_probesets": 0,
        "multi_probeset_loci": 0,
        "control_probesets": 0,
        "unmatched_probesets": 0,
    }
    with REAL_MAP.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    picked = [rows[0], rows[len(rows) // 2], rows[-1]]
    assert picked[0] == {"locus": "AT1G01010", "array_element_name": "261585_at"}
    agis = [r["locus"] for r in picked]
    probes = [r["array_element_name"] for r in picked]
    mapping, unmapped = m.translate([a.lower() for a in agis] + ["AT9G99999"], to="probeset")
    assert mapping == dict(zip(agis, probes, strict=True))
    assert unmapped == ["AT9G99999"]
    mapping, unmapped = m.translate(probes, to="agi")
    assert mapping == dict(zip(probes, agis, strict=True))
    assert unmapped == []


def test_synthetic_tair_categories(synthetic_tair: Path) -> None:
    m = read_id_map(synthetic_tair)
    assert m.agi_to_probeset == {
        "AT1G01010": "261585_at",
        "AT1G01030": "261568_at",
        "AT2G00010": "250005_at",
        "AT4G00040": "250006_at",
    }
    assert m.probeset_to_agi == {v: k for k, v in m.agi_to_probeset.items()}
    assert m.control_probesets == {"AFFX-BioB-5_at", "AFFX-Athal-Actin_3_at", "AFFX-Dap-X-3_at"}
    assert m.multi_locus_probesets == {"250000_s_at": ("AT2G00010", "AT2G00020")}
    assert m.multi_probeset_loci == {"AT3G00030": ("250003_at", "250004_x_at")}
    assert m.unmatched_probesets == {"250001_at", "250002_at"}
    assert m.summary() == {
        "one_to_one": 4,
        "multi_locus_probesets": 1,
        "multi_probeset_loci": 1,
        "control_probesets": 3,
        "unmatched_probesets": 2,
    }
    assert m.source == str(synthetic_tair)


def test_synthetic_tair_translate(synthetic_tair: Path) -> None:
    m = read_id_map(synthetic_tair)
    mapping, unmapped = m.translate(
        ["261585_at", "250000_s_at", "AFFX-BioB-5_at", "250001_at", "250003_at", "261585_AT"],
        to="agi",
    )
    assert mapping == {"261585_at": "AT1G01010"}
    # Probeset case is significant, so '261585_AT' is not '261585_at'.
    assert unmapped == ["250000_s_at", "AFFX-BioB-5_at", "250001_at", "250003_at", "261585_AT"]
    mapping, unmapped = m.translate(
        [" at1g01030", "AT3G00030", "AT2G00020", "AT1G01030"], "probeset"
    )
    assert mapping == {"AT1G01030": "261568_at"}
    assert unmapped == ["AT3G00030", "AT2G00020"]
    assert m.why_unmapped("250000_s_at").startswith("probeset hits several loci")
    assert m.why_unmapped("at3g00030").startswith("locus hit by several probesets")
    with pytest.raises(ValueError, match="'agi' or 'probeset'"):
        m.translate(["AT1G01010"], to="entrez")  # type: ignore[arg-type]


def test_two_column_variants(tmp_path: Path) -> None:
    # Synthetic: reversed column order, tab separated, a probeset on two lines (two loci),
    # and a repeated identical line.
    path = tmp_path / "synthetic_map.tsv"
    path.write_text(
        "array_element_name\tlocus\n"
        "261585_at\tat1g01010\n"
        "261585_at\tat1g01010\n"
        "250000_s_at\tAT2G00010\n"
        "250000_s_at\tAT2G00020\n"
        "250007_at\tAT2G00020\n",
        encoding="utf-8",
    )
    m = read_id_map(path)
    assert isinstance(m, IdMap)
    assert m.agi_to_probeset == {"AT1G01010": "261585_at", "AT2G00020": "250007_at"}
    assert m.multi_locus_probesets == {"250000_s_at": ("AT2G00010", "AT2G00020")}
    assert m.multi_probeset_loci == {}


def test_unknown_header_rejected(tmp_path: Path) -> None:
    path = tmp_path / "synthetic_wrong.csv"
    path.write_text("gene,probe\nAT1G01010,261585_at\n", encoding="utf-8")
    with pytest.raises(
        TfcnnInputError,
        match=r"synthetic_wrong\.csv: unrecognised ID map header.*'locus'.*'array_element_name'"
        r".*'is_control'",
    ):
        read_id_map(path)


def test_other_rejections(tmp_path: Path) -> None:
    with pytest.raises(TfcnnInputError, match=r"missing\.csv: file not found"):
        read_id_map(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(TfcnnInputError, match=r"empty\.csv is empty"):
        read_id_map(empty)
    short = tmp_path / "short.txt"
    short.write_text(TAIR_HEADER + "\n261585_at\tgene\tA. thaliana\n", "utf-8")
    with pytest.raises(TfcnnInputError, match=r"short\.txt: line 2 has 3 field\(s\)"):
        read_id_map(short)
    none = tmp_path / "none.csv"
    none.write_text("locus,array_element_name\nno_match,250001_at\n", encoding="utf-8")
    with pytest.raises(TfcnnInputError, match=r"none\.csv: no one-to-one"):
        read_id_map(none)
