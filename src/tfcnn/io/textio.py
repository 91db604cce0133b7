"""Text files from users: one decoder for every table and ID list tfcnn reads.

Bytes that start with a UTF-16 byte-order mark are UTF-16 (Excel's "Unicode text");
otherwise UTF-8 (with or without BOM) is tried, then Latin-1 (every byte decodes).
Files that are not text are refused before decoding, with what they look like, so the
user is told to export text instead of getting a parse error on line 1: spreadsheets and
other zip archives, old Office files, gzip, PDF, UTF-16 without a byte-order mark, and
binary content (a NUL byte, or, where only IDs are expected, many control characters).
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from pathlib import Path

from ..errors import TfcnnInputError

log = logging.getLogger(__name__)

#: What to do with a table that is not text (the expression, interaction and ID-map loaders).
TABLE_ADVICE = (
    "Open it in a spreadsheet program and export it as CSV or TSV (tab-separated) text, "
    "UTF-8 encoded."
)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_MAGIC = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Excel (.xls) or Word file"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"%PDF", "a PDF document"),
)
#: Control bytes that never occur in text (tab, line feed, \v, \f and \r do).
_CONTROL_BYTES = bytes(set(range(32)) - {9, 10, 11, 12, 13})


def decode_text(
    where: str | os.PathLike[str],
    raw: bytes,
    advice: str = TABLE_ADVICE,
    max_control: float | None = None,
) -> str:
    """The text of ``raw``; :class:`TfcnnInputError` naming ``where`` when it is not text.

    ``where`` names the file in messages (a path, or "target file 'ids.txt'"); ``advice``
    says what to give instead. ``max_control``: the share of control characters above
    which the file is taken for binary (ID lists); None for tables, whose free-text
    fields (descriptions, references) may hold some.
    """
    if raw.startswith(_UTF16_BOMS):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise TfcnnInputError(
                f"{where} starts like UTF-16 text but cannot be read as such. {advice}"
            ) from None
    kind = _binary_kind(raw)
    if kind is None and max_control is not None:
        control = len(raw) - len(raw.translate(None, _CONTROL_BYTES))
        if control > max(2, max_control * len(raw)):
            kind = f"binary ({control:,} control characters)"
    if kind is not None:
        raise TfcnnInputError(f"{where} is {kind}, not a text file. {advice}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.info("%s is not valid UTF-8; reading it as Latin-1", where)
        return raw.decode("latin-1")


def _binary_kind(raw: bytes) -> str | None:
    """What a file that is certainly not text looks like, or None."""
    for magic, kind in _MAGIC:
        if raw.startswith(magic):
            return kind
    nul = raw.find(b"\x00")
    if nul < 0:
        return None
    if _looks_utf16(raw):
        return "UTF-16 text without a byte-order mark (or binary)"
    return f"binary (a NUL byte at byte {nul + 1:,})"


def _looks_utf16(raw: bytes) -> bool:
    """Nearly every other byte is NUL: ASCII text saved as UTF-16 without a BOM."""
    head = raw[:2000]
    halves = (head[0::2], head[1::2])
    return len(head) >= 4 and any(h.count(0) >= 0.9 * len(h) for h in halves)


def check_file(path: Path) -> None:
    """Refuse a missing path or a directory, naming it."""
    if not path.exists():
        raise TfcnnInputError(f"{path}: file not found; check the path.")
    if path.is_dir():
        raise TfcnnInputError(f"{path} is a directory, not a file; give the path of a file.")


def load_text(path: str | os.PathLike[str], advice: str = TABLE_ADVICE) -> str:
    """Read and decode a text file, gunzipping it first when its name ends in ``.gz``."""
    path = Path(path)
    check_file(path)
    raw = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise TfcnnInputError(
                f"{path}: not a valid gzip file ({exc}); decompress or re-compress it, or "
                "remove the .gz extension if it is plain text."
            ) from exc
    return decode_text(path, raw, advice)


def read_maybe_gzip(path: Path) -> bytes:
    """The bytes of a file, gunzipped when they are gzip (by magic number, not by name).

    For instrument and GEO files (CEL, CDF, series matrix), often stored compressed
    under any name.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TfcnnInputError(f"cannot read {path}: {exc.strerror or exc}.") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise TfcnnInputError(
                f"{path} is a damaged gzip file ({exc}); download it again."
            ) from exc
    return raw


def text_lines(text: str) -> list[str]:
    """Lines of ``text``, ended by \\n, \\r\\n or \\r only.

    ``str.splitlines()`` would also split inside a field at \\x0c, \\x1c-\\x1e, \\x85
    (cp1252's ellipsis read as Latin-1), \\u2028 or \\u2029, cutting a valid row in two
    and shifting every later line number.
    """
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
