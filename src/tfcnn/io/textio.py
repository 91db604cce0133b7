"""Text files from users: one decoder for every table and ID list tfcnn reads.

Bytes that start with a UTF-16 byte-order mark are UTF-16 (Excel's "Unicode text");
otherwise UTF-8 (with or without BOM) is tried, then Latin-1 (every byte decodes).
Files that are not text are refused before decoding, with what they look like, so the
user is told to export text instead of getting a parse error on line 1: spreadsheets and
other zip archives, old Office files, gzip, PDF, UTF-16 without a byte-order mark, and
binary content (a NUL byte, or, where only IDs are expected, many control characters).

Every file is read through one bounded reader (:func:`read_bounded`): regular files only
(a named pipe, ``/dev/zero`` or a link to either is refused before it is opened for
reading, so nothing hangs or fills memory), at most :data:`MAX_FILE_BYTES`, and gzip data
may expand at most :data:`MAX_GZIP_RATIO` times (and never beyond the same cap), so a
small decompression bomb is refused before it is inflated.
"""

from __future__ import annotations

import logging
import os
import stat
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


#: Largest file tfcnn reads whole (tables, ID lists, CEL/CDF, series matrices), before
#: and after gunzipping. Larger expression matrices belong in Parquet.
MAX_FILE_BYTES = 2 * 1024**3
#: Most a gzip file may expand (x its compressed size) once past :data:`GZIP_FREE_BYTES`.
#: Tables and CEL files compress 3-20 times; a decompression bomb, about 1,000 times.
MAX_GZIP_RATIO = 200
#: Output a gzip file may always expand to, whatever its ratio (tiny, repetitive files).
GZIP_FREE_BYTES = 16 * 1024**2

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(path: Path, mode: int) -> TfcnnInputError | None:
    """The error for a path that is not a regular file (``mode`` of its target), or None."""
    if stat.S_ISREG(mode):
        return None
    kind = next((k for test, k in _FILE_KINDS if test(mode)), "not a regular file")
    via = f" (a link to {os.path.realpath(path)})" if path.is_symlink() else ""
    if stat.S_ISDIR(mode):
        return TfcnnInputError(f"{path}{via} is a directory, not a file; give the path of a file.")
    return TfcnnInputError(
        f"{path}{via} is {kind}, not a regular file; tfcnn reads only regular files (never "
        "pipes or devices). Give the path of a file."
    )


def check_file(path: Path) -> None:
    """Refuse a missing path, a directory, a pipe or a device (links followed), naming it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise TfcnnInputError(f"{path}: file not found; check the path.") from None
    except OSError as exc:
        raise TfcnnInputError(f"cannot read {path}: {exc.strerror or exc}.") from None
    error = _not_regular(path, mode)
    if error is not None:
        raise error


def _too_large(where: object, size: int, limit: int) -> TfcnnInputError:
    return TfcnnInputError(
        f"{where} is {size:,} bytes, more than the {limit:,} tfcnn reads from one file; "
        "split it, or give an expression matrix as Parquet."
    )


def read_bounded(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; :class:`TfcnnInputError` else.

    The file is opened without blocking and checked on its descriptor, so a named pipe
    (even one swapped in after a check) is refused instead of waiting for a writer, and
    a device (``/dev/zero``) instead of reading without end. Open errors (missing file,
    permission) are raised as :class:`OSError` for the caller to word.
    """
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        error = _not_regular(path, info.st_mode)
        if error is not None:
            raise error
        if info.st_size > max_bytes:
            raise _too_large(path, info.st_size, max_bytes)
        # read(n) allocates n bytes up front: ask for what stat says, plus one to see growth
        parts = [fh.read(info.st_size + 1)]
        total = len(parts[0])
        while total > info.st_size:  # the file grew while being read: go on, within the cap
            if total > max_bytes:
                raise _too_large(path, total, max_bytes)
            chunk = fh.read(min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def gunzip_bounded(
    where: object,
    raw: bytes,
    max_bytes: int = MAX_FILE_BYTES,
    max_ratio: float = MAX_GZIP_RATIO,
) -> bytes:
    """Decompress gzip ``raw`` (several members allowed), refusing a decompression bomb.

    The output may reach ``max_ratio`` times the input (at least
    :data:`GZIP_FREE_BYTES`), and never ``max_bytes``; decompression stops as soon as it
    would pass that, before the memory is used. Damaged data raises ``zlib.error`` or
    ``EOFError`` for the caller to word.
    """
    limit = int(min(max_bytes, max(GZIP_FREE_BYTES, max_ratio * len(raw))))
    parts: list[bytes] = []
    total = 0
    data = raw
    while data:
        member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        while True:
            chunk = member.decompress(data, limit + 1 - total)
            total += len(chunk)
            if total > limit:
                ratio = "" if limit >= max_bytes else f", {max_ratio:g} times its size"
                raise TfcnnInputError(
                    f"{where}: its gzip data expands to more than {limit:,} bytes (from "
                    f"{len(raw):,}{ratio}); refused as a possible decompression bomb. If the "
                    "file is genuine, decompress it yourself and give the plain file."
                )
            parts.append(chunk)
            data = member.unconsumed_tail
            if member.eof or not data:
                break
        if not member.eof:
            raise EOFError("compressed data ended before the end-of-stream marker")
        data = member.unused_data.lstrip(b"\x00")  # gzip allows zero padding after members
    return b"".join(parts)


def load_text(path: str | os.PathLike[str], advice: str = TABLE_ADVICE) -> str:
    """Read and decode a text file, gunzipping it first when its name ends in ``.gz``.

    Regular files only, bounded in size and gzip expansion (:func:`read_bounded`).
    """
    path = Path(path)
    check_file(path)
    try:
        raw = read_bounded(path)
    except OSError as exc:
        raise TfcnnInputError(f"cannot read {path}: {exc.strerror or exc}.") from None
    if path.name.lower().endswith(".gz"):
        try:
            raw = gunzip_bounded(path, raw)
        except (EOFError, zlib.error) as exc:
            raise TfcnnInputError(
                f"{path}: not a valid gzip file ({exc}); decompress or re-compress it, or "
                "remove the .gz extension if it is plain text."
            ) from exc
    return decode_text(path, raw, advice)


def read_maybe_gzip(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a file, gunzipped when they are gzip (by magic number, not by name).

    For instrument and GEO files (CEL, CDF, series matrix), often stored compressed
    under any name. Bounded like every read (:func:`read_bounded`, :func:`gunzip_bounded`).
    """
    try:
        raw = read_bounded(path, max_bytes)
    except OSError as exc:
        raise TfcnnInputError(f"cannot read {path}: {exc.strerror or exc}.") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gunzip_bounded(path, raw, max_bytes)
        except (EOFError, zlib.error) as exc:
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
