"""Gene symbols: read from AtRegNet's name columns, never invented; ambiguity refused."""

from __future__ import annotations

import pytest

from tfcnn.errors import TfcnnInputError
from tfcnn.io import symbols
from tfcnn.io.symbols import read_symbol_table

# A synthetic table in AtRegNet's layout (names and loci made up for the test).
SYNTHETIC = (
    "TFName\tTFLocus\tTFFamily\tTargetName\tTargetLocus\tIsTF\n"
    "SYNA\tAt1g00010\tX\tSYNB\tAT1G00020\tNo\n"
    "SYNA\tAT1G00010\tX\tAT1G00030\tAT1G00030\tNo\n"  # AGI as name: no symbol
    "AtSYNA\tAT1G00010\tX\tNA\tAT1G00040\tNo\n"  # a second name; NA is no name
    "DUP\tAT2G00010\tX\tdup\tAT2G00020\tNo\n"  # one name for two loci
    "DUP2\tAT2G00010\tX\tSOME THING\tAT2G00030\tNo\n"  # spaces: a description
    "SYNC\tAT5G286660\tX\tSYNC\tN/A\tNo\n"  # malformed loci: skipped
)


@pytest.fixture()
def table(tmp_path):
    path = tmp_path / "synthetic_atregnet.tsv"
    path.write_text(SYNTHETIC, encoding="latin-1")
    return read_symbol_table(path)


def test_names_come_from_the_table_with_a_preferred_unambiguous_one(table):
    assert table.symbol == {
        "AT1G00010": "SYNA",  # used in most rows
        "AT1G00020": "SYNB",
        "AT2G00010": "DUP2",  # DUP names two loci, so the unambiguous name is shown
        "AT2G00020": "dup",
    }
    assert table.lookup("syna") == ("AT1G00010",) and table.lookup("ATSYNA") == ("AT1G00010",)
    assert table.lookup("DUP") == ("AT2G00010", "AT2G00020")
    assert table.lookup("SYNC") == () and table.lookup("SOME") == ()


def test_a_table_without_name_columns_is_refused(tmp_path):
    path = tmp_path / "synthetic_pairs.tsv"
    path.write_text("tf\ttarget\nAT1G00010\tAT1G00020\n")
    with pytest.raises(TfcnnInputError, match="not an AtRegNet table"):
        read_symbol_table(path)


def test_bundled_symbols_are_atregnets_names():
    """The bundled source: LEAFY and FLC are named as AtRegNet names them."""
    table = symbols.symbols()
    assert table["AT5G61850"] == "LFY" and table["AT5G10140"] == "FLC"
    assert len(table) > 1_500
    assert all(" " not in s and not s.upper().startswith("AT1G") for s in table.values())
    assert symbols.symbol_of("at5g10140") == "FLC" and symbols.symbol_of("AT9G99999") == ""


def test_resolve_accepts_agi_codes_and_symbols_in_any_case():
    assert symbols.resolve(["flc", "At5g61850", "lfy"]) == ["AT5G10140", "AT5G61850", "AT5G61850"]


def test_resolve_refuses_ambiguous_symbols_naming_every_candidate():
    # AtRegNet gives PIF4 to two loci: the user must choose.
    with pytest.raises(TfcnnInputError) as err:
        symbols.resolve(["PIF4"], "regulator")
    message = str(err.value)
    assert "regulator 'PIF4' is ambiguous" in message
    assert "AT2G43010" in message and "AT2G20180" in message


def test_resolve_refuses_unknown_names():
    with pytest.raises(TfcnnInputError, match="'NOTAGENE' is neither an AGI code nor a gene"):
        symbols.resolve(["NOTAGENE"])


def test_predict_accepts_symbols_and_writes_symbol_columns(tmp_path):
    """`tfcnn predict`: a symbol as a regulator, symbols beside the IDs in the output."""
    import io

    import pandas as pd
    from typer.testing import CliRunner

    from tests.predict_helpers import train_synthetic_model
    from tfcnn.apps.cli import app
    from tfcnn.model.estimator import PairCNN

    model = train_synthetic_model(tmp_path / "synthetic", agi=True)
    genes = PairCNN.load(model).record_.genes
    named = [g for g in genes if g in symbols.symbols()]
    assert len(named) >= 2, "no synthetic gene is named after a locus with a symbol"
    tf, target = named[0], named[1]
    typed = symbols.symbols()[tf].lower()
    args = ["predict", "--model", str(model), "--regulators", typed, "--targets", target]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    table = pd.read_csv(io.StringIO(out.stdout), keep_default_na=False)
    assert list(table.regulator) == [tf] and list(table.target) == [target]
    assert list(table.regulator_symbol) == [symbols.symbols()[tf]]
    assert list(table.target_symbol) == [symbols.symbols()[target]]
    # An ambiguous symbol in a file: refused with the file, the line and the candidates.
    ids = tmp_path / "regulators.txt"
    ids.write_text(f"{tf}\nPIF4\n")
    bad = CliRunner().invoke(app, ["predict", "--model", str(model), "--regulators", str(ids)])
    flat = " ".join(bad.output.split())
    assert bad.exit_code == 2 and "line 2: regulator 'PIF4' is ambiguous" in flat
    assert "AT2G43010" in flat and "AT2G20180" in flat
