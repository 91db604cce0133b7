"""Single-cell inputs: AnnData .h5ad, loom and 10x folders, pseudobulked and ordered.

Every file is synthetic and written here, in each format's documented layout: an AnnData
(cells x genes, obs with a grouping and a pseudotime), a loom file (/matrix genes x
cells, /row_attrs/Gene, /col_attrs/CellID), a 10x folder (matrix.mtx, features.tsv,
barcodes.tsv). The cells of a group are its planted profile plus noise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from tests.synthetic import planted_dataset, write_pairs
from tfcnn.errors import TfcnnInputError
from tfcnn.io.expression import read_expression

anndata = pytest.importorskip("anndata")

N_GROUPS, CELLS_PER_GROUP = 12, 4


def synthetic_cells(seed: int = 0):
    """(AnnData cells x genes, the genes x groups means, group names, the planted pairs)."""
    expr, pairs = planted_dataset(
        n_tfs=6, targets_per_tf=8, n_background=30, n_samples=N_GROUPS, seed=seed
    )
    rng = np.random.default_rng(seed)
    groups = [f"synthetic_type_{g:02d}" for g in range(N_GROUPS)]
    label = np.repeat(np.arange(N_GROUPS), CELLS_PER_GROUP)
    x = expr.values.T.astype(np.float64)[label] + rng.normal(0, 0.1, (len(label), expr.n_genes))
    time = rng.permutation(N_GROUPS).astype(float)  # each group's pseudotime
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical([groups[g] for g in label], categories=groups),
            "pseudotime": time[label] + rng.uniform(0, 0.5, len(label)),
        },
        index=[f"synthetic_cell_{i}" for i in range(len(label))],
    )
    adata = anndata.AnnData(
        X=sparse.csr_matrix(x.astype(np.float32)),
        obs=obs,
        var=pd.DataFrame(index=list(expr.genes)),
    )
    adata.layers["dense"] = x.astype(np.float32)
    means = np.stack([x[label == g].mean(axis=0) for g in range(N_GROUPS)], axis=1)
    by_time = [groups[g] for g in np.argsort(time)]
    return adata, means, groups, by_time, pairs


def test_h5ad_pseudobulk_in_pseudotime_order(tmp_path: Path) -> None:
    adata, means, groups, by_time, _ = synthetic_cells()
    path = tmp_path / "synthetic_cells.h5ad"
    adata.write_h5ad(path)
    m = read_expression(path, pseudobulk="cell_type")
    assert m.samples == tuple(groups) and m.genes == tuple(adata.var_names)
    np.testing.assert_allclose(m.values, means, rtol=1e-5)
    ordered = read_expression(path, pseudobulk="cell_type", order_by="pseudotime")
    assert ordered.samples == tuple(by_time)
    dense = read_expression(path, layer="dense", pseudobulk="cell_type")
    np.testing.assert_allclose(dense.values, m.values, rtol=1e-6)
    # cells as samples, in pseudotime order
    cells = read_expression(path, order_by="pseudotime")
    assert cells.n_samples == N_GROUPS * CELLS_PER_GROUP
    times = adata.obs.loc[list(cells.samples), "pseudotime"].to_numpy()
    assert (np.diff(times) >= 0).all()


def test_h5ad_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    adata, *_ = synthetic_cells()
    path = tmp_path / "synthetic_cells.h5ad"
    adata.write_h5ad(path)
    with pytest.raises(TfcnnInputError, match=r"no layer 'counts'; layers: 'dense'"):
        read_expression(path, layer="counts", pseudobulk="cell_type")
    with pytest.raises(
        TfcnnInputError,
        match=r"`pseudobulk` 'leiden' is not an obs column.*"
        r"'cell_type', 'pseudotime'",
    ):
        read_expression(path, pseudobulk="leiden")
    from tfcnn.io import anndata as reader

    with pytest.raises(TfcnnInputError) as err:
        reader.read_single_cell(path, max_cells=10)
    message = str(err.value)
    assert "holds 48 cells x 84 genes" in message and "GB in memory" in message
    assert "`pseudobulk`" in message and "'cell_type'" in message
    with pytest.raises(TfcnnInputError, match="`pseudobulk` applies to single-cell files"):
        read_expression(tmp_path / "m.tsv", pseudobulk="cell_type")
    monkeypatch.setitem(sys.modules, "anndata", None)  # the extra is not installed
    with pytest.raises(TfcnnInputError, match=r"pip install 'tfcnn\[sc\]'"):
        read_expression(path, pseudobulk="cell_type")


def test_loom_and_10x_folder(tmp_path: Path) -> None:
    import h5py
    from scipy.io import mmwrite

    adata, means, groups, _, _ = synthetic_cells(1)
    x = adata.layers["dense"]  # cells x genes
    loom = tmp_path / "synthetic_cells.loom"
    with h5py.File(loom, "w") as f:
        f["matrix"] = x.T  # loom: genes x cells
        f["row_attrs/Gene"] = np.array(adata.var_names, dtype="S")
        f["col_attrs/CellID"] = np.array(adata.obs_names, dtype="S")
        f["col_attrs/cell_type"] = np.array(adata.obs["cell_type"].astype(str), dtype="S")
        f.create_group("layers")
    m = read_expression(loom, pseudobulk="cell_type")
    assert m.samples == tuple(groups)
    np.testing.assert_allclose(m.values, means, rtol=1e-5)

    folder = tmp_path / "synthetic_filtered_feature_bc_matrix"
    folder.mkdir()
    mmwrite(folder / "matrix.mtx", sparse.coo_matrix(x.T))
    pd.DataFrame(
        {
            "id": [f"SYNTHETIC{i:05d}" for i in range(x.shape[1])],
            "name": list(adata.var_names),
            "type": "Gene Expression",
        }
    ).to_csv(folder / "features.tsv", sep="\t", header=False, index=False)
    pd.Series(list(adata.obs_names)).to_csv(folder / "barcodes.tsv", header=False, index=False)
    cells = read_expression(folder)
    assert cells.samples == tuple(adata.obs_names) and cells.genes == tuple(adata.var_names)
    with pytest.raises(TfcnnInputError, match="obs columns: none"):
        read_expression(folder, pseudobulk="cell_type")


def test_h5ad_round_trip_through_the_cli(tmp_path: Path) -> None:
    """build-pairs -> train -> scan --layout pyscenic, on an AnnData written here."""
    from tests.test_bad_inputs import run, succeeded

    adata, _, _, by_time, pairs = synthetic_cells(2)
    h5ad = tmp_path / "synthetic_cells.h5ad"
    adata.write_h5ad(h5ad)
    known = tmp_path / "synthetic_pairs.tsv"
    write_pairs(pairs, known)
    home = tmp_path / "synthetic_home"
    read = ["--pseudobulk", "cell_type", "--order-by", "pseudotime"]
    succeeded(
        run("build-pairs", "-x", h5ad, "-i", known, *read, "-o", tmp_path / "pairs", home=home)
    )
    succeeded(
        run("train", "-p", tmp_path / "pairs", "-o", tmp_path / "model", "--epochs", "1", home=home)
    )
    import json

    record = json.loads((tmp_path / "model" / "model.json").read_text())
    assert json.dumps(by_time) in json.dumps(record)  # the samples, in pseudotime order
    adj = tmp_path / "adj.tsv"
    out = succeeded(
        run(
            "scan",
            "-m",
            tmp_path / "model",
            "-x",
            h5ad,
            *read,
            "--layout",
            "pyscenic",
            "--top-k",
            "5",
            "-o",
            adj,
            home=home,
        )
    )
    assert "rows written" in out
    table = pd.read_csv(adj, sep="\t", dtype={0: str, 1: str, 2: np.float64})
    assert list(table.columns) == ["TF", "target", "importance"]
    assert len(table) == 5 * adata.n_vars and table.importance.between(0, 1).all()
