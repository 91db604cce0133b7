"""Gene symbols for AGI codes, read from the gene names of the bundled AtRegNet table.

No package reachable from this project ships Arabidopsis gene aliases (TAIR's alias
file is not on PyPI or in Debian), and the other bundled files (PlantTFDB list, ATH1
map, nitrogen compendium, ConnecTF edges) carry no names. The AGRIS AtRegNet table
(``atregnet``, already bundled) names both genes of every row (``TFName`` beside
``TFLocus``, ``TargetName`` beside ``TargetLocus``): these names are the symbols, used
as AtRegNet's curators wrote them. Nothing is added or corrected by hand.

* A name is kept when its locus is a well-formed AGI code and the name itself is not an
  AGI code, not ``NA``/``N/A``/``-``, and holds no space (descriptions such as
  ``ZINC FINGER C3HC4``): 1,860 loci, 1,989 distinct names (case-insensitive).
* A locus with several names (``AtWRKY6``/``WRKY6``, ``JIN1``/``AtMYC2``) shows the one
  that names no other locus, then the one used in most rows.
* AtRegNet has errors: 23 names are given to more than one locus (``PIF4`` for
  AT2G43010 and AT2G20180). Such a name is refused as a query ID, naming every
  candidate, so that no gene is picked for the user.

Symbols label AGI codes on pages and in tables; they never decide which gene is scored
unless the user typed one and it names a single locus. See ``data/PROVENANCE.md``.
"""

from __future__ import annotations

import csv
import functools
import io
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import TfcnnInputError
from .datasets import resolve_path
from .ids import is_agi, normalize_id
from .textio import load_text

#: The bundled dataset the symbols are read from.
SOURCE = "atregnet"
SOURCE_NOTE = "gene names of the bundled AtRegNet table (AGRIS; Palaniswamy et al. 2006)"
_NOT_A_NAME = {"", "NA", "N/A", "-", "NONE", "?"}
_NAME_COLUMNS = (("tfname", "tflocus"), ("targetname", "targetlocus"))


@dataclass(frozen=True)
class SymbolTable:
    """AGI -> shown symbol, and every name (upper-case) -> the AGI codes it names."""

    symbol: Mapping[str, str]
    loci_of: Mapping[str, tuple[str, ...]]
    source: str

    def lookup(self, name: str) -> tuple[str, ...]:
        """The AGI codes ``name`` names (case-insensitive; empty when none)."""
        return self.loci_of.get(str(name).strip().upper(), ())


def read_symbol_table(path: str | os.PathLike[str]) -> SymbolTable:
    """Symbols from an AtRegNet-format table (columns TFName/TFLocus, TargetName/TargetLocus)."""
    text = load_text(path)
    rows = csv.reader(io.StringIO(text, newline=""), delimiter="\t")
    header = [h.strip().lower() for h in next(rows, [])]
    try:
        columns = [(header.index(n), header.index(loc)) for n, loc in _NAME_COLUMNS]
    except ValueError:
        raise TfcnnInputError(
            f"{path}: not an AtRegNet table (needs columns TFName, TFLocus, TargetName, "
            "TargetLocus)."
        ) from None
    uses: Counter[tuple[str, str]] = Counter()  # (AGI, name as written) -> rows
    for row in rows:
        for i_name, i_locus in columns:
            if max(i_name, i_locus) >= len(row):
                continue
            locus, name = normalize_id(row[i_locus]), row[i_name].strip()
            if is_agi(locus) and _is_symbol(name):
                uses[(locus, name)] += 1
    return _build(uses, str(path))


def _is_symbol(name: str) -> bool:
    """A gene name worth showing: not empty or NA, not an AGI code, no spaces."""
    return (
        name.upper() not in _NOT_A_NAME
        and not is_agi(normalize_id(name))
        and not any(c.isspace() for c in name)
    )


def _build(uses: Counter[tuple[str, str]], source: str) -> SymbolTable:
    """Pick each locus's shown symbol; index every name (see the module docstring)."""
    loci: defaultdict[str, set[str]] = defaultdict(set)
    for locus, name in uses:
        loci[name.upper()].add(locus)
    # Per locus and upper-case name: rows, and the spelling used most.
    per_locus: defaultdict[str, Counter[str]] = defaultdict(Counter)
    spelling: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for (locus, name), n in uses.items():
        per_locus[locus][name.upper()] += n
        spelling[(locus, name.upper())][name] += n
    symbol = {}
    for locus, names in per_locus.items():
        best = min(
            names,
            key=lambda u: (len(loci[u]) > 1, -names[u], len(u), u),  # noqa: B023 - used at once
        )
        written = spelling[(locus, best)]
        symbol[locus] = min(written, key=lambda w: (-written[w], w))  # noqa: B023
    loci_of = {name: tuple(sorted(found)) for name, found in loci.items()}
    return SymbolTable(dict(sorted(symbol.items())), loci_of, source)


@functools.lru_cache(maxsize=1)
def symbol_table() -> SymbolTable:
    """The bundled table (read once per process)."""
    return read_symbol_table(resolve_path(SOURCE))


def symbols() -> Mapping[str, str]:
    """AGI code -> gene symbol, for the loci the bundled AtRegNet names."""
    return symbol_table().symbol


def symbol_of(agi: str) -> str:
    """The symbol of an AGI code ('' when none is known)."""
    return symbol_table().symbol.get(normalize_id(agi), "")


def resolve(ids: Iterable[str], what: str = "gene ID") -> list[str]:
    """AGI codes for ``ids``: AGI codes (any case) or gene symbols (case-insensitive).

    A symbol naming several loci is refused, naming each candidate; so is an ID that is
    neither an AGI code nor a known symbol.
    """
    out = []
    for raw in ids:
        agi = symbol_to_agi(raw, what)
        if agi is None:
            raise TfcnnInputError(
                f"{what} {str(raw).strip()!r} is neither an AGI code nor a gene symbol known "
                f"to the {SOURCE_NOTE}; give its AGI code."
            )
        out.append(agi)
    return out


def symbol_to_agi(raw: str, what: str = "gene ID") -> str | None:
    """The AGI code of ``raw`` (an AGI code or a one-locus symbol); None when unknown.

    Raises :class:`TfcnnInputError` for a symbol that names several loci.
    """
    key = normalize_id(raw)
    if is_agi(key):
        return key
    found = symbol_table().lookup(key)
    if len(found) > 1:
        listed = ", ".join(f"{agi} ({symbol_of(agi) or 'no symbol'})" for agi in found)
        raise TfcnnInputError(
            f"{what} {key!r} is ambiguous: the {SOURCE_NOTE} give it to {len(found)} loci "
            f"({listed}); give the AGI code instead."
        )
    return found[0] if found else None
