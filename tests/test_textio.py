"""tfcnn.io.textio (the one decoder) and tfcnn.io.idlists (the one ID-list reader)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tfcnn.errors import TfcnnInputError
from tfcnn.io.idlists import ids_from_bytes, parse_ids, read_id_list, split_ids
from tfcnn.io.textio import decode_text, load_text, text_lines


# -- decoding ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("AT1G01010\tcaf\xe9\n".encode(), "AT1G01010\tcaf\xe9\n"),
        ("\ufeffAT1G01010\n".encode(), "AT1G01010\n"),  # UTF-8 with BOM
        ("AT1G01010\tcaf\xe9\n".encode("latin-1"), "AT1G01010\tcaf\xe9\n"),
        ("AT1G01010\tcaf\xe9\r\n".encode("utf-16"), "AT1G01010\tcaf\xe9\r\n"),  # with a BOM
        (b"a\tb\x0cc\x0bd\r\n", "a\tb\x0cc\x0bd\r\n"),  # tab, \f, \v and \r are text
    ],
)
def test_text_is_decoded(raw: bytes, text: str) -> None:
    assert decode_text("f.txt", raw) == text


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"PK\x03\x04" + bytes(40), "an Excel workbook (.xlsx) or another zip archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(40), "an old-style Excel (.xls) or Word file"),
        (gzip.compress(b"AT1G01010\n"), "a gzip-compressed file"),
        (b"%PDF-1.7\n", "a PDF document"),
        ("gene\tS1\n".encode("utf-16-le"), "UTF-16 text without a byte-order mark (or binary)"),
        (b"gene\tS1\x00\n", "binary (a NUL byte at byte 8)"),
        (b"AT1G01010\x01\x02\x03\n", "binary (3 control characters)"),
    ],
)
def test_files_that_are_not_text_are_named_with_the_advice(raw: bytes, kind: str) -> None:
    with pytest.raises(TfcnnInputError) as err:
        decode_text("target file 'ids.txt'", raw, "Do this.", max_control=0.01)
    assert str(err.value) == f"target file 'ids.txt' is {kind}, not a text file. Do this."


def test_control_characters_count_only_where_ids_are_expected() -> None:
    text = "AT1G01010\x1a\n" + "AT1G01020\n" * 30
    assert decode_text("f", text.encode(), max_control=0.01) == text  # 1 of 321 bytes
    table = "locus\tdescription\nAT1G01010\t\x1e\x1e\x1e\n"
    assert decode_text("f", table.encode()) == table  # free text in a table: kept
    with pytest.raises(TfcnnInputError, match=r"F is binary \(3 control characters\)"):
        ids_from_bytes(b"AT1G01010\x1e\x1e\x1e\n", "F")


def test_a_broken_utf16_file_is_refused() -> None:
    with pytest.raises(TfcnnInputError, match="f starts like UTF-16 text but cannot be read"):
        decode_text("f", b"\xff\xfe\x00\xd8")  # a lone surrogate


def test_load_text_gunzips_by_name_and_checks_the_path(tmp_path: Path) -> None:
    (tmp_path / "a.tsv.gz").write_bytes(gzip.compress(b"x\ty\n"))
    assert load_text(tmp_path / "a.tsv.gz") == "x\ty\n"
    (tmp_path / "b.tsv.gz").write_bytes(b"x\ty\n")
    with pytest.raises(TfcnnInputError, match=r"b\.tsv\.gz: not a valid gzip file"):
        load_text(tmp_path / "b.tsv.gz")
    with pytest.raises(TfcnnInputError, match="is a directory, not a file"):
        load_text(tmp_path)
    with pytest.raises(TfcnnInputError, match=r"c\.tsv: file not found"):
        load_text(tmp_path / "c.tsv")


def test_text_lines_end_only_at_newlines() -> None:
    assert text_lines("a\r\nb\rc\x0cd\x85e\u2028f\ng") == ["a", "b", "c\x0cd\x85e\u2028f", "g"]


# -- ID lists ---------------------------------------------------------------------------------
def test_ids_keep_their_line_numbers() -> None:
    got = parse_ids("# header\n'AT1G01010', at1g01020\n\n261585_at;\"AT1G01040\"\r\nx y", "L")
    assert got.ids == ["AT1G01010", "at1g01020", "261585_at", "AT1G01040", "x", "y"]
    assert got.lines == [2, 2, 4, 4, 5, 5]
    assert got.label == "L" and len(got) == 6
    assert split_ids(" ,\n\t# AT1G01010\n ") == []


def test_id_files_and_inline_lists_share_one_reader(tmp_path: Path) -> None:
    f = tmp_path / "ids.txt"
    f.write_bytes("AT1G01010\n\ncaf\xe9\n".encode("latin-1"))
    got = read_id_list(f, "`tfs`")
    assert (got.ids, got.lines, got.label) == (["AT1G01010", "caf\xe9"], [1, 3], f"`tfs` file {f}")
    assert read_id_list(str(f)).ids == got.ids
    inline = read_id_list("AT1G01010 AT1G01020", "`tfs`")
    assert (inline.ids, inline.lines, inline.label) == (["AT1G01010", "AT1G01020"], [1, 1], "`tfs`")
    assert read_id_list("x" * 5000).ids == ["x" * 5000]  # too long for a file name: an ID
    with pytest.raises(TfcnnInputError, match=r"`tfs`: \S*gone.txt: file not found\. Give"):
        read_id_list(tmp_path / "gone.txt", "`tfs`")
    with pytest.raises(TfcnnInputError, match="^`tfs` holds no IDs"):
        read_id_list(" , ", "`tfs`")
    f.write_text("# only a comment\n")
    with pytest.raises(TfcnnInputError, match=rf"^`tfs` file {f} holds no IDs .*; do that\.$"):
        read_id_list(f, "`tfs`", empty_advice="do that.")


def test_id_bytes_are_decoded_by_the_shared_decoder() -> None:
    assert ids_from_bytes("AT1G01010\tAT1G01020".encode("utf-16"), "F").ids == [
        "AT1G01010",
        "AT1G01020",
    ]
    with pytest.raises(TfcnnInputError, match="^F is a PDF document, not a text file. Save the"):
        ids_from_bytes(b"%PDF-1.4", "F")
