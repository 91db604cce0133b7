"""TF -> target interaction tables: AtRegNet and plain pair tables.

Two formats are read:

* AtRegNet (AGRIS): tab separated, Latin-1 bytes, quoted fields that contain tabs
  and newlines. It is parsed with :mod:`csv` (never by splitting lines) and every
  record keeps the physical line it starts on, so messages point at the right line.
  Rows are kept by ``Confirmation`` and ``TargetType`` compared trimmed and
  case-insensitively ("Confirmed", "confirmed", "Direct ", "direct" all match);
  "Directly" and "Indirect" do not match "direct".
* Edge tables: TSV or CSV (optionally ``.gz``), recognised by their header (see
  :data:`LAYOUTS`: tfcnn's own ``tf,target[,evidence]``, decoupler/CollecTRI
  ``source,target[,weight|mor]``, arboreto/pySCENIC ``TF,target,importance``, GENIE3
  ``regulatoryGene,targetGene,weight``, BEELINE ``Gene1,Gene2[,Type]``) or header-less
  (DREAM5 gold standards ``G1<TAB>G2<TAB>1/0``: the first row is two gene IDs). A 0/1 or
  boolean label column keeps only the 1 rows; the 0 rows are kept apart as explicit
  non-edges (:attr:`Interactions.negatives`). Signs (``Type`` +/-, ``mor``, a +/-1
  ``weight``) are kept in a ``sign`` column, weights in ``weight``. A header that names
  no known layout is refused with the list of layouts.

IDs are normalised with :func:`tfcnn.io.ids.normalize_id`. Pairs are de-duplicated;
self-pairs (tf == target) are kept here: the pair-building stage drops and reports
them, so the counts here match the sources.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import TfcnnInputError
from .ids import is_agi, is_probeset, looks_like_agi, normalize_id
from .textio import load_text

log = logging.getLogger(__name__)

#: AtRegNet columns the reader needs (matched trimmed and case-insensitively).
ATREGNET_REQUIRED = ("TFLocus", "TargetLocus", "TargetType", "Confirmation")
#: Header names recognised for the TF and target columns of a plain table (any case).
TF_COLUMN_NAMES = ("tf", "regulator", "source", "tf_locus", "tflocus", "regulatorygene", "gene1")
TARGET_COLUMN_NAMES = ("target", "gene", "target_locus", "targetlocus", "targetgene", "gene2")
EVIDENCE_COLUMN = "evidence"
#: Optional columns (any case): an edge weight, a sign (+/-, or a signed number), a 0/1 label.
WEIGHT_COLUMN_NAMES = ("weight", "importance", "score", "edgeweight")
SIGN_COLUMN_NAMES = ("type", "mor", "sign", "mode_of_regulation")
LABEL_COLUMN_NAMES = ("label", "is_edge", "edge", "gold_standard")
#: The edge-table layouts read by :func:`read_interactions`, as listed in messages.
LAYOUTS = (
    "tf,target[,evidence] (tfcnn)",
    "source,target[,weight][,mor] (decoupler, CollecTRI)",
    "TF,target,importance (arboreto, pySCENIC adjacencies)",
    "regulatoryGene,targetGene,weight (GENIE3)",
    "Gene1,Gene2[,Type] (BEELINE refNetwork.csv)",
    "no header: TF<TAB>target[<TAB>1/0 label or weight] (DREAM5 gold standard)",
    "the AGRIS AtRegNet table",
)
_TRUE_LABELS = frozenset({"1", "true", "t", "yes"})
_FALSE_LABELS = frozenset({"0", "false", "f", "no"})
_SIGNS = {"+": 1, "-": -1, "activation": 1, "repression": -1, "1": 1, "-1": -1}
#: Field values that mean "no ID" (compared upper-cased, after trimming).
MISSING_IDS = frozenset({"", "NA", "N/A", "NAN", "NONE", "NULL", "-"})
#: A record spanning more physical lines than this means a quote was never closed.
MAX_RECORD_LINES = 50
_LOCUS_SEPARATORS = re.compile(r"[/;,]")
#: Distinct Confirmation/TargetType values quoted in an error, at most.
_MAX_VALUES = 10


@dataclass(frozen=True)
class SkippedRow:
    """A source row that passed the filters but could not give a clean pair."""

    line: int  # 1-based physical line where the record starts in the file
    reason: str  # e.g. "TF complex (slash-joined loci)", "malformed AGI code"
    tf: str  # raw field text
    target: str  # raw field text


# eq=False: the fields hold DataFrames, which have no truth value; compare .as_set().
@dataclass(frozen=True, eq=False)
class Interactions:
    """Distinct TF -> target pairs read from one source, with what was left out.

    ``pairs`` has one row per distinct (tf, target): columns ``tf``, ``target``
    (normalised IDs), ``line`` (first line, or position for :func:`from_pairs`, where
    the pair was seen) and, when the source has them, ``evidence`` (all values seen for
    the pair, sorted and ';'-joined), ``sign`` (+1 activating, -1 repressing, 0 both
    signs seen or none given) and ``weight`` (the largest given for the pair).

    ``negatives`` holds the distinct pairs a 0/1 label column marks 0 (explicit
    non-edges, DREAM5 style; columns ``tf``, ``target``, ``line``), without those also
    marked 1; ``None`` when the source has no label column. They are not in ``pairs``
    and not counted in ``n_records``.

    ``n_records`` counts the data records that passed the source's row filter
    (AtRegNet: the Confirmation / TargetType filter; plain tables: the evidence filter,
    if any), including those then skipped for bad IDs, so
    ``n_records == len(pairs) + n_duplicates + len(skipped)``. ``n_duplicates``
    counts kept records that repeated an already-seen pair. ``records`` holds the
    record-level rows (tf, target, line, evidence) when the source has evidence, so
    :meth:`filter_evidence` can recount exactly; it is ``None`` otherwise.
    """

    pairs: pd.DataFrame
    source: str
    skipped: tuple[SkippedRow, ...] = ()
    n_records: int = 0
    n_duplicates: int = 0
    records: pd.DataFrame | None = field(default=None, repr=False)
    negatives: pd.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        missing = {"tf", "target", "line"} - set(self.pairs.columns)
        if missing:
            raise ValueError(f"Interactions.pairs lacks column(s) {sorted(missing)}")

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return (
            f"Interactions(source={self.source!r}, pairs={len(self)}, tfs={len(self.tfs)}, "
            f"skipped={len(self.skipped)})"
        )

    @property
    def tfs(self) -> tuple[str, ...]:
        """Distinct TFs, sorted."""
        return tuple(sorted(set(self.pairs["tf"])))

    @property
    def targets(self) -> tuple[str, ...]:
        """Distinct targets, sorted."""
        return tuple(sorted(set(self.pairs["target"])))

    @property
    def has_evidence(self) -> bool:
        """True when the source had an evidence column."""
        return EVIDENCE_COLUMN in self.pairs.columns

    @property
    def has_sign(self) -> bool:
        """True when the source gave a sign (activating / repressing) per edge."""
        return "sign" in self.pairs.columns

    @property
    def n_self_pairs(self) -> int:
        """Pairs whose TF is its own target (kept here; dropped when building pairs)."""
        return int((self.pairs["tf"] == self.pairs["target"]).sum())

    def as_set(self) -> frozenset[tuple[str, str]]:
        """The pairs as a frozenset of (tf, target)."""
        return frozenset(zip(self.pairs["tf"], self.pairs["target"], strict=True))

    def filter_evidence(self, values: Sequence[str]) -> Interactions:
        """Keep only records whose evidence is one of ``values`` (exact, case-sensitive).

        Counts, first lines and the joined evidence are recomputed from the records,
        so the result equals reading the source with the same evidence filter.
        """
        if self.records is None or not self.has_evidence:
            raise TfcnnInputError(
                f"{self.source}: the table has no '{EVIDENCE_COLUMN}' column, so it cannot "
                "be filtered by evidence; drop the evidence filter or add the column."
            )
        if isinstance(values, str):
            values = [values]
        wanted = [str(v) for v in values]
        if not wanted:
            raise TfcnnInputError(
                f"{self.source}: empty evidence filter; name at least one evidence value."
            )
        available = sorted(v for v in set(self.records["evidence"]) if v)
        absent = [v for v in wanted if v not in available]
        keep = self.records[self.records["evidence"].isin(wanted)]
        if keep.empty:
            raise TfcnnInputError(
                f"{self.source}: no row has evidence {', '.join(map(repr, wanted))}; "
                f"values in the file (case-sensitive): {', '.join(available) or 'none'}."
            )
        if absent:
            log.warning(
                "%s: evidence value(s) %s not found (values in the file: %s)",
                self.source,
                ", ".join(map(repr, absent)),
                ", ".join(available),
            )
        kept = [_record(*row) for row in keep.itertuples(index=False, name=None)]
        return _build(
            kept,
            self.source,
            self.skipped,
            has_evidence=True,
            has_sign=self.has_sign,
            has_weight="weight" in self.pairs.columns,
            negatives=self.negatives,
        )

    def summary(self) -> dict[str, Any]:
        """Counts for reports: pairs, TFs, targets, the largest TF and its share, skips."""
        counts = self.pairs["tf"].value_counts()
        top_tf: str | None = None
        top_n = 0
        if len(counts):
            top_n = int(counts.max())
            top_tf = min(str(tf) for tf in counts.index[counts == top_n])
        out: dict[str, Any] = {
            "source": self.source,
            "pairs": len(self),
            "tfs": len(self.tfs),
            "targets": len(self.targets),
            "self_pairs": self.n_self_pairs,
            "records": self.n_records,
            "duplicates": self.n_duplicates,
            "top_tf": top_tf,
            "top_tf_pairs": top_n,
            "top_tf_share": top_n / len(self) if len(self) else 0.0,
            "skipped": dict(Counter(s.reason for s in self.skipped)),
        }
        if self.has_evidence:
            per_value: Counter[str] = Counter()
            for joined in self.pairs[EVIDENCE_COLUMN]:
                per_value.update(v for v in joined.split(";") if v)
            out["evidence"] = dict(sorted(per_value.items()))
        if self.has_sign:
            signs = self.pairs["sign"]
            out["signs"] = {
                "activating": int((signs == 1).sum()),
                "repressing": int((signs == -1).sum()),
                "both_or_unknown": int((signs == 0).sum()),
            }
        if self.negatives is not None:
            out["explicit_negatives"] = len(self.negatives)
        return out

    def negatives_as_interactions(self) -> Interactions:
        """The explicit non-edges (label 0) as :class:`Interactions` of their own.

        For use as a negative set, or with ``exclude`` so they are never drawn as
        random negatives either; an error when the source had no label column.
        """
        if self.negatives is None:
            raise TfcnnInputError(
                f"{self.source} has no 0/1 label column, so it lists no explicit non-edges."
            )
        kept = [
            _record(tf, target, line)
            for tf, target, line in self.negatives.itertuples(index=False, name=None)
        ]
        return _build(kept, f"{self.source} (label 0 rows)", (), has_evidence=False)


# --------------------------------------------------------------------------- readers


def read_atregnet(
    path: str | os.PathLike[str], confirmation: str = "confirmed", target_type: str = "direct"
) -> Interactions:
    """Read an AGRIS AtRegNet table, keeping rows with the given confirmation and type.

    ``Confirmation`` and ``TargetType`` are compared trimmed and case-insensitively.
    A kept row whose TFLocus or TargetLocus is not one well-formed AGI code is skipped
    and listed in ``skipped`` (with its line); TF complexes written as slash-joined
    loci ("AT3G27920/AT5G41315") are skipped, not expanded into one pair per locus,
    because the complex, not each member alone, is what was shown to bind.
    """
    path, text = _load(path)
    return _parse_atregnet(text, str(path), confirmation, target_type)


def read_pairs_table(
    path: str | os.PathLike[str], evidence: Sequence[str] | None = None
) -> Interactions:
    """Read a TSV/CSV table of TF -> target pairs, with or without a header.

    With a header, the TF column is the first of tf/regulator/source/tf_locus/tflocus
    and the target column the first of target/gene/target_locus/targetlocus found (any
    case); an ``evidence`` column is kept. Without a header (the first row is two gene
    IDs, i.e. both fields contain a digit) the first two columns are tf and target.
    ``evidence`` keeps only rows with one of those exact evidence values.
    """
    path, text = _load(path)
    return _parse_pairs(text, path, evidence)


def read_interactions(
    path: str | os.PathLike[str], evidence: Sequence[str] | None = None
) -> Interactions:
    """Read interactions, choosing the format from the header.

    A header with TFLocus and TargetLocus means AtRegNet (confirmed, direct rows);
    anything else is read as a plain pair table.
    """
    path, text = _load(path)
    if _is_atregnet_header(text):
        if evidence is not None:
            raise TfcnnInputError(
                f"{path}: this is an AtRegNet table, which has no evidence column; drop the "
                "evidence filter (AtRegNet rows are filtered by Confirmation and TargetType)."
            )
        return _parse_atregnet(text, str(path), "confirmed", "direct")
    return _parse_pairs(text, path, evidence)


def from_pairs(pairs: Iterable[tuple[str, str]], source: str = "<pairs>") -> Interactions:
    """Build :class:`Interactions` from (tf, target) tuples; ``line`` is the 1-based position."""
    kept: list[_Record] = []
    for i, item in enumerate(pairs, start=1):
        if isinstance(item, str | bytes) or not _is_pair(item):
            raise TfcnnInputError(
                f"{source}, pair {i}: expected a (tf, target) pair, got {item!r}."
            )
        tf, target = (normalize_id(x) for x in item)
        for role, value in (("TF", tf), ("target", target)):
            if value.upper() in MISSING_IDS:
                raise TfcnnInputError(
                    f"{source}, pair {i}: empty {role} ID in {item!r}; give both IDs."
                )
        kept.append(_record(tf, target, i))
    return _build(kept, source, (), has_evidence=False)


# --------------------------------------------------------------------------- parsing


def _is_pair(item: object) -> bool:
    try:
        return len(item) == 2  # type: ignore[arg-type]
    except TypeError:
        return False


def _load(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """Check the path and return it with the decoded text (see :mod:`tfcnn.io.textio`)."""
    path = Path(path)
    text = load_text(path)
    if not text.strip():
        raise TfcnnInputError(f"{path}: the file is empty; give a table of TF -> target pairs.")
    return path, text


def _iter_records(text: str, delimiter: str, name: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (first physical line, fields) for each record, quotes handled by csv."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    prev = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise TfcnnInputError(
                f'{name}, line {prev + 1}: cannot parse the record ({exc}); a quote (") '
                "there is probably not closed, or the file is not a text table."
            ) from exc
        start = prev + 1
        span = reader.line_num - prev
        if span > MAX_RECORD_LINES:
            raise TfcnnInputError(
                f'{name}, line {start}: one record spans {span} lines, so a quote (") opened '
                "there is probably never closed; fix or remove that quote."
            )
        prev = reader.line_num
        yield start, record


def _is_blank(record: list[str]) -> bool:
    return all(not f.strip() for f in record)


def _first_record(
    records: Iterator[tuple[int, list[str]]], name: str, skip_comments: bool = False
) -> tuple[int, list[str]]:
    for line, record in records:
        if _is_blank(record) or (skip_comments and record[0].lstrip().startswith("#")):
            continue
        return line, record
    raise TfcnnInputError(f"{name}: the file is empty; give a table of TF -> target pairs.")


def _is_atregnet_header(text: str) -> bool:
    """True when the first non-blank line has TFLocus and TargetLocus tab columns.

    Plain split, not csv: a quoted CSV header must not trip the tab parser.
    """
    first = next((ln for ln in io.StringIO(text) if ln.strip()), "")
    names = {h.strip().strip('"').lower() for h in first.split("\t")}
    return "tflocus" in names and "targetlocus" in names


def _locus_problem(raw: str, role: str) -> str | None:
    """Why an AtRegNet locus field is not one well-formed AGI code (None when it is)."""
    text = raw.strip()
    if not text:
        return f"no {role} (empty field)"
    if text.upper() in MISSING_IDS:
        return f"no {role} (N/A)"
    if _LOCUS_SEPARATORS.search(text):
        if "/" in text and role == "TF":
            return "TF complex (slash-joined loci)"
        return f"several {role} loci in one field"
    if is_agi(normalize_id(text)):
        return None
    if looks_like_agi(text):
        return "malformed AGI code"
    return "not an AGI code"


def _warn_skipped(name: str, skipped: Sequence[SkippedRow], what: str) -> None:
    if not skipped:
        return
    by_reason: dict[str, list[int]] = {}
    for row in skipped:
        by_reason.setdefault(row.reason, []).append(row.line)
    parts = []
    for reason, lines in by_reason.items():
        shown = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
        parts.append(f"{reason}: {len(lines)} (line{'s' if len(lines) > 1 else ''} {shown})")
    log.warning(
        "%s: skipped %d %s row(s) whose TF or target is not one well-formed AGI code: %s",
        name,
        len(skipped),
        what,
        "; ".join(parts),
    )


def _parse_atregnet(text: str, name: str, confirmation: str, target_type: str) -> Interactions:
    records = _iter_records(text, "\t", name)
    header_line, header = _first_record(records, name)
    columns: dict[str, int] = {}
    for i, h in enumerate(header):
        columns.setdefault(h.strip().lower(), i)
    missing = [c for c in ATREGNET_REQUIRED if c.lower() not in columns]
    if missing:
        raise TfcnnInputError(
            f"{name}: not an AtRegNet table: the header (line {header_line}) lacks column(s) "
            f"{', '.join(missing)} (found: {', '.join(h.strip() for h in header)}). Give the "
            "AGRIS AtRegNet.tsv with its header row, or a plain tf/target table."
        )
    i_tf, i_target, i_type, i_conf = (columns[c.lower()] for c in ATREGNET_REQUIRED)
    need = max(i_tf, i_target, i_type, i_conf) + 1
    want_conf, want_type = confirmation.strip().lower(), target_type.strip().lower()
    what = f"{want_conf} {want_type}"

    kept: list[_Record] = []
    skipped: list[SkippedRow] = []
    seen: Counter[tuple[str, str]] = Counter()
    longer: list[int] = []  # rows with extra non-empty fields: columns shifted right?
    for line, record in records:
        if _is_blank(record):
            continue
        if len(record) < need:
            raise TfcnnInputError(
                f"{name}, line {line}: {len(record)} field(s) but the header has {len(header)}; "
                "the row is cut short or its columns are shifted: fix or remove that row."
            )
        if len(record) > len(header) and any(f.strip() for f in record[len(header) :]):
            longer.append(line)
        conf, ttype = record[i_conf].strip().lower(), record[i_type].strip().lower()
        seen[(conf, ttype)] += 1
        if conf != want_conf or ttype != want_type:
            continue
        tf_raw, target_raw = record[i_tf], record[i_target]
        reason = _locus_problem(tf_raw, "TF") or _locus_problem(target_raw, "target")
        if reason:
            skipped.append(SkippedRow(line, reason, tf_raw, target_raw))
            continue
        kept.append(_record(normalize_id(tf_raw), normalize_id(target_raw), line))

    shifted = ""
    if longer:
        shown = ", ".join(map(str, longer[:5])) + (", ..." if len(longer) > 5 else "")
        shifted = (
            f"{len(longer)} row(s) have more fields than the header's {len(header)} (line"
            f"{'s' if len(longer) > 1 else ''} {shown}): their columns are probably shifted "
            "(a tab inside a field?), so their TFLocus/TargetLocus/TargetType/Confirmation "
            "cannot be trusted"
        )
    if not kept:
        present = sorted(seen)
        listed = ", ".join(f"{c!r}/{t!r}" for c, t in present[:_MAX_VALUES]) or "none"
        if len(present) > _MAX_VALUES:
            listed += f" and {len(present) - _MAX_VALUES} more"
        raise TfcnnInputError(
            f"{name}: no usable row with Confirmation {want_conf!r} and TargetType "
            f"{want_type!r} ({len(skipped)} such row(s) had bad IDs); Confirmation/TargetType "
            f"values present (trimmed, lower-cased): {listed}."
            + (f" {shifted[0].upper()}{shifted[1:]}; fix those rows." if shifted else "")
        )
    if shifted:
        log.warning("%s: %s; check those rows.", name, shifted)
    _warn_skipped(name, skipped, what)
    return _build(kept, name, skipped, has_evidence=False)


def _guess_delimiter(path: Path, text: str, name: str) -> str:
    """Tab or comma: from the extension when the first row agrees, else from that row."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    ext = suffixes[-1] if suffixes else ""
    first = next(
        (ln for ln in io.StringIO(text) if ln.strip() and not ln.lstrip().startswith("#")), ""
    )
    if not first:
        raise TfcnnInputError(f"{name}: only blank or comment lines; no table to read.")
    if ext == ".csv" and "," in first:
        return ","
    if ext in (".tsv", ".tab") and "\t" in first:
        return "\t"
    if "\t" in first:
        return "\t"
    if "," in first:
        return ","
    what = "is separated by semicolons" if ";" in first else "has neither tabs nor commas"
    raise TfcnnInputError(
        f"{name}: cannot tell the column separator: the first row {first.strip()[:80]!r} "
        f"{what}; save the table as TSV or CSV (tab- or comma-separated) with a tf and a "
        "target column."
    )


