"""`PairSet`: labelled (TF, target) examples with splits, traceable to their genes.

Positives are known interactions whose two genes are both in the expression matrix.
Negatives, equal in number and never a known pair, come from one of three strategies:

* ``random``: any two distinct genes (the study's choice). The regulator of a negative
  is then usually not a TF at all, so a model can score well by recognising TFs: an
  evaluation artefact, kept so users can see it.
* ``tf-matched``: each positive TF paired with genes that are not its known targets, so
  every TF is as frequent among negatives as among positives. When a TF has more known
  targets than there are other genes to draw from, its positives are subsampled to the
  available negatives (reported), keeping the match exact.
* ``degree-matched``: a degree-preserving shuffle of the positive bipartite graph: the
  positives' targets are permuted among their TFs, then conflicting slots (a known pair,
  a self-pair or a duplicate) are repaired by random target swaps that keep both ends'
  counts. Every TF *and* every target is then as frequent among negatives as among
  positives. Slots that cannot be repaired are dropped with their positive (reported as
  the shortfall in ``meta["positives"]["dropped"]``).

Each example is the two z-scored profiles (sample SD, as R's ``scale``), shape (2, S).
Splits: ``random`` (80/10/10 of examples, as the study), ``tf-holdout`` (whole
regulators assigned to one split; positives balanced first, then negatives) or
``pair-disjoint`` (every gene assigned to one split, TFs balanced by positives, other
genes at random; a pair is kept only when its TF and its target fall in the same split,
so neither gene of a test pair appears in training; the pairs discarded are counted in
``meta["pair_disjoint_discarded"]``). :func:`tf_group_folds` re-splits a pair set into
k folds grouped by TF (cross-validation with whole TFs held out).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from .errors import TfcnnInputError
from .io.atomic import atomic_dir
from .io.expression import ExpressionMatrix
from .io.idmap import IdMap
from .io.ids import id_namespace
from .io.interactions import Interactions
from .io.manifest import read_manifest

log = logging.getLogger(__name__)

NEGATIVE_STRATEGIES = ("random", "tf-matched", "degree-matched")
SPLIT_STRATEGIES = ("random", "tf-holdout", "pair-disjoint")
SPLITS = ("train", "validation", "test")
PAIRS_FORMAT = "tfcnn-pairs"
PAIRS_FORMAT_VERSION = 1
TABLE_FILE, EXAMPLES_FILE, META_FILE = "pairs.tsv", "expression.safetensors", "pairset.json"


@dataclass
class PairSet:
    """Labelled pairs (``table``: tf, target, label, split, kind) over a z-scored matrix.

    ``zscores`` (genes x samples, float32) holds every gene's z-scored profile once;
    the examples ``x`` (N, 2, S) are gathered from it on first use. ``known`` holds the
    codes (``tf_row * n_genes + target_row``) of every known pair that was kept out of
    the negatives (all input interactions and exclusions on the matrix's genes), or
    None when not recorded (pair sets written before it was).
    """

    table: pd.DataFrame
    zscores: np.ndarray
    genes: tuple[str, ...]
    samples: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    known: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.genes = tuple(self.genes)
        self.samples = tuple(self.samples)
        if self.zscores.shape != (len(self.genes), len(self.samples)):
            raise ValueError(
                f"z-scores have shape {self.zscores.shape}, expected "
                f"({len(self.genes)}, {len(self.samples)}) for its genes and samples"
            )
        index = {g: i for i, g in enumerate(self.genes)}
        tf = self.table["tf"].map(index)
        target = self.table["target"].map(index)
        unknown = tf.isna() | target.isna()
        if unknown.any():
            row = self.table[unknown].iloc[0]
            raise ValueError(
                f"{int(unknown.sum())} pairs name genes outside the matrix, e.g. "
                f"{row['tf']} -> {row['target']}"
            )
        self._tf_index = tf.to_numpy(np.int64)
        self._target_index = target.to_numpy(np.int64)
        self._x: np.ndarray | None = None
        if self.known is not None:
            known = np.asarray(self.known)
            n = len(self.genes)
            if (
                known.ndim != 1
                or known.dtype.kind not in "iu"
                or (known.size and (known.min() < 0 or known.max() >= n * n))
            ):
                raise ValueError("known pair codes must be integers in [0, n_genes ** 2)")
            self.known = np.unique(known.astype(np.int64))

    def record(self) -> dict[str, np.ndarray]:
        """What a model trained on this set keeps of it: gene rows, labels, splits, known pairs.

        ``known`` holds every known pair (also those only excluded from the negatives)
        and every positive, as codes ``tf_row * n_genes + target_row``.
        """
        from .model.record import pair_arrays

        split = self.table["split"].map({s: i for i, s in enumerate(SPLITS)}).to_numpy()
        pos = self.labels == 1
        positives = self.tf_rows[pos] * len(self.genes) + self.target_rows[pos]
        known = positives if self.known is None else np.union1d(self.known, positives)
        return pair_arrays(self.tf_rows, self.target_rows, self.labels, split, known)

    @property
    def tf_rows(self) -> np.ndarray:
        """Row of each example's TF in ``zscores`` / ``genes``."""
        return self._tf_index

    @property
    def target_rows(self) -> np.ndarray:
        """Row of each example's target in ``zscores`` / ``genes``."""
        return self._target_index

    @property
    def x(self) -> np.ndarray:
        """The examples, (N, 2, S) float32: TF profile row 0, target profile row 1."""
        if self._x is None:
            z = np.asarray(self.zscores, dtype=np.float32)
            self._x = np.stack([z[self._tf_index], z[self._target_index]], axis=1)
        return self._x

    def with_labels(self, labels: np.ndarray) -> PairSet:
        """The same pairs with other labels (e.g. permuted, as a negative control)."""
        return PairSet(
            table=self.table.assign(label=np.asarray(labels, dtype=np.int64)),
            zscores=self.zscores,
            genes=self.genes,
            samples=self.samples,
            meta=dict(self.meta),
            known=self.known,
        )

    def __len__(self) -> int:
        return len(self.table)

    @property
    def labels(self) -> np.ndarray:
        return self.table["label"].to_numpy(dtype=np.int64)

    def mask(self, split: str) -> np.ndarray:
        """Boolean mask of the examples in ``split`` (train / validation / test)."""
        if split not in SPLITS:
            raise TfcnnInputError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
        return (self.table["split"] == split).to_numpy()

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of one split."""
        m = self.mask(split)
        return self.x[m], self.labels[m]

    def counts(self) -> dict[str, dict[str, int]]:
        """Positives, negatives and distinct regulators per split."""
        out = {}
        for s in SPLITS:
            t = self.table[self.table["split"] == s]
            out[s] = {
                "positives": int((t["label"] == 1).sum()),
                "negatives": int((t["label"] == 0).sum()),
                "regulators_in_positives": int(t.loc[t["label"] == 1, "tf"].nunique()),
            }
        return out

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary for reports and model metadata."""
        return {
            **self.meta,
            "n_examples": len(self),
            "n_samples": len(self.samples),
            "splits": self.counts(),
        }

    # -- persistence -----------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], force: bool = False) -> Path:
        """Write ``path/`` with pairs.tsv, expression.safetensors and pairset.json."""
        meta = {
            "format": PAIRS_FORMAT,
            "format_version": PAIRS_FORMAT_VERSION,
            **self.meta,
            "samples": list(self.samples),
            "genes": list(self.genes),
        }
        tensors = {"zscores": np.ascontiguousarray(self.zscores, dtype=np.float32)}
        if self.known is not None:
            tensors["known"] = np.ascontiguousarray(self.known, dtype=np.int64)
        with atomic_dir(path, force=force) as tmp:
            self.table.to_csv(tmp / TABLE_FILE, sep="\t", index=False)
            save_file(tensors, str(tmp / EXAMPLES_FILE))
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PairSet:
        """Read a pair set written by :meth:`save`, checking that its parts agree."""
        path = Path(path)
        if not path.is_dir():
            raise TfcnnInputError(
                f"{path} is not a pair set: expected a directory written by "
                f"'tfcnn build-pairs' holding {TABLE_FILE}, {EXAMPLES_FILE} and {META_FILE}."
            )
        for name in (TABLE_FILE, EXAMPLES_FILE, META_FILE):
            if not (path / name).is_file():
                raise TfcnnInputError(
                    f"pair set {path} has no {name}; rebuild it with 'tfcnn build-pairs'."
                )
        meta = read_manifest(path / META_FILE, PAIRS_FORMAT, PAIRS_FORMAT_VERSION, "tfcnn pair set")
        try:
            tensors = load_file(str(path / EXAMPLES_FILE))
            zscores = tensors["zscores"]
        except (SafetensorError, OSError, KeyError) as exc:
            raise TfcnnInputError(
                f"{path / EXAMPLES_FILE} is unreadable ({exc}); rebuild the pair set."
            ) from exc
        table = _read_table(path / TABLE_FILE)
        samples, genes = meta.pop("samples", []), meta.pop("genes", [])
        for key, value in (("samples", samples), ("genes", genes)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TfcnnInputError(
                    f"{path / META_FILE}: '{key}' must be a list of names; rebuild the pair set."
                )
        meta.pop("format", None)
        meta.pop("format_version", None)
        try:
            return cls(
                table=table,
                zscores=zscores,
                genes=tuple(genes),
                samples=tuple(samples),
                meta=meta,
                known=tensors.get("known"),
            )
        except ValueError as exc:
            raise TfcnnInputError(f"pair set {path} is inconsistent: {exc}.") from exc


def _read_table(path: Path) -> pd.DataFrame:
    """The pairs.tsv of a pair set, with its columns and values checked."""
    try:
        table = pd.read_csv(path, sep="\t", dtype={"tf": str, "target": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TfcnnInputError(f"{path} is not a readable pair table ({exc}).") from exc
    missing = {"tf", "target", "label", "split"} - set(table.columns)
    if missing:
        raise TfcnnInputError(f"{path} lacks columns {sorted(missing)}.")
    labels = pd.to_numeric(table["label"], errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise TfcnnInputError(
            f"{path} line {row + 2}: label {table['label'].iloc[row]!r} is not 0 or 1."
        )
    bad_split = ~table["split"].isin(SPLITS)
    if bad_split.any():
        row = int(np.flatnonzero(bad_split.to_numpy())[0])
        raise TfcnnInputError(
            f"{path} line {row + 2}: split {table['split'].iloc[row]!r} is not one of "
            f"{', '.join(SPLITS)}."
        )
    return table.assign(label=labels.astype(np.int64))


# -- building ------------------------------------------------------------------------
def align_interactions(
    interactions: Interactions,
    genes: Iterable[str],
    id_map: IdMap | None,
    expression_source: str = "the expression matrix",
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Express interaction pairs in the matrix's ID space (AGI or probeset).

    Returns the (tf, target) frame in that space and counts of pairs lost in mapping.
    """
    pairs = interactions.pairs[["tf", "target"]].copy()
    genes = list(genes)
    expr_ns = id_namespace(genes)
    ids = pd.unique(pd.concat([pairs["tf"], pairs["target"]]))
    int_ns = id_namespace(list(ids))
    report = {"no one-to-one ID mapping": 0}
    if expr_ns == int_ns or "other" in (expr_ns, int_ns):
        return pairs, report
    if id_map is None:
        raise TfcnnInputError(
            f"{expression_source} is keyed by {expr_ns} IDs but the interactions "
            f"({interactions.source}) use {int_ns} IDs: pass `id_map` (for ATH1 arrays "
            "the bundled map is 'ath1-map')."
        )
    mapping, _ = id_map.translate(ids, to=expr_ns)  # type: ignore[arg-type]  # agi/probeset here
    tf = pairs["tf"].map(mapping)
    target = pairs["target"].map(mapping)
    ok = tf.notna() & target.notna()
    report["no one-to-one ID mapping"] = int((~ok).sum())
    return pd.DataFrame({"tf": tf[ok], "target": target[ok]}).drop_duplicates(), report


def _encode(tf_idx: np.ndarray, target_idx: np.ndarray, n_genes: int) -> np.ndarray:
    return tf_idx.astype(np.int64) * n_genes + target_idx.astype(np.int64)


def _random_negatives(
    n: int, n_genes: int, known: set[int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct ordered gene pairs (i != j) that are not known pairs."""
    capacity = n_genes * (n_genes - 1) - len(known)
    if capacity < n:
        raise TfcnnInputError(
            f"only {capacity} unknown gene pairs exist among {n_genes} genes, fewer than the "
            f"{n} negatives needed; use a larger expression matrix."
        )
    chosen: dict[int, None] = {}
    while len(chosen) < n:
        m = 2 * (n - len(chosen)) + 16
        a = rng.integers(0, n_genes, m)
        b = rng.integers(0, n_genes, m)
        for code, i, j in zip(_encode(a, b, n_genes).tolist(), a.tolist(), b.tolist(), strict=True):
            if i != j and code not in known and code not in chosen:
                chosen[code] = None
                if len(chosen) == n:
                    break
    codes = np.fromiter(chosen, dtype=np.int64, count=n)
    return codes // n_genes, codes % n_genes


def _tf_matched_negatives(
    pos_tf: np.ndarray,
    pos_target: np.ndarray,
    n_genes: int,
    known: set[int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """One negative per positive, same TF: (positives kept, neg TFs, neg targets, capped)."""
    keep = np.ones(pos_tf.size, dtype=bool)
    neg_tf, neg_target = [], []
    capped: dict[str, int] = {}
    all_genes = np.arange(n_genes)
    known_arr = np.fromiter(known, dtype=np.int64, count=len(known))
    for tf in np.unique(pos_tf):
        rows = np.flatnonzero(pos_tf == tf)
        lo, hi = tf * n_genes, (tf + 1) * n_genes
        blocked = known_arr[(known_arr >= lo) & (known_arr < hi)] - lo
        free = np.ones(n_genes, dtype=bool)
        free[blocked] = False
        free[tf] = False
        candidates = all_genes[free]
        k = rows.size
        if candidates.size < k:
            dropped = rng.choice(rows, size=k - candidates.size, replace=False)
            keep[dropped] = False
            capped[str(tf)] = int(k - candidates.size)
            k = candidates.size
        neg_tf.append(np.full(k, tf))
        neg_target.append(rng.choice(candidates, size=k, replace=False))
    return keep, np.concatenate(neg_tf), np.concatenate(neg_target), capped


def _degree_matched_negatives(
    pos_tf: np.ndarray,
    pos_target: np.ndarray,
    n_genes: int,
    known: set[int],
    rng: np.random.Generator,
    max_tries: int = 200,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Negatives with the positives' TF and target degrees: (slots kept, neg TFs, neg targets).

    Slot ``i`` keeps TF ``pos_tf[i]``; targets are a permutation of ``pos_target``. A slot
    whose pair is known, a self-pair or a duplicate is repaired by swapping targets with a
    random other slot when both resulting pairs are valid; slots still invalid after
    ``max_tries`` attempts are not kept (the caller drops them with their positives).
    """
    n = pos_tf.size
    tf = pos_tf.astype(np.int64)
    target = rng.permutation(pos_target.astype(np.int64))
    codes = _encode(tf, target, n_genes)
    used: Counter[int] = Counter(codes.tolist())

    def bad(code: int, i_tf: int, i_target: int) -> bool:
        return i_tf == i_target or code in known

    invalid = [
        i
        for i in range(n)
        if bad(int(codes[i]), int(tf[i]), int(target[i])) or used[int(codes[i])] > 1
    ]
    keep = np.ones(n, dtype=bool)
    for i in invalid:
        ci = int(codes[i])
        if not (bad(ci, int(tf[i]), int(target[i])) or used[ci] > 1):
            continue  # repaired as the partner of an earlier swap
        for j in rng.integers(0, n, max_tries).tolist():
            cj = int(codes[j])
            new_i = int(tf[i]) * n_genes + int(target[j])
            new_j = int(tf[j]) * n_genes + int(target[i])
            if (
                tf[j] == tf[i]
                or bad(new_i, int(tf[i]), int(target[j]))
                or bad(new_j, int(tf[j]), int(target[i]))
                or used[new_i] > 0
                or used[new_j] > 0
            ):
                continue
            used[ci] -= 1
            used[cj] -= 1
            used[new_i] += 1
            used[new_j] += 1
            target[i], target[j] = target[j], target[i]
            codes[i], codes[j] = new_i, new_j
            break
        else:
            keep[i] = False
    # A slot left invalid, or sharing its code with a kept slot, is dropped.
    seen: set[int] = set()
    for i in range(n):
        c = int(codes[i])
        if not keep[i] or bad(c, int(tf[i]), int(target[i])) or c in seen:
            keep[i] = False
        else:
            seen.add(c)
    return keep, tf[keep], target[keep]


def _pair_disjoint_splits(
    tf_idx: np.ndarray,
    target_idx: np.ndarray,
    labels: np.ndarray,
    n_genes: int,
    fractions: tuple[float, float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Split per pair, or None when its TF and target fall in different splits.

    Regulators of positives are spread over the splits by their positives (as
    tf-holdout); every other gene is assigned at random with ``fractions``.
    """
    gene_split = rng.choice(3, size=n_genes, p=np.asarray(fractions, dtype=float))
    pos = labels == 1
    tf_names = _assign_splits(labels[pos], tf_idx[pos], tuple(fractions), rng)
    index = {name: i for i, name in enumerate(SPLITS)}
    for tf, name in zip(tf_idx[pos].tolist(), tf_names.tolist(), strict=True):
        gene_split[tf] = index[name]
    same = gene_split[tf_idx] == gene_split[target_idx]
    out = np.full(tf_idx.size, None, dtype=object)
    out[same] = np.array(SPLITS, dtype=object)[gene_split[tf_idx[same]]]
    return out


def tf_group_folds(
    pairs: PairSet, n_folds: int, seed: int = 0, validation_fraction: float = 0.1
) -> list[PairSet]:
    """``n_folds`` re-splits of ``pairs`` holding whole TFs out (grouped k-fold by TF).

    Regulators are dealt to folds by their positives (largest first, into the fold with
    the fewest positives), negative-only regulators by their negatives. Fold ``k`` tests
    on the TFs of fold ``k``; among the others, about ``validation_fraction`` of the
    positives' TFs form the validation split and the rest train.
    """
    t = pairs.table
    tfs = t["tf"].to_numpy()
    labels = t["label"].to_numpy()
    uniq, inverse = np.unique(tfs, return_inverse=True)
    if np.unique(tfs[labels == 1]).size < n_folds + 1:
        raise TfcnnInputError(
            f"grouped {n_folds}-fold by TF needs more than {n_folds} TFs with known targets "
            f"(found {np.unique(tfs[labels == 1]).size}); use fewer folds."
        )
    rng = np.random.default_rng(seed)
    pos_w = np.bincount(inverse, weights=labels, minlength=uniq.size)
    neg_w = np.bincount(inverse, weights=1 - labels, minlength=uniq.size)
    fold = np.full(uniq.size, -1)
    for members, weight in (
        (np.flatnonzero(pos_w > 0), pos_w),
        (np.flatnonzero(pos_w == 0), neg_w),
    ):
        filled = np.array([weight[fold == k].sum() for k in range(n_folds)], dtype=float)
        members = members[rng.permutation(members.size)]
        for g in members[np.argsort(-weight[members], kind="stable")]:
            k = int(np.argmin(filled + rng.random(n_folds) * 1e-9))
            fold[g] = k
            filled[k] += weight[g]
    out = []
    for k in range(n_folds):
        group_split = np.where(fold == k, 2, 0)
        rest = np.flatnonzero(fold != k)
        for members, weight in ((rest[pos_w[rest] > 0], pos_w), (rest[pos_w[rest] == 0], neg_w)):
            goal = validation_fraction * weight[members].sum()
            got = 0.0
            for g in members[rng.permutation(members.size)]:
                if got + weight[g] / 2 > goal:
                    continue
                group_split[g] = 1
                got += weight[g]
        names = np.array(SPLITS, dtype=object)[group_split[inverse]]
        ps = PairSet(
            table=t.assign(split=names),
            zscores=pairs.zscores,
            genes=pairs.genes,
            samples=pairs.samples,
            meta={**pairs.meta, "split": "tf-kfold", "fold": k, "n_folds": n_folds},
            known=pairs.known,
        )
        _check_splits(ps)
        out.append(ps)
    return out


def _assign_splits(
    labels: np.ndarray,
    groups: np.ndarray | None,
    fractions: tuple[float, ...],
    rng: np.random.Generator,
) -> np.ndarray:
    """Split names per example: random by example, or whole groups (regulators)."""
    n = labels.size
    out = np.empty(n, dtype=object)
    if groups is None:
        order = rng.permutation(n)
        n_test = int(round(fractions[2] * n))
        n_val = int(round(fractions[1] * n))
        n_train = n - n_val - n_test
        out[order[:n_train]] = "train"
        out[order[n_train : n_train + n_val]] = "validation"
        out[order[n_train + n_val :]] = "test"
        return out
    frac = np.asarray(fractions, dtype=float)
    uniq, inverse = np.unique(groups, return_inverse=True)
    pos_per_group = np.bincount(inverse, weights=labels, minlength=uniq.size)
    size_per_group = np.bincount(inverse, minlength=uniq.size)
    neg_per_group = size_per_group - pos_per_group
    assigned = np.full(uniq.size, -1)
    # Regulators with positives are spread by their positives first; negative-only
    # regulators then top up each split's negatives to its share of all negatives.
    for members, weight in (
        (np.flatnonzero(pos_per_group > 0), pos_per_group),
        (np.flatnonzero(pos_per_group == 0), neg_per_group),
    ):
        filled = np.array([weight[assigned == s].sum() for s in range(3)], dtype=float)
        targets = frac * max(weight.sum(), 1)
        for g in members[rng.permutation(members.size)]:
            # Best fit after adding: large regulators go where there is room (train).
            s = int(np.argmin((filled + weight[g]) / targets))
            assigned[g] = s
            filled[s] += weight[g]
    names = np.array(SPLITS, dtype=object)
    return names[assigned[inverse]]


def build_pair_set(
    expression: ExpressionMatrix,
    interactions: Interactions,
    *,
    negatives: str = "random",
    split: str = "random",
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    exclude: Interactions | None = None,
    id_map: IdMap | None = None,
) -> PairSet:
    """Positives from ``interactions``, seeded negatives and splits, on ``expression``.

    ``exclude``: further pairs that must never be drawn as negatives (for example
    weaker-evidence edges not used as positives).
    """
    if negatives not in NEGATIVE_STRATEGIES:
        raise TfcnnInputError(
            f"unknown negatives {negatives!r}; choose {' or '.join(NEGATIVE_STRATEGIES)}."
        )
    if split not in SPLIT_STRATEGIES:
        raise TfcnnInputError(f"unknown split {split!r}; choose {' or '.join(SPLIT_STRATEGIES)}.")
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise TfcnnInputError(
            f"split fractions must be three positive numbers summing to 1, got {fractions}."
        )
    rng = np.random.default_rng(seed)
    genes = list(expression.genes)
    n_genes = len(genes)
    index = {g: i for i, g in enumerate(genes)}

    pos, dropped = align_interactions(interactions, genes, id_map, expression.source)
    n_input = len(interactions)
    self_pair = pos["tf"] == pos["target"]
    dropped["self-pair (TF = target)"] = int(self_pair.sum())
    self_in_matrix = int(pos.loc[self_pair, "tf"].isin(index).sum())
    pos = pos[~self_pair]
    tf_in = pos["tf"].isin(index)
    target_in = pos["target"].isin(index)
    dropped["TF not in expression matrix"] = int((~tf_in).sum())
    dropped["target not in expression matrix (TF present)"] = int((tf_in & ~target_in).sum())
    pos = pos[tf_in & target_in]
    if pos.empty:
        if self_in_matrix and not (tf_in & target_in).any():
            raise TfcnnInputError(
                f"every known pair of {interactions.source} that names genes of "
                f"{expression.source} is a self-pair (TF = target), and self-pairs are not "
                "used: give interactions between different genes."
            )
        raise TfcnnInputError(
            f"no known pair from {interactions.source} has both genes in {expression.source}; "
            "check that both use the same gene IDs (AGI codes or probesets) or pass `id_map`."
        )
    pos_tf = pos["tf"].map(index).to_numpy(np.int64)
    pos_target = pos["target"].map(index).to_numpy(np.int64)

    known = set(_encode(pos_tf, pos_target, n_genes).tolist())
    for extra in [interactions] + ([exclude] if exclude is not None else []):
        frame, _ = align_interactions(extra, genes, id_map, expression.source)
        frame = frame[frame["tf"].isin(index) & frame["target"].isin(index)]
        known.update(
            _encode(
                frame["tf"].map(index).to_numpy(np.int64),
                frame["target"].map(index).to_numpy(np.int64),
                n_genes,
            ).tolist()
        )

    capped: dict[str, int] = {}
    if negatives == "random":
        neg_tf, neg_target = _random_negatives(pos_tf.size, n_genes, known, rng)
    elif negatives == "degree-matched":
        keep, neg_tf, neg_target = _degree_matched_negatives(
            pos_tf, pos_target, n_genes, known, rng
        )
        pos_tf, pos_target = pos_tf[keep], pos_target[keep]
        dropped["degree-matched shortfall: no valid swap found"] = int((~keep).sum())
        if (~keep).any():
            log.warning(
                "degree-matched negatives: %d of %d slots could not be repaired; they were "
                "dropped with their positives",
                int((~keep).sum()),
                keep.size,
            )
    else:
        keep, neg_tf, neg_target, capped = _tf_matched_negatives(
            pos_tf, pos_target, n_genes, known, rng
        )
        pos_tf, pos_target = pos_tf[keep], pos_target[keep]
    dropped["capped: TF has too few non-targets for tf-matched negatives"] = sum(capped.values())
    if capped:
        log.warning(
            "%d positives of %d TF(s) were left out so that each TF has as many negatives "
            "as positives (too few genes that are not its known targets), e.g. %s",
            sum(capped.values()),
            len(capped),
            ", ".join(f"{genes[int(t)]} ({n})" for t, n in list(capped.items())[:3]),
        )

    tf_idx = np.concatenate([pos_tf, neg_tf])
    target_idx = np.concatenate([pos_target, neg_target])
    labels = np.concatenate([np.ones(pos_tf.size, np.int64), np.zeros(neg_tf.size, np.int64)])
    kind = np.array(["positive"] * pos_tf.size + [f"negative-{negatives}"] * neg_tf.size)
    groups = tf_idx if split == "tf-holdout" else None
    if split != "random" and np.unique(pos_tf).size < 3:
        raise TfcnnInputError(
            f"{split} needs known targets for at least 3 TFs (found {np.unique(pos_tf).size})"
            "; use `split` random."
        )
    n_discarded = 0
    if split == "pair-disjoint":
        split_names = _pair_disjoint_splits(tf_idx, target_idx, labels, n_genes, fractions, rng)
        kept = split_names != None  # noqa: E711 (object array)
        n_discarded = int((~kept).sum())
        dropped["pair-disjoint: TF and target in different splits"] = int(
            (~kept & (labels == 1)).sum()
        )
        tf_idx, target_idx, labels = tf_idx[kept], target_idx[kept], labels[kept]
        kind, split_names = kind[kept], split_names[kept]
    else:
        split_names = _assign_splits(labels, groups, tuple(fractions), rng)

    gene_arr = np.array(genes, dtype=object)
    table = pd.DataFrame(
        {
            "tf": gene_arr[tf_idx],
            "target": gene_arr[target_idx],
            "label": labels,
            "split": split_names,
            "kind": kind,
        }
    )
    tf_counts = Counter(table.loc[table["label"] == 1, "tf"])
    top_tf, top_n = tf_counts.most_common(1)[0]
    n_pos_kept = int((labels == 1).sum())
    meta = {
        "expression": {
            "source": expression.source,
            "n_genes": n_genes,
            "n_samples": expression.n_samples,
            "dropped_constant": len(expression.dropped_constant),
        },
        "interactions": {
            "source": interactions.source,
            "n_pairs": n_input,
            # Enough to read the same pairs back (e.g. to flag known pairs in predictions).
            "evidence": sorted(
                {v for joined in interactions.pairs["evidence"] for v in joined.split(";") if v}
            )
            if interactions.has_evidence
            else None,
            "id_map": id_map.source if id_map is not None else None,
        },
        "excluded_from_negatives": exclude.source if exclude is not None else None,
        "negatives": negatives,
        "split": split,
        "fractions": list(fractions),
        "seed": seed,
        **({"pair_disjoint_discarded": n_discarded} if split == "pair-disjoint" else {}),
        "positives": {"input_pairs": n_input, "kept": n_pos_kept, "dropped": dropped},
        "n_regulators": len(tf_counts),
        "top_regulator": {"id": top_tf, "positives": top_n, "share": round(top_n / n_pos_kept, 4)},
    }
    result = PairSet(
        table=table,
        zscores=expression.zscored(),
        genes=tuple(genes),
        samples=tuple(expression.samples),
        meta=meta,
        known=np.fromiter(known, dtype=np.int64, count=len(known)),
    )
    _check_splits(result)
    return result


def _check_splits(pairs: PairSet) -> None:
    for s, c in pairs.counts().items():
        if c["positives"] == 0 or c["negatives"] == 0:
            raise TfcnnInputError(
                f"the {s} split has {c['positives']} positives and {c['negatives']} negatives; "
                "each split needs both. Use more known pairs or `split` random."
            )
