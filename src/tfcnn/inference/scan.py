"""Genome-wide scoring: every TF x target pair to a table file, resumable, optionally on dask.

The scan walks the TF list in blocks of ``block_tfs`` TFs. Each block is scored against
every target (the pairs are never materialised) by the fused kernel
(:mod:`tfcnn.inference.fused`) or :class:`tfcnn.inference.engine.PairScorer` (``engine``),
filtered (``min_prob``, ``top_k`` per TF), and written to ``<output>.work/`` as its own
Arrow IPC file, atomically (temporary file + rename). A run that is killed and restarted
with the same arguments finds the finished blocks there (the work directory's
``manifest.json`` records a fingerprint of the model, the matrix, the engine and every
option) and scores only the rest. Meanwhile a writer thread copies the blocks, in block
order as they become available, into a temporary output, one row group per block; when
all are in, it is renamed to the output and the work directory is removed. The output is
the same file whether the run was interrupted or not, and whether it ran locally or on a
dask cluster.

Each block is computed on one thread (the fused kernel's, or one torch thread), whatever
the machine, so its bytes do not depend on the thread count; parallelism comes from
scoring several blocks at once (threads locally, tasks on a dask cluster). A scan with
the fused kernel never imports torch: :func:`load_scan_model` reads such a model as data.

Self pairs (a gene with itself) are left out: their two rows are the same profile.
Rows of the output: ``tf``, ``target`` (strings), ``probability`` (float32). Within a TF,
rows follow the target order, or decreasing probability (ties: target order) with
``top_k``. The output is written by extension (``.parquet``, ``.csv``/``.tsv`` optionally
``.gz``, ``.xlsx`` when the rows fit) and ``layout`` renames the three columns for
pySCENIC (``TF, target, importance``) or BEELINE (``Gene1, Gene2, EdgeWeight``); see
:mod:`tfcnn.io.tables`. The blocks in the work directory are always Arrow IPC files.

:func:`cross_fit_scan` trains K models on TF-grouped folds of the known pairs and scores
each TF only with the model that never saw it as a TF, so the edge list can be compared
with those known pairs (BEELINE-style) without leakage; a ``fold`` column says which
model scored each row.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import TfcnnInputError
from ..extras import require
from ..io.atomic import atomic_path, check_writable
from ..io.datasets import resolve_path
from ..io.expression import ExpressionMatrix
from ..io.idlists import IdList, read_id_list
from ..io.ids import id_namespace, normalize_id
from ..io.tables import XLSX_MAX_ROWS, OutputFormat, TableWriter, edge_columns, output_format
from ..model.record import check_finite_probabilities
from ..model.stored import StoredCNN, cnn_config
from ..runtime import map_in_order, torch_threads
from .folding import network_arrays
from .fused import grid_scorer, resolve_engine
from .matrix import ScoringMatrix, scoring_matrix

if TYPE_CHECKING:
    from ..model.estimator import PairCNN
    from ..model.network import PairCNNNetwork
    from ..model.two_tower import TwoTower, TwoTowerEnsemble

# 2: engine v2 (other float rounding), dictionary-encoded IDs only; 3: Arrow IPC blocks,
# the engine in the fingerprint; 4: weights folded in numpy (other float rounding)
SCAN_FORMAT_VERSION = 4
DEFAULT_BLOCK_TFS = 32
MANIFEST = "manifest.json"
SCHEMA = pa.schema([("tf", pa.string()), ("target", pa.string()), ("probability", pa.float32())])
ID_COLUMNS = SCHEMA.names[:2]


def write_options(names: Sequence[str]) -> dict[str, Any]:
    """Parquet options for blocks and output whose first three columns are ``names``
    (TF, target, probability): the IDs dictionary-encoded and snappy-compressed (trying
    either on the probabilities costs time and saves nothing); statistics for the TF
    column (a reader can skip other TFs' row groups) and the probabilities, not for the
    targets (every block holds them all); no stored Arrow schema, so readers see the ID
    columns as plain strings, not as the dictionaries they are written from."""
    tf, target, probability = names[:3]
    return {
        "compression": {tf: "snappy", target: "snappy", probability: "none"},
        "use_dictionary": [tf, target],
        "write_statistics": [tf, probability],
        "store_schema": False,
    }


#: Called once per block with the number of pairs it holds, and whether the block was
#: found finished on disk (resumed, called before any scoring) or scored now.
ProgressCallback = Callable[[int, bool], None]


@dataclass(frozen=True)
class ScanResult:
    """What a scan did: pairs scored, rows written, blocks computed vs found on disk."""

    output: Path
    pairs: int
    rows: int
    blocks: int
    blocks_resumed: int
    seconds: float
    engine: str = "torch"  # what scored the pairs: "torch" (PairScorer) or "numba" (fused)


@dataclass(frozen=True)
class _Payload:
    """Everything a worker needs to score blocks: sent once (broadcast) per scan."""

    config: dict[str, Any]
    state: dict[str, np.ndarray]
    zscores: np.ndarray
    token: str
    engine: str = "torch"


def work_dir_for(output: str | os.PathLike[str]) -> Path:
    """The work directory of a scan writing ``output``: ``<output>.work``."""
    output = Path(output)
    return output.with_name(output.name + ".work")


def _fingerprint(payload_parts: Sequence[bytes], options: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for part in payload_parts:
        h.update(hashlib.sha256(part).digest())
    h.update(json.dumps(options, sort_keys=True).encode())
    return h.hexdigest()


# -- what to scan ------------------------------------------------------------------------
@dataclass(frozen=True)
class ScanInputs:
    """What a scan of a model scores: its matrix, the TFs and the targets (matrix IDs)."""

    matrix: ScoringMatrix
    tfs: list[str]
    targets: list[str]
    tf_note: str | None = None  # which TFs were chosen, when none were given

    @property
    def n_pairs(self) -> int:
        """Pairs to score (self pairs left out)."""
        tfs, targets = set(self.tfs), set(self.targets)
        return len(tfs) * len(targets) - len(tfs & targets)


IdsArg = IdList | str | os.PathLike[str] | Sequence[str] | None


def scan_inputs(
    model: PairCNN | StoredCNN,
    expression: ExpressionMatrix | str | os.PathLike[str] | None = None,
    *,
    tfs: IdsArg = None,
    targets: IdsArg = None,
    log2: bool = False,
    name: str = "",
) -> ScanInputs:
    """The matrix (:func:`~tfcnn.inference.matrix.scoring_matrix`), TFs and targets to scan.

    ``tfs`` and ``targets``: an :class:`~tfcnn.io.idlists.IdList`, a file or inline list
    (:func:`~tfcnn.io.idlists.read_id_list`) or IDs; every one must be a gene of the
    matrix (no translation). Default TFs: :func:`default_tfs`; default targets: all genes.
    """
    matrix = scoring_matrix(model, expression, log2=log2, name=name)
    tf_note = None
    if tfs is None:
        tf_ids, tf_note = default_tfs(matrix.genes)
    else:
        tf_ids = ids_in_matrix(_id_list(tfs, "`tfs`"), matrix)
    tg_ids = (
        list(matrix.genes)
        if targets is None
        else ids_in_matrix(_id_list(targets, "`targets`"), matrix)
    )
    return ScanInputs(matrix, tf_ids, tg_ids, tf_note)


def load_scan_model(
    model: str | os.PathLike[str], engine: str = "auto"
) -> PairCNN | TwoTower | StoredCNN:
    """A model to scan, from a directory or a bundled / registered name.

    A pair CNN that the fused kernel will score (``engine`` ``auto`` with numba installed,
    or ``numba``) is read as a :class:`~tfcnn.model.stored.StoredCNN`, without importing
    torch and scikit-learn (3-5 s of a process); any other model is loaded whole. Either
    way ``.network_`` is what :func:`scan` scores and ``.record_`` the training record.
    """
    from ..model.registry import resolve_model
    from ..model.stored import architecture_kind, load_stored_cnn, read_model_json

    path = resolve_model(model)
    meta = read_model_json(path)
    if engine != "torch" and architecture_kind(meta["architecture"]) == "pair-cnn":
        stored = load_stored_cnn(path, meta)
        if resolve_engine(engine, stored) == "numba":
            return stored
    from ..model.files import load_model

    return load_model(path)


def _id_list(value: IdList | str | os.PathLike[str] | Sequence[str], what: str) -> IdList:
    if isinstance(value, IdList):
        return value
    if isinstance(value, str | os.PathLike):
        return read_id_list(value, what)
    return IdList([str(v) for v in value], [], what)


def default_tfs(genes: Sequence[str]) -> tuple[list[str], str]:
    """TFs to scan when none are given, and a sentence saying which and why.

    With AGI gene IDs: the genes listed in the bundled PlantTFDB list ("tf-list");
    otherwise (probesets, other IDs) every gene.
    """
    import pandas as pd

    if id_namespace(list(genes)) == "agi":
        table = pd.read_csv(resolve_path("tf-list"), sep="\t", dtype=str)
        tf_ids = {normalize_id(g) for g in table["Gene_ID"].dropna()}
        tfs = [g for g in genes if g in tf_ids]
        if tfs:
            return tfs, f"{len(tfs):,} genes that are TFs in the bundled tf-list (PlantTFDB)"
    return list(genes), f"all {len(genes):,} genes (IDs are not AGI codes, or none is a TF)"


def ids_in_matrix(ids: IdList, matrix: ScoringMatrix) -> list[str]:
    """The IDs of a list, normalised; every one must be a gene of the matrix (named if not)."""
    wanted = [normalize_id(i) for i in ids.ids]
    missing = [(i, k) for k, i in enumerate(wanted) if i not in matrix.index]
    if missing:
        where = [f"{i!r} (line {ids.lines[k]})" if ids.lines else repr(i) for i, k in missing]
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        ns_ids = id_namespace([i for i, _ in missing])
        ns_genes = id_namespace(matrix.genes)
        hint = (
            f" The list looks like {ns_ids} IDs but the matrix uses {ns_genes} IDs; scan does "
            f"not translate IDs, so give {ns_genes} IDs."
            if "other" not in (ns_ids, ns_genes) and ns_ids != ns_genes
            else " Check the IDs or remove them from the list."
        )
        raise TfcnnInputError(
            f"{ids.label}: {len(missing)} of its {len(wanted)} ID(s) are not genes of "
            f"{matrix.source}: {', '.join(where[:5])}{more}.{hint}"
        )
    return wanted


# -- per-block work (runs locally or on a dask worker) ---------------------------------------
_WORKER_CACHE: dict[str, tuple[Any, Any]] = {}  # PairScorer or FusedPairScorer, its terms
_CACHE_LOCK = threading.Lock()


def _scorer_for(payload: _Payload) -> tuple[Any, Any]:
    """The compiled scorer and gene terms of a payload, built once per process."""
    with _CACHE_LOCK:
        hit = _WORKER_CACHE.get(payload.token)
        if hit is None:
            _WORKER_CACHE.clear()
            if payload.engine == "numba":
                # a dask worker without the extra: say so, as a local scan would
                require("numba", "fast", "this scan's numba engine (on every dask worker)")
                net: Any = StoredCNN(cnn_config(payload.config), payload.state)
            else:
                net = _torch_network(payload)
            scorer = grid_scorer(payload.engine, net)
            hit = (scorer, scorer.gene_terms(payload.zscores))
            _WORKER_CACHE[payload.token] = hit
        return hit


def _torch_network(payload: _Payload) -> Any:
    """The PyTorch network of a payload (either kind: the config names it)."""
    import torch

    from ..model.files import network_from_architecture

    net = network_from_architecture(payload.config)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in payload.state.items()}, strict=False)
    return net.eval()


def _threads(engine: str) -> contextlib.AbstractContextManager[None]:
    """One torch thread for the PyTorch engine (the fused kernel runs on one thread and
    never imports torch)."""
    return torch_threads(1) if engine == "torch" else contextlib.nullcontext()


def score_tf_block(
    payload: _Payload,
    tf_rows: np.ndarray,
    target_rows: np.ndarray,
    min_prob: float | None,
    top_k: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Score one TF block: (tf positions, target positions, probabilities, pairs scored).

    Positions index ``tf_rows`` / ``target_rows``. One torch thread, so the result does
    not depend on the machine's thread count.
    """
    with _threads(payload.engine):
        scorer, terms = _scorer_for(payload)
        proba = check_finite_probabilities(scorer.score_block(terms, tf_rows, target_rows))
    keep = tf_rows[:, None] != target_rows[None, :]  # no self pairs
    pairs = int(keep.sum())
    if min_prob is not None:
        keep &= proba >= np.float32(min_prob)
    tf_pos: list[np.ndarray] = []
    tg_pos: list[np.ndarray] = []
    for i in range(len(tf_rows)):
        cols = np.flatnonzero(keep[i])
        if top_k is not None and len(cols) > top_k:
            # stable sort on -p: decreasing probability, ties in target order
            cols = cols[np.argsort(-proba[i, cols], kind="stable")[:top_k]]
        elif top_k is not None:
            cols = cols[np.argsort(-proba[i, cols], kind="stable")]
        tf_pos.append(np.full(len(cols), i, dtype=np.int32))
        tg_pos.append(cols.astype(np.int32))
    ti = np.concatenate(tf_pos) if tf_pos else np.empty(0, np.int32)
    gi = np.concatenate(tg_pos) if tg_pos else np.empty(0, np.int32)
    return ti, gi, proba[ti, gi], pairs


# -- the scan ----------------------------------------------------------------------------
class _WorkDir:
    """Finished blocks on disk, with a manifest that must match the current scan."""

    def __init__(self, path: Path, fingerprint: str, n_blocks: int, force: bool) -> None:
        self.path = path
        manifest = {
            "format": "tfcnn-scan-work",
            "version": SCAN_FORMAT_VERSION,
            "fingerprint": fingerprint,
            "blocks": n_blocks,
        }
        what = "the unfinished blocks of a different scan (other model, matrix or options)"
        claim_work_dir(path, manifest, MANIFEST, what, force)

    def block_path(self, i: int) -> Path:
        return self.path / f"block-{i:06d}.arrow"

    def done(self, i: int) -> bool:
        return self.block_path(i).is_file()

    def write(self, i: int, table: pa.Table) -> None:
        """Block ``i`` as an uncompressed Arrow IPC file: a copy of its buffers, cheap to
        write beside the scoring and to read back (it is temporary)."""
        final = self.block_path(i)
        tmp = final.with_name(final.name + f".{os.getpid()}.tmp")
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(tmp, final)


def _block_table(
    names_tf: pa.Array, names_tg: pa.Array, result: tuple[np.ndarray, np.ndarray, np.ndarray, int]
) -> pa.Table:
    """A block's rows with its ID columns as dictionaries over the block's names (written
    without re-encoding every row's string)."""
    ti, gi, p, _ = result
    return pa.Table.from_arrays(
        [
            pa.DictionaryArray.from_arrays(pa.array(ti, pa.int32()), names_tf),
            pa.DictionaryArray.from_arrays(pa.array(gi, pa.int32()), names_tg),
            pa.array(p, pa.float32()),
        ],
        names=SCHEMA.names,
    )


def read_block(path: Path) -> pa.Table:
    """A block written by :meth:`_WorkDir.write` (ID columns as dictionaries)."""
    with pa.OSFile(str(path), "rb") as source:
        return pa.ipc.open_file(source).read_all()


class _InOrder:
    """Finished blocks handed over in any order, yielded in block order to the output
    writer; blocks found finished on disk (resumed) are read back when their turn comes."""

    def __init__(self, work: _WorkDir, n_blocks: int, todo: Sequence[int]) -> None:
        self._work, self._n, self._todo = work, n_blocks, set(todo)
        self._ready: dict[int, pa.Table] = {}
        self._cond = threading.Condition()
        self._stopped = False

    def put(self, i: int, table: pa.Table) -> None:
        with self._cond:
            self._ready[i] = table
            self._cond.notify()

    def stop(self) -> None:
        """The scan failed: the writer stops (and its temporary output is removed)."""
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def __iter__(self) -> Iterator[pa.Table]:
        for i in range(self._n):
            if i not in self._todo:
                yield read_block(self._work.block_path(i))
                continue
            with self._cond:
                while i not in self._ready and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    raise _ScanStopped
                table = self._ready.pop(i)
            yield table


class _ScanStopped(Exception):
    """Raised in the output writer when the scan failed."""


class _OutputWriter:
    """:func:`write_blocks` in a thread, fed block by block while the scan runs."""

    def __init__(
        self, blocks: _InOrder, output: Path, fmt: OutputFormat, layout: str, force: bool
    ) -> None:
        self.blocks = blocks
        self.rows: int | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(output, fmt, layout, force), name="tfcnn-scan-writer"
        )
        self._thread.start()

    def _run(self, output: Path, fmt: OutputFormat, layout: str, force: bool) -> None:
        try:
            self.rows = write_blocks(self.blocks, output, fmt, layout, force)
        except _ScanStopped:
            pass
        except BaseException as exc:  # handed to the scan's thread
            self.error = exc

    def check(self) -> None:
        """Raise the writer's error (e.g. disk full) in the scan's thread."""
        if self.error is not None:
            raise self.error

    def finish(self) -> int:
        self._thread.join()
        self.check()
        assert self.rows is not None
        return self.rows

    def abandon(self) -> None:
        self.blocks.stop()
        self._thread.join()


