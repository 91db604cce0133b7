"""ID lists: gene IDs typed inline or read from a text file, with their line numbers.

One format for ``tfcnn predict``, ``tfcnn scan`` and the web app: IDs separated by
commas, semicolons, spaces, tabs or newlines; lines starting with ``#`` are comments;
quotes around an ID are removed. IDs are kept as typed (callers normalise them, and
name them as typed in reports), each with the line it came from. Files are decoded by
:func:`tfcnn.io.textio.decode_text`, so spreadsheets and binary files are refused with
what they are.
"""

from __future__ import annotations

import os
import re
from collections.abc import Container, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import TfcnnInputError
from .datasets import resolve_path
from .ids import is_probeset, looks_like_agi, normalize_id
from .textio import check_file, decode_text, read_bounded, text_lines

#: What to do with an ID file that is not text.
ID_FILE_ADVICE = "Save the IDs as plain text (one per line, or a CSV column) and give that file."
#: What to do with a list that holds no ID.
NO_ID_ADVICE = "give IDs one per line, or separated by commas or spaces."
#: An ID list with more control characters than this share of its bytes is binary.
MAX_CONTROL = 0.01
_TOKEN_SPLIT = re.compile(r"[,\s;]+")
_QUOTES = "\"'"
_FILE_SUFFIXES = {".txt", ".csv", ".tsv", ".lst"}


@dataclass(frozen=True)
class IdList:
    """IDs as typed, the line (1-based) each came from, and how to name the list."""

    ids: list[str]
    lines: list[int]
    label: str  # e.g. "`tfs` file tfs.txt", "target file 'ids.txt'", "`regulators`"

    def __len__(self) -> int:
        return len(self.ids)


def parse_ids(text: str, label: str = "the ID list") -> IdList:
    """The IDs of ``text`` with their line numbers (see the module docstring)."""
    ids: list[str] = []
    lines: list[int] = []
    for n, line in enumerate(text_lines(str(text)), start=1):
        if line.lstrip().startswith("#"):
            continue
        for token in _TOKEN_SPLIT.split(line):
            token = token.strip(_QUOTES)
            if token:
                ids.append(token)
                lines.append(n)
    return IdList(ids, lines, label)


def split_ids(text: str) -> list[str]:
    """The IDs of ``text`` (an empty list when it holds none)."""
    return parse_ids(text).ids


def ids_from_bytes(
    raw: bytes, label: str, advice: str = ID_FILE_ADVICE, empty_advice: str = NO_ID_ADVICE
) -> IdList:
    """The IDs of a file's bytes; a file that is not text, or holds no ID, is refused."""
    text = decode_text(label, raw, advice, max_control=MAX_CONTROL)
    return _not_empty(parse_ids(text, label), empty_advice)


def read_id_list(
    value: str | os.PathLike[str], what: str = "the ID list", empty_advice: str = NO_ID_ADVICE
) -> IdList:
    """IDs from the file ``value`` names (a path or bundled dataset name), or ``value`` itself.

    ``what`` names the list in messages (e.g. "`regulators`"). A value that looks like a
    file name (a path separator, or a .txt/.csv/.tsv/.lst ending, and no separator) but
    names no file is an error rather than an unknown ID; so is a list without any ID.
    """
    text = os.fspath(value)
    try:
        path = resolve_path(text)
        exists = path.exists()
    except OSError:  # e.g. a name too long for the file system: inline IDs
        path, exists = Path(text), False
    if exists:
        check_file(path)  # a folder, a pipe or a device is refused without reading it
        raw = read_bounded(path)
        return ids_from_bytes(raw, f"{what} file {path}", empty_advice=empty_advice)
    looks_like_file = (
        "/" in text or os.sep in text or path.suffix.lower() in _FILE_SUFFIXES
    ) and not any(c in text for c in ",\n\t ")
    if looks_like_file:
        raise TfcnnInputError(
            f"{what}: {text}: file not found. Give an existing file of IDs, or the IDs "
            "themselves separated by commas or spaces."
        )
    return _not_empty(parse_ids(text, what), empty_advice)


def _not_empty(ids: IdList, advice: str) -> IdList:
    if not ids.ids:
        raise TfcnnInputError(
            f"{ids.label} holds no IDs (only blank lines or # comments); {advice}"
        )
    return ids


def with_symbols(
    ids: IdList | Sequence[str], in_matrix: Container[str], what: str = "gene ID"
) -> list[str]:
    """``ids`` with gene symbols (``FLC``, any case) replaced by their AGI codes.

    An ID that is a gene of the scoring matrix as typed (``in_matrix``: its normalised
    IDs), or shaped like an AGI code or a probeset, is kept as typed; so is a name no
    symbol matches (reported later as unknown). A symbol naming several loci is refused,
    naming the list, its line and every candidate (:mod:`tfcnn.io.symbols`).
    """
    from .symbols import symbol_to_agi

    tokens = ids.ids if isinstance(ids, IdList) else list(ids)
    out = []
    for n, raw in enumerate(tokens):
        key = normalize_id(raw)
        if key in in_matrix or looks_like_agi(key) or is_probeset(key):
            out.append(raw)
            continue
        try:
            agi = symbol_to_agi(key, what)
        except TfcnnInputError as exc:
            if isinstance(ids, IdList):
                raise TfcnnInputError(f"{ids.label}, line {ids.lines[n]}: {exc}") from None
            raise
        out.append(agi if agi is not None else raw)
    return out
