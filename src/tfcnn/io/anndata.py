"""Single-cell inputs: AnnData ``.h5ad``, ``.loom`` and 10x folders, cells made samples.

These files are cells x genes (``obs`` x ``var``). The CNN reads one profile per gene
over the samples, and its input width is the number of samples, so cells must become
samples. ``pseudobulk`` names an ``obs`` column (cell type, cluster, time point): cells
are averaged per group, one sample per group; ``order_by`` names an ``obs`` column
(pseudotime, or any annotation) that orders the samples, since a convolution reads the
columns in order (see docs/explain.md). Sparse matrices stay sparse until averaged.
Cells used directly as samples are refused above :data:`MAX_CELLS`, with the memory
they would need and the pseudobulk advice.

``.h5ad`` needs the optional ``anndata`` package (``pip install 'tfcnn[sc]'``); loom
files and 10x folders are read with h5py and scipy, which tfcnn always has.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TfcnnInputError
from ..extras import require
from .expression import ExpressionMatrix, from_values

log = logging.getLogger(__name__)

#: Most cells taken directly as samples (each a column of the CNN's input).
MAX_CELLS = 10_000
#: Cells averaged at once when a loom matrix is read in blocks.
_BLOCK_CELLS = 4_096


@dataclass
class CellMatrix:
    """Cells x genes: ``x`` (dense array or scipy sparse), cell annotations, gene IDs."""

    x: Any
    obs: pd.DataFrame
    genes: list[str]
    source: str


def read_single_cell(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    pseudobulk: str | None = None,
    order_by: str | None = None,
    log2: bool = False,
    max_cells: int = MAX_CELLS,
) -> ExpressionMatrix:
    """An :class:`ExpressionMatrix` (genes x samples) from a ``.h5ad``, ``.loom`` or 10x
    folder: one sample per ``pseudobulk`` group (the mean of its cells), or per cell;
    in ``order_by`` order (else the groups' category order, or the file's cell order)."""
    path = Path(path)
    if not path.exists():
        raise TfcnnInputError(f"{path}: file not found; check the path.")
    cells = _read_cells(path, layer)
    if pseudobulk is None and cells.x.shape[0] > max_cells:
        n_cells, n_genes = cells.x.shape
        values = n_cells * n_genes
        raise TfcnnInputError(
            f"{path} holds {n_cells:,} cells x {n_genes:,} genes. Taken as samples, that is "
            f"{values:,} values, about {values * 8 / 1e9:,.1f} GB in memory (float32 values "
            f"and z-scores), and a CNN {n_cells:,} samples wide. Pass `pseudobulk` with an "
            f"obs column to average the cells of each group into one sample "
            f"(obs columns: {_columns(cells.obs)}), and `order_by` to order them (e.g. by "
            f"pseudotime); or subset the cells first (at most {max_cells:,})."
        )
    for option, column in (("pseudobulk", pseudobulk), ("order_by", order_by)):
        if column is not None and column not in cells.obs.columns:
            raise TfcnnInputError(
                f"{path}: `{option}` {column!r} is not an obs column; obs columns: "
                f"{_columns(cells.obs)}."
            )
    if pseudobulk is not None:
        values, samples = _pseudobulk(cells, pseudobulk, order_by)
    else:
        values, samples = _cells_as_samples(cells, order_by)
    return from_values(values, cells.genes, list(samples), cells.source, log2=log2)


def _columns(obs: pd.DataFrame) -> str:
    names = [str(c) for c in obs.columns]
    return ", ".join(repr(c) for c in names[:20]) + (" ..." if len(names) > 20 else "") or "none"


def _read_cells(path: Path, layer: str | None) -> CellMatrix:
    if path.is_dir():
        if layer is not None:
            raise TfcnnInputError(f"{path} is a 10x folder, which has no layers; drop `layer`.")
        return _read_10x(path)
    if path.name.lower().endswith(".loom"):
        return _read_loom(path, layer)
    return _read_h5ad(path, layer)


def _read_h5ad(path: Path, layer: str | None) -> CellMatrix:
    anndata = require("anndata", "sc", f"{path}: reading .h5ad files")
    try:
        adata = anndata.read_h5ad(path)
    except Exception as exc:  # h5py and anndata raise many types for a damaged file
        raise TfcnnInputError(
            f"{path}: cannot read it as an AnnData .h5ad file ({exc}); write it again "
            "(adata.write_h5ad)."
        ) from exc
    if layer is None:
        x = adata.X
        if x is None:
            raise TfcnnInputError(f"{path} has no X matrix; name a layer with `layer`.")
    elif layer in adata.layers:
        x = adata.layers[layer]
    else:
        raise TfcnnInputError(
            f"{path} has no layer {layer!r}; layers: "
            f"{', '.join(map(repr, adata.layers.keys())) or 'none'} (or leave `layer` out "
            "for X)."
        )
    return CellMatrix(x, adata.obs, [str(g) for g in adata.var_names], str(path))


def _read_loom(path: Path, layer: str | None) -> CellMatrix:
    """Loom (genes x cells in HDF5), read with h5py: matrix or a layer, attributes."""
    h5py = require("h5py", "sc", f"{path}: reading .loom files")

    try:
        with h5py.File(path, "r") as f:
            if layer is None:
                data = f["matrix"]
            elif "layers" in f and layer in f["layers"]:
                data = f["layers"][layer]
            else:
                have = list(f["layers"].keys()) if "layers" in f else []
                raise TfcnnInputError(
                    f"{path} has no layer {layer!r}; layers: "
                    f"{', '.join(map(repr, have)) or 'none'} (or leave `layer` out for the "
                    "main matrix)."
                )
            x = np.empty((data.shape[1], data.shape[0]), np.float32)  # cells x genes
            for a in range(0, data.shape[1], _BLOCK_CELLS):
                x[a : a + _BLOCK_CELLS] = np.asarray(data[:, a : a + _BLOCK_CELLS]).T
            rows = {k: _strings(v[()]) for k, v in f["row_attrs"].items()}
            cols = {k: _strings(v[()]) for k, v in f["col_attrs"].items() if v.ndim == 1}
    except TfcnnInputError:
        raise
    except (OSError, KeyError) as exc:
        raise TfcnnInputError(
            f"{path}: cannot read it as a loom file ({exc}); it needs /matrix, /row_attrs "
            "and /col_attrs."
        ) from exc
    gene_key = next((k for k in ("Gene", "gene", "var_names", "Accession") if k in rows), None)
    if gene_key is None:
        raise TfcnnInputError(
            f"{path}: no gene names in /row_attrs (looked for 'Gene', 'var_names', "
            f"'Accession'; found {', '.join(rows) or 'none'})."
        )
    cell_key = next((k for k in ("CellID", "obs_names", "cell") if k in cols), None)
    obs = pd.DataFrame({k: v for k, v in cols.items() if k != cell_key})
    if cell_key is not None:
        obs.index = pd.Index([str(c) for c in cols[cell_key]])
    return CellMatrix(x, obs, [str(g) for g in rows[gene_key]], str(path))


def _strings(values: np.ndarray) -> np.ndarray:
    """HDF5 byte strings as str; other arrays unchanged."""
    if values.dtype.kind in "SO":
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
    return values


def _read_10x(path: Path) -> CellMatrix:
    """A 10x Cell Ranger folder: matrix.mtx (genes x cells), features/genes, barcodes."""
    from scipy.io import mmread

    def find(*names: str) -> Path:
        for name in names:
            for candidate in (path / name, path / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
        raise TfcnnInputError(
            f"{path} is a folder but not a 10x folder: it lacks {' or '.join(names)}[.gz] "
            "(a 10x folder holds matrix.mtx, features.tsv and barcodes.tsv)."
        )

    mtx, features, barcodes = (
        find("matrix.mtx"),
        find("features.tsv", "genes.tsv"),
        find("barcodes.tsv"),
    )
    try:
        with _maybe_gzip(mtx) as fh:
            x = mmread(fh).tocsr().T.tocsr().astype(np.float32)  # cells x genes
        feats = pd.read_csv(features, sep="\t", header=None, dtype=str)
        cells = pd.read_csv(barcodes, sep="\t", header=None, dtype=str)[0].tolist()
    except (OSError, ValueError, EOFError) as exc:
        raise TfcnnInputError(f"{path}: cannot read the 10x files ({exc}).") from exc
    ids = feats[0].tolist()
    names = feats[1].tolist() if feats.shape[1] > 1 else ids
    genes = names
    if len(set(names)) != len(names):
        dup = pd.Index(names)[pd.Index(names).duplicated()].unique().tolist()
        log.warning(
            "%s: %d gene symbol(s) appear more than once (e.g. %s); using the gene IDs of "
            "%s instead",
            path,
            len(dup),
            ", ".join(map(repr, dup[:3])),
            features.name,
        )
        genes = ids
    if x.shape != (len(cells), len(genes)):
        raise TfcnnInputError(
            f"{path}: matrix.mtx is {x.shape[1]:,} x {x.shape[0]:,} but there are "
            f"{len(genes):,} features and {len(cells):,} barcodes."
        )
    obs = pd.DataFrame(index=pd.Index(cells))
    return CellMatrix(x, obs, [str(g) for g in genes], str(path))


def _maybe_gzip(path: Path) -> Any:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _pseudobulk(cells: CellMatrix, column: str, order_by: str | None) -> tuple[Any, Sequence[str]]:
    """Genes x groups: the mean of each group's cells (sparse stays sparse until here)."""
    from scipy import sparse

    groups = cells.obs[column]
    known = groups.notna().to_numpy()
    if not known.any():
        raise TfcnnInputError(f"{cells.source}: obs column {column!r} is empty.")
    if not known.all():
        log.warning(
            "%s: %d cell(s) have no %r value and are left out of the pseudobulk",
            cells.source,
            int((~known).sum()),
            column,
        )
    labels = groups[known]
    if isinstance(labels.dtype, pd.CategoricalDtype):
        names = [c for c in labels.cat.categories if (labels == c).any()]
    else:
        names = sorted(set(labels.tolist()), key=lambda v: (str(type(v)), v))
    names = _ordered(names, labels, cells.obs.loc[known], order_by, cells.source)
    where = {name: i for i, name in enumerate(names)}
    code = np.fromiter((where[v] for v in labels), dtype=np.int64, count=len(labels))
    counts = np.bincount(code, minlength=len(names)).astype(np.float64)
    rows = np.flatnonzero(known)
    indicator = sparse.csr_matrix(
        (1.0 / counts[code], (code, rows)), shape=(len(names), cells.x.shape[0])
    )
    means = indicator @ cells.x  # groups x genes
    means = means.toarray() if sparse.issparse(means) else np.asarray(means)
    log.info(
        "%s: %d cells averaged into %d pseudobulk samples by %r (cells per sample: %d-%d)",
        cells.source,
        len(rows),
        len(names),
        column,
        int(counts.min()),
        int(counts.max()),
    )
    return means.T.astype(np.float64), [str(n) for n in names]


