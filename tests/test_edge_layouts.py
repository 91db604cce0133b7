"""Edge tables in the layouts other tools write, each as that tool documents it.

Every file is synthetic, written here: DREAM5 gold standards (header-less
``G1<TAB>G2<TAB>1/0``), BEELINE ``refNetwork.csv`` (``Gene1,Gene2,Type``), decoupler /
CollecTRI (``source,target,weight`` with weight = mode of regulation, or ``mor``),
arboreto / pySCENIC adjacencies (``TF,target,importance``) and GENIE3 link lists
(``regulatoryGene,targetGene,weight``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tfcnn.errors import TfcnnInputError
from tfcnn.io.interactions import LAYOUTS, read_interactions


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_dream5_gold_standard_keeps_only_label_1_rows(tmp_path: Path) -> None:
    """The silent misread of issue 16: the 0 rows (non-edges) used to become positives."""
    path = _write(
        tmp_path / "synthetic_DREAM5_GoldStandard.tsv",
        "G1\tG2\t1\nG1\tG3\t1\nG4\tG2\t1\nG1\tG4\t0\nG2\tG5\t0\nG4\tG2\t0\n",
    )
    inter = read_interactions(path)
    assert inter.as_set() == {("G1", "G2"), ("G1", "G3"), ("G4", "G2")}
    assert inter.n_records == 3
    # the 0 rows are offered as explicit non-edges (a pair also labelled 1 is not one)
    assert inter.negatives is not None
    negatives = inter.negatives.itertuples(index=False, name=None)
    assert sorted(negatives) == [
        ("G1", "G4", 4),
        ("G2", "G5", 5),
    ]
    assert inter.negatives_as_interactions().as_set() == {("G1", "G4"), ("G2", "G5")}
    assert inter.summary()["explicit_negatives"] == 2


def test_dream5_boolean_labels_and_bad_label(tmp_path: Path) -> None:
    path = _write(tmp_path / "synthetic_bool.tsv", "G1\tG2\tTRUE\nG1\tG3\tFALSE\n")
    assert read_interactions(path).as_set() == {("G1", "G2")}
    # a label column is 0/1 throughout; a header-less third column of other words is ignored
    path = _write(tmp_path / "synthetic_words.tsv", "G1\tG2\tChIP\nG1\tG3\tDAP\n")
    assert read_interactions(path).as_set() == {("G1", "G2"), ("G1", "G3")}
    path = _write(tmp_path / "synthetic_label.csv", "tf,target,label\nG1,G2,1\nG1,G3,2\n")
    with pytest.raises(TfcnnInputError, match=r"synthetic_label\.csv, line 3: label '2'"):
        read_interactions(path)
    path = _write(tmp_path / "synthetic_zero.tsv", "G1\tG2\t0\nG1\tG3\t0\n")
    with pytest.raises(TfcnnInputError, match="every row is labelled 0"):
        read_interactions(path)


def test_dream5_predictions_third_column_is_a_weight(tmp_path: Path) -> None:
    path = _write(tmp_path / "synthetic_pred.txt", "G1\tG2\t0.93\nG1\tG3\t0.5\nG1\tG2\t0.1\n")
    inter = read_interactions(path)
    assert inter.negatives is None
    assert dict(zip(inter.pairs.target, inter.pairs.weight, strict=True)) == {
        "G2": 0.93,
        "G3": 0.5,
    }


def test_beeline_ref_network_header_is_not_an_edge(tmp_path: Path, caplog) -> None:
    """The silent misread of issue 16: 'Gene1,Gene2' (both hold a digit) was read as an edge."""
    path = _write(
        tmp_path / "synthetic_refNetwork.csv",
        "Gene1,Gene2,Type\nGATA1,SPI1,-\nGATA1,KLF1,+\nSPI1,CEBPA,+\nKLF1,GATA1,+\n",
    )
    with caplog.at_level(logging.WARNING):
        inter = read_interactions(path)
    assert ("GENE1", "GENE2") not in inter.as_set() and ("Gene1", "Gene2") not in inter.as_set()
    assert len(inter) == 4 and inter.pairs.line.tolist() == [2, 3, 4, 5]
    assert inter.pairs.sign.tolist() == [-1, 1, 1, 1]
    assert inter.summary()["signs"] == {"activating": 3, "repressing": 1, "both_or_unknown": 0}
    assert "3 activating, 1 repressing" in caplog.text and "'Type'" in caplog.text
    # without the Type column too
    path = _write(tmp_path / "synthetic_unsigned.csv", "Gene1,Gene2\nGATA1,SPI1\n")
    assert read_interactions(path).as_set() == {("GATA1", "SPI1")}


def test_collectri_weight_is_a_sign_and_decoupler_mor(tmp_path: Path) -> None:
    collectri = _write(
        tmp_path / "synthetic_collectri.csv",
        "source,target,weight,resources\nMYC,TERT,1,synthetic\nTP53,MDM2,1,synthetic\n"
        "TP53,MYC,-1,synthetic\nTP53,MYC,1,synthetic\n",
    )
    inter = read_interactions(collectri)
    assert dict(zip(inter.pairs.target, inter.pairs.sign, strict=True)) == {
        "TERT": 1,
        "MDM2": 1,
        "MYC": 0,  # both signs given: kept, sign 0
    }
    mor = _write(
        tmp_path / "synthetic_dorothea.tsv",
        "source\tconfidence\ttarget\tmor\nSTAT1\tA\tIRF1\t0.8\nSTAT1\tA\tMYC\t-1\n",
    )
    inter = read_interactions(mor)
    assert inter.pairs.sign.tolist() == [1, -1] and "weight" not in inter.pairs


def test_arboreto_and_genie3_tables(tmp_path: Path) -> None:
    adj = _write(
        tmp_path / "synthetic_adjacencies.tsv",
        "TF\ttarget\timportance\nSOX2\tNES\t12.5\nSOX2\tPAX6\t3.25\n",
    )
    inter = read_interactions(adj)
    assert inter.as_set() == {("SOX2", "NES"), ("SOX2", "PAX6")}
    assert inter.pairs.weight.tolist() == [12.5, 3.25] and not inter.has_sign
    genie3 = _write(
        tmp_path / "synthetic_linklist.csv",
        '"regulatoryGene","targetGene","weight"\n"G3","G7",0.41\n"G3","G9",0.2\n',
    )
    assert read_interactions(genie3).as_set() == {("G3", "G7"), ("G3", "G9")}
    bad = _write(tmp_path / "synthetic_bad_weight.tsv", "TF\ttarget\timportance\nA1\tB1\thigh\n")
    with pytest.raises(TfcnnInputError, match=r"line 2: weight 'high' in column 'importance'"):
        read_interactions(bad)


def test_unrecognised_header_lists_the_layouts(tmp_path: Path) -> None:
    path = _write(tmp_path / "synthetic_edges.csv", "from,to,score\nA1,B1,1\n")
    with pytest.raises(TfcnnInputError) as err:
        read_interactions(path)
    message = str(err.value)
    assert "synthetic_edges.csv, line 1" in message
    for layout in LAYOUTS:
        assert layout in message


def test_a_type_column_of_words_is_not_a_sign(tmp_path: Path) -> None:
    path = _write(tmp_path / "synthetic_type.tsv", "tf\ttarget\ttype\nA1\tB1\tdirect\n")
    inter = read_interactions(path)
    assert not inter.has_sign and len(inter) == 1