#: One data record: (tf, target, line, evidence, sign, weight).
_Record = tuple[str, str, int, str | None, int | None, float | None]


def _record(
    tf: str,
    target: str,
    line: int,
    evidence: str | None = None,
    sign: object = None,
    weight: object = None,
) -> _Record:
    """A record, with missing sign/weight (None or NaN from a DataFrame) as None."""
    s = None if sign is None or pd.isna(sign) else int(sign)  # type: ignore[call-overload]
    w = None if weight is None or pd.isna(weight) else float(weight)  # type: ignore[arg-type]
    return (tf, target, int(line), evidence, s, w)


@dataclass(frozen=True)
class _Columns:
    """Where the fields of a plain table are (column indices; None when absent)."""

    tf: int
    target: int
    evidence: int | None = None
    weight: int | None = None
    sign: int | None = None
    label: int | None = None
    weight_name: str = ""
    sign_name: str = ""


def _first_of(names: list[str], wanted: Sequence[str]) -> int | None:
    return next((names.index(n) for n in wanted if n in names), None)


def _header_columns(row: list[str]) -> _Columns | None:
    """The columns of ``row`` if it is a recognised header (see :data:`LAYOUTS`)."""
    names = [c.strip().lower() for c in row]
    i_tf = _first_of(names, TF_COLUMN_NAMES)
    i_target = _first_of(names, TARGET_COLUMN_NAMES)
    if i_tf is None or i_target is None or i_tf == i_target:
        return None
    i_weight = _first_of(names, WEIGHT_COLUMN_NAMES)
    i_sign = _first_of(names, SIGN_COLUMN_NAMES)
    return _Columns(
        tf=i_tf,
        target=i_target,
        evidence=_first_of(names, (EVIDENCE_COLUMN,)),
        weight=i_weight,
        sign=i_sign,
        label=_first_of(names, LABEL_COLUMN_NAMES),
        weight_name=row[i_weight].strip() if i_weight is not None else "",
        sign_name=row[i_sign].strip() if i_sign is not None else "",
    )