def _ordered(
    names: list[Any],
    labels: pd.Series,
    obs: pd.DataFrame,
    order_by: str | None,
    source: str,
) -> list[Any]:
    """Groups in ``order_by`` order: by the mean of a numeric column (pseudotime) over the
    group's cells, or by the first cell's value of another column; else unchanged."""
    if order_by is None:
        return names
    key = obs[order_by]
    if pd.api.types.is_numeric_dtype(key.dtype):
        means = key.groupby(labels.to_numpy(), observed=True).mean()
        return sorted(names, key=lambda n: (float(means[n]), str(n)))
    firsts = key.groupby(labels.to_numpy(), observed=True).first()
    if isinstance(key.dtype, pd.CategoricalDtype):
        rank = {c: i for i, c in enumerate(key.cat.categories)}
        return sorted(names, key=lambda n: (rank.get(firsts[n], len(rank)), str(n)))
    log.info("%s: ordering by %r as text", source, order_by)
    return sorted(names, key=lambda n: (str(firsts[n]), str(n)))


def _cells_as_samples(cells: CellMatrix, order_by: str | None) -> tuple[Any, Sequence[str]]:
    """Genes x cells, in ``order_by`` order (stable), cells named by their obs names."""
    from scipy import sparse

    order = np.arange(cells.x.shape[0])
    if order_by is not None:
        key = cells.obs[order_by]
        if isinstance(key.dtype, pd.CategoricalDtype):
            key = key.cat.codes
        order = np.argsort(key.to_numpy(), kind="stable")
    x = cells.x[order]
    x = x.toarray() if sparse.issparse(x) else np.asarray(x)
    names = [str(c) for c in cells.obs.index[order]]
    return x.T.astype(np.float32), names