def _plain(table: pa.Table) -> pa.Table:
    """``table`` with dictionary columns decoded to their values (for text and xlsx)."""
    columns = [
        c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns
    ]
    return pa.Table.from_arrays(columns, names=table.column_names)


def scan(
    net: PairCNNNetwork | TwoTowerEnsemble | StoredCNN,
    zscores: np.ndarray,
    genes: Sequence[str],
    output: str | os.PathLike[str],
    tfs: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    min_prob: float | None = None,
    top_k: int | None = None,
    block_tfs: int = DEFAULT_BLOCK_TFS,
    scheduler: Any = None,
    workers: int | None = None,
    force: bool = False,
    on_block: ProgressCallback | None = None,
    layout: str = "tfcnn",
    engine: str = "auto",
) -> ScanResult:
    """Score every TF x target pair of ``genes`` and write ``output`` (format by extension,
    columns by ``layout``: see :mod:`tfcnn.io.tables`).

    ``zscores`` is the genes x samples z-scored matrix (rows in ``genes`` order); ``tfs``
    and ``targets`` default to all genes. ``scheduler``: None (this process, ``workers``
    threads, default the CPU count), ``"local"`` (a dask LocalCluster) or a dask scheduler
    address. ``engine``: ``auto`` (the fused numba kernel when numba is installed and the
    network fits, else PyTorch), ``torch`` or ``numba`` (see :mod:`tfcnn.inference.fused`);
    the probabilities agree to float rounding, and a scan never resumes across engines.
    See the module docstring for resumption and the output layout.
    """
    start = time.perf_counter()
    output = check_writable(output, force)
    fmt = output_format(output, layout)  # an unknown extension is refused before any work
    genes = list(genes)
    index = {g: i for i, g in enumerate(genes)}
    if len(index) != len(genes):
        raise TfcnnInputError("the gene list has duplicate IDs; IDs must be unique.")
    z = np.ascontiguousarray(zscores, dtype=np.float32)
    if z.shape != (len(genes), net.config.n_samples):
        raise TfcnnInputError(
            f"the expression matrix is {z.shape[0]} genes x {z.shape[1]} samples but the "
            f"model takes {net.config.n_samples} samples (and {len(genes)} gene IDs were given)."
        )
    tf_list = _resolve(tfs, index, "TF")
    tg_list = _resolve(targets, index, "target")
    check_options(min_prob, top_k, workers, block_tfs)
    _check_xlsx_fits(fmt, output, tf_list, tg_list, min_prob, top_k)
    used = resolve_engine(engine, net)

    state = network_arrays(net)
    options = {
        "tfcnn_scan": SCAN_FORMAT_VERSION,
        "config": net.config.to_dict(),
        "genes": genes,
        "tfs": tf_list,
        "targets": tg_list,
        "min_prob": min_prob,
        "top_k": top_k,
        "block_tfs": block_tfs,
        "engine": used,
    }
    token = _fingerprint([state[k].tobytes() for k in sorted(state)] + [z.tobytes()], options)
    payload = _Payload(
        config=net.config.to_dict(), state=state, zscores=z, token=token, engine=used
    )
    tf_rows = np.array([index[g] for g in tf_list], dtype=np.int64)
    tg_rows = np.array([index[g] for g in tg_list], dtype=np.int64)
    blocks = [tf_rows[i : i + block_tfs] for i in range(0, len(tf_rows), block_tfs)]
    work = _WorkDir(work_dir_for(output), token, len(blocks), force)
    todo = [i for i in range(len(blocks)) if not work.done(i)]
    names_tg = pa.array(tg_list, pa.string())
    pairs_per_block = [int(len(b) * len(tg_rows) - np.isin(b, tg_rows).sum()) for b in blocks]
    if on_block is not None:
        pending = set(todo)
        for i in range(len(blocks)):
            if i not in pending:
                on_block(pairs_per_block[i], True)

    writer = _OutputWriter(_InOrder(work, len(blocks), todo), output, fmt, layout, force)

    def finish(i: int, result: tuple[np.ndarray, np.ndarray, np.ndarray, int]) -> None:
        writer.check()
        names_tf = pa.array([genes[r] for r in blocks[i]], pa.string())
        table = _block_table(names_tf, names_tg, result)
        work.write(i, table)
        writer.blocks.put(i, table)
        if on_block is not None:
            on_block(result[3], False)

    try:
        if todo:
            if scheduler is None:
                _run_threads(payload, blocks, todo, tg_rows, min_prob, top_k, workers, finish)
            else:
                _run_dask(
                    payload, blocks, todo, tg_rows, min_prob, top_k, scheduler, workers, finish
                )
    except BaseException:
        writer.abandon()
        raise
    rows = writer.finish()
    shutil.rmtree(work.path, ignore_errors=True)
    return ScanResult(
        output=output,
        pairs=sum(pairs_per_block),
        rows=rows,
        blocks=len(blocks),
        blocks_resumed=len(blocks) - len(todo),
        seconds=time.perf_counter() - start,
        engine=used,
    )