def _looks_like_id(field_text: str) -> bool:
    """A gene ID (AGI code, probeset, ORF name) has a digit, or is an ATH1 control
    probeset (``AFFX-...``); header words have neither."""
    return any(ch.isdigit() for ch in field_text) or is_probeset(field_text)


def _parse_pairs(text: str, path: Path, evidence: Sequence[str] | None) -> Interactions:
    name = str(path)
    delimiter = _guess_delimiter(path, text, name)
    records = _iter_records(text, delimiter, name)
    first_line, first = _first_record(records, name, skip_comments=True)
    columns = _header_columns(first)
    headerless = columns is None
    if columns is None:
        if len(first) >= 2 and _looks_like_id(first[0]) and _looks_like_id(first[1]):
            columns = _Columns(0, 1)
            records = itertools.chain([(first_line, first)], records)
        else:
            raise TfcnnInputError(
                f"{name}, line {first_line}: the first row {first[:4]} is neither a header "
                f"naming the TF column ({'/'.join(TF_COLUMN_NAMES)}) and the target column "
                f"({'/'.join(TARGET_COLUMN_NAMES)}), any case, nor a pair of gene IDs. "
                f"Layouts read: {'; '.join(LAYOUTS)}. Rename the columns to one of these."
            )
    need = max(columns.tf, columns.target) + 1
    sep_name = "tab" if delimiter == chr(9) else "comma"

    rows: list[tuple[int, str, str, str | None, str | None, str | None, str | None]] = []
    for line, record in records:
        if _is_blank(record) or record[0].lstrip().startswith("#"):
            continue
        if len(record) < need:
            raise TfcnnInputError(
                f"{name}, line {line}: {len(record)} field(s), expected at least {need} "
                f"({sep_name} separated); fix or remove that row."
            )
        tf, target = normalize_id(record[columns.tf]), normalize_id(record[columns.target])
        for role, value in (("TF", tf), ("target", target)):
            if value.upper() in MISSING_IDS:
                raise TfcnnInputError(
                    f"{name}, line {line}: empty {role} ID ({value!r}); fill it in or remove "
                    "that row."
                )

        def cell(i: int | None, rec: list[str] = record) -> str | None:
            # a row may end before an empty trailing field
            return None if i is None else (rec[i].strip() if i < len(rec) else "")

        if headerless:  # what the third field is is decided from all rows, below
            third = cell(2)
            rows.append((line, tf, target, None, third, third, third))
            continue
        rows.append(
            (
                line,
                tf,
                target,
                cell(columns.evidence),
                cell(columns.weight),
                cell(columns.sign),
                cell(columns.label),
            )
        )
    if not rows:
        raise TfcnnInputError(f"{name}: the table has a header but no TF -> target rows.")
    if headerless:
        columns = _headerless_third_column(rows)
    labels = _labels(rows, columns, name)
    signs = _signs(rows, columns, name)
    weights = _weights(rows, columns, name)
    kept: list[_Record] = []
    negatives: dict[tuple[str, str], int] = {}
    for k, (line, tf, target, ev, _, _, _) in enumerate(rows):
        if labels is not None and not labels[k]:
            negatives.setdefault((tf, target), line)
            continue
        kept.append(
            _record(
                tf,
                target,
                line,
                ev if columns.evidence is not None else None,
                None if signs is None else signs[k],
                None if weights is None else weights[k],
            )
        )
    if not kept:
        raise TfcnnInputError(
            f"{name}: every row is labelled 0 (not an edge) in its label column; give a table "
            "with the known edges labelled 1."
        )
    negative_frame = None
    if labels is not None:
        known = {(r[0], r[1]) for r in kept}
        negs = [(tf, tg, ln) for (tf, tg), ln in negatives.items() if (tf, tg) not in known]
        negative_frame = pd.DataFrame(negs, columns=["tf", "target", "line"])
        if len(rows) > len(kept):
            log.info(
                "%s: %d row(s) labelled 1 are edges; %d row(s) labelled 0 are not, and are "
                "kept apart as explicit non-edges (%d distinct pairs)",
                name,
                len(kept),
                len(rows) - len(kept),
                len(negative_frame),
            )
    result = _build(
        kept,
        name,
        (),
        has_evidence=columns.evidence is not None,
        has_sign=signs is not None,
        has_weight=weights is not None,
        negatives=negative_frame,
    )
    if result.has_sign:
        _report_signs(result, columns.sign_name or columns.weight_name)
    if evidence is not None:
        result = result.filter_evidence(evidence)
    return result


