"""AGI locus codes <-> Affymetrix ATH1-121501 probesets, one-to-one links only.

A probeset measures one transcript; tfcnn attributes its signal to a gene only when the
link is unambiguous in both directions. Everything else is kept, by category, so reports
can say how much was left out and why:

* probesets annotated with several loci (``AT1G01010;AT1G01020`` in TAIR's file, or the
  same probeset on several lines): their signal cannot be attributed to one gene;
* loci measured by several (single-locus) probesets: no single profile represents them;
* control probesets (``is_control`` = yes) and probesets without a locus (``no_match``
  or empty): they measure no Arabidopsis gene.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import TfcnnInputError
from .ids import normalize_id
from .textio import load_text, text_lines

log = logging.getLogger(__name__)

LOCUS_COLUMN = "locus"
PROBESET_COLUMN = "array_element_name"
CONTROL_COLUMN = "is_control"
_TRUE_STRINGS = frozenset({"yes", "y", "1", "true", "t"})
_NO_LOCUS = frozenset({"", "no_match", "no match", "-", "na", "none"})


@dataclass(frozen=True)
class IdMap:
    """One-to-one AGI <-> probeset links plus what was excluded, by reason."""

    agi_to_probeset: dict[str, str]
    probeset_to_agi: dict[str, str]
    multi_locus_probesets: dict[str, tuple[str, ...]]
    multi_probeset_loci: dict[str, tuple[str, ...]]
    control_probesets: frozenset[str]
    unmatched_probesets: frozenset[str]
    source: str

    def translate(
        self, ids: Iterable[str], to: Literal["agi", "probeset"]
    ) -> tuple[dict[str, str], list[str]]:
        """Map ``ids`` into namespace ``to``: (one-to-one mapping, IDs that do not map).

        Input IDs are normalised with :func:`tfcnn.io.ids.normalize_id`; the mapping's keys
        are the normalised IDs, so it can be passed to ``ExpressionMatrix.rename``. The
        unmapped list keeps input order without repeats.
        """
        if to == "agi":
            table = self.probeset_to_agi
        elif to == "probeset":
            table = self.agi_to_probeset
        else:
            raise ValueError(f"translate: 'to' must be 'agi' or 'probeset', not {to!r}")
        mapping: dict[str, str] = {}
        unmapped: list[str] = []
        for raw in ids:
            key = normalize_id(raw)
            target = table.get(key)
            if target is not None:
                mapping[key] = target
            elif key not in mapping:
                unmapped.append(key)
        return mapping, list(dict.fromkeys(unmapped))

    def why_unmapped(self, identifier: str) -> str:
        """Say in words why ``identifier`` has no one-to-one link (for messages)."""
        key = normalize_id(identifier)
        if key in self.agi_to_probeset or key in self.probeset_to_agi:
            return "mapped one-to-one"
        if key in self.control_probesets:
            return "control probeset"
        if key in self.unmatched_probesets:
            return "probeset without a locus (no_match)"
        if key in self.multi_locus_probesets:
            return "probeset hits several loci: " + ", ".join(self.multi_locus_probesets[key])
        if key in self.multi_probeset_loci:
            return "locus hit by several probesets: " + ", ".join(self.multi_probeset_loci[key])
        return "not in the ID map"

    def summary(self) -> dict[str, int]:
        """Counts per category, for reports."""
        return {
            "one_to_one": len(self.agi_to_probeset),
            "multi_locus_probesets": len(self.multi_locus_probesets),
            "multi_probeset_loci": len(self.multi_probeset_loci),
            "control_probesets": len(self.control_probesets),
            "unmatched_probesets": len(self.unmatched_probesets),
        }


def _split(line: str, sep: str) -> list[str]:
    """Split one line; tab files split plainly (TAIR descriptions contain stray quotes)."""
    if sep == "\t":
        fields = line.split("\t")
    else:
        fields = next(csv.reader(io.StringIO(line)), [])
    return [f.strip().strip('"').strip() for f in fields]


def read_id_map(path: str | os.PathLike[str]) -> IdMap:
    """Read an AGI <-> ATH1 probeset map; keep only one-to-one links.

    Two formats, told apart by the header (tab or comma separated, any column order):

    * the two-column map, header ``locus`` and ``array_element_name``;
    * TAIR's ``affy_ATH1_array_elements-2010-12-20.txt``: a header with at least
      ``array_element_name``, ``is_control`` and ``locus`` (other columns ignored).

    Control probesets (``is_control`` yes/1/true) and probesets with locus ``no_match`` or
    empty are excluded. Probesets with several loci (``;``-joined, or the same probeset
    on several lines) are excluded, because a multi-locus probeset's signal cannot be
    attributed to one gene; their loci are not counted as hit by them. Loci hit by
    several single-locus probesets are excluded too. AGI codes are normalised
    (upper-cased); probeset names are trimmed, keeping their case. Repeated identical
    lines are harmless.
    """
    path = Path(path)
    text = load_text(path)
    lines = text_lines(text)
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        raise TfcnnInputError(
            f"{path} is empty; expected a header with the columns '{LOCUS_COLUMN}' and "
            f"'{PROBESET_COLUMN}' (and optionally '{CONTROL_COLUMN}')."
        )
    header_line = lines[header_at]
    sep = "\t" if "\t" in header_line else ","
    columns = [c.lower() for c in _split(header_line, sep)]
    if LOCUS_COLUMN not in columns or PROBESET_COLUMN not in columns:
        raise TfcnnInputError(
            f"{path}: unrecognised ID map header (line {header_at + 1}: {columns}). Expected "
            f"either the two-column map with columns '{LOCUS_COLUMN}' and "
            f"'{PROBESET_COLUMN}', or TAIR's affy_ATH1_array_elements file with at least "
            f"'{PROBESET_COLUMN}', '{CONTROL_COLUMN}' and '{LOCUS_COLUMN}' (tab or comma "
            "separated)."
        )
    i_locus = columns.index(LOCUS_COLUMN)
    i_probe = columns.index(PROBESET_COLUMN)
    i_control = columns.index(CONTROL_COLUMN) if CONTROL_COLUMN in columns else None
    needed = max(i_locus, i_probe, i_control or 0) + 1

    loci_of: dict[str, list[str]] = {}  # probeset -> its loci, in file order
    controls: set[str] = set()
    unmatched: set[str] = set()
    for line_no, line in enumerate(lines[header_at + 1 :], start=header_at + 2):
        if not line.strip():
            continue
        fields = _split(line, sep)
        if len(fields) < needed:
            raise TfcnnInputError(
                f"{path}: line {line_no} has {len(fields)} field(s) but the header needs "
                f"{needed}; fix or remove that line."
            )
        probeset = fields[i_probe]
        if not probeset:
            raise TfcnnInputError(
                f"{path}: line {line_no} has an empty {PROBESET_COLUMN}; fill it in or "
                "remove the line."
            )
        if i_control is not None and fields[i_control].lower() in _TRUE_STRINGS:
            controls.add(probeset)
            continue
        locus_field = fields[i_locus]
        if locus_field.lower() in _NO_LOCUS:
            unmatched.add(probeset)
            continue
        loci = loci_of.setdefault(probeset, [])
        for part in locus_field.split(";"):
            locus = normalize_id(part)
            if locus and locus.lower() not in _NO_LOCUS and locus not in loci:
                loci.append(locus)

    # Resolve probesets seen on several lines: a control anywhere is a control; a locus
    # anywhere beats 'no_match' elsewhere; a locus field of only separators is no locus.
    for probeset in controls:
        loci_of.pop(probeset, None)
    for probeset in [p for p, loci in loci_of.items() if not loci]:
        del loci_of[probeset]
        unmatched.add(probeset)
    unmatched -= set(loci_of) | controls

    multi_locus = {p: tuple(ls) for p, ls in loci_of.items() if len(ls) > 1}
    probesets_of: dict[str, list[str]] = {}
    for probeset, loci in loci_of.items():
        if len(loci) == 1:
            probesets_of.setdefault(loci[0], []).append(probeset)
    multi_probeset = {locus: tuple(ps) for locus, ps in probesets_of.items() if len(ps) > 1}
    agi_to_probeset = {locus: ps[0] for locus, ps in probesets_of.items() if len(ps) == 1}
    probeset_to_agi = {p: locus for locus, p in agi_to_probeset.items()}
    if not agi_to_probeset:
        raise TfcnnInputError(
            f"{path}: no one-to-one locus <-> probeset links found; check that it is an "
            "ATH1 probeset map."
        )
    id_map = IdMap(
        agi_to_probeset=agi_to_probeset,
        probeset_to_agi=probeset_to_agi,
        multi_locus_probesets=multi_locus,
        multi_probeset_loci=multi_probeset,
        control_probesets=frozenset(controls),
        unmatched_probesets=frozenset(unmatched),
        source=str(path),
    )
    log.debug("%s: %s", path, id_map.summary())
    return id_map