def _check_xlsx_fits(
    fmt: OutputFormat,
    output: Path,
    tfs: Sequence[str],
    targets: Sequence[str],
    min_prob: float | None,
    top_k: int | None,
) -> None:
    """Refuse an .xlsx output that cannot hold the rows (before any work); with
    ``min_prob`` the rows are only known at the end, where the writer checks again."""
    if fmt.kind != "xlsx" or min_prob is not None:
        return
    per_tf = len(targets) if top_k is None else min(top_k, len(targets))
    bound = len(tfs) * per_tf - (len(set(tfs) & set(targets)) if top_k is None else 0)
    if bound > XLSX_MAX_ROWS:
        raise TfcnnInputError(
            f"{output}: the scan writes up to {bound:,} rows, more than an Excel sheet holds "
            f"({XLSX_MAX_ROWS:,}); write .parquet, .csv or .tsv, or keep fewer rows "
            "(`top_k`, `min_prob`)."
        )


def write_blocks(
    tables: Iterable[pa.Table],
    output: str | os.PathLike[str],
    fmt: OutputFormat,
    layout: str,
    force: bool,
) -> int:
    """Write Arrow tables (tf, target, probability[, more]) as ``output``, one row group
    (or text chunk) per table, columns renamed for ``layout``; the number of rows."""
    names = list(edge_columns(layout))
    rows = 0
    if fmt.kind == "parquet":
        options = write_options(names)
        with atomic_path(output, force=force) as tmp:
            writer = None
            try:
                for table in tables:
                    table = table.rename_columns(names + table.column_names[3:])
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema, **options)
                    rows += table.num_rows
                    writer.write_table(table, row_group_size=max(1, table.num_rows))
            finally:
                if writer is not None:
                    writer.close()
            if writer is None:
                pq.write_table(SCHEMA.empty_table().rename_columns(names), tmp, **options)
        return rows
    with TableWriter(output, fmt, force=force) as text:
        wrote = False
        for table in tables:
            text.write(_plain(table).rename_columns(names + table.column_names[3:]))
            wrote = True
        if not wrote:
            text.write(SCHEMA.empty_table().rename_columns(names))
        rows = text.rows
    return rows


