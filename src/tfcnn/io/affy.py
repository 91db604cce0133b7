"""Affymetrix array files: CEL intensities (versions 3 and 4) and text (GC3.0) CDF layouts.

CEL files are read in version 3 (text) and 4 (binary), gzipped or not (by magic number);
CDF files in the text format. PM cells are those whose probe base (PBASE) pairs with
the target base (TBASE), MM cells those where they are equal. :mod:`tfcnn.io.rma`
computes expression from them.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TfcnnInputError
from .textio import read_maybe_gzip

_COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C"}
_CEL_NAME = re.compile(r"\.cel(\.gz)?$", re.IGNORECASE)


@dataclass(frozen=True)
class CelFile:
    """Intensities of one array; ``intensity[y * cols + x]`` is cell (x, y)."""

    path: Path
    version: int
    cols: int
    rows: int
    intensity: np.ndarray
    chip_type: str = ""


def _chip_type(header: str) -> str:
    m = re.search(r"([A-Za-z0-9_.\-]+)\.1sq", header)
    return m.group(1) if m else ""


#: Most cells a CEL file may declare (the largest Affymetrix arrays have about 7 million;
#: ATH1 has 506,944): a damaged or hostile header is refused before anything is allocated.
MAX_CELLS = 50_000_000


def _check_chip_size(path: Path, cols: int, rows: int, n_cells: int | None = None) -> None:
    """Refuse a chip size that is not positive, not Cols x Rows, or beyond :data:`MAX_CELLS`."""
    if cols <= 0 or rows <= 0 or cols * rows > MAX_CELLS:
        raise TfcnnInputError(
            f"{path}: a {cols:,} x {rows:,} chip is not a real array (at most "
            f"{MAX_CELLS:,} cells); the file is damaged."
        )
    if n_cells is not None and n_cells != cols * rows:
        raise TfcnnInputError(
            f"{path}: {n_cells:,} cells declared for a {cols:,} x {rows:,} chip; the file is "
            "damaged."
        )


def read_cel(path: str | os.PathLike[str]) -> CelFile:
    """Read a CEL file: version 3 (text) or 4 (binary), gzipped or not.

    Declared sizes (cells, header lengths) are checked against the file's own size and
    :data:`MAX_CELLS` before anything is allocated; the file is read by
    :func:`tfcnn.io.textio.read_maybe_gzip` (regular files only, bounded gzip).
    """
    path = Path(path)
    data = read_maybe_gzip(path)
    if len(data) >= 8 and struct.unpack_from("<i", data, 0)[0] == 64:
        return _read_cel_v4(path, data)
    if data.lstrip().startswith(b"[CEL]"):
        return _read_cel_v3(path, data)
    if data[:1] == b";":
        raise TfcnnInputError(
            f"{path} is a Command Console (generic, version 1) CEL file; tfcnn reads CEL "
            "versions 3 (text) and 4 (binary); convert it to one of those with Affymetrix "
            "Power Tools."
        )
    raise TfcnnInputError(f"{path} is not a CEL file (no [CEL] section, no version-4 magic).")


def _read_cel_v3(path: Path, data: bytes) -> CelFile:
    lines = data.decode("latin-1").split("\n")
    header: dict[str, str] = {}
    section = ""
    intensity = None
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].upper()
            if section == "INTENSITY":
                intensity, i = _cel_v3_intensity(path, lines, i, header)
                section = ""
            continue
        if section in ("CEL", "HEADER") and "=" in line:
            k, v = line.split("=", 1)
            header[k.strip()] = v.strip()
    if header.get("Version", "3") != "3":
        raise TfcnnInputError(f"{path}: text CEL version {header['Version']!r}; need 3.")
    if intensity is None:
        raise TfcnnInputError(f"{path}: no [INTENSITY] section; the file may be truncated.")
    cols, rows = int(header["Cols"]), int(header["Rows"])
    return CelFile(path, 3, cols, rows, intensity, _chip_type(header.get("DatHeader", "")))


def _cel_v3_intensity(
    path: Path, lines: list[str], start: int, header: dict[str, str]
) -> tuple[np.ndarray, int]:
    """The [INTENSITY] section from line index ``start``: (intensity by cell, next index)."""
    try:
        cols, rows = int(header["Cols"]), int(header["Rows"])
    except (KeyError, ValueError):
        raise TfcnnInputError(
            f"{path}: header has no valid Cols/Rows before [INTENSITY]."
        ) from None
    _check_chip_size(path, cols, rows)
    n_cells = None
    i = start
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if line.startswith("NumberCells="):
            value = line.split("=", 1)[1].strip()
            if not value.isdigit():
                raise TfcnnInputError(
                    f"{path}, line {i}: NumberCells={value[:40]!r} is not a whole number; the "
                    "file is damaged."
                )
            n_cells = int(value)
        elif line.startswith("CellHeader="):
            break
    if n_cells is None or n_cells != cols * rows:
        raise TfcnnInputError(
            f"{path}: [INTENSITY] NumberCells={n_cells} does not match Cols x Rows = {cols * rows}."
        )
    if i + n_cells > len(lines):
        raise TfcnnInputError(
            f"{path}: [INTENSITY] declares {n_cells:,} cells but the file has "
            f"{max(0, len(lines) - i):,} more lines; the file is truncated. Download it again."
        )
    body = lines[i : i + n_cells]
    try:
        table = np.loadtxt(body, dtype=np.float64, usecols=(0, 1, 2), ndmin=2)
    except ValueError:
        line_no, why = _first_bad_row(body)
        raise TfcnnInputError(
            f"{path}, line {i + line_no}: unreadable [INTENSITY] row ({why}); the file may be "
            "truncated or damaged."
        ) from None
    if table.shape[0] != n_cells:
        raise TfcnnInputError(f"{path}: {table.shape[0]} intensity rows, expected {n_cells}.")
    return _cel_v3_cells(path, table, cols, rows, i), i + n_cells


def _first_bad_row(body: list[str]) -> tuple[int, str]:
    """(1-based row, why) of the first [INTENSITY] row without three numbers."""
    for k, row in enumerate(body, start=1):
        fields = row.split()
        try:
            [float(f) for f in fields[:3]]
        except ValueError as exc:
            return k, str(exc)
        if len(fields) < 3:
            return k, f"{len(fields)} field(s), need X, Y and MEAN"
    return len(body), "not a table of numbers"


def _cel_v3_cells(path: Path, table: np.ndarray, cols: int, rows: int, first: int) -> np.ndarray:
    """Intensity by cell index from [INTENSITY] rows (``first``: index of the first line)."""
    line = lambda k: first + int(k) + 1  # noqa: E731 - 1-based line of row k
    bad = np.flatnonzero(~np.isfinite(table).all(axis=1))
    if bad.size:
        k = bad[0]
        raise TfcnnInputError(
            f"{path}, line {line(k)}: cell ({table[k, 0]:g}, {table[k, 1]:g}) has intensity "
            f"{table[k, 2]:g}, not a finite number ({bad.size:,} such row(s)); the file is "
            "damaged. Download or export it again."
        )
    x, y = table[:, 0], table[:, 1]
    outside = np.flatnonzero(
        (x < 0) | (y < 0) | (x >= cols) | (y >= rows) | (x % 1 != 0) | (y % 1 != 0)
    )
    if outside.size:
        k = outside[0]
        raise TfcnnInputError(
            f"{path}, line {line(k)}: cell coordinates ({x[k]:g}, {y[k]:g}) are outside the "
            f"{cols} x {rows} chip."
        )
    idx = y.astype(np.int64) * cols + x.astype(np.int64)
    counts = np.bincount(idx, minlength=cols * rows)
    repeated = np.flatnonzero(counts > 1)
    if repeated.size:
        a, b = np.flatnonzero(idx == repeated[0])[:2]
        raise TfcnnInputError(
            f"{path}: cell ({x[a]:g}, {y[a]:g}) appears twice (lines {line(a)} and {line(b)}) "
            "and some cells have no intensity; the file is damaged."
        )
    out = np.empty(cols * rows)
    out[idx] = table[:, 2]
    return out


def _read_cel_v4(path: Path, data: bytes) -> CelFile:
    try:
        magic, version, cols, rows, n_cells, hlen = struct.unpack_from("<6i", data, 0)
        if not 0 <= hlen <= len(data):
            raise TfcnnInputError(
                f"{path}: version-4 header length {hlen:,} does not fit the file's "
                f"{len(data):,} bytes; the file is damaged."
            )
        off = 24
        header = data[off : off + hlen].decode("latin-1")
        off += hlen
        for what in ("algorithm name", "algorithm parameters"):
            (n,) = struct.unpack_from("<i", data, off)
            if not 0 <= n <= len(data) - off:
                raise TfcnnInputError(
                    f"{path}: version-4 {what} length {n:,} does not fit the file; the file is "
                    "damaged."
                )
            off += 4 + n
        off += 4 + 4 + 4 + 4  # cell margin, outliers, masked, sub-grids
    except struct.error as exc:
        raise TfcnnInputError(f"{path}: truncated version-4 CEL header.") from exc
    if version != 4:
        raise TfcnnInputError(f"{path}: binary CEL version {version}; need 4.")
    _check_chip_size(path, cols, rows, n_cells)
    cell = np.dtype([("mean", "<f4"), ("stdv", "<f4"), ("npixels", "<i2")])
    if len(data) < off + n_cells * cell.itemsize:
        raise TfcnnInputError(
            f"{path}: truncated version-4 CEL file ({len(data):,} bytes, needs "
            f"{off + n_cells * cell.itemsize:,}); download it again."
        )
    cells = np.frombuffer(data, dtype=cell, count=n_cells, offset=off)
    return CelFile(path, 4, cols, rows, cells["mean"].astype(np.float64), _chip_type(header))


@dataclass(frozen=True)
class Cdf:
    """Probe layout: chip size, and per probeset the PM cell indices (``y * cols + x``)."""

    name: str
    cols: int
    rows: int
    probesets: list[str]
    pm: list[np.ndarray]


def read_cdf(path: str | os.PathLike[str]) -> Cdf:
    """Read a text (GC3.0) CDF: every unit's PM cells, in file order of the units."""
    path = Path(path)
    data = read_maybe_gzip(path)
    if data[:4] == b"\x43\x00\x00\x00" or data[:1] == b";":
        raise TfcnnInputError(
            f"{path} is a binary CDF; tfcnn reads the text (GC3.0) format. Convert it with "
            "Affymetrix Power Tools or use the text CDF of the array's library files."
        )
    text = data.decode("latin-1")
    if not text.lstrip().startswith("[CDF]"):
        raise TfcnnInputError(f"{path} is not a CDF file (no [CDF] section).")
    chip: dict[str, str] = {}
    units: dict[str, tuple[str, list[tuple[int, int]]]] = {}
    order: list[str] = []
    section = ""
    columns: list[str] = []
    n_units = 0
    block_cells: dict[str, list[int]] = {}  # block -> [NumCells announced, cells read]
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("["):
            section = line.strip("[]")
            columns = []
            n_units += bool(re.fullmatch(r"Unit\d+", section))
            continue
        key, _, value = line.partition("=")
        if section == "Chip":
            chip[key] = value
            continue
        m = re.fullmatch(r"(Unit\d+)_Block\d+", section)
        if not m:
            continue
        unit = m.group(1)
        counts = block_cells.setdefault(section, [0, 0])
        if key == "NumCells" and value.strip().isdigit():
            counts[0] = int(value)
        elif re.fullmatch(r"Cell\d+", key):
            counts[1] += 1
        if key == "Name":
            if unit not in units:
                units[unit] = (value, [])
                order.append(unit)
        elif key == "CellHeader":
            columns = value.split("\t")
        elif key.startswith("Cell"):
            fields = value.split("\t")
            try:
                f = dict(zip(columns, fields, strict=False))
                x, y = int(f["X"]), int(f["Y"])
                pbase, tbase = f["PBASE"].upper(), f["TBASE"].upper()
            except (KeyError, ValueError) as exc:
                raise TfcnnInputError(
                    f"{path}, line {lineno}: unreadable cell in [{section}] ({exc}); the "
                    "file may be truncated or damaged."
                ) from exc
            if _COMPLEMENT.get(tbase) == pbase:
                if unit not in units:
                    raise TfcnnInputError(f"{path}, line {lineno}: cell before the block's Name.")
                units[unit][1].append((y, x))
    try:
        cols, rows = int(chip["Cols"]), int(chip["Rows"])
    except (KeyError, ValueError) as exc:
        raise TfcnnInputError(f"{path}: [Chip] section has no valid Cols/Rows.") from exc
    announced = chip.get("NumberOfUnits", "").strip()
    short = [b for b, (want, got) in block_cells.items() if got < want]
    if (announced.isdigit() and n_units < int(announced)) or short:
        where = f"[{short[0]}] has fewer cells than its NumCells" if short else ""
        where = where or f"{n_units} units, but its [Chip] section announces {announced}"
        raise TfcnnInputError(
            f"{path}: {where}; the file is truncated. Copy or download the CDF again."
        )
    names, pm = [], []
    for unit in order:
        name, cells = units[unit]
        if not cells:
            continue
        idx = np.array([y * cols + x for y, x in cells], dtype=np.int64)
        if idx.min() < 0 or idx.max() >= cols * rows:
            raise TfcnnInputError(f"{path}: [{unit}] has cells outside the {cols} x {rows} chip.")
        names.append(name)
        pm.append(idx)
    if not names:
        raise TfcnnInputError(f"{path}: no probeset with PM cells was found.")
    return Cdf(chip.get("Name", ""), cols, rows, names, pm)