def _headerless_third_column(rows: list) -> _Columns:
    """What the third field of a header-less table is, from all its values.

    0/1 or true/false: a label (DREAM5 gold standards); +/-: a sign; numbers: a weight
    (DREAM5 predictions, GENIE3 link lists); anything else (or absent) is ignored.
    """
    values = {r[6].lower() for r in rows if r[6] not in (None, "")}
    if not values:
        return _Columns(0, 1)
    if values <= _TRUE_LABELS | _FALSE_LABELS:
        return _Columns(0, 1, label=2)
    if values <= {"+", "-"}:
        return _Columns(0, 1, sign=2, sign_name="column 3")
    try:
        [float(v) for v in values]
    except ValueError:
        return _Columns(0, 1)
    return _Columns(0, 1, weight=2, weight_name="column 3")


def _cells(rows: list, at: int) -> list[str]:
    return [r[at] if r[at] is not None else "" for r in rows]


def _labels(rows: list, columns: _Columns, name: str) -> list[bool] | None:
    """Per row: True for label 1 (an edge); None when the table has no label column."""
    if columns.label is None:
        return None
    out = []
    for (line, *_), value in zip(rows, _cells(rows, 6), strict=True):
        v = value.strip().lower()
        if v in _TRUE_LABELS:
            out.append(True)
        elif v in _FALSE_LABELS:
            out.append(False)
        else:
            raise TfcnnInputError(
                f"{name}, line {line}: label {value!r} is not 1/0 (or true/false). The label "
                "column says which rows are edges (1) and which are not (0)."
            )
    return out