def check_options(
    min_prob: float | None = None,
    top_k: int | None = None,
    workers: int | None = None,
    block_tfs: int = DEFAULT_BLOCK_TFS,
) -> None:
    """Refuse out-of-range scan options (before any file is read, by the CLI)."""
    if min_prob is not None and not 0.0 <= min_prob <= 1.0:
        raise TfcnnInputError(f"`min_prob` must be between 0 and 1 (got {min_prob}).")
    for name, value in (("top_k", top_k), ("workers", workers), ("block_tfs", block_tfs)):
        if value is not None and value < 1:
            raise TfcnnInputError(f"`{name}` must be a positive integer (got {value}).")


def _resolve(ids: Sequence[str] | None, index: dict[str, int], what: str) -> list[str]:
    """IDs in the matrix, deduplicated in order; missing ones are an error naming them."""
    if ids is None:
        return list(index)
    wanted = list(dict.fromkeys(str(i) for i in ids))
    missing = [i for i in wanted if i not in index]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise TfcnnInputError(
            f"{len(missing)} {what} ID(s) are not genes of the expression matrix: {shown}. "
            "Check the IDs (AGI codes vs probesets) or remove them from the list."
        )
    if not wanted:
        raise TfcnnInputError(f"the {what} list is empty.")
    return wanted


