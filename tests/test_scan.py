"""Genome-wide scan: output contents, filters, resumption after a kill, dask, and the CLI.

Everything is synthetic: random networks and random z-scored matrices made here.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from tfcnn.errors import OutputExistsError, TfcnnInputError
from tfcnn.inference.scan import default_tfs, scan, scan_inputs, work_dir_for
from tfcnn.model.estimator import PairCNN
from tfcnn.model.network import CNNConfig, PairCNNNetwork
from tfcnn.runtime import torch_threads

ROOT = Path(__file__).resolve().parent.parent
WIDTH, N_GENES = 24, 30
GENES = [f"SYN{i:03d}" for i in range(N_GENES)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with torch_threads(1):
        yield


def _net(seed: int = 0) -> PairCNNNetwork:
    torch.manual_seed(seed)
    net = PairCNNNetwork(CNNConfig(n_samples=WIDTH, batch_norm=(True, True))).eval()
    with torch.no_grad():  # non-trivial weights, so probabilities spread out
        for p in net.parameters():
            p.mul_(3.0)
    return net


def _z(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((N_GENES, WIDTH)).astype(np.float32)


def _direct(net: PairCNNNetwork, z: np.ndarray, tfs: list[str], targets: list[str]) -> pd.DataFrame:
    """Every (tf, target) pair scored by the network itself, self pairs left out."""
    idx = {g: i for i, g in enumerate(GENES)}
    rows = [(t, g) for t in tfs for g in targets if t != g]
    x = np.stack([np.stack([z[idx[t]], z[idx[g]]]) for t, g in rows])
    with torch.no_grad():
        p = torch.sigmoid(net(torch.from_numpy(x))).numpy()
    return pd.DataFrame({"tf": [r[0] for r in rows], "target": [r[1] for r in rows], "p": p})


def test_all_pairs_match_the_network(tmp_path: Path) -> None:
    net, z = _net(), _z()
    tfs, targets = GENES[3:14], GENES[::-1]
    out = tmp_path / "scan.parquet"
    result = scan(net, z, GENES, out, tfs=tfs, targets=targets, block_tfs=4, workers=2)
    table = pq.read_table(out)
    assert table.schema.names == ["tf", "target", "probability"]
    assert str(table.schema.field("probability").type) == "float"
    got = table.to_pandas()
    want = _direct(net, z, tfs, targets)
    assert list(got.tf) == list(want.tf) and list(got.target) == list(want.target)
    np.testing.assert_allclose(got.probability, want.p, atol=1e-5, rtol=0)
    assert result.pairs == result.rows == len(want) and result.blocks == 3
    assert not work_dir_for(out).exists()
    assert pq.ParquetFile(out).num_row_groups == 3  # one row group per TF block
    # Written from dictionaries, read as plain strings (not pandas categoricals):
    assert str(table.schema.field("tf").type) == "string" and got.tf.dtype == object
    # A reader can skip other TFs' blocks: the TF column has row-group statistics.
    stats = pq.ParquetFile(out).metadata.row_group(1).column(0).statistics
    assert (stats.min, stats.max) == (min(tfs[4:8]), max(tfs[4:8]))
    only = pd.read_parquet(out, filters=[("tf", "==", tfs[5])])
    assert set(only.tf) == {tfs[5]} and len(only) == len(targets) - 1


def test_min_prob_and_top_k(tmp_path: Path) -> None:
    net, z = _net(1), _z(1)
    tfs = GENES[:7]
    full = pq.read_table(scan(net, z, GENES, tmp_path / "all.parquet", tfs=tfs).output)
    full = full.to_pandas()
    cut = float(full.probability.median())
    kept = scan(net, z, GENES, tmp_path / "min.parquet", tfs=tfs, min_prob=cut)
    got = pq.read_table(kept.output).to_pandas()
    want = full[full.probability >= np.float32(cut)].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert kept.pairs == len(full) and kept.rows == len(want) < len(full)

    top = pq.read_table(
        scan(net, z, GENES, tmp_path / "top.parquet", tfs=tfs, top_k=3, min_prob=cut).output
    ).to_pandas()
    for tf, group in top.groupby("tf", sort=False):
        cand = want[want.tf == tf].sort_values("probability", ascending=False, kind="stable")
        assert list(group.target) == list(cand.target[:3])
        assert group.probability.is_monotonic_decreasing


def test_refuses_existing_output_and_foreign_work_dir(tmp_path: Path) -> None:
    net, z = _net(), _z()
    out = tmp_path / "scan.parquet"
    scan(net, z, GENES, out, tfs=GENES[:2])
    with pytest.raises(OutputExistsError):
        scan(net, z, GENES, out, tfs=GENES[:2])
    other = tmp_path / "other.parquet"
    work = work_dir_for(other)
    work.mkdir()
    (work / "manifest.json").write_text('{"fingerprint": "something else"}')
    with pytest.raises(TfcnnInputError, match="different scan"):
        scan(net, z, GENES, other, tfs=GENES[:2])
    scan(net, z, GENES, other, tfs=GENES[:2], force=True)
    assert other.exists() and not work.exists()


def test_engines_agree_and_a_scan_never_resumes_across_engines(tmp_path: Path) -> None:
    """Both engines score as the network; a half-done torch scan is not finished by numba."""
    pytest.importorskip("numba")
    net, z = _net(3), _z(3)
    want = _direct(net, z, GENES, GENES)
    tables = {}
    for engine in ("torch", "numba"):
        result = scan(net, z, GENES, tmp_path / f"{engine}.parquet", engine=engine)
        assert result.engine == engine
        tables[engine] = pq.read_table(result.output).to_pandas()
        np.testing.assert_allclose(tables[engine].probability, want.p, atol=1e-5, rtol=0)
    assert scan(net, z, GENES, tmp_path / "auto.parquet").engine == "numba"

    out = tmp_path / "mixed.parquet"

    def stop(pairs: int, resumed: bool) -> None:
        raise KeyboardInterrupt  # after the first finished block

    with pytest.raises(KeyboardInterrupt):
        scan(net, z, GENES, out, engine="torch", block_tfs=4, workers=1, on_block=stop)
    assert list(work_dir_for(out).glob("block-*.arrow"))
    # the output being written beside the scoring was removed, not left half-written
    assert sorted(p.name for p in tmp_path.iterdir() if "mixed" in p.name) == ["mixed.parquet.work"]
    with pytest.raises(TfcnnInputError, match="different scan"):
        scan(net, z, GENES, out, engine="numba", block_tfs=4, workers=1)
    resumed = scan(net, z, GENES, out, engine="torch", block_tfs=4, workers=1)
    assert resumed.blocks_resumed >= 1 and resumed.engine == "torch"
    with pytest.raises(TfcnnInputError, match="engine must be one of"):
        scan(net, z, GENES, tmp_path / "x.parquet", engine="gpu")


def test_unknown_ids_are_named(tmp_path: Path) -> None:
    with pytest.raises(TfcnnInputError, match="NOT_A_GENE"):
        scan(_net(), _z(), GENES, tmp_path / "x.parquet", tfs=["SYN001", "NOT_A_GENE"])
    with pytest.raises(TfcnnInputError, match="takes 24 samples"):
        scan(_net(), _z()[:, :20], GENES, tmp_path / "x.parquet")


_KILLED_RUN = """
import os, signal, sys
import numpy as np, torch
sys.path.insert(0, {root!r})
from tests.test_scan import GENES, _net, _z
from tfcnn.inference.scan import scan
seen = []
def on_block(pairs, resumed):
    seen.append(pairs)
    if len(seen) == {kill_after}:
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-run, no clean-up runs
scan(_net(), _z(), GENES, {out!r}, block_tfs=4, workers=1, on_block=on_block)
"""


def test_killed_run_resumes_to_an_identical_file(tmp_path: Path) -> None:
    out = tmp_path / "resumed.parquet"
    script = textwrap.dedent(_KILLED_RUN).format(root=str(ROOT), kill_after=3, out=str(out))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert not out.exists()
    finished = sorted(p.name for p in work_dir_for(out).glob("block-*.arrow"))
    assert finished == ["block-000000.arrow", "block-000001.arrow", "block-000002.arrow"]

    calls: list[tuple[int, bool]] = []
    resumed = scan(
        _net(), _z(), GENES, out, block_tfs=4, workers=2, on_block=lambda *a: calls.append(a)
    )
    assert resumed.blocks == 8 and resumed.blocks_resumed == 3
    assert [r for _, r in calls] == [True] * 3 + [False] * 5  # resumed blocks come first
    assert sum(n for n, _ in calls) == resumed.pairs == N_GENES * (N_GENES - 1)

    fresh = scan(_net(), _z(), GENES, tmp_path / "fresh.parquet", block_tfs=4, workers=1)
    assert fresh.blocks_resumed == 0
    assert out.read_bytes() == fresh.output.read_bytes()


def test_dask_scan_is_identical(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    net, z = _net(2), _z(2)
    local = scan(net, z, GENES, tmp_path / "local.parquet", block_tfs=5)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = scan(net, z, GENES, tmp_path / "dask.parquet", block_tfs=5, scheduler=client)
    assert remote.rows == local.rows
    assert remote.output.read_bytes() == local.output.read_bytes()


def test_missing_dask_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import now fails
    with pytest.raises(TfcnnInputError, match=r"tfcnn\[dask\]"):
        scan(_net(), _z(), GENES, tmp_path / "x.parquet", scheduler="local")


# -- CLI ---------------------------------------------------------------------------------
def _saved_model(path: Path) -> Path:
    """A tiny PairCNN trained 1 epoch on synthetic pairs, holding its own matrix."""
    z = _z(5)
    rng = np.random.default_rng(5)
    idx = rng.integers(0, N_GENES, size=(64, 2))
    est = PairCNN(epochs=1, batch_size=32, seed=0).fit(z[idx], rng.integers(0, 2, 64))
    est.record_.zscores = z.astype(np.float32)
    est.record_.genes = list(GENES)
    est.record_.samples = [f"s{i}" for i in range(WIDTH)]
    return est.save(path)


def test_cli_scan(tmp_path: Path) -> None:
    from tfcnn.apps.cli import app

    model = _saved_model(tmp_path / "model")
    tfs = tmp_path / "tfs.txt"
    tfs.write_text("# synthetic TFs\nSYN001\nSYN004\n\nSYN007\n")
    out = tmp_path / "cli.parquet"
    args = ["scan", "--model", model, "--tfs", tfs, "--output", out, "--top-k", "5"]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps lines at the terminal width
    assert "pairs/s" in text and "15 rows written" in text
    assert "by the numba engine" in text or "by the torch engine" in text
    # the model's honest figure (here: none recorded) is said where the scan is run
    assert "not evaluated under a protocol with node-identity controls" in text
    table = pq.read_table(out).to_pandas()
    assert list(table.tf.unique()) == ["SYN001", "SYN004", "SYN007"] and len(table) == 15

    # default TFs: synthetic IDs are not AGI codes, so every gene is scanned
    out2 = tmp_path / "all.parquet"
    result = CliRunner().invoke(app, ["scan", "-m", str(model), "-o", str(out2)])
    assert result.exit_code == 0, result.output
    assert pq.read_metadata(out2).num_rows == N_GENES * (N_GENES - 1)

    again = CliRunner().invoke(app, [str(a) for a in args])
    assert again.exit_code == 2 and "--force" in again.output
    tfs.write_text("SYN001\nNOT_A_GENE\n")
    bad = CliRunner().invoke(app, [str(a) for a in args[:-2]] + ["--force"])
    assert bad.exit_code == 2 and "NOT_A_GENE" in bad.output
    assert "Traceback" not in bad.output
    wrong = CliRunner().invoke(app, [str(a) for a in args] + ["--force", "--engine", "gpu"])
    assert wrong.exit_code == 2 and "--engine must be one of" in wrong.output


def test_scan_inputs_read_id_lists_by_line_and_default_tfs(tmp_path: Path) -> None:
    model = PairCNN.load(_saved_model(tmp_path / "model"))
    tfs = tmp_path / "tfs.txt"
    tfs.write_text("# synthetic TFs\nSYN001, 'SYN004'\n\nSYN007\n")
    got = scan_inputs(model, tfs=tfs, targets=["SYN002", "SYN004"])
    assert (got.tfs, got.targets, got.tf_note) == (
        ["SYN001", "SYN004", "SYN007"],
        ["SYN002", "SYN004"],
        None,
    )
    assert got.n_pairs == 3 * 2 - 1  # SYN004 with itself is not scored
    assert scan_inputs(model, tfs="SYN003 SYN005").tfs == ["SYN003", "SYN005"]
    default = scan_inputs(model)
    assert default.tfs == GENES and default.tf_note.startswith("all 30 genes")
    tfs.write_text("SYN001\n\nNOT_A_GENE\n")
    message = (
        r"`tfs` file \S*tfs.txt: 1 of its 2 ID\(s\) are not genes of the model's own matrix: "
        r"'NOT_A_GENE' \(line 3\)"
    )
    with pytest.raises(TfcnnInputError, match=message):
        scan_inputs(model, tfs=tfs)
    with pytest.raises(TfcnnInputError, match=r"'AT1G01010'\. Check the IDs"):
        scan_inputs(model, targets=["at1g01010"])  # normalised; no line numbers for a list
    tfs_agi, note = default_tfs(["AT1G01020", "AT3G25730", "AT1G68840"])
    assert tfs_agi == ["AT3G25730", "AT1G68840"] and "2 genes that are TFs" in note


def test_a_network_giving_nan_is_refused_not_written(tmp_path: Path) -> None:
    """Non-finite probabilities (damaged weights that slipped past loading) never reach a file."""
    from tfcnn.errors import ModelFormatError

    net = _net()
    with torch.no_grad():
        next(net.parameters()).fill_(float("nan"))
    out = tmp_path / "nan.parquet"
    with pytest.raises(ModelFormatError, match="non-finite probabilities"):
        scan(net, _z(), GENES, out, tfs=GENES[:3])
    assert not out.exists()