def _signs(rows: list, columns: _Columns, name: str) -> list[int | None] | None:
    """Per row: +1 / -1 / None; None when the table gives no sign.

    A ``Type``/``mor``/``sign`` column gives it (+/-, or a signed number); so does a
    ``weight`` column whose values are all +1 or -1 (CollecTRI's mode of regulation).
    """
    if columns.sign is not None:
        values = _cells(rows, 5)
        where = columns.sign_name
        if where.lower() == "type" and not {v.lower() for v in values} <= {*_SIGNS, "", "0"}:
            return None  # a 'type' column of other values (e.g. "direct") is not a sign
    elif columns.weight is not None:
        values = _cells(rows, 4)
        given = {v for v in values if v}
        if not given or not given <= {"1", "-1", "1.0", "-1.0", "+1"} or given <= {"1", "1.0"}:
            return None
        where = columns.weight_name
    else:
        return None
    out: list[int | None] = []
    for (line, *_), value in zip(rows, values, strict=True):
        v = value.strip().lower()
        if v in ("", "0", "unknown", "?"):
            out.append(None)
        elif v in _SIGNS:
            out.append(_SIGNS[v])
        else:
            try:
                number = float(v)
            except ValueError:
                raise TfcnnInputError(
                    f"{name}, line {line}: sign {value!r} in column {where!r} is not '+' or "
                    "'-' (or a signed number)."
                ) from None
            out.append(None if number == 0 or number != number else (1 if number > 0 else -1))
    return out