def _run_threads(payload, blocks, todo, tg_rows, min_prob, top_k, workers, finish) -> None:
    """Score blocks in this process, ``workers`` blocks at a time (one torch thread each)."""
    with _threads(payload.engine):
        _scorer_for(payload)  # compile once, before the threads start
    results = map_in_order(
        lambda i: score_tf_block(payload, blocks[i], tg_rows, min_prob, top_k),
        todo,
        workers or os.cpu_count() or 1,
        uses_torch=payload.engine == "torch",
    )
    for i, result in zip(todo, results, strict=True):  # finished in block order
        finish(i, result)


def _run_dask(payload, blocks, todo, tg_rows, min_prob, top_k, scheduler, workers, finish) -> None:
    """Score blocks as tasks on a dask.distributed cluster; the payload is broadcast once."""
    distributed = require("dask.distributed", "dask", "`scheduler`")
    Client, LocalCluster, as_completed = (
        distributed.Client,
        distributed.LocalCluster,
        distributed.as_completed,
    )
    with contextlib.ExitStack() as stack:
        if scheduler == "local":
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers or os.cpu_count() or 1,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(Client(cluster))
        elif isinstance(scheduler, str):
            try:
                client = stack.enter_context(Client(scheduler, timeout=30))
            except (OSError, TimeoutError, ValueError) as exc:
                raise TfcnnInputError(
                    f"cannot reach the dask scheduler at {scheduler!r} ({exc}). Give its "
                    "address (tcp://host:8786) or 'local'."
                ) from exc
        else:  # an existing Client or cluster object (used by tests and notebooks)
            client = scheduler
        [shared] = client.scatter([payload], broadcast=True)
        tg_future = client.scatter(tg_rows, broadcast=True)
        futures = {
            client.submit(
                score_tf_block,
                shared,
                blocks[i],
                tg_future,
                min_prob,
                top_k,
                key=f"tfcnn-scan-{payload.token[:12]}-{i}",
                pure=False,
            ): i
            for i in todo
        }
        for fut in as_completed(futures):
            finish(futures[fut], fut.result())


