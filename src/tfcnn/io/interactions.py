"""TF -> target interaction tables: AtRegNet and plain pair tables.

Two formats are read:

* AtRegNet (AGRIS): tab separated, Latin-1 bytes, quoted fields that contain tabs
  and newlines. It is parsed with :mod:`csv` (never by splitting lines) and every
  record keeps the physical line it starts on, so messages point at the right line.
  Rows are kept by ``Confirmation`` and ``TargetType`` compared trimmed and
  case-insensitively ("Confirmed", "confirmed", "Direct ", "direct" all match);
  "Directly" and "Indirect" do not match "direct".
* Plain tables of pairs: TSV or CSV (optionally ``.gz``), with or without a header,
  optionally with an ``evidence`` column that can be filtered on.

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
TF_COLUMN_NAMES = ("tf", "regulator", "source", "tf_locus", "tflocus")
TARGET_COLUMN_NAMES = ("target", "gene", "target_locus", "targetlocus")
EVIDENCE_COLUMN = "evidence"
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
    the pair was seen) and, when the source has one, ``evidence`` (all values seen for
    the pair, sorted and ';'-joined).

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
        kept = list(keep.itertuples(index=False, name=None))
        return _build(kept, self.source, self.skipped, has_evidence=True)

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
        return out


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
    kept: list[tuple[str, str, int, str | None]] = []
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
        kept.append((tf, target, i, None))
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

    kept: list[tuple[str, str, int, str | None]] = []
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
        kept.append((normalize_id(tf_raw), normalize_id(target_raw), line, None))

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


def _header_columns(row: list[str]) -> tuple[int, int, int | None] | None:
    """Column indices (tf, target, evidence) if ``row`` is a recognised header."""
    names = [c.strip().lower() for c in row]
    i_tf = next((names.index(n) for n in TF_COLUMN_NAMES if n in names), None)
    i_target = next((names.index(n) for n in TARGET_COLUMN_NAMES if n in names), None)
    if i_tf is None or i_target is None:
        return None
    i_ev = names.index(EVIDENCE_COLUMN) if EVIDENCE_COLUMN in names else None
    return i_tf, i_target, i_ev


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
    if columns is None:
        if len(first) >= 2 and _looks_like_id(first[0]) and _looks_like_id(first[1]):
            columns = (0, 1, None)
            records = itertools.chain([(first_line, first)], records)
        else:
            raise TfcnnInputError(
                f"{name}, line {first_line}: the first row {first[:4]} is neither a header "
                f"naming the TF column ({'/'.join(TF_COLUMN_NAMES)}) and the target column "
                f"({'/'.join(TARGET_COLUMN_NAMES)}), any case, nor a pair of gene IDs; "
                "add such a header."
            )
    i_tf, i_target, i_ev = columns
    need = max(i_tf, i_target) + 1

    kept: list[tuple[str, str, int, str | None]] = []
    for line, record in records:
        if _is_blank(record) or record[0].lstrip().startswith("#"):
            continue
        if len(record) < need:
            raise TfcnnInputError(
                f"{name}, line {line}: {len(record)} field(s), expected at least {need} "
                f"({'tab' if delimiter == chr(9) else 'comma'} separated); "
                "fix or remove that row."
            )
        tf, target = normalize_id(record[i_tf]), normalize_id(record[i_target])
        for role, value in (("TF", tf), ("target", target)):
            if value.upper() in MISSING_IDS:
                raise TfcnnInputError(
                    f"{name}, line {line}: empty {role} ID ({value!r}); fill it in or remove "
                    "that row."
                )
        ev = None
        if i_ev is not None:  # a row may end before an empty trailing evidence field
            ev = record[i_ev].strip() if i_ev < len(record) else ""
        kept.append((tf, target, line, ev))
    if not kept:
        raise TfcnnInputError(f"{name}: the table has a header but no TF -> target rows.")
    result = _build(kept, name, (), has_evidence=i_ev is not None)
    if evidence is not None:
        result = result.filter_evidence(evidence)
    return result


def _build(
    kept: Sequence[tuple[str, str, int, str | None]],
    source: str,
    skipped: Sequence[SkippedRow],
    has_evidence: bool,
) -> Interactions:
    """De-duplicate kept records (tf, target, line, evidence) into :class:`Interactions`."""
    first_line: dict[tuple[str, str], int] = {}
    evidence: dict[tuple[str, str], set[str]] = {}
    for tf, target, line, ev in kept:
        key = (tf, target)
        if key not in first_line:
            first_line[key] = line
            evidence[key] = set()
        if ev:
            evidence[key].add(ev)
    data: dict[str, pd.Series] = {
        "tf": pd.Series([k[0] for k in first_line], dtype=str),
        "target": pd.Series([k[1] for k in first_line], dtype=str),
        "line": pd.Series(list(first_line.values()), dtype="int64"),
    }
    records = None
    if has_evidence:
        data[EVIDENCE_COLUMN] = pd.Series(
            [";".join(sorted(evidence[k])) for k in first_line], dtype=str
        )
        records = pd.DataFrame(
            [(tf, target, line, ev or "") for tf, target, line, ev in kept],
            columns=["tf", "target", "line", EVIDENCE_COLUMN],
        )
    return Interactions(
        pairs=pd.DataFrame(data),
        source=source,
        skipped=tuple(skipped),
        n_records=len(kept) + len(skipped),
        n_duplicates=len(kept) - len(first_line),
        records=records,
    )