def _weights(rows: list, columns: _Columns, name: str) -> list[float | None] | None:
    """Per row: the weight (a finite number) or None; None when there is no weight column."""
    if columns.weight is None:
        return None
    out: list[float | None] = []
    for (line, *_), value in zip(rows, _cells(rows, 4), strict=True):
        if value == "":
            out.append(None)
            continue
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if number != number or number in (float("inf"), float("-inf")):
            raise TfcnnInputError(
                f"{name}, line {line}: weight {value!r} in column {columns.weight_name!r} "
                "is not a finite number."
            )
        out.append(number)
    return out


def _report_signs(result: Interactions, column: str) -> None:
    signs = result.summary()["signs"]
    log.warning(
        "%s: signed edges (column %r): %d activating, %d repressing, %d with both signs or "
        "none. tfcnn uses every edge as a positive whatever its sign; the sign is kept in "
        "the `sign` column.",
        result.source,
        column,
        signs["activating"],
        signs["repressing"],
        signs["both_or_unknown"],
    )


def _build(
    kept: Sequence[_Record],
    source: str,
    skipped: Sequence[SkippedRow],
    has_evidence: bool,
    has_sign: bool = False,
    has_weight: bool = False,
    negatives: pd.DataFrame | None = None,
) -> Interactions:
    """De-duplicate kept records into :class:`Interactions` (see :data:`_Record`)."""
    first_line: dict[tuple[str, str], int] = {}
    evidence: dict[tuple[str, str], set[str]] = {}
    signs: dict[tuple[str, str], set[int]] = {}
    weights: dict[tuple[str, str], float] = {}
    for tf, target, line, ev, sign, weight in kept:
        key = (tf, target)
        if key not in first_line:
            first_line[key] = line
            evidence[key] = set()
            signs[key] = set()
        if ev:
            evidence[key].add(ev)
        if sign is not None:
            signs[key].add(sign)
        if weight is not None:
            weights[key] = max(weight, weights.get(key, weight))
    data: dict[str, pd.Series] = {
        "tf": pd.Series([k[0] for k in first_line], dtype=str),
        "target": pd.Series([k[1] for k in first_line], dtype=str),
        "line": pd.Series(list(first_line.values()), dtype="int64"),
    }
    if has_sign:
        data["sign"] = pd.Series(
            [next(iter(signs[k])) if len(signs[k]) == 1 else 0 for k in first_line], dtype="int8"
        )
    if has_weight:
        data["weight"] = pd.Series([weights.get(k, float("nan")) for k in first_line], dtype=float)
    records = None
    if has_evidence:
        data[EVIDENCE_COLUMN] = pd.Series(
            [";".join(sorted(evidence[k])) for k in first_line], dtype=str
        )
        records = pd.DataFrame(
            [(tf, target, line, ev or "", s, w) for tf, target, line, ev, s, w in kept],
            columns=["tf", "target", "line", EVIDENCE_COLUMN, "sign", "weight"],
        )
    return Interactions(
        pairs=pd.DataFrame(data),
        source=source,
        skipped=tuple(skipped),
        n_records=len(kept) + len(skipped),
        n_duplicates=len(kept) - len(first_line),
        records=records,
        negatives=negatives,
    )