# -- cross-fitted scan -------------------------------------------------------------------
CROSS_FIT_MANIFEST = "cross-fit.json"


@dataclass(frozen=True)
class FoldInfo:
    """One fold of a cross-fitted scan: the TFs its model scored and how it did on them."""

    fold: int
    tfs: int  # TFs scored by this fold's model
    held_out_tfs: int  # of those, TFs with known pairs (the fold's test TFs)
    test_auroc: float | None  # the model on its held-out TFs' pairs
    resumed: bool


@dataclass(frozen=True)
class CrossFitResult:
    """What a cross-fitted scan did."""

    output: Path
    pairs: int
    rows: int
    folds: tuple[FoldInfo, ...]
    unseen_tfs: int  # scanned TFs outside the known pairs, dealt to the folds in turn
    seconds: float


def cross_fit_scan(
    expression: Any,
    interactions: Any,
    output: str | os.PathLike[str],
    n_folds: int,
    *,
    id_map: Any = None,
    evidence: Sequence[str] | None = None,
    negatives: str = "tf-matched",
    seed: int = 0,
    tfs: IdsArg = None,
    targets: IdsArg = None,
    min_prob: float | None = None,
    top_k: int | None = None,
    layout: str = "tfcnn",
    block_tfs: int = DEFAULT_BLOCK_TFS,
    workers: int | None = None,
    force: bool = False,
    log2: bool = False,
    read: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    on_fold: Callable[[int, str], None] | None = None,
    on_block: ProgressCallback | None = None,
    engine: str = "auto",
) -> CrossFitResult:
    """Scan every TF x target pair, each TF scored by a model that never saw it as a TF.

    The known pairs (``interactions`` on ``expression``, with ``negatives``) are split
    into ``n_folds`` TF-grouped folds (:func:`tfcnn.pairs.tf_group_folds`); model ``k``
    is trained (:func:`tfcnn.api.train`, ``train`` hyperparameters) with fold ``k``'s TFs
    held out, and scores exactly those TFs. TFs to scan that have no known pair (no
    model saw them) are dealt to the folds in turn. The output (format by extension,
    columns by ``layout``) has a ``fold`` column. Finished folds (models and their
    scans) are kept in ``<output>.work/``: rerun the same command to resume.
    ``read``: how to read ``expression`` (transpose, layer, pseudobulk, order_by).
    ``engine``: as for :func:`scan`.
    """
    from .. import api
    from ..model.estimator import PairCNN as Estimator
    from ..pairs import tf_group_folds

    start = time.perf_counter()
    output = check_writable(output, force)
    fmt = output_format(output, layout)
    check_options(min_prob, top_k, workers, block_tfs)
    if n_folds < 2:
        raise TfcnnInputError(f"`cross_fit` needs at least 2 folds (got {n_folds}).")
    train = dict(train or {})
    Estimator(seed=seed, **train).check_settings()
    pairs = api.build_pairs(
        expression,
        interactions,
        id_map=id_map,
        evidence=evidence,
        negatives=negatives,
        split="random",
        seed=seed,
        log2=log2,
        **(read or {}),
    )
    folds = tf_group_folds(pairs, n_folds, seed=seed)
    genes = list(pairs.genes)
    matrix = ScoringMatrix(
        pairs.zscores, genes, list(pairs.samples), pairs.meta["expression"]["source"]
    )
    scan_tfs = (
        default_tfs(genes)[0] if tfs is None else ids_in_matrix(_id_list(tfs, "`tfs`"), matrix)
    )
    tg_list = genes if targets is None else ids_in_matrix(_id_list(targets, "`targets`"), matrix)
    scan_tfs = list(dict.fromkeys(scan_tfs))
    fold_of: dict[str, int] = {}
    for k, fold in enumerate(folds):
        t = fold.table
        for tf in t.loc[t["split"] == "test", "tf"]:
            fold_of.setdefault(str(tf), k)
    unseen = [tf for tf in scan_tfs if tf not in fold_of]
    assigned = {tf: fold_of[tf] for tf in scan_tfs if tf in fold_of}
    for i, tf in enumerate(unseen):
        assigned[tf] = i % n_folds
    per_fold = [[tf for tf in scan_tfs if assigned[tf] == k] for k in range(n_folds)]
    _check_xlsx_fits(fmt, output, scan_tfs, tg_list, min_prob, top_k)

    z = np.ascontiguousarray(pairs.zscores, dtype=np.float32)
    options = {
        "n_folds": n_folds,
        "negatives": negatives,
        "seed": seed,
        "train": train,
        "tfs": scan_tfs,
        "targets": tg_list,
        "min_prob": min_prob,
        "top_k": top_k,
        "block_tfs": block_tfs,
        # every fold's model has this shape, so this is every fold's engine
        "engine": resolve_engine(engine, Estimator(seed=seed, **train).config_for(z.shape[1])),
        "pairs": pairs.table[["tf", "target", "label"]].to_numpy().tolist(),
    }
    token = _fingerprint([z.tobytes()], options)
    work = _CrossFitWork(work_dir_for(output), token, force)
    infos = []
    for k in range(n_folds):
        model_dir = work.path / f"model-{k}"
        resumed = model_dir.is_dir()
        if resumed:
            model = Estimator.load(model_dir)
        else:
            if on_fold is not None:
                on_fold(k, "training")
            model = api.train(folds[k], seed=seed, **train)
            model.save(model_dir)
        fold_out = work.path / f"fold-{k}.parquet"
        if per_fold[k] and not fold_out.is_file():
            if on_fold is not None:
                on_fold(k, "scanning")
            scan(
                model.network_,
                z,
                genes,
                fold_out,
                tfs=per_fold[k],
                targets=tg_list,
                min_prob=min_prob,
                top_k=top_k,
                block_tfs=block_tfs,
                workers=workers,
                force=True,
                on_block=on_block,
                engine=engine,
            )
        test = model.record_.metrics.get("test", {}) if model.record_.metrics else {}
        held_out = sum(1 for tf in per_fold[k] if tf in fold_of)
        infos.append(FoldInfo(k, len(per_fold[k]), held_out, test.get("auroc"), resumed))

    def tables() -> Iterable[pa.Table]:
        for k in range(n_folds):
            fold_out = work.path / f"fold-{k}.parquet"
            if not fold_out.is_file():
                continue
            pf = pq.ParquetFile(fold_out, read_dictionary=ID_COLUMNS)
            for g in range(pf.num_row_groups):
                table = pf.read_row_group(g)
                yield table.append_column(
                    "fold", pa.array(np.full(table.num_rows, k, np.int16), pa.int16())
                )

    rows = write_blocks(tables(), output, fmt, layout, force)
    shutil.rmtree(work.path, ignore_errors=True)
    n_pairs = sum(len(f) * len(tg_list) - len(set(f) & set(tg_list)) for f in per_fold)
    return CrossFitResult(
        output, n_pairs, rows, tuple(infos), len(unseen), time.perf_counter() - start
    )


def claim_work_dir(path: Path, manifest: dict[str, Any], name: str, what: str, force: bool) -> None:
    """Make ``path`` the work folder whose ``name`` file holds ``manifest``: an existing
    folder with another manifest holds ``what`` and is refused (removed with ``force``)."""
    existing = path / name
    if path.exists():
        try:
            found = json.loads(existing.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = None
        if found != manifest:
            if not force:
                raise TfcnnInputError(
                    f"{path} holds {what}. Rerun with the same arguments to resume it, or "
                    "pass `force` to discard it."
                )
            shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    if not existing.exists():
        tmp = path / (name + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, existing)


class _CrossFitWork:
    """The work folder of a cross-fitted scan: fold models and fold scans, resumable."""

    def __init__(self, path: Path, token: str, force: bool) -> None:
        self.path = path
        manifest = {"format": "tfcnn-cross-fit-work", "fingerprint": token}
        what = "the unfinished work of a different cross-fitted scan (other data or options)"
        claim_work_dir(path, manifest, CROSS_FIT_MANIFEST, what, force)