def cel_sample_name(path: str | os.PathLike[str]) -> str:
    """Sample name from a CEL file name: ``GSM131321.CEL.gz`` -> ``GSM131321``."""
    return re.sub(r"(\.cel)?(\.gz)?$", "", Path(path).name, flags=re.IGNORECASE)


# -- sample sheet order ----------------------------------------------------------------------


def cel_files_in_sheet_order(
    cel_dir: str | os.PathLike[str], sheet: str | os.PathLike[str]
) -> tuple[list[Path], list[str], list[str]]:
    """CEL files of ``cel_dir`` in the sample sheet's order: (files, GSM ids, missing ids).

    A sheet row's file is ``GSMxxxx.CEL[.gz]`` (any case) or any CEL file whose name
    starts with the GSM id followed by a non-digit (GEO's ``GSM131321_xyz.CEL.gz``).
    """
    from .fetch import read_sample_sheet

    folder = Path(cel_dir)
    if not folder.is_dir():
        raise TfcnnInputError(f"{folder} is not a folder of CEL files.")
    by_id: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if not _CEL_NAME.search(f.name):
            continue
        m = re.match(r"(GSM\d+)(?!\d)", f.name, re.IGNORECASE)
        if m:
            by_id.setdefault(m.group(1).upper(), f)
    files: list[Path] = []
    ids: list[str] = []
    missing: list[str] = []
    for row in read_sample_sheet(sheet).rows:
        cel = by_id.get(row.sample_id.upper())
        if cel is None:
            missing.append(row.sample_id)
        else:
            files.append(cel)
            ids.append(row.sample_id)
    return files, ids, missing


def cel_files_in_folder(cel_dir: str | os.PathLike[str]) -> tuple[list[Path], list[str]]:
    """The CEL files of ``cel_dir`` (``.CEL[.gz]``, any case), sorted by name; sample names."""
    folder = Path(cel_dir)
    if not folder.is_dir():
        raise TfcnnInputError(f"{folder} is not a folder of CEL files.")
    files = sorted(f for f in folder.iterdir() if _CEL_NAME.search(f.name))
    return files, [cel_sample_name(f) for f in files]
